// A server consuming usage from the queue is killed (SIGKILL) in the middle of a large
// backlog, and another started on the same database and durable consumer: every event is
// burned exactly once (balances, usage rows and burn entries add up), nothing is lost,
// each unrated event has exactly one dead letter, and the durable consumer is left with
// nothing pending. The servers are real processes
// started as `npm start` starts them, configured by the environment alone.
import { randomUUID } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService, EnforcementMode, GrantSource, LedgerService } from "@burndown/sdk";
import { afterAll, describe, expect, it, vi } from "vitest";
import { newApiKeyToken, parseToken } from "../src/service/api-keys.js";
import { bearer } from "../../test-support/bearer.js";
import { createTestDatabase, type TestDatabase } from "../../test-support/database.js";
import { createTestQueue, natsReachable, natsUrl, type TestQueue } from "../../test-support/nats.js";
import { type ServerProcess, startServerProcess } from "../../test-support/server-process.js";

const reachable = await natsReachable();
if (!reachable && !process.env.CI) console.warn(`SKIPPED: NATS JetStream is not reachable at ${natsUrl}, so the usage-queue crash test (server/test/queue-usage-crash.test.ts) did not run`);

const creditTypeId = "api_credits";
const featureKey = "chat";
const events = 6_000;
const customerCount = 12;
const grantEach = 1_000_000n;

describe.skipIf(!reachable && !process.env.CI)("usage from the queue across a server killed mid-batch", () => {
  let database: TestDatabase | undefined;
  let queue: TestQueue | undefined;
  const servers: ServerProcess[] = [];

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop("SIGKILL")));
    await queue?.close();
    await database?.drop();
  });

  it("burns every event exactly once after a SIGKILL and a restart", async () => {
    database = await createTestDatabase();
    queue = await createTestQueue();
    const token = newApiKeyToken();
    // The admin key reports the usage: configured before the server starts, as an operator would.
    const env = {
      DATABASE_URL: database.serverUrl,
      BURNDOWN_ADMIN_KEY: token,
      BURNDOWN_JOB_INTERVAL_MS: "0",
      ...Object.fromEntries(
        Object.entries({
          URL: natsUrl, STREAM: queue.stream, SUBJECT: queue.subject, DEAD_LETTER_SUBJECT: queue.deadLetterSubject,
          BATCH_SIZE: "100", ACK_WAIT_MS: "2000", API_KEY_ID: parseToken(token)!.keyId,
        }).map(([name, value]) => [`BURNDOWN_NATS_${name}`, value]),
      ),
    };
    const first = await startServerProcess(env);
    servers.push(first);
    const transport = createConnectTransport({ baseUrl: first.httpUrl, httpVersion: "1.1", interceptors: [bearer(token)] });
    const admin = createClient(AdminService, transport);
    const ledger = createClient(LedgerService, transport);
    await admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 0 }, requestId: randomUUID() });
    await admin.createFeature({ feature: { featureKey, displayName: featureKey, creditTypeId, burnRate: 1n, enforcementMode: EnforcementMode.ENFORCE }, requestId: randomUUID() });
    const customers = Array.from({ length: customerCount }, () => `cust-${randomUUID()}`);
    for (const customerId of customers) {
      await admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
      await ledger.grant({ customerId, creditTypeId, amount: grantEach, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
    }
    // One event in 50 names a customer that does not exist: unrated, each owed exactly one dead letter.
    const sent = Array.from({ length: events }, (_, i) => ({ eventId: randomUUID(), customerId: i % 50 === 49 ? `ghost-${i}` : customers[i % customerCount], featureKey, quantity: BigInt(1 + (i % 5)) }));
    const unrated = sent.filter((event) => event.customerId.startsWith("ghost-"));
    const rated = sent.filter((event) => !event.customerId.startsWith("ghost-"));
    const usageRows = async () => (await database!.pool.query("select count(*)::int as n from usage_events")).rows[0].n as number;

    // The backlog goes in while the first server consumes; it dies with part of it burned.
    for (let i = 0; i < sent.length; i += 500) await Promise.all(sent.slice(i, i + 500).map((event) => queue!.publish(event)));
    await vi.waitFor(async () => expect(await usageRows()).toBeGreaterThan(events / 10), { timeout: 60_000, interval: 10 });
    first.child.kill("SIGKILL");
    await first.stop();
    const atKill = await usageRows();
    // It died holding messages it had not acknowledged: they are JetStream's to deliver again.
    expect((await queue.jsm.consumers.info(queue.stream, "burndown-usage")).num_ack_pending).toBeGreaterThan(0);
    expect(atKill).toBeLessThan(events);

    const second = await startServerProcess(env);
    servers.push(second);
    await vi.waitFor(async () => {
      const info = await queue!.jsm.consumers.info(queue!.stream, "burndown-usage");
      expect(info.num_pending + info.num_ack_pending).toBe(0);
      expect(await usageRows()).toBe(events);
    }, { timeout: 90_000, interval: 200 });

    const rows = await database.pool.query("select count(*)::int as n, count(distinct event_id)::int as ids, count(*) filter (where status = 'burned')::int as burned from usage_events");
    expect(rows.rows[0]).toEqual({ n: events, ids: events, burned: rated.length });
    expect(new Set((await database.pool.query("select event_id from usage_events")).rows.map((row) => row.event_id))).toEqual(new Set(sent.map((event) => event.eventId)));
    const spent = rated.reduce((sum, event) => sum + event.quantity, 0n);
    const balances = await database.pool.query("select coalesce(sum(amount), 0)::text as burned from ledger_entries where kind = 'burn'");
    expect(BigInt(balances.rows[0].burned)).toBe(spent);
    const ledgerAfter = createClient(LedgerService, createConnectTransport({ baseUrl: second.httpUrl, httpVersion: "1.1", interceptors: [bearer(token)] }));
    let available = 0n;
    for (const customerId of customers) available += (await ledgerAfter.getBalance({ customerId, creditTypeId })).balances[0].available;
    expect(available).toBe(BigInt(customerCount) * grantEach - spent);
    // One dead letter per unrated event, whether the first server died before, while or after it stored it.
    const dead = await queue.deadLetters();
    expect(dead.map((m) => m.headers?.get("Burndown-Outcome"))).toEqual(unrated.map(() => "unrated"));
    expect(new Set(dead.map((m) => m.headers?.get("Burndown-Event-Id")))).toEqual(new Set(unrated.map((event) => event.eventId)));
    expect(dead).toHaveLength(unrated.length);
    console.log(`queue crash test: ${atKill} of ${events} events recorded when the first server was killed`);
  }, 240_000);
});
