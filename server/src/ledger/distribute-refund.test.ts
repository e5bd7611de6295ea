import { describe, expect, it } from "vitest";
import type { BalanceState } from "./balance-state.js";
import { distributeRefund } from "./distribute-refund.js";

const state = (debt: bigint): BalanceState => ({ granted: 0n, held: 0n, burned: 0n, expired: 0n, debt, overdraftHeld: 0n, overdraftLimit: 0n, lots: [] });

describe("distributeRefund", () => {
  it.each([
    {
      name: "a lot-backed burn goes back to its lot",
      burns: [{ grantId: "a", amount: 30n }],
      debt: 0n, settles: [], room: { a: 30n },
      refunds: [{ grantId: "a", amount: 30n }],
    },
    {
      name: "an overdraft burn comes off the debt while there is debt",
      burns: [{ grantId: null, amount: 20n }],
      debt: 50n, settles: [], room: {},
      refunds: [{ grantId: null, amount: 20n }],
    },
    {
      name: "overdraft already repaid goes back to the settling lots, the last to settle first",
      burns: [{ grantId: null, amount: 40n }],
      debt: 10n, settles: [{ grantId: "late", unreturned: 20n }, { grantId: "early", unreturned: 20n }], room: { late: 100n, early: 100n },
      refunds: [{ grantId: null, amount: 10n }, { grantId: "late", amount: 20n }, { grantId: "early", amount: 10n }],
    },
    {
      name: "a settling lot never takes back more than it has room for",
      burns: [{ grantId: null, amount: 30n }],
      debt: 0n, settles: [{ grantId: "full", unreturned: 30n }, { grantId: "other", unreturned: 30n }], room: { full: 5n, other: 100n },
      refunds: [{ grantId: "full", amount: 5n }, { grantId: "other", amount: 25n }],
    },
  ])("$name", ({ burns, debt, settles, room, refunds }) => {
    expect(distributeRefund(burns, state(debt), settles, new Map(Object.entries(room)))).toEqual(refunds);
  });

  it("refuses, as a programmer error, a refund the settling lots cannot take", () => {
    expect(() => distributeRefund([{ grantId: null, amount: 10n }], state(0n), [], new Map())).toThrow(/can take it back/);
  });
});
