// GET /metrics after real traffic, on real PostgreSQL with a fake clock: every family is
// there with the values the traffic implies. RPCs counted by method and code on both
// listeners (Connect over HTTP/1.1 and gRPC over h2c), a refusal by admission control,
// the pool, write groups, usage outcomes, credits by entry kind equal to the entries
// written, the expiry lag before and after the expiry job, the webhook backlog; and the
// optional bearer token, and one registry per server.
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { GrantSource, UsageOutcome } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runExpiryPass } from "../src/jobs/expiry-jobs.js";
import { ServerMetrics } from "../src/metrics/server-metrics.js";
import { startServer } from "../src/server.js";
import { createPool, endPool } from "../src/store/database.js";
import { type Clients, FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";
import { errorOf } from "../../test-support/snapshot.js";

const creditTypeId = "metric_credits";
const hourMs = 3_600_000;

/** Sample is one line of the text format. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Scrape is a parsed /metrics answer: its samples and each family's TYPE. */
interface Scrape {
  samples: Sample[];
  types: Map<string, string>;
}

/** parseScrape reads Prometheus' text format (0.0.4): comments, then `name{labels} value` lines. */
function parseScrape(text: string): Scrape {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null) types.set(type[1], type[2]);
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const label of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[label[1]] = label[2];
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return { samples, types };
}

/** sum adds the samples of a name whose labels include these (0 when none). */
function sum(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  return scrape.samples
    .filter((s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value))
    .reduce((total, s) => total + s.value, 0);
}

/** has says whether a sample of a name with these labels is present. */
function has(scrape: Scrape, name: string, labels: Record<string, string> = {}): boolean {
  return scrape.samples.some((s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value));
}

async function scrape(url: string, headers: Record<string, string> = {}): Promise<{ status: number; contentType: string | null; text: string }> {
  const res = await fetch(`${url}/metrics`, { headers });
  return { status: res.status, contentType: res.headers.get("content-type"), text: await res.text() };
}

let t: TestServer;
let clock: FakeClock;
let api: Clients;
let service: Clients;

beforeAll(async () => {
  clock = new FakeClock();
  // One call at a time and no queue: a call made while the test holds the slot is refused.
  t = await startTestServer({ clock, admission: { inFlightMax: 1, queuedMax: 0, queueWaitMs: 0 } });
  api = t.clients(t.adminToken);
  service = t.clients(await t.createKey("service"));
  await api.admin.createCreditType({ creditType: { creditTypeId, displayName: "Metric credits", scale: 0 }, requestId: randomUUID() });
  await api.admin.createFeature({ feature: { featureKey: "chat", displayName: "chat", creditTypeId, burnRate: 3n }, requestId: randomUUID() });
});
afterAll(async () => t?.close());

const cost = (amount: bigint) => ({ case: "credits" as const, value: { creditTypeId, amount } });
const ledgerService = { grpc_service: "burndown.v1.LedgerService" };

