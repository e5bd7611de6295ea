// Grant limits, the sources restricted roles may grant with, and what limited keys
// granted (the period sums). Amounts are bigint here and strings in SQL.
import type { Db, Tx } from "./database.js";

/** GrantLimitRow is a stored limit of a role or a key ('' credit type: every type). */
export interface GrantLimitRow {
  subjectKind: "role" | "key";
  subject: string;
  creditTypeId: string;
  perCallMax: bigint;
  periodMax: bigint;
  periodSeconds: number;
  updatedAt: Date;
}

const limitColumns = "subject_kind, subject, credit_type_id, per_call_max, period_max, period_seconds, updated_at";

function toGrantLimitRow(row: Record<string, unknown>): GrantLimitRow {
  return {
    subjectKind: row.subject_kind as "role" | "key",
    subject: row.subject as string,
    creditTypeId: row.credit_type_id as string,
    perCallMax: BigInt(row.per_call_max as string),
    periodMax: BigInt(row.period_max as string),
    periodSeconds: row.period_seconds as number,
    updatedAt: row.updated_at as Date,
  };
}

/** upsertGrantLimit sets a limit, replacing the one of the same subject and credit type. Row lock on it. */
export async function upsertGrantLimit(tx: Tx, limit: Omit<GrantLimitRow, "updatedAt">): Promise<GrantLimitRow> {
  const result = await tx.query({
    name: "upsert_grant_limit",
    text: `insert into grant_limits (subject_kind, subject, credit_type_id, per_call_max, period_max, period_seconds, updated_at)
           values ($1, $2, $3, $4, $5, $6, now())
           on conflict (subject_kind, subject, credit_type_id)
           do update set per_call_max = excluded.per_call_max, period_max = excluded.period_max,
                         period_seconds = excluded.period_seconds, updated_at = excluded.updated_at
           returning ${limitColumns}`,
    values: [limit.subjectKind, limit.subject, limit.creditTypeId, limit.perCallMax.toString(), limit.periodMax.toString(), limit.periodSeconds],
  });
  return toGrantLimitRow(result.rows[0]);
}

/** deleteGrantLimit removes a limit and returns it, or null when there was none. */
export async function deleteGrantLimit(tx: Tx, subject: { subjectKind: "role" | "key"; subject: string; creditTypeId: string }): Promise<GrantLimitRow | null> {
  const result = await tx.query({
    name: "delete_grant_limit",
    text: `delete from grant_limits where subject_kind = $1 and subject = $2 and credit_type_id = $3 returning ${limitColumns}`,
    values: [subject.subjectKind, subject.subject, subject.creditTypeId],
  });
  return result.rows.length === 0 ? null : toGrantLimitRow(result.rows[0]);
}

/**
 * selectGrantLimits reads the limits that may apply to a key of a role (keyId and role
 * set), or every limit (both null): role limits first. No locks.
 */
export async function selectGrantLimits(db: Db, subject: { keyId: string | null; role: string | null }): Promise<GrantLimitRow[]> {
  const result = await db.query({
    name: "select_grant_limits",
    text: `select ${limitColumns} from grant_limits
           where ($1::text is null and $2::text is null)
              or (subject_kind = 'key' and subject = $1) or (subject_kind = 'role' and subject = $2)
           order by subject_kind desc, subject, credit_type_id`,
    values: [subject.keyId, subject.role],
  });
  return result.rows.map(toGrantLimitRow);
}

/** GrantSourcesRow is a restricted role's sources. */
export interface GrantSourcesRow {
  role: string;
  sources: string[];
}

/** upsertGrantSources sets a role's sources. */
export async function upsertGrantSources(tx: Tx, row: GrantSourcesRow): Promise<GrantSourcesRow> {
  const result = await tx.query<{ role: string; sources: string[] }>({
    name: "upsert_grant_sources",
    text: `insert into grant_sources (role, sources, updated_at) values ($1, $2, now())
           on conflict (role) do update set sources = excluded.sources, updated_at = excluded.updated_at
           returning role, sources`,
    values: [row.role, row.sources],
  });
  return result.rows[0];
}

/** selectGrantSources reads every restricted role's sources, or one role's (role set). No locks. */
export async function selectGrantSources(db: Db, role: string | null): Promise<GrantSourcesRow[]> {
  const result = await db.query<{ role: string; sources: string[] }>({
    name: "select_grant_sources",
    text: "select role, sources from grant_sources where $1::text is null or role = $1 order by role",
    values: [role],
  });
  return result.rows;
}

/**
 * lockSupportTally takes the row lock of a key's tally for a credit type (creating it),
 * held to the end of the transaction: one grant at a time reads and adds to the key's
 * period sum. Expects the grant's write-group transaction, after its balance locks.
 */
export async function lockSupportTally(tx: Tx, tally: { keyId: string; creditTypeId: string }): Promise<void> {
  const result = await tx.query({
    name: "lock_support_tally",
    text: `insert into support_grant_tallies (key_id, credit_type_id) values ($1, $2)
           on conflict (key_id, credit_type_id) do update set key_id = excluded.key_id
           returning key_id`,
    values: [tally.keyId, tally.creditTypeId],
  });
  if (result.rows.length !== 1) throw new Error("lockSupportTally: the tally row was neither inserted nor locked");
}

/** selectSupportGrantSum is what a key granted of a credit type after a time. Expects the tally lock. */
export async function selectSupportGrantSum(tx: Tx, query: { keyId: string; creditTypeId: string; after: Date }): Promise<bigint> {
  const result = await tx.query<{ total: string }>({
    name: "select_support_grant_sum",
    text: `select coalesce(sum(amount), 0)::text as total from support_grants
           where key_id = $1 and credit_type_id = $2 and granted_at > $3`,
    values: [query.keyId, query.creditTypeId, query.after],
  });
  return BigInt(result.rows[0].total);
}

/** SupportGrantRow is one grant a limited key made. */
export interface SupportGrantRow {
  keyId: string;
  creditTypeId: string;
  grantedAt: Date;
  amount: bigint;
  grantId: string;
  customerId: string;
  reasonCode: string;
  ticketUrl: string;
}

/** insertSupportGrant records a limited key's grant. Expects the grant's transaction and the tally lock. */
export async function insertSupportGrant(tx: Tx, row: SupportGrantRow): Promise<void> {
  await tx.query({
    name: "insert_support_grant",
    text: `insert into support_grants (key_id, credit_type_id, granted_at, amount, grant_id, customer_id, reason_code, ticket_url)
           values ($1, $2, $3, $4, $5, $6, $7, $8)`,
    values: [row.keyId, row.creditTypeId, row.grantedAt, row.amount.toString(), row.grantId, row.customerId, row.reasonCode, row.ticketUrl],
  });
}
