// Where a refund of a charge (a Burn, a commit or a usage event) goes: the credits it
// burned last come back first, each part to where it was burned from. A part of a lot
// still live (or not yet effective) goes back to that lot; a part of a lot that has
// expired or been voided whole since comes back as a new lot (the burn stays burned, so revenue already
// recognised stays recognised); an overdraft part comes off the debt while there is
// debt, and the rest (debt later lots repaid) as a new lot too.
import { assert, type BalanceState, isExpired, isVoided } from "./balance-state.js";
import type { Refund } from "./plan.js";

/** BurnPart is one burn entry of a charge, in the order it was written; grantId null: overdraft. */
export interface BurnPart {
  grantId: string | null;
  amount: bigint;
}

/** NewLotPart is credits that come back as a new lot, and the lot (null: overdraft) they burned from. */
export interface NewLotPart {
  fromGrantId: string | null;
  amount: bigint;
}

/** ChargeRefundSplit is a refund decided: refund entries (to lots, or off the debt) and new lots. */
export interface ChargeRefundSplit {
  refunds: Refund[];
  newLots: NewLotPart[];
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

const overdraftKey = "";

/** refundableOf is what a charge burned less what its refunds gave back. */
export function refundableOf(burns: BurnPart[], refundedFrom: Map<string | null, bigint>): bigint {
  const burned = burns.reduce((sum, burn) => sum + burn.amount, 0n);
  const refunded = [...refundedFrom.values()].reduce((sum, amount) => sum + amount, 0n);
  assert(refunded <= burned, "a charge's refunds never exceed what it burned");
  return burned - refunded;
}

/**
 * splitChargeRefund decides where amount of a charge goes back, against the balance as it
 * stands after upkeep (afterUpkeep, with every lot the charge burned from loaded).
 * refundedFrom is what earlier refunds gave back per lot the charge burned from (null:
 * overdraft); they took the last burned first too, so what is left of each part is its
 * lot's burns less those refunds, taken from the end.
 */
export function splitChargeRefund(burns: BurnPart[], refundedFrom: Map<string | null, bigint>, amount: bigint, afterUpkeep: BalanceState, nowMs: number): ChargeRefundSplit {
  assert(amount > 0n && amount <= refundableOf(burns, refundedFrom), "a refund gives back at most what is refundable");
  const left = new Map<string, bigint>();
  for (const burn of burns) {
    assert(burn.amount > 0n, "burn entries are positive");
    const key = burn.grantId ?? overdraftKey;
    left.set(key, (left.get(key) ?? 0n) + burn.amount);
  }
  for (const [grantId, refunded] of refundedFrom) left.set(grantId ?? overdraftKey, left.get(grantId ?? overdraftKey)! - refunded);
  const refunds: Refund[] = [];
  const newLots: NewLotPart[] = [];
  let debt = afterUpkeep.debt;
  let rest = amount;
  for (const burn of [...burns].reverse()) {
    if (rest === 0n) break;
    const key = burn.grantId ?? overdraftKey;
    const take = min(min(rest, burn.amount), left.get(key)!);
    if (take <= 0n) continue;
    left.set(key, left.get(key)! - take);
    rest -= take;
    if (burn.grantId === null) {
      const offDebt = min(take, debt);
      debt -= offDebt;
      if (offDebt > 0n) refunds.push({ grantId: null, amount: offDebt });
      if (take > offDebt) newLots.push({ fromGrantId: null, amount: take - offDebt });
      continue;
    }
    const lot = afterUpkeep.lots.find((candidate) => candidate.grantId === burn.grantId);
    assert(lot !== undefined, "every lot a charge burned from is loaded");
    // A lot voided whole takes nothing back (what comes back to it is voided): as for an
    // expired one, the credits come back as a new lot.
    if (isExpired(lot, nowMs) || isVoided(lot, nowMs)) newLots.push({ fromGrantId: burn.grantId, amount: take });
    else refunds.push({ grantId: burn.grantId, amount: take });
  }
  assert(rest === 0n, "what is refundable is found in the charge's burns");
  return { refunds: merged(refunds), newLots: mergedNewLots(newLots) };
}

function merged(refunds: Refund[]): Refund[] {
  const byLot = new Map<string | null, bigint>();
  for (const refund of refunds) byLot.set(refund.grantId, (byLot.get(refund.grantId) ?? 0n) + refund.amount);
  return [...byLot].map(([grantId, amount]) => ({ grantId, amount }));
}

function mergedNewLots(parts: NewLotPart[]): NewLotPart[] {
  const byLot = new Map<string | null, bigint>();
  for (const part of parts) byLot.set(part.fromGrantId, (byLot.get(part.fromGrantId) ?? 0n) + part.amount);
  return [...byLot].map(([fromGrantId, amount]) => ({ fromGrantId, amount }));
}
