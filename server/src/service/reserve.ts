// Reserve: hold credits for an action in flight.
import { randomUUID } from "node:crypto";
import { planHold } from "../ledger/plan.js";
import { insertReservation, type ReservationRow } from "../store/reservation-store.js";
import { loadBalance, totalsView, writeChange } from "./balance-change.js";
import type { BalanceView } from "./balance-view.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { explainMissingBalance, insufficientCredits } from "./missing-balance.js";
import { type Cost, resolveCost } from "./resolve-cost.js";
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
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const cost = await resolveCost(tx, input.customerId, input.cost);
    const key = { customerId: input.customerId, creditTypeId: cost.creditTypeId };
    const loaded = await loadBalance(tx, key, deps.now);
    if (loaded === null) return explainMissingBalance(tx, key.customerId, key.creditTypeId, cost.amount);
    const { state: before, now } = loaded;
    const planned = planHold(before, cost.amount, now.getTime());
    if (planned.kind === "insufficient") throw insufficientCredits(key.customerId, key.creditTypeId, planned.available, planned.required);
    const reservationId = randomUUID();
    const reservation = await insertReservation(tx, {
      ...key,
      reservationId,
      featureKey: cost.featureKey,
      amount: cost.amount,
      holds: planned.holds,
      expiresAt: new Date(now.getTime() + input.ttlMs),
      requestId: idempotency.requestId,
      actor: caller.keyId,
    });
    await writeChange(tx, key, before, planned, { reservationId, requestId: idempotency.requestId, actor: caller.keyId, reasonCode: "reserve", effectiveAt: now });
    return { reservation, balance: totalsView(key.creditTypeId, planned.state, now.getTime()) };
  });
}
