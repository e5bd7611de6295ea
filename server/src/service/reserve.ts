// Reserve: hold credits for an action in flight, lots first in burn order, then the
// overdraft. One op of the write path (write-op.ts): a unary Reserve is a group of one (or
// joins its lane's next group), and each item of a ReserveBatch is the same op.
import { planHold } from "../ledger/plan.js";
import type { ReservationRow } from "../store/reservation-store.js";
import { type BalanceView, emptyView, totalsView } from "./balance-view.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { reservationIdFor } from "./customer-hash.js";
import { insufficientCredits } from "./missing-balance.js";
import { spendAsMember } from "./pool-spend.js";
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
  /** a commit burned past the overdraft limit, under the kill switch. */
  overLimit: boolean;
}

/**
 * reserveOp is one Reserve as the write path runs it. Enforced, it holds the credits or is
 * refused; under the kill switch one that does not fit is made anyway, holding nothing
 * (forced: its commit burns past the limit if it must). In observe and off modes it holds
 * nothing, and its commit is recorded in the shadow ledger.
 */
export function reserveOp(caller: Caller, idempotency: Idempotency, input: ReserveInput): WriteOp<ReservationResult> {
  return costOp({ caller, idempotency }, input.customerId, input.cost, (ctx, key, before, cost, pool) => {
    const nowMs = ctx.now.getTime();
    // A pool member's hold counts against its limit until it is committed or released.
    if (pool !== null && cost.mode === "enforce") spendAsMember(ctx, pool, key, cost.amount, { enforce: true });
    const planned = before === null || cost.mode !== "enforce" ? null : planHold(before, cost.amount, nowMs);
    if (planned?.kind === "insufficient" && !ctx.killSwitch) throw insufficientCredits(key.customerId, key.creditTypeId, planned.available, planned.required);
    const held = planned?.kind === "planned" ? planned : null;
    const reservation: ReservationRow = {
      ...key,
      reservationId: reservationIdFor(key.customerId),
      featureKey: cost.featureKey,
      amount: cost.amount,
      holds: held?.holds ?? [],
      status: "held",
      committedAmount: 0n,
      expiresAt: new Date(nowMs + input.ttlMs),
      mode: cost.mode !== "enforce" ? cost.mode : held === null ? "forced" : "enforce",
      memberCustomerId: pool?.memberCustomerId ?? null,
    };
    if (held !== null) {
      const cause = {
        reservationId: reservation.reservationId, requestId: idempotency.requestId, actor: caller.keyId, reasonCode: "reserve", effectiveAt: ctx.now,
        memberCustomerId: pool?.memberCustomerId ?? null,
      };
      ctx.draft.change(key, held, cause);
    }
    ctx.draft.reserve({ ...reservation, requestId: idempotency.requestId, actor: caller.keyId, memberCustomerId: pool?.memberCustomerId ?? null });
    const after = held?.state ?? before;
    return { value: { reservation, balance: after === null ? emptyView(key.creditTypeId) : totalsView(key.creditTypeId, after, nowMs), overLimit: false } };
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
