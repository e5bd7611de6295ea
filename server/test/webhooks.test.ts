// Webhooks through the API, against real PostgreSQL and a real HTTP receiver (node:http):
// endpoints and their secrets, the outbox written with the change that causes an event
// (and never without it), signed deliveries, retries, timeouts that never slow the ledger,
// two replicas sharing the work, replay, disabled endpoints, and every refusal.
import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { errorInfoOf, GrantSource, WebhookDeliveryStatus, type WebhookEvent } from "@burndown/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { limits } from "../src/limits.js";
import { claimDueDeliveries, recordAttempt } from "../src/store/webhook-store.js";
import { invariantViolations } from "../../test-support/invariants.js";
import { databaseSnapshot, errorOf } from "../../test-support/snapshot.js";
import { type Clients, startTestServer, type TestServer } from "../../test-support/server.js";

const creditTypeId = "api_credits";
const policy = { timeoutMs: 1_500, attemptsMax: 3, retryBaseMs: 40 };

/** Received is one request as the receiver saw it. */
interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** How the receiver answers one request: a status, or never. */
type Answer = number | "hang";

/** Receiver is a real HTTP server that records what it gets and answers as told. */
interface Receiver {
  url: string;
  received: Received[];
  /** answers, in order, for the next requests; then `otherwise`. */
  answers: Answer[];
  otherwise: Answer;
  /** resolves once the receiver has seen at least n requests. */
  seen: (n: number) => Promise<void>;
  /** answers every hung request now, with 200. */
  release: () => void;
  close: () => Promise<void>;
}

