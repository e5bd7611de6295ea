// Traces and request logs, seen from outside: a tracer provider with an in-memory exporter
// in this process, a server on real PostgreSQL, and calls made through the SDK (over gRPC
// on the h2c listener and Connect on the HTTP/1.1 one) and a raw client, inside spans of the
// test. The server's spans must join the caller's trace (the SDK sends its trace context),
// hang the database under the RPC, and show group commit as documented in group-commit.ts;
// each call is one log line with its ids and never its token or body. A background job's
// pass and a queued usage batch are traces of their own (the batch linked to its producers').
import { randomUUID } from "node:crypto";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Writable } from "node:stream";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { type BurndownClient, createBurndownClient, errorInfoOf, GrantSource, LedgerService } from "@burndown/sdk";
import { type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { createUsagePublisher } from "@burndown/sdk/usage-queue";
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { startExpiryJobs } from "../src/jobs/expiry-jobs.js";
import { startUsageConsumer } from "../src/queue/usage-consumer.js";
import { createLogger } from "../src/logger.js";
import { HealthService } from "../src/rpc/health.js";
import { parseToken } from "../src/service/api-keys.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { createTestQueue, natsReachable } from "../../test-support/nats.js";

const natsUp = await natsReachable();

const creditTypeId = "api_credits";
const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const caller = trace.getTracer("test-caller");

/** logLines collects the server's JSON log lines. */
const logLines: string[] = [];
const logStream = new Writable({
  write(chunk: Buffer, _encoding, done) {
    logLines.push(...chunk.toString().split("\n").filter((line) => line !== ""));
    done();
  },
});

/** a customer with a balance, for reads that must succeed. */
const known = `known-${randomUUID()}`;
let t: TestServer;
let token: string;
let overGrpc: BurndownClient;
let overConnect: BurndownClient;

/** inSpan runs work inside a new active span of the test, which is ended afterwards, and returns it with work's result. */
async function inSpan<T>(name: string, work: () => Promise<T>): Promise<{ span: Span; result: T }> {
  return caller.startActiveSpan(name, async (span) => {
    try {
      return { span, result: await work() };
    } finally {
      span.end();
    }
  });
}

function spansOf(traceId: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
}

/** ancestorsOf lists a span's parents up to its trace's root, nearest first, by span id. */
function ancestorsOf(span: ReadableSpan, spans: readonly ReadableSpan[]): ReadableSpan[] {
  const byId = new Map(spans.map((each) => [each.spanContext().spanId, each]));
  const ancestors: ReadableSpan[] = [];
  for (let parentId = span.parentSpanContext?.spanId; parentId !== undefined; ) {
    const parent = byId.get(parentId);
    if (parent === undefined) break;
    ancestors.push(parent);
    parentId = parent.parentSpanContext?.spanId;
  }
  return ancestors;
}

/** serverSpan is the one server span of a method in a trace (the SDK's attempt spans bear the same name, as client spans). */
function serverSpan(traceId: string, method: string): ReadableSpan {
  const found = spansOf(traceId).filter((span) => span.name === `burndown.v1.LedgerService/${method}` && span.kind === SpanKind.SERVER);
  expect(found.map((span) => span.name)).toEqual([`burndown.v1.LedgerService/${method}`]);
  return found[0];
}

/** databaseSpansUnder are the statement spans of a trace that descend from span. */
function databaseSpansUnder(span: ReadableSpan): ReadableSpan[] {
  const spans = spansOf(span.spanContext().traceId);
  return spans.filter((each) => each.attributes["db.system.name"] === "postgresql" && each.attributes["db.query.text"] !== undefined && ancestorsOf(each, spans).includes(span));
}

beforeAll(async () => {
  provider.register(); // the global tracer provider, W3C propagator and AsyncLocalStorage context manager
  t = await startTestServer({ logger: createLogger("info", logStream) });
  await t.clients(t.adminToken).admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 0 }, requestId: randomUUID() });
  token = await t.createKey("service");
  overGrpc = createBurndownClient({ baseUrl: t.server.grpcUrl, apiKey: token, protocol: "grpc" });
  overConnect = createBurndownClient({ baseUrl: t.server.httpUrl, apiKey: token, protocol: "connect" });
  await overGrpc.grant({ customerId: known, creditTypeId, amount: 100n, source: GrantSource.PURCHASE, reasonCode: "seed" });
});

