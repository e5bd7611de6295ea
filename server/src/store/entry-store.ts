// Ledger entries: insert and read. Never updated or deleted (the database refuses).
import type { PlannedEntry } from "../ledger/balance-state.js";
import type { Db } from "./database.js";

/** EntryRow is a stored ledger entry. */
export interface EntryRow {
  entryId: bigint;
  customerId: string;
  creditTypeId: string;
  kind: PlannedEntry["kind"];
  amount: bigint;
  grantId: string | null;
  reservationId: string | null;
  requestId: string | null;
  actor: string;
  reasonCode: string;
  effectiveAt: Date;
  recordedAt: Date;
  usageId: string | null;
  /** written under the kill switch past the balance's overdraft limit. */
  overLimit: boolean;
  /** the pool member on whose behalf a pool owner's balance changed; null for the customer's own changes. */
  memberCustomerId: string | null;
}

/** entryColumns are the columns toEntryRow reads. */
export const entryColumns =
  "entry_id, customer_id, credit_type_id, kind, amount, grant_id, reservation_id, request_id, actor, reason_code, effective_at, recorded_at, usage_id, over_limit, member_customer_id";

/** toEntryRow converts a driver row read with entryColumns. */
export function toEntryRow(row: Record<string, unknown>): EntryRow {
  return {
    entryId: BigInt(row.entry_id as string),
    customerId: row.customer_id as string,
    creditTypeId: row.credit_type_id as string,
    kind: row.kind as EntryRow["kind"],
    amount: BigInt(row.amount as string),
    grantId: row.grant_id as string | null,
    reservationId: row.reservation_id as string | null,
    requestId: row.request_id as string | null,
    actor: row.actor as string,
    reasonCode: row.reason_code as string,
    effectiveAt: row.effective_at as Date,
    recordedAt: row.recorded_at as Date,
    usageId: row.usage_id === null ? null : String(row.usage_id),
    overLimit: row.over_limit === true,
    memberCustomerId: (row.member_customer_id as string | null) ?? null,
  };
}

/** EntryFilter narrows a listing: by effective time (startAt, endAt) and record time; the cursor is exclusive. */
export interface EntryFilter {
  customerId: string;
  creditTypeId: string;
  kinds: string[];
  startAt: Date | null;
  endAt: Date | null;
  recordStartAt: Date | null;
  recordEndAt: Date | null;
  beforeEntryId: bigint | null;
  limit: number;
  /** only entries this pool member caused; empty: all. */
  memberCustomerId: string;
}

/** selectEntries reads entries newest first. No locks. */
export async function selectEntries(tx: Db, filter: EntryFilter): Promise<EntryRow[]> {
  const result = await tx.query({
    name: "select_entries",
    text: `select ${entryColumns} from ledger_entries
           where customer_id = $1
             and ($2 = '' or credit_type_id = $2)
             and (cardinality($3::text[]) = 0 or kind = any($3::text[]))
             and ($4::timestamptz is null or effective_at >= $4)
             and ($5::timestamptz is null or effective_at < $5)
             and ($6::bigint is null or entry_id < $6)
             and ($8 = '' or member_customer_id = $8)
             and ($9::timestamptz is null or recorded_at >= $9)
             and ($10::timestamptz is null or recorded_at < $10)
           order by entry_id desc
           limit $7`,
    values: [
      filter.customerId, filter.creditTypeId, filter.kinds, filter.startAt, filter.endAt, filter.beforeEntryId?.toString() ?? null, filter.limit,
      filter.memberCustomerId, filter.recordStartAt, filter.recordEndAt,
    ],
  });
  return result.rows.map(toEntryRow);
}

/** selectEntriesOfUsage reads the entries caused by usage events, oldest first. No locks. */
export async function selectEntriesOfUsage(tx: Db, customerId: string, usageIds: string[]): Promise<EntryRow[]> {
  const result = await tx.query({
    name: "select_entries_of_usage",
    text: `select ${entryColumns} from ledger_entries where customer_id = $1 and usage_id = any($2::bigint[]) order by entry_id`,
    values: [customerId, usageIds],
  });
  return result.rows.map(toEntryRow);
}
