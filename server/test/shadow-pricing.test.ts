// The shadow pricing report (AdminService.GetShadowPricingReport), end to end over a real
// server and PostgreSQL: usage rated by the real pricing (a version with fractional rates,
// the base rates, a rate override, features in enforce, observe and off) beside a
// candidate version, per customer and feature, with totals per credit type. Every figure
// is worked out by hand below. The period is [start, end); the filters by customer,
// feature and current version (a cohort) narrow rows and totals alike; pages return every
// row once with the same totals; bad input is refused with its reason and changes nothing.
import { randomBytes, randomUUID } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { EnforcementMode, errorInfoOf, type GetShadowPricingReportRequestSchema, GrantSource, type ShadowPricingRow, type ShadowPricingTotal, UsageOutcome } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { databaseSnapshot, errorOf } from "../../test-support/snapshot.js";
import { type Clients, FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";

const hourMs = 3_600_000;
const dayMs = 24 * hourMs;
const clock = new FakeClock();
/** The period every report below reads unless it says otherwise: [start, end), a day, ending a day ago. */
const startMs = clock.ms - 2 * dayMs;
const endMs = clock.ms - dayMs;

let t: TestServer;
let c: Clients;
/** fresh makes a unique, valid id or code; the prefix fixes the order of rows (byte order). */
const fresh = (prefix: string) => `${prefix}_${randomBytes(5).toString("hex")}`;

const api = fresh("api");
const ai = fresh("ai");
const chat = fresh("chat");
const image = fresh("image");
const search = fresh("search");
const bulk = fresh("bulk");
const zero = fresh("zero");
const alice = fresh("a");
const bob = fresh("b");
const carol = fresh("c");
const dave = fresh("d");
const erin = fresh("e");
/** base: a version without rates (the features' base rates); v1: the default; v2: the candidate. */
const base = fresh("pv_base");
const v1 = fresh("pv_v1");
const v2 = fresh("pv_v2");
/** rates bulk at 2 per unit, so that erin's 2^62 units would burn 2^63 credits: one past int64. */
const v3 = fresh("pv_v3");

/** floorRate is the rounding rule of a period total: floor(sum(quantity) * credits / per_units). */
const floorRate = (quantity: bigint, credits: bigint, perUnits: bigint) => (quantity * credits) / perUnits;

interface Figures {
  customerId: string;
  featureKey: string;
  creditTypeId: string;
  events: bigint;
  quantity: bigint;
  burned: bigint;
  shadowed: bigint;
  notBilled: bigint;
  candidate: bigint;
}

/** row builds an expected row; current is always burned + shadowed + not billed. */
function row(figures: Figures) {
  const { burned, shadowed, notBilled, candidate, ...rest } = figures;
  return { ...rest, burnedCredits: burned, shadowedCredits: shadowed, notBilledCredits: notBilled, currentCredits: burned + shadowed + notBilled, candidateCredits: candidate };
}

function plainRow(r: ShadowPricingRow) {
  const { customerId, featureKey, creditTypeId, events, quantity, burnedCredits, shadowedCredits, notBilledCredits, currentCredits, candidateCredits } = r;
  return { customerId, featureKey, creditTypeId, events, quantity, burnedCredits, shadowedCredits, notBilledCredits, currentCredits, candidateCredits };
}

function plainTotal(r: ShadowPricingTotal) {
  const { creditTypeId, events, burnedCredits, shadowedCredits, notBilledCredits, currentCredits, candidateCredits } = r;
  return { creditTypeId, events, burnedCredits, shadowedCredits, notBilledCredits, currentCredits, candidateCredits };
}

/** totalOf sums expected rows of one credit type, as the response's totals must. */
function totalOf(creditTypeId: string, rows: ReturnType<typeof row>[]) {
  const mine = rows.filter((r) => r.creditTypeId === creditTypeId);
  const sum = (pick: (r: ReturnType<typeof row>) => bigint) => mine.reduce((total, r) => total + pick(r), 0n);
  return {
    creditTypeId,
    events: sum((r) => r.events),
    burnedCredits: sum((r) => r.burnedCredits),
    shadowedCredits: sum((r) => r.shadowedCredits),
    notBilledCredits: sum((r) => r.notBilledCredits),
    currentCredits: sum((r) => r.currentCredits),
    candidateCredits: sum((r) => r.candidateCredits),
  };
}

/**
 * The expected report of [start, end) against v2, worked out by hand. The real rates: chat
 * 2/5 (v1), 3/1 (base) and 7/10 (carol's override); search 1/3 (v1), 2/1 (base); image 5/2
 * (v1). The candidate v2: chat 3/4, image 1/3, search unlisted (its base rate 2 per unit).
 */
const expectedRows = [
  // Enforced. An event before the start (3 units: 6/5 burns 1, carries 1) is out, but its
  // carry is in the real figure: 2 units at the start burn (1 + 4) / 5 = 1 (carry 0), 5
  // units burn 10 / 5 = 2: 3 burned, where floor(7 * 2 / 5) is 2. The event at the end is out.
  row({ customerId: alice, featureKey: chat, creditTypeId: api, events: 2n, quantity: 7n, burned: 1n + 2n, shadowed: 0n, notBilled: 0n, candidate: floorRate(7n, 3n, 4n) }),
  // Off: recorded at v1's 5/2, not billed: floor(8 * 5 / 2) = 20 for the period (event by
  // event it would be 7 + 12); the candidate rates the same 8 units at 1/3.
  row({ customerId: alice, featureKey: image, creditTypeId: ai, events: 2n, quantity: 8n, burned: 0n, shadowed: 0n, notBilled: floorRate(8n, 5n, 2n), candidate: floorRate(8n, 1n, 3n) }),
  // Observed: 7 units shadow 7/3 = 2 (carry 1), then 5 units (at end - 1 ms, in) (1 + 5) / 3 = 2.
  row({ customerId: alice, featureKey: search, creditTypeId: api, events: 2n, quantity: 12n, burned: 0n, shadowed: 2n + 2n, notBilled: 0n, candidate: floorRate(12n, 2n, 1n) }),
  // 10 units enforced burn 20/5 = 4; then, with chat in observe for a while, 5 units shadow 10/5 = 2.
  row({ customerId: bob, featureKey: chat, creditTypeId: api, events: 2n, quantity: 15n, burned: 4n, shadowed: 2n, notBilled: 0n, candidate: floorRate(15n, 3n, 4n) }),
  // Override 7/10: 1 unit burns 7/10 = 0 (carry 7), 2 units (7 + 14) / 10 = 2; cleared, 5
  // units at v1's 2/5 burn 2. The candidate keeps the override for the 3 units it rated:
  // floor(3 * 7 / 10) = 2 for the period (event by event it would be 0 + 1).
  row({ customerId: carol, featureKey: chat, creditTypeId: api, events: 3n, quantity: 8n, burned: 0n + 2n + 2n, shadowed: 0n, notBilled: 0n, candidate: floorRate(3n, 7n, 10n) + floorRate(5n, 3n, 4n) }),
  // dave is on the base version: chat 3 per unit, search (observed) 2 per unit.
  row({ customerId: dave, featureKey: chat, creditTypeId: api, events: 1n, quantity: 2n, burned: 6n, shadowed: 0n, notBilled: 0n, candidate: floorRate(2n, 3n, 4n) }),
  row({ customerId: dave, featureKey: search, creditTypeId: api, events: 1n, quantity: 1n, burned: 0n, shadowed: 2n, notBilled: 0n, candidate: floorRate(1n, 2n, 1n) }),
];
const expectedTotals = [totalOf(ai, expectedRows), totalOf(api, expectedRows)].sort((a, b) => (a.creditTypeId < b.creditTypeId ? -1 : 1));

async function createFeature(featureKey: string, creditTypeId: string, burnRate: bigint, mode: EnforcementMode): Promise<void> {
  await c.admin.createFeature({ feature: { featureKey, displayName: featureKey, creditTypeId, burnRate }, requestId: randomUUID() });
  if (mode !== EnforcementMode.ENFORCE) await c.admin.setEnforcementMode({ featureKey, mode, reason: "test", requestId: randomUUID() });
}

async function createVersion(pricingVersionId: string, rates: [string, bigint, bigint][], makeDefault = false): Promise<void> {
  await c.admin.createPricingVersion({
    pricingVersion: { pricingVersionId, displayName: pricingVersionId, rates: rates.map(([featureKey, credits, perUnits]) => ({ featureKey, rate: { credits, perUnits } })) },
    makeDefault,
    requestId: randomUUID(),
  });
}

/** report sends one batch of events and checks each got the outcome it should. */
async function report(customerId: string, events: [string, bigint, number, UsageOutcome][]): Promise<void> {
  const res = await c.ledger.reportUsage({
    events: events.map(([featureKey, quantity, atMs]) => ({ eventId: randomUUID(), customerId, featureKey, quantity, eventTime: timestampFromMs(atMs) })),
  });
  expect(res.results.map((result) => result.outcome)).toEqual(events.map((event) => event[3]));
}

async function setMode(featureKey: string, mode: EnforcementMode): Promise<void> {
  await c.admin.setEnforcementMode({ featureKey, mode, reason: "test", requestId: randomUUID() });
}

const { BURNED, SHADOWED, NOT_BILLED, UNRATED } = UsageOutcome;

beforeAll(async () => {
  // Pricing changes are dated when they are made, and events are rated at what was in force
  // at their event time: the catalog and the pins come first, four days back.
  const reportedAtMs = clock.ms;
  clock.ms = reportedAtMs - 4 * dayMs;
  t = await startTestServer({ clock });
  c = t.clients(t.adminToken);
  for (const creditTypeId of [api, ai]) await c.admin.createCreditType({ creditType: { creditTypeId, displayName: creditTypeId, scale: 0 }, requestId: randomUUID() });
  await createFeature(chat, api, 3n, EnforcementMode.ENFORCE);
  await createFeature(search, api, 2n, EnforcementMode.OBSERVE);
  await createFeature(image, ai, 7n, EnforcementMode.OFF);
  await createFeature(bulk, ai, 1n, EnforcementMode.OFF);
  await createFeature(zero, ai, 1n, EnforcementMode.OFF);
  await createVersion(base, []);
  await createVersion(v1, [[chat, 2n, 5n], [search, 1n, 3n], [image, 5n, 2n]], true);
  await createVersion(v2, [[chat, 3n, 4n], [image, 1n, 3n]]);
  await createVersion(v3, [[bulk, 2n, 1n]]);
  // Created after v1 became the default, so pinned to it; dave then moves to the base version.
  for (const customerId of [alice, bob, carol, dave, erin]) {
    await c.admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
    await c.ledger.grant({ customerId, creditTypeId: api, amount: 1_000n, source: GrantSource.PURCHASE, reasonCode: "seed", requestId: randomUUID() });
  }
  await c.admin.moveCustomersToPricingVersion({ fromPricingVersionId: v1, toPricingVersionId: base, customerIds: [dave], reason: "test", requestId: randomUUID() });
  // carol's own rate for chat holds until 2.5 h into the period; erin's rate of nothing throughout.
  await c.admin.setRateOverride({ customerId: carol, featureKey: chat, rate: { credits: 7n, perUnits: 10n }, reason: "deal", requestId: randomUUID() });
  await c.admin.setRateOverride({ customerId: erin, featureKey: zero, rate: { credits: 0n, perUnits: 1n }, reason: "free", requestId: randomUUID() });
  clock.ms = startMs + 2 * hourMs + 30 * 60_000;
  await c.admin.setRateOverride({ customerId: carol, featureKey: chat, reason: "deal ended", requestId: randomUUID() });
  // Every event is reported now, late: each is rated as of its event time.
  clock.ms = reportedAtMs;

  await report(alice, [
    [chat, 3n, startMs - 1, BURNED],
    [chat, 2n, startMs, BURNED],
    [chat, 5n, startMs + hourMs, BURNED],
    [chat, 5n, endMs, BURNED],
    [search, 7n, startMs + 2 * hourMs, SHADOWED],
    [search, 5n, endMs - 1, SHADOWED],
    [image, 3n, startMs + 3 * hourMs, NOT_BILLED],
    [image, 5n, startMs + 4 * hourMs, NOT_BILLED],
  ]);
  // Events of a feature or a customer that does not exist are kept unrated, and left out of the report.
  await report(bob, [
    [chat, 10n, startMs + hourMs, BURNED],
    [fresh("missing"), 1n, startMs + hourMs, UNRATED],
  ]);
  await report(fresh("f_ghost"), [[chat, 1n, startMs + hourMs, UNRATED]]);
  await setMode(chat, EnforcementMode.OBSERVE);
  await report(bob, [[chat, 5n, startMs + 5 * hourMs, SHADOWED]]);
  await setMode(chat, EnforcementMode.ENFORCE);
  await report(carol, [
    [chat, 1n, startMs + hourMs, BURNED],
    [chat, 2n, startMs + 2 * hourMs, BURNED],
    [chat, 5n, startMs + 3 * hourMs, BURNED],
  ]);
  await report(dave, [
    [chat, 2n, startMs + hourMs, BURNED],
    [search, 1n, startMs + hourMs, SHADOWED],
  ]);
  // Three days ago, outside every other period: 2^62 units, not billed at bulk's base rate
  // 1; and twice 2^62 units of zero at erin's own rate of nothing, 2^63 units in all.
  await report(erin, [
    [bulk, 2n ** 62n, clock.ms - 3 * dayMs, NOT_BILLED],
    [zero, 2n ** 62n, clock.ms - 3 * dayMs, NOT_BILLED],
    [zero, 2n ** 62n, clock.ms - 3 * dayMs, NOT_BILLED],
  ]);
});
afterAll(() => t?.close());

/** Changes are fields of a report's request to set. */
type Changes = Omit<MessageInitShape<typeof GetShadowPricingReportRequestSchema>, "$typeName">;

/** request is the report of [start, end) against v2, with changes. */
function request(changes: Changes = {}) {
  return { candidatePricingVersionId: v2, startTime: timestampFromMs(startMs), endTime: timestampFromMs(endMs), ...changes };
}

async function getReport(changes: Changes = {}) {
  const res = await c.admin.getShadowPricingReport(request(changes));
  return { rows: res.rows.map(plainRow), totals: res.totals.map(plainTotal), nextPageToken: res.nextPageToken };
}

describe("the report", () => {
  it("rates each customer's usage of each feature by the real pricing and by the candidate, with totals per credit type", async () => {
    const res = await getReport();
    expect(res.rows).toEqual(expectedRows);
    expect(res.totals).toEqual(expectedTotals);
    expect(res.nextPageToken).toBe("");
  });

  it("the totals are those worked out by hand: 11 events of api credits and 2 of ai credits", () => {
    // A check of the expectations themselves, so that a wrong sum there cannot pass both sides.
    expect(expectedTotals.map((total) => [total.creditTypeId, total.events, total.burnedCredits, total.shadowedCredits, total.notBilledCredits, total.candidateCredits])).toEqual(
      [
        [ai, 2n, 0n, 0n, 20n, 2n],
        [api, 11n, 3n + 4n + 4n + 6n, 4n + 2n + 2n, 0n, 5n + 24n + 11n + 5n + 1n + 2n],
      ].sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1)),
    );
  });

  it("counts an event at the start and leaves out one just before it and one at the end", async () => {
    // alice's chat: 3 units at start - 1 ms, 2 at start, 5 at end.
    const atStart = await getReport({ featureKeys: [chat], customerIds: [alice], endTime: timestampFromMs(startMs + 1) });
    expect(atStart.rows.map((r) => [r.events, r.quantity, r.burnedCredits])).toEqual([[1n, 2n, 1n]]);
    const justBefore = await getReport({ featureKeys: [chat], customerIds: [alice], startTime: timestampFromMs(startMs - 1), endTime: timestampFromMs(startMs) });
    expect(justBefore.rows.map((r) => [r.events, r.quantity, r.burnedCredits])).toEqual([[1n, 3n, 1n]]);
    const atEnd = await getReport({ featureKeys: [chat], customerIds: [alice], startTime: timestampFromMs(endMs), endTime: timestampFromMs(endMs + 1) });
    expect(atEnd.rows.map((r) => [r.events, r.quantity, r.candidateCredits])).toEqual([[1n, 5n, floorRate(5n, 3n, 4n)]]);
  });

  it("a period with no rated usage has no rows and no totals", async () => {
    const res = await getReport({ startTime: timestampFromMs(endMs + hourMs), endTime: timestampFromMs(endMs + 2 * hourMs) });
    expect(res).toEqual({ rows: [], totals: [], nextPageToken: "" });
  });

  it("the real figures hold the carry that crossed the period's start; the candidate is the period's exact floor", async () => {
    // alice's chat at v1 against v1 itself: 3 burned, where floor(7 * 2 / 5) = 2.
    const res = await getReport({ candidatePricingVersionId: v1, customerIds: [alice], featureKeys: [chat] });
    expect(res.rows.map((r) => [r.currentCredits, r.candidateCredits])).toEqual([[3n, floorRate(7n, 2n, 5n)]]);
  });

  it("prices with the candidate's rate where it lists the feature and the base rate where it does not", async () => {
    // Against v1 itself, v1's customers come out at what v1 rated (no carry crossed these edges),
    // and dave (on the base version) at v1's rates.
    const res = await getReport({ candidatePricingVersionId: v1, customerIds: [bob, dave] });
    expect(res.rows.map((r) => [r.customerId, r.featureKey, r.currentCredits, r.candidateCredits])).toEqual([
      [bob, chat, 6n, floorRate(15n, 2n, 5n)],
      [dave, chat, 6n, floorRate(2n, 2n, 5n)],
      [dave, search, 2n, floorRate(1n, 1n, 3n)],
    ]);
    // The base version lists nothing: every feature at its burn rate per unit (chat 3, search 2).
    const atBase = await getReport({ candidatePricingVersionId: base, customerIds: [alice] });
    expect(atBase.rows.map((r) => [r.featureKey, r.candidateCredits])).toEqual([
      [chat, 7n * 3n],
      [image, 8n * 7n],
      [search, 12n * 2n],
    ]);
  });
});

