// Ledger entries: insert and read. Never updated or deleted (the database refuses).
import type { PlannedEntry } from "../ledger/balance-state.js";
import type { Db, Tx } from "./database.js";

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
}

/** EntryCause is what the entries of one change share. */
export interface EntryCause {
  customerId: string;
  creditTypeId: string;
  reservationId: string | null;
  requestId: string | null;
  actor: string;
  reasonCode: string;
  effectiveAt: Date;
}

/** entryColumns are the columns toEntryRow reads. */
export const entryColumns =
  "entry_id, customer_id, credit_type_id, kind, amount, grant_id, reservation_id, request_id, actor, reason_code, effective_at, recorded_at, usage_id";

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
  };
}

/** EntryBatch is the entries of one change to one balance, with their shared cause. */
export interface EntryBatch {
  cause: EntryCause;
  entries: PlannedEntry[];
  /** per entry, the usage event that caused it. */
  usageIds?: (string | null)[];
}

/**
 * insertEntryBatches appends the entries of many changes, in order, in one statement.
 * Expiry entries are the clock's doing, whatever transaction writes them: actor "system",
 * no request id. Expects the balance rows locked.
 */
export async function insertEntryBatches(tx: Tx, batches: EntryBatch[]): Promise<EntryRow[]> {
  const rows = batches.flatMap((batch) => batch.entries.map((entry, index) => ({ cause: batch.cause, entry, usageId: batch.usageIds?.[index] ?? null })));
  if (rows.length === 0) return [];
  const column = <T>(pick: (row: (typeof rows)[number]) => T) => rows.map(pick);
  const result = await tx.query({
    name: "insert_entries",
    text: `insert into ledger_entries (customer_id, credit_type_id, kind, amount, grant_id, reservation_id, request_id, actor, reason_code, effective_at, usage_id)
           select e.customer_id, e.credit_type_id, e.kind, e.amount, e.grant_id, e.reservation_id,
             case when e.kind = 'expire' then null else e.request_id end,
             case when e.kind = 'expire' then 'system' else e.actor end,
             case when e.kind = 'expire' then 'lot_expired' else e.reason_code end,
             e.effective_at, e.usage_id
           from unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::uuid[], $6::uuid[], $7::text[], $8::text[], $9::text[],
             $10::timestamptz[], $11::bigint[])
             with ordinality as e(customer_id, credit_type_id, kind, amount, grant_id, reservation_id, request_id, actor, reason_code,
               effective_at, usage_id, position)
           order by e.position
           returning ${entryColumns}`,
    values: [
      column((r) => r.cause.customerId), column((r) => r.cause.creditTypeId), column((r) => r.entry.kind), column((r) => r.entry.amount.toString()),
      column((r) => r.entry.grantId), column((r) => r.cause.reservationId), column((r) => r.cause.requestId), column((r) => r.cause.actor),
      column((r) => r.cause.reasonCode),
      column((r) => (r.entry.effectiveAtMs === undefined ? r.cause.effectiveAt : new Date(r.entry.effectiveAtMs))),
      column((r) => r.usageId),
    ],
  });
  if (result.rows.length !== rows.length) throw new Error("assertion failed: every entry is inserted");
  return result.rows.map(toEntryRow).sort((a, b) => (a.entryId < b.entryId ? -1 : 1));
}

/** EntryFilter narrows a listing. Times are effective times; the cursor is exclusive. */
export interface EntryFilter {
  customerId: string;
  creditTypeId: string;
  kinds: string[];
  startAt: Date | null;
  endAt: Date | null;
  beforeEntryId: bigint | null;
  limit: number;
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
           order by entry_id desc
           limit $7`,
    values: [filter.customerId, filter.creditTypeId, filter.kinds, filter.startAt, filter.endAt, filter.beforeEntryId?.toString() ?? null, filter.limit],
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
