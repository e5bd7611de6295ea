// One server's Prometheus metrics, in a registry of its own (never prom-client's global
// one), so that two servers in one process (tests, replicas) keep apart. What it holds:
//   - RPCs by method and code (rpc-metrics.ts), admission, the database pool;
//   - the write path: group sizes and transaction times, usage outcomes, and the ledger's
//     figures, credits by entry kind and credit type, counted after COMMIT from the
//     entries each group wrote (WriteObserver);
//   - backlogs read from the database when scraped (expiry lag, webhook deliveries),
//     reused for limits.metricsQueryCacheMs and bounded by a statement timeout;
//   - the ledger's self-check (jobs/self-check.ts);
//   - Node's process metrics (prom-client's defaults).
// Counters are per replica, as Prometheus expects: sum() them across replicas. A
// Prometheus value is a float64: credit counters are exact up to 2^53 smallest units per
// replica since its start; past that they round (rate() stays right to 16 digits).
import type http from "node:http";
import { createHash, timingSafeEqual } from "node:crypto";
import type { Interceptor } from "@connectrpc/connect";
import type pg from "pg";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { limits } from "../limits.js";
import type { Admission } from "../rpc/admission.js";
import type { UsageOutcome, UsageResult } from "../service/report-usage.js";
import type { CommittedGroup, WriteObserver } from "../service/write-observer.js";
import { setStatementLimits, withTransaction } from "../store/database.js";
import { type Backlogs, selectBacklogs } from "../store/metrics-store.js";
import { instrumentPoolWaits } from "./pool-metrics.js";
import type { UsageConsumer } from "../queue/usage-consumer.js";
import { collector, registerRpcCollectors, RpcMetrics, rpcInterceptor } from "./rpc-metrics.js";

/** MetricsSources are what the metrics read: the pool, the clock and the log (admission joins with watchAdmission). */
export interface MetricsSources {
  pool: pg.Pool;
  now: () => Date;
  log: (message: string) => void;
}

/** SelfCheckRun is one run of the self-check, as the metrics record it. */
export interface SelfCheckRun {
  customersChecked: number;
  differences: bigint;
  /** the run could not finish (the database failed); nothing is known of the customers it did not reach. */
  failed: boolean;
  atMs: number;
}

const usageOutcomes: readonly UsageOutcome[] = ["burned", "duplicate", "rejected", "unrated", "shadowed", "not_billed"];

