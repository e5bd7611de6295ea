// ReportUsage and Check on real PostgreSQL: duplicate storms, late, future and
// out-of-order events, unknown features and customers kept and replayed, exact
// fractional rating, shadow mode, over-limit flagging, and the enforcement answers.
import { randomUUID } from "node:crypto";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { CheckReason, EnforcementMode, EntryKind, errorInfoOf, GrantSource, UsageOutcome, UsageEventSchema } from "@burndown/sdk";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { forgetOldEventIds, runExpiryPass } from "../src/jobs/expiry-jobs.js";
import { invariantViolations } from "../../test-support/invariants.js";
import { type Clients, FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";
import { errorOf } from "../../test-support/snapshot.js";

const creditTypeId = "ai_credits";
const minuteMs = 60_000;
const hourMs = 60 * minuteMs;
const dayMs = 24 * hourMs;

let t: TestServer;
let clock: FakeClock;
let api: Clients;
let serviceApi: Clients;

interface EventInit {
  eventId: string;
  customerId: string;
  featureKey: string;
  quantity: bigint;
  eventTime?: MessageInitShape<typeof UsageEventSchema>["eventTime"];
  properties?: Record<string, string>;
}

beforeAll(async () => {
  clock = new FakeClock();
  t = await startTestServer({ clock });
  api = t.clients(t.adminToken);
  serviceApi = t.clients(await t.createKey("service"));
  await api.admin.createCreditType({ creditType: { creditTypeId, displayName: "AI", scale: 0 }, requestId: randomUUID() });
  await feature("chat", 3n);
});
afterAll(async () => t.close());

async function feature(featureKey: string, burnRate: bigint, enforcementMode = EnforcementMode.ENFORCE): Promise<void> {
  await api.admin.createFeature({ feature: { featureKey, displayName: featureKey, creditTypeId, burnRate, enforcementMode }, requestId: randomUUID() });
}

async function customer(credits: bigint, overdraft = 0n): Promise<string> {
  const customerId = `cust-${randomUUID()}`;
  await api.admin.createCustomer({ customer: { customerId, overdraftLimits: overdraft > 0n ? [{ creditTypeId, amount: overdraft }] : [] }, requestId: randomUUID() });
  if (credits > 0n) await api.ledger.grant({ customerId, creditTypeId, amount: credits, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
  return customerId;
}

const event = (customerId: string, init: Partial<EventInit> = {}): EventInit => ({ eventId: randomUUID(), customerId, featureKey: "chat", quantity: 1n, ...init });

async function report(events: EventInit[], clients = serviceApi) {
  return (await clients.ledger.reportUsage({ events })).results;
}

async function balanceOf(customerId: string) {
  return (await api.ledger.getBalance({ customerId, creditTypeId })).balances[0];
}

describe("reporting", () => {
  it("rates at the feature's rate, burns, and links the entries to the event", async () => {
    const customerId = await customer(100n);
    const [result] = await report([event(customerId, { quantity: 4n })]);
    expect(result).toMatchObject({ outcome: UsageOutcome.BURNED, credits: 12n, creditTypeId, overLimit: false });
    expect(await balanceOf(customerId)).toMatchObject({ available: 88n, burned: 12n });
    const entries = (await api.ledger.listLedgerEntries({ customerId, kinds: [EntryKind.BURN] })).entries;
    expect(entries).toHaveLength(1);
    expect(entries[0].usageId).not.toBe("");
  });

  it("a duplicate storm, the same 1,000 events sent 10 times at once, burns exactly 1,000 times", async () => {
    const customers = await Promise.all(Array.from({ length: 20 }, () => customer(1_000_000n)));
    const events = Array.from({ length: 1_000 }, (_, index) => event(customers[index % customers.length], { quantity: 1n }));
    const calls = await Promise.all(Array.from({ length: 10 }, () => report(events)));
    const outcomes = calls.flat().map((result) => result.outcome);
    expect(outcomes.filter((outcome) => outcome === UsageOutcome.BURNED)).toHaveLength(1_000);
    expect(outcomes.filter((outcome) => outcome === UsageOutcome.DUPLICATE)).toHaveLength(9_000);
    const burned = await t.database.pool.query(
      "select count(*)::int as n, sum(amount)::text as credits from ledger_entries where kind = 'burn' and customer_id = any($1)",
      [customers],
    );
    expect(burned.rows[0]).toEqual({ n: 1_000, credits: "3000" });
  }, 120_000);

  it("a duplicate inside one batch is reported once", async () => {
    const customerId = await customer(100n);
    const once = event(customerId);
    const results = await report([once, once]);
    expect(results.map((result) => result.outcome)).toEqual([UsageOutcome.BURNED, UsageOutcome.DUPLICATE]);
  });

  it("event ids are scoped to the reporting key", async () => {
    const customerId = await customer(100n);
    const shared = event(customerId);
    expect((await report([shared], serviceApi))[0].outcome).toBe(UsageOutcome.BURNED);
    expect((await report([shared], api))[0].outcome).toBe(UsageOutcome.BURNED);
    expect((await balanceOf(customerId)).burned).toBe(6n);
  });

  it("an event id is remembered for the dedup retention (35 days) and may be reused after it", async () => {
    const customerId = await customer(100n);
    const reused = event(customerId);
    await report([reused]);
    // A conflict on the id is kept as long as the id: forgotten with it.
    expect((await report([{ ...reused, quantity: 2n }]))[0].reason).toBe("EVENT_ID_REUSED");
    const conflictsOf = async () => (await api.admin.listUsageConflicts({ customerId })).totalCount;
    expect(await conflictsOf()).toBe(1n);
    clock.advance(35 * dayMs - 1);
    await forgetOldEventIds(t.server.deps);
    expect((await report([reused]))[0].outcome).toBe(UsageOutcome.DUPLICATE);
    clock.advance(1);
    // Each call forgets a bounded number; earlier tests' ids are due too.
    let forgotten = 0;
    for (let calls = 0, last = -1; last !== 0 && calls < 50; calls++) forgotten += last = await forgetOldEventIds(t.server.deps);
    expect(forgotten).toBeGreaterThan(0);
    expect(await conflictsOf()).toBe(0n);
    expect((await report([reused]))[0].outcome).toBe(UsageOutcome.BURNED);
  });

  it("an event id sent again with another body is REJECTED EVENT_ID_REUSED, charges nothing, and is listed and counted", async () => {
    const customerId = await customer(1_000n);
    const other = await customer(1_000n);
    const first = event(customerId, { quantity: 2n, properties: { model: "large", region: "eu" } });
    expect((await report([first]))[0]).toMatchObject({ outcome: UsageOutcome.BURNED, credits: 6n });
    const outcomes = async (events: EventInit[]) => (await report(events)).map((r) => [r.outcome, r.reason]);
    const duplicate = [UsageOutcome.DUPLICATE, ""];
    const reused = [UsageOutcome.REJECTED, "EVENT_ID_REUSED"];
    // The same event is a duplicate, whatever the order of its properties or its offline flag.
    expect(await outcomes([{ ...first, properties: { region: "eu", model: "large" } }])).toEqual([duplicate]);
    expect(await outcomes([{ ...first, offline: true } as EventInit])).toEqual([duplicate]);
    // Any other body under the id is refused, and kept.
    expect(await outcomes([{ ...first, quantity: 3n }])).toEqual([reused]);
    expect(await outcomes([{ ...first, customerId: other }])).toEqual([reused]);
    expect(await outcomes([{ ...first, properties: { model: "small", region: "eu" } }])).toEqual([reused]);
    expect(await outcomes([{ ...first, eventTime: timestampFromMs(clock.ms - minuteMs) }])).toEqual([reused]);
    // Inside one batch: the first body takes the id, another is refused, the same one is a duplicate.
    const second = event(customerId, { quantity: 1n });
    expect(await outcomes([second, { ...second, quantity: 4n }, second])).toEqual([[UsageOutcome.BURNED, ""], reused, duplicate]);
    // The same id sent with ten bodies at once: one burns, nine are refused, whichever group they meet in.
    const contested = event(customerId);
    const racing = await Promise.all(Array.from({ length: 10 }, (_, index) => report([{ ...contested, quantity: BigInt(index + 1) }])));
    const burned = racing.flat().filter((r) => r.outcome === UsageOutcome.BURNED);
    expect(burned).toHaveLength(1);
    expect(racing.flat().filter((r) => r.reason === "EVENT_ID_REUSED")).toHaveLength(9);
    expect(await balanceOf(customerId)).toMatchObject({ burned: 6n + 3n + burned[0].credits });
    expect(await balanceOf(other)).toMatchObject({ burned: 0n });

    // Listed newest first beside the event that took the id, and counted.
    const listed = await api.admin.listUsageConflicts({ customerId });
    expect(listed.totalCount).toBe(13n);
    expect(listed.conflicts).toHaveLength(13);
    const firstConflict = listed.conflicts.at(-1)!;
    expect(firstConflict.event).toMatchObject({ eventId: first.eventId, customerId, quantity: 3n });
    expect(firstConflict.firstEvent).toMatchObject({ eventId: first.eventId, customerId, quantity: 2n, properties: { model: "large", region: "eu" } });
    expect(firstConflict.firstUsageId).not.toBe("");
    expect(listed.conflicts.at(-2)!.event?.properties).toEqual({ model: "small", region: "eu" });
    // An event sent without an event time is listed without one.
    expect(listed.conflicts.at(-1)!.event?.eventTime).toBeUndefined();
    expect(listed.conflicts.at(-3)!.event?.eventTime).toBeDefined();
    // The one sent for the other customer is that customer's.
    expect((await api.admin.listUsageConflicts({ customerId: other })).conflicts.map((c) => c.event?.quantity)).toEqual([2n]);
    // Paged: every conflict once, in order.
    const paged: string[] = [];
    let pageToken = "";
    do {
      const page = await api.admin.listUsageConflicts({ customerId, pageSize: 4, pageToken });
      expect(page.totalCount).toBe(13n);
      paged.push(...page.conflicts.map((c) => c.conflictId));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(paged).toEqual(listed.conflicts.map((c) => c.conflictId));
    // By reporting key: these were all the service key's.
    const serviceKeyId = listed.conflicts[0].reporterKeyId;
    expect((await api.admin.listUsageConflicts({ reporterKeyId: serviceKeyId, customerId })).totalCount).toBe(13n);
    expect((await api.admin.listUsageConflicts({ reporterKeyId: "no-such-key", customerId })).totalCount).toBe(0n);
    const badToken = await errorOf(api.admin.listUsageConflicts({ pageToken: "nope" }));
    expect([badToken.code, errorInfoOf(badToken)?.reason]).toEqual([Code.InvalidArgument, "INVALID_PAGE_TOKEN"]);
  });

  it("an id claimed before fingerprints were kept is a duplicate whatever the body", async () => {
    const customerId = await customer(100n);
    const legacy = event(customerId);
    await report([legacy]);
    await t.database.pool.query("update usage_event_ids set payload_hash = null where event_id = $1", [legacy.eventId]);
    expect((await report([{ ...legacy, quantity: 5n }]))[0].outcome).toBe(UsageOutcome.DUPLICATE);
    expect(await balanceOf(customerId)).toMatchObject({ burned: 3n });
  });

  it("a malformed event is rejected on its own; the rest of the batch goes through", async () => {
    const customerId = await customer(100n);
    const results = await report([event(customerId, { quantity: 0n }), event(customerId, { featureKey: "Bad Key" }), event(customerId)]);
    expect(results.map((result) => [result.outcome, result.reason])).toEqual([
      [UsageOutcome.REJECTED, "INVALID_QUANTITY"],
      [UsageOutcome.REJECTED, "INVALID_CODE"],
      [UsageOutcome.BURNED, ""],
    ]);
  });

  it("an event whose credits or burn would leave int64 is rejected alone: the rest of its batch burns, and its id may be sent again", async () => {
    // 2^62 credits per 3 units: quantity 7 rates past int64; quantities 1 and 2 burn exactly 2^62 together.
    await feature("huge", 1n);
    const versionId = `v-${randomUUID().slice(0, 8)}`;
    await api.admin.createPricingVersion({
      pricingVersion: { pricingVersionId: versionId, displayName: "huge", rates: [{ featureKey: "huge", rate: { credits: 2n ** 62n, perUnits: 3n } }] },
      requestId: randomUUID(),
    });
    const customerId = await customer(100n);
    const other = await customer(100n);
    await api.admin.moveCustomersToPricingVersion({ fromPricingVersionId: "", toPricingVersionId: versionId, customerIds: [customerId], reason: "test", requestId: randomUUID() });
    const overflowing = event(customerId, { featureKey: "huge", quantity: 7n });
    const first = await report([
      event(customerId, { featureKey: "huge", quantity: 1n }),
      overflowing,
      event(customerId, { quantity: 2n }),
      event(customerId, { featureKey: "huge", quantity: 2n }),
      event(other, { quantity: 1n }),
    ]);
    expect(first.map((r) => [r.outcome, r.reason, r.credits])).toEqual([
      [UsageOutcome.BURNED, "", 2n ** 62n / 3n],
      [UsageOutcome.REJECTED, "AMOUNT_OUT_OF_RANGE", 0n],
      [UsageOutcome.BURNED, "", 6n],
      // The rejected event left no carry: 1 and 2 units burn floor(3 × 2^62 / 3) together.
      [UsageOutcome.BURNED, "", 2n ** 62n - 2n ** 62n / 3n],
      [UsageOutcome.BURNED, "", 3n],
    ]);
    expect(await balanceOf(customerId)).toMatchObject({ burned: 2n ** 62n + 6n });
    expect(await balanceOf(other)).toMatchObject({ burned: 3n });

    // Nothing of the rejected event was kept: its id is free for the corrected event.
    const corrected = await report([{ ...overflowing, quantity: 1n }, event(customerId, { quantity: 1n })]);
    expect(corrected.map((r) => [r.outcome, r.reason, r.credits])).toEqual([
      [UsageOutcome.BURNED, "", 2n ** 62n / 3n],
      [UsageOutcome.BURNED, "", 3n],
    ]);
    // Burned is now 2^62 + 2^62/3 + 9: one more 2^62 would take it past int64, so that event alone is rejected.
    const tooMuch = event(customerId, { featureKey: "huge", quantity: 3n });
    const past = await report([event(customerId, { quantity: 1n }), tooMuch, event(customerId, { quantity: 1n })]);
    expect(past.map((r) => [r.outcome, r.reason])).toEqual([
      [UsageOutcome.BURNED, ""],
      [UsageOutcome.REJECTED, "AMOUNT_OUT_OF_RANGE"],
      [UsageOutcome.BURNED, ""],
    ]);
    expect(await balanceOf(customerId)).toMatchObject({ burned: 2n ** 62n + 2n ** 62n / 3n + 15n });
    const usage = await t.database.pool.query("select count(*)::int as n from usage_events where customer_id = $1", [customerId]);
    expect(usage.rows[0].n).toBe(7);
    const claims = await t.database.pool.query("select count(*)::int as n from usage_event_ids where event_id = $1", [tooMuch.eventId]);
    expect(claims.rows[0].n).toBe(0);
  });

  it.each([
    { name: "an empty batch", size: 0 },
    { name: "a batch of 1,001", size: 1_001 },
  ])("$name is InvalidArgument INVALID_BATCH_SIZE", async ({ size }) => {
    const customerId = await customer(0n);
    const error = await errorOf(serviceApi.ledger.reportUsage({ events: Array.from({ length: size }, () => event(customerId)) }));
    expect([error.code, errorInfoOf(error)?.reason]).toEqual([Code.InvalidArgument, "INVALID_BATCH_SIZE"]);
  });
});

describe("event time", () => {
  it.each([
    { name: "one millisecond past the 7-day cutoff is EVENT_TOO_LATE", offsetMs: -7 * dayMs - 1, outcome: UsageOutcome.REJECTED, reason: "EVENT_TOO_LATE" },
    { name: "exactly at the 7-day cutoff is accepted", offsetMs: -7 * dayMs, outcome: UsageOutcome.BURNED, reason: "" },
    { name: "5 minutes ahead is accepted", offsetMs: 5 * minuteMs, outcome: UsageOutcome.BURNED, reason: "" },
    { name: "5 minutes and 1 ms ahead is EVENT_IN_FUTURE", offsetMs: 5 * minuteMs + 1, outcome: UsageOutcome.REJECTED, reason: "EVENT_IN_FUTURE" },
  ])("$name", async ({ offsetMs, outcome, reason }) => {
    const customerId = await customer(100n);
    const [result] = await report([event(customerId, { eventTime: timestampFromMs(clock.ms + offsetMs) })]);
    expect([result.outcome, result.reason]).toEqual([outcome, reason]);
    expect((await balanceOf(customerId)).burned).toBe(outcome === UsageOutcome.BURNED ? 3n : 0n);
  });

  it("out-of-order events are dated at their event times, and recorded together when they arrive", async () => {
    const customerId = await customer(100n);
    const times = [clock.ms - 3 * hourMs, clock.ms - 1 * hourMs, clock.ms - 2 * hourMs];
    await report(times.map((ms) => event(customerId, { eventTime: timestampFromMs(ms) })));
    const entries = (await api.ledger.listLedgerEntries({ customerId, kinds: [EntryKind.BURN] })).entries;
    expect(entries.map((entry) => Number(entry.effectiveTime!.seconds) * 1000).sort()).toEqual([...times].sort());
    // The record time is the database's clock at the write (one transaction for the batch).
    expect(new Set(entries.map((entry) => `${entry.recordTime!.seconds}.${entry.recordTime!.nanos}`)).size).toBe(1);
  });

  it("a late event burns from the lot that was valid at its event time", async () => {
    const customerId = await customer(0n);
    const eventAtMs = clock.ms - 2 * hourMs;
    // "old" was live when the usage happened; "new" is first in burn order but began later.
    const old = await api.ledger.grant({ customerId, creditTypeId, amount: 100n, priority: 5, source: GrantSource.PURCHASE, reasonCode: "old", effectiveTime: timestampFromMs(clock.ms - 3 * hourMs), requestId: randomUUID() });
    await api.ledger.grant({ customerId, creditTypeId, amount: 100n, priority: 0, source: GrantSource.PROMOTION, reasonCode: "new", effectiveTime: timestampFromMs(clock.ms - hourMs), requestId: randomUUID() });
    await report([event(customerId, { eventTime: timestampFromMs(eventAtMs) })]);
    const [burn] = (await api.ledger.listLedgerEntries({ customerId, kinds: [EntryKind.BURN] })).entries;
    expect(burn.grantId).toBe(old.lot!.grantId);
    // A usage now draws in plain burn order: the priority-0 lot.
    await report([event(customerId)]);
    const [latest] = (await api.ledger.listLedgerEntries({ customerId, kinds: [EntryKind.BURN] })).entries;
    expect(latest.grantId).not.toBe(old.lot!.grantId);
  });

  it("a late event is rated at the pricing version and override in force at its event time", async () => {
    const version = async (credits: bigint) => {
      const pricingVersionId = `v-${randomUUID().slice(0, 8)}`;
      await api.admin.createPricingVersion({ pricingVersion: { pricingVersionId, displayName: "v", rates: [{ featureKey: "chat", rate: { credits, perUnits: 1n } }] }, requestId: randomUUID() });
      return pricingVersionId;
    };
    const [v1, v2] = [await version(2n), await version(5n)];
    const customerId = await customer(10_000n);
    const other = await customer(10_000n);
    const move = (from: string, to: string) =>
      api.admin.moveCustomersToPricingVersion({ fromPricingVersionId: from, toPricingVersionId: to, customerIds: [customerId], reason: "test", requestId: randomUUID() });
    const override = (rate: { credits: bigint; perUnits: bigint } | undefined) =>
      api.admin.setRateOverride({ customerId, featureKey: "chat", rate, reason: "test", requestId: randomUUID() });
    // Timeline: on v1 from t0; v2 from t1; an override of 7 from t2; the override removed at t3.
    const t0 = clock.ms;
    await move("", v1);
    clock.advance(hourMs);
    const t1 = clock.ms;
    await move(v1, v2);
    clock.advance(hourMs);
    const t2 = clock.ms;
    await override({ credits: 7n, perUnits: 1n });
    clock.advance(hourMs);
    const t3 = clock.ms;
    await override(undefined);
    clock.advance(hourMs);

    // Reported now, all at once, each at its own time: the rate in force then.
    const at = (ms: number) => event(customerId, { eventTime: timestampFromMs(ms) });
    const events = [at(t0 + minuteMs), at(t1 - 1), at(t1), at(t2 + minuteMs), at(t3 - 1), at(t3), event(customerId), event(other, { eventTime: timestampFromMs(t0 + minuteMs) })];
    const results = await report(events);
    expect(results.map((r) => r.credits)).toEqual([2n, 2n, 5n, 7n, 7n, 5n, 5n, 3n]);
    expect(await balanceOf(customerId)).toMatchObject({ burned: 33n });
    // The explanation names what rated each one.
    const rating = async (eventId: string) => (await api.admin.explainUsageEvent({ eventId })).rating;
    expect(await rating(events[0].eventId)).toMatchObject({ pricingVersionId: v1, override: false, rate: { credits: 2n, perUnits: 1n } });
    expect(await rating(events[3].eventId)).toMatchObject({ pricingVersionId: "", override: true, rate: { credits: 7n, perUnits: 1n } });
    expect(await rating(events[5].eventId)).toMatchObject({ pricingVersionId: v2, override: false, rate: { credits: 5n, perUnits: 1n } });
    // Reserve and Burn by feature price now.
    const burned = await api.ledger.burn({ customerId, cost: { case: "usage", value: { featureKey: "chat", quantity: 1n } }, requestId: randomUUID() });
    expect(burned.balance?.burned).toBe(38n);
  });

  it("a late event burns from a lot that was live at its event time and has expired since, taking back that part of its expiry", async () => {
    const customerId = await customer(0n, 1_000n);
    const expiresAtMs = clock.ms + hourMs;
    const promo = await api.ledger.grant({
      customerId, creditTypeId, amount: 10n, source: GrantSource.PROMOTION, reasonCode: "promo", expireTime: timestampFromMs(expiresAtMs), requestId: randomUUID(),
    });
    const lasting = await api.ledger.grant({ customerId, creditTypeId, amount: 100n, priority: 5, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
    const eventAtMs = clock.ms + 30 * minuteMs;
    clock.advance(2 * hourMs);
    await runExpiryPass(t.server.deps);
    expect(await balanceOf(customerId)).toMatchObject({ expired: 10n, available: 100n });

    // 5 units at 3 credits, while the promotional lot was live: its 10 expired credits pay first, the lasting lot the rest.
    const late = event(customerId, { quantity: 5n, eventTime: timestampFromMs(eventAtMs) });
    expect((await report([late]))[0]).toMatchObject({ outcome: UsageOutcome.BURNED, credits: 15n });
    expect(await balanceOf(customerId)).toMatchObject({ expired: 0n, burned: 15n, available: 95n });
    const explained = await api.admin.explainUsageEvent({ eventId: late.eventId });
    expect(explained.entries.map((e) => [EntryKind[e.kind], e.amount, e.grantId, e.reasonCode])).toEqual([
      ["UNEXPIRE", 10n, promo.lot!.grantId, "late_usage"],
      ["BURN", 10n, promo.lot!.grantId, "usage"],
      ["BURN", 5n, lasting.lot!.grantId, "usage"],
    ]);
    const unexpire = explained.entries[0];
    expect(Number(unexpire.effectiveTime!.seconds) * 1000).toBe(expiresAtMs);
    expect(explained.lots.map((lot) => lot.grantId).sort()).toEqual([promo.lot!.grantId, lasting.lot!.grantId].sort());

    // Nothing more to take back: the next late event draws from the lasting lot only.
    expect((await report([event(customerId, { eventTime: timestampFromMs(eventAtMs) })]))[0].credits).toBe(3n);
    expect(await balanceOf(customerId)).toMatchObject({ expired: 0n, burned: 18n, available: 92n });
    // A correction gives back to the expired lot, which expires it again at once.
    await api.admin.correctUsageEvent({ eventId: late.eventId, reasonCode: "mistake", requestId: randomUUID() });
    expect(await balanceOf(customerId)).toMatchObject({ expired: 10n, burned: 3n, available: 97n });
  });
});

describe("unrated events", () => {
  it("an event for an unknown feature or customer is kept, listed, and burned by a replay once both exist", async () => {
    const customerId = await customer(100n);
    const featureKey = `later_${randomUUID().slice(0, 8)}`;
    const laterCustomer = `later-${randomUUID()}`;
    const early = event(customerId, { featureKey, quantity: 2n, eventTime: timestampFromMs(clock.ms - hourMs) });
    const orphan = event(laterCustomer);
    const results = await report([early, orphan]);
    expect(results.map((result) => [result.outcome, result.reason])).toEqual([
      [UsageOutcome.UNRATED, "FEATURE_NOT_FOUND"],
      [UsageOutcome.UNRATED, "CUSTOMER_NOT_FOUND"],
    ]);
    expect((await report([early]))[0].outcome).toBe(UsageOutcome.DUPLICATE);
    const listed = (await api.admin.listUnratedEvents({ pageSize: 1000 })).events.filter((e) => [early.eventId, orphan.eventId].includes(e.event!.eventId));
    expect(listed.map((e) => e.reason).sort()).toEqual(["CUSTOMER_NOT_FOUND", "FEATURE_NOT_FOUND"]);

    await feature(featureKey, 10n);
    const replayed = (await api.admin.replayUnratedEvents({})).results;
    expect(replayed.find((r) => r.eventId === early.eventId)).toMatchObject({ outcome: UsageOutcome.BURNED, credits: 20n });
    expect(replayed.find((r) => r.eventId === orphan.eventId)?.outcome).toBe(UsageOutcome.UNRATED);
    expect((await balanceOf(customerId)).burned).toBe(20n);
    const [burn] = (await api.ledger.listLedgerEntries({ customerId, kinds: [EntryKind.BURN] })).entries;
    expect(Number(burn.effectiveTime!.seconds) * 1000).toBe(Math.floor((clock.ms - hourMs) / 1000) * 1000);

    await api.admin.createCustomer({ customer: { customerId: laterCustomer }, requestId: randomUUID() });
    await api.ledger.grant({ customerId: laterCustomer, creditTypeId, amount: 10n, source: GrantSource.PROMOTION, reasonCode: "p", requestId: randomUUID() });
    const second = (await api.admin.replayUnratedEvents({})).results;
    expect(second.find((r) => r.eventId === orphan.eventId)?.outcome).toBe(UsageOutcome.BURNED);
    expect((await api.admin.replayUnratedEvents({})).results.filter((r) => [early.eventId, orphan.eventId].includes(r.eventId))).toEqual([]);
  });

  it("a replayed event takes back a lot's expiry only within the late cutoff of that expiry", async () => {
    const featureKey = `later_${randomUUID().slice(0, 8)}`;
    // Two customers, each with a promotional 10 that expires in an hour and a lasting 100; each uses an unknown feature now.
    const setup = async () => {
      const customerId = await customer(0n);
      const promo = await api.ledger.grant({
        customerId, creditTypeId, amount: 10n, source: GrantSource.PROMOTION, reasonCode: "promo", expireTime: timestampFromMs(clock.ms + hourMs), requestId: randomUUID(),
      });
      await api.ledger.grant({ customerId, creditTypeId, amount: 100n, priority: 5, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
      expect((await report([event(customerId, { featureKey, quantity: 1n })]))[0].outcome).toBe(UsageOutcome.UNRATED);
      return { customerId, promo: promo.lot!.grantId };
    };
    const expiredLongAgo = await setup();
    clock.advance(2 * dayMs);
    const expiredRecently = await setup();
    // Now the first customer's promo expired 8 days ago (beyond the 7-day late cutoff), the second's 6 days ago (within it).
    clock.advance(6 * dayMs);
    await runExpiryPass(t.server.deps);
    await feature(featureKey, 4n);
    const replayed = (await api.admin.replayUnratedEvents({ reason: "feature created late" })).results;
    expect(replayed.filter((r) => r.outcome === UsageOutcome.BURNED).length).toBeGreaterThanOrEqual(2);
    const kinds = async (customerId: string) =>
      (await api.ledger.listLedgerEntries({ customerId, kinds: [EntryKind.UNEXPIRE, EntryKind.BURN] })).entries.reverse().map((e) => [EntryKind[e.kind], e.amount, e.grantId]);
    expect(await kinds(expiredRecently.customerId)).toEqual([["UNEXPIRE", 4n, expiredRecently.promo], ["BURN", 4n, expiredRecently.promo]]);
    expect((await kinds(expiredLongAgo.customerId)).map(([kind, amount, grantId]) => [kind, amount, grantId === expiredLongAgo.promo])).toEqual([["BURN", 4n, false]]);
    expect(await balanceOf(expiredLongAgo.customerId)).toMatchObject({ expired: 10n, burned: 4n });
    expect(await balanceOf(expiredRecently.customerId)).toMatchObject({ expired: 6n, burned: 4n });
  });
});

describe("fractional rates", () => {
  it("0.4 credit per call over 10,000 calls burns exactly 4,000, and any quantities burn floor(sum * 2 / 5)", async () => {
    const versionId = `v-${randomUUID().slice(0, 8)}`;
    await api.admin.createPricingVersion({
      pricingVersion: { pricingVersionId: versionId, displayName: "fractional", rates: [{ featureKey: "chat", rate: { credits: 2n, perUnits: 5n } }] },
      requestId: randomUUID(),
    });
    const customerId = await customer(1_000_000n);
    await api.admin.moveCustomersToPricingVersion({ fromPricingVersionId: "", toPricingVersionId: versionId, customerIds: [customerId], reason: "test", requestId: randomUUID() });
    for (let batch = 0; batch < 10; batch++) await report(Array.from({ length: 1_000 }, () => event(customerId)));
    expect((await balanceOf(customerId)).burned).toBe(4_000n);

    const other = await customer(1_000_000n);
    await api.admin.moveCustomersToPricingVersion({ fromPricingVersionId: "", toPricingVersionId: versionId, customerIds: [other], reason: "test", requestId: randomUUID() });
    const quantities = Array.from({ length: 2_000 }, (_, index) => BigInt(1 + ((index * 7919) % 13)));
    for (let start = 0; start < quantities.length; start += 500) {
      await report(quantities.slice(start, start + 500).map((quantity) => event(other, { quantity })));
    }
    const total = quantities.reduce((sum, q) => sum + q, 0n);
    expect((await balanceOf(other)).burned).toBe((total * 2n) / 5n);
  }, 120_000);
});

describe("enforcement modes", () => {
  it("observe mode records in the shadow ledger exactly what enforce burns, and never touches balances", async () => {
    await feature("chat_shadow", 3n, EnforcementMode.OBSERVE);
    const shadowed = await customer(100n);
    const enforced = await customer(100n);
    const quantities = [1n, 5n, 2n, 9n];
    const shadowResults = await report(quantities.map((quantity) => event(shadowed, { featureKey: "chat_shadow", quantity })));
    await report(quantities.map((quantity) => event(enforced, { quantity })));
    expect(shadowResults.every((result) => result.outcome === UsageOutcome.SHADOWED)).toBe(true);
    expect(await balanceOf(shadowed)).toMatchObject({ available: 100n, burned: 0n });
    const shadow = await t.database.pool.query("select sum(credits)::text as credits from shadow_entries where customer_id = $1", [shadowed]);
    expect(BigInt(shadow.rows[0].credits)).toBe((await balanceOf(enforced)).burned);
  });

  it("off mode records the usage without billing it", async () => {
    await feature("chat_free", 3n, EnforcementMode.OFF);
    const customerId = await customer(100n);
    const [result] = await report([event(customerId, { featureKey: "chat_free", quantity: 5n })]);
    expect(result).toMatchObject({ outcome: UsageOutcome.NOT_BILLED, credits: 0n });
    expect((await balanceOf(customerId)).burned).toBe(0n);
  });

  it("usage past the overdraft limit is still recorded, and flagged", async () => {
    const customerId = await customer(10n, 5n);
    const [result] = await report([event(customerId, { quantity: 10n })]);
    expect(result).toMatchObject({ outcome: UsageOutcome.BURNED, credits: 30n, overLimit: true });
    expect(await balanceOf(customerId)).toMatchObject({ available: -20n, burned: 30n });
  });
});

describe("Check", () => {
  it("enforce allows with credits and soft-blocks once the balance is below zero or the use would pass the limit", async () => {
    const customerId = await customer(10n);
    expect(await serviceApi.ledger.check({ customerId, featureKey: "chat", quantity: 3n })).toMatchObject({
      allowed: true, reason: CheckReason.SUFFICIENT_CREDITS, credits: 9n, mode: EnforcementMode.ENFORCE,
    });
    expect(await serviceApi.ledger.check({ customerId, featureKey: "chat", quantity: 4n })).toMatchObject({ allowed: false, reason: CheckReason.INSUFFICIENT_CREDITS });
    await report([event(customerId, { quantity: 4n })]);
    const denied = await serviceApi.ledger.check({ customerId, featureKey: "chat" });
    expect(denied).toMatchObject({ allowed: false, wouldAllow: false, reason: CheckReason.INSUFFICIENT_CREDITS });
    expect(denied.balance?.available).toBe(-2n);
  });

  it("observe and off allow and say what enforce would answer", async () => {
    const customerId = await customer(0n);
    expect(await serviceApi.ledger.check({ customerId, featureKey: "chat_shadow" })).toMatchObject({ allowed: true, wouldAllow: false, reason: CheckReason.OBSERVE_ONLY });
    expect(await serviceApi.ledger.check({ customerId, featureKey: "chat_free" })).toMatchObject({ allowed: true, reason: CheckReason.ENFORCEMENT_OFF });
  });

  it("the kill switch allows everywhere while metering goes on, and is audited", async () => {
    const customerId = await customer(0n);
    await api.admin.setKillSwitch({ enabled: true, reason: "incident 42", requestId: randomUUID() });
    try {
      expect(await serviceApi.ledger.check({ customerId, featureKey: "chat" })).toMatchObject({ allowed: true, wouldAllow: false, reason: CheckReason.KILL_SWITCH });
      const [result] = await report([event(customerId)]);
      expect(result.outcome).toBe(UsageOutcome.BURNED);
      expect((await balanceOf(customerId)).burned).toBe(3n);
    } finally {
      await api.admin.setKillSwitch({ enabled: false, reason: "incident 42 resolved", requestId: randomUUID() });
    }
    expect((await serviceApi.ledger.check({ customerId, featureKey: "chat" })).allowed).toBe(false);
  });

  it("an unknown customer or feature is NotFound", async () => {
    const customerId = await customer(0n);
    const noCustomer = await errorOf(serviceApi.ledger.check({ customerId: `nobody-${randomUUID()}`, featureKey: "chat" }));
    const noFeature = await errorOf(serviceApi.ledger.check({ customerId, featureKey: "nothing_here" }));
    expect([errorInfoOf(noCustomer)?.reason, errorInfoOf(noFeature)?.reason]).toEqual(["CUSTOMER_NOT_FOUND", "FEATURE_NOT_FOUND"]);
  });
});

describe("after the usage tests", () => {
  it("every ledger invariant holds", async () => {
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });
});

