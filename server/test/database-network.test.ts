// Network faults between the server and PostgreSQL, through the TCP fault proxy: added
// latency (slower, still right), connections reset (Unavailable at once), a blackhole
// (Unavailable within the server's own bounds: 5 s to get a connection, 11 s per query),
// and after each the pool recovers by itself with no invariant broken. A caller that sends
// a timeout gets the server's Unavailable within it, from the connection wait or from the
// statement, not its own timer's DeadlineExceeded (measured without a racing client timer,
// so a loaded machine does not decide which answer arrives first). Calls are raw generated-client calls
// (and one SDK client), so what the caller sees is the server's answer, not a retry's.
import { randomUUID } from "node:crypto";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService, BurndownError, createBurndownClient, errorInfoOf, GrantSource, LedgerService } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { answerBudgetMs } from "../src/deadline.js";
import { limits } from "../src/limits.js";
import { newApiKeyToken } from "../src/service/api-keys.js";
import { createTestDatabase, type TestDatabase } from "../../test-support/database.js";
import { FaultProxy } from "../../test-support/fault-proxy.js";
import { invariantViolations } from "../../test-support/invariants.js";
import { bearer } from "../../test-support/bearer.js";
import { type ServerProcess, startServerProcess } from "../../test-support/server-process.js";

const creditTypeId = "credits";
const token = newApiKeyToken();
let database: TestDatabase;
let proxy: FaultProxy;
let server: ServerProcess;
let ledger: ReturnType<typeof createClient<typeof LedgerService>>;
let grpcLedger: ReturnType<typeof createClient<typeof LedgerService>>;

beforeAll(async () => {
  database = await createTestDatabase();
  const direct = new URL(database.url);
  proxy = await FaultProxy.start(`http://${direct.hostname}:${direct.port || 5432}`);
  const viaProxy = new URL(database.serverUrl);
  viaProxy.hostname = "127.0.0.1";
  viaProxy.port = String(proxy.port);
  server = await startServerProcess({ DATABASE_URL: viaProxy.toString(), BURNDOWN_ADMIN_KEY: token, BURNDOWN_JOB_INTERVAL_MS: "0" });
  const auth = bearer(token);
  const transport = createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [auth] });
  ledger = createClient(LedgerService, transport);
  grpcLedger = createClient(LedgerService, createGrpcTransport({ baseUrl: server.grpcUrl, interceptors: [auth] }));
  await createClient(AdminService, transport).createCreditType({ creditType: { creditTypeId, displayName: "Credits", scale: 0 }, requestId: randomUUID() });
  await ledger.grant({ customerId: "net", creditTypeId, amount: 1_000_000n, source: GrantSource.PURCHASE, reasonCode: "seed", requestId: randomUUID() });
}, 120_000);

afterAll(async () => {
  await server?.stop("SIGKILL");
  await proxy?.close();
  await database?.drop();
});

const burnRequest = (requestId: string) => ({ customerId: "net", cost: { case: "credits" as const, value: { creditTypeId, amount: 1n } }, requestId });
const burn = (requestId = randomUUID()) => ledger.burn(burnRequest(requestId), { timeoutMs: 30_000 });

async function failureOf(call: Promise<unknown>): Promise<{ code: Code; reason: string | undefined; ms: number }> {
  const started = performance.now();
  try {
    await call;
  } catch (error) {
    const connectError = ConnectError.from(error);
    return { code: connectError.code, reason: errorInfoOf(connectError)?.reason, ms: performance.now() - started };
  }
  throw new Error("the call succeeded");
}

