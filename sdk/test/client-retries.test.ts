// The client's retries against a real server behind a fault proxy: an attempt that timed
// out after the server applied it is retried with the same request id and applies once;
// broken connections are retried until the server is back; the server's refusals surface
// at once, typed; backoff is full jitter and stops at the deadline; a caller's cancel
// ends the call. Time is a manual clock: nothing here sleeps.
import { Code, ConnectError } from "@connectrpc/connect";
import { type BurndownClient, type BurndownClientOptions, createBurndownClient, errorInfoOf, InsufficientCreditsError, UnavailableError } from "@burndown/sdk";
import { v7 as uuidv7 } from "uuid";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type AttemptRecord, attemptRecorder } from "../../test-support/attempt-recorder.js";
import { type FaultProxy, startFaultProxy } from "../../test-support/fault-proxy.js";
import { type LedgerFixture, startLedgerFixture } from "../../test-support/ledger-fixture.js";
import { ManualClock } from "../../test-support/manual-clock.js";

const uuidv7Pattern = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const protocols = ["grpc", "connect"] as const;

let f: LedgerFixture;
const proxies = new Map<(typeof protocols)[number], FaultProxy>();
const clients: BurndownClient[] = [];

beforeAll(async () => {
  f = await startLedgerFixture();
  proxies.set("grpc", await startFaultProxy(f.t.server.grpcUrl));
  proxies.set("connect", await startFaultProxy(f.t.server.httpUrl));
});
afterEach(async () => {
  for (const proxy of proxies.values()) proxy.setMode({ kind: "pass" });
  await Promise.all(clients.splice(0).map((client) => client.close()));
});
afterAll(async () => {
  for (const proxy of proxies.values()) await proxy.close();
  await f.close();
});

function clientThrough(protocol: (typeof protocols)[number], options: Partial<BurndownClientOptions>): BurndownClient {
  const client = createBurndownClient({ baseUrl: proxies.get(protocol)!.url, apiKey: f.serviceToken, protocol, random: () => 0.5, timeoutMs: 1_000, ...options });
  clients.push(client);
  return client;
}

const credits = (amount: bigint) => ({ case: "credits" as const, value: { creditTypeId: f.creditTypeId, amount } });
const outcomes = (records: AttemptRecord[]) => records.map((record) => record.outcome);

describe.each(protocols)("over %s", (protocol) => {
  it("a burn whose attempt timed out after the server applied it is retried with the same request id and burns once", async () => {
    const proxy = proxies.get(protocol)!;
    const customerId = await f.customer(100n);
    const clock = new ManualClock(new Set(["backoff"]));
    const recorder = attemptRecorder();
    const client = clientThrough(protocol, { clock, attemptInterceptors: [recorder.interceptor] });
    await client.getBalance({ customerId }); // the connection is up before the proxy stalls it
    proxy.setMode({ kind: "stall", direction: "downstream" });
    const burned = client.burn({ customerId, cost: credits(30n) });
    await proxy.untilHeld("downstream", 1);
    // The burn is applied before the attempt times out; the client has not seen the answer. The first
    // chunk held may be a frame of the connection rather than the answer, so wait for the burn itself.
    await expect.poll(async () => (await f.balanceOf(customerId)).burned, { timeout: 10_000, interval: 20 }).toBe(30n);
    clock.fire("attempt timeout");
    await recorder.untilStarted(3);
    proxy.setMode({ kind: "pass" });
    expect((await burned).amount).toBe(30n);
    const burnAttempts = recorder.records.slice(1);
    expect(outcomes(burnAttempts)).toEqual([Code.DeadlineExceeded, "ok"]);
    expect(burnAttempts[0].call.requestId).toMatch(uuidv7Pattern);
    expect(burnAttempts[1].call.requestId).toBe(burnAttempts[0].call.requestId);
    expect(burnAttempts[1].signal).not.toBe(burnAttempts[0].signal);
    expect(await f.burnEntries(customerId)).toBe(1);
    expect((await f.balanceOf(customerId)).burned).toBe(30n);
  });

  it("UNAVAILABLE is retried: with connections reset until the server recovers, a reserve and a read succeed on their second attempt", async () => {
    const proxy = proxies.get(protocol)!;
    const customerId = await f.customer(100n);
    const recover = (record: AttemptRecord) => record.outcome === Code.Unavailable && proxy.setMode({ kind: "pass" });
    const recorder = attemptRecorder(recover);
    const client = clientThrough(protocol, { clock: new ManualClock(new Set(["backoff"])), attemptInterceptors: [recorder.interceptor] });
    proxy.setMode({ kind: "reset" });
    const reserved = await client.reserve({ customerId, cost: credits(40n) });
    expect(reserved.reservation?.amount).toBe(40n);
    expect(outcomes(recorder.records)).toEqual([Code.Unavailable, "ok"]);
    expect(recorder.records[1].call.requestId).toBe(recorder.records[0].call.requestId);
    proxy.setMode({ kind: "reset" });
    const balance = await client.getBalance({ customerId });
    expect(balance.balances[0].held).toBe(40n);
    expect(outcomes(recorder.records.slice(2))).toEqual([Code.Unavailable, "ok"]);
    expect(recorder.records[2].call.requestId).toBeUndefined();
  });
});

