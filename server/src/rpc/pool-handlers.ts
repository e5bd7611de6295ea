// PoolService: decode, call one service, encode.
import type { ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  AttachPoolMemberRequestSchema,
  DetachPoolMemberRequestSchema,
  PoolPeriod,
  type PoolService,
  SetPoolMemberLimitRequestSchema,
} from "@burndown/sdk";
import { invalid } from "../errors.js";
import type { MemberLimit } from "../ledger/pool-limit.js";
import type { Deps } from "../service/context.js";
import { attachPoolMember, detachPoolMember, listPoolMembers, type PoolMemberView, setPoolMemberLimit } from "../service/pools.js";
import { requireCode, requireId } from "./decode.js";
import { callerOf } from "./ledger-handlers.js";
import { idempotencyOf } from "./request-hash.js";

const periods = { month: PoolPeriod.MONTH, day: PoolPeriod.DAY } as const;

/** requireLimit decodes a limit: unlimited, or zero or more per a named period. */
function requireLimit(req: { limit: bigint; period: PoolPeriod; unlimited: boolean }): MemberLimit | null {
  if (req.unlimited) return null;
  if (req.limit < 0n) throw invalid("NEGATIVE_LIMIT", "limit", "must be zero or more");
  if (req.period === PoolPeriod.MONTH) return { amount: req.limit, period: "month" };
  if (req.period === PoolPeriod.DAY) return { amount: req.limit, period: "day" };
  throw invalid("INVALID_POOL_PERIOD", "period", "must be POOL_PERIOD_MONTH or POOL_PERIOD_DAY unless unlimited is set");
}

function encodeMember(member: PoolMemberView) {
  return {
    memberCustomerId: member.memberCustomerId,
    parentCustomerId: member.parentCustomerId,
    attachTime: timestampFromDate(member.attachedAt),
    limits: member.limits.map((limit) => ({ creditTypeId: limit.creditTypeId, limit: limit.amount, period: periods[limit.period] })),
    usage: member.usage.map((usage) => ({ creditTypeId: usage.creditTypeId, used: usage.used, periodStartTime: timestampFromDate(usage.periodStart) })),
  };
}

/** poolHandlers implements PoolService. */
export function poolHandlers(deps: Deps): ServiceImpl<typeof PoolService> {
  return {
    async attachPoolMember(req, ctx) {
      const idempotency = idempotencyOf(AttachPoolMemberRequestSchema, "AttachPoolMember", req);
      const member = await attachPoolMember(deps, callerOf(ctx), idempotency, {
        parentCustomerId: requireId("parent_customer_id", req.parentCustomerId),
        memberCustomerId: requireId("member_customer_id", req.memberCustomerId),
      });
      return { member: encodeMember(member) };
    },
    async detachPoolMember(req, ctx) {
      const idempotency = idempotencyOf(DetachPoolMemberRequestSchema, "DetachPoolMember", req);
      return detachPoolMember(deps, callerOf(ctx), idempotency, requireId("member_customer_id", req.memberCustomerId));
    },
    async setPoolMemberLimit(req, ctx) {
      const idempotency = idempotencyOf(SetPoolMemberLimitRequestSchema, "SetPoolMemberLimit", req);
      const member = await setPoolMemberLimit(deps, callerOf(ctx), idempotency, {
        memberCustomerId: requireId("member_customer_id", req.memberCustomerId),
        creditTypeId: requireCode("credit_type_id", req.creditTypeId),
        limit: requireLimit(req),
      });
      return { member: encodeMember(member) };
    },
    async listPoolMembers(req) {
      const pool = await listPoolMembers(deps, requireId("customer_id", req.customerId));
      return {
        members: pool.members.map(encodeMember),
        parentCustomerId: pool.membership?.parentCustomerId ?? "",
        membership: pool.membership === null ? undefined : encodeMember(pool.membership),
      };
    },
  };
}