describe("filters", () => {
  it("by customer ids: only their rows, and totals of only those rows", async () => {
    const res = await getReport({ customerIds: [dave, alice, dave] });
    const rows = expectedRows.filter((r) => r.customerId === alice || r.customerId === dave);
    expect(res.rows).toEqual(rows);
    expect(res.totals).toEqual([totalOf(ai, rows), totalOf(api, rows)].sort((a, b) => (a.creditTypeId < b.creditTypeId ? -1 : 1)));
  });

  it("by feature keys: only those features", async () => {
    const res = await getReport({ featureKeys: [search] });
    const rows = expectedRows.filter((r) => r.featureKey === search);
    expect(res.rows).toEqual(rows);
    expect(res.totals).toEqual([totalOf(api, rows)]);
  });

  it("by current version: only the cohort pinned to it now", async () => {
    const onV1 = await getReport({ currentPricingVersionId: v1 });
    expect(onV1.rows).toEqual(expectedRows.filter((r) => r.customerId !== dave));
    const onBase = await getReport({ currentPricingVersionId: base });
    const rows = expectedRows.filter((r) => r.customerId === dave);
    expect(onBase.rows).toEqual(rows);
    expect(onBase.totals).toEqual([totalOf(api, rows)]);
  });

  it("all together: the rows every filter keeps", async () => {
    const res = await getReport({ customerIds: [alice, dave], featureKeys: [chat], currentPricingVersionId: v1 });
    expect(res.rows).toEqual(expectedRows.filter((r) => r.customerId === alice && r.featureKey === chat));
  });

  it("a customer or feature that does not exist matches nothing", async () => {
    expect(await getReport({ customerIds: [fresh("nobody")] })).toEqual({ rows: [], totals: [], nextPageToken: "" });
    expect(await getReport({ featureKeys: [fresh("nothing")] })).toEqual({ rows: [], totals: [], nextPageToken: "" });
  });
});

