// Reservations. A reservation changes state only under its balance row's lock, and only
// from "held": the conditional update is what makes it resolve exactly once.
import type { Hold } from "../ledger/plan.js";
import type { Db, Tx } from "./database.js";

/** ReservationStatus is where a reservation is in its life. */
export type ReservationStatus = "held" | "committed" | "released" | "expired";

/** ReservationRow is a stored reservation. */
export interface ReservationRow {
  reservationId: string;
  customerId: string;
  creditTypeId: string;
  featureKey: string | null;
  amount: bigint;
  holds: Hold[];
  status: ReservationStatus;
  committedAmount: bigint;
  expiresAt: Date;
}

const reservationColumns =
  "reservation_id, customer_id, credit_type_id, feature_key, amount, holds, status, committed_amount, expires_at";

function toReservationRow(row: Record<string, unknown>): ReservationRow {
  const holds = row.holds as { grantId: string | null; amount: string }[];
  return {
    reservationId: row.reservation_id as string,
    customerId: row.customer_id as string,
    creditTypeId: row.credit_type_id as string,
    featureKey: row.feature_key as string | null,
    amount: BigInt(row.amount as string),
    holds: holds.map((hold) => ({ grantId: hold.grantId, amount: BigInt(hold.amount) })),
    status: row.status as ReservationStatus,
    committedAmount: BigInt(row.committed_amount as string),
    expiresAt: row.expires_at as Date,
  };
}

/** selectReservation reads a reservation by id, or null. No locks: callers re-check under the balance lock. */
export async function selectReservation(tx: Db, reservationId: string): Promise<ReservationRow | null> {
  const result = await tx.query({
    name: "select_reservation",
    text: `select ${reservationColumns} from reservations where reservation_id = $1`,
    values: [reservationId],
  });
  return result.rows.length === 0 ? null : toReservationRow(result.rows[0]);
}

/** selectReservations reads several reservations by id; ids not found are absent from the map. */
export async function selectReservations(db: Db, reservationIds: string[]): Promise<Map<string, ReservationRow>> {
  const result = await db.query({
    name: "select_reservations",
    text: `select ${reservationColumns} from reservations where reservation_id = any($1::uuid[])`,
    values: [reservationIds],
  });
  return new Map(result.rows.map((row) => {
    const reservation = toReservationRow(row);
    return [reservation.reservationId, reservation];
  }));
}

/** selectReservationStatuses reads the current status of reservations; read after the balance lock, it is settled. */
export async function selectReservationStatuses(tx: Tx, reservationIds: string[]): Promise<Map<string, string>> {
  const result = await tx.query({
    name: "select_reservation_statuses",
    text: "select reservation_id, status from reservations where reservation_id = any($1::uuid[])",
    values: [reservationIds],
  });
  return new Map(result.rows.map((row) => [row.reservation_id as string, row.status as string]));
}

/**
 * resolveReservation moves a held reservation to its final status; null when it was no
 * longer held. Expects the balance row locked.
 */
export async function resolveReservation(
  tx: Tx,
  reservation: { customerId: string; reservationId: string },
  status: Exclude<ReservationStatus, "held">,
  committedAmount: bigint,
): Promise<ReservationRow | null> {
  const result = await tx.query({
    name: "resolve_reservation",
    text: `update reservations set status = $3, committed_amount = $4, resolved_at = now()
           where customer_id = $1 and reservation_id = $2 and status = 'held'
           returning ${reservationColumns}`,
    values: [reservation.customerId, reservation.reservationId, status, committedAmount.toString()],
  });
  return result.rows.length === 0 ? null : toReservationRow(result.rows[0]);
}

/** selectDueReservations finds held reservations past their expiry. No locks. */
export async function selectDueReservations(tx: Db, now: Date, limit: number): Promise<ReservationRow[]> {
  const result = await tx.query({
    name: "select_due_reservations",
    text: `select ${reservationColumns} from reservations where status = 'held' and expires_at <= $1 order by expires_at limit $2`,
    values: [now, limit],
  });
  return result.rows.map(toReservationRow);
}
