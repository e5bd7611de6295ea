// The ledger's self-check: every interval, verify a sample of customers' stored balances,
// lots and reservations against their entries (service/verify-ledger.ts, the same
// set-based verification as VerifyLedger, one customer at a time), then export the result
// as metrics and write one log line naming every difference. It never fixes anything: a
// difference means a bug or a hand edit, and the entries, not the projection, are what a
// person must look at before anything is changed. Any difference is an alert.
//
// The sample: customers this replica wrote recently (what a fresh bug would touch first),
// up to half of it, and the rest spread over all customers (TABLESAMPLE, no table scan).
// All customers of a run are verified in one read-only snapshot.
import { limits } from "../limits.js";
import type { ServerMetrics } from "../metrics/server-metrics.js";
import { assert } from "../ledger/balance-state.js";
import { setStatementLimits, type Tx, withSnapshot } from "../store/database.js";
import { selectSampledCustomers } from "../store/metrics-store.js";
import type { LedgerDifference } from "../store/verify-store.js";
import { verifyLedgerIn } from "../service/verify-ledger.js";
import type pg from "pg";
import { every, type Periodic } from "./periodic.js";
import { traceJob } from "../tracing.js";

/** SelfCheckPolicy is how often the self-check runs and how many customers each run verifies. */
export interface SelfCheckPolicy {
  /** 0: never (the default for a server started as a library, as in tests). */
  intervalMs: number;
  sampleSize: number;
}

/** SelfCheckResult is one run: who was verified and what differed. */
export interface SelfCheckResult {
  customerIds: string[];
  differences: bigint;
  /** the first differences, at most limits.verifyDifferencesListedMax per customer. */
  listed: (LedgerDifference & { customerId: string })[];
  entries: bigint;
  durationMs: number;
}

/** differencesLoggedMax bounds the differences one log line names (the count is always whole). */
const differencesLoggedMax = 20;

/** sampleCustomers picks up to sampleSize distinct customers: recent ones first (up to half), the rest at random. */
export async function sampleCustomers(pool: pg.Pool, recent: readonly string[], sampleSize: number): Promise<string[]> {
  assert(Number.isInteger(sampleSize) && sampleSize >= 1 && sampleSize <= limits.selfCheckSampleMax, "the sample size is bounded");
  const chosen = new Set(recent.slice(0, Math.ceil(sampleSize / 2)));
  const spread = await selectSampledCustomers(pool, sampleSize);
  // Fisher-Yates: the sampled pages come in their physical order.
  for (let i = spread.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [spread[i], spread[j]] = [spread[j], spread[i]];
  }
  for (const customerId of spread) {
    if (chosen.size >= sampleSize) break;
    chosen.add(customerId);
  }
  const sample = [...chosen];
  assert(sample.length <= sampleSize, "the sample is no larger than asked");
  return sample;
}

/** verifyCustomers verifies each customer in one snapshot; never writes. */
async function verifyCustomers(pool: pg.Pool, customerIds: readonly string[]): Promise<SelfCheckResult> {
  const startedMs = performance.now();
  return withSnapshot(pool, async (tx: Tx) => {
    // One customer's rows each time: a custom plan reads them by the customer's index
    // (a generic plan of "$1 = '' or customer_id = $1" would read every entry).
    await setStatementLimits(tx, { timeoutMs: limits.selfCheckStatementMsMax, customPlans: true });
    const result: SelfCheckResult = { customerIds: [...customerIds], differences: 0n, listed: [], entries: 0n, durationMs: 0 };
    for (const customerId of customerIds) {
      assert(customerId !== "", "an empty customer id would verify the whole ledger");
      const verification = await verifyLedgerIn(tx, { customerId });
      result.differences += verification.counts.differences;
      result.entries += verification.counts.entries;
      result.listed.push(...verification.differences.map((d) => ({ ...d, customerId })));
    }
    result.durationMs = performance.now() - startedMs;
    return result;
  });
}

/** describeSelfCheck is the run's one log line. */
export function describeSelfCheck(result: SelfCheckResult): string {
  const head = `self-check: verified ${result.customerIds.length} customers (${result.entries} entries) in ${Math.round(result.durationMs)} ms`;
  if (result.differences === 0n) return `${head}: no differences`;
  const named = result.listed.slice(0, differencesLoggedMax).map((d) => `${d.table} ${d.row} ${d.column} stored ${d.stored} rebuilt from entries ${d.rebuilt}`);
  const more = result.differences > BigInt(named.length) ? `; and ${result.differences - BigInt(named.length)} more` : "";
  return `${head}: ALERT ${result.differences} differences, nothing changed (fix by hand after reading the entries): ${named.join("; ")}${more}`;
}

/**
 * runSelfCheck runs once: sample, verify, record in the metrics, log one line. A run the
 * database could not finish is logged and counted as failed, not thrown.
 */
export async function runSelfCheck(pool: pg.Pool, metrics: ServerMetrics, sampleSize: number, log: (message: string) => void): Promise<SelfCheckResult | null> {
  try {
    const customerIds = await sampleCustomers(pool, metrics.recentCustomers(), sampleSize);
    const result = await verifyCustomers(pool, customerIds);
    metrics.selfCheckDone({ customersChecked: customerIds.length, differences: result.differences, failed: false, atMs: Date.now() });
    log(describeSelfCheck(result));
    return result;
  } catch (error) {
    metrics.selfCheckDone({ customersChecked: 0, differences: 0n, failed: true, atMs: Date.now() });
    log(`self-check: failed, trying again next interval: ${error instanceof Error ? error.message : String(error)}`);
    return null;
  }
}

/** startSelfCheck runs the self-check every policy.intervalMs (one run at a time) until stopped. */
export function startSelfCheck(pool: pg.Pool, metrics: ServerMetrics, policy: SelfCheckPolicy, log: (message: string) => void): Periodic {
  assert(policy.intervalMs > 0, "a self-check that runs has an interval");
  // runSelfCheck counts and logs its own failures.
  return every(policy.intervalMs, () => traceJob("self-check", () => runSelfCheck(pool, metrics, policy.sampleSize, log)));
}
