// ReportUsage throughput: events/s for batches of 100 and 1,000 across 10,000 customers,
// against a server in its own process, with a baseline measured in the same run: the
// same usage burned one event per call (Burn by feature). Ratios, not absolute figures,
// are what survive a noisy machine.
//   npm run bench -- [--quick]      (DATABASE_URL, or an embedded PostgreSQL)
import { randomUUID } from "node:crypto";
import os from "node:os";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService, LedgerService, UsageOutcome } from "@burndown/sdk";
import pg from "pg";
import { newApiKeyToken } from "../server/src/service/api-keys.js";
import { migrate } from "../server/src/store/migrations.js";
import { scratchDatabase } from "../test-support/scratch-database.js";
import { startServerProcess } from "../test-support/server-process.js";
import { seedUsageCatalog } from "./usage-catalog.js";

const quick = process.argv.includes("--quick");
const customersCount = 10_000;
const durationMs = quick ? 3_000 : 10_000;
const callersCount = 4;

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function timed(name: string, eventsPerCall: number, call: () => Promise<number>) {
  const latencies: number[] = [];
  let events = 0;
  const deadline = Date.now() + durationMs;
  const started = performance.now();
  await Promise.all(Array.from({ length: callersCount }, async () => {
    while (Date.now() < deadline) {
      const t0 = performance.now();
      // Not "events += await call()": that reads events before the await and loses
      // the other callers' updates.
      const done = await call();
      events += done;
      latencies.push(performance.now() - t0);
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { name, eventsPerCall, eventsPerSecond: events / seconds, calls: latencies.length, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
}

async function main(): Promise<void> {
  const db = await scratchDatabase("burndown_bench");
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  await migrate(pool);
  await pool.end();
  const token = newApiKeyToken();
  const server = await startServerProcess({ DATABASE_URL: db.url, BURNDOWN_ADMIN_KEY: token, BURNDOWN_JOB_INTERVAL_MS: "1000" });
  try {
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    };
    const transport = createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [auth] });
    const ledger = createClient(LedgerService, transport);
    const admin = createClient(AdminService, transport);
    const customers = await seedUsageCatalog(ledger, admin, customersCount);
    const pick = () => customers[Math.floor(Math.random() * customers.length)];
    const batch = (size: number) => async () => {
      const res = await ledger.reportUsage({ events: Array.from({ length: size }, () => ({ eventId: randomUUID(), customerId: pick(), featureKey: "tokens", quantity: 1n })) });
      if (res.results.some((result) => result.outcome !== UsageOutcome.BURNED)) throw new Error("an event was not burned");
      return size;
    };
    const single = async () => {
      await ledger.burn({ customerId: pick(), cost: { case: "usage", value: { featureKey: "tokens", quantity: 1n } }, requestId: randomUUID() });
      return 1;
    };
    const baseline = await timed("Burn, one event per call (baseline)", 1, single);
    const rows = [baseline, await timed("ReportUsage, batches of 100", 100, batch(100)), await timed("ReportUsage, batches of 1,000", 1_000, batch(1_000))];
    console.log(`\n${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${customersCount} customers, ${callersCount} concurrent callers, ${durationMs / 1000} s each, Connect over HTTP/1.1, server in its own process\n`);
    console.log("| scenario | events/s | × baseline | calls | p50 ms | p99 ms |");
    console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (const row of rows) {
      console.log(`| ${row.name} | ${Math.round(row.eventsPerSecond)} | ${(row.eventsPerSecond / baseline.eventsPerSecond).toFixed(1)} | ${row.calls} | ${row.p50Ms.toFixed(1)} | ${row.p99Ms.toFixed(1)} |`);
    }
  } finally {
    await server.stop();
    await db.stop();
  }
}

await main();