afterAll(async () => {
  await overGrpc?.close();
  await overConnect?.close();
  await t?.close();
  await provider.shutdown();
});

beforeEach(() => exporter.reset());

describe("the SDK's trace context reaches the server", () => {
  for (const [listener, client, rpcSystem] of [
    ["gRPC over h2c", () => overGrpc, "grpc"],
    ["Connect over HTTP/1.1", () => overConnect, "connect_rpc"],
  ] as const) {
    it(`over ${listener}: each RPC span is a child of the SDK's attempt span, under its call span and the caller's, and the database spans descend from it`, async () => {
      const customerId = `trace-${randomUUID()}`;
      const { span } = await inSpan("caller", async () => {
        await client().grant({ customerId, creditTypeId, amount: 100n, source: GrantSource.PURCHASE, reasonCode: "seed" });
        await client().reserve({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 10n } }, ttl: { seconds: 60n } });
        await client().getBalance({ customerId });
      });
      const { traceId, spanId } = span.spanContext();
      for (const method of ["Grant", "Reserve", "GetBalance"]) {
        const rpc = serverSpan(traceId, method);
        const [attempt, call] = ancestorsOf(rpc, spansOf(traceId));
        expect(attempt).toMatchObject({ name: `burndown.v1.LedgerService/${method}`, kind: SpanKind.CLIENT, attributes: { "rpc.system": rpcSystem, "rpc.method": method, "burndown.attempt": 1, "rpc.grpc.status_code": 0 } });
        expect(call).toMatchObject({ name: `burndown.sdk ${method}`, attributes: { "rpc.method": method } });
        expect(call.parentSpanContext?.spanId, method).toBe(spanId);
        expect(rpc.attributes).toMatchObject({ "rpc.system": rpcSystem, "rpc.service": "burndown.v1.LedgerService", "rpc.method": method });
        expect(rpc.attributes["rpc.grpc.status_code"]).toBe(0);
        const statements = databaseSpansUnder(rpc);
        expect(statements.length, `${method} has database spans under it`).toBeGreaterThan(0);
        // Statement text, never parameter values: the customer id is a parameter.
        for (const statement of statements) expect(String(statement.attributes["db.query.text"])).not.toContain(customerId);
      }
      // Reserve's write: RPC → write (wait and group) → group → transaction → statements.
      const reserve = serverSpan(traceId, "Reserve");
      const chain = ancestorsOf(databaseSpansUnder(reserve)[0], spansOf(traceId)).map((each) => each.name);
      expect(chain.slice(chain.indexOf("burndown.write_group"))).toEqual(["burndown.write_group", "burndown.write", "burndown.v1.LedgerService/Reserve", "burndown.v1.LedgerService/Reserve", "burndown.sdk Reserve", "caller"]);
    });
  }

  it("a raw client's traceparent is taken as the parent too, and a call without one starts a trace of its own", async () => {
    const traceId = randomUUID().replaceAll("-", "");
    const parentId = traceId.slice(0, 16);
    const raw = createClient(LedgerService, createConnectTransport({ baseUrl: t.server.httpUrl, httpVersion: "1.1" }));
    const headers = { authorization: `Bearer ${token}` };
    await raw.getBalance({ customerId: known }, { headers: { ...headers, traceparent: `00-${traceId}-${parentId}-01` } });
    expect(serverSpan(traceId, "GetBalance").parentSpanContext?.spanId).toBe(parentId);

    const { span } = await inSpan("caller without propagation", () => raw.getBalance({ customerId: known }, { headers }));
    const orphan = exporter.getFinishedSpans().find((each) => each.name === "burndown.v1.LedgerService/GetBalance" && each.spanContext().traceId !== traceId);
    expect(orphan).toBeDefined();
    expect(orphan!.spanContext().traceId).not.toBe(span.spanContext().traceId);
    expect(orphan!.parentSpanContext).toBeUndefined();
  });

  it("concurrent writes that share a group: each call's write span parents or links the group's span, which holds the transaction", async () => {
    const customerIds = Array.from({ length: 24 }, () => `group-${randomUUID()}`);
    await Promise.all(customerIds.map((customerId) => overGrpc.grant({ customerId, creditTypeId, amount: 10n, source: GrantSource.PURCHASE, reasonCode: "seed" })));
    exporter.reset();
    const calls = await Promise.all(customerIds.map((customerId) => inSpan("burner", () => overGrpc.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 1n } } }))));
    const all = exporter.getFinishedSpans();
    const groups = new Map(all.filter((span) => span.name === "burndown.write_group").map((span) => [span.spanContext().spanId, span]));
    let linkedOnly = 0;
    for (const { span } of calls) {
      const traceId = span.spanContext().traceId;
      const rpc = all.find((each) => each.spanContext().traceId === traceId && each.name.startsWith("burndown.v1.LedgerService/Burn") && each.kind === SpanKind.SERVER);
      expect(rpc, "each caller's trace has its RPC span").toBeDefined();
      const write = all.find((each) => each.name === "burndown.write" && each.parentSpanContext?.spanId === rpc!.spanContext().spanId);
      expect(write, "each RPC has a write span").toBeDefined();
      const parented = [...groups.values()].find((group) => group.parentSpanContext?.spanId === write!.spanContext().spanId);
      const linked = write!.links.map((link) => groups.get(link.context.spanId)).find((group) => group !== undefined);
      const group = parented ?? linked;
      expect(group, "the write span leads to its group").toBeDefined();
      if (parented === undefined) {
        linkedOnly++;
        expect(group!.links.map((link) => link.context.spanId)).toContain(write!.spanContext().spanId);
      }
      expect(all.some((each) => each.name === "pg.transaction" && each.parentSpanContext?.spanId === group!.spanContext().spanId)).toBe(true);
    }
    // Some of the 24 shared a group (the test would not show links otherwise).
    expect(linkedOnly).toBeGreaterThan(0);
  });
});

