// Grant schedules through the contract, on real PostgreSQL with a fake clock: period 1
// granted at the start, each later period granted once by the scheduler however often
// and on however many replicas it runs, missed periods caught up with their own dates,
// rollover with an amount cap and a percent cap (the rest expiring as breakage), and bad
// input refused with nothing changed. Jobs are off; each test runs the pass itself.
import { randomUUID } from "node:crypto";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type RolloverRuleSchema, EntryKind, errorInfoOf, GrantSource, PeriodUnit } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runSchedulePass } from "../src/jobs/schedule-jobs.js";
import { invariantViolations } from "../../test-support/invariants.js";
import { type Clients, FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";
import { errorOf } from "../../test-support/snapshot.js";

const creditTypeId = "api_credits";
const dayMs = 86_400_000;
let t: TestServer;
let clock: FakeClock;
let admin: Clients;

beforeAll(async () => {
  clock = new FakeClock(Date.parse("2030-01-01T00:00:00Z"));
  t = await startTestServer({ clock });
  admin = t.clients(t.adminToken);
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "API credits", scale: 0 }, requestId: randomUUID() });
});

afterAll(async () => {
  expect(await invariantViolations(t.database.pool)).toEqual([]);
  await t?.close();
});

const fresh = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

function monthly(amount: bigint, extra: { rollover?: MessageInitShape<typeof RolloverRuleSchema> } = {}) {
  return { creditTypeId, amount, period: { unit: PeriodUnit.MONTH, length: 1 }, lotExpiry: { case: "expireAtPeriodEnd" as const, value: true }, ...extra };
}

async function schedule(customerId: string, allotment: ReturnType<typeof monthly>, options: { periodCount?: number; startTime?: Date } = {}) {
  const response = await admin.plans.createGrantSchedule({
    requestId: randomUUID(),
    customerId,
    allotment,
    source: GrantSource.PROMOTION,
    reasonCode: "promo",
    periodCount: options.periodCount ?? 0,
    startTime: options.startTime && timestampFromDate(options.startTime),
  });
  return response.schedule!;
}

async function balanceOf(customerId: string) {
  const response = await admin.ledger.getBalance({ customerId, creditTypeId });
  return response.balances.find((balance) => balance.creditTypeId === creditTypeId)!;
}

async function entriesOf(customerId: string) {
  return (await admin.ledger.listLedgerEntries({ customerId, creditTypeId, pageSize: 1_000 })).entries;
}

async function periodsOf(scheduleId: string): Promise<{ period_index: number; period_start: Date; effective_at: Date; expires_at: Date | null; amount: string }[]> {
  const result = await t.database.pool.query(
    `select s.period_index, s.period_start, g.effective_at, g.expires_at, g.amount from schedule_grants s join grants g on g.grant_id = s.grant_id
     where s.schedule_id = $1 order by s.period_index`,
    [scheduleId],
  );
  return result.rows;
}

async function burn(customerId: string, amount: bigint) {
  await admin.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount } }, requestId: randomUUID() });
}

/** nextMonth moves the clock to the first of the next month (the tests start on a first). */
function toMonthStart(monthsAhead: number): void {
  const now = new Date(clock.ms);
  clock.ms = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + monthsAhead, 1);
}

