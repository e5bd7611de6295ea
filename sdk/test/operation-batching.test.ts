// Batching of concurrent Reserves and Commits: first the batcher on its own (which
// attempt gets which answer, abandonment, fallback for an old server), then the client
// against a real server, where batched calls must behave exactly like unary ones.
import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { type BurndownClient, createBurndownClient, errorInfoOf, InsufficientCreditsError } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ItemResult, OperationBatcher } from "../src/operation-batcher.js";
import { type LedgerFixture, startLedgerFixture } from "../../test-support/ledger-fixture.js";

/** A recorded call of the fake RPCs below, and the hand that answers it. */
interface Sent {
  kind: "one" | "batch";
  requests: string[];
  signal: AbortSignal;
  timeoutMs: number | undefined;
  answer: (results: ItemResult<string>[] | Error) => void;
}

function recordingBatcher(batchesInFlightMax = 1, batchSizeMax = 100) {
  const sent: Sent[] = [];
  const record = (kind: Sent["kind"], requests: string[], signal: AbortSignal, timeoutMs: number | undefined) =>
    new Promise<ItemResult<string>[]>((resolve, reject) => {
      sent.push({ kind, requests, signal, timeoutMs, answer: (results) => (results instanceof Error ? reject(results) : resolve(results)) });
    });
  const batcher = new OperationBatcher<string, string>({
    batchSizeMax,
    batchesInFlightMax,
    sendOne: async (request, signal, timeoutMs) => {
      const [result] = await record("one", [request], signal, timeoutMs);
      if (result.result.case === "response") return result.result.value;
      throw new ConnectError("refused", Code.FailedPrecondition);
    },
    sendBatch: (requests, signal, timeoutMs) => record("batch", requests, signal, timeoutMs),
  });
  return { batcher, sent };
}

const ok = (value: string): ItemResult<string> => ({ result: { case: "response", value } });
/** turn lets the event loop go round a few times: answers settle, then the batcher's next flush runs. */
const turn = async () => {
  for (let i = 0; i < 4; i++) await new Promise((resolve) => setImmediate(resolve));
};
const live = () => new AbortController().signal;

/**
 * twoInABatch sends "x" alone, then "a" and "b" while it is out, and answers "x": a and b
 * have left together as sent[1], unanswered. wrap sees each of their attempts.
 */
async function twoInABatch<T>(wrap: (attempt: Promise<string>) => Promise<T>) {
  const { batcher, sent } = recordingBatcher(1);
  const blocker = batcher.send("x", live());
  await turn();
  const attempts = ["a", "b"].map((request) => wrap(batcher.send(request, live())));
  sent[0].answer([ok("X")]);
  await blocker;
  await turn();
  return { batcher, sent, attempts };
}

