// Usage from a NATS JetStream queue against the real NATS of this machine: events
// published are burned exactly as ReportUsage burns them; an event delivered twice (a
// second copy, a redelivery after a replica died holding it, or sent by RPC too) burns
// once; two replicas on one durable consumer burn each event once; rejected and unrated
// events reach the dead-letter subject with their reason, and none is acknowledged before
// its dead letter is stored; a message the ledger cannot record (a trigger refuses it)
// holds up no other and ends as a dead letter, unless the ledger records nothing at all;
// the consumer's backlog, delay and redeliveries are counted; the SDK's publisher feeds
// the consumer. Each test has its own
// streams and customers. Without NATS these tests skip loudly, unless CI is set.
import { randomUUID } from "node:crypto";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type BurndownClient, createBurndownClient, UsageOutcome } from "@burndown/sdk";
import { createUsagePublisher } from "@burndown/sdk/usage-queue";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type UsageConsumer, startUsageConsumer } from "../src/queue/usage-consumer.js";
import { ServerMetrics } from "../src/metrics/server-metrics.js";
import { type RunningServer, startServer } from "../src/server.js";
import { parseToken } from "../src/service/api-keys.js";
import { type LedgerFixture, startLedgerFixture } from "../../test-support/ledger-fixture.js";
import { quietPort } from "../../test-support/ports.js";
import { addDurable, createTestQueue, natsReachable, natsUrl, takeWithoutAck, type TestQueue } from "../../test-support/nats.js";

const reachable = await natsReachable();
if (!reachable && !process.env.CI) console.warn(`SKIPPED: NATS JetStream is not reachable at ${natsUrl}, so the usage-queue tests (server/test/queue-usage.test.ts) did not run`);

const waitLong = { timeout: 30_000, interval: 25 };