describe("periods", () => {
  it("period 1 is granted when the schedule starts now, and the next period when its start comes, once however often the pass runs", async () => {
    const customerId = fresh("monthly");
    const created = await schedule(customerId, monthly(100n));
    expect(created.periodsGranted).toBe(1);
    expect((await balanceOf(customerId)).available).toBe(100n);
    expect(await runSchedulePass(t.server.deps)).toMatchObject({ periodsGranted: 0 });
    toMonthStart(1);
    const passes = await Promise.all([runSchedulePass(t.server.deps), runSchedulePass(t.server.deps)]);
    expect(passes.reduce((sum, pass) => sum + pass.periodsGranted, 0)).toBeGreaterThanOrEqual(1);
    await runSchedulePass(t.server.deps);
    const periods = await periodsOf(created.scheduleId);
    expect(periods.map((period) => period.period_index)).toEqual([1, 2]);
    // Period 1's lot expired at the end of its month; period 2's is live.
    expect((await balanceOf(customerId)).available).toBe(100n);
    const listed = (await admin.plans.listGrantSchedules({ customerId })).schedules[0];
    expect(listed.periodsGranted).toBe(2);
    expect(timestampDate(listed.nextGrantTime!).toISOString()).toBe(new Date(Date.UTC(new Date(clock.ms).getUTCFullYear(), new Date(clock.ms).getUTCMonth() + 1, 1)).toISOString());
    const created2 = (await entriesOf(customerId)).filter((entry) => entry.kind === EntryKind.GRANT);
    expect(created2).toHaveLength(2);
  });

  it("missed periods are caught up after downtime, each with its own period's dates, and a schedule stops after its count", async () => {
    const customerId = fresh("catch-up");
    const start = new Date(clock.ms);
    const created = await schedule(customerId, monthly(10n), { periodCount: 4 });
    clock.advance(200 * dayMs);
    expect(await runSchedulePass(t.server.deps)).toMatchObject({ schedulesFailed: 0 });
    const periods = await periodsOf(created.scheduleId);
    expect(periods.map((period) => period.period_index)).toEqual([1, 2, 3, 4]);
    periods.forEach((period, index) => {
      const periodStart = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + index, 1));
      expect(period.effective_at.toISOString()).toBe(periodStart.toISOString());
      expect(period.expires_at!.toISOString()).toBe(new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + index + 1, 1)).toISOString());
    });
    // All four periods have ended: each lot expired, as breakage.
    const balance = await balanceOf(customerId);
    expect([balance.available, balance.granted, balance.expired]).toEqual([0n, 40n, 40n]);
    clock.advance(400 * dayMs);
    await runSchedulePass(t.server.deps);
    expect((await periodsOf(created.scheduleId)).map((period) => period.period_index)).toEqual([1, 2, 3, 4]);
    expect((await admin.plans.listGrantSchedules({ customerId })).schedules[0].nextGrantTime).toBeUndefined();
  });

  it("two replicas running the scheduler at once grant each period once", async () => {
    const replica = await t.startReplica();
    toMonthStart(1);
    const customers = Array.from({ length: 6 }, () => fresh("replicas"));
    const schedules = await Promise.all(customers.map((customerId) => schedule(customerId, monthly(7n))));
    toMonthStart(3);
    const passes = await Promise.all([runSchedulePass(t.server.deps, console.error), runSchedulePass(replica.deps, console.error), runSchedulePass(t.server.deps), runSchedulePass(replica.deps)]);
    expect(passes.map((pass) => pass.schedulesFailed)).toEqual([0, 0, 0, 0]);
    for (const created of schedules) {
      expect((await periodsOf(created.scheduleId)).map((period) => period.period_index)).toEqual([1, 2, 3, 4]);
      const grants = await t.database.pool.query("select count(*)::int as n from grants where customer_id = $1", [created.customerId]);
      expect(grants.rows[0].n).toBe(4);
    }
  });

  it("a cancelled schedule grants no period starting after it was cancelled", async () => {
    const customerId = fresh("cancel");
    const created = await schedule(customerId, monthly(5n));
    const cancelled = (await admin.plans.cancelGrantSchedule({ requestId: randomUUID(), scheduleId: created.scheduleId, note: "campaign over" })).schedule!;
    expect(cancelled.endTime).toBeDefined();
    expect(cancelled.nextGrantTime).toBeUndefined();
    toMonthStart(2);
    await runSchedulePass(t.server.deps);
    expect((await periodsOf(created.scheduleId)).map((period) => period.period_index)).toEqual([1]);
    const again = await errorOf(admin.plans.cancelGrantSchedule({ requestId: randomUUID(), scheduleId: created.scheduleId, note: "" }));
    expect([Code[again.code], errorInfoOf(again)?.reason]).toEqual(["FailedPrecondition", "SCHEDULE_NOT_ACTIVE"]);
  });
});