describe("OperationBatcher", () => {
  it("sends the first attempt alone, gathers the ones that arrive while it is out, and answers each its own result", async () => {
    const { batcher, sent } = recordingBatcher(1);
    const first = batcher.send("a", live());
    await turn();
    const rest = ["b", "c", "d"].map((request) => batcher.send(request, live()).then((value) => value, (error: unknown) => error));
    await turn();
    expect(sent.map((call) => [call.kind, call.requests])).toEqual([["one", ["a"]]]);
    sent[0].answer([ok("A")]);
    expect(await first).toBe("A");
    await turn();
    expect(sent.map((call) => [call.kind, call.requests])).toEqual([["one", ["a"]], ["batch", ["b", "c", "d"]]]);
    sent[1].answer([ok("B"), { result: { case: "error", value: { code: Code.FailedPrecondition, message: "no credits", reason: "INSUFFICIENT_CREDITS", metadata: { available: "1", required: "5" } } as never } }, ok("D")]);
    const [b, c, d] = await Promise.all(rest);
    expect([b, d]).toEqual(["B", "D"]);
    expect(c).toBeInstanceOf(ConnectError);
    expect((c as ConnectError).code).toBe(Code.FailedPrecondition);
    expect(errorInfoOf(c)).toEqual({ reason: "INSUFFICIENT_CREDITS", domain: "burndown.dev", metadata: { available: "1", required: "5" } });
  });

  it("tells the server each call's timeout: an attempt's own, and for a batch the latest of its attempts' (none if one has none)", async () => {
    const { batcher, sent } = recordingBatcher(1);
    const first = batcher.send("a", live(), 1_000);
    await turn();
    const rest = [batcher.send("b", live(), 2_000), batcher.send("c", live(), 30_000), batcher.send("d", live(), 5_000)];
    await turn();
    sent[0].answer([ok("A")]);
    await first;
    await turn();
    const untimed = [batcher.send("e", live(), 1_000), batcher.send("f", live())];
    sent[1].answer([ok("B"), ok("C"), ok("D")]);
    await Promise.all(rest);
    await turn();
    expect(sent.map((call) => [call.kind, call.requests])).toEqual([["one", ["a"]], ["batch", ["b", "c", "d"]], ["batch", ["e", "f"]]]);
    expect(sent[0].timeoutMs).toBeGreaterThan(900);
    expect(sent[0].timeoutMs).toBeLessThanOrEqual(1_000);
    // The latest deadline, less the time spent waiting for the first call to come back.
    expect(sent[1].timeoutMs).toBeGreaterThan(29_000);
    expect(sent[1].timeoutMs).toBeLessThanOrEqual(30_000);
    expect(sent[2].timeoutMs).toBeUndefined();
    sent[2].answer([ok("E"), ok("F")]);
    expect(await Promise.all(untimed)).toEqual(["E", "F"]);
  });

  it("splits what waits into batches of at most batchSizeMax", async () => {
    const { batcher, sent } = recordingBatcher(2, 2);
    const calls = ["a", "b", "c", "d", "e"].map((request) => batcher.send(request, live()));
    await turn();
    expect(sent.map((call) => call.requests)).toEqual([["a", "b"], ["c", "d"]]);
    sent[0].answer([ok("A"), ok("B")]);
    await turn();
    await turn();
    expect(sent.map((call) => call.requests)).toEqual([["a", "b"], ["c", "d"], ["e"]]);
    sent[1].answer([ok("C"), ok("D")]);
    sent[2].answer([ok("E")]);
    expect(await Promise.all(calls)).toEqual(["A", "B", "C", "D", "E"]);
  });

  it("an attempt abandoned by its caller rejects at once and leaves its neighbours' batch running", async () => {
    const { batcher, sent } = recordingBatcher(1);
    const blocker = batcher.send("x", live());
    await turn();
    const quitter = new AbortController();
    const abandoned = batcher.send("a", quitter.signal).catch((error: unknown) => error);
    const kept = batcher.send("b", live());
    sent[0].answer([ok("X")]);
    await blocker;
    await turn();
    expect(sent[1].requests).toEqual(["a", "b"]);
    quitter.abort(new ConnectError("attempt timed out", Code.DeadlineExceeded));
    expect(await abandoned).toMatchObject({ code: Code.DeadlineExceeded });
    expect(sent[1].signal.aborted).toBe(false);
    sent[1].answer([ok("A"), ok("B")]);
    expect(await kept).toBe("B");
  });

  it("abandons the batch call once every attempt in it is abandoned, and drops a waiting attempt that is", async () => {
    const { batcher, sent } = recordingBatcher(1);
    const blocker = batcher.send("x", live());
    await turn();
    const callers = [new AbortController(), new AbortController(), new AbortController()];
    const attempts = callers.map((caller, i) => batcher.send(`r${i}`, caller.signal).catch((error: unknown) => error));
    callers[2].abort(new Error("gave up while waiting"));
    sent[0].answer([ok("X")]);
    await blocker;
    await turn();
    expect(sent[1].requests).toEqual(["r0", "r1"]);
    callers[0].abort(new Error("timeout"));
    expect(sent[1].signal.aborted).toBe(false);
    callers[1].abort(new Error("timeout"));
    expect(sent[1].signal.aborted).toBe(true);
    expect((await Promise.all(attempts)).map((error) => (error as Error).message)).toEqual(["timeout", "timeout", "gave up while waiting"]);
  });

  it("a failed batch call fails every attempt in it with that error (the call path retries each)", async () => {
    const { sent, attempts } = await twoInABatch((attempt) => attempt.catch((error: unknown) => error));
    sent[1].answer(new ConnectError("connection reset", Code.Unavailable));
    expect((await Promise.all(attempts)).map((error) => (error as ConnectError).code)).toEqual([Code.Unavailable, Code.Unavailable]);
  });

  it("a server without the batch RPC (Unimplemented) gets these attempts, and all later ones, as unary calls", async () => {
    const { batcher, sent, attempts } = await twoInABatch((attempt) => attempt);
    sent[1].answer(new ConnectError("unknown method", Code.Unimplemented));
    await turn();
    expect(sent.slice(2).map((call) => [call.kind, call.requests])).toEqual([["one", ["a"]], ["one", ["b"]]]);
    sent[2].answer([ok("A")]);
    sent[3].answer([ok("B")]);
    expect(await Promise.all(attempts)).toEqual(["A", "B"]);
    const more = [batcher.send("c", live()), batcher.send("d", live())];
    await turn();
    expect(sent.slice(4).every((call) => call.kind === "one")).toBe(true);
    sent.slice(4).forEach((call) => call.answer([ok(call.requests[0].toUpperCase())]));
    expect(await Promise.all(more)).toEqual(["C", "D"]);
  });

  it("a batch answered with the wrong number of results fails every attempt in it with Internal", async () => {
    const { sent, attempts } = await twoInABatch((attempt) => attempt.catch((error: unknown) => error));
    sent[1].answer([ok("A")]);
    expect((await Promise.all(attempts)).map((error) => (error as ConnectError).code)).toEqual([Code.Internal, Code.Internal]);
  });
});