async function startReceiver(otherwise: Answer = 200): Promise<Receiver> {
  const waiters: { n: number; resolve: () => void }[] = [];
  const hung: http.ServerResponse[] = [];
  const receiver: Receiver = {
    url: "",
    received: [],
    answers: [],
    otherwise,
    seen: (n) => new Promise((resolve) => (receiver.received.length >= n ? resolve() : waiters.push({ n, resolve }))),
    release: () => hung.splice(0).forEach((res) => res.writeHead(200).end()),
    close: async () => {
      receiver.release();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      receiver.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      for (const waiter of waiters.filter((w) => receiver.received.length >= w.n)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
      const answer = receiver.answers.shift() ?? receiver.otherwise;
      if (answer === "hang") hung.push(res);
      else res.writeHead(answer).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  return receiver;
}

/** verifies checks a request's signature as a receiver would (webhooks.proto). */
function verifies(secret: string, request: Received): boolean {
  const timestamp = String(request.headers["burndown-timestamp"]);
  const expected = Buffer.from(`v1=${createHmac("sha256", secret).update(`${timestamp}.${request.body}`).digest("hex")}`);
  const signature = Buffer.from(String(request.headers["burndown-signature"]));
  return signature.length === expected.length && timingSafeEqual(signature, expected);
}

let t: TestServer;
let c: Clients;
const receivers: Receiver[] = [];

async function receiverFor(otherwise: Answer = 200): Promise<Receiver> {
  const receiver = await startReceiver(otherwise);
  receivers.push(receiver);
  return receiver;
}

/** endpointFor registers a receiver, for grant.created only unless told, and returns its id and secret. */
async function endpointFor(receiver: Receiver, eventTypes = ["grant.created"]): Promise<{ endpointId: string; secret: string }> {
  const res = await c.webhooks.createWebhookEndpoint({ url: receiver.url, eventTypes, description: "test", requestId: randomUUID() });
  return { endpointId: res.endpoint!.endpointId, secret: res.secret };
}

async function grant(customerId = `cust-${randomUUID()}`, amount = 100n): Promise<string> {
  await c.ledger.grant({ customerId, creditTypeId, amount, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
  return customerId;
}

/** eventsOf lists an endpoint's events (newest first). */
async function eventsOf(endpointId: string): Promise<WebhookEvent[]> {
  return (await c.webhooks.listWebhookEvents({ endpointId, pageSize: 1_000 })).events;
}

/** settled waits until every delivery to the endpoint is delivered or failed, and returns its events. */
async function settled(endpointId: string, count: number): Promise<WebhookEvent[]> {
  let events: WebhookEvent[] = [];
  await expect
    .poll(async () => {
      events = await eventsOf(endpointId);
      return events.length === count && events.every((event) => event.deliveries.every((d) => d.status !== WebhookDeliveryStatus.PENDING));
    }, { timeout: 15_000, interval: 20 })
    .toBe(true);
  return events;
}

beforeAll(async () => {
  t = await startTestServer({ jobIntervalMs: 20, webhooks: policy });
  c = t.clients(t.adminToken);
  await c.admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 0 }, requestId: randomUUID() });
});
afterEach(async () => {
  // Each test's endpoints stop, so the next test's grants reach only its own.
  for (const endpoint of (await c.webhooks.listWebhookEndpoints({})).endpoints) {
    if (endpoint.disableTime === undefined) await c.webhooks.disableWebhookEndpoint({ endpointId: endpoint.endpointId, requestId: randomUUID() });
  }
  await Promise.all(receivers.splice(0).map((receiver) => receiver.close()));
});
afterAll(async () => {
  await t?.close();
});

describe("endpoints", () => {
  it("the secret is shown once: at creation, never in a list, never in a retry; a rotation shows the new one once", async () => {
    const requestId = randomUUID();
    const request = { url: "https://example.com/hooks", eventTypes: ["grant.created"], description: "billing", requestId };
    const created = await c.webhooks.createWebhookEndpoint(request);
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(created.endpoint).toMatchObject({ url: request.url, eventTypes: ["grant.created"], description: "billing" });
    const retried = await c.webhooks.createWebhookEndpoint(request);
    expect([retried.endpoint?.endpointId, retried.secret]).toEqual([created.endpoint?.endpointId, ""]);

    const listed = await c.webhooks.listWebhookEndpoints({});
    expect(listed.endpoints.map((endpoint) => endpoint.endpointId)).toContain(created.endpoint!.endpointId);
    expect(JSON.stringify(listed, (_key, value) => (typeof value === "bigint" ? value.toString() : value))).not.toContain(created.secret);
    const audits = await c.admin.listAuditRecords({ pageSize: 1_000 });
    expect(JSON.stringify(audits.auditRecords.map((record) => record.detailsJson))).not.toContain("whsec_");

    const rotation = { endpointId: created.endpoint!.endpointId, requestId: randomUUID() };
    const rotated = await c.webhooks.rotateWebhookSecret(rotation);
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(created.secret);
    expect((await c.webhooks.rotateWebhookSecret(rotation)).secret).toBe("");

    const disabled = await c.webhooks.disableWebhookEndpoint({ endpointId: created.endpoint!.endpointId, requestId: randomUUID() });
    expect(disabled.endpoint?.disableTime).toBeDefined();
    const again = await c.webhooks.disableWebhookEndpoint({ endpointId: created.endpoint!.endpointId, requestId: randomUUID() });
    expect(again.endpoint?.disableTime).toEqual(disabled.endpoint?.disableTime);

    // Each change is audited once (retries and the repeated disable add nothing), without a secret.
    const trail = (await c.admin.listAuditRecords({ pageSize: 1_000 })).auditRecords.filter((record) => record.target === `webhook_endpoint:${created.endpoint!.endpointId}`);
    expect(trail.map((record) => record.action).reverse()).toEqual(["create_webhook_endpoint", "rotate_webhook_secret", "disable_webhook_endpoint"]);
    expect(trail.map((record) => record.detailsJson + record.reason).join()).not.toContain("whsec_");
  });
});

describe("the outbox", () => {
  it("a deployment without endpoints, or without one for the type, queues nothing for a grant", async () => {
    const before = (await t.database.pool.query("select count(*)::int as n from webhook_events")).rows[0].n;
    await grant();
    const receiver = await receiverFor();
    await endpointFor(receiver, ["pricing_version.moved"]);
    await grant();
    expect((await t.database.pool.query("select count(*)::int as n from webhook_events")).rows[0].n).toBe(before);
  });

  it("a refused grant queues nothing: the event commits with the change or not at all", async () => {
    const receiver = await receiverFor();
    const { endpointId } = await endpointFor(receiver);
    const customerId = await grant();
    await settled(endpointId, 1);
    const before = await databaseSnapshot(t.database.pool);
    // Refused inside the write path (the plan), after the locks: its group writes nothing for it.
    const error = await errorOf(grant(customerId, 9_223_372_036_854_775_807n));
    expect(errorInfoOf(error)?.reason).toBe("AMOUNT_OUT_OF_RANGE");
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
    expect(await eventsOf(endpointId)).toHaveLength(1);
  });

  it("a grant to many customers at once, grouped, queues one event per grant, each with its own customer", async () => {
    const receiver = await receiverFor();
    const { endpointId } = await endpointFor(receiver);
    const customers = await Promise.all(Array.from({ length: 20 }, () => grant()));
    const events = await settled(endpointId, 20);
    expect(events.map((event) => event.customerId).sort()).toEqual([...customers].sort());
    expect(new Set(events.map((event) => event.eventId)).size).toBe(20);
  });
});

describe("delivery", () => {
  it("a grant is delivered once, signed: the signature verifies with the secret and the body describes the grant", async () => {
    const receiver = await receiverFor();
    const { endpointId, secret } = await endpointFor(receiver);
    const customerId = await grant(undefined, 250n);
    const [event] = await settled(endpointId, 1);
    expect(event.deliveries.map((d) => [d.endpointId, d.status, d.attempts, d.lastHttpStatus])).toEqual([[endpointId, WebhookDeliveryStatus.DELIVERED, 1, 200]]);
    expect(receiver.received).toHaveLength(1);
    const [request] = receiver.received;
    expect(verifies(secret, request)).toBe(true);
    expect(verifies(`${secret}x`, request)).toBe(false);
    expect(request.headers["burndown-event-id"]).toBe(event.eventId);
    expect(Math.abs(Number(request.headers["burndown-timestamp"]) - Date.now() / 1000)).toBeLessThan(60);
    const body = JSON.parse(request.body);
    expect(body).toMatchObject({ id: event.eventId, type: "grant.created", customerId, data: { creditTypeId, amount: "250", source: "purchase", reasonCode: "purchase", expireTime: null } });
    expect(JSON.parse(event.payloadJson)).toEqual(body.data);
  });

  it("a receiver answering 500 is retried with backoff, then delivered, under the same event id", async () => {
    const receiver = await receiverFor();
    receiver.answers.push(500, 503);
    const { endpointId, secret } = await endpointFor(receiver);
    await grant();
    const [event] = await settled(endpointId, 1);
    expect(event.deliveries.map((d) => [d.status, d.attempts, d.lastHttpStatus, d.lastError])).toEqual([[WebhookDeliveryStatus.DELIVERED, 3, 200, ""]]);
    expect(receiver.received.map((request) => request.headers["burndown-event-id"])).toEqual([event.eventId, event.eventId, event.eventId]);
    expect(receiver.received.every((request) => verifies(secret, request))).toBe(true);
  });

  it("a receiver that keeps failing is retried up to the limit, then the delivery is failed", async () => {
    const receiver = await receiverFor(500);
    const { endpointId } = await endpointFor(receiver);
    await grant();
    const [event] = await settled(endpointId, 1);
    expect(event.deliveries.map((d) => [d.status, d.attempts, d.lastHttpStatus, d.lastError])).toEqual([[WebhookDeliveryStatus.FAILED, policy.attemptsMax, 500, "HTTP 500"]]);
    expect(receiver.received).toHaveLength(policy.attemptsMax);
  });

  it("a receiver that hangs does not slow a grant: it completes while the receiver holds the request", async () => {
    const startedAt = performance.now();
    await grant();
    const withoutMs = performance.now() - startedAt;
    const receiver = await receiverFor("hang");
    const { endpointId } = await endpointFor(receiver);
    await grant();
    await receiver.seen(1); // the worker is now waiting on the hung receiver
    const hungAt = performance.now();
    await grant();
    const withMs = performance.now() - hungAt;
    // The first attempt is still in flight (its result is recorded only when it ends): the
    // grant waited neither for it nor for anything near its timeout.
    const [, first] = await eventsOf(endpointId);
    expect(first.deliveries.map((d) => [d.status, d.attempts, d.lastError])).toEqual([[WebhookDeliveryStatus.PENDING, 1, ""]]);
    expect(withMs).toBeLessThan(Math.max(20 * withoutMs, 500));
    expect(withMs).toBeLessThan(policy.timeoutMs / 2);
    // The hung attempt times out and is counted as failed, due again.
    await expect
      .poll(async () => (await eventsOf(endpointId)).flatMap((event) => event.deliveries.filter((d) => /timeout|abort/i.test(d.lastError))).length, {
        timeout: 10_000,
        interval: 50,
      })
      .toBeGreaterThan(0);
    // Once the receiver answers, both are delivered (and nothing is left in flight).
    receiver.otherwise = 200;
    receiver.release();
    const events = await settled(endpointId, 2);
    expect(events.flatMap((event) => event.deliveries.map((d) => d.status))).toEqual([WebhookDeliveryStatus.DELIVERED, WebhookDeliveryStatus.DELIVERED]);
  });

  it("two replicas deliver each event once: no attempt is sent by both", async () => {
    await t.startReplica();
    const receiver = await receiverFor();
    const { endpointId } = await endpointFor(receiver);
    await Promise.all(Array.from({ length: 30 }, () => grant()));
    const events = await settled(endpointId, 30);
    expect(events.every((event) => event.deliveries.every((d) => d.status === WebhookDeliveryStatus.DELIVERED && d.attempts === 1))).toBe(true);
    const ids = receiver.received.map((request) => String(request.headers["burndown-event-id"]));
    expect(ids.sort()).toEqual(events.map((event) => event.eventId).sort());
  });

  it("a disabled endpoint gets nothing, an enabled one beside it gets the event", async () => {
    const enabled = await receiverFor();
    const disabled = await receiverFor();
    const kept = await endpointFor(enabled, []);
    const stopped = await endpointFor(disabled, []);
    await c.webhooks.disableWebhookEndpoint({ endpointId: stopped.endpointId, requestId: randomUUID() });
    await grant();
    const [event] = await settled(kept.endpointId, 1);
    expect(event.deliveries.map((d) => d.endpointId)).toEqual([kept.endpointId]);
    expect(await eventsOf(stopped.endpointId)).toEqual([]);
    expect(disabled.received).toEqual([]);
    expect(enabled.received).toHaveLength(1);
  });

  it("a burn into the overdraft sends balance.negative once: not while above zero, not again while below", async () => {
    const receiver = await receiverFor();
    const { endpointId } = await endpointFor(receiver, ["balance.negative"]);
    const customerId = `cust-${randomUUID()}`;
    await c.admin.createCustomer({ customer: { customerId, overdraftLimits: [{ creditTypeId, amount: 100n }] }, requestId: randomUUID() });
    await grant(customerId, 50n);
    const burn = (amount: bigint) => c.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount } }, requestId: randomUUID() });
    await burn(50n); // to exactly zero: not negative
    await burn(30n); // -30
    await burn(10n); // -40: still negative, no second event
    const [event] = await settled(endpointId, 1);
    expect([event.type, event.customerId, JSON.parse(event.payloadJson)]).toEqual(["balance.negative", customerId, { creditTypeId, available: "-30" }]);
    expect(receiver.received).toHaveLength(1);
  });

  it("moving customers to a pricing version sends pricing_version.moved per customer moved", async () => {
    const receiver = await receiverFor();
    const { endpointId } = await endpointFor(receiver, ["pricing_version.moved"]);
    const customerId = await grant();
    const to = `pv_${randomUUID().slice(0, 8)}`;
    await c.admin.createPricingVersion({ pricingVersion: { pricingVersionId: to, displayName: "V2" }, requestId: randomUUID() });
    const from = (await c.admin.getCustomer({ customerId })).customer!.pricingVersionId;
    await c.admin.moveCustomersToPricingVersion({ fromPricingVersionId: from, toPricingVersionId: to, customerIds: [customerId], reason: "v2 launch", requestId: randomUUID() });
    const [event] = await settled(endpointId, 1);
    expect([event.type, event.customerId]).toEqual(["pricing_version.moved", customerId]);
    expect(JSON.parse(receiver.received[0].body).data).toEqual({ fromPricingVersionId: from, toPricingVersionId: to, reason: "v2 launch" });
  });
});

