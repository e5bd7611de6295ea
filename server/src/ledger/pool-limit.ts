// A pool member's limit per calendar period (UTC), and what it used of its pool in the
// current period. The counter is one number per (member, credit type) with the start of
// the period it counts; a counter of an earlier period counts as zero. Nothing here does IO.
import { assert } from "./balance-state.js";

/** PoolPeriod is the calendar period a member's limit applies to, in UTC. */
export type PoolPeriod = "month" | "day";

/** MemberLimit is a member's limit on one credit type. */
export interface MemberLimit {
  amount: bigint;
  period: PoolPeriod;
}

/** MemberUsage is a member's counter on one credit type: what it used in the period that began at periodStartMs. */
export interface MemberUsage {
  periodStartMs: number;
  used: bigint;
}

/** periodStartMs is when the period holding nowMs began: the month's first day, or the day, at 00:00 UTC. */
export function periodStartMs(period: PoolPeriod, nowMs: number): number {
  const now = new Date(nowMs);
  const start = period === "month" ? Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1) : Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  assert(start <= nowMs && nowMs - start < 32 * 86_400_000, "a period starts at most a month before now");
  return start;
}

/** usedNow is what a counter counts in the current period (of the limit's period; a month without a limit). */
export function usedNow(usage: MemberUsage | null, limit: MemberLimit | null, nowMs: number): MemberUsage {
  const start = periodStartMs(limit?.period ?? "month", nowMs);
  return { periodStartMs: start, used: usage !== null && usage.periodStartMs === start ? usage.used : 0n };
}

/** LimitExceeded is the refusal of a spend that would take a member past its limit. */
export interface LimitExceeded {
  kind: "limit_exceeded";
  limit: bigint;
  used: bigint;
  required: bigint;
}

/**
 * planMemberSpend adds amount to what a member used this period, or refuses when that
 * would pass its limit (enforce) ; with enforce false (usage that already happened) it
 * always adds, and says whether the counter went past the limit.
 */
export function planMemberSpend(
  usage: MemberUsage | null,
  limit: MemberLimit | null,
  amount: bigint,
  nowMs: number,
  options: { enforce: boolean },
): { kind: "spent"; usage: MemberUsage; overLimit: boolean } | LimitExceeded {
  assert(amount >= 0n, "a member spends a non-negative amount");
  const current = usedNow(usage, limit, nowMs);
  const after = current.used + amount;
  const overLimit = limit !== null && after > limit.amount;
  if (overLimit && options.enforce) return { kind: "limit_exceeded", limit: limit.amount, used: current.used, required: amount };
  return { kind: "spent", usage: { periodStartMs: current.periodStartMs, used: after }, overLimit };
}

/**
 * planMemberReturn takes back from what a member used this period (a release, or the
 * unused part of a commit). A hold made in an earlier period was counted there: it never
 * takes the current period below zero.
 */
export function planMemberReturn(usage: MemberUsage | null, limit: MemberLimit | null, amount: bigint, nowMs: number): MemberUsage {
  assert(amount >= 0n, "a member returns a non-negative amount");
  const current = usedNow(usage, limit, nowMs);
  const after = current.used - amount;
  return { periodStartMs: current.periodStartMs, used: after < 0n ? 0n : after };
}
