// The grpc-js adapter in memory, over real HTTP/2 on port 0, with stand-in implementations
// and the server's own interceptors: what it must guarantee beyond the tests that run the
// whole server over gRPC. A cancelled or late call leaves the admission queue; refusals
// carry the same trailers, byte for byte, as connect-node's; stream bodies that do not
// decode are MALFORMED_REQUEST; a client cannot forge the malformed mark; what
// implementations set in headers and trailers arrives; close does not hang; IPv6 works.
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, createClient, type Interceptor, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { errorInfoOf, GetBalanceRequestSchema, LedgerService } from "@burndown/sdk";
import { afterEach, describe, expect, it } from "vitest";
import { LedgerError } from "../errors.js";
import { limits } from "../limits.js";
import { Admission, admissionInterceptor } from "./admission.js";
import { deadlineInterceptor } from "./deadline-interceptor.js";
import { closeGrpcJs, createGrpcJsServer, listenGrpcJs } from "./grpc-js-server.js";
import { HealthService, healthHandlers, ServingStatus } from "./health.js";
import { errorInterceptor } from "./interceptors.js";
import { malformedInterceptor } from "./malformed-requests.js";
import { registerReflection, ServerReflectionV1 } from "./reflection.js";

type Routes = (router: ConnectRouter) => void;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

/** serve starts a grpc-js server for the routes with the server's error and malformed-body interceptors (and more). */
async function serve(routes: Routes, options: { interceptors?: Interceptor[]; host?: string; readMaxBytes?: number } = {}) {
  const logged: string[] = [];
  const log = (message: string) => logged.push(message);
  const server = createGrpcJsServer({
    routes,
    interceptors: [errorInterceptor(log), malformedInterceptor(), ...(options.interceptors ?? [])],
    readMaxBytes: options.readMaxBytes ?? limits.requestBodyBytesMax,
    log,
  });
  const host = options.host ?? "127.0.0.1";
  const port = await listenGrpcJs(server, host, 0);
  cleanups.push(() => closeGrpcJs(server, 1_000));
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  return { server, url, logged, transport: createGrpcTransport({ baseUrl: url }) };
}

function ledgerRoutes(impl: Partial<ServiceImpl<typeof LedgerService>>): Routes {
  return (router) => router.service(LedgerService, impl);
}

/** Gate holds calls until it opens. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const startedMs = Date.now();
  while (!condition() && Date.now() - startedMs < timeoutMs) await sleep(5);
  expect(condition()).toBe(true);
}

async function errorOf(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("expected the call to fail");
}

function envelope(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.byteLength);
  new DataView(out.buffer).setUint32(1, payload.byteLength);
  out.set(payload, 5);
  return out;
}

/** rawCall sends one gRPC request over plain HTTP/2 and returns the response headers and trailers together. */
async function rawCall(url: string, path: string, body: Uint8Array, headers: Record<string, string> = {}): Promise<http2.IncomingHttpHeaders> {
  const session = http2.connect(url);
  try {
    return await new Promise((resolve, reject) => {
      const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
      let received: http2.IncomingHttpHeaders = {};
      stream.on("response", (h) => (received = { ...received, ...h }));
      stream.on("trailers", (t) => (received = { ...received, ...t }));
      stream.on("data", () => undefined);
      stream.on("error", reject);
      stream.on("close", () => resolve(received));
      stream.end(body);
    });
  } finally {
    session.close();
  }
}