describe("replay", () => {
  it("replaying an event sends it again under the same event id, with a fresh count of attempts", async () => {
    const receiver = await receiverFor();
    const { endpointId } = await endpointFor(receiver);
    await grant();
    const [event] = await settled(endpointId, 1);
    const replayed = await c.webhooks.replayWebhookEvents({ endpointId, eventIds: [event.eventId], requestId: randomUUID() });
    expect(replayed.replayedCount).toBe(1n);
    await receiver.seen(2);
    await settled(endpointId, 1);
    expect(receiver.received.map((request) => request.headers["burndown-event-id"])).toEqual([event.eventId, event.eventId]);
    expect(receiver.received[0].body).toBe(receiver.received[1].body);
  });

  it("replaying the failed deliveries since a time sends them again, and only them", async () => {
    const receiver = await receiverFor(500);
    const { endpointId } = await endpointFor(receiver);
    const since = timestampFromMs(Date.now() - 1_000);
    await grant();
    await settled(endpointId, 1);
    receiver.otherwise = 200;
    await grant();
    const events = await settled(endpointId, 2);
    expect(events.map((event) => event.deliveries[0].status)).toEqual([WebhookDeliveryStatus.DELIVERED, WebhookDeliveryStatus.FAILED]);
    const replayed = await c.webhooks.replayWebhookEvents({ endpointId, sinceTime: since, requestId: randomUUID() });
    expect(replayed.replayedCount).toBe(1n);
    const after = await settled(endpointId, 2);
    expect(after.map((event) => [event.deliveries[0].status, event.deliveries[0].attempts])).toEqual([
      [WebhookDeliveryStatus.DELIVERED, 1],
      [WebhookDeliveryStatus.DELIVERED, 1],
    ]);
  });
});