describe("the SDK's own spans", () => {
  it("show a retried call as one call span over its attempts, the failed one an error, and a refusal with its code and reason", async () => {
    let failNext = true;
    const flaky = createBurndownClient({
      baseUrl: t.server.grpcUrl,
      apiKey: token,
      retry: { backoffMsInitial: 1, backoffMsMax: 2 },
      attemptInterceptors: [(next) => (attempt) => (failNext ? ((failNext = false), Promise.reject(new ConnectError("connection reset", Code.Unavailable))) : next(attempt))],
    });
    try {
      const { span } = await inSpan("caller", () => flaky.getBalance({ customerId: known }));
      const spans = spansOf(span.spanContext().traceId);
      const call = spans.find((each) => each.name === "burndown.sdk GetBalance")!;
      const attempts = spans.filter((each) => each.kind === SpanKind.CLIENT && each.parentSpanContext?.spanId === call.spanContext().spanId);
      expect(attempts.map((each) => [each.attributes["burndown.attempt"], each.status.code])).toEqual([
        [1, SpanStatusCode.ERROR],
        [2, SpanStatusCode.UNSET],
      ]);
      expect(attempts[0].attributes["rpc.grpc.status_code"]).toBe(Code.Unavailable);
      expect(call.status.code).toBe(SpanStatusCode.UNSET);
      // Only the second attempt reached the server.
      expect(serverSpan(span.spanContext().traceId, "GetBalance").parentSpanContext?.spanId).toBe(attempts[1].spanContext().spanId);

      const refused = await inSpan("refused caller", () => flaky.reserve({ customerId: `nobody-${randomUUID()}`, cost: { case: "credits", value: { creditTypeId, amount: 5n } }, ttl: { seconds: 60n } }).catch((error: unknown) => error));
      const refusedCall = spansOf(refused.span.spanContext().traceId).find((each) => each.name === "burndown.sdk Reserve")!;
      expect(refusedCall.status.code).toBe(SpanStatusCode.ERROR);
      expect(refusedCall.attributes).toMatchObject({ "rpc.grpc.status_code": (refused.result as ConnectError).code, "burndown.reason": errorInfoOf(refused.result)?.reason, "burndown.attempts": 1 });
      expect(typeof refusedCall.attributes["burndown.request_id"]).toBe("string");
    } finally {
      await flaky.close();
    }
  });
});

