// What the write path tells an observer (the metrics, metrics/server-metrics.ts) after
// the fact: a group transaction that committed, and what became of a batch of usage
// events. An observer only counts; it never changes what was written or answered, and it
// runs after COMMIT, so a slow or failing one cannot hold a lock.
import type { EntryWrite } from "../store/balance-writer.js";
import type { UsageResult } from "./report-usage.js";

/** CommittedGroup is one group transaction that committed: its size, its time and its entries. */
export interface CommittedGroup {
  /** ops the transaction ran (replays and refusals included: they shared it). */
  ops: number;
  /** from the first statement to the COMMIT's answer, in seconds. */
  seconds: number;
  /** the ledger entries it wrote, in order. */
  entries: readonly EntryWrite[];
}

/** WriteObserver is told about the write path's results; every method must be cheap and must not throw. */
export interface WriteObserver {
  /** groupCommitted is called once per committed group transaction, after COMMIT. */
  groupCommitted(group: CommittedGroup): void;
  /** usageReported is called once per ReportUsage batch with one result per event. */
  usageReported(results: readonly UsageResult[]): void;
}