describe("refusals change nothing", () => {
  const missingId = randomUUID();
  const cases: { name: string; send: () => Promise<unknown>; code: Code; reason: string }[] = [
    { name: "an ftp url", send: () => c.webhooks.createWebhookEndpoint({ url: "ftp://example.com/x", requestId: randomUUID() }), code: Code.InvalidArgument, reason: "INVALID_URL" },
    { name: "a relative url", send: () => c.webhooks.createWebhookEndpoint({ url: "/hooks", requestId: randomUUID() }), code: Code.InvalidArgument, reason: "INVALID_URL" },
    {
      name: "a url too long",
      send: () => c.webhooks.createWebhookEndpoint({ url: `https://example.com/${"a".repeat(limits.webhookUrlLengthMax)}`, requestId: randomUUID() }),
      code: Code.InvalidArgument,
      reason: "INVALID_URL",
    },
    {
      name: "an unknown event type",
      send: () => c.webhooks.createWebhookEndpoint({ url: "https://example.com/x", eventTypes: ["grant.deleted"], requestId: randomUUID() }),
      code: Code.InvalidArgument,
      reason: "INVALID_EVENT_TYPE",
    },
    { name: "disabling an unknown endpoint", send: () => c.webhooks.disableWebhookEndpoint({ endpointId: missingId, requestId: randomUUID() }), code: Code.NotFound, reason: "WEBHOOK_ENDPOINT_NOT_FOUND" },
    { name: "rotating an unknown endpoint", send: () => c.webhooks.rotateWebhookSecret({ endpointId: missingId, requestId: randomUUID() }), code: Code.NotFound, reason: "WEBHOOK_ENDPOINT_NOT_FOUND" },
    {
      name: "replaying to an unknown endpoint",
      send: () => c.webhooks.replayWebhookEvents({ endpointId: missingId, eventIds: [missingId], requestId: randomUUID() }),
      code: Code.NotFound,
      reason: "WEBHOOK_ENDPOINT_NOT_FOUND",
    },
    { name: "an endpoint id that is not an id", send: () => c.webhooks.rotateWebhookSecret({ endpointId: "ep 1", requestId: randomUUID() }), code: Code.InvalidArgument, reason: "INVALID_ID" },
  ];
  it.each(cases)("$name: $reason", async ({ send, code, reason }) => {
    const before = await databaseSnapshot(t.database.pool);
    const error = await errorOf(send());
    expect([Code[error.code], errorInfoOf(error)?.reason]).toEqual([Code[code], reason]);
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
  });

  it("replays: neither or both selections, too many ids, an unknown event, a disabled endpoint", async () => {
    const { endpointId } = await endpointFor(await receiverFor());
    await grant();
    const [event] = await settled(endpointId, 1);
    const replay = (over: object) => c.webhooks.replayWebhookEvents({ endpointId, requestId: randomUUID(), ...over });
    const refusals: [() => Promise<unknown>, Code, string][] = [
      [() => replay({}), Code.InvalidArgument, "INVALID_REPLAY_SELECTION"],
      [() => replay({ eventIds: [event.eventId], sinceTime: timestampFromMs(Date.now()) }), Code.InvalidArgument, "INVALID_REPLAY_SELECTION"],
      [() => replay({ eventIds: Array.from({ length: limits.webhookReplayEventsMax + 1 }, () => randomUUID()) }), Code.InvalidArgument, "TOO_MANY_EVENT_IDS"],
      [() => replay({ eventIds: [event.eventId, missingId] }), Code.NotFound, "WEBHOOK_EVENT_NOT_FOUND"],
    ];
    const before = await databaseSnapshot(t.database.pool);
    for (const [call, code, reason] of refusals) {
      const error = await errorOf(call());
      expect([Code[error.code], errorInfoOf(error)?.reason]).toEqual([Code[code], reason]);
    }
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
    await c.webhooks.disableWebhookEndpoint({ endpointId, requestId: randomUUID() });
    const disabled = await databaseSnapshot(t.database.pool);
    for (const call of [() => replay({ eventIds: [event.eventId] }), () => c.webhooks.rotateWebhookSecret({ endpointId, requestId: randomUUID() })]) {
      const error = await errorOf(call());
      expect([Code[error.code], errorInfoOf(error)?.reason]).toEqual([Code[Code.FailedPrecondition], "WEBHOOK_ENDPOINT_DISABLED"]);
    }
    expect(await databaseSnapshot(t.database.pool)).toEqual(disabled);
  });

  it(`at most ${limits.webhookEndpointsMax} enabled endpoints: one more is TOO_MANY_WEBHOOK_ENDPOINTS; after a disable, one fits`, async () => {
    const enabled = (await c.webhooks.listWebhookEndpoints({})).endpoints.filter((endpoint) => endpoint.disableTime === undefined).length;
    const created: string[] = [];
    for (let i = enabled; i < limits.webhookEndpointsMax; i++) {
      created.push((await c.webhooks.createWebhookEndpoint({ url: `https://example.com/${i}`, eventTypes: ["pricing_version.moved"], requestId: randomUUID() })).endpoint!.endpointId);
    }
    const before = await databaseSnapshot(t.database.pool);
    const error = await errorOf(c.webhooks.createWebhookEndpoint({ url: "https://example.com/one-more", requestId: randomUUID() }));
    expect([Code[error.code], errorInfoOf(error)?.reason]).toEqual([Code[Code.FailedPrecondition], "TOO_MANY_WEBHOOK_ENDPOINTS"]);
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
    await c.webhooks.disableWebhookEndpoint({ endpointId: created[0], requestId: randomUUID() });
    await c.webhooks.createWebhookEndpoint({ url: "https://example.com/one-more", eventTypes: ["pricing_version.moved"], requestId: randomUUID() });
  });
});

