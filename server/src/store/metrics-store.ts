// The statements behind the metrics that come from the database (metrics/server-metrics.ts)
// and the self-check's sample of customers (jobs/self-check.ts). Each reads through an
// index in a bounded time: a scrape must never load the database (see the EXPLAINs in
// docs/operations-metrics.md).
import type { Db } from "./database.js";

/** Backlogs are the database's figures of work not yet done. */
export interface Backlogs {
  /** seconds since the oldest lot due to expire (expires_at passed, free credits left) should have; 0 when none is due. */
  expiryLagSeconds: number;
  /** webhook deliveries waiting (pending), counted up to pendingCountMax. */
  webhookPending: number;
  /** seconds since the oldest pending delivery was due; 0 when none is due. */
  webhookLagSeconds: number;
}

/**
 * selectBacklogs reads the expiry lag and the webhook backlog in one statement, as of now.
 * The oldest due lot is the first row of grants_open_due (expires_at, partial on not
 * exhausted) with free credits, the expiry job's own predicate (selectDueBalances); the
 * deliveries' count and oldest read webhook_deliveries_due (partial on pending). The count
 * stops at pendingCountMax.
 * Expects the caller's statement_timeout to bound it (readBacklogs).
 */
export async function selectBacklogs(db: Db, now: Date, pendingCountMax: number): Promise<Backlogs> {
  const result = await db.query({
    name: "select_metric_backlogs",
    text: `select
             (select min(expires_at) from grants where expires_at is not null and remaining > held and not exhausted and expires_at <= $1) as oldest_due_lot,
             (select count(*) from (select 1 from webhook_deliveries where status = 'pending' limit $2) pending) as webhook_pending,
             (select min(next_attempt_at) from webhook_deliveries where status = 'pending' and next_attempt_at <= $1) as oldest_due_delivery`,
    values: [now, pendingCountMax],
  });
  const row = result.rows[0];
  const secondsSince = (at: Date | null) => (at === null ? 0 : Math.max(0, (now.getTime() - at.getTime()) / 1_000));
  return { expiryLagSeconds: secondsSince(row.oldest_due_lot), webhookPending: Number(row.webhook_pending), webhookLagSeconds: secondsSince(row.oldest_due_delivery) };
}

/**
 * selectSampledCustomers reads about `count` customers spread over the table, with no scan
 * of it: TABLESAMPLE SYSTEM reads a share of its pages at random, the share sized from the
 * planner's row estimate (every page while the table is small or never analyzed). Returns
 * at most count * 4 ids, in the pages' order; the caller picks among them.
 */
export async function selectSampledCustomers(db: Db, count: number): Promise<string[]> {
  if (!(Number.isInteger(count) && count > 0)) throw new Error(`selectSampledCustomers: bad count ${count}`);
  const estimate = await db.query({ name: "select_customers_estimate", text: "select reltuples::float8 as rows from pg_class where oid = 'customers'::regclass" });
  const rows = Number(estimate.rows[0]?.rows ?? -1);
  // Four times the count, so that a sample of pages holding fewer rows than average still yields enough.
  const percent = rows <= count * 4 ? 100 : Math.max(0.0001, (100 * count * 4) / rows);
  const result = await db.query({
    text: `select customer_id from customers tablesample system ($1) limit $2`,
    values: [percent, count * 4],
  });
  return result.rows.map((row) => row.customer_id as string);
}
