import { describe, expect, it } from "vitest";
import { periodStartMs, planMemberReturn, planMemberSpend, usedNow } from "./pool-limit.js";

const at = (iso: string) => Date.parse(iso);

describe("pool member limits", () => {
  it("a month starts on its first day at 00:00 UTC, a day at 00:00 UTC", () => {
    expect(periodStartMs("month", at("2026-12-06T12:39:10Z"))).toBe(at("2026-12-01T00:00:00Z"));
    expect(periodStartMs("day", at("2026-12-06T12:39:10Z"))).toBe(at("2026-12-06T00:00:00Z"));
    expect(periodStartMs("month", at("2026-12-31T23:59:59.999Z"))).toBe(at("2026-12-01T00:00:00Z"));
  });

  it("a counter of an earlier period counts as zero", () => {
    const usage = { periodStartMs: at("2026-11-01T00:00:00Z"), used: 90n };
    expect(usedNow(usage, { amount: 100n, period: "month" }, at("2026-12-06T00:00:00Z")).used).toBe(0n);
    expect(usedNow({ ...usage, periodStartMs: at("2026-12-01T00:00:00Z") }, null, at("2026-12-06T00:00:00Z")).used).toBe(90n);
  });

  it("a spend up to the limit is accepted, one past it refused with what was used", () => {
    const now = at("2026-12-06T10:00:00Z");
    const usage = { periodStartMs: at("2026-12-06T00:00:00Z"), used: 60n };
    const limit = { amount: 100n, period: "day" as const };
    expect(planMemberSpend(usage, limit, 40n, now, { enforce: true })).toMatchObject({ kind: "spent", usage: { used: 100n }, overLimit: false });
    expect(planMemberSpend(usage, limit, 41n, now, { enforce: true })).toEqual({ kind: "limit_exceeded", limit: 100n, used: 60n, required: 41n });
  });

  it("usage past the limit is counted and flagged, not refused", () => {
    const now = at("2026-12-06T10:00:00Z");
    expect(planMemberSpend(null, { amount: 10n, period: "month" }, 25n, now, { enforce: false })).toMatchObject({ kind: "spent", usage: { used: 25n }, overLimit: true });
  });

  it("without a limit every spend is accepted and counted by calendar month", () => {
    const now = at("2026-12-06T10:00:00Z");
    expect(planMemberSpend(null, null, 1_000_000n, now, { enforce: true })).toEqual({
      kind: "spent",
      usage: { periodStartMs: at("2026-12-01T00:00:00Z"), used: 1_000_000n },
      overLimit: false,
    });
  });

  it("a return never takes the current period below zero", () => {
    const now = at("2026-12-06T10:00:00Z");
    expect(planMemberReturn({ periodStartMs: at("2026-11-01T00:00:00Z"), used: 50n }, null, 30n, now).used).toBe(0n);
    expect(planMemberReturn({ periodStartMs: at("2026-12-01T00:00:00Z"), used: 50n }, null, 30n, now).used).toBe(20n);
  });
});
