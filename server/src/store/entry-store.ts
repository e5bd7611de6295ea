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

const entryColumns =
  "entry_id, customer_id, credit_type_id, kind, amount, grant_id, reservation_id, request_id, actor, reason_code, effective_at, recorded_at";

function toEntryRow(row: Record<string, unknown>): EntryRow {
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
  };
}

/**
 * insertEntries appends entries in order, in one statement. Expiry entries are the
 * clock's doing, whatever transaction writes them: actor "system", no request id.
 * Expects the balance row locked.
 */
export async function insertEntries(tx: Tx, cause: EntryCause, entries: PlannedEntry[]): Promise<EntryRow[]> {
  if (entries.length === 0) return [];
  const result = await tx.query({
    name: "insert_entries",
    text: `insert into ledger_entries (customer_id, credit_type_id, kind, amount, grant_id, reservation_id, request_id, actor, reason_code, effective_at)
           select $1, $2, e.kind, e.amount, e.grant_id, $6,
             case when e.kind = 'expire' then null else $7 end,
             case when e.kind = 'expire' then 'system' else $8 end,
             case when e.kind = 'expire' then 'lot_expired' else $9 end,
             coalesce(e.effective_at, $10)
           from unnest($3::text[], $4::bigint[], $5::uuid[], $11::timestamptz[])
             with ordinality as e(kind, amount, grant_id, effective_at, position)
           order by e.position
           returning ${entryColumns}`,
    values: [
      cause.customerId, cause.creditTypeId,
      entries.map((entry) => entry.kind), entries.map((entry) => entry.amount.toString()), entries.map((entry) => entry.grantId),
      cause.reservationId, cause.requestId, cause.actor, cause.reasonCode, cause.effectiveAt,
      entries.map((entry) => (entry.effectiveAtMs === undefined ? null : new Date(entry.effectiveAtMs))),
    ],
  });
  if (result.rows.length !== entries.length) throw new Error("assertion failed: every entry is inserted");
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
