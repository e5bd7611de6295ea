// planVoid, table-driven: a void takes only a lot's free credits, never held, burned or
// expired ones, and a second void never takes more than the lot had.
import { describe, expect, it } from "vitest";
import type { BalanceState, LotState } from "./balance-state.js";
import { planVoid } from "./plan.js";

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
    { name: "only the free part of a lot with holds", lot: lot(100n, { held: 40n }), granted: 100n, amount: null, voided: 60n, held: 40n, remaining: 40n },
    { name: "what is left after burns", lot: lot(25n), granted: 100n, amount: null, voided: 25n, held: 0n, remaining: 0n },
    { name: "a lot not yet effective", lot: lot(50n, { effectiveAtMs: nowMs + dayMs }), granted: 50n, amount: null, voided: 50n, held: 0n, remaining: 0n },
  ])("voids $name", ({ lot: lotState, granted, amount, voided, held, remaining }) => {
    const planned = planVoid(stateOf(lotState, granted), "a", amount, nowMs);
    expect(planned).toMatchObject({ kind: "planned", voided, held, remaining });
    if (planned.kind !== "planned") return;
    expect(planned.entries).toEqual([{ kind: "void", amount: voided, grantId: "a" }]);
    expect(planned.state.granted).toBe(granted - voided);
  });

  it.each([
    { name: "nothing free: all held", lot: lot(40n, { held: 40n }), amount: null, kind: "nothing_to_void", unused: 0n },
    { name: "nothing left", lot: lot(0n), amount: null, kind: "nothing_to_void", unused: 0n },
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