/** recovered waits until a burn succeeds again, and returns how many tries it took (each answered, none hanging). */
async function recovered(): Promise<number> {
  for (let tries = 1; tries <= 50; tries++) {
    try {
      await burn();
      return tries;
    } catch (error) {
      expect(ConnectError.from(error).code).toBe(Code.Unavailable);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error("the pool did not recover");
}

async function burned(): Promise<bigint> {
  return (await ledger.getBalance({ customerId: "net", creditTypeId })).balances[0].burned;
}

describe("faults between the server and PostgreSQL", () => {
  it("latency: answers stay right, only slower", async () => {
    const before = await burned();
    proxy.setMode({ kind: "latency", latencyMs: 30, direction: "both" });
    await Promise.all(Array.from({ length: 10 }, () => burn()));
    proxy.setMode({ kind: "pass" });
    expect(await burned()).toBe(before + 10n);
  });

  it("reset: Unavailable DATABASE_UNAVAILABLE at once, nothing applied, then the pool recovers", async () => {
    const before = await burned();
    proxy.setMode({ kind: "reset" });
    const requestId = randomUUID();
    const failure = await failureOf(burn(requestId));
    expect([failure.code, failure.reason]).toEqual([Code.Unavailable, "DATABASE_UNAVAILABLE"]);
    proxy.setMode({ kind: "pass" });
    await recovered();
    // The failed request id was not used up: it applies now, once.
    await burn(requestId);
    await burn(requestId);
    expect(await burned()).toBe(before + 2n);
  });

  it("blackhole: Unavailable within the server's bounds, not a hang; then the pool recovers", async () => {
    const before = await burned();
    proxy.setMode({ kind: "blackhole" });
    const requestId = randomUUID();
    const failure = await failureOf(burn(requestId));
    expect(failure.code).toBe(Code.Unavailable);
    // The worst case is a query that was sent and never answered: query_timeout.
    expect(failure.ms).toBeLessThan(limits.statementTimeoutMsMax + 1_000 + limits.connectTimeoutMsMax + 5_000);
    proxy.setMode({ kind: "pass" });
    await recovered();
    // The blackholed burn never reached PostgreSQL; with its id it applies now, once.
    await burn(requestId);
    await burn(requestId);
    expect(await burned()).toBe(before + 2n);
    expect(await invariantViolations(database.pool)).toEqual([]);
  }, 60_000);

  it("blackhole under callers' deadlines: each caller gets Unavailable from the server within its timeout, over Connect and gRPC; nothing is applied twice", async () => {
    const before = await burned();
    proxy.setMode({ kind: "blackhole" });
    // More calls than the pool has connections: some wait for a connection, the others
    // for a statement's answer. Each sends a 1,500 ms timeout in its protocol's header, as
    // a client with that timeout does, but waits for the server's answer without a timer
    // of its own: what is measured is when the server answered, not which of two timers
    // a loaded machine fired first. The server answers at its budget (deadline.ts), well
    // inside its own bounds (5 s for a connection, 11 s for a statement).
    const timeoutMs = 1_500;
    const headerOnly = (protocol: "connect" | "grpc"): Interceptor => (next) => (req) => {
      if (protocol === "grpc") req.header.set("grpc-timeout", `${timeoutMs}m`);
      else req.header.set("connect-timeout-ms", String(timeoutMs));
      return next(req);
    };
    const auth = bearer(token);
    const timed = {
      connect: createClient(LedgerService, createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [auth, headerOnly("connect")] })),
      grpc: createClient(LedgerService, createGrpcTransport({ baseUrl: server.grpcUrl, interceptors: [auth, headerOnly("grpc")] })),
    };
    const ids = Array.from({ length: limits.poolSizeMax + 10 }, () => randomUUID());

    // The SDK sends each attempt's timeout itself, and keeps its own timer: with one
    // attempt, its caller sees the server's Unavailable (retryable, for its failure policy),
    // not DeadlineExceeded. Its timeout leaves the server the full reply margin (250 ms),
    // and it runs beside the burst, so it adds no time.
    const sdkTimeoutMs = 3_000;
    const sdk = createBurndownClient({ baseUrl: server.grpcUrl, apiKey: token, timeoutMs: sdkTimeoutMs, retry: { attemptsMax: 1 }, onError: () => undefined });
    const sdkRequestId = randomUUID();
    try {
      const [failures, sdkFailure] = await Promise.all([
        Promise.all(ids.map((requestId, i) => failureOf((i % 2 === 0 ? timed.connect : timed.grpc).burn(burnRequest(requestId))))),
        sdk.burn(burnRequest(sdkRequestId)).catch((error: unknown) => error),
      ]);
      const seen = failures.map((failure) => `${Code[failure.code]} ${failure.reason}`);
      expect(new Set(seen)).toEqual(new Set(["Unavailable DATABASE_UNAVAILABLE"]));
      // Cut short by the caller's deadline, not by the server's own bounds.
      const slowest = Math.max(...failures.map((failure) => failure.ms));
      expect(slowest).toBeLessThan(limits.connectTimeoutMsMax);
      expect(Math.min(...failures.map((failure) => failure.ms))).toBeGreaterThanOrEqual(answerBudgetMs(timeoutMs) - 50);

      expect(sdkFailure).toBeInstanceOf(BurndownError);
      expect([(sdkFailure as BurndownError).code, (sdkFailure as BurndownError).reason]).toEqual([Code.Unavailable, "DATABASE_UNAVAILABLE"]);
    } finally {
      await sdk.close();
    }

    proxy.setMode({ kind: "pass" });
    await recovered();
    // None of them reached a commit; each id applies now, once, however often it is sent.
    for (const requestId of [...ids, sdkRequestId]) await burn(requestId);
    for (const requestId of [...ids, sdkRequestId]) await burn(requestId);
    expect(await burned()).toBe(before + 1n + BigInt(ids.length) + 1n);
    expect(await invariantViolations(database.pool)).toEqual([]);
  }, 60_000);
});