describe.skipIf(!reachable && !process.env.CI)("usage from a NATS JetStream queue", () => {
  let f: LedgerFixture;
  let keyId: string;
  let queue: TestQueue;
  const consumers: UsageConsumer[] = [];

  beforeAll(async () => {
    f = await startLedgerFixture();
    keyId = parseToken(f.serviceToken)!.keyId;
  });
  afterAll(async () => {
    await f?.close();
  });
  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((consumer) => consumer.stop()));
    await queue?.close();
  });

  function consume(server: RunningServer, overrides: Parameters<TestQueue["config"]>[1] = {}): UsageConsumer {
    const consumer = startUsageConsumer(server.deps, server.admission, queue.config(keyId, overrides), process.env.BURNDOWN_TEST_LOG ? (message) => console.error(message) : () => {});
    consumers.push(consumer);
    return consumer;
  }

  const ackedTotal = (consumer: UsageConsumer) => Object.values(consumer.stats().acked).reduce((a, b) => a + b, 0);
  const available = async (customerId: string) => (await f.balanceOf(customerId)).available;
  const usageRows = async (customerId: string) =>
    (await f.t.database.pool.query("select status, count(*)::int as n from usage_events where customer_id = $1 group by status order by status", [customerId])).rows as { status: string; n: number }[];

  it("burns queued events exactly as ReportUsage burns the same events", async () => {
    queue = await createTestQueue();
    const [viaQueue, viaRpc] = [await f.customer(1_000n), await f.customer(1_000n)];
    // Quantities past the balance too: usage is enforced after the fact, as by RPC.
    const quantities = [1n, 5n, 17n, 3n, 200n, 400n, 2n];
    const startMs = Date.now() - 60_000;
    const events = (customerId: string) => quantities.map((quantity, i) => ({ eventId: randomUUID(), customerId, featureKey: f.featureKey, quantity, eventTime: timestampFromMs(startMs + i) }));
    for (const event of events(viaQueue)) await queue.publish(event);
    const rpc = await f.t.clients(f.serviceToken).ledger.reportUsage({ events: events(viaRpc) });
    const consumer = consume(f.t.server);
    await vi.waitFor(() => expect(ackedTotal(consumer)).toBe(quantities.length), waitLong);

    expect(consumer.stats().acked.burned).toBe(rpc.results.filter((r) => r.outcome === UsageOutcome.BURNED).length);
    expect(await available(viaQueue)).toBe(await available(viaRpc));
    expect(await available(viaQueue)).toBe(1_000n - 2n * quantities.reduce((a, b) => a + b, 0n));
    expect(await usageRows(viaQueue)).toEqual(await usageRows(viaRpc));
    expect(await f.burnEntries(viaQueue)).toBe(await f.burnEntries(viaRpc));
    // The audit trail says these events came from the queue, through which consumer.
    const audit = await f.t.database.pool.query("select actor, target, details from audit_log where action = 'report_usage_from_queue' and target = $1", [`nats:${queue.stream}/burndown-usage`]);
    expect(audit.rows.map((row) => row.actor)).toEqual(audit.rows.map(() => keyId));
    expect(audit.rows.flatMap((row) => row.details.new.event_ids).sort()).toEqual(
      (await f.t.database.pool.query("select event_id from usage_events where customer_id = $1", [viaQueue])).rows.map((row) => row.event_id).sort(),
    );
  });

  it("burns an event once when it comes twice, is redelivered after a replica died holding it, or was sent by RPC too", async () => {
    queue = await createTestQueue();
    const customerId = await f.customer(1_000n);
    const twice = { eventId: randomUUID(), customerId, featureKey: f.featureKey, quantity: 10n };
    const heldByTheDead = { eventId: randomUUID(), customerId, featureKey: f.featureKey, quantity: 20n };
    const alsoByRpc = { eventId: randomUUID(), customerId, featureKey: f.featureKey, quantity: 40n };
    // Two copies JetStream stores both of (no Nats-Msg-Id): only the ledger's dedup stands between them and a double burn.
    await queue.publish(twice);
    await queue.publish(twice);
    await f.t.clients(f.serviceToken).ledger.reportUsage({ events: [alsoByRpc] });
    await queue.publish(alsoByRpc);
    await queue.publish(heldByTheDead);
    // A replica takes them all and dies without acknowledging any: JetStream delivers them again after the ack wait.
    await addDurable(queue, "burndown-usage", 1_000);
    const taken = await takeWithoutAck(queue, "burndown-usage", 4);
    expect(taken).toHaveLength(4);
    const consumer = consume(f.t.server);
    await vi.waitFor(() => expect(ackedTotal(consumer)).toBe(4), waitLong);

    expect(consumer.stats().acked).toMatchObject({ burned: 2, duplicate: 2 });
    expect(await available(customerId)).toBe(1_000n - 2n * (10n + 20n + 40n));
    expect(await usageRows(customerId)).toEqual([{ status: "burned", n: 3 }]);
    const info = await queue.jsm.consumers.info(queue.stream, "burndown-usage");
    expect(info.num_ack_pending + info.num_pending).toBe(0);
  });

  it("lets two replicas share one durable consumer, each event burned once", async () => {
    queue = await createTestQueue();
    const customers = await Promise.all([1, 2, 3, 4].map(() => f.customer(1_000_000n)));
    const events = Array.from({ length: 400 }, (_, i) => ({ eventId: randomUUID(), customerId: customers[i % customers.length], featureKey: f.featureKey, quantity: BigInt(1 + (i % 7)) }));
    const replica = await f.t.startReplica();
    const consumers = [consume(f.t.server, { batchSize: 16 }), consume(replica, { batchSize: 16 })];
    // Each event published twice, the copies apart, while both consume.
    await Promise.all([...events, ...events].map((event) => queue.publish(event)));
    await vi.waitFor(() => expect(consumers.map(ackedTotal).reduce((a, b) => a + b)).toBe(2 * events.length), waitLong);

    const burned = consumers.map((c) => c.stats().acked.burned).reduce((a, b) => a + b);
    expect(burned).toBe(events.length);
    for (const [index, customerId] of customers.entries()) {
      const spent = events.filter((_, i) => i % customers.length === index).reduce((sum, event) => sum + 2n * event.quantity, 0n);
      expect(await available(customerId)).toBe(1_000_000n - spent);
    }
    const rows = await f.t.database.pool.query("select count(*)::int as n, count(distinct event_id)::int as ids from usage_events where customer_id = any($1)", [customers]);
    expect(rows.rows[0]).toEqual({ n: events.length, ids: events.length });
  });

  it("sends rejected and unrated events to the dead-letter subject with their reason, and keeps the unrated ones", async () => {
    queue = await createTestQueue();
    const customerId = await f.customer(1_000n);
    const garbage = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]);
    const zero = { eventId: randomUUID(), customerId, featureKey: f.featureKey, quantity: 0n };
    const unknownCustomer = { eventId: randomUUID(), customerId: `nobody-${randomUUID()}`, featureKey: f.featureKey, quantity: 1n };
    const unknownFeature = { eventId: randomUUID(), customerId, featureKey: "no_such_feature", quantity: 1n };
    const asJson = { eventId: randomUUID(), customerId, featureKey: f.featureKey, quantity: 3n };
    await queue.publish(garbage);
    await queue.publish(zero);
    await queue.publish(unknownCustomer);
    await queue.publish(unknownFeature);
    await queue.publish(new TextEncoder().encode(JSON.stringify({ eventId: asJson.eventId, customerId, featureKey: f.featureKey, quantity: "3" })), { contentType: "application/json" });
    await queue.publish(new TextEncoder().encode("quantity=3"), { contentType: "text/plain" });
    const consumer = consume(f.t.server);
    // Watched from the start, as the server does: the six messages' delays from the stream to their acks are counted.
    const metrics = new ServerMetrics({ pool: f.t.database.pool, now: () => new Date(), log: () => {} });
    metrics.watchUsageQueue(consumer);
    await vi.waitFor(() => expect(ackedTotal(consumer)).toBe(6), waitLong);

    // The reasons ReportUsage gives the same events.
    const rpc = await f.t.clients(f.serviceToken).ledger.reportUsage({
      events: [zero, unknownCustomer, unknownFeature].map((event) => ({ ...event, eventId: randomUUID() })),
    });
    const dead = await queue.deadLetters();
    const seen = dead.map((m) => ({ outcome: m.headers?.get("Burndown-Outcome"), reason: m.headers?.get("Burndown-Reason"), eventId: m.headers?.get("Burndown-Event-Id"), data: Buffer.from(m.data) }));
    expect(seen).toEqual([
      { outcome: "rejected", reason: "MALFORMED_MESSAGE", eventId: "", data: Buffer.from(garbage) },
      { outcome: "rejected", reason: rpc.results[0].reason, eventId: zero.eventId, data: expect.any(Buffer) },
      { outcome: "unrated", reason: rpc.results[1].reason, eventId: unknownCustomer.eventId, data: expect.any(Buffer) },
      { outcome: "unrated", reason: rpc.results[2].reason, eventId: unknownFeature.eventId, data: expect.any(Buffer) },
      { outcome: "rejected", reason: "UNSUPPORTED_CONTENT_TYPE", eventId: "", data: Buffer.from("quantity=3") },
    ]);
    expect(rpc.results.map((r) => r.outcome)).toEqual([UsageOutcome.REJECTED, UsageOutcome.UNRATED, UsageOutcome.UNRATED]);
    expect(rpc.results.map((r) => r.reason)).toEqual(["INVALID_QUANTITY", "CUSTOMER_NOT_FOUND", "FEATURE_NOT_FOUND"]);
    expect(consumer.stats()).toMatchObject({ deadLettered: 5, acked: { burned: 1, rejected: 3, unrated: 2 } });
    // The same figures as metrics.
    const scraped = await metrics.registry.metrics();
    for (const line of [
      'burndown_usage_queue_messages_total{outcome="burned"} 1',
      'burndown_usage_queue_messages_total{outcome="rejected"} 3',
      'burndown_usage_queue_messages_total{outcome="unrated"} 2',
      "burndown_usage_queue_dead_lettered_total 5",
      "burndown_usage_queue_consuming 1",
      "burndown_usage_queue_redelivered_total 0",
      "burndown_usage_queue_pending_messages 0",
      "burndown_usage_queue_message_age_seconds_count 6",
    ]) expect(scraped.split("\n")).toContain(line);
    // Unrated events are kept by the ledger too (ListUnratedEvents): the dead letter is a notice.
    const kept = await f.t.database.pool.query("select event_id, reason from usage_events where status = 'unrated' and event_id = any($1) order by reason", [[unknownCustomer.eventId, unknownFeature.eventId]]);
    expect(kept.rows).toEqual([{ event_id: unknownCustomer.eventId, reason: "CUSTOMER_NOT_FOUND" }, { event_id: unknownFeature.eventId, reason: "FEATURE_NOT_FOUND" }]);
    expect(await available(customerId)).toBe(1_000n - 6n);
  });

  it("acknowledges a rejected or unrated event only once its dead letter is stored, though its redelivery is a duplicate", async () => {
    queue = await createTestQueue({ withoutDeadLetterStream: true });
    const customerId = await f.customer(1_000n);
    const zero = { eventId: randomUUID(), customerId, featureKey: f.featureKey, quantity: 0n };
    const unknownCustomer = { eventId: randomUUID(), customerId: `nobody-${randomUUID()}`, featureKey: f.featureKey, quantity: 1n };
    await queue.publish(zero);
    await queue.publish(unknownCustomer);
    const consumer = consume(f.t.server);
    const ages: number[] = [];
    consumer.onAcked((message) => ages.push(message.ageSeconds));
    // The unrated event is recorded at its first delivery; each later one answers "duplicate".
    await vi.waitFor(() => expect(consumer.stats().handedBack).toBeGreaterThanOrEqual(4), waitLong);
    expect(consumer.stats().acked).toMatchObject({ rejected: 0, unrated: 0, duplicate: 0 });
    expect(await usageRows(unknownCustomer.customerId)).toEqual([{ status: "unrated", n: 1 }]);
    await queue.jsm.streams.add({ name: queue.deadLetterStream, subjects: [queue.deadLetterSubject] });
    await vi.waitFor(() => expect(consumer.stats().acked).toMatchObject({ rejected: 1, duplicate: 1 }), waitLong);
    // Each hand-back came again as a redelivery, and the two waited in the stream through at least two rounds (1 s each).
    expect(consumer.stats().redelivered).toBe(consumer.stats().handedBack);
    expect(Math.min(...ages)).toBeGreaterThan(1.5);
    const dead = (await queue.deadLetters()).map((m) => ({ outcome: m.headers?.get("Burndown-Outcome"), reason: m.headers?.get("Burndown-Reason"), eventId: m.headers?.get("Burndown-Event-Id") }));
    expect(dead).toHaveLength(2);
    expect(dead).toEqual(
      expect.arrayContaining([
        { outcome: "rejected", reason: "INVALID_QUANTITY", eventId: zero.eventId },
        { outcome: "unrated", reason: "CUSTOMER_NOT_FOUND", eventId: unknownCustomer.eventId },
      ]),
    );
  });

  it("sends one dead letter for an unrated event that comes twice, and none once it is rated", async () => {
    queue = await createTestQueue();
    const customerId = `later-${randomUUID()}`;
    const unrated = { eventId: randomUUID(), customerId, featureKey: f.featureKey, quantity: 1n };
    await queue.publish(unrated);
    await queue.publish(unrated);
    const consumer = consume(f.t.server);
    await vi.waitFor(() => expect(ackedTotal(consumer)).toBe(2), waitLong);
    expect(consumer.stats().acked).toMatchObject({ unrated: 1, duplicate: 1 });
    expect((await queue.deadLetters()).map((m) => m.headers?.get("Burndown-Event-Id"))).toEqual([unrated.eventId]);
    // Rated since (as the replay job does): a third copy is a plain duplicate, with no dead letter.
    await f.t.database.pool.query("update usage_events set status = 'burned' where event_id = $1", [unrated.eventId]);
    await queue.publish(unrated, { msgId: randomUUID() });
    await vi.waitFor(() => expect(consumer.stats().acked.duplicate).toBe(2), waitLong);
    expect(await queue.deadLetters()).toHaveLength(1);
  });

  /** poison makes PostgreSQL itself refuse every usage event whose id starts with prefix (a trigger, not a mock): a stand-in for a message the ledger cannot record. */
  async function poison(prefix: string): Promise<() => Promise<void>> {
    const name = `poison_${randomUUID().replaceAll("-", "")}`;
    await f.t.database.pool.query(`create function ${name}() returns trigger language plpgsql as $$ begin raise exception 'test poison: %', new.event_id; end $$`);
    await f.t.database.pool.query(`create trigger ${name} before insert on usage_events for each row when (new.event_id like '${prefix}%') execute function ${name}()`);
    return async () => {
      await f.t.database.pool.query(`drop trigger ${name} on usage_events`);
      await f.t.database.pool.query(`drop function ${name}()`);
    };
  }

  it("records the rest of a batch around a message the ledger cannot record, and dead-letters that one once it keeps failing alone", async () => {
    queue = await createTestQueue();
    const customerId = await f.customer(1_000n);
    const prefix = `poison-${randomUUID()}`;
    const cure = await poison(prefix);
    try {
      const bad = { eventId: `${prefix}-1`, customerId, featureKey: f.featureKey, quantity: 1n };
      const good = Array.from({ length: 9 }, () => ({ eventId: randomUUID(), customerId, featureKey: f.featureKey, quantity: 1n }));
      for (const event of [...good.slice(0, 4), bad, ...good.slice(4)]) await queue.publish(event);
      const consumer = consume(f.t.server);
      // The nine are burned at once, around the bad one.
      await vi.waitFor(() => expect(consumer.stats().acked.burned).toBe(9), waitLong);
      expect(await available(customerId)).toBe(1_000n - 18n);
      // The bad one comes back, alone, until its fifth delivery: then it is a dead letter, not recorded.
      await vi.waitFor(() => expect(consumer.stats().failed).toBe(1), waitLong);
      expect(consumer.stats().redelivered).toBeGreaterThanOrEqual(4);
      const dead = await queue.deadLetters();
      expect(dead).toHaveLength(1);
      expect({ outcome: dead[0].headers?.get("Burndown-Outcome"), reason: dead[0].headers?.get("Burndown-Reason"), eventId: dead[0].headers?.get("Burndown-Event-Id") }).toEqual({
        outcome: "failed", reason: "RECORDING_FAILED", eventId: bad.eventId,
      });
      expect(dead[0].headers?.get("Burndown-Error")).toContain("test poison");
      expect(await usageRows(customerId)).toEqual([{ status: "burned", n: 9 }]);
      const info = await queue.jsm.consumers.info(queue.stream, "burndown-usage");
      expect(info.num_pending + info.num_ack_pending).toBe(0);
    } finally {
      await cure();
    }
  });

  it("hands every message back, however often, when the ledger records none: a broken ledger does not empty the stream into dead letters", async () => {
    queue = await createTestQueue();
    const customerId = await f.customer(1_000n);
    const prefix = `broken-${randomUUID()}`;
    const cure = await poison(prefix);
    const events = Array.from({ length: 3 }, (_, i) => ({ eventId: `${prefix}-${i}`, customerId, featureKey: f.featureKey, quantity: 1n }));
    try {
      for (const event of events) await queue.publish(event);
      const consumer = consume(f.t.server);
      // Past the fifth delivery of each, with nothing recorded meanwhile: none is dead-lettered.
      await vi.waitFor(() => expect(consumer.stats().handedBack).toBeGreaterThanOrEqual(3 * 7), waitLong);
      expect(consumer.stats()).toMatchObject({ failed: 0, deadLettered: 0 });
      await cure();
      await vi.waitFor(() => expect(consumer.stats().acked.burned).toBe(3), waitLong);
    } finally {
      await cure().catch(() => {});
    }
    expect(await queue.deadLetters()).toEqual([]);
    expect(await available(customerId)).toBe(1_000n - 6n);
  });

  it("waits behind calls for an admission slot instead of adding to a full server, its backlog in sight", async () => {
    queue = await createTestQueue();
    const customerId = await f.customer(1_000n);
    const { admission } = f.t.server;
    let held = 0;
    while (admission.tryAcquire()) held++;
    try {
      for (let i = 0; i < 10; i++) await queue.publish({ eventId: randomUUID(), customerId, featureKey: f.featureKey, quantity: 5n });
      // Batches of one: a few are in hand, each waiting for a slot; the rest wait in the stream, and say so.
      const consumer = consume(f.t.server, { batchSize: 1 });
      await vi.waitFor(() => expect(admission.stats().queued).toBeGreaterThanOrEqual(1), waitLong);
      expect(await usageRows(customerId)).toEqual([]);
      expect(consumer.stats().pending).toBeGreaterThan(0);
      for (; held > 0; held--) admission.release();
      await vi.waitFor(() => expect(consumer.stats().acked.burned).toBe(10), waitLong);
      expect(consumer.stats().pending).toBe(0);
    } finally {
      for (; held > 0; held--) admission.release();
    }
    expect(await available(customerId)).toBe(1_000n - 100n);
  });

  it("stops cleanly: batches in hand are recorded and acknowledged, and the next consumer burns the rest once", async () => {
    queue = await createTestQueue();
    const customerId = await f.customer(1_000_000n);
    const events = Array.from({ length: 600 }, () => ({ eventId: randomUUID(), customerId, featureKey: f.featureKey, quantity: 1n }));
    await Promise.all(events.map((event) => queue.publish(event)));
    // A short ack wait: messages on the wire when the pull stops can only come back by it.
    await addDurable(queue, "burndown-usage", 2_000);
    const first = consume(f.t.server, { batchSize: 50 });
    await vi.waitFor(() => expect(first.stats().batches).toBeGreaterThan(0), waitLong);
    await first.stop();
    const stopped = first.stats();
    // What it recorded, it acknowledged: its batches in hand were finished, not dropped.
    expect(await usageRows(customerId)).toEqual([{ status: "burned", n: stopped.acked.burned }]);
    expect(stopped.acked.burned).toBeLessThan(events.length);
    const second = consume(f.t.server, { batchSize: 50 });
    await vi.waitFor(() => expect(second.stats().acked.burned).toBe(events.length - stopped.acked.burned), waitLong);
    expect(await available(customerId)).toBe(1_000_000n - 2n * BigInt(events.length));
  });

  it("burns what the SDK's publisher sends, once even when it is published again", async () => {
    queue = await createTestQueue();
    const customerId = await f.customer(1_000n);
    const publisher = createUsagePublisher({ js: queue.js, subject: queue.subject });
    const first = await publisher.publish({ customerId, featureKey: f.featureKey, quantity: 7n });
    const second = await publisher.publish({ customerId, featureKey: f.featureKey, quantity: 11n });
    // Published again with its id: JetStream's window drops it; the ledger's dedup would too.
    const again = await publisher.publish({ eventId: first.eventId, customerId, featureKey: f.featureKey, quantity: 7n });
    expect(again.duplicate).toBe(true);
    const consumer = consume(f.t.server);
    await vi.waitFor(() => expect(consumer.stats().acked.burned).toBe(2), waitLong);
    expect(await available(customerId)).toBe(1_000n - 2n * (7n + 11n));
    const ids = await f.t.database.pool.query("select event_id from usage_events where customer_id = $1 order by event_id", [customerId]);
    expect(ids.rows.map((row) => row.event_id)).toEqual([first.eventId, second.eventId].sort());
  });

  /** sdkClient is an SDK client of the service key that notes every method it calls. */
  function sdkClient(usageQueue: ReturnType<typeof createUsagePublisher>, called: string[], errors: unknown[]): BurndownClient {
    return createBurndownClient({
      baseUrl: f.t.server.grpcUrl,
      apiKey: f.serviceToken,
      usageQueue,
      onError: (error) => void errors.push(error),
      attemptInterceptors: [(next) => (attempt) => (called.push(attempt.call.method), next(attempt))],
    });
  }

  it("lets the SDK client's reportUsage publish to the queue instead of calling the server (the usageQueue option)", async () => {
    queue = await createTestQueue();
    const customerId = await f.customer(1_000n);
    const called: string[] = [];
    const errors: unknown[] = [];
    const client = sdkClient(createUsagePublisher({ js: queue.js, subject: queue.subject }), called, errors);
    try {
      const receipts = [3n, 4n, 5n].map((quantity) => client.reportUsage({ customerId, featureKey: f.featureKey, quantity }));
      expect(receipts.every((receipt) => receipt.accepted)).toBe(true);
      await Promise.all(receipts.map((receipt) => receipt.durable));
      expect(client.stats().queue).toEqual({ published: 3, fellBack: 0, publishing: 0 });
      expect((await queue.jsm.streams.info(queue.stream)).state.messages).toBe(3);
      const consumer = consume(f.t.server);
      await vi.waitFor(() => expect(consumer.stats().acked.burned).toBe(3), waitLong);
    } finally {
      await client.close();
    }
    expect(await available(customerId)).toBe(1_000n - 2n * 12n);
    expect(called.filter((method) => method === "ReportUsage")).toEqual([]);
    expect(errors).toEqual([]);
  });

  it("sends an event by ReportUsage when the queue refuses it, with the same id and time, so it burns once if both deliver", async () => {
    queue = await createTestQueue();
    const customerId = await f.customer(1_000n);
    const called: string[] = [];
    const errors: unknown[] = [];
    // A subject no stream holds: JetStream refuses every publish.
    const refusing = sdkClient(createUsagePublisher({ js: queue.js, subject: `${queue.subject}.nowhere.${randomUUID()}` }), called, errors);
    try {
      const receipt = refusing.reportUsage({ customerId, featureKey: f.featureKey, quantity: 6n });
      await receipt.durable;
      await refusing.flush();
      expect(refusing.stats().queue).toMatchObject({ published: 0, fellBack: 1 });
      expect(errors.map(String)).toEqual([expect.stringContaining(`publishing ${receipt.eventId} failed, sending it by ReportUsage instead`)]);
    } finally {
      await refusing.close();
    }
    expect(called).toContain("ReportUsage");
    expect(await available(customerId)).toBe(1_000n - 12n);

    // Stored, but its PubAck lost (a timeout): the event is in the queue and sent by ReportUsage too.
    const real = createUsagePublisher({ js: queue.js, subject: queue.subject });
    const lostAck = sdkClient({ publish: async (event) => (await real.publish(event), Promise.reject(new Error("timeout waiting for the PubAck"))) }, called, errors);
    try {
      await lostAck.reportUsage({ customerId, featureKey: f.featureKey, quantity: 7n }).durable;
      await lostAck.flush();
      expect(lostAck.stats().queue).toMatchObject({ published: 0, fellBack: 1 });
    } finally {
      await lostAck.close();
    }
    expect(await available(customerId)).toBe(1_000n - 12n - 14n);
    const consumer = consume(f.t.server);
    // The queued copy is the very event ReportUsage burned (same id, same time): a duplicate, not a reused id.
    await vi.waitFor(() => expect(ackedTotal(consumer)).toBe(1), waitLong);
    expect(consumer.stats().acked.duplicate).toBe(1);
    expect(await available(customerId)).toBe(1_000n - 12n - 14n);
  });
});