describe("claims and leases (the worker's store, on a server whose worker is off)", () => {
  let quiet: TestServer;
  beforeAll(async () => {
    quiet = await startTestServer();
    const qc = quiet.clients(quiet.adminToken);
    await qc.admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 0 }, requestId: randomUUID() });
    await qc.webhooks.createWebhookEndpoint({ url: "http://127.0.0.1:9/never", requestId: randomUUID() });
    await Promise.all(
      Array.from({ length: 20 }, () =>
        qc.ledger.grant({ customerId: `cust-${randomUUID()}`, creditTypeId, amount: 5n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() }),
      ),
    );
  });
  afterAll(async () => {
    await quiet?.close();
  });
  const at = (offsetMs: number) => new Date(Date.now() + offsetMs);

  it("two workers claiming at once take disjoint deliveries, and a leased one is not due until its lease ends", async () => {
    const pool = quiet.database.serverPool;
    const now = at(1_000);
    const [a, b] = await Promise.all([0, 1].map(() => claimDueDeliveries(pool, { now, leaseUntil: at(60_000), limit: 15 })));
    const ids = [...a, ...b].map((d) => d.eventId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toHaveLength(20);
    expect(await claimDueDeliveries(pool, { now, leaseUntil: at(60_000), limit: 100 })).toEqual([]);
  });

  it("a worker that crashed before recording: the attempt is sent again when its lease ends, and its late result is fenced off", async () => {
    const pool = quiet.database.serverPool;
    // Far enough ahead that any earlier lease has ended.
    const [first] = await claimDueDeliveries(pool, { now: at(600_000), leaseUntil: at(660_000), limit: 1 });
    const again = (await claimDueDeliveries(pool, { now: at(661_000), leaseUntil: at(720_000), limit: 100 })).find((d) => d.eventId === first.eventId);
    expect(again?.attempt).toBe(first.attempt + 1);
    const result = { eventId: first.eventId, endpointId: first.endpointId, delivered: true, httpStatus: 200, error: "", nextAttemptAt: null };
    expect(await recordAttempt(pool, { ...result, attempt: first.attempt })).toBe(false);
    expect(await recordAttempt(pool, { ...result, attempt: first.attempt + 1 })).toBe(true);
    const status = await quiet.database.pool.query("select status, attempts from webhook_deliveries where event_id = $1", [first.eventId]);
    expect(status.rows).toEqual([{ status: "delivered", attempts: first.attempt + 1 }]);
  });
});

