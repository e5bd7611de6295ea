// Usage from the queue beside ReportUsage: events/s burned from a NATS JetStream backlog
// by the server's consumer, and events/s burned by ReportUsage calls in batches of the
// same size, against the same server process, database and customers, in one run. The
// ratio is what survives a noisy machine.
//   npm run bench:queue -- [--quick]   (DATABASE_URL or an embedded PostgreSQL; NATS at NATS_URL or 127.0.0.1:4222)
// The queue side: the server is stopped, a backlog is published, and a server started
// again drains it; the rate is events burned over the time from its "listening" line to
// the last event recorded (its NATS connection and consumer set-up included).
import { randomUUID } from "node:crypto";
import os from "node:os";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService, LedgerService, UsageOutcome } from "@burndown/sdk";
import pg from "pg";
import { newApiKeyToken, parseToken } from "../server/src/service/api-keys.js";
import { migrate } from "../server/src/store/migrations.js";
import { bearer } from "../test-support/bearer.js";
import { createTestQueue, natsUrl } from "../test-support/nats.js";
import { scratchDatabase } from "../test-support/scratch-database.js";
import { startServerProcess } from "../test-support/server-process.js";
import { seedUsageCatalog } from "./usage-catalog.js";

const quick = process.argv.includes("--quick");
const customersCount = quick ? 1_000 : 10_000;
const durationMs = quick ? 3_000 : 10_000;
const callersCount = 4;
const batchSize = 256;

async function main(): Promise<void> {
  const db = await scratchDatabase("burndown_bench_queue");
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  await migrate(pool);
  const queue = await createTestQueue();
  const token = newApiKeyToken();
  const env = {
    DATABASE_URL: db.url, BURNDOWN_ADMIN_KEY: token, BURNDOWN_JOB_INTERVAL_MS: "1000",
    BURNDOWN_NATS_URL: natsUrl, BURNDOWN_NATS_STREAM: queue.stream, BURNDOWN_NATS_SUBJECT: queue.subject,
    BURNDOWN_NATS_DEAD_LETTER_SUBJECT: queue.deadLetterSubject, BURNDOWN_NATS_BATCH_SIZE: String(batchSize), BURNDOWN_NATS_API_KEY_ID: parseToken(token)!.keyId,
  };
  let server = await startServerProcess(env);
  try {
    const transport = createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [bearer(token)] });
    const ledger = createClient(LedgerService, transport);
    const admin = createClient(AdminService, transport);
    const customers = await seedUsageCatalog(ledger, admin, customersCount);
    const event = () => ({ eventId: randomUUID(), customerId: customers[Math.floor(Math.random() * customers.length)], featureKey: "tokens", quantity: 1n });

    // ReportUsage: callersCount callers, batches of batchSize, for durationMs.
    let rpcEvents = 0;
    const deadline = Date.now() + durationMs;
    const rpcStarted = performance.now();
    await Promise.all(Array.from({ length: callersCount }, async () => {
      while (Date.now() < deadline) {
        const res = await ledger.reportUsage({ events: Array.from({ length: batchSize }, event) });
        if (res.results.some((result) => result.outcome !== UsageOutcome.BURNED)) throw new Error("an event was not burned");
        rpcEvents += batchSize;
      }
    }));
    const rpcPerSecond = rpcEvents / ((performance.now() - rpcStarted) / 1000);
    await server.stop();

    // The queue: a backlog of about as many events as ReportUsage burned, drained by a fresh server.
    const backlog = Math.max(20_000, Math.min(100_000, Math.round(rpcEvents / 1_000) * 1_000));
    const before = Number((await pool.query("select count(*) as n from usage_events")).rows[0].n);
    const publishStarted = performance.now();
    for (let start = 0; start < backlog; start += 1_000) await Promise.all(Array.from({ length: 1_000 }, () => queue.publish(event())));
    const publishPerSecond = backlog / ((performance.now() - publishStarted) / 1000);
    server = await startServerProcess(env);
    const drainStarted = performance.now();
    for (;;) {
      const recorded = Number((await pool.query("select count(*) as n from usage_events")).rows[0].n) - before;
      if (recorded >= backlog) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const queuePerSecond = backlog / ((performance.now() - drainStarted) / 1000);
    const burned = Number((await pool.query("select count(*) as n from usage_events where status = 'burned'")).rows[0].n);
    if (burned !== before + backlog) throw new Error(`expected ${before + backlog} burned events, found ${burned}`);

    console.log(`\n${os.cpus().length} cores, ${customersCount} customers, batches of ${batchSize}, server in its own process, NATS at ${natsUrl}\n`);
    console.log("| path | events/s | × ReportUsage |");
    console.log("| --- | ---: | ---: |");
    console.log(`| ReportUsage, ${callersCount} callers, Connect over HTTP/1.1 | ${Math.round(rpcPerSecond)} | 1.00 |`);
    console.log(`| queue: one consumer draining a backlog of ${backlog} | ${Math.round(queuePerSecond)} | ${(queuePerSecond / rpcPerSecond).toFixed(2)} |`);
    console.log(`\n(publishing the backlog from this process: ${Math.round(publishPerSecond)} events/s, 1,000 in flight)`);
  } finally {
    await server.stop();
    await pool.end();
    await queue.close();
    await db.stop();
  }
}

await main();
