// Failure policies (what SDKs do while the ledger is unreachable) are set per feature,
// audited, and read by SDKs through ListFeatures; usage an SDK allowed offline is
// replayed through ReportUsage and marked offline in the ledger.
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { EntryKind, errorInfoOf, FailurePolicy, GrantSource, UsageOutcome } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invariantViolations } from "../../test-support/invariants.js";
import { type Clients, startTestServer, type TestServer } from "../../test-support/server.js";
import { databaseSnapshot, errorOf } from "../../test-support/snapshot.js";

let t: TestServer;
let api: Clients;
const creditTypeId = "api_credits";

beforeAll(async () => {
  t = await startTestServer();
  api = t.clients(t.adminToken);
  await api.admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 0 }, requestId: randomUUID() });
});
afterAll(async () => t.close());

async function newFeature(): Promise<string> {
  const featureKey = `f_${randomUUID().slice(0, 8)}`;
  await api.admin.createFeature({ feature: { featureKey, displayName: "F", creditTypeId, burnRate: 2n }, requestId: randomUUID() });
  return featureKey;
}

async function policyOf(featureKey: string) {
  const serviceApi = t.clients(await t.createKey("service"));
  const feature = (await serviceApi.admin.listFeatures({})).features.find((candidate) => candidate.featureKey === featureKey);
  return { failurePolicy: feature?.failurePolicy, creditsMax: feature?.offlineBudget?.creditsMax, durationSeconds: feature?.offlineBudget?.durationMax?.seconds };
}

describe("failure policies", () => {
  it("a new feature fails closed", async () => {
    expect(await policyOf(await newFeature())).toEqual({ failurePolicy: FailurePolicy.FAIL_CLOSED, creditsMax: 0n, durationSeconds: undefined });
  });

  it("fail-open with a budget is set, visible to service keys, and audited with the old and new policy", async () => {
    const featureKey = await newFeature();
    await api.admin.setFailurePolicy({
      featureKey, failurePolicy: FailurePolicy.FAIL_OPEN, offlineBudget: { creditsMax: 500n, durationMax: { seconds: 600n, nanos: 0 } }, reason: "checkout must not stall", requestId: randomUUID(),
    });
    expect(await policyOf(featureKey)).toEqual({ failurePolicy: FailurePolicy.FAIL_OPEN, creditsMax: 500n, durationSeconds: 600n });
    // The newest record of this feature's policy (policyOf's key creation is audited too).
    const record = (await api.admin.listAuditRecords({ pageSize: 10 })).auditRecords.find((candidate) => candidate.action === "set_failure_policy")!;
    expect(record).toMatchObject({ action: "set_failure_policy", target: `feature:${featureKey}`, reason: "checkout must not stall" });
    expect(JSON.parse(record.detailsJson)).toEqual({
      old: { policy: "fail_closed", offline_credits_max: "0", offline_ms_max: "0" },
      new: { policy: "fail_open", offline_credits_max: "500", offline_ms_max: "600000" },
    });
  });

  it("fail-closed keeps no offline budget", async () => {
    const featureKey = await newFeature();
    await api.admin.setFailurePolicy({ featureKey, failurePolicy: FailurePolicy.FAIL_CLOSED, offlineBudget: { creditsMax: 9n }, reason: "money", requestId: randomUUID() });
    expect(await policyOf(featureKey)).toEqual({ failurePolicy: FailurePolicy.FAIL_CLOSED, creditsMax: 0n, durationSeconds: undefined });
  });

  it.each([
    { name: "an unspecified policy", request: { failurePolicy: FailurePolicy.UNSPECIFIED }, code: Code.InvalidArgument, reason: "INVALID_ENUM" },
    { name: "a negative credit budget", request: { offlineBudget: { creditsMax: -1n } }, code: Code.InvalidArgument, reason: "INVALID_AMOUNT" },
    { name: "a duration over 30 days", request: { offlineBudget: { durationMax: { seconds: 31n * 86_400n, nanos: 0 } } }, code: Code.InvalidArgument, reason: "INVALID_DURATION" },
    { name: "no reason", request: { reason: "" }, code: Code.InvalidArgument, reason: "MISSING_FIELD" },
    { name: "an unknown feature", request: { featureKey: "no_such_feature" }, code: Code.NotFound, reason: "FEATURE_NOT_FOUND" },
  ])("$name is refused and changes nothing", async ({ request, code, reason }) => {
    const featureKey = await newFeature();
    const before = await databaseSnapshot(t.database.pool);
    const error = await errorOf(api.admin.setFailurePolicy({ featureKey, failurePolicy: FailurePolicy.FAIL_OPEN, reason: "r", requestId: randomUUID(), ...request }));
    expect([Code[error.code], errorInfoOf(error)?.reason]).toEqual([Code[code], reason]);
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
  });
});

describe("offline usage", () => {
  it("an event allowed offline burns like any other and its entries say usage_offline", async () => {
    const featureKey = await newFeature();
    const customerId = `c-${randomUUID()}`;
    await api.ledger.grant({ customerId, creditTypeId, amount: 100n, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
    const offline = { eventId: randomUUID(), customerId, featureKey, quantity: 3n, offline: true };
    const online = { eventId: randomUUID(), customerId, featureKey, quantity: 1n };
    const results = (await api.ledger.reportUsage({ events: [offline, online] })).results;
    expect(results.map((result) => [result.outcome, result.credits])).toEqual([[UsageOutcome.BURNED, 6n], [UsageOutcome.BURNED, 2n]]);
    const burns = (await api.ledger.listLedgerEntries({ customerId, kinds: [EntryKind.BURN] })).entries;
    expect(burns.map((entry) => [entry.amount, entry.reasonCode]).sort()).toEqual([[2n, "usage"], [6n, "usage_offline"]]);
    const explained = await api.admin.explainUsageEvent({ eventId: offline.eventId });
    expect(explained.event?.offline).toBe(true);
  });

  it("leaves every ledger invariant intact", async () => {
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });
});
