// Admission control: overload is refused quickly with ResourceExhausted OVERLOADED, a
// refused call changes nothing and can be retried with its request id, and health checks
// pass while the server is full. Calls are held in flight by a real row lock on the
// customer's balance, taken by another database session.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { errorInfoOf, GrantSource } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LedgerError } from "../src/errors.js";
import { Admission } from "../src/rpc/admission.js";
import { HealthService } from "../src/rpc/health.js";
import { errorOf } from "../../test-support/snapshot.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";

describe("Admission", () => {
  const limits = { inFlightMax: 2, queuedMax: 2, queueWaitMs: 5_000 };

  it("admits up to inFlightMax at once, queues the next in order, refuses past the queue", async () => {
    const admission = new Admission(limits);
    await admission.acquire();
    await admission.acquire();
    const order: string[] = [];
    const third = admission.acquire().then(() => order.push("third"));
    const fourth = admission.acquire().then(() => order.push("fourth"));
    expect(admission.stats()).toMatchObject({ inFlight: 2, queued: 2 });
    const fifth = await admission.acquire().catch((error: unknown) => error);
    expect(fifth).toBeInstanceOf(LedgerError);
    expect(fifth).toMatchObject({ kind: "overloaded", reason: "OVERLOADED" });
    admission.release();
    await third;
    admission.release();
    await fourth;
    expect(order).toEqual(["third", "fourth"]);
    expect(admission.stats()).toEqual({ inFlight: 2, queued: 0, admitted: 4, shed: 1 });
    admission.release();
    admission.release();
    expect(admission.stats().inFlight).toBe(0);
  });

  it("refuses a waiter whose wait passes queueWaitMs, and does not hand it a slot later", async () => {
    const admission = new Admission({ inFlightMax: 1, queuedMax: 10, queueWaitMs: 20 });
    await admission.acquire();
    const waited = await admission.acquire().catch((error: unknown) => error);
    expect(waited).toMatchObject({ kind: "overloaded", reason: "OVERLOADED", details: { retry_after_ms: "20" } });
    expect(admission.stats()).toMatchObject({ inFlight: 1, queued: 0, shed: 1 });
    admission.release();
    expect(admission.stats().inFlight).toBe(0);
  });

  it("lets a waiter whose caller gave up leave the queue, with the signal's reason", async () => {
    const admission = new Admission({ inFlightMax: 1, queuedMax: 10, queueWaitMs: 60_000 });
    await admission.acquire();
    const caller = new AbortController();
    const waiting = admission.acquire(caller.signal).catch((error: unknown) => error);
    expect(admission.stats().queued).toBe(1);
    caller.abort(new Error("deadline"));
    expect(await waiting).toMatchObject({ message: "deadline" });
    expect(admission.stats()).toMatchObject({ inFlight: 1, queued: 0, shed: 0 });
    await expect(admission.acquire(AbortSignal.abort(new Error("gone")))).rejects.toMatchObject({ message: "gone" });
    admission.release();
    expect(admission.stats().inFlight).toBe(0);
  });

  it("with queueWaitMs 0 refuses at once when full", async () => {
    const admission = new Admission({ inFlightMax: 1, queuedMax: 10, queueWaitMs: 0 });
    await admission.acquire();
    await expect(admission.acquire()).rejects.toMatchObject({ reason: "OVERLOADED" });
  });

  it.each([{ inFlightMax: 0, queuedMax: 0, queueWaitMs: 0 }, { inFlightMax: 1, queuedMax: -1, queueWaitMs: 0 }, { inFlightMax: 1, queuedMax: 0, queueWaitMs: Number.NaN }])(
    "refuses bad limits %o",
    (bad) => {
      expect(() => new Admission(bad)).toThrow(/bad limits/);
    },
  );
});

