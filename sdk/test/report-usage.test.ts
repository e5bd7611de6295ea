// Background usage reporting against a real server: events are batched (many events,
// few RPCs), a lone event waits no longer than its linger time, flush and close wait for
// the answers, the queue bound drops and counts instead of growing, a batch retried after
// a timeout never burns twice, and close with the ledger down returns what it could not
// send. Time is a manual clock; the fault proxy plays the unreachable ledger.
import { type BurndownClient, type BurndownClientOptions, createBurndownClient, UnavailableError, type UsageEventResult } from "@burndown/sdk";
import { Code } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { attemptRecorder } from "../../test-support/attempt-recorder.js";
import { type FaultProxy, startFaultProxy } from "../../test-support/fault-proxy.js";
import { type LedgerFixture, startLedgerFixture } from "../../test-support/ledger-fixture.js";
import { ManualClock } from "../../test-support/manual-clock.js";

const uuidv7Pattern = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let f: LedgerFixture;
let proxy: FaultProxy;
const clients: BurndownClient[] = [];

beforeAll(async () => {
  f = await startLedgerFixture();
  proxy = await startFaultProxy(f.t.server.grpcUrl);
});
afterEach(async () => {
  proxy.setMode({ kind: "pass" });
  await Promise.all(clients.splice(0).map((client) => client.close({ timeoutMs: 10_000 })));
});
afterAll(async () => {
  await proxy.close();
  await f.close();
});

function reporter(options: Partial<BurndownClientOptions> & { clock: ManualClock }): BurndownClient {
  const client = createBurndownClient({ baseUrl: proxy.url, apiKey: f.serviceToken, random: () => 0.5, onError: () => {}, ...options });
  clients.push(client);
  return client;
}

async function usageEventsOf(customerIds: string[]): Promise<number> {
  const result = await f.t.database.pool.query("select count(*)::int as n from usage_events where customer_id = any($1)", [customerIds]);
  return result.rows[0].n;
}

const event = (customerId: string) => ({ customerId, featureKey: f.featureKey, quantity: 1n });

describe("batching", () => {
  it("many events make few RPCs: 1,000 events in batches of 100 are 10 ReportUsage calls, all answered when flush resolves", async () => {
    const customers = await Promise.all(Array.from({ length: 10 }, () => f.customer(10_000n)));
    const client = reporter({ clock: new ManualClock(new Set(["backoff"])), usage: { batchSizeMax: 100, lingerMsMax: 60_000 } });
    for (let index = 0; index < 1_000; index++) expect(client.reportUsage(event(customers[index % customers.length])).accepted).toBe(true);
    expect(await client.flush()).toEqual({ drained: true, pending: 0 });
    expect(client.stats()).toMatchObject({ accepted: 1_000, sent: 1_000, batchesSent: 10, pending: 0, dropped: 0, rejected: 0, duplicates: 0 });
    expect(await usageEventsOf(customers)).toBe(1_000);
    for (const customerId of customers) expect((await f.balanceOf(customerId)).burned).toBe(100n * f.featureRate);
  });

  it("a few events wait for the linger time, then go together in one batch", async () => {
    const customerId = await f.customer(100n);
    const clock = new ManualClock(new Set(["backoff"]));
    let answered: (results: UsageEventResult[]) => void = () => {};
    const answer = new Promise<UsageEventResult[]>((resolve) => (answered = resolve));
    const client = reporter({ clock, usage: { batchSizeMax: 100, lingerMsMax: 200 }, onUsageResults: (results) => answered(results) });
    for (let index = 0; index < 3; index++) client.reportUsage(event(customerId));
    await clock.untilSleeping("linger");
    expect(client.stats()).toMatchObject({ batchesSent: 0, pending: 3 });
    clock.advance(200);
    expect(await answer).toHaveLength(3);
    expect(client.stats()).toMatchObject({ batchesSent: 1, sent: 3, pending: 0 });
    expect((await f.balanceOf(customerId)).burned).toBe(3n * f.featureRate);
  });

  it("each event gets a UUIDv7 id and an event time at acceptance; an id the caller gives is kept", async () => {
    const customerId = await f.customer(100n);
    const client = reporter({ clock: new ManualClock(new Set(["backoff"])) });
    const made = client.reportUsage(event(customerId));
    const given = client.reportUsage({ ...event(customerId), eventId: "my-event-1" });
    expect(made.eventId).toMatch(uuidv7Pattern);
    expect(given.eventId).toBe("my-event-1");
    await client.flush();
    const stored = await f.t.database.pool.query("select event_id from usage_events where customer_id = $1 order by event_id", [customerId]);
    expect(stored.rows.map((row) => row.event_id).sort()).toEqual([made.eventId, "my-event-1"].sort());
  });
});

