// The audit log: who did which administrative action, to what, when and why. A record
// is written in the transaction of the action it describes, so the two commit together.
import type { Db, Tx } from "./database.js";

/** AuditDetails are the JSON details of an action: at least its old and new values. */
export type AuditDetails = { old: unknown; new: unknown } & Record<string, unknown>;

/** AuditRecordRow is a stored audit record. */
export interface AuditRecordRow {
  auditId: bigint;
  actor: string;
  action: string;
  target: string;
  reason: string;
  details: AuditDetails;
  createdAt: Date;
  /** the request id of the call that wrote it (its log line's requestId); null when no call did (jobs, queue, webhook). */
  requestId: string | null;
}

/**
 * AuditRecordWrite is what a writer of an audit record gives. requestId is required, so that
 * every write site says which call it belongs to (caller.requestId) or that none does (null).
 */
export interface AuditRecordWrite {
  actor: string;
  action: string;
  target: string;
  reason: string;
  details: AuditDetails;
  /** the request id of the call the record is written for (Caller.requestId); null outside a call. */
  requestId: string | null;
}

const auditColumns = "audit_id, actor, action, target, reason, details, created_at, request_id";

function toAuditRecord(row: Record<string, unknown>): AuditRecordRow {
  return {
    auditId: BigInt(row.audit_id as string),
    actor: row.actor as string,
    action: row.action as string,
    target: row.target as string,
    reason: row.reason as string,
    details: row.details as AuditDetails,
    createdAt: row.created_at as Date,
    requestId: row.request_id as string | null,
  };
}

/**
 * insertAuditRecord records an administrative action. Expects the transaction that makes
 * the change, so that the record exists exactly when the change does. Details must hold
 * JSON values only (bigints as decimal strings).
 */
export async function insertAuditRecord(
  tx: Tx,
  record: AuditRecordWrite,
): Promise<AuditRecordRow> {
  const result = await tx.query({
    name: "insert_audit_record",
    text: `insert into audit_log (actor, action, target, reason, details, request_id) values ($1, $2, $3, $4, $5::jsonb, $6)
           returning ${auditColumns}`,
    values: [record.actor, record.action, record.target, record.reason, JSON.stringify(record.details), record.requestId],
  });
  return toAuditRecord(result.rows[0]);
}

/** selectAuditRecords reads records newest first, those with ids below beforeAuditId when it is set. No locks. */
export async function selectAuditRecords(db: Db, page: { beforeAuditId: bigint | null; limit: number }): Promise<AuditRecordRow[]> {
  const result = await db.query({
    name: "select_audit_records",
    text: `select ${auditColumns} from audit_log
           where ($1::bigint is null or audit_id < $1)
           order by audit_id desc
           limit $2`,
    values: [page.beforeAuditId?.toString() ?? null, page.limit],
  });
  return result.rows.map(toAuditRecord);
}

/**
 * selectAuditRecordsOfRequest reads the records of the call with a request id, newest first,
 * those with ids below beforeAuditId when it is set: an index scan of that call's few records
 * (audit_log_by_request_id). No locks.
 */
export async function selectAuditRecordsOfRequest(
  db: Db,
  page: { requestId: string; beforeAuditId: bigint | null; limit: number },
): Promise<AuditRecordRow[]> {
  const result = await db.query({
    name: "select_audit_records_of_request",
    text: `select ${auditColumns} from audit_log
           where request_id = $1 and ($2::bigint is null or audit_id < $2)
           order by request_id desc, audit_id desc
           limit $3`,
    values: [page.requestId, page.beforeAuditId?.toString() ?? null, page.limit],
  });
  return result.rows.map(toAuditRecord);
}