/** ServerMetrics is one server's registry and the instruments the server feeds. */
export class ServerMetrics implements WriteObserver {
  readonly registry = new Registry();
  private readonly rpc = new RpcMetrics();
  private readonly groupOps: Histogram<never>;
  private readonly groupSeconds: Histogram<never>;
  private readonly usageEvents: Counter<"outcome">;
  private readonly credits: Counter<"credit_type" | "kind">;
  private readonly selfCheckRuns: Counter<"result">;
  private readonly selfCheckLast: Record<"at" | "customers" | "differences", Gauge<never>>;
  private readonly selfCheckDifferences: Counter<never>;
  private readonly queryFailures: Counter<never>;
  private backlogs: { atMs: number; read: Promise<Backlogs | null> } | null = null;
  /** customers of recent entries, a ring: the self-check's sample starts with them. */
  private readonly recent: (string | undefined)[] = new Array(limits.selfCheckRecentCustomersMax);
  private recentNext = 0;

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    registerRpcCollectors(this.registry, this.rpc);
    instrumentPoolWaits(sources.pool, this.registry);
    this.groupOps = new Histogram({
      name: "burndown_write_group_ops",
      help: "Ops per committed group transaction of the write path (one for a lone call; up to the group weight limit under load).",
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers,
    });
    this.groupSeconds = new Histogram({
      name: "burndown_write_group_transaction_seconds",
      help: "Time of each committed group transaction of the write path, from its first statement to the COMMIT's answer, in seconds.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.usageEvents = new Counter({ name: "burndown_usage_events_total", help: "Usage events reported, by ReportUsage or from the usage queue, by outcome.", labelNames: ["outcome"], registers });
    for (const outcome of usageOutcomes) this.usageEvents.inc({ outcome }, 0);
    this.credits = new Counter({
      name: "burndown_ledger_credits_total",
      help: "Credits (in the credit type's smallest unit) in the ledger entries this replica committed, by credit type and entry kind (grant, burn, expire, refund, void, hold, release, ...). Exact up to 2^53.",
      labelNames: ["credit_type", "kind"],
      registers,
    });
    this.registerBacklogs();
    const readBacklogs = () => this.readBacklogs();
    this.queryFailures = new Counter({
      name: "burndown_metrics_query_failures_total",
      help: "Reads of the database-backed gauges that failed (the gauges are then absent from the scrape).",
      registers,
      // The registry collects families at once: this one waits for the scrape's read, so a failure shows in the same scrape.
      async collect() {
        await readBacklogs();
      },
    });
    this.selfCheckRuns = new Counter({ name: "burndown_self_check_runs_total", help: "Runs of the ledger self-check, by result: clean, differences or failed.", labelNames: ["result"], registers });
    for (const result of ["clean", "differences", "failed"]) this.selfCheckRuns.inc({ result }, 0);
    this.selfCheckDifferences = new Counter({ name: "burndown_self_check_differences_total", help: "Differences between stored balances and their entries found by the self-check, over every run. Any is an alert.", registers });
    this.selfCheckLast = {
      at: new Gauge({ name: "burndown_self_check_last_run_timestamp_seconds", help: "When the last self-check run ended (Unix time; 0: none yet).", registers }),
      customers: new Gauge({ name: "burndown_self_check_last_customers_checked", help: "Customers the last self-check run verified.", registers }),
      differences: new Gauge({ name: "burndown_self_check_last_differences", help: "Differences the last self-check run found.", registers }),
    };
  }

  /** interceptor counts every RPC; put it first in the interceptor list. */
  interceptor(): Interceptor {
    return rpcInterceptor(this.rpc);
  }

  groupCommitted(group: CommittedGroup): void {
    this.groupOps.observe(group.ops);
    this.groupSeconds.observe(group.seconds);
    if (group.entries.length === 0) return;
    // Summed per group in bigint, then added once per (credit type, kind): exact while each sum fits 2^53.
    const sums = new Map<string, { creditType: string; kind: string; amount: bigint }>();
    for (const entry of group.entries) {
      this.recent[this.recentNext] = entry.customerId;
      this.recentNext = (this.recentNext + 1) % this.recent.length;
      const key = `${entry.creditTypeId}\u0000${entry.kind}`;
      const sum = sums.get(key);
      if (sum === undefined) sums.set(key, { creditType: entry.creditTypeId, kind: entry.kind, amount: entry.amount });
      else sum.amount += entry.amount;
    }
    for (const { creditType, kind, amount } of sums.values()) this.credits.inc({ credit_type: creditType, kind }, Number(amount));
  }

  usageReported(results: readonly UsageResult[]): void {
    const counts = new Map<UsageOutcome, number>();
    for (const result of results) counts.set(result.outcome, (counts.get(result.outcome) ?? 0) + 1);
    for (const [outcome, count] of counts) this.usageEvents.inc({ outcome }, count);
  }

  /** recentCustomers are the distinct customers of the entries this replica wrote last, newest first. */
  recentCustomers(): string[] {
    const seen = new Set<string>();
    for (let i = 1; i <= this.recent.length; i++) {
      const customerId = this.recent[(this.recentNext - i + this.recent.length) % this.recent.length];
      if (customerId !== undefined) seen.add(customerId);
    }
    return [...seen];
  }

  /** selfCheckDone records one self-check run. */
  selfCheckDone(run: SelfCheckRun): void {
    this.selfCheckRuns.inc({ result: run.failed ? "failed" : run.differences > 0n ? "differences" : "clean" });
    this.selfCheckDifferences.inc(Number(run.differences));
    this.selfCheckLast.at.set(run.atMs / 1_000);
    this.selfCheckLast.customers.set(run.customersChecked);
    this.selfCheckLast.differences.set(Number(run.differences));
  }

  /** serve answers GET /metrics: the registry in Prometheus' text format, behind the bearer token when one is set. */
  async serve(req: http.IncomingMessage, res: http.ServerResponse, token: string | null): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (token !== null && !bearerMatches(req.headers.authorization, token)) {
      res.writeHead(401, { "www-authenticate": 'Bearer realm="metrics"', "content-type": "text/plain" }).end("send the metrics token as 'Authorization: Bearer <token>'\n");
      return;
    }
    const body = await this.registry.metrics();
    res.writeHead(200, { "content-type": this.registry.contentType, "cache-control": "no-store" }).end(req.method === "HEAD" ? undefined : body);
  }

