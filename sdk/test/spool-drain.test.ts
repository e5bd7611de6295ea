// Draining the spool against a real server: every event burns exactly once, a send whose
// answer is lost is sent again without double-burning, and a failed send keeps events.
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { GrantSource, UsageOutcome } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SentResult, SpoolDrain } from "../src/spool-drain.js";
import { type SpooledEvent, UsageSpool } from "../src/usage-spool.js";
import { type Clients, startTestServer, type TestServer } from "../../test-support/server.js";

let t: TestServer;
let api: Clients;
let directory: string;

beforeAll(async () => {
  t = await startTestServer();
  api = t.clients(t.adminToken);
  await api.admin.createCreditType({ creditType: { creditTypeId: "c", displayName: "C", scale: 0 }, requestId: randomUUID() });
  await api.admin.createFeature({ feature: { featureKey: "chat", displayName: "Chat", creditTypeId: "c", burnRate: 2n }, requestId: randomUUID() });
  directory = await mkdtemp(path.join(os.tmpdir(), "burndown-drain-"));
});
afterAll(async () => {
  await t.close();
  await rm(directory, { recursive: true, force: true });
});

function send(events: SpooledEvent[]): Promise<SentResult[]> {
  return api.ledger
    .reportUsage({
      events: events.map((e) => ({ eventId: e.eventId, customerId: e.customerId, featureKey: e.featureKey, quantity: BigInt(e.quantity), eventTime: timestampFromMs(e.eventTimeMs), offline: true })),
    })
    .then((res) => res.results.map((r) => ({ eventId: r.eventId, rejected: r.outcome === UsageOutcome.REJECTED })));
}

async function fundedCustomer(): Promise<string> {
  const customerId = `c-${randomUUID()}`;
  await api.ledger.grant({ customerId, creditTypeId: "c", amount: 10_000n, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
  return customerId;
}

async function burnedOf(customerId: string): Promise<bigint> {
  return (await api.ledger.getBalance({ customerId })).balances[0].burned;
}

describe("SpoolDrain", () => {
  it("sends every spooled event once, in batches, and empties the spool", async () => {
    const customerId = await fundedCustomer();
    const spool = new UsageSpool(path.join(directory, `${randomUUID()}.spool`), { bytesMax: 10_000_000, eventsMax: 10_000 });
    await spool.open();
    await Promise.all(Array.from({ length: 250 }, () => spool.append({ eventId: randomUUID(), customerId, featureKey: "chat", quantity: "1", eventTimeMs: Date.now() })));
    const drain = new SpoolDrain(spool, { send, batchSizeMax: 100, intervalMs: 60_000, onError: (error) => { throw error; } });
    expect(await drain.drain()).toBe(true);
    expect(spool.size).toBe(0);
    expect(drain.stats).toEqual({ sent: 250, rejected: 0, failedSends: 0 });
    expect(await burnedOf(customerId)).toBe(500n);
    await spool.close();
  });

  it("a send whose answer was lost is sent again and burns nothing twice", async () => {
    const customerId = await fundedCustomer();
    const spool = new UsageSpool(path.join(directory, `${randomUUID()}.spool`), { bytesMax: 10_000_000, eventsMax: 10_000 });
    await spool.open();
    for (let i = 0; i < 10; i++) await spool.append({ eventId: randomUUID(), customerId, featureKey: "chat", quantity: "3", eventTimeMs: Date.now() });
    let first = true;
    const lossy = async (events: SpooledEvent[]) => {
      const results = await send(events);
      if (first) {
        first = false;
        throw new Error("connection reset before the answer arrived");
      }
      return results;
    };
    const errors: unknown[] = [];
    const drain = new SpoolDrain(spool, { send: lossy, batchSizeMax: 100, intervalMs: 60_000, onError: (error) => errors.push(error) });
    expect(await drain.drain()).toBe(false);
    expect(spool.size).toBe(10);
    expect(await drain.drain()).toBe(true);
    expect(errors).toHaveLength(1);
    expect(await burnedOf(customerId)).toBe(60n);
    await spool.close();
  });

  it("an event the ledger rejects (too late) is counted and dropped, not retried forever", async () => {
    const customerId = await fundedCustomer();
    const spool = new UsageSpool(path.join(directory, `${randomUUID()}.spool`), { bytesMax: 10_000_000, eventsMax: 10_000 });
    await spool.open();
    await spool.append({ eventId: randomUUID(), customerId, featureKey: "chat", quantity: "1", eventTimeMs: Date.now() - 8 * 86_400_000 });
    const drain = new SpoolDrain(spool, { send, batchSizeMax: 100, intervalMs: 60_000, onError: (error) => { throw error; } });
    expect(await drain.drain()).toBe(true);
    expect(drain.stats.rejected).toBe(1);
    expect(spool.size).toBe(0);
    await spool.close();
  });
});