describe("a full server", () => {
  let t: TestServer;
  const creditTypeId = "credits";
  const queueWaitMs = 400;

  beforeAll(async () => {
    t = await startTestServer({ admission: { inFlightMax: 2, queuedMax: 1, queueWaitMs } });
    await t.clients(t.adminToken).admin.createCreditType({ creditType: { creditTypeId, displayName: "Credits", scale: 0 }, requestId: randomUUID() });
  });
  afterAll(() => t?.close());

  async function until(condition: () => boolean): Promise<void> {
    for (let i = 0; i < 500 && !condition(); i++) await sleep(10);
    expect(condition()).toBe(true);
  }

  it("sheds past its queue with ResourceExhausted OVERLOADED, changes nothing, answers health, and serves the retry", async () => {
    const { ledger } = t.clients(t.adminToken);
    const customerId = `cust-${randomUUID()}`;
    await ledger.grant({ customerId, creditTypeId, amount: 1_000n, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
    const reserve = (requestId: string) => ledger.reserve({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 10n } }, requestId });

    // Another session holds the balance row: reserves on it wait in the database, in flight.
    const blocker = await t.database.pool.connect();
    await blocker.query("begin");
    await blocker.query("select 1 from balances where customer_id = $1 for update", [customerId]);
    const ids = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    let running: Promise<unknown>[] = [];
    try {
      const admission = t.server.admission;
      const before = admission.stats();
      // Settled, not raw promises: a failure here must not surface as an unhandled rejection.
      running = [reserve(ids[0]), reserve(ids[1])].map((call) => call.then(() => "ok", (error: unknown) => error));
      await until(() => admission.stats().inFlight === 2);
      const queued = errorOf(reserve(ids[2]));
      await until(() => admission.stats().queued === 1);

      // Past the queue: refused at once, while the queued call still waits.
      const refused = await errorOf(reserve(ids[3]));
      expect(admission.stats()).toMatchObject({ inFlight: 2, queued: 1 });
      expect([refused.code, errorInfoOf(refused)?.reason]).toEqual([Code.ResourceExhausted, "OVERLOADED"]);
      expect(errorInfoOf(refused)?.metadata.retry_after_ms).toBe(String(queueWaitMs));

      // Probes are never shed.
      const health = createClient(HealthService, createConnectTransport({ baseUrl: t.server.httpUrl, httpVersion: "1.1" }));
      expect((await health.check({ service: "" })).status).toBe(1);

      // The queued call gives up after queueWaitMs.
      const timedOut = await queued;
      expect([timedOut.code, errorInfoOf(timedOut)?.reason]).toEqual([Code.ResourceExhausted, "OVERLOADED"]);
      expect(admission.stats().shed - before.shed).toBe(2);
    } finally {
      await blocker.query("commit");
      blocker.release();
    }
    expect(await Promise.all(running)).toEqual(["ok", "ok"]);
    const held = async () => (await ledger.getBalance({ customerId, creditTypeId })).balances[0].held;
    expect(await held()).toBe(20n);
    // The refused calls did nothing: their request ids run afresh now, once.
    for (const requestId of ids.slice(2)) await reserve(requestId);
    expect(await held()).toBe(40n);
    for (const requestId of ids) await reserve(requestId); // replays
    expect(await held()).toBe(40n);
    expect(t.server.admission.stats()).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it("a caller's timeout bounds its waits: queued, it is refused OVERLOADED; waiting on a row lock, it is answered Unavailable; each before the caller's own timer, and neither applies", async () => {
    const { ledger } = t.clients(t.adminToken);
    const customerId = `cust-${randomUUID()}`;
    await ledger.grant({ customerId, creditTypeId, amount: 1_000n, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
    const reserve = (requestId: string, timeoutMs?: number) => ledger.reserve({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 10n } }, requestId }, { timeoutMs });
    const held = async () => (await ledger.getBalance({ customerId, creditTypeId })).balances[0].held;
    // Shorter than queueWaitMs: without the deadline the caller's own timer would fire first (DeadlineExceeded).
    const timeoutMs = 300;

    const blocker = await t.database.pool.connect();
    await blocker.query("begin");
    await blocker.query("select 1 from balances where customer_id = $1 for update", [customerId]);
    const lockedId = randomUUID();
    const queuedId = randomUUID();
    let running: Promise<unknown>[] = [];
    try {
      const admission = t.server.admission;
      // Alone in flight, the call waits on the row lock in PostgreSQL.
      const locked = await errorOf(reserve(lockedId, timeoutMs));
      expect([locked.code, errorInfoOf(locked)?.reason]).toEqual([Code.Unavailable, "DATABASE_UNAVAILABLE"]);
      // Its statement does not wait on in PostgreSQL for the lock: the server closed the
      // connection, and PostgreSQL, checking for its client, cancels it while the lock is still held.
      const waitingOnLocks = async () =>
        Number((await t.database.pool.query("select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'")).rows[0].count);
      let waiting = await waitingOnLocks();
      for (let i = 0; i < 100 && waiting > 0; i++) {
        await sleep(50);
        waiting = await waitingOnLocks();
      }
      expect(waiting).toBe(0);

      // Both slots taken by calls without a deadline: the next call waits in the queue.
      running = [reserve(randomUUID()), reserve(randomUUID())].map((call) => call.then(() => "ok", (error: unknown) => error));
      await until(() => admission.stats().inFlight === 2);
      const queued = await errorOf(reserve(queuedId, timeoutMs));
      expect([queued.code, errorInfoOf(queued)?.reason]).toEqual([Code.ResourceExhausted, "OVERLOADED"]);
    } finally {
      await blocker.query("commit");
      blocker.release();
    }
    expect(await Promise.all(running)).toEqual(["ok", "ok"]);
    expect(await held()).toBe(20n);
    // Neither refused call applied: each id applies now, once, however often it is sent.
    for (const requestId of [lockedId, queuedId, lockedId, queuedId]) await reserve(requestId);
    expect(await held()).toBe(40n);
    expect(t.server.admission.stats()).toMatchObject({ inFlight: 0, queued: 0 });
  });
});
