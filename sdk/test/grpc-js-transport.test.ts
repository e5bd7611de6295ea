// The grpc-js transport against a real server, with the fault proxy between them where a
// test needs the network to misbehave: the server's errors arrive with the same code,
// message and ErrorInfo as over connect-node; a deadline ends a call as DeadlineExceeded,
// the caller's abort as Canceled; a server that cannot be reached is Unavailable, and the
// next call after it is back connects at once; headers travel both ways; Connect
// interceptors run; server streams stream; close ends what is in flight.
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema, LedgerService } from "@burndown/sdk";
import { createGrpcJsTransport, type GrpcJsTransport, metadataOf } from "../src/grpc-js-transport.js";
import { HealthService, ServingStatus } from "../../server/src/rpc/health.js";
import { ServerReflectionV1 } from "../../server/src/rpc/reflection.js";
import { bearer } from "../../test-support/bearer.js";
import { type FaultProxy, startFaultProxy } from "../../test-support/fault-proxy.js";
import { type LedgerFixture, startLedgerFixture } from "../../test-support/ledger-fixture.js";
import { quietPort } from "../../test-support/ports.js";

/** A test whose guarantee is broken would hang until the call's own timeout; it fails sooner. */
const hangsWithoutItMs = 10_000;

let f: LedgerFixture;
let proxy: FaultProxy;
const transports: GrpcJsTransport[] = [];

beforeAll(async () => {
  f = await startLedgerFixture();
  proxy = await startFaultProxy(f.t.server.grpcUrl);
});
afterEach(() => {
  proxy.setMode({ kind: "pass" });
  for (const transport of transports.splice(0)) transport.close();
});
afterAll(async () => {
  await proxy.close();
  await f.close();
});

function transportTo(baseUrl: string, interceptors: Interceptor[] = [bearer(f.serviceToken)]): GrpcJsTransport {
  const transport = createGrpcJsTransport({ baseUrl, interceptors });
  transports.push(transport);
  return transport;
}

const ledgerOver = (transport: Transport) => createClient(LedgerService, transport);
const credits = (amount: bigint) => ({ case: "credits" as const, value: { creditTypeId: f.creditTypeId, amount } });
const failureOf = (promise: Promise<unknown>): Promise<ConnectError> =>
  promise.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (error: unknown) => ConnectError.from(error),
  );