describe("events and replays", () => {
  it("each scheduled lot queues grant.created like any grant, and a CreateGrantSchedule replay grants nothing more", async () => {
    const endpoint = await admin.webhooks.createWebhookEndpoint({ url: "https://example.com/hooks", eventTypes: ["grant.created"], requestId: randomUUID() });
    const customerId = fresh("events");
    const request = { requestId: randomUUID(), customerId, allotment: monthly(60n), source: GrantSource.PROMOTION, reasonCode: "promo", periodCount: 0 };
    const first = (await admin.plans.createGrantSchedule(request)).schedule!;
    const replay = (await admin.plans.createGrantSchedule(request)).schedule!;
    expect(replay.scheduleId).toBe(first.scheduleId);
    toMonthStart(1);
    await runSchedulePass(t.server.deps);
    const lots = await t.database.pool.query("select grant_id from grants where customer_id = $1 order by seq", [customerId]);
    expect(lots.rows).toHaveLength(2);
    const events = await t.database.pool.query("select payload from webhook_events where type = 'grant.created' and customer_id = $1 order by seq", [customerId]);
    expect(events.rows.map((row) => [row.payload.data?.grantId ?? row.payload.grantId, row.payload.data?.source ?? row.payload.source])).toEqual(
      lots.rows.map((row) => [row.grant_id, "promotion"]),
    );
    await admin.webhooks.disableWebhookEndpoint({ endpointId: endpoint.endpoint!.endpointId, requestId: randomUUID() });
  });
});

describe("rollover", () => {
  it("an amount cap rolls the unused part up to the cap into a rollover lot, linked both ways, and the rest expires as breakage", async () => {
    toMonthStart(1);
    const customerId = fresh("rollover-amount");
    const created = await schedule(customerId, monthly(100n, { rollover: { cap: { case: "maxAmount", value: 30n } } }));
    await burn(customerId, 50n);
    toMonthStart(1);
    await runSchedulePass(t.server.deps);
    const [rollover] = (await admin.plans.listRollovers({ customerId })).rollovers;
    const periods = await t.database.pool.query("select period_index, grant_id from schedule_grants where schedule_id = $1 order by period_index", [created.scheduleId]);
    expect(rollover).toMatchObject({ scheduleId: created.scheduleId, periodIndex: 1, fromGrantId: periods.rows[0].grant_id, amount: 30n });
    const entries = await entriesOf(customerId);
    const out = entries.find((entry) => entry.kind === EntryKind.ROLLOVER_OUT)!;
    const into = entries.find((entry) => entry.kind === EntryKind.ROLLOVER_IN)!;
    expect([out.grantId, out.amount, into.grantId, into.amount]).toEqual([rollover.fromGrantId, 30n, rollover.toGrantId, 30n]);
    const expired = entries.filter((entry) => entry.kind === EntryKind.EXPIRE);
    expect(expired.map((entry) => [entry.grantId, entry.amount])).toEqual([[rollover.fromGrantId, 20n]]);
    const balance = await balanceOf(customerId);
    expect([balance.available, balance.expired]).toEqual([130n, 20n]);
    const lot = await t.database.pool.query("select source, expires_at from grants where grant_id = $1", [rollover.toGrantId]);
    expect(lot.rows[0].source).toBe("rollover");
    // The rollover lot lasts to the end of the new period, and burns first.
    await burn(customerId, 10n);
    const rolled = await t.database.pool.query("select remaining from grants where grant_id = $1", [rollover.toGrantId]);
    expect(rolled.rows[0].remaining).toBe("20");
  });

  it("a percent cap rolls that share of the allotment; a lot expired by another change first rolls over all the same", async () => {
    toMonthStart(1);
    const customerId = fresh("rollover-percent");
    await schedule(customerId, monthly(100n, { rollover: { cap: { case: "maxPercent", value: 25 } } }));
    await burn(customerId, 10n);
    toMonthStart(1);
    // A burn after the period's end and before the scheduler runs expires period 1's lot in full.
    await admin.ledger.grant({ customerId, creditTypeId, amount: 5n, source: GrantSource.SUPPORT, reasonCode: "goodwill", requestId: randomUUID() });
    await burn(customerId, 5n);
    await runSchedulePass(t.server.deps);
    const [rollover] = (await admin.plans.listRollovers({ customerId })).rollovers;
    expect(rollover.amount).toBe(25n);
    const balance = await balanceOf(customerId);
    // 100 (period 2) + 25 rolled; 90 unused - 25 rolled expired.
    expect([balance.available, balance.expired]).toEqual([125n, 65n]);
    const unexpired = (await entriesOf(customerId)).filter((entry) => entry.kind === EntryKind.UNEXPIRE);
    expect(unexpired.map((entry) => [entry.amount, entry.reasonCode])).toEqual([[25n, "rollover"]]);
  });

  it("nothing left: a rollover of zero is recorded, with no lot", async () => {
    toMonthStart(1);
    const customerId = fresh("rollover-none");
    await schedule(customerId, monthly(100n, { rollover: { cap: { case: "maxAmount", value: 30n } } }));
    await burn(customerId, 100n);
    toMonthStart(1);
    await runSchedulePass(t.server.deps);
    const [rollover] = (await admin.plans.listRollovers({ customerId })).rollovers;
    expect([rollover.amount, rollover.toGrantId]).toEqual([0n, ""]);
    expect((await balanceOf(customerId)).available).toBe(100n);
  });
});