describe("bounds and shutdown", () => {
  it("past the queue bound new events are dropped and counted, and the queue never grows past it", async () => {
    const customerId = await f.customer(100n);
    const client = reporter({ clock: new ManualClock(new Set(["backoff"])), usage: { batchSizeMax: 5, queueLengthMax: 10 } });
    const receipts = Array.from({ length: 15 }, () => client.reportUsage(event(customerId)));
    expect(receipts.filter((receipt) => receipt.accepted)).toHaveLength(10);
    expect(receipts.slice(10).every((receipt) => !receipt.accepted && receipt.refusal === "queue_full")).toBe(true);
    expect(client.stats()).toMatchObject({ accepted: 10, dropped: 5, pending: 10 });
    await client.flush();
    expect(client.stats()).toMatchObject({ sent: 10, dropped: 5, pending: 0 });
    expect((await f.balanceOf(customerId)).burned).toBe(10n * f.featureRate);
  });

  it("close sends every accepted event before it returns, and refuses events after", async () => {
    const customerId = await f.customer(1_000n);
    const client = reporter({ clock: new ManualClock(new Set(["backoff"])), usage: { batchSizeMax: 100, lingerMsMax: 60_000 } });
    for (let index = 0; index < 50; index++) client.reportUsage(event(customerId));
    expect(await client.close()).toEqual({ drained: true, pending: 0, unsent: [] });
    expect(await usageEventsOf([customerId])).toBe(50);
    expect(client.reportUsage(event(customerId))).toMatchObject({ accepted: false, refusal: "closed" });
  });

  it("close with the ledger unreachable returns after its timeout with the events left, which keep their ids and burn once when sent later", async () => {
    const customerId = await f.customer(100n);
    const clock = new ManualClock(new Set(["backoff"]));
    const errors: unknown[] = [];
    const client = reporter({ clock, retry: { attemptsMax: 2 }, onError: (error) => errors.push(error) });
    proxy.setMode({ kind: "reset" });
    const receipts = Array.from({ length: 3 }, () => client.reportUsage(event(customerId)));
    const closed = client.close({ timeoutMs: 5_000 });
    await clock.untilSleeping("retry pause");
    await clock.untilSleeping("wait timeout");
    clock.fire("wait timeout");
    const result = await closed;
    expect(result).toMatchObject({ drained: false, pending: 3 });
    expect(result.unsent.map((unsent) => unsent.eventId)).toEqual(receipts.map((receipt) => receipt.eventId));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((error) => error instanceof UnavailableError)).toBe(true);
    proxy.setMode({ kind: "pass" });
    const later = reporter({ clock: new ManualClock(new Set(["backoff"])) });
    await later.reportUsageBatch({ events: result.unsent });
    await later.reportUsageBatch({ events: result.unsent });
    expect((await f.balanceOf(customerId)).burned).toBe(3n * f.featureRate);
  });

  it("a batch retried after a timeout that the server had applied burns once: the retry's events come back DUPLICATE", async () => {
    const customerId = await f.customer(1_000n);
    const clock = new ManualClock(new Set(["backoff"]));
    const recorder = attemptRecorder();
    const client = reporter({ clock, usage: { lingerMsMax: 60_000 }, attemptInterceptors: [recorder.interceptor] });
    await client.getBalance({ customerId }); // the connection is up before the proxy stalls it
    proxy.setMode({ kind: "stall", direction: "downstream" });
    for (let index = 0; index < 20; index++) client.reportUsage(event(customerId));
    const flushed = client.flush();
    await proxy.untilHeld("downstream", 1);
    expect((await f.balanceOf(customerId)).burned).toBe(20n * f.featureRate);
    clock.fire("attempt timeout");
    await recorder.untilStarted(3);
    proxy.setMode({ kind: "pass" });
    expect(await flushed).toEqual({ drained: true, pending: 0 });
    expect(recorder.records.slice(1).map((record) => record.outcome)).toEqual([Code.DeadlineExceeded, "ok"]);
    expect(client.stats()).toMatchObject({ sent: 20, duplicates: 20, batchesSent: 1, pending: 0 });
    expect((await f.balanceOf(customerId)).burned).toBe(20n * f.featureRate);
    expect(await usageEventsOf([customerId])).toBe(20);
  });
});
