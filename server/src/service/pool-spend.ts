// A pool member's spending inside the write path: the limit per period checked and the
// member's counter moved under the lock of its pool owner's balance, in the same group
// transaction as the entries it caused (so concurrent siblings never pass a limit).
import { LedgerError } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { planMemberReturn, planMemberSpend } from "../ledger/pool-limit.js";
import type { BalanceKey, PoolMembership } from "../store/balance-store.js";
import type { PlanContext } from "./write-op.js";

/** PoolSpend is a member spending its pool owner's balance. */
export interface PoolSpend {
  memberCustomerId: string;
  membership: PoolMembership;
}

/** childLimitExceeded is the refusal of a spend past a member's limit this period. */
export function childLimitExceeded(memberCustomerId: string, creditTypeId: string, refusal: { limit: bigint; used: bigint; required: bigint }): LedgerError {
  return new LedgerError(
    "rejected",
    "CHILD_LIMIT_EXCEEDED",
    `pool member ${memberCustomerId} has used ${refusal.used} of its limit of ${refusal.limit} this period, ${refusal.required} required`,
    {
      customer_id: memberCustomerId,
      credit_type_id: creditTypeId,
      limit: refusal.limit.toString(),
      used: refusal.used.toString(),
      required: refusal.required.toString(),
    },
  );
}

/**
 * spendAsMember counts amount against the member's limit on the pool balance key (its
 * owner's), or throws CHILD_LIMIT_EXCEEDED when enforced and past it. Unenforced (usage
 * that already happened), it counts all the same and says whether it went past.
 */
export function spendAsMember(ctx: PlanContext, pool: PoolSpend, key: BalanceKey, amount: bigint, options: { enforce: boolean }): { overLimit: boolean } {
  assert(key.customerId === pool.membership.parentCustomerId, "a member spends its pool owner's balance");
  const limit = pool.membership.limits.get(key.creditTypeId) ?? null;
  const usage = ctx.draft.memberUsage(pool.memberCustomerId, key.creditTypeId);
  const planned = planMemberSpend(usage, limit, amount, ctx.now.getTime(), options);
  if (planned.kind === "limit_exceeded") throw childLimitExceeded(pool.memberCustomerId, key.creditTypeId, planned);
  writeUsage(ctx, pool.memberCustomerId, key, planned.usage);
  return { overLimit: planned.overLimit };
}

/** returnAsMember gives back to a member's counter what it no longer holds (a release, a commit's unused part). */
export function returnAsMember(ctx: PlanContext, memberCustomerId: string, key: BalanceKey, amount: bigint): void {
  const limit = ctx.poolOf(memberCustomerId)?.limits.get(key.creditTypeId) ?? null;
  const usage = planMemberReturn(ctx.draft.memberUsage(memberCustomerId, key.creditTypeId), limit, amount, ctx.now.getTime());
  writeUsage(ctx, memberCustomerId, key, usage);
}

function writeUsage(ctx: PlanContext, memberCustomerId: string, key: BalanceKey, usage: { periodStartMs: number; used: bigint }): void {
  assert(usage.used >= 0n, "a member's counter is never negative");
  ctx.draft.setMemberUsage({
    parentCustomerId: key.customerId,
    memberCustomerId,
    creditTypeId: key.creditTypeId,
    periodStart: new Date(usage.periodStartMs),
    used: usage.used,
  });
}