describe("the SDK's batched Reserves", () => {
  it("leave in the trace of the attempt they were made in, not of the call whose answer freed the batcher", async () => {
    const batched = createBurndownClient({ baseUrl: t.server.grpcUrl, apiKey: token, batching: { batchesInFlightMax: 1 } });
    try {
      const reserve = () => batched.reserve({ customerId: known, cost: { case: "credits", value: { creditTypeId, amount: 1n } }, ttl: { seconds: 60n } });
      // A leaves alone; B and C wait for it and then leave together, as one ReserveBatch.
      const first = inSpan("A", reserve);
      await new Promise((resolve) => setImmediate(resolve));
      const [b, c] = await Promise.all([inSpan("B", reserve), inSpan("C", reserve), first]);
      expect(batched.operationStats().reserve.batches).toBe(1);
      const batch = exporter.getFinishedSpans().find((span) => span.name === "burndown.v1.LedgerService/ReserveBatch");
      expect(batch?.spanContext().traceId).toBe(b.span.spanContext().traceId);
      // Sent from B's attempt: under B's attempt and call spans.
      expect(ancestorsOf(batch!, spansOf(b.span.spanContext().traceId)).map((span) => span.name)).toEqual(["burndown.v1.LedgerService/Reserve", "burndown.sdk Reserve", "B"]);
      expect(c.span.spanContext().traceId).not.toBe(b.span.spanContext().traceId);
    } finally {
      await batched.close();
    }
  });
});

describe("the SDK's background usage reporting", () => {
  it("sends its batches outside the trace of the caller that first reported: a batch has no caller of its own", async () => {
    const reporting = createBurndownClient({ baseUrl: t.server.grpcUrl, apiKey: token, usage: { lingerMsMax: 1 } });
    try {
      const { span } = await inSpan("first reporter", async () => reporting.reportUsage({ customerId: known, featureKey: "unknown-feature", quantity: 1n }));
      await reporting.flush();
      const report = exporter.getFinishedSpans().find((each) => each.name === "burndown.v1.LedgerService/ReportUsage" && each.kind === SpanKind.SERVER);
      expect(report, "the batch reached the server").toBeDefined();
      expect(report!.spanContext().traceId).not.toBe(span.spanContext().traceId);
      // Its trace begins at the SDK's call span for the batch, which has no parent.
      const ancestors = ancestorsOf(report!, spansOf(report!.spanContext().traceId));
      expect(ancestors.map((each) => each.name)).toEqual(["burndown.v1.LedgerService/ReportUsage", "burndown.sdk ReportUsage"]);
      expect(ancestors[1].parentSpanContext).toBeUndefined();
    } finally {
      await reporting.close();
    }
  });
});

