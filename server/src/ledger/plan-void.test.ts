// planVoid, table-driven: a void takes only a lot's free credits, never burned or expired
// ones, and a second void never takes more than the lot had. A void of the whole lot
// leaves its held part pending: the lot is no longer drawn from, what its reservations
// give back is voided (not expired, not spendable), and what they commit still burns.
import { describe, expect, it } from "vitest";
import { availableOf, type BalanceState, isLive, isVoided, type LotState } from "./balance-state.js";
import { type Hold, planBurn, planCommit, planHold, planRefund, planRelease, planUpkeep, planVoid, type Planned } from "./plan.js";

const nowMs = 1_700_000_000_000;
const dayMs = 86_400_000;

function lot(remaining: bigint, options: Partial<LotState> = {}): LotState {
  return { grantId: "a", remaining, held: 0n, expired: 0n, priority: 0, effectiveAtMs: nowMs - dayMs, expiresAtMs: null, seq: 0n, ...options };
}

function stateOf(lotState: LotState, granted: bigint): BalanceState {
  return { granted, held: lotState.held, burned: granted - lotState.remaining, expired: 0n, debt: 0n, overdraftHeld: 0n, overdraftLimit: 0n, lots: [lotState] };
}

describe("planVoid", () => {
  it.each([
    { name: "all of an unused lot", lot: lot(100n), granted: 100n, amount: null, voided: 100n, held: 0n, remaining: 0n },
    { name: "part of a lot", lot: lot(100n), granted: 100n, amount: 30n, voided: 30n, held: 0n, remaining: 70n },
    { name: "the free part of a lot with holds now, the held part pending", lot: lot(100n, { held: 40n }), granted: 100n, amount: null, voided: 60n, held: 40n, remaining: 40n, pending: 40n },
    { name: "an amount of a lot with holds, nothing pending", lot: lot(100n, { held: 40n }), granted: 100n, amount: 60n, voided: 60n, held: 40n, remaining: 40n, pending: 0n },
    { name: "what is left after burns", lot: lot(25n), granted: 100n, amount: null, voided: 25n, held: 0n, remaining: 0n },
    { name: "a lot not yet effective", lot: lot(50n, { effectiveAtMs: nowMs + dayMs }), granted: 50n, amount: null, voided: 50n, held: 0n, remaining: 0n },
    { name: "nothing now of a lot all held, all of it pending", lot: lot(40n, { held: 40n }), granted: 100n, amount: null, voided: 0n, held: 40n, remaining: 40n, pending: 40n },
  ])("voids $name", ({ lot: lotState, granted, amount, voided, held, remaining, pending = 0n }) => {
    const planned = planVoid(stateOf(lotState, granted), "a", amount, nowMs);
    expect(planned).toMatchObject({ kind: "planned", voided, held, remaining, pending, lotVoided: amount === null });
    if (planned.kind !== "planned") return;
    expect(planned.entries).toEqual(voided === 0n ? [] : [{ kind: "void", amount: voided, grantId: "a" }]);
    expect(planned.state.granted).toBe(granted - voided);
    expect(planned.state.lots[0].voidedAtMs ?? null).toBe(amount === null ? nowMs : null);
  });

  it.each([
    { name: "nothing free or held", lot: lot(0n), amount: null, kind: "nothing_to_void", unused: 0n },
    { name: "nothing free, and an amount asked", lot: lot(40n, { held: 40n }), amount: 1n, kind: "nothing_to_void", unused: 0n },
    { name: "a lot voided already", lot: lot(40n, { held: 40n, voidedAtMs: nowMs - 1 }), amount: null, kind: "nothing_to_void", unused: 0n },
    { name: "past its expiry, with holds (its leftovers expire)", lot: lot(40n, { held: 40n, expiresAtMs: nowMs - 1 }), amount: null, kind: "nothing_to_void", unused: 0n },
    { name: "past its expiry (the free part expires first)", lot: lot(80n, { expiresAtMs: nowMs - 1 }), amount: null, kind: "nothing_to_void", unused: 0n },
    { name: "more than is free", lot: lot(100n, { held: 30n }), amount: 71n, kind: "exceeds_unused", unused: 70n },
  ])("refuses $name", ({ lot: lotState, amount, kind, unused }) => {
    expect(planVoid(stateOf(lotState, 100n), "a", amount, nowMs)).toMatchObject({ kind, unused });
  });

  it("takes nothing the second time: the first void left nothing free", () => {
    const first = planVoid(stateOf(lot(100n, { held: 10n }), 100n), "a", null, nowMs);
    if (first.kind !== "planned") throw new Error("the first void is planned");
    expect(planVoid(first.state, "a", null, nowMs)).toMatchObject({ kind: "nothing_to_void", unused: 0n, held: 10n });
  });
});

/**
 * voidedWithHold is a balance of lot a (100 left, 40 of it held by hold, burnedFromA burned
 * from it before) and lot b (50, after a in burn order), a voided whole at nowMs.
 */