describe("pages", () => {
  it.each([1, 2, 3, 7])("of %i rows return every row once, in order, each with the totals of the whole report", async (pageSize) => {
    const seen: ReturnType<typeof plainRow>[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await getReport({ pageSize, pageToken });
      expect(page.rows.length).toBeLessThanOrEqual(pageSize);
      expect(page.totals).toEqual(expectedTotals);
      seen.push(...page.rows);
      pageToken = page.nextPageToken;
      pages++;
      expect(pages).toBeLessThanOrEqual(expectedRows.length);
    } while (pageToken !== "");
    expect(seen).toEqual(expectedRows);
    expect(pages).toBe(Math.max(1, Math.ceil(expectedRows.length / pageSize)));
  });

  it("a token goes with its request: another candidate, period or filter refuses it", async () => {
    const first = await getReport({ pageSize: 2 });
    expect(first.nextPageToken).not.toBe("");
    for (const other of [
      { candidatePricingVersionId: v1 },
      { endTime: timestampFromMs(endMs + 1) },
      { customerIds: [alice] },
      { featureKeys: [chat] },
      { currentPricingVersionId: v1 },
    ]) {
      const error = await errorOf(c.admin.getShadowPricingReport(request({ pageSize: 2, pageToken: first.nextPageToken, ...other })));
      expect([error.code, errorInfoOf(error)?.reason]).toEqual([Code.InvalidArgument, "INVALID_PAGE_TOKEN"]);
    }
    // The page size may change between pages.
    const next = await getReport({ pageSize: 3, pageToken: first.nextPageToken });
    expect(next.rows).toEqual(expectedRows.slice(2, 5));
  });
});