describe("the background jobs", () => {
  it("run each pass in a root span of its own, with the pass's statements beneath it, even when started inside a caller's trace", async () => {
    // Something due: a grant whose credits expired a minute ago.
    const customerId = `job-${randomUUID()}`;
    await overConnect.grant({ customerId, creditTypeId, amount: 5n, source: GrantSource.PURCHASE, reasonCode: "seed", expireTime: timestampFromMs(Date.now() + 60_000) });
    const clock = { now: () => new Date(Date.now() + 120_000) };
    const { span: callerSpan, result: job } = await inSpan("caller that starts the job", async () => startExpiryJobs({ ...t.server.deps, now: clock.now }, 10, () => {}));
    try {
      await vi.waitFor(() => expect(exporter.getFinishedSpans().some((span) => span.name === "burndown.job expiry")).toBe(true), { timeout: 10_000, interval: 20 });
    } finally {
      await job.stop();
    }
    const pass = exporter.getFinishedSpans().find((span) => span.name === "burndown.job expiry")!;
    expect(pass.parentSpanContext).toBeUndefined();
    expect(pass.spanContext().traceId).not.toBe(callerSpan.spanContext().traceId);
    expect(pass.attributes).toMatchObject({ "burndown.job": "expiry" });
    const beneath = spansOf(pass.spanContext().traceId).filter((span) => span !== pass);
    expect(beneath.map((span) => span.name)).toEqual(expect.arrayContaining(["pg.transaction"]));
    for (const span of beneath) expect(ancestorsOf(span, spansOf(pass.spanContext().traceId)).at(-1)).toBe(pass);
  });
});

describe("usage from the queue", () => {
  it.skipIf(!natsUp && !process.env.CI)("records each batch in a root span of its own, linked to the traces of the SDK publishes that sent its messages", async () => {
    const queue = await createTestQueue();
    const consumer = startUsageConsumer(t.server.deps, t.server.admission, queue.config(parseToken(token)!.keyId), () => {});
    try {
      const customerId = `queued-${randomUUID()}`;
      await overConnect.grant({ customerId, creditTypeId, amount: 50n, source: GrantSource.PURCHASE, reasonCode: "seed" });
      // The SDK's publisher puts the active trace context in the message's headers.
      const publisher = createUsagePublisher({ js: queue.js, subject: queue.subject });
      const { span: producer } = await inSpan("producer", () => publisher.publish({ customerId, featureKey: "chat", quantity: 2n }));
      await vi.waitFor(() => expect(exporter.getFinishedSpans().some((span) => span.name === "burndown.usage_queue.batch")).toBe(true), { timeout: 10_000, interval: 20 });
      const batch = exporter.getFinishedSpans().find((span) => span.name === "burndown.usage_queue.batch")!;
      expect(batch.parentSpanContext).toBeUndefined();
      expect(batch.spanContext().traceId).not.toBe(producer.spanContext().traceId);
      expect(batch.links.map((link) => link.context.spanId)).toEqual([producer.spanContext().spanId]);
      expect(batch.attributes).toMatchObject({ "messaging.system": "nats", "messaging.batch.message_count": 1 });
      expect(spansOf(batch.spanContext().traceId).map((span) => span.name)).toEqual(expect.arrayContaining(["burndown.write", "pg.transaction"]));
    } finally {
      await consumer.stop();
      await queue.close();
    }
  });
});

