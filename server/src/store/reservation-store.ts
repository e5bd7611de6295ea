// Reservations as stored, and the expiry job's scan for due ones. A reservation changes
// state only under its balance row's lock, and only from "held": the writer's conditional
// update (balance-writer.ts) is what makes it resolve exactly once.
import type { Hold } from "../ledger/plan.js";
import type { Db } from "./database.js";

/** ReservationStatus is where a reservation is in its life. */
export type ReservationStatus = "held" | "committed" | "released" | "expired";

/**
 * ReservationMode is what a reservation was made under, which decides its commit:
 * "enforce" holds and burns; "observe" and "off" hold nothing and record their commit in
 * the shadow ledger; "forced" (the kill switch, without cover) holds nothing and burns at
 * commit even past the overdraft limit.
 */
export type ReservationMode = "enforce" | "observe" | "off" | "forced";

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
  mode: ReservationMode;
  /** the pool member that placed it on its pool owner's balance (customerId); null for the customer's own. */
  memberCustomerId: string | null;
}

/** reservationColumns are the columns toReservationRow reads. */
export const reservationColumns =
  "reservation_id, customer_id, credit_type_id, feature_key, amount, holds, status, committed_amount, expires_at, mode, member_customer_id";

/** toReservationRow reads a row selected with reservationColumns. */
export function toReservationRow(row: Record<string, unknown>): ReservationRow {
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
    mode: row.mode as ReservationMode,
    memberCustomerId: (row.member_customer_id as string | null | undefined) ?? null,
  };
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

/** ReservationCursor is where a page of a customer's reservations ended: its last row's creation time (µs since the epoch) and id. */
export interface ReservationCursor {
  createdAtMicros: bigint;
  reservationId: string;
}

/**
 * selectCustomerReservations reads a customer's reservations newest first (creation time,
 * then id, descending: many share a creation time, that of their group's transaction),
 * only the held ones unless includeResolved, after the cursor. Each row carries its
 * creation time in microseconds, exactly (a Date holds milliseconds), for the next cursor.
 * Reads by the primary key's customer_id prefix; no locks.
 */
export async function selectCustomerReservations(
  db: Db,
  filter: { customerId: string; includeResolved: boolean; after: ReservationCursor | null; limit: number },
): Promise<(ReservationRow & { createdAtMicros: bigint })[]> {
  const result = await db.query({
    name: "select_customer_reservations",
    text: `select ${reservationColumns}, (extract(epoch from created_at) * 1000000)::bigint::text as created_at_micros
           from reservations
           where customer_id = $1 and ($2 or status = 'held')
             and ($3::bigint is null or (created_at, reservation_id) <
               (timestamptz 'epoch' + ($3::bigint / 1000000) * interval '1 second' + ($3::bigint % 1000000) * interval '1 microsecond', $4::uuid))
           order by created_at desc, reservation_id desc
           limit $5`,
    values: [filter.customerId, filter.includeResolved, filter.after?.createdAtMicros.toString() ?? null, filter.after?.reservationId ?? null, filter.limit],
  });
  return result.rows.map((row) => ({ ...toReservationRow(row), createdAtMicros: BigInt(row.created_at_micros as string) }));
}
