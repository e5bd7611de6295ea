// Disputes: a customer's claim about its ledger lines, its notes (append-only) and its
// resolution. Not on the write path: a dispute changes no balance; a refund that resolves
// one is written by the refund's op, with the dispute's update in its transaction.
import type { Db, Tx } from "./database.js";

/** DisputeStatus is where a dispute is. */
export type DisputeStatus = "open" | "investigating" | "resolved_refunded" | "rejected";

/** DisputeNoteRow is one note. */
export interface DisputeNoteRow {
  author: string;
  text: string;
  createdAt: Date;
}

/** DisputeRow is a stored dispute, without its notes. */
export interface DisputeRow {
  disputeId: string;
  seq: bigint;
  customerId: string;
  status: DisputeStatus;
  entryIds: string[];
  description: string;
  openedBy: string;
  owner: string | null;
  openedAt: Date;
  firstResponseDueAt: Date;
  firstResponseAt: Date | null;
  resolutionDueAt: Date;
  resolvedAt: Date | null;
  resolvedBy: string | null;
  rejectReason: string;
}

const disputeColumns =
  "dispute_id, seq, customer_id, status, entry_ids::text[] as entry_ids, description, opened_by, owner, opened_at, first_response_due_at, first_response_at, resolution_due_at, resolved_at, resolved_by, reject_reason";

function toDisputeRow(row: Record<string, unknown>): DisputeRow {
  return {
    disputeId: row.dispute_id as string,
    seq: BigInt(row.seq as string),
    customerId: row.customer_id as string,
    status: row.status as DisputeStatus,
    entryIds: row.entry_ids as string[],
    description: row.description as string,
    openedBy: row.opened_by as string,
    owner: (row.owner as string | null) ?? null,
    openedAt: row.opened_at as Date,
    firstResponseDueAt: row.first_response_due_at as Date,
    firstResponseAt: (row.first_response_at as Date | null) ?? null,
    resolutionDueAt: row.resolution_due_at as Date,
    resolvedAt: (row.resolved_at as Date | null) ?? null,
    resolvedBy: (row.resolved_by as string | null) ?? null,
    rejectReason: row.reject_reason as string,
  };
}

/** countCustomerEntries counts which of entryIds are entries of the customer. No locks. */
export async function countCustomerEntries(db: Db, customerId: string, entryIds: string[]): Promise<number> {
  const result = await db.query({
    name: "count_customer_entries",
    text: "select count(*)::int as found from ledger_entries where customer_id = $1 and entry_id = any($2::bigint[])",
    values: [customerId, entryIds],
  });
  return result.rows[0].found as number;
}

/** insertDispute records a dispute opened. */
export async function insertDispute(tx: Tx, row: Omit<DisputeRow, "seq" | "firstResponseAt" | "resolvedAt" | "resolvedBy" | "rejectReason" | "owner">): Promise<DisputeRow> {
  const result = await tx.query({
    name: "insert_dispute",
    text: `insert into disputes (dispute_id, customer_id, status, entry_ids, description, opened_by, opened_at, first_response_due_at, resolution_due_at)
           values ($1, $2, $3, $4::bigint[], $5, $6, $7, $8, $9) returning ${disputeColumns}`,
    values: [row.disputeId, row.customerId, row.status, row.entryIds, row.description, row.openedBy, row.openedAt, row.firstResponseDueAt, row.resolutionDueAt],
  });
  return toDisputeRow(result.rows[0]);
}

/** selectDispute reads a dispute, or null; lock "update" locks its row for this transaction. */
export async function selectDispute(db: Db, disputeId: string, lock: "none" | "update"): Promise<DisputeRow | null> {
  const result = await db.query({
    name: `select_dispute_${lock}`,
    text: `select ${disputeColumns} from disputes where dispute_id = $1${lock === "update" ? " for update" : ""}`,
    values: [disputeId],
  });
  return result.rows.length === 0 ? null : toDisputeRow(result.rows[0]);
}

/** DisputeFilter narrows the queue; afterSeq is the exclusive cursor. */
export interface DisputeFilter {
  status: DisputeStatus | null;
  owner: string;
  customerId: string;
  overdueAt: Date | null;
  afterSeq: bigint | null;
  limit: number;
}

/** selectDisputes reads a page of the queue, oldest first. No locks. */
export async function selectDisputes(db: Db, filter: DisputeFilter): Promise<DisputeRow[]> {
  const result = await db.query({
    name: "select_disputes",
    text: `select ${disputeColumns} from disputes
           where ($1::text is null or status = $1)
             and ($2 = '' or owner = $2)
             and ($3 = '' or customer_id = $3)
             and ($4::timestamptz is null or (first_response_at is null and first_response_due_at < $4)
                  or (resolved_at is null and resolution_due_at < $4))
             and ($5::bigint is null or seq > $5)
           order by seq limit $6`,
    values: [filter.status, filter.owner, filter.customerId, filter.overdueAt, filter.afterSeq?.toString() ?? null, filter.limit],
  });
  return result.rows.map(toDisputeRow);
}

/** selectDisputeNotes reads a dispute's notes, oldest first. No locks. */
export async function selectDisputeNotes(db: Db, disputeId: string): Promise<DisputeNoteRow[]> {
  const result = await db.query({
    name: "select_dispute_notes",
    text: "select author, text, created_at from dispute_notes where dispute_id = $1 order by note_id",
    values: [disputeId],
  });
  return result.rows.map((row) => ({ author: row.author as string, text: row.text as string, createdAt: row.created_at as Date }));
}

/** insertDisputeNote appends a note. Expects the dispute's row locked. */
export async function insertDisputeNote(tx: Tx, disputeId: string, note: { author: string; text: string }): Promise<void> {
  await tx.query({
    name: "insert_dispute_note",
    text: "insert into dispute_notes (dispute_id, author, text) values ($1, $2, $3)",
    values: [disputeId, note.author, note.text],
  });
}

/**
 * updateDispute writes a dispute's owner, status and resolution; a first response is
 * recorded once (at is kept when set). Expects its row locked; only an unresolved dispute
 * changes: null when it was resolved meanwhile.
 */
export async function updateDispute(
  tx: Tx,
  disputeId: string,
  change: { status: DisputeStatus; owner: string | null; respondedAt: Date; resolvedAt: Date | null; resolvedBy: string | null; rejectReason: string },
): Promise<DisputeRow | null> {
  const result = await tx.query({
    name: "update_dispute",
    text: `update disputes set status = $2, owner = $3, first_response_at = coalesce(first_response_at, $4), resolved_at = $5, resolved_by = $6, reject_reason = $7
           where dispute_id = $1 and resolved_at is null returning ${disputeColumns}`,
    values: [disputeId, change.status, change.owner, change.respondedAt, change.resolvedAt, change.resolvedBy, change.rejectReason],
  });
  return result.rows.length === 0 ? null : toDisputeRow(result.rows[0]);
}
