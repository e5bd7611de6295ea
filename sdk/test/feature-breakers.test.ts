// Breakers open per feature, only on "unreachable" failures, and close after a trial.
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BreakerOpenError, FeatureBreakers, isUnreachable } from "../src/feature-breakers.js";

const options = { errorPercentThreshold: 50, volumeThreshold: 4, resetTimeoutMs: 1_000, rollingWindowMs: 10_000 };
const fail = (code: Code) => () => Promise.reject(new ConnectError("x", code));

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe("isUnreachable", () => {
  it.each([
    [Code.Unavailable, true],
    [Code.DeadlineExceeded, true],
    [Code.FailedPrecondition, false],
    [Code.InvalidArgument, false],
    [Code.ResourceExhausted, false],
    [Code.PermissionDenied, false],
    [Code.Internal, false],
  ])("%s counts as unreachable: %s", (code, expected) => {
    expect(isUnreachable(new ConnectError("x", code))).toBe(expected);
  });
});

describe("FeatureBreakers", () => {
  it("refusals never open a breaker, however many", async () => {
    const breakers = new FeatureBreakers(options);
    for (let i = 0; i < 20; i++) await expect(breakers.run("f", fail(Code.FailedPrecondition))).rejects.toBeInstanceOf(ConnectError);
    expect(breakers.isOpen("f")).toBe(false);
    breakers.shutdown();
  });

  it("unreachable failures open the feature's breaker, which then fails fast without calling, and leaves other features alone", async () => {
    const breakers = new FeatureBreakers(options, () => 42);
    for (let i = 0; i < 4; i++) await expect(breakers.run("f", fail(Code.Unavailable))).rejects.toBeInstanceOf(ConnectError);
    expect(breakers.isOpen("f")).toBe(true);
    expect(breakers.outageStartMs("f")).toBe(42);
    const call = vi.fn(() => Promise.resolve("called"));
    await expect(breakers.run("f", call)).rejects.toBeInstanceOf(BreakerOpenError);
    expect(call).not.toHaveBeenCalled();
    await expect(breakers.run("g", call)).resolves.toBe("called");
    breakers.shutdown();
  });

  it("after the reset timeout one trial call goes through, and its success closes the breaker", async () => {
    const breakers = new FeatureBreakers(options);
    const closed: string[] = [];
    breakers.onClose((feature) => closed.push(feature));
    for (let i = 0; i < 4; i++) await expect(breakers.run("f", fail(Code.DeadlineExceeded))).rejects.toBeInstanceOf(ConnectError);
    expect(breakers.isOpen("f")).toBe(true);
    vi.advanceTimersByTime(options.resetTimeoutMs);
    await expect(breakers.run("f", () => Promise.resolve("ok"))).resolves.toBe("ok");
    expect(breakers.isOpen("f")).toBe(false);
    expect(breakers.outageStartMs("f")).toBeNull();
    expect(closed).toEqual(["f"]);
    breakers.shutdown();
  });
});