describe("the server's answers", () => {
  it("FAILED_PRECONDITION is not retried: an insufficient burn makes one attempt and throws InsufficientCreditsError", async () => {
    const customerId = await f.customer(10n);
    const recorder = attemptRecorder();
    const client = clientThrough("grpc", { attemptInterceptors: [recorder.interceptor] });
    const error = await client.burn({ customerId, cost: credits(50n) }).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(InsufficientCreditsError);
    const insufficient = error as InsufficientCreditsError;
    expect(insufficient).toMatchObject({ customerId, creditTypeId: f.creditTypeId, available: 10n, required: 50n, attempts: 1, code: Code.FailedPrecondition });
    expect(insufficient.requestId).toMatch(uuidv7Pattern);
    // The typed error is still a ConnectError with its ErrorInfo, for code that reads those.
    expect(insufficient).toBeInstanceOf(ConnectError);
    expect(errorInfoOf(insufficient)?.reason).toBe("INSUFFICIENT_CREDITS");
    expect(ConnectError.from(insufficient)).toBe(insufficient);
    expect(recorder.records).toHaveLength(1);
  });

  it("a caller's own request id is sent as is, and calling again with it returns the first burn without burning twice", async () => {
    const customerId = await f.customer(100n);
    const recorder = attemptRecorder();
    const client = clientThrough("grpc", { attemptInterceptors: [recorder.interceptor] });
    const requestId = `order-${uuidv7()}`;
    const first = await client.burn({ customerId, cost: credits(25n), requestId });
    const again = await client.burn({ customerId, cost: credits(25n), requestId });
    expect(again).toEqual(first);
    expect(recorder.records.map((record) => record.call.requestId)).toEqual([requestId, requestId]);
    expect((await f.balanceOf(customerId)).burned).toBe(25n);
  });

  it("each mutation gets a request id of its own", async () => {
    const customerId = await f.customer(100n);
    const recorder = attemptRecorder();
    const client = clientThrough("grpc", { attemptInterceptors: [recorder.interceptor] });
    await client.burn({ customerId, cost: credits(1n) });
    await client.burn({ customerId, cost: credits(1n) });
    const [first, second] = recorder.records.map((record) => record.call.requestId);
    expect(first).toMatch(uuidv7Pattern);
    expect(second).toMatch(uuidv7Pattern);
    expect(second).not.toBe(first);
    expect((await f.balanceOf(customerId)).burned).toBe(2n);
  });
});

describe("bounds", () => {
  it("backoff is full jitter, doubles up to its maximum, and the call stops before a wait would pass the deadline", async () => {
    const clock = new ManualClock(new Set(["backoff"]));
    const recorder = attemptRecorder();
    const retry = { attemptsMax: 20, backoffMsInitial: 100, backoffMsMax: 400, deadlineMs: 1_000 };
    const client = clientThrough("grpc", { clock, random: () => 0.999, retry, attemptInterceptors: [recorder.interceptor] });
    proxies.get("grpc")!.setMode({ kind: "reset" });
    const error = await client.getBalance({ customerId: "anyone" }).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(UnavailableError);
    const waits = clock.slept.filter((sleep) => sleep.reason === "backoff").map((sleep) => sleep.ms);
    // Caps 100, 200, 400, 400: waits of 99, 199 and 399 end by 697 ms; another 399 would end past 1,000.
    expect(waits).toEqual([99, 199, 399]);
    expect(clock.nowMs()).toBeLessThan(retry.deadlineMs);
    expect(recorder.records).toHaveLength(4);
    expect((error as UnavailableError).attempts).toBe(4);
  });

  it("attempts stop at attemptsMax", async () => {
    const clock = new ManualClock(new Set(["backoff"]));
    const recorder = attemptRecorder();
    const client = clientThrough("grpc", { clock, retry: { attemptsMax: 3 }, attemptInterceptors: [recorder.interceptor] });
    proxies.get("grpc")!.setMode({ kind: "reset" });
    await expect(client.burn({ customerId: "anyone", cost: credits(1n) })).rejects.toBeInstanceOf(UnavailableError);
    expect(outcomes(recorder.records)).toEqual([Code.Unavailable, Code.Unavailable, Code.Unavailable]);
  });

  it("the caller's abort during a backoff ends the call at once, with no further attempt", async () => {
    const clock = new ManualClock();
    const recorder = attemptRecorder();
    const client = clientThrough("grpc", { clock, attemptInterceptors: [recorder.interceptor] });
    proxies.get("grpc")!.setMode({ kind: "reset" });
    const controller = new AbortController();
    const call = client.getBalance({ customerId: "anyone" }, { signal: controller.signal }).then(
      () => null,
      (caught: unknown) => caught,
    );
    await clock.untilSleeping("backoff");
    controller.abort();
    const error = await call;
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Canceled);
    expect(recorder.records).toHaveLength(1);
  });
});