describe("admission over grpc-js", () => {
  function admissionRoutes(held: { opened: Promise<void> }): Routes {
    return ledgerRoutes({
      async getBalance() {
        await held.opened;
        return { balances: [] };
      },
    });
  }

  it("a call the client cancels while queued leaves the queue at once", async () => {
    const admission = new Admission({ inFlightMax: 1, queuedMax: 5, queueWaitMs: 60_000 });
    const held = gate();
    const t = await serve(admissionRoutes(held), { interceptors: [deadlineInterceptor(), admissionInterceptor(admission)] });
    const ledger = createClient(LedgerService, t.transport);
    const running = ledger.getBalance({ customerId: "a" }).then(() => "ok", (error: unknown) => error); // settled: a failing test must not leave it unhandled
    await until(() => admission.stats().inFlight === 1);
    const caller = new AbortController();
    const queued = errorOf(ledger.getBalance({ customerId: "b" }, { signal: caller.signal }));
    await until(() => admission.stats().queued === 1);
    caller.abort();
    expect((await queued).code).toBe(Code.Canceled);
    await until(() => admission.stats().queued === 0, 1_000);
    expect(admission.stats()).toMatchObject({ inFlight: 1, queued: 0, shed: 0 });
    held.open();
    expect(await running).toBe("ok");
    expect(admission.stats()).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it("a queued call with a deadline is refused OVERLOADED before the caller's own timer fires", async () => {
    const admission = new Admission({ inFlightMax: 1, queuedMax: 5, queueWaitMs: 60_000 });
    const held = gate();
    const t = await serve(admissionRoutes(held), { interceptors: [deadlineInterceptor(), admissionInterceptor(admission)] });
    const ledger = createClient(LedgerService, t.transport);
    const running = ledger.getBalance({ customerId: "a" }).then(() => "ok", (error: unknown) => error); // settled: a failing test must not leave it unhandled
    await until(() => admission.stats().inFlight === 1);
    const startedMs = Date.now();
    // 1.5 s: the server keeps 150 ms of it to answer in, a margin a busy machine needs.
    const refused = await errorOf(ledger.getBalance({ customerId: "b" }, { timeoutMs: 1_500 }));
    expect([refused.code, errorInfoOf(refused)?.reason]).toEqual([Code.ResourceExhausted, "OVERLOADED"]);
    expect(Date.now() - startedMs).toBeLessThan(1_500);
    held.open();
    expect(await running).toBe("ok");
  });

  it("the implementation sees the caller's timeout in its context", async () => {
    let seenMs: number | undefined;
    const t = await serve(
      ledgerRoutes({
        getBalance(_, ctx) {
          seenMs = ctx.timeoutMs();
          return { balances: [] };
        },
      }),
    );
    await createClient(LedgerService, t.transport).getBalance({ customerId: "a" }, { timeoutMs: 5_000 });
    expect(seenMs).toBeGreaterThan(4_000);
    expect(seenMs).toBeLessThanOrEqual(5_000);
  });
});

describe("refusals on the wire", () => {
  const routes = ledgerRoutes({
    getBalance(req) {
      if (req.customerId === "boom") throw new Error("secret detail of a bug");
      throw new LedgerError("not_found", "CUSTOMER_NOT_FOUND", `customer "${req.customerId}" not found, 100% sure`, { customer_id: req.customerId });
    },
  });

  /** connectH2c serves the routes the way GRPC_PORT was served before grpc-js: connect-node on h2c. */
  async function connectH2c(): Promise<string> {
    const server = http2.createServer(connectNodeAdapter({ routes, interceptors: [errorInterceptor(() => {})] }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  function statusOf(headers: http2.IncomingHttpHeaders) {
    const details = headers["grpc-status-details-bin"] as string | undefined;
    return {
      status: headers["grpc-status"],
      message: decodeURIComponent(String(headers["grpc-message"] ?? "")),
      details: details === undefined ? undefined : Buffer.from(details, "base64").toString("hex"),
    };
  }

  it.each(["acme", "boom"])("for customer %s, grpc-js sends the code, message and grpc-status-details-bin connect-node sent", async (customerId) => {
    const t = await serve(routes);
    const body = envelope(toBinary(GetBalanceRequestSchema, create(GetBalanceRequestSchema, { customerId })));
    const viaGrpcJs = statusOf(await rawCall(t.url, "/burndown.v1.LedgerService/GetBalance", body));
    const viaConnect = statusOf(await rawCall(await connectH2c(), "/burndown.v1.LedgerService/GetBalance", body));
    expect(viaGrpcJs).toEqual(viaConnect);
    expect(viaGrpcJs.details).toBeDefined();
  });

  it("an unknown error is Internal with reason INTERNAL and no detail, and is logged", async () => {
    const t = await serve(routes);
    const error = await errorOf(createClient(LedgerService, t.transport).getBalance({ customerId: "boom" }));
    expect([error.code, error.rawMessage, errorInfoOf(error)?.reason]).toEqual([Code.Internal, "internal error", "INTERNAL"]);
    expect(t.logged.join("\n")).toContain("secret detail of a bug");
  });
});

describe("bodies that do not decode", () => {
  it("a reflection stream message that is not protobuf ends the stream InvalidArgument MALFORMED_REQUEST", async () => {
    const t = await serve((router) => registerReflection(router, [LedgerService.file]));
    const headers = await rawCall(t.url, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", envelope(new Uint8Array([0xff, 0xff])));
    expect(headers["grpc-status"]).toBe(String(Code.InvalidArgument));
    expect(Buffer.from(String(headers["grpc-status-details-bin"]), "base64").toString("latin1")).toContain("MALFORMED_REQUEST");
  });

  it("a health Watch body that is not protobuf is InvalidArgument MALFORMED_REQUEST", async () => {
    const t = await serve((router) => router.service(HealthService, healthHandlers({ services: [], probe: async () => true })));
    const headers = await rawCall(t.url, "/grpc.health.v1.Health/Watch", envelope(new Uint8Array([0xff, 0xff])));
    expect(headers["grpc-status"]).toBe(String(Code.InvalidArgument));
    expect(Buffer.from(String(headers["grpc-status-details-bin"]), "base64").toString("latin1")).toContain("MALFORMED_REQUEST");
  });

  it("a client cannot mark its own well-formed request malformed", async () => {
    const t = await serve(ledgerRoutes({ getBalance: () => ({ balances: [] }) }));
    const body = envelope(toBinary(GetBalanceRequestSchema, create(GetBalanceRequestSchema, { customerId: "acme" })));
    const headers = await rawCall(t.url, "/burndown.v1.LedgerService/GetBalance", body, { "burndown-malformed-request": "forged" });
    expect(headers["grpc-status"]).toBe("0");
  });

  it("a message over the size limit is ResourceExhausted", async () => {
    const t = await serve(ledgerRoutes({ getBalance: () => ({ balances: [] }) }), { readMaxBytes: 64 });
    const error = await errorOf(createClient(LedgerService, t.transport).getBalance({ customerId: "x".repeat(100) }));
    expect(error.code).toBe(Code.ResourceExhausted);
  });
});

describe("streams, headers and the listener", () => {
  it("a health Watch the client cancels ends its implementation, so a new one fits", async () => {
    const t = await serve((router) => router.service(HealthService, healthHandlers({ services: [], probe: async () => true, watchersMax: 1, watchIntervalMs: 60_000 })));
    const health = createClient(HealthService, t.transport);
    for (let i = 0; i < 2; i++) {
      const caller = new AbortController();
      const stream = health.watch({ service: "" }, { signal: caller.signal })[Symbol.asyncIterator]();
      expect((await stream.next()).value?.status).toBe(ServingStatus.SERVING);
      caller.abort();
      await stream.next().catch(() => undefined);
      await sleep(50); // the server sees the cancellation a moment later
    }
  });

  it("headers and trailers an implementation sets reach the client", async () => {
    const t = await serve(
      ledgerRoutes({
        getBalance(_, ctx) {
          ctx.responseHeader.set("burndown-test-header", "h");
          ctx.responseTrailer.set("burndown-test-trailer", "t");
          return { balances: [] };
        },
      }),
    );
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    await createClient(LedgerService, t.transport).getBalance({ customerId: "a" }, { onHeader: (h) => (header = h), onTrailer: (h) => (trailer = h) });
    expect([header?.get("burndown-test-header"), trailer?.get("burndown-test-trailer")]).toEqual(["h", "t"]);
  });

  it("serves reflection's bidi stream to the end", async () => {
    const t = await serve((router) => registerReflection(router, [LedgerService.file]));
    const reflection = createClient(ServerReflectionV1, t.transport);
    async function* requests() {
      yield { messageRequest: { case: "listServices" as const, value: "" } };
      yield { messageRequest: { case: "fileContainingSymbol" as const, value: "burndown.v1.LedgerService" } };
    }
    const answers = [];
    for await (const answer of reflection.serverReflectionInfo(requests())) answers.push(answer.messageResponse.case);
    expect(answers).toEqual(["listServicesResponse", "fileDescriptorResponse"]);
  });

  it("close lets a call in flight finish within the grace period, then cancels what is left", async () => {
    const held = gate();
    const logged: string[] = [];
    const server = createGrpcJsServer({
      routes: ledgerRoutes({
        async getBalance(req) {
          if (req.customerId === "slow") await held.opened;
          return { balances: [] };
        },
      }),
      interceptors: [],
      readMaxBytes: 1_000,
      log: (message) => logged.push(message),
    });
    const ledger = createClient(LedgerService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${await listenGrpcJs(server, "127.0.0.1", 0)}` }));
    await ledger.getBalance({ customerId: "quick" }); // leaves an idle connection open
    const stuck = errorOf(ledger.getBalance({ customerId: "slow" }));
    await sleep(50);
    const startedMs = Date.now();
    await closeGrpcJs(server, 200);
    expect(Date.now() - startedMs).toBeLessThan(2_000);
    expect([Code.Canceled, Code.Unavailable, Code.Internal]).toContain((await stuck).code);
    held.open();
  });

  it("binds an IPv6 literal on port 0", async () => {
    const t = await serve(ledgerRoutes({ getBalance: () => ({ balances: [] }) }), { host: "::1" });
    expect(t.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
    expect(await createClient(LedgerService, t.transport).getBalance({ customerId: "a" })).toMatchObject({ balances: [] });
  });
});