function voidedWithHold(burnedFromA = 0n): { state: BalanceState; hold: Hold } {
  const a = lot(100n, { held: 40n });
  const b = lot(50n, { grantId: "b", seq: 1n });
  const state: BalanceState = { granted: 150n + burnedFromA, held: 40n, burned: burnedFromA, expired: 0n, debt: 0n, overdraftHeld: 0n, overdraftLimit: 0n, lots: [a, b] };
  const voided = planVoid(state, "a", null, nowMs);
  if (voided.kind !== "planned") throw new Error("the void is planned");
  return { state: voided.state, hold: { grantId: "a", amount: 40n } };
}

const later = nowMs + 1000;
const kindsOf = (planned: Planned) => planned.entries.map((entry) => [entry.kind, entry.grantId, entry.amount, entry.leftover === true]);
const lotA = (state: BalanceState) => state.lots.find((candidate) => candidate.grantId === "a");

describe("a lot voided whole, its held part pending", () => {
  it.each([
    {
      name: "a release voids what it gives back: available does not move",
      plan: (state: BalanceState, hold: Hold) => planRelease(state, [hold], later),
      entries: [["release", "a", 40n, false], ["void", "a", 40n, true]],
      totals: { granted: 50n, burned: 0n, held: 0n, expired: 0n },
      available: 50n,
    },
    {
      name: "a commit of part burns it from the lot and voids the rest",
      plan: (state: BalanceState, hold: Hold) => planCommit(state, [hold], 15n, later),
      entries: [["release", "a", 40n, false], ["burn", "a", 15n, false], ["void", "a", 25n, true]],
      totals: { granted: 65n, burned: 15n, held: 0n, expired: 0n },
      available: 50n,
    },
    {
      name: "a commit of all of it burns it all and voids nothing",
      plan: (state: BalanceState, hold: Hold) => planCommit(state, [hold], 40n, later),
      entries: [["release", "a", 40n, false], ["burn", "a", 40n, false]],
      totals: { granted: 90n, burned: 40n, held: 0n, expired: 0n },
      available: 50n,
    },
    {
      name: "a commit of more burns the excess from live lots, never from the voided one",
      plan: (state: BalanceState, hold: Hold) => planCommit(state, [hold], 45n, later),
      entries: [["release", "a", 40n, false], ["burn", "a", 40n, false], ["burn", "b", 5n, false]],
      totals: { granted: 90n, burned: 45n, held: 0n, expired: 0n },
      available: 45n,
    },
    {
      name: "a release after the lot's expiry voids what comes back, and expires none of it",
      plan: (state: BalanceState, hold: Hold) => planRelease({ ...state, lots: state.lots.map((l) => (l.grantId === "a" ? { ...l, expiresAtMs: nowMs + 10 } : l)) }, [hold], later),
      entries: [["release", "a", 40n, false], ["void", "a", 40n, true]],
      totals: { granted: 50n, burned: 0n, held: 0n, expired: 0n },
      available: 50n,
    },
    {
      name: "a refund of an earlier burn from the lot is voided as it comes back",
      burnedFromA: 10n,
      plan: (state: BalanceState) => planRefund(state, [{ grantId: "a", amount: 10n }], later),
      entries: [["refund", "a", 10n, false], ["void", "a", 10n, true]],
      totals: { granted: 90n, burned: 0n, held: 40n, expired: 0n },
      available: 50n,
    },
  ])("$name", ({ burnedFromA, plan, entries, totals, available }) => {
    const { state, hold } = voidedWithHold(burnedFromA);
    expect(availableOf(state, later)).toBe(50n);
    const planned = plan(state, hold);
    if (planned.kind !== "planned") throw new Error("the change is planned");
    expect(kindsOf(planned)).toEqual(entries);
    expect(planned.state).toMatchObject(totals);
    expect(availableOf(planned.state, later)).toBe(available);
    const a = lotA(planned.state);
    expect(a && a.remaining === a.held).toBe(true);
  });

  it.each([
    { name: "a burn that fits takes the live lot only", plan: (state: BalanceState) => planBurn(state, 50n, later), entries: [["burn", "b", 50n, false]] },
    { name: "a burn that would need the voided lot is refused", plan: (state: BalanceState) => planBurn(state, 51n, later), insufficient: { available: 50n, required: 51n } },
    { name: "a hold takes the live lot only", plan: (state: BalanceState) => planHold(state, 20n, later), entries: [["hold", "b", 20n, false]] },
    { name: "upkeep finds nothing to do", plan: (state: BalanceState) => planUpkeep(state, later), entries: [] },
  ])("takes nothing new from the lot, even after its reservation gave credits back: $name", ({ plan, entries, insufficient }) => {
    const { state, hold } = voidedWithHold();
    const released = planRelease(state, [hold], later);
    const planned = plan(released.state);
    if (insufficient) return void expect(planned).toMatchObject({ kind: "insufficient", ...insufficient });
    if (planned.kind !== "planned") throw new Error("the change is planned");
    expect(kindsOf(planned)).toEqual(entries);
  });

  it("counts the lot voided from its void time on, so that a balance rebuilt as of before then sees it live", () => {
    const a = lot(10n, { voidedAtMs: nowMs });
    expect([isLive(a, nowMs - 1), isVoided(a, nowMs - 1)]).toEqual([true, false]);
    expect([isLive(a, nowMs), isVoided(a, nowMs)]).toEqual([false, true]);
  });
});