  /** watchAdmission exports admission control's figures (once; the server makes admission after the write path). */
  watchAdmission(admission: Admission): void {
    const registers = [this.registry];
    new Gauge({ name: "burndown_admission_in_flight", help: "Calls running now (admission control's slots taken).", registers, collect() { this.set(admission.stats().inFlight); } });
    new Gauge({ name: "burndown_admission_queued", help: "Calls waiting for a slot now (admission control's queue length).", registers, collect() { this.set(admission.stats().queued); } });
    new Gauge({ name: "burndown_admission_in_flight_max", help: "Calls that may run at once (BURNDOWN_MAX_IN_FLIGHT).", registers, collect() { this.set(admission.limits.inFlightMax); } });
    new Counter({ name: "burndown_admission_admitted_total", help: "Calls admission control let run.", registers, collect() { this.reset(); this.inc(admission.stats().admitted); } });
    new Counter({ name: "burndown_admission_refused_total", help: "Calls refused with ResourceExhausted (OVERLOADED): the queue was full or the wait too long.", registers, collect() { this.reset(); this.inc(admission.stats().shed); } });
  }

  /**
   * watchUsageQueue exports the queue consumer's figures (queue/usage-consumer.ts): messages
   * acknowledged by outcome, dead letters, hand-backs (nak) and redeliveries, whether it is
   * taking messages, how far behind the stream it is, and how long a message waits from
   * the stream to its acknowledgement. The backlog is what each message delivered says
   * (NATS' num_pending), so a scrape never asks NATS: this page does not hang on the
   * queue's health.
   */
  watchUsageQueue(consumer: UsageConsumer): void {
    const registers = [this.registry];
    new Gauge({ name: "burndown_usage_queue_consuming", help: "1 while the usage queue consumer is taking messages, 0 while it is (re)connecting or stopped.", registers, collect() { this.set(consumer.stats().consuming ? 1 : 0); } });
    new Counter({ name: "burndown_usage_queue_batches_total", help: "Batches of queued usage events recorded (their transactions committed).", registers, collect() { this.reset(); this.inc(consumer.stats().batches); } });
    new Counter({
      name: "burndown_usage_queue_messages_total",
      help: "Queued usage messages acknowledged, by their event's outcome (after their outcome was durable).",
      labelNames: ["outcome"],
      registers,
      collect() {
        this.reset();
        for (const [outcome, count] of Object.entries(consumer.stats().acked)) this.inc({ outcome }, count);
      },
    });
    new Counter({ name: "burndown_usage_queue_dead_lettered_total", help: "Queued usage messages published to the dead-letter subject (rejected, unrated or malformed), then acknowledged.", registers, collect() { this.reset(); this.inc(consumer.stats().deadLettered); } });
    new Counter({ name: "burndown_usage_queue_recording_failed_total", help: "Queued usage messages the ledger failed to record alone, delivery after delivery, while it recorded others (poison): dead-lettered as RECORDING_FAILED and acknowledged, not recorded.", registers, collect() { this.reset(); this.inc(consumer.stats().failed); } });
    new Counter({ name: "burndown_usage_queue_redelivered_total", help: "Queued usage messages taken that JetStream had delivered before: their batch failed, they were handed back, or a replica died holding them.", registers, collect() { this.reset(); this.inc(consumer.stats().redelivered); } });
    this.registry.registerMetric(
      collector("burndown_usage_queue_pending_messages", "Messages of the usage stream not yet delivered to the durable consumer (all replicas), as of the last message this replica took (NATS' num_pending); absent before the first.", "gauge", async () => {
        const pending = consumer.stats().pending;
        return pending === null ? [] : [{ metricName: "burndown_usage_queue_pending_messages", labels: {}, value: pending }];
      }),
    );
    const age = new Histogram({
      name: "burndown_usage_queue_message_age_seconds",
      help: "Seconds from a queued usage message's arrival in the stream to its acknowledgement (its event recorded, or dead-lettered): the queue's end-to-end delay.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    });
    consumer.onAcked((message) => age.observe(message.ageSeconds));
    new Counter({ name: "burndown_usage_queue_handed_back_total", help: "Queued usage messages handed back (nak) because their batch or their dead letter could not be stored; they come again.", registers, collect() { this.reset(); this.inc(consumer.stats().handedBack); } });
  }

  /** registerBacklogs adds the database-backed gauges: absent from a scrape whose read failed, never a reassuring 0. */
  private registerBacklogs(): void {
    const gauge = (name: string, help: string, value: (backlogs: Backlogs) => number) =>
      this.registry.registerMetric(
        collector(name, help, "gauge", async () => {
          const backlogs = await this.readBacklogs();
          return backlogs === null ? [] : [{ metricName: name, labels: {}, value: value(backlogs) }];
        }),
      );
    gauge("burndown_expiry_lag_seconds", "Seconds since the oldest lot due to expire (with free credits left) should have expired; 0 when none is due. Grows when the expiry job does not run or falls behind.", (b) => b.expiryLagSeconds);
    gauge("burndown_webhook_deliveries_pending", `Webhook deliveries waiting to be made or retried (counted up to ${limits.metricsWebhookPendingCountMax}).`, (b) => b.webhookPending);
    gauge("burndown_webhook_delivery_lag_seconds", "Seconds since the oldest pending webhook delivery was due; 0 when none is due.", (b) => b.webhookLagSeconds);
  }

  /**
   * readBacklogs reads the backlogs at most once per limits.metricsQueryCacheMs of the
   * server's clock (a test's fake clock moves it); concurrent scrapes share one read; null if it failed.
   */
  private readBacklogs(): Promise<Backlogs | null> {
    const nowMs = this.sources.now().getTime();
    if (this.backlogs !== null && nowMs >= this.backlogs.atMs && nowMs - this.backlogs.atMs < limits.metricsQueryCacheMs) return this.backlogs.read;
    const read = withTransaction(this.sources.pool, async (tx) => {
      await setStatementLimits(tx, { timeoutMs: limits.metricsStatementMsMax });
      return selectBacklogs(tx, this.sources.now(), limits.metricsWebhookPendingCountMax);
    }).catch((error: unknown) => {
      this.queryFailures.inc();
      this.sources.log(`metrics: reading the backlogs failed: ${error instanceof Error ? error.message : String(error)}`);
      return null;
    });
    this.backlogs = { atMs: nowMs, read };
    return read;
  }
}

/** bearerMatches compares a request's bearer token with the expected one in constant time. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? "");
  if (match === null) return false;
  const digest = (value: string) => createHash("sha256").update(value).digest();
  return timingSafeEqual(digest(match[1]), digest(token));
}
