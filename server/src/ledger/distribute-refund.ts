// Where a corrected usage event's credits go back (a refund): each credit to where the
// burn took it from. A lot-backed part returns to its lot; an overdraft part comes off
// the debt while there is debt, and the rest (debt that later lots already repaid) goes
// back to those lots, the last to settle first, each at most what it settled and no
// earlier correction has returned, and at most what it has room for.
import { assert, type BalanceState } from "./balance-state.js";
import type { Refund } from "./plan.js";

/** SettledBy is a lot that repaid debt, with how much of that no correction has returned yet. */
export interface SettledBy {
  grantId: string;
  unreturned: bigint;
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/**
 * distributeRefund decides where an event's burns go back, against the balance as it stands after
 * upkeep (the state planRefund starts from). settles are the lots that repaid debt, the
 * last to settle first; roomOf is how much a lot may take back before it is whole.
 */
export function distributeRefund(burns: Refund[], afterUpkeep: BalanceState, settles: SettledBy[], roomOf: Map<string, bigint>): Refund[] {
  const lotBacked = new Map<string, bigint>();
  let overdraft = 0n;
  for (const burn of burns) {
    assert(burn.amount > 0n, "burn entries are positive");
    if (burn.grantId === null) overdraft += burn.amount;
    else lotBacked.set(burn.grantId, (lotBacked.get(burn.grantId) ?? 0n) + burn.amount);
  }
  const refunds: Refund[] = [...lotBacked].map(([grantId, amount]) => ({ grantId, amount }));
  const room = new Map(roomOf);
  for (const [grantId, amount] of lotBacked) if (room.has(grantId)) room.set(grantId, room.get(grantId)! - amount);
  const offDebt = min(overdraft, afterUpkeep.debt);
  if (offDebt > 0n) refunds.push({ grantId: null, amount: offDebt });
  let rest = overdraft - offDebt;
  for (const settle of settles) {
    if (rest === 0n) break;
    const give = min(min(rest, settle.unreturned), room.get(settle.grantId) ?? 0n);
    if (give <= 0n) continue;
    refunds.push({ grantId: settle.grantId, amount: give });
    room.set(settle.grantId, room.get(settle.grantId)! - give);
    rest -= give;
  }
  // Debt not on the balance was repaid by settle entries that no correction has given back.
  assert(rest === 0n, "the lots that repaid an event's overdraft can take it back");
  const total = refunds.reduce((sum, refund) => sum + refund.amount, 0n);
  assert(total === burns.reduce((sum, burn) => sum + burn.amount, 0n), "a correction gives back exactly what was burned");
  return refunds;
}

