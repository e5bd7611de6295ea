// The cohort a rollout takes: listed customers first, then a stable percentage, then the
// feature's own mode; and the percentage's cohort only grows as the percentage does.
import { describe, expect, it } from "vitest";
import { cohortBucket, enforcementOf } from "./enforcement.js";

const customers = Array.from({ length: 2_000 }, (_, i) => `customer-${i}`);

describe("enforcementOf", () => {
  const base = { featureKey: "chat", featureMode: "observe" as const };

  it.each([
    { name: "no rollout: the feature's mode", rollout: null, customerId: "a", want: { mode: "observe", rule: "feature_default" } },
    { name: "a listed customer gets the rollout's mode", rollout: { mode: "enforce" as const, customerIds: ["a"], percent: 0 }, customerId: "a", want: { mode: "enforce", rule: "customer_list" } },
    { name: "an unlisted customer outside 0% keeps the feature's mode", rollout: { mode: "enforce" as const, customerIds: ["a"], percent: 0 }, customerId: "b", want: { mode: "observe", rule: "feature_default" } },
    { name: "at 100% everyone is in the cohort", rollout: { mode: "enforce" as const, customerIds: [], percent: 100 }, customerId: "b", want: { mode: "enforce", rule: "percentage" } },
    { name: "a rollout may turn a feature off for a cohort", rollout: { mode: "off" as const, customerIds: ["vip"], percent: 0 }, customerId: "vip", want: { mode: "off", rule: "customer_list" } },
  ])("$name", ({ rollout, customerId, want }) => {
    expect(enforcementOf({ ...base, customerId, rollout })).toEqual(want);
  });

  it("a percentage takes about that share of customers, and a customer once in stays in as it grows", () => {
    const cohort = (percent: number) => new Set(customers.filter((id) => enforcementOf({ ...base, customerId: id, rollout: { mode: "enforce", customerIds: [], percent } }).rule === "percentage"));
    let previous = new Set<string>();
    for (const percent of [0, 1, 10, 25, 50, 90, 100]) {
      const current = cohort(percent);
      expect(current.size / customers.length).toBeGreaterThan(percent / 100 - 0.05);
      expect(current.size / customers.length).toBeLessThan(percent / 100 + 0.05);
      expect([...previous].filter((id) => !current.has(id))).toEqual([]);
      previous = current;
    }
  });

  it("each feature draws its own cohort: a 10% rollout of two features does not pick the same customers", () => {
    const inCohort = (featureKey: string) => customers.filter((id) => cohortBucket(featureKey, id) < 10);
    const both = inCohort("chat").filter((id) => inCohort("search").includes(id));
    expect(both.length).toBeLessThan(inCohort("chat").length / 2);
  });

  it("refuses a percentage outside 0 to 100 as a programmer error", () => {
    expect(() => enforcementOf({ ...base, customerId: "a", rollout: { mode: "enforce", customerIds: [], percent: 101 } })).toThrow(/assertion/);
  });
});