describe("bad input", () => {
  const cases: [string, (customerId: string) => Parameters<Clients["plans"]["createGrantSchedule"]>[0], string][] = [
    ["a zero amount", (customerId) => ({ customerId, allotment: monthly(0n), source: GrantSource.PROMOTION, reasonCode: "promo" }), "INVALID_AMOUNT"],
    ["a negative amount", (customerId) => ({ customerId, allotment: monthly(-5n), source: GrantSource.PROMOTION, reasonCode: "promo" }), "INVALID_AMOUNT"],
    ["no period unit", (customerId) => ({ customerId, allotment: { ...monthly(5n), period: { unit: PeriodUnit.UNSPECIFIED, length: 1 } }, source: GrantSource.PROMOTION, reasonCode: "promo" }), "INVALID_PERIOD"],
    ["13 months", (customerId) => ({ customerId, allotment: { ...monthly(5n), period: { unit: PeriodUnit.MONTH, length: 13 } }, source: GrantSource.PROMOTION, reasonCode: "promo" }), "INVALID_PERIOD"],
    ["a negative period count", (customerId) => ({ customerId, allotment: monthly(5n), source: GrantSource.PROMOTION, reasonCode: "promo", periodCount: -1 }), "INVALID_PERIOD_COUNT"],
    ["rollover of lots that never expire", (customerId) => ({ customerId, allotment: { ...monthly(5n), lotExpiry: { case: undefined }, rollover: { cap: { case: "maxAmount", value: 1n } } }, source: GrantSource.PROMOTION, reasonCode: "promo" }), "INVALID_ROLLOVER"],
    ["a rollover percent above 100", (customerId) => ({ customerId, allotment: monthly(5n, { rollover: { cap: { case: "maxPercent", value: 101 } } }), source: GrantSource.PROMOTION, reasonCode: "promo" }), "INVALID_ROLLOVER"],
    ["a source of rollover", (customerId) => ({ customerId, allotment: monthly(5n), source: GrantSource.ROLLOVER, reasonCode: "promo" }), "INVALID_ENUM"],
    ["an unknown credit type", (customerId) => ({ customerId, allotment: { ...monthly(5n), creditTypeId: "no_such_type" }, source: GrantSource.PROMOTION, reasonCode: "promo" }), "CREDIT_TYPE_NOT_FOUND"],
  ];
  it.each(cases)("%s is refused and changes nothing", async (_name, request, reason) => {
    const before = await t.database.pool.query("select (select count(*) from grant_schedules)::int as schedules, (select count(*) from grants)::int as grants, (select count(*) from audit_log)::int as audits");
    const error = await errorOf(admin.plans.createGrantSchedule({ requestId: randomUUID(), ...request(fresh("bad")) }));
    expect(errorInfoOf(error)?.reason).toBe(reason);
    const after = await t.database.pool.query("select (select count(*) from grant_schedules)::int as schedules, (select count(*) from grants)::int as grants, (select count(*) from audit_log)::int as audits");
    expect(after.rows[0]).toEqual(before.rows[0]);
  });

  it("support keys may list schedules but not create them", async () => {
    const support = t.clients(await t.createKey("support", 1_000n));
    const error = await errorOf(support.plans.createGrantSchedule({ requestId: randomUUID(), customerId: fresh("support"), allotment: monthly(5n), source: GrantSource.PROMOTION, reasonCode: "promo" }));
    expect(Code[error.code]).toBe("PermissionDenied");
    expect((await support.plans.listGrantSchedules({ customerId: fresh("support") })).schedules).toEqual([]);
  });
});
