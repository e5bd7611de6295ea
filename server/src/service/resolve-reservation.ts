// Commit, Release and reservation expiry: resolve a held reservation exactly once. The
// reservation is read before the locks (its balance and holds never change), its status
// again under the balance lock; the writer's conditional status update then proves it was
// still held. One op of the write path each (write-op.ts).
import { LedgerError, notFound } from "../errors.js";
import { assert, type BalanceState } from "../ledger/balance-state.js";
import { type Forced, type Insufficient, type Planned, planCommit, planRelease } from "../ledger/plan.js";
import type { ReservationRow } from "../store/reservation-store.js";
import { emptyView, totalsView } from "./balance-view.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { customerHashOfReservation } from "./customer-hash.js";
import { insufficientCredits } from "./missing-balance.js";
import { returnAsMember, spendAsMember } from "./pool-spend.js";
import type { ReservationResult } from "./reserve.js";
import { loadedState, type Outcome, type PlanContext, type WriteOp } from "./write-op.js";

/** Resolution is what a resolving op asks: the reservation, its new status and the amount to burn. */
interface Resolution {
  reservationId: string;
  status: "committed" | "released" | "expired";
  amount: bigint;
}

/** pinnedOf lists the lots a reservation holds credits in. */
function pinnedOf(reservation: ReservationRow): string[] {
  return reservation.holds.flatMap((hold) => (hold.grantId === null ? [] : [hold.grantId]));
}

/** notHeld is the refusal to resolve a reservation that is no longer held. */
function notHeld(reservation: ReservationRow): LedgerError {
  assert(reservation.status !== "held", "a reservation that failed to resolve is resolved");
  return new LedgerError("rejected", "RESERVATION_NOT_HELD", `the reservation is already ${reservation.status}`, {
    reservation_id: reservation.reservationId,
    status: reservation.status,
  });
}

/** laneOf routes by the customer hash the reservation id carries, or by the id itself for one made otherwise. */
function laneOf(reservationId: string): { customerHash: number } {
  return { customerHash: customerHashOfReservation(reservationId) ?? Number.parseInt(reservationId.slice(0, 8), 16) };
}

/**
 * resolutionOp is the op shared by Commit, Release and expiry. It answers null when the
 * reservation is no longer held and the op is the expiry job's (or its balance is busy).
 */
function resolutionOp(resolution: Resolution, actor: { caller: Caller; idempotency: Idempotency } | null): WriteOp<ReservationResult | null> {
  const { reservationId } = resolution;
  let found: ReservationRow;
  return {
    lane: laneOf(reservationId),
    weight: 1,
    claim: actor ?? undefined,
    request: (reads) => void reads.reservationIds.push(reservationId),
    prepare: (inputs) => {
      const reservation = inputs.reservations.get(reservationId);
      if (reservation === undefined) throw notFound("RESERVATION_NOT_FOUND", "reservation id", reservationId);
      found = reservation;
      // A status only moves away from held: one read before the lock already settles a resolved one.
      if (found.status !== "held" && actor !== null) throw notHeld(found);
      const key = { customerId: found.customerId, creditTypeId: found.creditTypeId };
      const poolMembers = found.memberCustomerId === null ? undefined : [found.memberCustomerId];
      return { keys: [key], customerIds: [key.customerId], pinnedGrantIds: pinnedOf(found), reservationIds: [reservationId], poolMembers };
    },
    plan: (ctx) => {
      const current = ctx.reservationStatus(reservationId) ?? found.status;
      const key = { customerId: found.customerId, creditTypeId: found.creditTypeId };
      const slot = ctx.balance(key);
      if (actor === null && (current !== "held" || slot.kind === "busy")) return { value: null };
      // Resolved by a transaction this one waited for on the lock, or earlier in this group.
      if (current !== "held") throw notHeld({ ...found, status: current as ReservationRow["status"] });
      // Held nothing (observe, off): the balance may not exist, and is not needed.
      const before = found.mode === "observe" || found.mode === "off" ? (slot.kind === "loaded" ? slot.state : null) : loadedState(slot, key);
      return { value: resolve(ctx, found, resolution, before, actor) };
    },
  };
}

/** causeOf is what the entries and shadow entries of a resolution name as their cause. */
function causeOf(ctx: PlanContext, found: ReservationRow, status: Resolution["status"], actor: { caller: Caller; idempotency: Idempotency } | null) {
  return actor === null
    ? { reservationId: found.reservationId, requestId: null, actor: "system", reasonCode: "reservation_expired", effectiveAt: ctx.now }
    : { reservationId: found.reservationId, requestId: actor.idempotency.requestId, actor: actor.caller.keyId, reasonCode: found.featureKey ?? status, effectiveAt: ctx.now };
}

/**
 * settleMember moves a pool member's counter as its reservation resolves: the hold was
 * counted when it was placed, so a commit counts what it burned past the hold (within the
 * limit) or gives back what it did not burn, and a release or expiry gives back the hold.
 * A member detached since (or moved to another pool) is no longer counted on this pool.
 */
