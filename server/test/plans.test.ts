// Plans through the contract, on real PostgreSQL with a fake clock: versions that never
// change (a subscriber keeps its version until moved), subscriptions that grant period 1
// at their start and assign the plan's pricing version, moves and cancellations that stop
// the old schedules from now, idempotent replays, audit records, and refusals that
// change nothing.
import { randomUUID } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { errorInfoOf, GrantSource, PeriodUnit, Role, SubscriptionState } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runSchedulePass } from "../src/jobs/schedule-jobs.js";
import { invariantViolations } from "../../test-support/invariants.js";
import { type Clients, FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";
import { errorOf } from "../../test-support/snapshot.js";

const creditTypeId = "api_credits";
const otherCreditTypeId = "ai_credits";
const dayMs = 86_400_000;
let t: TestServer;
let clock: FakeClock;
let admin: Clients;

beforeAll(async () => {
  clock = new FakeClock(Date.parse("2030-01-01T00:00:00Z"));
  t = await startTestServer({ clock });
  admin = t.clients(t.adminToken);
  for (const id of [creditTypeId, otherCreditTypeId]) {
    await admin.admin.createCreditType({ creditType: { creditTypeId: id, displayName: id, scale: 0 }, requestId: randomUUID() });
  }
});

afterAll(async () => {
  expect(await invariantViolations(t.database.pool)).toEqual([]);
  await t?.close();
});

const fresh = (prefix: string) => `${prefix}_${randomUUID().slice(0, 8)}`;

const allotment = (amount: bigint, credit = creditTypeId) => ({
  creditTypeId: credit,
  amount,
  period: { unit: PeriodUnit.MONTH, length: 1 },
  lotExpiry: { case: "expireAtPeriodEnd" as const, value: true },
});

async function createPlan(planId: string, amounts: bigint[], extra: { pricingVersionId?: string; bundleIds?: string[] } = {}) {
  const response = await admin.plans.createPlan({
    requestId: randomUUID(),
    planId,
    displayName: "Pro",
    allotments: amounts.map((amount, index) => allotment(amount, index === 0 ? creditTypeId : otherCreditTypeId)),
    pricingVersionId: extra.pricingVersionId ?? "",
    bundleIds: extra.bundleIds ?? [],
  });
  return response.plan!;
}

async function availableOf(customerId: string, credit = creditTypeId) {
  const response = await admin.ledger.getBalance({ customerId, creditTypeId: credit });
  return response.balances.find((balance) => balance.creditTypeId === credit)?.available ?? 0n;
}

async function subscribe(customerId: string, planId: string, options: { planVersion?: number; periodCount?: number; startTime?: Date } = {}) {
  const response = await admin.plans.subscribeCustomer({
    requestId: randomUUID(),
    customerId,
    planId,
    planVersion: options.planVersion ?? 0,
    periodCount: options.periodCount ?? 0,
    startTime: options.startTime && timestampFromDate(options.startTime),
  });
  return response.subscription!;
}

async function refusal(call: Promise<unknown>) {
  const error = await errorOf(call);
  return [Code[error.code], errorInfoOf(error)?.reason];
}

async function planTables() {
  const result = await t.database.pool.query(`select (select count(*) from plans)::int as plans, (select count(*) from plan_subscriptions)::int as subscriptions,
    (select count(*) from grant_schedules)::int as schedules, (select count(*) from grants)::int as grants, (select count(*) from audit_log)::int as audits,
    (select json_agg(s order by subscription_id) from plan_subscriptions s) as rows`);
  return result.rows[0];
}

describe("plan versions", () => {
  it("a plan_id created again is a new version; the list shows the latest unless asked for all; GetPlan reads any version", async () => {
    const planId = fresh("pro");
    const first = await createPlan(planId, [100n]);
    const second = await createPlan(planId, [200n, 50n]);
    expect([first.version, second.version]).toEqual([1, 2]);
    const latest = (await admin.plans.listPlans({})).plans.filter((plan) => plan.planId === planId);
    expect(latest.map((plan) => plan.version)).toEqual([2]);
    const all = (await admin.plans.listPlans({ allVersions: true })).plans.filter((plan) => plan.planId === planId);
    expect(all.map((plan) => plan.allotments.map((a) => a.amount))).toEqual([[100n], [200n, 50n]]);
    expect((await admin.plans.getPlan({ planId, version: 1 })).plan!.allotments[0].amount).toBe(100n);
    expect((await admin.plans.getPlan({ planId })).plan!.version).toBe(2);
  });

  it("a subscriber keeps its version when a new one is made, until moved; the move grants the new version's allotments from now", async () => {
    const planId = fresh("keep");
    await createPlan(planId, [100n]);
    const customerId = fresh("keeper");
    const subscription = await subscribe(customerId, planId, { periodCount: 3 });
    expect(subscription.planVersion).toBe(1);
    expect(subscription.schedules.map((schedule) => schedule.periodsGranted)).toEqual([1]);
    expect(await availableOf(customerId)).toBe(100n);
    await createPlan(planId, [300n, 20n]);
    clock.advance(10 * dayMs);
    await runSchedulePass(t.server.deps);
    expect(await availableOf(customerId)).toBe(100n);
    const moved = (await admin.plans.moveSubscription({ requestId: randomUUID(), subscriptionId: subscription.subscriptionId })).subscription!;
    expect([moved.planVersion, moved.periodCount, moved.state]).toEqual([2, 2, SubscriptionState.ACTIVE]);
    expect(await availableOf(customerId)).toBe(400n);
    expect(await availableOf(customerId, otherCreditTypeId)).toBe(20n);
    const listed = (await admin.plans.listSubscriptions({ customerId })).subscriptions;
    expect(listed.map((s) => [s.planVersion, s.state, s.movedTo])).toEqual([
      [2, SubscriptionState.ACTIVE, ""],
      [1, SubscriptionState.MOVED, moved.subscriptionId],
    ]);
    // The old version's schedule grants no period starting after the move.
    clock.advance(40 * dayMs);
    await runSchedulePass(t.server.deps);
    const old = listed[1].schedules[0];
    const periods = await t.database.pool.query("select count(*)::int as n from schedule_grants where schedule_id = $1", [old.scheduleId]);
    expect(periods.rows[0].n).toBe(1);
  });
});

describe("subscriptions", () => {
  it("subscribing grants period 1 at the start, assigns the plan's pricing version, and is audited; a replay answers the same and grants nothing more", async () => {
    const pricingVersionId = fresh("pv");
    await admin.admin.createPricingVersion({ pricingVersion: { pricingVersionId, displayName: "Plan prices", rates: [] }, requestId: randomUUID() });
    const planId = fresh("priced");
    await createPlan(planId, [500n], { pricingVersionId });
    const customerId = fresh("subscriber");
    const requestId = randomUUID();
    const request = { requestId, customerId, planId, planVersion: 0, periodCount: 0 };
    const first = (await admin.plans.subscribeCustomer(request)).subscription!;
    const replay = (await admin.plans.subscribeCustomer(request)).subscription!;
    expect(replay.subscriptionId).toBe(first.subscriptionId);
    expect(await availableOf(customerId)).toBe(500n);
    const lots = await t.database.pool.query("select source, reason_code from grants where customer_id = $1", [customerId]);
    expect(lots.rows).toEqual([{ source: "plan", reason_code: "plan" }]);
    expect((await admin.admin.getCustomer({ customerId })).customer!.pricingVersionId).toBe(pricingVersionId);
    const audits = await t.database.pool.query("select action from audit_log where target = $1 order by audit_id", [`customer:${customerId}`]);
    expect(audits.rows.map((row) => row.action)).toEqual(["subscribe_customer"]);
  });

  it("a subscription starting later grants nothing until its start, then period 1", async () => {
    const planId = fresh("later");
    await createPlan(planId, [10n]);
    const customerId = fresh("later");
    const subscription = await subscribe(customerId, planId, { startTime: new Date(clock.ms + 5 * dayMs) });
    expect(subscription.schedules[0].periodsGranted).toBe(0);
    expect(await availableOf(customerId)).toBe(0n);
    clock.advance(5 * dayMs);
    await runSchedulePass(t.server.deps);
    expect(await availableOf(customerId)).toBe(10n);
  });

  it("a cancelled subscription grants no period starting after it, and cannot be cancelled or moved again", async () => {
    const planId = fresh("cancel");
    await createPlan(planId, [10n]);
    const customerId = fresh("cancel");
    const subscription = await subscribe(customerId, planId);
    const cancelled = (await admin.plans.cancelSubscription({ requestId: randomUUID(), subscriptionId: subscription.subscriptionId, note: "churned" })).subscription!;
    expect([cancelled.state, cancelled.endTime !== undefined]).toEqual([SubscriptionState.CANCELLED, true]);
    clock.advance(70 * dayMs);
    await runSchedulePass(t.server.deps);
    const grants = await t.database.pool.query("select count(*)::int as n from grants where customer_id = $1", [customerId]);
    expect(grants.rows[0].n).toBe(1);
    expect(await refusal(admin.plans.cancelSubscription({ requestId: randomUUID(), subscriptionId: subscription.subscriptionId }))).toEqual(["FailedPrecondition", "SUBSCRIPTION_NOT_ACTIVE"]);
    expect(await refusal(admin.plans.moveSubscription({ requestId: randomUUID(), subscriptionId: subscription.subscriptionId }))).toEqual(["FailedPrecondition", "SUBSCRIPTION_NOT_ACTIVE"]);
  });
});

describe("bad input", () => {
  it.each([
    ["no allotment", { allotments: [] }, "INVALID_ALLOTMENTS"],
    ["a zero amount", { allotments: [allotment(0n)] }, "INVALID_AMOUNT"],
    ["a negative amount", { allotments: [allotment(-1n)] }, "INVALID_AMOUNT"],
    ["a period of 0 days", { allotments: [{ ...allotment(5n), period: { unit: PeriodUnit.DAY, length: 0 } }] }, "INVALID_PERIOD"],
    ["an unknown credit type", { allotments: [allotment(5n, "nope")] }, "CREDIT_TYPE_NOT_FOUND"],
    ["an unknown bundle", { allotments: [allotment(5n)], bundleIds: ["no_bundle"] }, "BUNDLE_NOT_FOUND"],
    ["an unknown pricing version", { allotments: [allotment(5n)], pricingVersionId: "no_version" }, "PRICING_VERSION_NOT_FOUND"],
  ])("CreatePlan with %s is refused and changes nothing", async (_name, fields, reason) => {
    const before = await planTables();
    const error = await errorOf(admin.plans.createPlan({ requestId: randomUUID(), planId: fresh("bad"), displayName: "Bad", ...fields }));
    expect(errorInfoOf(error)?.reason).toBe(reason);
    expect(await planTables()).toEqual(before);
  });

  it("SubscribeCustomer to an unknown plan or version, or for bad periods, is refused and changes nothing", async () => {
    const planId = fresh("known");
    await createPlan(planId, [5n]);
    const before = await planTables();
    const customerId = fresh("nobody");
    expect(await refusal(subscribe(customerId, fresh("unknown")))).toEqual(["NotFound", "PLAN_NOT_FOUND"]);
    expect(await refusal(subscribe(customerId, planId, { planVersion: 9 }))).toEqual(["NotFound", "PLAN_NOT_FOUND"]);
    expect(await refusal(subscribe(customerId, planId, { planVersion: -1 }))).toEqual(["InvalidArgument", "INVALID_PLAN_VERSION"]);
    expect(await refusal(subscribe(customerId, planId, { periodCount: -2 }))).toEqual(["InvalidArgument", "INVALID_PERIOD_COUNT"]);
    expect(await refusal(subscribe(customerId, planId, { periodCount: 5_000 }))).toEqual(["InvalidArgument", "INVALID_PERIOD_COUNT"]);
    expect(await refusal(admin.plans.moveSubscription({ requestId: randomUUID(), subscriptionId: randomUUID() }))).toEqual(["NotFound", "SUBSCRIPTION_NOT_FOUND"]);
    expect(await refusal(admin.plans.cancelGrantSchedule({ requestId: randomUUID(), scheduleId: randomUUID() }))).toEqual(["NotFound", "SCHEDULE_NOT_FOUND"]);
    expect(await refusal(admin.plans.getPlan({ planId, version: -1 }))).toEqual(["InvalidArgument", "INVALID_PLAN_VERSION"]);
    expect(await planTables()).toEqual(before);
  });

  it("a subscription's own schedule cannot be cancelled alone", async () => {
    const planId = fresh("own");
    await createPlan(planId, [5n]);
    const subscription = await subscribe(fresh("own"), planId);
    expect(await refusal(admin.plans.cancelGrantSchedule({ requestId: randomUUID(), scheduleId: subscription.schedules[0].scheduleId }))).toEqual(["FailedPrecondition", "SCHEDULE_NOT_ACTIVE"]);
  });

  it("only admin keys change plans and subscriptions; service and support keys may read plans", async () => {
    const service = t.clients(await t.createKey("service"));
    const support = t.clients(await t.createKey("support", 1_000n));
    for (const client of [service, support]) {
      expect(await refusal(client.plans.createPlan({ requestId: randomUUID(), planId: fresh("x"), displayName: "X", allotments: [allotment(5n)] }))).toEqual(["PermissionDenied", "ROLE_NOT_ALLOWED"]);
      expect(await refusal(client.plans.subscribeCustomer({ requestId: randomUUID(), customerId: fresh("x"), planId: "x" }))).toEqual(["PermissionDenied", "ROLE_NOT_ALLOWED"]);
      expect((await client.plans.listPlans({})).plans.length).toBeGreaterThan(0);
    }
    expect(await refusal(service.plans.listSubscriptions({ customerId: fresh("x") }))).toEqual(["PermissionDenied", "ROLE_NOT_ALLOWED"]);
    expect(GrantSource.PLAN).toBe(3);
  });
});

describe("bundles on offer", () => {
  it("a customer whose plan offers bundles sees and buys only those; a customer without such a plan sees the whole catalog; staff sell anything", async () => {
    const bundle = async (bundleId: string) =>
      (await admin.billing.createBundle({ requestId: randomUUID(), bundleId, displayName: bundleId, creditTypeId, credits: 100n, currency: "USD", priceMinor: 900n })).bundle!;
    const [offered, other] = [await bundle(fresh("plan_pack")), await bundle(fresh("retail_pack"))];
    const planId = fresh("team");
    await createPlan(planId, [10n], { bundleIds: [offered.bundleId] });
    const [subscriber, walkIn] = [fresh("cust"), fresh("cust")];
    for (const customerId of [subscriber, walkIn]) await admin.admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
    await subscribe(subscriber, planId);
    const keyOf = async (customerId: string) => t.clients((await admin.admin.createApiKey({ name: customerId, role: Role.CUSTOMER, customerId, requestId: randomUUID() })).token);
    const [mine, theirs] = [await keyOf(subscriber), await keyOf(walkIn)];

    const ids = async (c: Clients, customerId: string) => (await c.billing.listBundles({ customerId })).bundles.map((b) => b.bundleId);
    expect(await ids(mine, subscriber)).toEqual([offered.bundleId]);
    expect(await ids(theirs, walkIn)).toEqual(expect.arrayContaining([offered.bundleId, other.bundleId]));
    expect(await refusal(mine.billing.listBundles({ customerId: walkIn }))).toEqual(["NotFound", "CUSTOMER_NOT_FOUND"]);

    const order = (await mine.billing.createTopUp({ requestId: randomUUID(), customerId: subscriber, item: { case: "bundleId", value: offered.bundleId } })).topUp!;
    expect(order.bundleId).toBe(offered.bundleId);
    const before = (await admin.billing.listTopUps({ customerId: subscriber })).topUps.length;
    expect(await refusal(mine.billing.createTopUp({ requestId: randomUUID(), customerId: subscriber, item: { case: "bundleId", value: other.bundleId } }))).toEqual([
      "FailedPrecondition",
      "BUNDLE_NOT_OFFERED",
    ]);
    expect((await admin.billing.listTopUps({ customerId: subscriber })).topUps).toHaveLength(before);
    // Sales may still sell the subscriber anything.
    await admin.billing.createTopUp({ requestId: randomUUID(), customerId: subscriber, item: { case: "bundleId", value: other.bundleId } });

    // Once the subscription ends, the whole catalog is on offer again.
    const [subscription] = (await admin.plans.listSubscriptions({ customerId: subscriber })).subscriptions;
    await admin.plans.cancelSubscription({ requestId: randomUUID(), subscriptionId: subscription.subscriptionId });
    expect(await ids(mine, subscriber)).toEqual(expect.arrayContaining([offered.bundleId, other.bundleId]));
  });
});
