// The retry policy as tables: what is retried for which kind of call, how long the
// waits are, and how transport faults are told apart from the server's answers.
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema, errorDomain } from "../src/error-info.js";
import { attemptFailureOf, backoffDelayMs, type CallKind, retryOptionsOf, shouldRetry } from "../src/retry-policy.js";

describe("shouldRetry", () => {
  const cases: [string, Code, CallKind, boolean][] = [
    ["UNAVAILABLE is retried for a mutation", Code.Unavailable, "mutation", true],
    ["UNAVAILABLE is retried for a read", Code.Unavailable, "read", true],
    ["ABORTED is retried for a mutation, whose request id makes it safe", Code.Aborted, "mutation", true],
    ["ABORTED is not retried for a read, which carries no request id", Code.Aborted, "read", false],
    ["DEADLINE_EXCEEDED (outcome unknown) is retried for a mutation, with the same request id", Code.DeadlineExceeded, "mutation", true],
    ["DEADLINE_EXCEEDED is retried for a read, which is safe to repeat", Code.DeadlineExceeded, "read", true],
    ["FAILED_PRECONDITION is the server's answer and surfaces at once", Code.FailedPrecondition, "mutation", false],
    ["INVALID_ARGUMENT surfaces at once", Code.InvalidArgument, "mutation", false],
    ["NOT_FOUND surfaces at once", Code.NotFound, "read", false],
    ["PERMISSION_DENIED surfaces at once", Code.PermissionDenied, "mutation", false],
    ["RESOURCE_EXHAUSTED surfaces at once", Code.ResourceExhausted, "mutation", false],
    ["INTERNAL surfaces at once", Code.Internal, "mutation", false],
    ["CANCELED (the caller's own cancel) surfaces at once", Code.Canceled, "read", false],
  ];
  it.each(cases)("%s", (_name, code, kind, expected) => {
    expect(shouldRetry(code, kind)).toBe(expected);
  });
});

describe("backoffDelayMs", () => {
  const retry = { attemptsMax: 10, backoffMsInitial: 100, backoffMsMax: 1_000, deadlineMs: 10_000 };
  const cases: [string, number, number, number][] = [
    ["the first wait is at most the initial backoff", 1, 0.999, 99],
    ["each later cap doubles", 2, 0.999, 199],
    ["the third cap is four times the initial", 3, 0.5, 200],
    ["the cap never passes backoffMsMax", 5, 0.999, 999],
    ["the cap stays at backoffMsMax far out, without overflow", 1_000, 0.5, 500],
    ["full jitter may wait nothing at all", 4, 0, 0],
  ];
  it.each(cases)("%s", (_name, failedAttempts, draw, expectedMs) => {
    expect(backoffDelayMs(failedAttempts, retry, () => draw)).toBe(expectedMs);
  });

  it("a random source outside [0, 1) is a programmer error", () => {
    expect(() => backoffDelayMs(1, retry, () => 1)).toThrow(RangeError);
  });
});

describe("retryOptionsOf", () => {
  const base = { attemptsMax: 4, backoffMsInitial: 50, backoffMsMax: 2_000, deadlineMs: 15_000 };
  it("overrides win over the base", () => {
    expect(retryOptionsOf({ attemptsMax: 2 }, base, 20, 600_000)).toEqual({ ...base, attemptsMax: 2 });
  });
  it.each([
    ["zero attempts", { attemptsMax: 0 }],
    ["attempts past the limit", { attemptsMax: 21 }],
    ["an initial backoff above the maximum", { backoffMsInitial: 5_000 }],
    ["no deadline", { deadlineMs: 0 }],
  ])("refuses %s", (_name, overrides) => {
    expect(() => retryOptionsOf(overrides, base, 20, 600_000)).toThrow(RangeError);
  });
});

describe("attemptFailureOf", () => {
  const live = new AbortController().signal;
  const answered = (code: Code) =>
    new ConnectError("refused", code, undefined, [{ desc: ErrorInfoSchema, value: { reason: "SOMETHING", domain: errorDomain, metadata: {} } }]);

  it("a server answer with an ErrorInfo keeps its code, whatever it is", () => {
    expect(attemptFailureOf(answered(Code.Aborted), live).code).toBe(Code.Aborted);
    expect(attemptFailureOf(answered(Code.Internal), live).code).toBe(Code.Internal);
  });
  it.each([
    ["a reset connection (connect-node says Aborted)", Code.Aborted],
    ["a destroyed HTTP/2 session (Canceled)", Code.Canceled],
    ["a broken pipe (Internal)", Code.Internal],
  ])("%s without an ErrorInfo is a transport fault: Unavailable", (_name, code) => {
    const failure = attemptFailureOf(new ConnectError("socket trouble", code), live);
    expect(failure.code).toBe(Code.Unavailable);
    expect(failure.cause).toBeInstanceOf(ConnectError);
  });
  it("codes that mean something without an ErrorInfo are kept", () => {
    expect(attemptFailureOf(new ConnectError("too big", Code.ResourceExhausted), live).code).toBe(Code.ResourceExhausted);
  });
  it("the attempt's own abort reason wins: its timeout is DeadlineExceeded, not a transport fault", () => {
    const controller = new AbortController();
    controller.abort(new ConnectError("timed out", Code.DeadlineExceeded));
    expect(attemptFailureOf(new ConnectError("stream closed", Code.Canceled), controller.signal).code).toBe(Code.DeadlineExceeded);
  });
});