describe("answers", () => {
  it("a refusal arrives with the code, message, ErrorInfo and metadata connect-node's gRPC transport gives", async () => {
    const customerId = await f.customer(10n);
    const request = { customerId, cost: credits(50n), requestId: randomUUID() };
    const ours = await failureOf(ledgerOver(transportTo(f.t.server.grpcUrl)).burn(request));
    const theirs = await failureOf(ledgerOver(createGrpcTransport({ baseUrl: f.t.server.grpcUrl, interceptors: [bearer(f.serviceToken)] })).burn(request));
    expect(ours.code).toBe(Code.FailedPrecondition);
    expect(ours.rawMessage).toBe(theirs.rawMessage);
    const [info] = ours.findDetails(ErrorInfoSchema) as unknown as { reason: string; metadata: Record<string, string> }[];
    expect(info.reason).toBe("INSUFFICIENT_CREDITS");
    expect(info.metadata).toMatchObject({ customer_id: customerId, available: "10", required: "50" });
    expect(ours.findDetails(ErrorInfoSchema)).toEqual(theirs.findDetails(ErrorInfoSchema));
    // The same bytes; base64 padding is the sender's choice (grpc-js omits it, connect-node adds it).
    const detailsBytes = (error: ConnectError) => Buffer.from(error.metadata.get("grpc-status-details-bin") ?? "", "base64");
    expect(detailsBytes(ours).length).toBeGreaterThan(0);
    expect(detailsBytes(ours)).toEqual(detailsBytes(theirs));
  });

  it("a success returns the message and the response headers and trailers", async () => {
    const customerId = await f.customer(100n);
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    const response = await ledgerOver(transportTo(f.t.server.grpcUrl)).getBalance(
      { customerId, creditTypeId: f.creditTypeId },
      { onHeader: (received) => (header = received), onTrailer: (received) => (trailer = received) },
    );
    expect(response.balances[0].available).toBe(100n);
    expect(header?.get("content-type")).toMatch(/^application\/grpc/);
    expect(trailer).toBeInstanceOf(Headers);
  });

  it("request headers reach the server as metadata: the bearer token set by an interceptor authenticates, and none is refused", async () => {
    const customerId = await f.customer(5n);
    const withKey = await ledgerOver(transportTo(f.t.server.grpcUrl)).getBalance({ customerId, creditTypeId: f.creditTypeId });
    expect(withKey.balances[0].available).toBe(5n);
    const withoutKey = await failureOf(ledgerOver(transportTo(f.t.server.grpcUrl, [])).getBalance({ customerId }));
    expect(withoutKey.code).toBe(Code.Unauthenticated);
    const perCall = await ledgerOver(transportTo(f.t.server.grpcUrl, [])).getBalance({ customerId, creditTypeId: f.creditTypeId }, { headers: { authorization: `Bearer ${f.serviceToken}` } });
    expect(perCall.balances[0].available).toBe(5n);
  });

  it("binary headers become bytes in metadata, several values each", () => {
    const header = new Headers();
    header.append("x-trace-bin", Buffer.from([0, 1, 2, 255]).toString("base64"));
    header.append("x-trace-bin", Buffer.from("second").toString("base64"));
    header.set("x-plain", "text");
    header.set("content-type", "application/json");
    const metadata = metadataOf(header);
    expect(metadata.get("x-trace-bin")).toEqual([Buffer.from([0, 1, 2, 255]), Buffer.from("second")]);
    expect(metadata.get("x-plain")).toEqual(["text"]);
    expect(metadata.get("content-type")).toEqual([]);
  });

  it("Connect interceptors wrap the call: they see the request and its method, change its headers and read the response", async () => {
    const customerId = await f.customer(7n);
    const seen: string[] = [];
    const outer: Interceptor = (next) => async (req) => {
      seen.push(`outer ${req.method.name} ${req.url}`);
      const res = await next(req);
      seen.push(`outer got ${res.stream ? "stream" : (res.message as unknown as { balances: unknown[] }).balances.length}`);
      return res;
    };
    const inner: Interceptor = (next) => (req) => {
      seen.push("inner");
      req.header.set("authorization", `Bearer ${f.serviceToken}`);
      return next(req);
    };
    await ledgerOver(transportTo(f.t.server.grpcUrl, [outer, inner])).getBalance({ customerId, creditTypeId: f.creditTypeId });
    expect(seen).toEqual([`outer GetBalance ${f.t.server.grpcUrl}/burndown.v1.LedgerService/GetBalance`, "inner", "outer got 1"]);
  });
});

describe("time and cancellation", () => {
  it("a call whose answer does not come within timeoutMs fails DeadlineExceeded", async () => {
    const ledger = ledgerOver(transportTo(proxy.url));
    const customerId = await f.customer(5n);
    await ledger.getBalance({ customerId }); // connected before the proxy stalls
    proxy.setMode({ kind: "stall", direction: "downstream" });
    const error = await failureOf(ledger.getBalance({ customerId }, { timeoutMs: 150 }));
    expect(error.code).toBe(Code.DeadlineExceeded);
  }, hangsWithoutItMs);

  it("the caller's abort cancels the call in flight: Canceled, with the caller's reason", async () => {
    const ledger = ledgerOver(transportTo(proxy.url));
    const customerId = await f.customer(5n);
    await ledger.getBalance({ customerId });
    proxy.setMode({ kind: "stall", direction: "downstream" });
    const controller = new AbortController();
    const call = failureOf(ledger.getBalance({ customerId }, { signal: controller.signal }));
    await proxy.untilHeld("downstream", 1);
    controller.abort(new ConnectError("the caller gave up", Code.Canceled));
    const error = await call;
    expect(error.code).toBe(Code.Canceled);
    expect(error.rawMessage).toBe("the caller gave up");
  }, hangsWithoutItMs);

  it("a call whose signal is already aborted is not sent", async () => {
    const ledger = ledgerOver(transportTo(proxy.url));
    const before = proxy.connectionsAccepted();
    const error = await failureOf(ledger.getBalance({ customerId: "anyone" }, { signal: AbortSignal.abort() }));
    expect(error.code).toBe(Code.Canceled);
    expect(proxy.connectionsAccepted()).toBe(before);
  });
});

