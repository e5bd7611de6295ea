// Pool membership: attach a member to a pool owner, detach it, set its limits, list a
// pool. Each mutation is idempotent (runIdempotent) and audited, and takes the customers'
// rows and then their balances' (pool-store.ts) so that the write path never decides on
// a membership that changed under it.
import { invalid, LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { type MemberLimit, type PoolPeriod, usedNow } from "../ledger/pool-limit.js";
import { limits } from "../limits.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { customerExists, selectCreditType } from "../store/catalog-store.js";
import { type Tx, withSnapshot } from "../store/database.js";
import {
  countPoolMembers,
  deletePoolMember,
  insertPoolMember,
  lockPoolCustomers,
  type PoolMemberRow,
  selectPoolMember,
  selectPoolMembers,
  touchPoolBalances,
  upsertPoolMemberLimit,
} from "../store/pool-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { runIdempotent } from "./run-idempotent.js";

/** PoolMemberView is a member as an answer shows it: its limits, and what it used this period. */
export interface PoolMemberView {
  memberCustomerId: string;
  parentCustomerId: string;
  attachedAt: Date;
  limits: { creditTypeId: string; amount: bigint; period: PoolPeriod }[];
  usage: { creditTypeId: string; used: bigint; periodStart: Date }[];
}

/** toPoolMemberView shows a member as of nowMs: a counter of an earlier period shows zero. */
export function toPoolMemberView(row: PoolMemberRow, nowMs: number): PoolMemberView {
  const creditTypeIds = [...new Set([...row.limits.keys(), ...row.usage.keys()])].sort();
  return {
    memberCustomerId: row.memberCustomerId,
    parentCustomerId: row.parentCustomerId,
    attachedAt: row.createdAt,
    limits: [...row.limits].map(([creditTypeId, limit]) => ({ creditTypeId, amount: limit.amount, period: limit.period })),
    usage: creditTypeIds.map((creditTypeId) => {
      const current = usedNow(row.usage.get(creditTypeId) ?? null, row.limits.get(creditTypeId) ?? null, nowMs);
      return { creditTypeId, used: current.used, periodStart: new Date(current.periodStartMs) };
    }),
  };
}

/** lockCustomers locks the customers of a membership change; CUSTOMER_NOT_FOUND for one that does not exist. */
async function lockCustomers(tx: Tx, customerIds: string[]): Promise<void> {
  const found = await lockPoolCustomers(tx, customerIds);
  const missing = customerIds.find((id) => !found.has(id));
  if (missing !== undefined) throw notFound("CUSTOMER_NOT_FOUND", "customer id", missing);
}

/** requireMember reads a member under its customer's lock, or refuses with POOL_MEMBER_NOT_FOUND. */
async function requireMember(tx: Tx, memberCustomerId: string): Promise<PoolMemberRow> {
  await lockCustomers(tx, [memberCustomerId]);
  const member = await selectPoolMember(tx, memberCustomerId);
  if (member === null) throw notFound("POOL_MEMBER_NOT_FOUND", "pool member", memberCustomerId);
  return member;
}

/** refuseAttach checks that a member may join a parent's pool: not pooled, and no nesting. */
async function refuseAttach(tx: Tx, input: { parentCustomerId: string; memberCustomerId: string }): Promise<void> {
  const pooled = await selectPoolMember(tx, input.memberCustomerId);
  if (pooled !== null) {
    throw new LedgerError("rejected", "ALREADY_POOLED", `customer ${input.memberCustomerId} is already a member of ${pooled.parentCustomerId}'s pool; detach it first`, {
      customer_id: input.memberCustomerId,
      parent_customer_id: pooled.parentCustomerId,
    });
  }
  const parentPool = await selectPoolMember(tx, input.parentCustomerId);
  const memberOwns = (await countPoolMembers(tx, input.memberCustomerId)) > 0;
  if (parentPool !== null || memberOwns) {
    const message = parentPool !== null ? `parent ${input.parentCustomerId} is itself a pool member` : `customer ${input.memberCustomerId} owns a pool`;
    throw new LedgerError("rejected", "POOL_NESTING", `${message}: pools are one level deep`, { customer_id: input.memberCustomerId, parent_customer_id: input.parentCustomerId });
  }
  if ((await countPoolMembers(tx, input.parentCustomerId)) >= limits.poolMembersMax) {
    throw new LedgerError("rejected", "TOO_MANY_POOL_MEMBERS", `a pool has at most ${limits.poolMembersMax} members`, { parent_customer_id: input.parentCustomerId });
  }
}

/** attachPoolMember makes a customer a member of a parent's pool. */
export async function attachPoolMember(
  deps: Deps,
  caller: Caller,
  idempotency: Idempotency,
  input: { parentCustomerId: string; memberCustomerId: string },
): Promise<PoolMemberView> {
  if (input.parentCustomerId === input.memberCustomerId) throw invalid("SELF_POOL", "member_customer_id", "a customer cannot be a member of its own pool");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const customers = [input.parentCustomerId, input.memberCustomerId].sort();
    await lockCustomers(tx, customers);
    await refuseAttach(tx, input);
    await insertPoolMember(tx, { ...input, createdBy: caller.keyId });
    await touchPoolBalances(tx, customers);
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "attach_pool_member",
      target: `customer:${input.memberCustomerId}`,
      reason: "pool member",
      details: { old: null, new: { parent_customer_id: input.parentCustomerId } },
    });
    const member = await selectPoolMember(tx, input.memberCustomerId);
    assert(member !== null, "an attached member is read back");
    return toPoolMemberView(member, deps.now().getTime());
  });
}

