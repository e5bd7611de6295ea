// Pool memberships, members' limits and their counters. A change of membership or limit
// takes the customers' rows (lockPoolCustomers) and then their balance rows
// (touchPoolBalances), so that a write group deciding on the old membership either
// finished before or sees its balances changed and reads the membership again
// (balance-store.ts). Counters are written only by the write path (balance-writer.ts).
import type { MemberLimit, MemberUsage, PoolPeriod } from "../ledger/pool-limit.js";
import type { Db, Tx } from "./database.js";

/** PoolMemberRow is a member with its limits and counters, by credit type. */
export interface PoolMemberRow {
  memberCustomerId: string;
  parentCustomerId: string;
  createdAt: Date;
  limits: Map<string, MemberLimit>;
  usage: Map<string, MemberUsage>;
}

const memberSelect = `select m.member_customer_id, m.parent_customer_id, m.created_at,
    (select coalesce(jsonb_agg(jsonb_build_array(pl.credit_type_id, pl.limit_amount::text, pl.period) order by pl.credit_type_id), '[]')
     from pool_member_limits pl where pl.member_customer_id = m.member_customer_id) as limits,
    (select coalesce(jsonb_agg(jsonb_build_array(pu.credit_type_id, (extract(epoch from pu.period_start) * 1000)::bigint::text, pu.used::text)
       order by pu.credit_type_id), '[]')
     from pool_usage pu where pu.parent_customer_id = m.parent_customer_id and pu.member_customer_id = m.member_customer_id) as usage
  from pool_members m`;

function toPoolMemberRow(row: Record<string, unknown>): PoolMemberRow {
  return {
    memberCustomerId: row.member_customer_id as string,
    parentCustomerId: row.parent_customer_id as string,
    createdAt: row.created_at as Date,
    limits: new Map((row.limits as [string, string, string][]).map(([id, amount, period]) => [id, { amount: BigInt(amount), period: period as PoolPeriod }])),
    usage: new Map((row.usage as [string, string, string][]).map(([id, startMs, used]) => [id, { periodStartMs: Number(startMs), used: BigInt(used) }])),
  };
}

/** lockPoolCustomers locks customers' rows in id order; returns the ids that exist. Inside the membership change's transaction. */
export async function lockPoolCustomers(tx: Tx, customerIds: string[]): Promise<Set<string>> {
  const result = await tx.query({
    name: "lock_pool_customers",
    text: "select customer_id from customers where customer_id = any($1::text[]) order by customer_id for update",
    values: [customerIds],
  });
  return new Set(result.rows.map((row) => row.customer_id as string));
}

/**
 * touchPoolBalances locks every balance row of the customers, in the write path's key
 * order, and writes it, so that a write group that read the membership before this
 * transaction committed sees its balance changed (a new row version) and reads again.
 */
export async function touchPoolBalances(tx: Tx, customerIds: string[]): Promise<void> {
  await tx.query({
    name: "touch_pool_balances",
    text: `update balances b set updated_at = now() from (
             select customer_id, credit_type_id from balances where customer_id = any($1::text[])
             order by customer_id, credit_type_id for update) k
           where b.customer_id = k.customer_id and b.credit_type_id = k.credit_type_id`,
    values: [customerIds],
  });
}

/** selectPoolMember reads a customer's membership, or null when it is in no pool. No locks. */
export async function selectPoolMember(db: Db, memberCustomerId: string): Promise<PoolMemberRow | null> {
  const result = await db.query({ name: "select_pool_member", text: `${memberSelect} where m.member_customer_id = $1`, values: [memberCustomerId] });
  return result.rows.length === 0 ? null : toPoolMemberRow(result.rows[0]);
}

/** selectPoolMembers reads the members of a customer's pool, in id order, at most limit. No locks. */
export async function selectPoolMembers(db: Db, parentCustomerId: string, limit: number): Promise<PoolMemberRow[]> {
  const result = await db.query({
    name: "select_pool_members",
    text: `${memberSelect} where m.parent_customer_id = $1 order by m.member_customer_id limit $2`,
    values: [parentCustomerId, limit],
  });
  return result.rows.map(toPoolMemberRow);
}

/** countPoolMembers counts the members of a customer's pool. Under lockPoolCustomers of the parent. */
export async function countPoolMembers(tx: Tx, parentCustomerId: string): Promise<number> {
  const result = await tx.query({ name: "count_pool_members", text: "select count(*)::int as n from pool_members where parent_customer_id = $1", values: [parentCustomerId] });
  return result.rows[0].n as number;
}

/** insertPoolMember attaches a member. Under lockPoolCustomers of both customers. */
export async function insertPoolMember(tx: Tx, member: { memberCustomerId: string; parentCustomerId: string; createdBy: string }): Promise<void> {
  await tx.query({
    name: "insert_pool_member",
    text: "insert into pool_members (member_customer_id, parent_customer_id, created_by) values ($1, $2, $3)",
    values: [member.memberCustomerId, member.parentCustomerId, member.createdBy],
  });
}

/** deletePoolMember detaches a member, its limits with it; returns whether it was one. Under lockPoolCustomers. */
export async function deletePoolMember(tx: Tx, memberCustomerId: string): Promise<boolean> {
  const result = await tx.query({ name: "delete_pool_member", text: "delete from pool_members where member_customer_id = $1", values: [memberCustomerId] });
  return result.rowCount === 1;
}

/** upsertPoolMemberLimit sets a member's limit on a credit type (null: removes it). Under lockPoolCustomers. */
export async function upsertPoolMemberLimit(tx: Tx, memberCustomerId: string, creditTypeId: string, limit: MemberLimit | null): Promise<void> {
  if (limit === null) {
    await tx.query({
      name: "delete_pool_member_limit",
      text: "delete from pool_member_limits where member_customer_id = $1 and credit_type_id = $2",
      values: [memberCustomerId, creditTypeId],
    });
    return;
  }
  await tx.query({
    name: "upsert_pool_member_limit",
    text: `insert into pool_member_limits (member_customer_id, credit_type_id, limit_amount, period) values ($1, $2, $3, $4)
           on conflict (member_customer_id, credit_type_id) do update set limit_amount = excluded.limit_amount, period = excluded.period`,
    values: [memberCustomerId, creditTypeId, limit.amount.toString(), limit.period],
  });
}