describe("faults", () => {
  it("a server nobody listens for is Unavailable", async () => {
    const port = await quietPort();
    const error = await failureOf(ledgerOver(transportTo(`http://127.0.0.1:${port}`)).getBalance({ customerId: "anyone" }, { timeoutMs: 5_000 }));
    expect(error.code).toBe(Code.Unavailable);
  });

  it("a connection reset under a call in flight is Unavailable", async () => {
    const ledger = ledgerOver(transportTo(proxy.url));
    const customerId = await f.customer(5n);
    await ledger.getBalance({ customerId });
    proxy.setMode({ kind: "stall", direction: "downstream" });
    const call = failureOf(ledger.getBalance({ customerId }, { timeoutMs: 5_000 }));
    await proxy.untilHeld("downstream", 1);
    proxy.setMode({ kind: "reset" });
    expect((await call).code).toBe(Code.Unavailable);
  });

  it("after failing to connect, the next call connects at once when the server is back", async () => {
    const ledger = ledgerOver(transportTo(proxy.url));
    const customerId = await f.customer(5n);
    proxy.setMode({ kind: "reset" });
    expect((await failureOf(ledger.getBalance({ customerId }, { timeoutMs: 5_000 }))).code).toBe(Code.Unavailable);
    proxy.setMode({ kind: "pass" });
    const balance = await ledger.getBalance({ customerId, creditTypeId: f.creditTypeId }, { timeoutMs: 5_000 });
    expect(balance.balances[0].available).toBe(5n);
  });

  it("close cancels the calls in flight, and a call after close fails Unavailable without connecting", async () => {
    const transport = transportTo(proxy.url);
    const ledger = ledgerOver(transport);
    const customerId = await f.customer(5n);
    await ledger.getBalance({ customerId });
    proxy.setMode({ kind: "stall", direction: "downstream" });
    const call = failureOf(ledger.getBalance({ customerId }));
    await proxy.untilHeld("downstream", 1);
    transport.close();
    expect((await call).code).toBe(Code.Canceled);
    const accepted = proxy.connectionsAccepted();
    expect((await failureOf(ledger.getBalance({ customerId }))).code).toBe(Code.Unavailable);
    expect(proxy.connectionsAccepted()).toBe(accepted);
  }, hangsWithoutItMs);
});

describe("streams", () => {
  it("a server stream yields messages as they come and ends with the caller's abort as Canceled", async () => {
    const health = createClient(HealthService, transportTo(f.t.server.grpcUrl, []));
    const controller = new AbortController();
    const statuses: ServingStatus[] = [];
    const error = await (async () => {
      for await (const answer of health.watch({ service: "" }, { signal: controller.signal })) {
        statuses.push(answer.status);
        controller.abort();
      }
    })().then(
      () => null,
      (caught: unknown) => ConnectError.from(caught),
    );
    expect(statuses).toEqual([ServingStatus.SERVING]);
    expect(error?.code).toBe(Code.Canceled);
  }, hangsWithoutItMs);

  it("a server stream whose headers do not come within timeoutMs fails DeadlineExceeded", async () => {
    const health = createClient(HealthService, transportTo(proxy.url, []));
    await health.check({ service: "" }); // connected before the proxy stalls
    proxy.setMode({ kind: "stall", direction: "downstream" });
    const error = await failureOf(
      (async () => {
        for await (const answer of health.watch({ service: "" }, { timeoutMs: 150 })) return answer;
      })(),
    );
    expect(error.code).toBe(Code.DeadlineExceeded);
  }, hangsWithoutItMs);

  it("a bidi method is refused as Unimplemented, naming what the transport supports", async () => {
    const reflection = createClient(ServerReflectionV1, transportTo(f.t.server.grpcUrl, []));
    const request = create(ServerReflectionV1.method.serverReflectionInfo.input, { messageRequest: { case: "listServices", value: "" } });
    const error = await failureOf(
      (async () => {
        for await (const answer of reflection.serverReflectionInfo((async function* () {
          yield request;
        })())) {
          return answer;
        }
      })(),
    );
    expect(error.code).toBe(Code.Unimplemented);
    expect(error.rawMessage).toMatch(/bidi-streaming: this transport supports unary and server-streaming methods/);
  });
});
