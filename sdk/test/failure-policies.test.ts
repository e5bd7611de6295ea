// Policies come from the server, fall back to a default until it is reached, and yield
// to local overrides; offline budgets bound fail-open by credits and by time.
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { failClosed, FailurePolicies, OfflineBudgets, type Policy, policyOf } from "../src/failure-policies.js";
import { FeatureSchema } from "../src/gen/burndown/v1/admin_service_pb.js";
import { FailurePolicy } from "../src/gen/burndown/v1/usage_pb.js";

const openFeature = create(FeatureSchema, { featureKey: "chat", burnRate: 3n, failurePolicy: FailurePolicy.FAIL_OPEN, offlineBudget: { creditsMax: 100n, durationMax: { seconds: 60n, nanos: 0 } } });
const openPolicy: Policy = { kind: "fail_open", offlineCreditsMax: 100n, offlineMsMax: 60_000, burnRate: 3n };

describe("policyOf", () => {
  it.each([
    { name: "fail-open with both budgets", feature: openFeature, policy: openPolicy },
    { name: "fail-open with no budget is unbounded", feature: create(FeatureSchema, { featureKey: "x", burnRate: 1n, failurePolicy: FailurePolicy.FAIL_OPEN }), policy: { kind: "fail_open", offlineCreditsMax: null, offlineMsMax: null, burnRate: 1n } },
    { name: "fail-closed", feature: create(FeatureSchema, { featureKey: "x", failurePolicy: FailurePolicy.FAIL_CLOSED }), policy: failClosed },
    { name: "an unset policy is fail-closed", feature: create(FeatureSchema, { featureKey: "x" }), policy: failClosed },
  ])("$name", ({ feature, policy }) => {
    expect(policyOf(feature)).toEqual(policy);
  });
});

describe("FailurePolicies", () => {
  const make = (fetch: () => Promise<(typeof openFeature)[]>, overrides: Record<string, Policy> = {}) =>
    new FailurePolicies({ fetch, refreshMs: 60_000, defaultPolicy: failClosed, overrides, nowMs: () => 7 });

  it("uses the default until the server is reached, then the server's policy", async () => {
    const policies = make(() => Promise.resolve([openFeature]));
    expect(policies.get("chat")).toEqual(failClosed);
    expect(await policies.refresh()).toBe(true);
    expect(policies.get("chat")).toEqual(openPolicy);
    expect(policies.lastFetchMs).toBe(7);
  });

  it("keeps the cached policies when a refresh fails", async () => {
    let reachable = true;
    const policies = make(() => (reachable ? Promise.resolve([openFeature]) : Promise.reject(new Error("down"))));
    await policies.refresh();
    reachable = false;
    expect(await policies.refresh()).toBe(false);
    expect(policies.get("chat")).toEqual(openPolicy);
  });

  it("a local override wins over the server", async () => {
    const policies = make(() => Promise.resolve([openFeature]), { chat: failClosed });
    await policies.refresh();
    expect(policies.get("chat")).toEqual(failClosed);
  });
});

describe("OfflineBudgets", () => {
  const take = (budgets: OfflineBudgets, credits: bigint, nowMs = 1_000, customerId = "c") =>
    budgets.take({ policy: openPolicy as Policy & { kind: "fail_open" }, customerId, featureKey: "chat", credits, outageStartMs: 0, nowMs });

  it("allows up to the credit budget per customer, then refuses", () => {
    const budgets = new OfflineBudgets();
    expect(take(budgets, 60n)).toBe(true);
    expect(take(budgets, 40n)).toBe(true);
    expect(take(budgets, 1n)).toBe(false);
    expect(take(budgets, 100n, 1_000, "other")).toBe(true);
  });

  it("refuses past the duration budget, and starts afresh after reset", () => {
    const budgets = new OfflineBudgets();
    expect(take(budgets, 1n, 60_000)).toBe(true);
    expect(take(budgets, 1n, 60_001)).toBe(false);
    take(budgets, 98n);
    budgets.reset("chat");
    expect(take(budgets, 100n)).toBe(true);
  });
});