describe("amounts past int64", () => {
  const bulkPeriod = { featureKeys: [bulk], startTime: timestampFromMs(clock.ms - 3 * dayMs), endTime: timestampFromMs(clock.ms - 3 * dayMs + 1) };

  it("up to the int64 range are answered exactly", async () => {
    // 2^62 units at 1 per unit (not billed) and at the candidate's base rate 1.
    const res = await getReport(bulkPeriod);
    expect(res.rows.map((r) => [r.quantity, r.notBilledCredits, r.candidateCredits])).toEqual([[2n ** 62n, 2n ** 62n, 2n ** 62n]]);
  });

  it("beyond it are refused with AMOUNT_OUT_OF_RANGE", async () => {
    // 2^62 units at v3's 2 per unit is 2^63: one past the largest int64.
    const error = await errorOf(c.admin.getShadowPricingReport(request({ ...bulkPeriod, candidatePricingVersionId: v3 })));
    expect([error.code, errorInfoOf(error)?.reason]).toEqual([Code.InvalidArgument, "AMOUNT_OUT_OF_RANGE"]);
    expect(error.rawMessage).toContain("narrow the period");
  });

  it("a quantity beyond it is refused too, on every page, though its credits are nothing", async () => {
    // erin's zero: 2^63 units at 0 credits. The first page of one row holds only bulk's row.
    const error = await errorOf(c.admin.getShadowPricingReport(request({ ...bulkPeriod, featureKeys: [bulk, zero], pageSize: 1 })));
    expect([error.code, errorInfoOf(error)?.reason]).toEqual([Code.InvalidArgument, "AMOUNT_OUT_OF_RANGE"]);
  });
});

