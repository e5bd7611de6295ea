// Table tests of planRollover: what of a period's lot rolls into the next period's lot,
// what expires, and that credits are conserved whichever change reached the lot first.
import { describe, expect, it } from "vitest";
import { availableOf, type BalanceState, type LotState } from "./balance-state.js";
import { planRollover, planUpkeep } from "./plan.js";

const nowMs = 1_700_000_000_000;
const dayMs = 86_400_000;
const periodEndMs = nowMs - dayMs;

/** periodLot is period 1's lot of 100, ended a day ago, with what was burned and held from it. */
function stateWith(burned: bigint, held = 0n): BalanceState {
  const lot: LotState = { grantId: "p1", remaining: 100n - burned, held, expired: 0n, priority: 0, effectiveAtMs: periodEndMs - 30 * dayMs, expiresAtMs: periodEndMs, seq: 1n };
  return { granted: 100n, held, burned, expired: 0n, debt: 0n, overdraftHeld: 0n, overdraftLimit: 0n, lots: [lot] };
}

const toLot = { grantId: "r2", priority: 0, effectiveAtMs: periodEndMs, expiresAtMs: periodEndMs + 30 * dayMs, seq: 2n };

describe("planRollover", () => {
  it.each([
    ["rolls the unused part up to the cap, and the rest expires", 50n, 0n, 30n, 30n, 20n],
    ["rolls all that is left when it is under the cap", 90n, 0n, 30n, 10n, 0n],
    ["never rolls a held credit: it stays held on the old lot", 50n, 40n, 30n, 10n, 0n],
    ["rolls nothing when nothing is left", 100n, 0n, 30n, 0n, 0n],
  ])("%s", (_name, burned, held, cap, rolled, expired) => {
    const planned = planRollover(stateWith(burned, held), { fromGrantId: "p1", cap, toLot }, nowMs);
    expect(planned.rolled).toBe(rolled);
    const kinds = planned.entries.map((entry) => [entry.kind, entry.grantId, entry.amount]);
    if (rolled > 0n) expect(kinds).toContainEqual(["rollover_out", "p1", rolled]);
    if (rolled > 0n) expect(kinds).toContainEqual(["rollover_in", "r2", rolled]);
    expect(planned.state.expired).toBe(expired);
    expect(planned.state.granted).toBe(100n);
    expect(availableOf(planned.state, nowMs)).toBe(rolled);
  });

  it("takes the rolled part back from the expiry when another change expired the lot first", () => {
    const expiredFirst = planUpkeep(stateWith(10n), nowMs).state;
    expect(expiredFirst.expired).toBe(90n);
    const planned = planRollover(expiredFirst, { fromGrantId: "p1", cap: 25n, toLot }, nowMs);
    expect(planned.entries.map((entry) => [entry.kind, entry.amount, entry.effectiveAtMs])).toEqual([
      ["unexpire", 25n, periodEndMs],
      ["rollover_out", 25n, periodEndMs],
      ["rollover_in", 25n, periodEndMs],
    ]);
    expect([planned.state.expired, availableOf(planned.state, nowMs)]).toEqual([65n, 25n]);
  });
});
