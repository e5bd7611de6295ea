// GetUsageSummary: what a customer burned per UTC day or ISO week (from Monday) and
// feature over a period, net of corrections, for the customer's own view and for support.
import { invalid, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { customerExists } from "../store/catalog-store.js";
import { withSnapshot } from "../store/database.js";
import { type BurnBucketRow, selectBurnBuckets } from "../store/usage-summary-store.js";
import type { Deps } from "./context.js";

/** Granularity is a bucket's length. */
export type Granularity = "day" | "week";

const dayMs = 86_400_000;
/** 1970-01-05T00:00:00Z, the first Monday of the epoch: weeks are counted from it. */
const firstMondayMs = 4 * dayMs;

const bucketDays: Record<Granularity, number> = { day: 1, week: 7 };

/** bucketStartMs rounds a time down to the start of its UTC day, or of its week from Monday. */
export function bucketStartMs(atMs: number, granularity: Granularity): number {
  const lengthMs = bucketDays[granularity] * dayMs;
  const originMs = granularity === "week" ? firstMondayMs : 0;
  // Integer remainders are exact for any time a Date holds; a division would not be.
  const startMs = atMs - ((((atMs - originMs) % lengthMs) + lengthMs) % lengthMs);
  assert(startMs <= atMs && atMs - startMs < lengthMs, "a bucket holds the time it was rounded from");
  return startMs;
}

/** UsageSummaryInput is a validated GetUsageSummary request. */
export interface UsageSummaryInput {
  customerId: string;
  creditTypeId: string;
  startAt: Date;
  /** null: now. */
  endAt: Date | null;
  granularity: Granularity;
  /** one bucket per pool member too. */
  byMember: boolean;
}

/** UsageSummary is the buckets with usage, and the period as bucketed. */
export interface UsageSummary {
  buckets: BurnBucketRow[];
  startAt: Date;
  endAt: Date;
}

/**
 * periodOf checks a period and rounds its start down to its bucket: the end (now when
 * unset) must be after the start, and the period hold at most usageBucketsMax buckets.
 */
function periodOf(input: UsageSummaryInput, nowMs: number): { startMs: number; endMs: number } {
  const endMs = input.endAt?.getTime() ?? nowMs;
  if (endMs <= input.startAt.getTime()) {
    throw invalid("INVALID_PERIOD", input.endAt === null ? "start_time" : "end_time", "the period must end after it starts (an unset end_time is now)");
  }
  const startMs = bucketStartMs(input.startAt.getTime(), input.granularity);
  const lengthMs = bucketDays[input.granularity] * dayMs;
  if (endMs - startMs > limits.usageBucketsMax * lengthMs) {
    throw invalid("INVALID_PERIOD", "start_time", `the period holds more than ${limits.usageBucketsMax} ${input.granularity}s`);
  }
  return { startMs, endMs };
}

/** getUsageSummary reads a customer's burns over a period, per bucket, credit type and feature. */
export async function getUsageSummary(deps: Deps, input: UsageSummaryInput): Promise<UsageSummary> {
  const { startMs, endMs } = periodOf(input, deps.now().getTime());
  const startAt = new Date(startMs);
  const endAt = new Date(endMs);
  return withSnapshot(deps.pool, async (tx) => {
    if (!(await customerExists(tx, input.customerId))) throw notFound("CUSTOMER_NOT_FOUND", "customer id", input.customerId);
    const buckets = await selectBurnBuckets(tx, { customerId: input.customerId, creditTypeId: input.creditTypeId, startAt, endAt, bucketDays: bucketDays[input.granularity], byMember: input.byMember });
    assert(buckets.every((bucket) => bucket.startAt >= startAt && bucket.startAt < endAt && bucket.count > 0n), "buckets lie in the period and hold burns");
    assert(buckets.every((bucket) => bucket.credits <= limits.amountMax), "a bucket is part of a balance's burned total");
    return { buckets, startAt, endAt };
  });
}
