// Commit and Release: resolve a held reservation exactly once. The balance lock is taken
// first; the conditional status update then proves the reservation was still held.
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { type Insufficient, type Planned, planCommit, planRelease } from "../ledger/plan.js";
import type { Tx } from "../store/database.js";
import { type ReservationRow, resolveReservation, selectReservation } from "../store/reservation-store.js";
import { loadBalance, totalsView, writeChange } from "./balance-change.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { insufficientCredits } from "./missing-balance.js";
import type { ReservationResult } from "./reserve.js";
import { runIdempotent } from "./run-idempotent.js";

/** commit burns the actual amount of a reservation and returns the rest. */
export async function commit(deps: Deps, caller: Caller, idempotency: Idempotency, input: { reservationId: string; amount: bigint }): Promise<ReservationResult> {
  return runIdempotent(deps, caller, idempotency, (tx) =>
    resolve(tx, deps.now, input.reservationId, "committed", input.amount, { caller, requestId: idempotency.requestId }),
  );
}

/** release returns every credit a reservation holds. */
export async function release(deps: Deps, caller: Caller, idempotency: Idempotency, input: { reservationId: string }): Promise<ReservationResult> {
  return runIdempotent(deps, caller, idempotency, (tx) =>
    resolve(tx, deps.now, input.reservationId, "released", 0n, { caller, requestId: idempotency.requestId }),
  );
}

/** expireReservation releases a reservation past its TTL (the expiry job); null when it was already resolved or busy. */
export async function expireReservation(tx: Tx, clock: () => Date, reservation: ReservationRow): Promise<ReservationResult | null> {
  const key = { customerId: reservation.customerId, creditTypeId: reservation.creditTypeId };
  const loaded = await loadBalance(tx, key, clock, pinnedOf(reservation), true);
  if (loaded === null) return null;
  const { state: before, now } = loaded;
  const resolved = await resolveReservation(tx, reservation, "expired", 0n);
  if (resolved === null) return null;
  const planned = planRelease(before, resolved.holds, now.getTime());
  await writeChange(tx, key, before, planned, { reservationId: reservation.reservationId, requestId: null, actor: "system", reasonCode: "reservation_expired", effectiveAt: now });
  return { reservation: resolved, balance: totalsView(key.creditTypeId, planned.state, now.getTime()) };
}

function pinnedOf(reservation: ReservationRow): string[] {
  return reservation.holds.flatMap((hold) => (hold.grantId === null ? [] : [hold.grantId]));
}

async function resolve(
  tx: Tx,
  clock: () => Date,
  reservationId: string,
  status: "committed" | "released",
  amount: bigint,
  actor: { caller: Caller; requestId: string },
): Promise<ReservationResult> {
  const found = await selectReservation(tx, reservationId);
  if (found === null) throw notFound("RESERVATION_NOT_FOUND", "reservation id", reservationId);
  const key = { customerId: found.customerId, creditTypeId: found.creditTypeId };
  const loaded = await loadBalance(tx, key, clock, pinnedOf(found));
  assert(loaded !== null, "a reservation's balance exists");
  const { state: before, now } = loaded;
  const resolved = await resolveReservation(tx, found, status, amount);
  if (resolved === null) throw notHeld(await selectReservation(tx, reservationId));
  // A commit after the time to live is refused (the hold is void); a late release is
  // harmless and returns the same credits the expiry job would.
  if (status === "committed" && resolved.expiresAt.getTime() <= now.getTime()) {
    throw new LedgerError("rejected", "RESERVATION_EXPIRED", "the reservation's time to live ran out; its credits are being returned", { reservation_id: reservationId });
  }
  const planned: Planned | Insufficient =
    status === "committed" ? planCommit(before, resolved.holds, amount, now.getTime()) : planRelease(before, resolved.holds, now.getTime());
  if (planned.kind === "insufficient") throw insufficientCredits(key.customerId, key.creditTypeId, planned.available, planned.required);
  await writeChange(tx, key, before, planned, {
    reservationId,
    requestId: actor.requestId,
    actor: actor.caller.keyId,
    reasonCode: resolved.featureKey ?? status,
    effectiveAt: now,
  });
  return { reservation: resolved, balance: totalsView(key.creditTypeId, planned.state, now.getTime()) };
}

function notHeld(reservation: ReservationRow | null): LedgerError {
  assert(reservation !== null && reservation.status !== "held", "a reservation that failed to resolve is resolved");
  return new LedgerError("rejected", "RESERVATION_NOT_HELD", `the reservation is already ${reservation.status}`, {
    reservation_id: reservation.reservationId,
    status: reservation.status,
  });
}
