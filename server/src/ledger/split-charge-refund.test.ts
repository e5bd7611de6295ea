// splitChargeRefund, table-driven: a refund goes back last burned first, each part to the
// lot it came from while that lot is live, as a new lot once it has expired, and an
// overdraft part off the debt, the rest of it (debt repaid since) as a new lot.
import { describe, expect, it } from "vitest";
import type { BalanceState, LotState } from "./balance-state.js";
import { refundableOf, splitChargeRefund } from "./split-charge-refund.js";

const nowMs = 1_700_000_000_000;
const dayMs = 86_400_000;

function lot(grantId: string, options: Partial<LotState> = {}): LotState {
  return { grantId, remaining: 0n, held: 0n, expired: 0n, priority: 0, effectiveAtMs: nowMs - dayMs, expiresAtMs: null, seq: 0n, ...options };
}

const state = (debt: bigint, lots: LotState[]): BalanceState => ({ granted: 0n, held: 0n, burned: 0n, expired: 0n, debt, overdraftHeld: 0n, overdraftLimit: 0n, lots });
const live = [lot("a"), lot("b"), lot("old", { expiresAtMs: nowMs - 1 }), lot("voided", { voidedAtMs: nowMs - 1 })];

describe("splitChargeRefund", () => {
  it.each([
    {
      name: "part of a burn goes back to the lot burned last",
      burns: [{ grantId: "a", amount: 30n }, { grantId: "b", amount: 20n }], refunded: {}, amount: 10n, debt: 0n,
      refunds: [{ grantId: "b", amount: 10n }], newLots: [],
    },
    {
      name: "the rest skips what earlier refunds gave back",
      burns: [{ grantId: "a", amount: 30n }, { grantId: "b", amount: 20n }], refunded: { b: 20n }, amount: 25n, debt: 0n,
      refunds: [{ grantId: "a", amount: 25n }], newLots: [],
    },
    {
      name: "a part of an expired lot comes back as a new lot",
      burns: [{ grantId: "old", amount: 40n }], refunded: {}, amount: 40n, debt: 0n,
      refunds: [], newLots: [{ fromGrantId: "old", amount: 40n }],
    },
    {
      name: "a part of a lot voided whole since comes back as a new lot, not to the lot that would void it",
      burns: [{ grantId: "a", amount: 5n }, { grantId: "voided", amount: 15n }], refunded: {}, amount: 20n, debt: 0n,
      refunds: [{ grantId: "a", amount: 5n }], newLots: [{ fromGrantId: "voided", amount: 15n }],
    },
    {
      name: "an overdraft part comes off the debt, and what later lots repaid as a new lot",
      burns: [{ grantId: "a", amount: 10n }, { grantId: null, amount: 50n }], refunded: {}, amount: 55n, debt: 30n,
      refunds: [{ grantId: null, amount: 30n }, { grantId: "a", amount: 5n }], newLots: [{ fromGrantId: null, amount: 20n }],
    },
  ])("$name", ({ burns, refunded, amount, debt, refunds, newLots }) => {
    const refundedFrom = new Map<string | null, bigint>(Object.entries(refunded).map(([grantId, value]) => [grantId, value]));
    expect(splitChargeRefund(burns, refundedFrom, amount, state(debt, live), nowMs)).toEqual({ refunds, newLots });
  });

  it("counts what is refundable as burned less refunded, and refuses, as a programmer error, more than that", () => {
    const burns = [{ grantId: "a", amount: 30n }];
    expect(refundableOf(burns, new Map([["a", 10n]]))).toBe(20n);
    expect(() => splitChargeRefund(burns, new Map([["a", 10n]]), 21n, state(0n, live), nowMs)).toThrow(/at most what is refundable/);
  });
});