describe("the client against a real server", () => {
  let f: LedgerFixture;
  let batched: BurndownClient;
  let unary: BurndownClient;

  beforeAll(async () => {
    f = await startLedgerFixture();
    batched = createBurndownClient({ baseUrl: f.t.server.grpcUrl, apiKey: f.serviceToken, batching: { batchesInFlightMax: 1 } });
    unary = createBurndownClient({ baseUrl: f.t.server.grpcUrl, apiKey: f.serviceToken, batching: { enabled: false } });
  });
  afterAll(async () => {
    await batched?.close();
    await unary?.close();
    await f?.close();
  });

  it("60 concurrent withCredits go out in batches, and each customer is charged exactly its own", async () => {
    const customers = await Promise.all(Array.from({ length: 60 }, (_, i) => f.customer(BigInt(100 + i))));
    const before = batched.operationStats();
    await Promise.all(customers.map((customerId, i) => batched.withCredits({ customerId, creditTypeId: f.creditTypeId, amount: BigInt(1 + (i % 10)) }, async (hold) => hold.setActual(BigInt(i % 10)))));
    const after = batched.operationStats();
    expect(after.reserve.items - before.reserve.items).toBe(60);
    expect(after.reserve.batches - before.reserve.batches).toBeGreaterThan(0);
    expect(after.reserve.calls - before.reserve.calls).toBeLessThan(60);
    expect(after.commit.calls - before.commit.calls).toBeLessThan(60);
    for (const [i, customerId] of customers.entries()) {
      expect(await f.balanceOf(customerId)).toMatchObject({ burned: BigInt(i % 10), held: 0n, available: BigInt(100 + i - (i % 10)) });
    }
  });

  it("an unaffordable hold in a batch throws the same typed error as a unary one, and its neighbours go through", async () => {
    const rich = await Promise.all(Array.from({ length: 20 }, () => f.customer(50n)));
    const poor = await f.customer(3n);
    const unaryError = await unary.reserve({ customerId: poor, cost: { case: "credits", value: { creditTypeId: f.creditTypeId, amount: 10n } } }).catch((error: unknown) => error);
    const outcomes = await Promise.allSettled([poor, ...rich].map((customerId) => batched.reserve({ customerId, cost: { case: "credits", value: { creditTypeId: f.creditTypeId, amount: 10n } } })));
    const [poorOutcome, ...richOutcomes] = outcomes;
    expect(richOutcomes.every((outcome) => outcome.status === "fulfilled")).toBe(true);
    expect(poorOutcome.status).toBe("rejected");
    const batchedError = (poorOutcome as PromiseRejectedResult).reason;
    expect(batchedError).toBeInstanceOf(InsufficientCreditsError);
    expect(unaryError).toBeInstanceOf(InsufficientCreditsError);
    expect([batchedError.code, batchedError.reason, batchedError.available, batchedError.required]).toEqual([
      (unaryError as InsufficientCreditsError).code,
      (unaryError as InsufficientCreditsError).reason,
      3n,
      10n,
    ]);
    expect(await f.balanceOf(poor)).toMatchObject({ held: 0n, available: 3n });
  });

  it("a request id sent through a batch and again unary applies once", async () => {
    const customerId = await f.customer(100n);
    const requestId = randomUUID();
    const request = { customerId, cost: { case: "credits" as const, value: { creditTypeId: f.creditTypeId, amount: 10n } }, requestId };
    const [first, second] = await Promise.all([batched.reserve(request), batched.reserve(request)]);
    const third = await unary.reserve(request);
    expect(new Set([first, second, third].map((res) => res.reservation?.reservationId)).size).toBe(1);
    expect(await f.balanceOf(customerId)).toMatchObject({ held: 10n, available: 90n });
  });
});