// Needs no NATS: it is about NATS being away.
describe("a server whose NATS is unreachable", () => {
  it("starts, serves and stops all the same: the ledger never depends on the queue", async () => {
    const f = await startLedgerFixture();
    const logged: string[] = [];
    try {
      const server = await startServer({
        pool: f.t.database.serverPool, host: "127.0.0.1", httpPort: 0, grpcPort: 0, jobIntervalMs: 0, log: (message) => logged.push(message),
        usageQueue: {
          natsUrl: `127.0.0.1:${await quietPort()}`, stream: "usage", subject: null, durable: "burndown-usage", deadLetterSubject: "usage_dead",
          batchSize: 10, ackWaitMs: 30_000, apiKeyId: parseToken(f.serviceToken)!.keyId, createStream: false,
        },
      });
      await vi.waitFor(() => expect(logged.some((line) => line.startsWith("usage queue:") && line.endsWith("trying again"))).toBe(true), waitLong);
      const customerId = await f.customer(100n);
      expect(server.usageQueue?.stats().consuming).toBe(false);
      // Its figures are on /metrics, saying it is not consuming.
      const scraped = await (await fetch(`${server.httpUrl}/metrics`)).text();
      expect(scraped).toMatch(/^burndown_usage_queue_consuming 0$/m);
      expect(scraped).toMatch(/^burndown_usage_queue_batches_total 0$/m);
      const started = Date.now();
      await server.close();
      expect(Date.now() - started).toBeLessThan(5_000);
      expect((await f.balanceOf(customerId)).available).toBe(100n);
    } finally {
      await f.close();
    }
  });
});