describe("request log lines", () => {
  const keyIdOf = (apiToken: string) => apiToken.split("_")[1];
  const linesWith = (text: string) => logLines.filter((line) => line.includes(text)).map((line) => JSON.parse(line) as Record<string, unknown>);

  it("one line per call with request id, method, caller key id, code, duration and trace id; never the token or the body", async () => {
    const marker = `body-${randomUUID()}`;
    const raw = createClient(LedgerService, createConnectTransport({ baseUrl: t.server.httpUrl, httpVersion: "1.1" }));
    const requestId = `req-${randomUUID()}`;
    let answeredId: string | null = null;
    await overConnect.grant({ customerId: marker, creditTypeId, amount: 7n, source: GrantSource.PURCHASE, reasonCode: "seed" });
    const { span } = await inSpan("logged caller", () =>
      overConnect.getBalance({ customerId: marker }).then(() =>
        raw.getBalance({ customerId: marker }, { headers: { authorization: `Bearer ${token}`, "x-request-id": requestId }, onHeader: (header) => (answeredId = header.get("x-request-id")) }),
      ),
    );
    expect(answeredId).toBe(requestId);
    const lines = logLines.filter((line) => line.includes('"msg":"request"') && line.includes("GetBalance")).map((line) => JSON.parse(line) as Record<string, unknown>);
    const mine = lines.find((line) => line.requestId === requestId);
    expect(mine).toMatchObject({ level: "info", msg: "request", method: "burndown.v1.LedgerService/GetBalance", keyId: keyIdOf(token), code: "OK" });
    expect(typeof mine!.durationMs).toBe("number");
    const sdkLine = lines.find((line) => line.trace_id === span.spanContext().traceId);
    expect(sdkLine, "the SDK's call is logged with its trace id").toMatchObject({ keyId: keyIdOf(token), code: "OK" });
    expect(String(sdkLine!.requestId)).toMatch(/^[0-9a-f-]{36}$/);
    const text = logLines.join("\n");
    expect(text).not.toContain(parseToken(token)!.secret); // the secret is base64url, so it may hold "_" itself
    expect(text).not.toContain(marker);
  });

  it("a stream the client cancels is logged CANCELED, not OK", async () => {
    const raw = createClient(HealthService, createConnectTransport({ baseUrl: t.server.httpUrl, httpVersion: "1.1" }));
    const requestId = `req-${randomUUID()}`;
    const stop = new AbortController();
    const stream = raw.watch({ service: "" }, { signal: stop.signal, headers: { "x-request-id": requestId } })[Symbol.asyncIterator]();
    expect((await stream.next()).done).toBe(false);
    stop.abort();
    await stream.next().catch(() => undefined);
    await vi.waitFor(() => expect(linesWith(requestId)).toHaveLength(1), { timeout: 5_000, interval: 20 });
    expect(linesWith(requestId)[0]).toMatchObject({ method: "grpc.health.v1.Health/Watch", code: "CANCELED", level: "info" });
  });

  it("a refused call's line carries its code and reason, and a malformed x-request-id is replaced", async () => {
    const raw = createClient(LedgerService, createConnectTransport({ baseUrl: t.server.httpUrl, httpVersion: "1.1" }));
    const bad = "not a request id; drop table";
    const error = await raw.reserve({ customerId: `none-${randomUUID()}`, cost: { case: "credits", value: { creditTypeId, amount: 5n } }, ttl: { seconds: 60n }, requestId: randomUUID() }, { headers: { authorization: `Bearer ${token}`, "x-request-id": bad } }).catch((caught: { metadata: Headers }) => caught);
    const answeredId = (error as { metadata: Headers }).metadata.get("x-request-id");
    expect(answeredId).toMatch(/^[0-9a-f-]{36}$/);
    const [line] = linesWith(answeredId!);
    expect(line).toMatchObject({ method: "burndown.v1.LedgerService/Reserve", keyId: keyIdOf(token), level: "info" });
    expect(line.code).not.toBe("OK");
    expect(typeof line.reason).toBe("string");
    expect(logLines.join("\n")).not.toContain(bad);

    const unauthenticated = await raw.getBalance({ customerId: "x" }, { headers: { authorization: "Bearer bd_0123456789abcdef0123_notarealsecretatall" } }).catch((caught: { metadata: Headers }) => caught);
    const [refused] = linesWith((unauthenticated as { metadata: Headers }).metadata.get("x-request-id")!);
    expect(refused).toMatchObject({ code: "UNAUTHENTICATED" });
    expect(refused.keyId).toBeUndefined();
    expect(logLines.join("\n")).not.toContain("notarealsecretatall");
  });
});
