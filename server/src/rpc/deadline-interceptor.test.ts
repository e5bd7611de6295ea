// The caller's timeout header becomes the call's deadline (what is left of it is what the
// database waits may use); malformed or absent headers leave the server's own bounds.
import { describe, expect, it } from "vitest";
import { answerBudgetMs, remainingMs, withDeadline } from "../deadline.js";
import { timeoutMsOf } from "./deadline-interceptor.js";

describe("timeoutMsOf", () => {
  it.each<[Record<string, string>, number]>([
    [{ "grpc-timeout": "1500m" }, 1_500],
    [{ "grpc-timeout": "2S" }, 2_000],
    [{ "grpc-timeout": "1M" }, 60_000],
    [{ "grpc-timeout": "1H" }, 3_600_000],
    [{ "grpc-timeout": "250000u" }, 250],
    [{ "grpc-timeout": "5000000n" }, 5],
    [{ "connect-timeout-ms": "800" }, 800],
    [{ "connect-timeout-ms": "0" }, 0],
  ])("reads %o as %d ms", (headers, expected) => {
    expect(timeoutMsOf(new Headers(headers))).toBe(expected);
  });

  it.each<Record<string, string>>([{}, { "grpc-timeout": "15" }, { "grpc-timeout": "123456789S" }, { "grpc-timeout": "-1S" }, { "connect-timeout-ms": "1.5" }, { "connect-timeout-ms": "12345678901" }, { "connect-timeout-ms": "" }])(
    "finds no timeout in %o",
    (headers) => {
      expect(timeoutMsOf(new Headers(headers))).toBeUndefined();
    },
  );
});

describe("deadlines", () => {
  it("keep back a tenth of the timeout, at most 250 ms, to carry the answer", () => {
    expect(answerBudgetMs(100)).toBe(90);
    expect(answerBudgetMs(1_500)).toBe(1_350);
    expect(answerBudgetMs(5_000)).toBe(4_750);
    expect(answerBudgetMs(0)).toBe(0);
  });

  it("are seen by the call's async work, and only there", async () => {
    expect(remainingMs()).toBeUndefined();
    const seen = await withDeadline(Date.now() + 1_000, async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return remainingMs();
    });
    expect(seen).toBeGreaterThan(0);
    expect(seen).toBeLessThanOrEqual(1_000);
    expect(remainingMs()).toBeUndefined();
  });
});
