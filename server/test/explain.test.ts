// ExplainUsageEvent and CorrectUsageEvent on real PostgreSQL: the story of a charge at a
// fractional rate, late events, corrections given back to the lots they came from (also
// when later grants already repaid an overdraft, and when the lot has expired since),
// idempotent replays, and the requests refused.
import { randomUUID } from "node:crypto";
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { EnforcementMode, EntryKind, errorInfoOf, GrantSource, UsageOutcome } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invariantViolations } from "../../test-support/invariants.js";
import { type Clients, FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";
import { errorOf } from "../../test-support/snapshot.js";

const creditTypeId = "ai_credits";
const pricingVersionId = "v_fractional";
const hourMs = 3_600_000;

let t: TestServer;
let clock: FakeClock;
let api: Clients;
let serviceApi: Clients;
let adminKeyId: string;
let serviceKeyId: string;

const keyIdOf = (token: string) => token.split("_")[1];

beforeAll(async () => {
  // The fake clock starts at the wall clock, so that record times (the database's clock)
  // and decision times agree until a test moves it.
  clock = new FakeClock(Date.now());
  t = await startTestServer({ clock });
  api = t.clients(t.adminToken);
  const serviceToken = await t.createKey("service");
  serviceApi = t.clients(serviceToken);
  adminKeyId = keyIdOf(t.adminToken);
  serviceKeyId = keyIdOf(serviceToken);
  await api.admin.createCreditType({ creditType: { creditTypeId, displayName: "AI", scale: 0 }, requestId: randomUUID() });
  await api.admin.createFeature({ feature: { featureKey: "chat", displayName: "Chat", creditTypeId, burnRate: 3n }, requestId: randomUUID() });
  await api.admin.createFeature({
    feature: { featureKey: "draft", displayName: "Draft", creditTypeId, burnRate: 1n, enforcementMode: EnforcementMode.OBSERVE },
    requestId: randomUUID(),
  });
  // 0.4 credit per call, the default for every customer created from here on.
  await api.admin.createPricingVersion({
    pricingVersion: { pricingVersionId, displayName: "Fractional", rates: [{ featureKey: "chat", rate: { credits: 2n, perUnits: 5n } }] },
    makeDefault: true,
    requestId: randomUUID(),
  });
});
afterAll(async () => t?.close());

async function customer(credits: bigint, overdraft = 0n): Promise<string> {
  const customerId = `cust-${randomUUID()}`;
  await api.admin.createCustomer({ customer: { customerId, overdraftLimits: overdraft > 0n ? [{ creditTypeId, amount: overdraft }] : [] }, requestId: randomUUID() });
  if (credits > 0n) await grant(customerId, credits);
  return customerId;
}

async function grant(customerId: string, amount: bigint, expireInMs?: number): Promise<string> {
  const expireTime = expireInMs === undefined ? undefined : timestampFromMs(clock.ms + expireInMs);
  const res = await api.ledger.grant({ customerId, creditTypeId, amount, source: GrantSource.PURCHASE, reasonCode: "buy", expireTime, requestId: randomUUID() });
  return res.lot!.grantId;
}

/** report sends one event and returns its id; the event must get the outcome given. */
async function report(customerId: string, quantity: bigint, options: { outcome?: UsageOutcome; eventAtMs?: number; featureKey?: string; eventId?: string; clients?: Clients } = {}) {
  const eventId = options.eventId ?? randomUUID();
  const eventTime = options.eventAtMs === undefined ? undefined : timestampFromMs(options.eventAtMs);
  const res = await (options.clients ?? serviceApi).ledger.reportUsage({
    events: [{ eventId, customerId, featureKey: options.featureKey ?? "chat", quantity, eventTime, properties: { model: "small" } }],
  });
  expect(res.results[0].outcome).toBe(options.outcome ?? UsageOutcome.BURNED);
  return eventId;
}

async function balanceOf(customerId: string) {
  return (await api.ledger.getBalance({ customerId, creditTypeId })).balances[0];
}

async function remainingOf(customerId: string, grantId: string): Promise<bigint> {
  const rows = await t.database.pool.query("select remaining::text from grants where customer_id = $1 and grant_id = $2", [customerId, grantId]);
  return BigInt(rows.rows[0].remaining);
}

const correct = (eventId: string, requestId = randomUUID()) =>
  api.admin.correctUsageEvent({ eventId, reporterKeyId: serviceKeyId, reasonCode: "wrong_rate", note: "billed twice upstream", requestId });

describe("explaining", () => {
  it("shows the event as received, its fractional rating with the carry, its burn entries and the lots they drew from", async () => {
    const customerId = await customer(100n);
    const lotId = (await balanceOf(customerId)).lots[0].grantId;
    await report(customerId, 3n); // 6/5: 1 credit, 1/5 carried
    const eventId = await report(customerId, 2n); // (1 + 4)/5: 1 credit, nothing carried
    const res = await api.admin.explainUsageEvent({ eventId });
    expect(res).toMatchObject({
      reporterKeyId: serviceKeyId,
      event: { eventId, customerId, featureKey: "chat", quantity: 2n, properties: { model: "small" } },
      outcome: UsageOutcome.BURNED,
      reason: "",
      creditTypeId,
      rating: { pricingVersionId, override: false, rate: { credits: 2n, perUnits: 5n }, carryBefore: 1n, carryAfter: 0n, credits: 1n },
      overLimit: false,
    });
    expect(res.usageId).toMatch(/^[0-9]+$/);
    expect(res.receiveTime).toBeDefined();
    expect(res.correction).toBeUndefined();
    expect(res.entries.map((entry) => [entry.kind, entry.amount, entry.grantId, entry.usageId])).toEqual([[EntryKind.BURN, 1n, lotId, res.usageId]]);
    expect(res.lots.map((lot) => [lot.grantId, lot.amount, lot.remaining])).toEqual([[lotId, 100n, 98n]]);
  });

  it("a late event's entries take effect at the event time and are recorded now", async () => {
    const customerId = await customer(100n);
    const eventAtMs = clock.ms - 2 * hourMs;
    const wallBeforeMs = Date.now();
    const eventId = await report(customerId, 10n, { eventAtMs });
    const wallAfterMs = Date.now();
    const res = await api.admin.explainUsageEvent({ eventId, reporterKeyId: serviceKeyId });
    expect(timestampDate(res.event!.eventTime!).getTime()).toBe(eventAtMs);
    expect(res.entries).toHaveLength(1);
    const [burn] = res.entries;
    expect([burn.kind, burn.amount]).toEqual([EntryKind.BURN, 4n]);
    expect(timestampDate(burn.effectiveTime!).getTime()).toBe(eventAtMs);
    // The record time is the database's clock at the write.
    const recordedMs = timestampDate(burn.recordTime!).getTime();
    expect(recordedMs).toBeGreaterThanOrEqual(wallBeforeMs - 1_000);
    expect(recordedMs).toBeLessThanOrEqual(wallAfterMs + 1_000);
  });

  it("an unrated event is explained with its reason and no rating", async () => {
    const eventId = await report(`nobody-${randomUUID()}`, 1n, { outcome: UsageOutcome.UNRATED });
    const res = await api.admin.explainUsageEvent({ eventId });
    expect(res).toMatchObject({ outcome: UsageOutcome.UNRATED, reason: "CUSTOMER_NOT_FOUND", creditTypeId: "", entries: [], lots: [] });
    expect(res.rating).toBeUndefined();
  });

  it("a shadowed event is explained with its rating and no entries", async () => {
    const customerId = await customer(100n);
    const eventId = await report(customerId, 7n, { featureKey: "draft", outcome: UsageOutcome.SHADOWED });
    const res = await api.admin.explainUsageEvent({ eventId });
    expect(res).toMatchObject({ outcome: UsageOutcome.SHADOWED, entries: [], rating: { credits: 7n, rate: { credits: 1n, perUnits: 1n } } });
  });

  it("by the usage id a ledger entry carries, the same story as by the event id", async () => {
    const customerId = await customer(100n);
    const eventId = await report(customerId, 5n);
    const [burn] = (await api.ledger.listLedgerEntries({ customerId, kinds: [EntryKind.BURN] })).entries;
    expect(burn.usageId).toMatch(/^[1-9][0-9]*$/);
    const byUsageId = await api.admin.explainUsageEvent({ usageId: burn.usageId });
    expect(byUsageId).toEqual(await api.admin.explainUsageEvent({ eventId }));
    expect(byUsageId.event?.eventId).toBe(eventId);
  });

  it("a support key may explain", async () => {
    const customerId = await customer(100n);
    const eventId = await report(customerId, 5n);
    const support = t.clients(await t.createKey("support"));
    expect((await support.admin.explainUsageEvent({ eventId })).entries.map((entry) => entry.amount)).toEqual([2n]);
  });
});

describe("correcting", () => {
  it("refunds with entries linked to the event, restores the balance, shows in the explanation and is audited", async () => {
    const customerId = await customer(100n);
    const lotId = (await balanceOf(customerId)).lots[0].grantId;
    const eventId = await report(customerId, 10n);
    expect(await balanceOf(customerId)).toMatchObject({ available: 96n, burned: 4n });
    const requestId = randomUUID();
    const res = await correct(eventId, requestId);
    expect(res.correction).toMatchObject({ actor: adminKeyId, reasonCode: "wrong_rate", note: "billed twice upstream", credits: 4n });
    const { usageId } = await api.admin.explainUsageEvent({ eventId });
    expect(res.entries.map((entry) => [entry.kind, entry.amount, entry.grantId, entry.usageId, entry.requestId, entry.reasonCode, entry.actor])).toEqual([
      [EntryKind.REFUND, 4n, lotId, usageId, requestId, "wrong_rate", adminKeyId],
    ]);
    expect(await balanceOf(customerId)).toMatchObject({ available: 100n, burned: 0n });

    const explained = await api.admin.explainUsageEvent({ eventId });
    expect(explained.entries.map((entry) => [entry.kind, entry.amount])).toEqual([[EntryKind.BURN, 4n], [EntryKind.REFUND, 4n]]);
    expect(explained.correction).toMatchObject({ actor: adminKeyId, reasonCode: "wrong_rate", credits: 4n });
    expect(explained.lots.map((lot) => lot.remaining)).toEqual([100n]);

    const [audit] = (await api.admin.listAuditRecords({ pageSize: 1 })).auditRecords;
    expect(audit).toMatchObject({ actor: adminKeyId, action: "correct_usage_event", target: `usage:${usageId}`, reason: "wrong_rate" });
    expect(JSON.parse(audit.detailsJson)).toMatchObject({ event_id: eventId, note: "billed twice upstream", refunds: [{ grant_id: lotId, amount: "4" }] });
  });

  it("a second correction is FailedPrecondition ALREADY_CORRECTED; a replay of the first returns it and changes nothing", async () => {
    const customerId = await customer(100n);
    const eventId = await report(customerId, 10n);
    const requestId = randomUUID();
    const first = await correct(eventId, requestId);
    const entriesBefore = await t.database.pool.query("select count(*)::int as n from ledger_entries where customer_id = $1", [customerId]);
    const replay = await correct(eventId, requestId);
    expect(replay).toEqual(first);
    const again = await errorOf(correct(eventId));
    expect([again.code, errorInfoOf(again)?.reason]).toEqual([Code.FailedPrecondition, "ALREADY_CORRECTED"]);
    const entriesAfter = await t.database.pool.query("select count(*)::int as n from ledger_entries where customer_id = $1", [customerId]);
    expect(entriesAfter.rows[0].n).toBe(entriesBefore.rows[0].n);
    expect(await balanceOf(customerId)).toMatchObject({ available: 100n, burned: 0n });
  });

  it("ten concurrent corrections of one event, with different request ids, refund it once", async () => {
    const customerId = await customer(100n);
    const eventId = await report(customerId, 10n);
    const settled = await Promise.allSettled(Array.from({ length: 10 }, () => correct(eventId)));
    expect(settled.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(1);
    const reasons = settled.flatMap((outcome) => (outcome.status === "rejected" ? [errorInfoOf(outcome.reason)?.reason] : []));
    expect(reasons).toEqual(Array.from({ length: 9 }, () => "ALREADY_CORRECTED"));
    expect(await balanceOf(customerId)).toMatchObject({ available: 100n, burned: 0n });
  });

  it("the same request id for a different correction is FailedPrecondition REQUEST_ID_REUSED", async () => {
    const customerId = await customer(100n);
    const requestId = randomUUID();
    await correct(await report(customerId, 10n), requestId);
    const error = await errorOf(correct(await report(customerId, 10n), requestId));
    expect([error.code, errorInfoOf(error)?.reason]).toEqual([Code.FailedPrecondition, "REQUEST_ID_REUSED"]);
  });

  it("an overdraft burn that a later grant repaid goes back to the lot that repaid it", async () => {
    const customerId = await customer(0n, 100n);
    const eventId = await report(customerId, 25n); // 10 credits, all on the overdraft
    expect(await balanceOf(customerId)).toMatchObject({ available: -10n, burned: 10n });
    const lotId = await grant(customerId, 100n); // settles the debt of 10
    expect(await remainingOf(customerId, lotId)).toBe(90n);
    const res = await correct(eventId);
    expect(res.entries.map((entry) => [entry.kind, entry.amount, entry.grantId])).toEqual([[EntryKind.REFUND, 10n, lotId]]);
    expect(await remainingOf(customerId, lotId)).toBe(100n);
    expect(await balanceOf(customerId)).toMatchObject({ available: 100n, burned: 0n });
  });

  it("an overdraft burn partly repaid goes off the remaining debt first, then back to the lot that repaid the rest", async () => {
    const customerId = await customer(0n, 100n);
    const eventId = await report(customerId, 25n); // debt 10
    const lotId = await grant(customerId, 4n); // settles 4, debt 6
    expect(await balanceOf(customerId)).toMatchObject({ available: -6n });
    const res = await correct(eventId);
    expect(res.entries.map((entry) => [entry.amount, entry.grantId])).toEqual([[6n, ""], [4n, lotId]]);
    expect(await remainingOf(customerId, lotId)).toBe(4n);
    expect(await balanceOf(customerId)).toMatchObject({ available: 4n, burned: 0n });
  });

  it("each lot that repaid debt gets back at most what it repaid and no earlier correction gave back", async () => {
    const customerId = await customer(0n, 100n);
    const first = await report(customerId, 50n); // debt 20
    const lotA = await grant(customerId, 20n); // A repays 20 and is spent
    const second = await report(customerId, 50n); // debt 20 again
    const lotB = await grant(customerId, 200n); // B repays 20: 180
    await report(customerId, 100n); // 40 from B: 140
    expect([await remainingOf(customerId, lotA), await remainingOf(customerId, lotB)]).toEqual([0n, 140n]);
    // B settled last, so the second event's overdraft goes back to B...
    expect((await correct(second)).entries.map((entry) => [entry.amount, entry.grantId])).toEqual([[20n, lotB]]);
    // ...and the first's to A: B has had back all it repaid.
    expect((await correct(first)).entries.map((entry) => [entry.amount, entry.grantId])).toEqual([[20n, lotA]]);
    expect([await remainingOf(customerId, lotA), await remainingOf(customerId, lotB)]).toEqual([20n, 160n]);
    expect(await balanceOf(customerId)).toMatchObject({ available: 180n, burned: 40n });
  });

  it("a refund into a lot that has expired since expires again at once", async () => {
    const customerId = await customer(0n);
    const lotId = await grant(customerId, 100n, hourMs);
    const eventId = await report(customerId, 10n); // 4 from the lot
    clock.advance(2 * hourMs);
    const res = await correct(eventId);
    expect(res.entries.map((entry) => [entry.kind, entry.amount, entry.grantId])).toEqual([[EntryKind.REFUND, 4n, lotId]]);
    expect(await balanceOf(customerId)).toMatchObject({ available: 0n, burned: 0n, expired: 100n });
    const expiries = (await api.ledger.listLedgerEntries({ customerId, kinds: [EntryKind.EXPIRE] })).entries;
    expect(expiries.map((entry) => entry.amount).sort()).toEqual([4n, 96n]);
    expect(await remainingOf(customerId, lotId)).toBe(0n);
  });
});

describe("refused", () => {
  it("an unknown event is NotFound USAGE_EVENT_NOT_FOUND, to explain and to correct", async () => {
    for (const call of [() => api.admin.explainUsageEvent({ eventId: randomUUID() }), () => correct(randomUUID())]) {
      const error = await errorOf(call());
      expect([error.code, errorInfoOf(error)?.reason]).toEqual([Code.NotFound, "USAGE_EVENT_NOT_FOUND"]);
    }
  });

  it("a usage id that names no event is NotFound USAGE_EVENT_NOT_FOUND; one that is not a positive integer is InvalidArgument INVALID_ID", async () => {
    const missing = await errorOf(api.admin.explainUsageEvent({ usageId: "9223372036854775807" }));
    expect([missing.code, errorInfoOf(missing)?.reason]).toEqual([Code.NotFound, "USAGE_EVENT_NOT_FOUND"]);
    for (const usageId of ["0", "-1", "1.5", "abc", "9223372036854775808", " 7"]) {
      const error = await errorOf(api.admin.explainUsageEvent({ usageId }));
      expect([usageId, error.code, errorInfoOf(error)?.reason]).toEqual([usageId, Code.InvalidArgument, "INVALID_ID"]);
    }
  });

  it("an event id reported by another key than the one named is NotFound", async () => {
    const eventId = await report(await customer(100n), 5n);
    const error = await errorOf(api.admin.explainUsageEvent({ eventId, reporterKeyId: adminKeyId }));
    expect([error.code, errorInfoOf(error)?.reason]).toEqual([Code.NotFound, "USAGE_EVENT_NOT_FOUND"]);
  });

  it("an event id two keys reported is FailedPrecondition AMBIGUOUS_EVENT_ID until the reporter is named", async () => {
    const customerId = await customer(100n);
    const eventId = await report(customerId, 5n);
    await report(customerId, 10n, { eventId, clients: api });
    // Thunks, not promises: a second call started early would reject unobserved while the first is awaited.
    for (const call of [() => api.admin.explainUsageEvent({ eventId }), () => api.admin.correctUsageEvent({ eventId, reasonCode: "dup", requestId: randomUUID() })]) {
      const error = await errorOf(call());
      expect([error.code, errorInfoOf(error)?.reason]).toEqual([Code.FailedPrecondition, "AMBIGUOUS_EVENT_ID"]);
    }
    expect((await api.admin.explainUsageEvent({ eventId, reporterKeyId: serviceKeyId })).event?.quantity).toBe(5n);
    expect((await api.admin.explainUsageEvent({ eventId, reporterKeyId: adminKeyId })).event?.quantity).toBe(10n);
  });

  it.each([
    { name: "an unrated event", customer: false, featureKey: "chat", outcome: UsageOutcome.UNRATED },
    { name: "a shadowed event", customer: true, featureKey: "draft", outcome: UsageOutcome.SHADOWED },
  ])("correcting $name is FailedPrecondition NOT_CORRECTABLE", async (row) => {
    const customerId = row.customer ? await customer(100n) : `nobody-${randomUUID()}`;
    const eventId = await report(customerId, 3n, { featureKey: row.featureKey, outcome: row.outcome });
    const error = await errorOf(correct(eventId));
    expect([error.code, errorInfoOf(error)?.reason]).toEqual([Code.FailedPrecondition, "NOT_CORRECTABLE"]);
  });

  it.each([
    { name: "no event id", request: { eventId: "", reasonCode: "x" }, field: "event_id" },
    { name: "a reason code with capitals", request: { reasonCode: "Wrong" }, field: "reason_code" },
    { name: "no reason code", request: { reasonCode: "" }, field: "reason_code" },
    { name: "a note of 1,001 characters", request: { note: "n".repeat(1_001) }, field: "note" },
    { name: "no request id", request: { requestId: "" }, field: "request_id" },
  ])("a correction with $name is InvalidArgument", async ({ request, field }) => {
    const eventId = await report(await customer(100n), 5n);
    const error = await errorOf(api.admin.correctUsageEvent({ eventId, reasonCode: "ok", requestId: randomUUID(), ...request }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(errorInfoOf(error)?.metadata.field).toBe(field);
  });

  it("a support key may not correct: PermissionDenied", async () => {
    const eventId = await report(await customer(100n), 5n);
    const support = t.clients(await t.createKey("support"));
    const error = await errorOf(support.admin.correctUsageEvent({ eventId, reasonCode: "x", requestId: randomUUID() }));
    expect([error.code, errorInfoOf(error)?.reason]).toEqual([Code.PermissionDenied, "ROLE_NOT_ALLOWED"]);
  });
});

describe("afterwards", () => {
  it("every ledger invariant holds", async () => {
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });
});