describe("GET /metrics", () => {
  it("after traffic on both listeners, has every family with the values the traffic implies", async () => {
    const before = parseScrape((await scrape(t.server.httpUrl)).text);
    const spender = `spender-${randomUUID()}`;
    const expiring = `expiring-${randomUUID()}`;
    await api.webhooks.createWebhookEndpoint({ url: "http://127.0.0.1:9/hook", eventTypes: ["grant.created"], description: "metrics test", requestId: randomUUID() });

    // Writes, over Connect: 1,050 granted, 100 held, 60 committed, 25 burned.
    await api.ledger.grant({ customerId: spender, creditTypeId, amount: 1_000n, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
    const expiresAt = new Date(clock.ms + hourMs);
    await api.ledger.grant({ customerId: expiring, creditTypeId, amount: 50n, source: GrantSource.PROMOTION, reasonCode: "promo", expireTime: timestampFromDate(expiresAt), requestId: randomUUID() });
    const reservation = (await api.ledger.reserve({ customerId: spender, cost: cost(100n), requestId: randomUUID() })).reservation!;
    await api.ledger.commit({ reservationId: reservation.reservationId, amount: 60n, requestId: randomUUID() });
    await api.ledger.burn({ customerId: spender, cost: cost(25n), requestId: randomUUID() });
    const refused = await errorOf(api.ledger.burn({ customerId: spender, cost: cost(1_000_000n), requestId: randomUUID() }));
    expect(refused.code).toBe(Code.FailedPrecondition);

    // Usage: two burned (3 credits each), one duplicate, one rejected (in the future), one unrated (no such feature).
    const first = { eventId: randomUUID(), customerId: spender, featureKey: "chat", quantity: 1n };
    const outcomes = (
      await service.ledger.reportUsage({
        events: [
          first,
          { eventId: randomUUID(), customerId: spender, featureKey: "chat", quantity: 1n },
          { eventId: randomUUID(), customerId: spender, featureKey: "chat", quantity: 1n, eventTime: timestampFromDate(new Date(clock.ms + 48 * hourMs)) },
          { eventId: randomUUID(), customerId: spender, featureKey: "no-such-feature", quantity: 1n },
        ],
      })
    ).results.map((r) => r.outcome);
    expect(outcomes).toEqual([UsageOutcome.BURNED, UsageOutcome.BURNED, UsageOutcome.REJECTED, UsageOutcome.UNRATED]);
    expect((await service.ledger.reportUsage({ events: [first] })).results[0].outcome).toBe(UsageOutcome.DUPLICATE);

    // Reads over both listeners: 2 over Connect, 3 over gRPC (h2c).
    const grpc = t.clients(t.adminToken, "grpc");
    for (const ledger of [api.ledger, api.ledger, grpc.ledger, grpc.ledger, grpc.ledger]) await ledger.getBalance({ customerId: spender, creditTypeId });

    // A refusal by admission control: the test holds the one slot.
    expect(t.server.admission.tryAcquire()).toBe(true);
    try {
      const overloaded = await errorOf(api.ledger.getBalance({ customerId: spender, creditTypeId }));
      expect(overloaded.code).toBe(Code.ResourceExhausted);
    } finally {
      t.server.admission.release();
    }

    // Two hours on: the 50-credit lot has been due an hour and the job has not run.
    clock.advance(2 * hourMs);
    const due = await scrape(t.server.httpUrl);
    expect(due.status).toBe(200);
    expect(due.contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
    const dueScrape = parseScrape(due.text);
    expect(sum(dueScrape, "burndown_expiry_lag_seconds")).toBe(3_600);
    expect(sum(dueScrape, "burndown_webhook_deliveries_pending")).toBe(2);
    expect(sum(dueScrape, "burndown_webhook_delivery_lag_seconds")).toBeGreaterThanOrEqual(0);

    const pass = await runExpiryPass(t.server.deps);
    expect(pass.balancesExpired).toBe(1);
    clock.advance(60_000); // past the backlog cache
    const after = parseScrape((await scrape(t.server.httpUrl)).text);
    const delta = (name: string, labels: Record<string, string> = {}) => sum(after, name, labels) - sum(before, name, labels);
    expect(sum(after, "burndown_expiry_lag_seconds")).toBe(0);

    // RPCs, by method and code, from both listeners.
    expect(delta("grpc_server_handled_total", { ...ledgerService, grpc_method: "GetBalance", grpc_code: "OK" })).toBe(5);
    expect(delta("grpc_server_handled_total", { ...ledgerService, grpc_method: "GetBalance", grpc_code: "ResourceExhausted" })).toBe(1);
    expect(delta("grpc_server_handled_total", { ...ledgerService, grpc_method: "Grant", grpc_code: "OK" })).toBe(2);
    expect(delta("grpc_server_handled_total", { ...ledgerService, grpc_method: "Burn", grpc_code: "OK" })).toBe(1);
    expect(delta("grpc_server_handled_total", { ...ledgerService, grpc_method: "Burn", grpc_code: "FailedPrecondition" })).toBe(1);
    expect(delta("grpc_server_handled_total", { ...ledgerService, grpc_method: "ReportUsage", grpc_code: "OK" })).toBe(2);
    const getBalance = { ...ledgerService, grpc_method: "GetBalance", grpc_code: "OK" };
    expect(delta("grpc_server_handling_seconds_count", getBalance)).toBe(5);
    expect(sum(after, "grpc_server_handling_seconds_bucket", { ...getBalance, le: "+Inf" })).toBe(sum(after, "grpc_server_handling_seconds_count", getBalance));
    expect(sum(after, "grpc_server_handling_seconds_sum", getBalance)).toBeGreaterThan(0);
    const buckets = after.samples.filter((s) => s.name === "grpc_server_handling_seconds_bucket" && s.labels.grpc_method === "GetBalance" && s.labels.grpc_code === "OK").map((s) => s.value);
    expect(buckets.length).toBe(15);
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
    expect(after.types.get("grpc_server_handled_total")).toBe("counter");
    expect(after.types.get("grpc_server_handling_seconds")).toBe("histogram");

    // Admission and the pool.
    expect(delta("burndown_admission_refused_total")).toBe(1);
    expect(delta("burndown_admission_admitted_total")).toBeGreaterThanOrEqual(14);
    expect(sum(after, "burndown_admission_in_flight")).toBe(0);
    expect(sum(after, "burndown_admission_queued")).toBe(0);
    expect(sum(after, "burndown_admission_in_flight_max")).toBe(1);
    expect(sum(after, "burndown_db_pool_connections")).toBeGreaterThanOrEqual(1);
    expect(sum(after, "burndown_db_pool_max")).toBe(t.server.deps.pool.options.max);
    expect(sum(after, "burndown_db_pool_waiting")).toBe(0);
    expect(delta("burndown_db_pool_wait_seconds_count")).toBeGreaterThanOrEqual(14);

    // The write path: grants, reserve, commit, burn, refused burn, 2 usage batches and the expiry pass, each a group.
    expect(delta("burndown_write_group_ops_count")).toBeGreaterThanOrEqual(9);
    expect(delta("burndown_write_group_ops_sum")).toBeGreaterThanOrEqual(delta("burndown_write_group_ops_count"));
    expect(delta("burndown_write_group_transaction_seconds_count")).toBe(delta("burndown_write_group_ops_count"));
    expect(delta("burndown_write_group_transaction_seconds_sum")).toBeGreaterThan(0);

    // Usage outcomes.
    expect(delta("burndown_usage_events_total", { outcome: "burned" })).toBe(2);
    expect(delta("burndown_usage_events_total", { outcome: "duplicate" })).toBe(1);
    expect(delta("burndown_usage_events_total", { outcome: "rejected" })).toBe(1);
    expect(delta("burndown_usage_events_total", { outcome: "unrated" })).toBe(1);
    expect(has(after, "burndown_usage_events_total", { outcome: "shadowed" })).toBe(true);

    // Ledger figures: the credits the traffic moved, and for every kind exactly the sum of the entries written.
    const credits = (kind: string) => delta("burndown_ledger_credits_total", { credit_type: creditTypeId, kind });
    expect(credits("grant")).toBe(1_050);
    expect(credits("burn")).toBe(60 + 25 + 6);
    expect(credits("expire")).toBe(50);
    expect(credits("hold")).toBe(100);
    const written = await t.database.pool.query("select kind, sum(amount)::text as amount from ledger_entries where credit_type_id = $1 group by kind", [creditTypeId]);
    expect(written.rows.length).toBeGreaterThanOrEqual(4);
    for (const row of written.rows) expect({ kind: row.kind, amount: credits(row.kind) }).toEqual({ kind: row.kind, amount: Number(row.amount) });

    // Node's process metrics.
    expect(has(after, "process_cpu_user_seconds_total")).toBe(true);
    expect(has(after, "nodejs_eventloop_lag_seconds")).toBe(true);
    expect(sum(after, "burndown_metrics_query_failures_total")).toBe(0);
  });

  it("answers only the bearer token when one is set, and each server counts its own calls", async () => {
    const other = await startServer({ pool: t.database.serverPool, host: "127.0.0.1", httpPort: 0, grpcPort: 0, jobIntervalMs: 0, log: () => {}, metricsToken: "metrics-token-of-this-test" });
    try {
      expect((await scrape(other.httpUrl)).status).toBe(401);
      expect((await scrape(other.httpUrl, { authorization: "Bearer not-the-metrics-token" })).status).toBe(401);
      const answered = await scrape(other.httpUrl, { authorization: "Bearer metrics-token-of-this-test" });
      expect(answered.status).toBe(200);
      const own = parseScrape(answered.text);
      expect(has(own, "grpc_server_handled_total")).toBe(false);
      expect(has(parseScrape((await scrape(t.server.httpUrl)).text), "grpc_server_handled_total")).toBe(true);
      expect((await fetch(`${other.httpUrl}/metrics`, { method: "POST" })).status).toBe(405);
    } finally {
      await other.close();
    }
  });

  it("leaves the database-backed gauges out and counts the failure when the database cannot be read, and the scrape still answers", async () => {
    const url = new URL(t.database.serverUrl);
    url.pathname = `/no_such_database_${randomUUID().replaceAll("-", "")}`;
    const pool = createPool(url.toString());
    const lines: string[] = [];
    try {
      const metrics = new ServerMetrics({ pool, now: () => new Date(), log: (line) => lines.push(line) });
      const scraped = parseScrape(await metrics.registry.metrics());
      expect(has(scraped, "burndown_expiry_lag_seconds")).toBe(false);
      expect(has(scraped, "burndown_webhook_deliveries_pending")).toBe(false);
      expect(sum(scraped, "burndown_metrics_query_failures_total")).toBe(1);
      expect(has(scraped, "burndown_db_pool_max")).toBe(true);
      expect(lines).toEqual([expect.stringMatching(/^metrics: reading the backlogs failed: /)]);
    } finally {
      await endPool(pool);
    }
  });

  it("exports every metric the documented alerting rules name (docs/prometheus-alerts.yml)", async () => {
    const rules = await readFile(path.join(import.meta.dirname, "../../docs/prometheus-alerts.yml"), "utf8");
    const exprs = rules.split("\n").filter((line) => !line.trim().startsWith("#")).join("\n");
    const named = new Set([...exprs.matchAll(/\b((?:grpc_server|burndown)_[a-z_]+)/g)].map((match) => match[1].replace(/_(bucket|count|sum)$/, "")));
    expect(named.size).toBeGreaterThan(10);
    // A server's own families, and the queue consumer's (present only when one runs: a stand-in gives its figures).
    const metrics = new ServerMetrics({ pool: t.database.serverPool, now: () => new Date(), log: () => {} });
    metrics.watchUsageQueue({ stats: () => ({ batches: 0, acked: { burned: 0, duplicate: 0, rejected: 0, unrated: 0, shadowed: 0, not_billed: 0 }, deadLettered: 0, handedBack: 0, failed: 0, consuming: false, pending: 0, redelivered: 0 }), onAcked: () => {}, stop: async () => {} });
    const exported = new Set([
      ...parseScrape((await scrape(t.server.httpUrl)).text).samples.map((sample) => sample.name),
      ...parseScrape(await metrics.registry.metrics()).samples.map((sample) => sample.name),
    ].map((name) => name.replace(/_(bucket|count|sum)$/, "")));
    expect([...named].filter((name) => !exported.has(name))).toEqual([]);
  });
});