/** detachPoolMember ends a membership; returns the pool owner it left. */
export async function detachPoolMember(deps: Deps, caller: Caller, idempotency: Idempotency, memberCustomerId: string): Promise<{ parentCustomerId: string }> {
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const member = await requireMember(tx, memberCustomerId);
    await lockCustomers(tx, [member.parentCustomerId]);
    assert(await deletePoolMember(tx, memberCustomerId), "a locked member is deleted");
    await touchPoolBalances(tx, [member.parentCustomerId, memberCustomerId].sort());
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "detach_pool_member",
      target: `customer:${memberCustomerId}`,
      reason: "pool member",
      details: { old: { parent_customer_id: member.parentCustomerId }, new: null },
    });
    return { parentCustomerId: member.parentCustomerId };
  });
}

/** setPoolMemberLimit sets (limit) or removes (null) a member's limit on a credit type. */
export async function setPoolMemberLimit(
  deps: Deps,
  caller: Caller,
  idempotency: Idempotency,
  input: { memberCustomerId: string; creditTypeId: string; limit: MemberLimit | null },
): Promise<PoolMemberView> {
  assert(input.limit === null || input.limit.amount >= 0n, "limits are checked before");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    if ((await selectCreditType(tx, input.creditTypeId)) === null) throw notFound("CREDIT_TYPE_NOT_FOUND", "credit type id", input.creditTypeId);
    const member = await requireMember(tx, input.memberCustomerId);
    await upsertPoolMemberLimit(tx, input.memberCustomerId, input.creditTypeId, input.limit);
    await touchPoolBalances(tx, [member.parentCustomerId, input.memberCustomerId].sort());
    const old = member.limits.get(input.creditTypeId) ?? null;
    const shown = (limit: MemberLimit | null) => (limit === null ? null : { limit: limit.amount.toString(), period: limit.period });
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "set_pool_member_limit",
      target: `customer:${input.memberCustomerId}`,
      reason: "pool member limit",
      details: { old: shown(old), new: shown(input.limit), credit_type_id: input.creditTypeId },
    });
    const after = await selectPoolMember(tx, input.memberCustomerId);
    assert(after !== null, "a member whose limit was set is read back");
    return toPoolMemberView(after, deps.now().getTime());
  });
}

/** CustomerPool is a customer's pool: the members of the one it owns, and its own membership. */
export interface CustomerPool {
  members: PoolMemberView[];
  membership: PoolMemberView | null;
}

/** listPoolMembers reads a customer's pool from one snapshot. */
export async function listPoolMembers(deps: Deps, customerId: string): Promise<CustomerPool> {
  return withSnapshot(deps.pool, async (tx) => {
    if (!(await customerExists(tx, customerId))) throw notFound("CUSTOMER_NOT_FOUND", "customer id", customerId);
    const nowMs = deps.now().getTime();
    const members = await selectPoolMembers(tx, customerId, limits.poolMembersMax);
    const membership = await selectPoolMember(tx, customerId);
    return { members: members.map((row) => toPoolMemberView(row, nowMs)), membership: membership === null ? null : toPoolMemberView(membership, nowMs) };
  });
}
