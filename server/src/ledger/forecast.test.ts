// Table-driven tests of the balance forecast: each case a balance, a burn rate, and when
// it runs out and what expires unused, worked out by hand. Pure: no clock, no database.
import { describe, expect, it } from "vitest";
import type { BalanceState, LotState } from "./balance-state.js";
import { forecastBalance } from "./forecast.js";

const nowMs = 1_700_000_000_000;
const dayMs = 86_400_000;
const horizonMs = 366 * dayMs;

/** lot builds a lot live at nowMs, never expiring, unless the options say otherwise. */
function lot(grantId: string, remaining: bigint, options: Partial<Omit<LotState, "grantId" | "remaining">> = {}): LotState {
  return { grantId, remaining, held: 0n, expired: 0n, priority: 0, effectiveAtMs: nowMs - dayMs, expiresAtMs: null, seq: BigInt(grantId.charCodeAt(0)), ...options };
}

/** stateOf builds a consistent state: lots granted whole, debt burned on overdraft, heldOnOverdraft held with no lot. */
function stateOf(lots: LotState[], options: { debt?: bigint; heldOnOverdraft?: bigint } = {}): BalanceState {
  const debt = options.debt ?? 0n;
  const heldOnOverdraft = options.heldOnOverdraft ?? 0n;
  return {
    granted: lots.reduce((sum, each) => sum + each.remaining, 0n),
    held: lots.reduce((sum, each) => sum + each.held, 0n) + heldOnOverdraft,
    burned: debt,
    expired: 0n,
    debt,
    overdraftHeld: heldOnOverdraft,
    overdraftLimit: 1_000n,
    lots,
  };
}

const cases: { name: string; state: BalanceState; dailyBurn: bigint; emptyAfterMs: number | null; expiringUnused: bigint }[] = [
  {
    name: "nothing burns: no empty time, and every lot with an expiry expires whole",
    state: stateOf([lot("a", 100n, { expiresAtMs: nowMs + 10 * dayMs }), lot("b", 50n)]),
    dailyBurn: 0n,
    emptyAfterMs: null,
    expiringUnused: 100n,
  },
  {
    name: "a steady burn empties one lot at the exact fraction of a day (25 at 10 a day: 2.5 days)",
    state: stateOf([lot("a", 25n)]),
    dailyBurn: 10n,
    emptyAfterMs: 2.5 * dayMs,
    expiringUnused: 0n,
  },
  {
    name: "a lot that expires before it is spent loses what is left (5 of 20 after 1.5 days), and the next lot carries on",
    state: stateOf([lot("a", 20n, { expiresAtMs: nowMs + 1.5 * dayMs }), lot("b", 30n)]),
    dailyBurn: 10n,
    emptyAfterMs: 4.5 * dayMs,
    expiringUnused: 5n,
  },
  {
    name: "a lot that expires after it would be spent goes first (earliest expiry) and loses nothing",
    state: stateOf([lot("b", 10n), lot("a", 20n, { expiresAtMs: nowMs + 5 * dayMs })]),
    dailyBurn: 10n,
    emptyAfterMs: 3 * dayMs,
    expiringUnused: 0n,
  },
  {
    name: "priority comes before expiry: the priority-0 lot is spent while the priority-1 lot expires unused",
    state: stateOf([lot("a", 100n, { priority: 1, expiresAtMs: nowMs + dayMs }), lot("b", 10n)]),
    dailyBurn: 10n,
    emptyAfterMs: dayMs,
    expiringUnused: 100n,
  },
  {
    name: "credits held on the overdraft are owed first: 25 free less 5 owed lasts 2 days",
    state: stateOf([lot("a", 25n)], { heldOnOverdraft: 5n }),
    dailyBurn: 10n,
    emptyAfterMs: 2 * dayMs,
    expiringUnused: 0n,
  },
  {
    name: "a balance in debt is empty now",
    state: stateOf([], { debt: 5n }),
    dailyBurn: 3n,
    emptyAfterMs: 0,
    expiringUnused: 0n,
  },
  {
    name: "empty is the first time available reaches zero, even if a later lot refills it; that lot first repays what was burned meanwhile",
    // a: 10 lasts 1 day. b (effective at day 3) repays the 20 burned on overdraft since, then
    // spends 20 more until it expires at day 5 with 60 left.
    state: stateOf([lot("a", 10n), lot("b", 100n, { effectiveAtMs: nowMs + 3 * dayMs, expiresAtMs: nowMs + 5 * dayMs })]),
    dailyBurn: 10n,
    emptyAfterMs: dayMs,
    expiringUnused: 60n,
  },
  {
    name: "a credit started before its lot expires counts as spent (1 ms of 1 a day, then 9 of 10 expire)",
    state: stateOf([lot("a", 10n, { expiresAtMs: nowMs + 1 }), lot("b", 1n)]),
    dailyBurn: 1n,
    emptyAfterMs: dayMs + 1,
    expiringUnused: 9n,
  },
  {
    name: "an empty time rounds up to the millisecond (1 credit at 7 a day: 12,342,857.14 ms)",
    state: stateOf([lot("a", 1n)]),
    dailyBurn: 7n,
    emptyAfterMs: 12_342_858,
    expiringUnused: 0n,
  },
  {
    name: "held credits are not spent: 30 with 10 held lasts 2 days at 10 a day",
    state: stateOf([lot("a", 30n, { held: 10n })]),
    dailyBurn: 10n,
    emptyAfterMs: 2 * dayMs,
    expiringUnused: 0n,
  },
  {
    name: "exactly 366 days is forecast",
    state: stateOf([lot("a", 366n)]),
    dailyBurn: 1n,
    emptyAfterMs: 366 * dayMs,
    expiringUnused: 0n,
  },
  {
    name: "beyond 366 days is not forecast, though what expires meanwhile still counts",
    state: stateOf([lot("a", 367n), lot("b", 1_000n, { priority: 1, expiresAtMs: nowMs + 400 * dayMs })]),
    dailyBurn: 1n,
    emptyAfterMs: null,
    expiringUnused: 967n,
  },
  {
    name: "int64 amounts stay exact",
    state: stateOf([lot("a", 9_223_372_036_854_775_807n)]),
    dailyBurn: 9_223_372_036_854_775_807n,
    emptyAfterMs: dayMs,
    expiringUnused: 0n,
  },
];

describe("forecastBalance", () => {
  it.each(cases)("$name", ({ state, dailyBurn, emptyAfterMs, expiringUnused }) => {
    const forecast = forecastBalance(state, { dailyBurn, nowMs, horizonMs });
    expect(forecast).toEqual({ emptyAtMs: emptyAfterMs === null ? null : BigInt(nowMs + emptyAfterMs), expiringUnused });
  });

  it("leaves the state it was given as it was", () => {
    const state = stateOf([lot("a", 20n, { expiresAtMs: nowMs + dayMs })]);
    const before = structuredClone(state);
    forecastBalance(state, { dailyBurn: 5n, nowMs, horizonMs });
    expect(state).toEqual(before);
  });
});
