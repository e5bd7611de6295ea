// Commit and Release: resolve a held reservation exactly once. The balance lock is taken
// first; the conditional status update, written with the entries and the claim on the
// request id in one statement, then proves the reservation was still held.
import { LedgerError, notFound } from "../errors.js";
import { assert, type BalanceState } from "../ledger/balance-state.js";
import { type BalanceChange, type IdempotencyWrite, writeBalanceChange } from "../store/change-store.js";
import { type Insufficient, type Planned, planCommit, planRelease } from "../ledger/plan.js";
import type { Tx } from "../store/database.js";
import { type ReservationRow, resolveReservation, selectReservation } from "../store/reservation-store.js";
import { changeOf, loadBalance, totalsView, writeChange } from "./balance-change.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { insufficientCredits } from "./missing-balance.js";
import type { ReservationResult } from "./reserve.js";
import { type IdempotencyClaim, runIdempotent } from "./run-idempotent.js";

/** commit burns the actual amount of a reservation and returns the rest. */
export async function commit(deps: Deps, caller: Caller, idempotency: Idempotency, input: { reservationId: string; amount: bigint }): Promise<ReservationResult> {
  return runIdempotent(deps, caller, idempotency, (tx, claim) =>
    resolve(tx, deps.now, input.reservationId, "committed", input.amount, { caller, requestId: idempotency.requestId, claim }),
  );
}

/** release returns every credit a reservation holds. */
export async function release(deps: Deps, caller: Caller, idempotency: Idempotency, input: { reservationId: string }): Promise<ReservationResult> {
  return runIdempotent(deps, caller, idempotency, (tx, claim) =>
    resolve(tx, deps.now, input.reservationId, "released", 0n, { caller, requestId: idempotency.requestId, claim }),
  );
}

/** expireReservation releases a reservation past its TTL (the expiry job); null when it was already resolved or busy. */
export async function expireReservation(tx: Tx, clock: () => Date, reservation: ReservationRow): Promise<ReservationResult | null> {
  const key = { customerId: reservation.customerId, creditTypeId: reservation.creditTypeId };
  const loaded = await loadBalance(tx, key, clock, { pinnedGrantIds: pinnedOf(reservation), skipLocked: true });
  if (loaded === null) return null;
  const { state: before, now } = loaded;
  const resolved = await resolveReservation(tx, reservation, "expired", 0n);
  if (resolved === null) return null;
  const planned = planRelease(before, resolved.holds, now.getTime());
  await writeChange(tx, key, before, planned, { reservationId: reservation.reservationId, requestId: null, actor: "system", reasonCode: "reservation_expired", effectiveAt: now });
  return { reservation: resolved, balance: totalsView(key.creditTypeId, planned.state, now.getTime()) };
}

/** pinnedOf lists the lots a reservation holds credits in. */
export function pinnedOf(reservation: ReservationRow): string[] {
  return reservation.holds.flatMap((hold) => (hold.grantId === null ? [] : [hold.grantId]));
}

async function resolve(
  tx: Tx,
  clock: () => Date,
  reservationId: string,
  status: "committed" | "released",
  amount: bigint,
  actor: { caller: Caller; requestId: string; claim: IdempotencyClaim<ReservationResult> },
): Promise<ReservationResult> {
  const found = await selectReservation(tx, reservationId);
  if (found === null) throw notFound("RESERVATION_NOT_FOUND", "reservation id", reservationId);
  // A status only ever moves away from held: one read without the lock already settles a resolved one.
  if (found.status !== "held") throw notHeld(found);
  const key = { customerId: found.customerId, creditTypeId: found.creditTypeId };
  const loaded = await loadBalance(tx, key, clock, { pinnedGrantIds: pinnedOf(found), reservationId });
  assert(loaded !== null, "a reservation's balance exists");
  const { state: before, now } = loaded;
  // Resolved by a transaction this one waited for on the lock: plan nothing on stale holds.
  if (loaded.reservationStatus !== "held") throw notHeld(await selectReservation(tx, reservationId));
  return (await writeResolution(tx, { caller: actor.caller, requestId: actor.requestId, found, before, now, status, amount, claimRow: actor.claim.rowFor })).result;
}

/** ResolutionInput is one resolution to plan against a balance already locked by this transaction, its reservation known to be held. */
export interface ResolutionInput {
  caller: Caller;
  requestId: string;
  found: ReservationRow;
  before: BalanceState;
  now: Date;
  status: "committed" | "released";
  amount: bigint;
  claimRow: (result: ReservationResult) => IdempotencyWrite;
}

/**
 * planResolutionChange plans a commit or release of a held reservation on its locked
 * balance: the result, the balance after it, and the change to write (status change,
 * entries, claim), so that several can be planned in turn under one lock and written
 * together.
 */
export function planResolutionChange(input: ResolutionInput): { result: ReservationResult; state: BalanceState; change: BalanceChange } {
  const { found, before, now, status, amount } = input;
  const reservationId = found.reservationId;
  const key = { customerId: found.customerId, creditTypeId: found.creditTypeId };
  // A commit after the time to live is refused (the hold is void); a late release is
  // harmless and returns the same credits the expiry job would.
  if (status === "committed" && found.expiresAt.getTime() <= now.getTime()) {
    throw new LedgerError("rejected", "RESERVATION_EXPIRED", "the reservation's time to live ran out; its credits are being returned", { reservation_id: reservationId });
  }
  const planned: Planned | Insufficient =
    status === "committed" ? planCommit(before, found.holds, amount, now.getTime()) : planRelease(before, found.holds, now.getTime());
  if (planned.kind === "insufficient") throw insufficientCredits(key.customerId, key.creditTypeId, planned.available, planned.required);
  const resolved: ReservationRow = { ...found, status, committedAmount: status === "committed" ? amount : 0n };
  const result = { reservation: resolved, balance: totalsView(key.creditTypeId, planned.state, now.getTime()) };
  const cause = { reservationId, requestId: input.requestId, actor: input.caller.keyId, reasonCode: found.featureKey ?? status, effectiveAt: now };
  const change = changeOf(key, before, planned, cause, [], {
    reservation: { kind: "resolve", reservationId, status, committedAmount: resolved.committedAmount },
    idempotency: input.claimRow(result),
  });
  return { result, state: planned.state, change };
}

/** writeResolution plans a resolution and writes it in one statement. */
export async function writeResolution(tx: Tx, input: ResolutionInput): Promise<{ result: ReservationResult; state: BalanceState }> {
  const { result, state, change } = planResolutionChange(input);
  const written = await writeBalanceChange(tx, change);
  assert(written.reservationWritten, "a reservation held under the balance lock is resolved");
  return { result, state };
}

/** notHeld is the refusal to resolve a reservation that is no longer held. */
export function notHeld(reservation: ReservationRow | null): LedgerError {
  assert(reservation !== null && reservation.status !== "held", "a reservation that failed to resolve is resolved");
  return new LedgerError("rejected", "RESERVATION_NOT_HELD", `the reservation is already ${reservation.status}`, {
    reservation_id: reservation.reservationId,
    status: reservation.status,
  });
}