describe("bad input is refused with its reason and changes nothing", () => {
  const tooLong = timestampFromMs(startMs + 366 * dayMs + 1);
  const badToken = Buffer.from(`s1\nnot-this-request\n${alice}\n${chat}`).toString("base64url");
  const cases: [string, () => Changes, Code, string][] = [
    ["no candidate", () => ({ candidatePricingVersionId: "" }), Code.InvalidArgument, "MISSING_FIELD"],
    ["a malformed candidate", () => ({ candidatePricingVersionId: "V2!" }), Code.InvalidArgument, "INVALID_CODE"],
    ["an unknown candidate", () => ({ candidatePricingVersionId: fresh("pv_unknown") }), Code.NotFound, "PRICING_VERSION_NOT_FOUND"],
    ["an unknown current version", () => ({ currentPricingVersionId: fresh("pv_unknown") }), Code.NotFound, "PRICING_VERSION_NOT_FOUND"],
    ["no start", () => ({ startTime: undefined }), Code.InvalidArgument, "INVALID_PERIOD"],
    ["no end", () => ({ endTime: undefined }), Code.InvalidArgument, "INVALID_PERIOD"],
    ["an end at the start", () => ({ endTime: timestampFromMs(startMs) }), Code.InvalidArgument, "INVALID_PERIOD"],
    ["an end before the start", () => ({ endTime: timestampFromMs(startMs - 1) }), Code.InvalidArgument, "INVALID_PERIOD"],
    ["a period over 366 days", () => ({ endTime: tooLong }), Code.InvalidArgument, "INVALID_PERIOD"],
    ["a start outside the timestamp range", () => ({ startTime: { seconds: -62135596801n, nanos: 0 } }), Code.InvalidArgument, "INVALID_TIME"],
    ["1,001 customer ids", () => ({ customerIds: Array.from({ length: 1_001 }, (_, i) => `cust-${i}`) }), Code.InvalidArgument, "TOO_MANY_CUSTOMER_IDS"],
    ["a malformed customer id", () => ({ customerIds: ["two words"] }), Code.InvalidArgument, "INVALID_ID"],
    ["1,001 feature keys", () => ({ featureKeys: Array.from({ length: 1_001 }, (_, i) => `feature-${i}`) }), Code.InvalidArgument, "TOO_MANY_FEATURE_KEYS"],
    ["a malformed feature key", () => ({ featureKeys: ["Chat"] }), Code.InvalidArgument, "INVALID_CODE"],
    ["a page size over 1,000", () => ({ pageSize: 1_001 }), Code.InvalidArgument, "INVALID_PAGE_SIZE"],
    ["a page token that is not one", () => ({ pageToken: "not-a-token" }), Code.InvalidArgument, "INVALID_PAGE_TOKEN"],
    ["a page token of another request", () => ({ pageToken: badToken }), Code.InvalidArgument, "INVALID_PAGE_TOKEN"],
  ];

  it.each(cases)("%s", async (_name, changes, code, reason) => {
    const before = await snapshot();
    const error = await errorOf(c.admin.getShadowPricingReport(request(changes())));
    expect([Code[error.code], errorInfoOf(error)?.reason]).toEqual([Code[code], reason]);
    expect(await snapshot()).toEqual(before);
  });

  it("a period of exactly 366 days is accepted", async () => {
    const res = await getReport({ startTime: timestampFromMs(endMs - 366 * dayMs), customerIds: [bob] });
    expect(res.rows).toEqual(expectedRows.filter((r) => r.customerId === bob));
  });

  async function snapshot(): Promise<Record<string, unknown>> {
    const rows = async (sql: string) => (await t.database.pool.query(sql)).rows;
    return {
      ...(await databaseSnapshot(t.database.pool)),
      usage: await rows("select usage_id, status, credits::text from usage_events order by usage_id"),
      shadows: await rows("select count(*)::int as n from shadow_entries"),
      audit: await rows("select count(*)::int as n from audit_log"),
      pins: await rows("select customer_id, pricing_version_id from customers order by 1"),
    };
  }
});
