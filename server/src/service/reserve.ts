// Reserve: hold credits for an action in flight, lots first in burn order, then the
// overdraft. One op of the write path (write-op.ts): a unary Reserve is a group of one (or
// joins its lane's next group), and each item of a ReserveBatch is the same op.
import { planHold } from "../ledger/plan.js";
import type { ReservationRow } from "../store/reservation-store.js";
import { type BalanceView, totalsView } from "./balance-view.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { reservationIdFor } from "./customer-hash.js";
import { insufficientCredits } from "./missing-balance.js";
import { type Cost, costOp } from "./resolve-cost.js";
import type { Outcome, WriteOp } from "./write-op.js";

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

/** reserveOp is one Reserve as the write path runs it. */
export function reserveOp(caller: Caller, idempotency: Idempotency, input: ReserveInput): WriteOp<ReservationResult> {
  return costOp({ caller, idempotency }, input.customerId, input.cost, (ctx, key, before, cost) => {
    const nowMs = ctx.now.getTime();
    const planned = planHold(before, cost.amount, nowMs);
    if (planned.kind === "insufficient") throw insufficientCredits(key.customerId, key.creditTypeId, planned.available, planned.required);
    const reservation: ReservationRow = {
      ...key,
      reservationId: reservationIdFor(key.customerId),
      featureKey: cost.featureKey,
      amount: cost.amount,
      holds: planned.holds,
      status: "held",
      committedAmount: 0n,
      expiresAt: new Date(nowMs + input.ttlMs),
    };
    const cause = { reservationId: reservation.reservationId, requestId: idempotency.requestId, actor: caller.keyId, reasonCode: "reserve", effectiveAt: ctx.now };
    ctx.draft.change(key, planned, cause);
    ctx.draft.reserve({ ...reservation, requestId: idempotency.requestId, actor: caller.keyId });
    return { value: { reservation, balance: totalsView(key.creditTypeId, planned.state, nowMs) } };
  });
}

/** reserve holds credits, lots first in burn order, then the overdraft. */
export async function reserve(deps: Deps, caller: Caller, idempotency: Idempotency, input: ReserveInput): Promise<ReservationResult> {
  return deps.writes.submit(reserveOp(caller, idempotency, input));
}

/** ReserveItem is one validated Reserve of a batch. */
export interface ReserveItem {
  idempotency: Idempotency;
  input: ReserveInput;
}

/** reserveBatch answers each Reserve as the unary call would; one customer's items apply in request order. */
export async function reserveBatch(deps: Deps, caller: Caller, items: readonly ReserveItem[]): Promise<Outcome<ReservationResult>[]> {
  return deps.writes.submitAll(items.map((item) => reserveOp(caller, item.idempotency, item.input)));
}
