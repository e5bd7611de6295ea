// Reserve: hold credits for an action in flight.
import { randomUUID } from "node:crypto";
import { planHold } from "../ledger/plan.js";
import type { BalanceState } from "../ledger/balance-state.js";
import type { BalanceKey } from "../store/balance-store.js";
import { type BalanceChange, type IdempotencyWrite, writeBalanceChange } from "../store/change-store.js";
import type { Tx } from "../store/database.js";
import type { ReservationRow } from "../store/reservation-store.js";
import { changeOf, loadBalance, totalsView } from "./balance-change.js";
import type { BalanceView } from "./balance-view.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { explainMissingBalance, insufficientCredits } from "./missing-balance.js";
import { type Cost, type ResolvedCost, resolveCost } from "./resolve-cost.js";
import { runIdempotent } from "./run-idempotent.js";

/** ReserveInput is a validated Reserve request. */
export interface ReserveInput {
  customerId: string;
  cost: Cost;
  ttlMs: number;
}

/** ReservationResult is a reservation and the balance after the change. */
export interface ReservationResult {
  reservation: ReservationRow;
  balance: BalanceView;
}

/** reserve holds credits, lots first in burn order, then the overdraft. */
export async function reserve(deps: Deps, caller: Caller, idempotency: Idempotency, input: ReserveInput): Promise<ReservationResult> {
  return runIdempotent(deps, caller, idempotency, async (tx, claim) => {
    const cost = await resolveCost(tx, input.customerId, input.cost);
    const key = { customerId: input.customerId, creditTypeId: cost.creditTypeId };
    const loaded = await loadBalance(tx, key, deps.now);
    if (loaded === null) return explainMissingBalance(tx, key.customerId, key.creditTypeId, cost.amount);
    return (await writeHold(tx, { caller, idempotency, key, before: loaded.state, now: loaded.now, cost, ttlMs: input.ttlMs, claimRow: claim.rowFor })).result;
  });
}

/** HoldInput is one hold to plan against a balance already locked by this transaction. */
export interface HoldInput {
  caller: Caller;
  idempotency: Idempotency;
  key: BalanceKey;
  before: BalanceState;
  now: Date;
  cost: ResolvedCost;
  ttlMs: number;
  claimRow: (result: ReservationResult) => IdempotencyWrite;
}

/**
 * planHoldChange plans one hold on a locked balance: the result, the balance after it, and
 * the change to write (entries, reservation and request-id claim), so that several holds
 * can be planned in turn under one lock and written together (grouped-operations.ts).
 */
export function planHoldChange(input: HoldInput): { result: ReservationResult; state: BalanceState; change: BalanceChange } {
  const { key, cost, now, before } = input;
  const planned = planHold(before, cost.amount, now.getTime());
  if (planned.kind === "insufficient") throw insufficientCredits(key.customerId, key.creditTypeId, planned.available, planned.required);
  const reservation: ReservationRow = {
    ...key,
    reservationId: randomUUID(),
    featureKey: cost.featureKey,
    amount: cost.amount,
    holds: planned.holds,
    status: "held",
    committedAmount: 0n,
    expiresAt: new Date(now.getTime() + input.ttlMs),
  };
  const result = { reservation, balance: totalsView(key.creditTypeId, planned.state, now.getTime()) };
  const requestId = input.idempotency.requestId;
  const cause = { reservationId: reservation.reservationId, requestId, actor: input.caller.keyId, reasonCode: "reserve", effectiveAt: now };
  const change = changeOf(key, before, planned, cause, [], {
    reservation: { kind: "insert", ...reservation, requestId, actor: input.caller.keyId },
    idempotency: input.claimRow(result),
  });
  return { result, state: planned.state, change };
}

/**
 * writeHold plans one hold and writes it with its reservation and request-id claim in one
 * statement: the whole result is known before the write.
 */
export async function writeHold(tx: Tx, input: HoldInput): Promise<{ result: ReservationResult; state: BalanceState }> {
  const { result, state, change } = planHoldChange(input);
  await writeBalanceChange(tx, change);
  return { result, state };
}