function settleMember(ctx: PlanContext, found: ReservationRow, committedAmount: bigint): void {
  const memberCustomerId = found.memberCustomerId;
  if (memberCustomerId === null) return;
  const membership = ctx.poolOf(memberCustomerId);
  if (membership === null || membership.parentCustomerId !== found.customerId) return;
  const key = { customerId: found.customerId, creditTypeId: found.creditTypeId };
  if (committedAmount > found.amount) spendAsMember(ctx, { memberCustomerId, membership }, key, committedAmount - found.amount, { enforce: true });
  else returnAsMember(ctx, memberCustomerId, key, found.amount - committedAmount);
}

/**
 * resolve plans a resolution by the mode the reservation was made under: an enforced one
 * releases its holds and burns what was used (under the kill switch even past the limit);
 * a forced one burns what was used, past the limit if it must; an observed or off one
 * records what was used in the shadow ledger. Every one of them writes its balance's row.
 */
function resolve(
  ctx: PlanContext,
  found: ReservationRow,
  resolution: Resolution,
  before: BalanceState | null,
  actor: { caller: Caller; idempotency: Idempotency } | null,
): ReservationResult {
  const { status, amount } = resolution;
  const nowMs = ctx.now.getTime();
  const key = { customerId: found.customerId, creditTypeId: found.creditTypeId };
  // A commit after the time to live is refused (the hold is void); a late release is
  // harmless and returns the same credits the expiry job would.
  if (status === "committed" && found.expiresAt.getTime() <= nowMs) {
    throw new LedgerError("rejected", "RESERVATION_EXPIRED", "the reservation's time to live ran out; its credits are being returned", { reservation_id: found.reservationId });
  }
  const committedAmount = status === "committed" ? amount : 0n;
  const cause = { ...causeOf(ctx, found, status, actor), memberCustomerId: found.memberCustomerId };
  let after = before;
  let overLimit = false;
  if (found.mode === "observe" || found.mode === "off") {
    if (committedAmount > 0n) {
      assert(cause.requestId !== null, "only a request commits");
      const shadow = { ...key, mode: found.mode, featureKey: found.featureKey ?? "", credits: committedAmount, effectiveAt: ctx.now };
      ctx.draft.shadow({ ...shadow, usageId: null, usageIndex: null, reservationId: found.reservationId, requestId: cause.requestId });
    }
    if (before !== null) ctx.draft.change(key, { kind: "planned", entries: [], state: before }, cause);
  } else {
    assert(before !== null, "a reservation that held or burns has its balance");
    settleMember(ctx, found, committedAmount);
    const forced = found.mode === "forced";
    const planned: Forced | Insufficient | Planned =
      status !== "committed"
        ? forced
          ? { kind: "planned", entries: [], state: before }
          : planRelease(before, found.holds, nowMs)
        : forced && committedAmount === 0n
          ? { kind: "planned", entries: [], state: before }
          : planCommit(before, found.holds, amount, nowMs, { force: forced || ctx.killSwitch });
    if (planned.kind === "insufficient") throw insufficientCredits(key.customerId, key.creditTypeId, planned.available, planned.required);
    ctx.draft.change(key, planned, cause);
    after = planned.state;
    overLimit = "overLimit" in planned && planned.overLimit === true;
  }
  ctx.draft.resolve({ customerId: key.customerId, reservationId: found.reservationId, status, committedAmount });
  const balance = after === null ? emptyView(key.creditTypeId) : totalsView(key.creditTypeId, after, nowMs);
  return { reservation: { ...found, status, committedAmount }, balance, overLimit };
}

/** commitOp burns the actual amount of a reservation and returns the rest. */
export function commitOp(caller: Caller, idempotency: Idempotency, input: { reservationId: string; amount: bigint }): WriteOp<ReservationResult> {
  return resolutionOp({ reservationId: input.reservationId, status: "committed", amount: input.amount }, { caller, idempotency }) as WriteOp<ReservationResult>;
}

/** expireReservationOp releases a reservation past its time to live (the expiry job); null when it was resolved meanwhile or its balance is busy. */
export function expireReservationOp(reservationId: string): WriteOp<ReservationResult | null> {
  return resolutionOp({ reservationId, status: "expired", amount: 0n }, null);
}

/** commit burns the actual amount of a reservation and returns the rest. */
export async function commit(deps: Deps, caller: Caller, idempotency: Idempotency, input: { reservationId: string; amount: bigint }): Promise<ReservationResult> {
  return deps.writes.submit(commitOp(caller, idempotency, input));
}

/** release returns every credit a reservation holds. */
export async function release(deps: Deps, caller: Caller, idempotency: Idempotency, input: { reservationId: string }): Promise<ReservationResult> {
  const op = resolutionOp({ reservationId: input.reservationId, status: "released", amount: 0n }, { caller, idempotency });
  return (await deps.writes.submit(op)) as ReservationResult;
}

/** CommitItem is one validated Commit of a batch. */
export interface CommitItem {
  idempotency: Idempotency;
  reservationId: string;
  amount: bigint;
}

/** commitBatch answers each Commit as the unary call would; one customer's items apply in request order. */
export async function commitBatch(deps: Deps, caller: Caller, items: readonly CommitItem[]): Promise<Outcome<ReservationResult>[]> {
  return deps.writes.submitAll(items.map((item) => commitOp(caller, item.idempotency, item)));
}
