// VerifyLedger: rebuild every balance, lot and reservation from the ledger entries and
// compare them with the stored projections (invariant 2 and 5 of the design), reporting
// each difference. Read-only, in one snapshot; used by AdminService.VerifyLedger, by
// `npm run verify` (verify.ts) and by the test suite after its load and fault tests.
import type pg from "pg";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { notFound } from "../errors.js";
import { customerExists } from "../store/catalog-store.js";
import { type Db, setStatementLimits, withSnapshot } from "../store/database.js";
import { type LedgerDifference, selectLedgerDifferences, type VerifyCounts } from "../store/verify-store.js";

/** LedgerVerification is the outcome of one verification. */
export interface LedgerVerification {
  counts: VerifyCounts;
  /** the first differences, at most limits.verifyDifferencesListedMax; counts.differences has them all. */
  differences: LedgerDifference[];
  durationMs: number;
}

/** verifyLedger compares the projections of every customer (customerId '') or one with the entries, in one snapshot. */
export async function verifyLedger(pool: pg.Pool, input: { customerId: string }): Promise<LedgerVerification> {
  return withSnapshot(pool, async (tx) => {
    if (input.customerId !== "" && !(await customerExists(tx, input.customerId))) throw notFound("CUSTOMER_NOT_FOUND", "customer id", input.customerId);
    await setStatementLimits(tx, { timeoutMs: limits.verifyStatementMsMax, workMemMb: limits.verifyWorkMemMbMax });
    return verifyLedgerIn(tx, input);
  });
}

/**
 * verifyLedgerIn runs the verification on a caller's own connection: inside a snapshot
 * the caller opened (the test suite's consistent reads under load), or the pool.
 */
export async function verifyLedgerIn(db: Db, input: { customerId: string }): Promise<LedgerVerification> {
  const startedMs = performance.now();
  const { counts, differences } = await selectLedgerDifferences(db, {
    customerId: input.customerId,
    listedMax: limits.verifyDifferencesListedMax,
    timeoutMs: limits.verifyStatementMsMax,
  });
  assert(BigInt(differences.length) <= counts.differences, "the listed differences are among those counted");
  assert(differences.length <= limits.verifyDifferencesListedMax, "the list of differences is bounded");
  return { counts, differences, durationMs: performance.now() - startedMs };
}

/** describeVerification writes a verification as lines a person reads (the verify command's output). */
export function describeVerification(result: LedgerVerification): string[] {
  const { counts } = result;
  const lines = [
    `checked ${counts.balances} balances, ${counts.lots} lots, ${counts.reservations} reservations from ${counts.entries} entries in ${Math.round(result.durationMs)} ms`,
  ];
  for (const d of result.differences) lines.push(`${d.table} ${d.row} ${d.column}: stored ${d.stored}, rebuilt from entries ${d.rebuilt}`);
  if (counts.differences > BigInt(result.differences.length)) lines.push(`… and ${counts.differences - BigInt(result.differences.length)} more differences`);
  lines.push(counts.differences === 0n ? "no differences: every projection equals its entries" : `${counts.differences} differences`);
  return lines;
}
