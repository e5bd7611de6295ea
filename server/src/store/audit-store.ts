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
}

const auditColumns = "audit_id, actor, action, target, reason, details, created_at";

function toAuditRecord(row: Record<string, unknown>): AuditRecordRow {
  return {
    auditId: BigInt(row.audit_id as string),
    actor: row.actor as string,
    action: row.action as string,
    target: row.target as string,
    reason: row.reason as string,
    details: row.details as AuditDetails,
    createdAt: row.created_at as Date,
  };
}

/**
 * insertAuditRecord records an administrative action. Expects the transaction that makes
 * the change, so that the record exists exactly when the change does. Details must hold
 * JSON values only (bigints as decimal strings).
 */
export async function insertAuditRecord(
  tx: Tx,
  record: { actor: string; action: string; target: string; reason: string; details: AuditDetails },
): Promise<AuditRecordRow> {
  const result = await tx.query({
    name: "insert_audit_record",
    text: `insert into audit_log (actor, action, target, reason, details) values ($1, $2, $3, $4, $5::jsonb)
           returning ${auditColumns}`,
    values: [record.actor, record.action, record.target, record.reason, JSON.stringify(record.details)],
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
