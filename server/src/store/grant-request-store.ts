// Grant requests: grants asked for above the asker's limit, and their decisions.
import type { Db, Tx } from "./database.js";

/** GrantRequestRow is a stored request; a pending one past expiresAt is expired. */
export interface GrantRequestRow {
  grantRequestId: string;
  requesterKeyId: string;
  customerId: string;
  creditTypeId: string;
  amount: bigint;
  source: string;
  reasonCode: string;
  note: string;
  ticketUrl: string;
  priority: number;
  effectiveAt: Date | null;
  lotExpiresAt: Date | null;
  costBasisMicros: bigint;
  status: "pending" | "approved" | "rejected";
  createdAt: Date;
  expiresAt: Date;
  deciderKeyId: string | null;
  decidedAt: Date | null;
  decisionReason: string;
  grantId: string | null;
}

const columns = `grant_request_id, requester_key_id, customer_id, credit_type_id, amount, source, reason_code, note, ticket_url,
  priority, effective_at, lot_expires_at, cost_basis_micros, status, created_at, expires_at, decider_key_id, decided_at,
  decision_reason, grant_id`;

function toGrantRequestRow(row: Record<string, unknown>): GrantRequestRow {
  return {
    grantRequestId: row.grant_request_id as string,
    requesterKeyId: row.requester_key_id as string,
    customerId: row.customer_id as string,
    creditTypeId: row.credit_type_id as string,
    amount: BigInt(row.amount as string),
    source: row.source as string,
    reasonCode: row.reason_code as string,
    note: row.note as string,
    ticketUrl: row.ticket_url as string,
    priority: row.priority as number,
    effectiveAt: row.effective_at as Date | null,
    lotExpiresAt: row.lot_expires_at as Date | null,
    costBasisMicros: BigInt(row.cost_basis_micros as string),
    status: row.status as GrantRequestRow["status"],
    createdAt: row.created_at as Date,
    expiresAt: row.expires_at as Date,
    deciderKeyId: row.decider_key_id as string | null,
    decidedAt: row.decided_at as Date | null,
    decisionReason: row.decision_reason as string,
    grantId: row.grant_id as string | null,
  };
}

/** NewGrantRequest is a request to insert, pending. */
export type NewGrantRequest = Omit<GrantRequestRow, "status" | "deciderKeyId" | "decidedAt" | "decisionReason" | "grantId">;

/** insertGrantRequest files a pending request. Expects the transaction of the write group that decided it. */
export async function insertGrantRequest(tx: Tx, row: NewGrantRequest): Promise<void> {
  await tx.query({
    name: "insert_grant_request",
    text: `insert into grant_requests (grant_request_id, requester_key_id, customer_id, credit_type_id, amount, source, reason_code,
             note, ticket_url, priority, effective_at, lot_expires_at, cost_basis_micros, status, created_at, expires_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending', $14, $15)`,
    values: [
      row.grantRequestId, row.requesterKeyId, row.customerId, row.creditTypeId, row.amount.toString(), row.source, row.reasonCode,
      row.note, row.ticketUrl, row.priority, row.effectiveAt, row.lotExpiresAt, row.costBasisMicros.toString(), row.createdAt, row.expiresAt,
    ],
  });
}

/** selectGrantRequest reads one request; "update" locks its row to the end of the transaction. */
export async function selectGrantRequest(db: Db, grantRequestId: string, lock: "none" | "update"): Promise<GrantRequestRow | null> {
  const result = await db.query({
    name: `select_grant_request_${lock}`,
    text: `select ${columns} from grant_requests where grant_request_id = $1${lock === "update" ? " for update" : ""}`,
    values: [grantRequestId],
  });
  return result.rows.length === 0 ? null : toGrantRequestRow(result.rows[0]);
}

/**
 * updateGrantRequestDecided records a decision on a pending request, only if it is still
 * pending: returns the row decided, or null when another decision came first.
 */
export async function updateGrantRequestDecided(
  tx: Tx,
  decision: { grantRequestId: string; status: "approved" | "rejected"; deciderKeyId: string; decidedAt: Date; reason: string; grantId: string | null },
): Promise<GrantRequestRow | null> {
  const result = await tx.query({
    name: "update_grant_request_decided",
    text: `update grant_requests set status = $2, decider_key_id = $3, decided_at = $4, decision_reason = $5, grant_id = $6
           where grant_request_id = $1 and status = 'pending'
           returning ${columns}`,
    values: [decision.grantRequestId, decision.status, decision.deciderKeyId, decision.decidedAt, decision.reason, decision.grantId],
  });
  return result.rows.length === 0 ? null : toGrantRequestRow(result.rows[0]);
}

/** GrantRequestFilter narrows a listing; status "expired" is pending past its expiry at `now`. */
export interface GrantRequestFilter {
  status: "pending" | "approved" | "rejected" | "expired" | null;
  requesterKeyId: string | null;
  customerId: string | null;
  now: Date;
  /** the last row of the previous page (newest first). */
  after: { createdAt: Date; grantRequestId: string } | null;
  limit: number;
}

/** selectGrantRequests reads a page of requests, newest first. No locks. */
export async function selectGrantRequests(db: Db, filter: GrantRequestFilter): Promise<GrantRequestRow[]> {
  const result = await db.query({
    name: "select_grant_requests",
    text: `select ${columns} from grant_requests
           where ($1::text is null
                  or ($1 = 'pending' and status = 'pending' and expires_at > $3)
                  or ($1 = 'expired' and status = 'pending' and expires_at <= $3)
                  or ($1 in ('approved', 'rejected') and status = $1))
             and ($2::text is null or requester_key_id = $2)
             and ($4::timestamptz is null or (created_at, grant_request_id) < ($4, $5::uuid))
             and ($7::text is null or customer_id = $7)
           order by created_at desc, grant_request_id desc
           limit $6`,
    values: [filter.status, filter.requesterKeyId, filter.now, filter.after?.createdAt ?? null, filter.after?.grantRequestId ?? null, filter.limit, filter.customerId],
  });
  return result.rows.map(toGrantRequestRow);
}