describe("after every test", () => {
  it("every ledger invariant holds in the database", async () => {
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });
});

describe("top-up and expiry events", () => {
  async function paidOrder(customerId: string, reference: string) {
    const bundleId = `bundle-${randomUUID().slice(0, 8)}`;
    await c.billing.createBundle({ requestId: randomUUID(), bundleId, displayName: "500 API credits", creditTypeId, credits: 500n, currency: "USD", priceMinor: 2500n });
    const order = (await c.billing.createTopUp({ requestId: randomUUID(), customerId, item: { case: "bundleId", value: bundleId } })).topUp!;
    const confirm = () => c.billing.confirmTopUp({ requestId: randomUUID(), orderId: order.orderId, paymentReference: reference, amountMinor: 2500n, currency: "USD" });
    const paid = (await confirm()).topUp!;
    return { order: paid, bundleId, confirm };
  }

  it("a confirmed top-up sends topup.paid once, however often it is confirmed; a refund sends topup.refunded once", async () => {
    const receiver = await receiverFor();
    const { endpointId } = await endpointFor(receiver, ["topup.paid", "topup.refunded"]);
    const customerId = `cust-${randomUUID()}`;
    const reference = `pi_${randomUUID()}`;
    const { order, bundleId, confirm } = await paidOrder(customerId, reference);
    await Promise.all([confirm(), confirm(), confirm()]);
    const [paid] = await settled(endpointId, 1);
    expect([paid.type, paid.customerId]).toEqual(["topup.paid", customerId]);
    expect(JSON.parse(paid.payloadJson)).toEqual({
      orderId: order.orderId, creditTypeId, credits: "500", currency: "USD", priceMinor: "2500", bundleId, bundleVersion: 1,
      paymentReference: reference, grantId: order.grantId, state: "paid", refundedMinor: "0", clawedBackCredits: "0", debtCredits: "0",
    });

    const refund = { orderId: order.orderId, amountMinor: 500n, currency: "USD", reasonCode: "refund", paymentReference: `re_${randomUUID()}` };
    await c.billing.refundTopUp({ ...refund, requestId: randomUUID() });
    await c.billing.refundTopUp({ ...refund, requestId: randomUUID() }); // the same refund again: recorded once
    const events = await settled(endpointId, 2);
    const refunded = events.find((event) => event.type === "topup.refunded")!;
    expect(JSON.parse(refunded.payloadJson)).toMatchObject({
      orderId: order.orderId, state: "partially_refunded", refundedMinor: "500", clawedBackCredits: "100",
      refund: { paymentReference: refund.paymentReference, amountMinor: "500", reasonCode: "refund", creditsFromLot: "100", creditsAsDebt: "0" },
    });
    expect(receiver.received.map((request) => JSON.parse(request.body).type).sort()).toEqual(["topup.paid", "topup.refunded"]);
  });

  it("credits.expiring announces each lot with unused credits once, within the notice window, whichever pass finds it", async () => {
    const customerId = `cust-${randomUUID()}`;
    const day = 86_400_000;
    const lot = async (amount: bigint, expiresInMs: number) =>
      (await c.ledger.grant({ customerId, creditTypeId, amount, source: GrantSource.PROMOTION, reasonCode: "promo", expireTime: timestampFromMs(Date.now() + expiresInMs), requestId: randomUUID() })).lot!.grantId;
    const soon = await lot(100n, 2 * day);
    await lot(70n, 30 * day); // outside the 7-day window
    const usedUp = await lot(20n, 1 * day);
    // Spent in burn order, the earliest expiry first: usedUp's 20, then 30 of soon's 100.
    await c.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 50n } }, requestId: randomUUID() });

    const receiver = await receiverFor();
    const { endpointId } = await endpointFor(receiver, ["credits.expiring"]);
    const [event] = await settled(endpointId, 1);
    expect([event.type, event.customerId]).toEqual(["credits.expiring", customerId]);
    const data = JSON.parse(event.payloadJson);
    expect(data).toMatchObject({ grantId: soon, creditTypeId, amount: "70", source: "promotion" });
    expect(data.grantId).not.toBe(usedUp);
    expect(Date.parse(data.expireTime)).toBeGreaterThan(Date.now() + day);

    // Passes running at once on several replicas (and the server's own job) announce nothing more.
    const { noticeExpiringCredits } = await import("../src/jobs/expiry-notices.js");
    const counts = await Promise.all(Array.from({ length: 4 }, () => noticeExpiringCredits(t.server.deps, 7 * day)));
    expect(counts.reduce((sum, n) => sum + n, 0)).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await eventsOf(endpointId)).toHaveLength(1);
    expect(receiver.received).toHaveLength(1);
  });

  it("two passes racing over the same due lots announce each exactly once", async () => {
    const receiver = await receiverFor();
    // Subscribed before the lots exist: the server's own job (every 20 ms) races the passes below too.
    const { endpointId } = await endpointFor(receiver, ["credits.expiring"]);
    const customerIds = Array.from({ length: 40 }, () => `cust-${randomUUID()}`);
    await Promise.all(
      customerIds.map((customerId) =>
        c.ledger.grant({ customerId, creditTypeId, amount: 5n, source: GrantSource.SUPPORT, reasonCode: "goodwill", expireTime: timestampFromMs(Date.now() + 3_600_000), requestId: randomUUID() }),
      ),
    );
    const { noticeExpiringCredits } = await import("../src/jobs/expiry-notices.js");
    await Promise.all(Array.from({ length: 6 }, () => noticeExpiringCredits(t.server.deps, 86_400_000)));
    const events = await settled(endpointId, 40);
    expect(events.map((event) => event.customerId).sort()).toEqual([...customerIds].sort());
    expect(new Set(events.map((event) => JSON.parse(event.payloadJson).grantId)).size).toBe(40);
  });
});
