// The reads the admin UI and the customer's own view are built on, through the public
// clients on real PostgreSQL and a fake clock: GetCaller (and the grant reason codes it
// lists, which support keys' grants must use), ListReservations, GetUsageSummary,
// GetBalanceForecast, SearchCustomers, ListRateOverrides, and ExplainUsageEvent for a
// customer key. Each with figures worked out by hand, who may call it (a customer key
// reads its own customer only, answered NotFound for any other), and the bad input it
// refuses without changing anything.
import { randomUUID } from "node:crypto";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { EntryKind, errorInfoOf, GrantSource, type Reservation, ReservationStatus, Role, UsageGranularity, UsageOutcome } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invariantViolations } from "../../test-support/invariants.js";
import { type Clients, FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";
import { databaseSnapshot, errorOf } from "../../test-support/snapshot.js";

const credits = "credits";
const tokens = "tokens";
const dayMs = 86_400_000;
const hourMs = 3_600_000;
/** This deployment's grant reason codes (BURNDOWN_GRANT_REASON_CODES), not the default list. */
const reasonCodes = ["goodwill", "outage_credit"];

let t: TestServer;
let clock: FakeClock;
let admin: Clients;
let service: Clients;
let support: Clients;
let serviceKeyId: string;

const keyIdOf = (token: string) => token.split("_")[1];
const at = (iso: string) => Date.parse(iso);
const isoOf = (timestamp: { seconds: bigint; nanos: number } | undefined) => (timestamp === undefined ? undefined : new Date(timestampMs(timestamp as never)).toISOString());

/** customerKey makes a customer key for an existing customer and returns clients with it. */
async function customerKey(customerId: string, name = "portal"): Promise<Clients> {
  const created = await admin.admin.createApiKey({ name, role: Role.CUSTOMER, customerId, requestId: randomUUID() });
  return t.clients(created.token);
}

async function grant(customerId: string, amount: bigint, options: { creditTypeId?: string; expireAtMs?: number; priority?: number } = {}): Promise<void> {
  await admin.ledger.grant({
    customerId,
    creditTypeId: options.creditTypeId ?? credits,
    amount,
    source: GrantSource.PURCHASE,
    reasonCode: "purchase",
    priority: options.priority ?? 0,
    expireTime: options.expireAtMs === undefined ? undefined : timestampFromMs(options.expireAtMs),
    requestId: randomUUID(),
  });
}

async function burnCredits(customerId: string, amount: bigint): Promise<void> {
  await service.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId: credits, amount } }, requestId: randomUUID() });
}

/** report sends one usage event with the service key at an event time; it must burn. */
async function report(customerId: string, featureKey: string, quantity: bigint, eventIso: string, clients = service, eventId: string = randomUUID()): Promise<string> {
  const res = await clients.ledger.reportUsage({ events: [{ eventId, customerId, featureKey, quantity, eventTime: timestampFromMs(at(eventIso)) }] });
  expect(res.results.map((result) => result.outcome)).toEqual([UsageOutcome.BURNED]);
  return eventId;
}

/** refused checks that a call fails with a code and reason (and field, when given), and that nothing changed. */
async function refused(call: () => Promise<unknown>, code: Code, reason: string, metadata?: Record<string, string>): Promise<void> {
  const before = await databaseSnapshot(t.database.pool);
  const error = await errorOf(call());
  expect([Code[error.code], errorInfoOf(error)?.reason]).toEqual([Code[code], reason]);
  if (metadata !== undefined) expect(errorInfoOf(error)?.metadata).toEqual(metadata);
  expect(await databaseSnapshot(t.database.pool)).toEqual(before);
}

beforeAll(async () => {
  clock = new FakeClock(at("2030-01-07T06:00:00Z"));
  t = await startTestServer({ clock, grantReasonCodes: reasonCodes });
  admin = t.clients(t.adminToken);
  const serviceToken = await t.createKey("service");
  service = t.clients(serviceToken);
  serviceKeyId = keyIdOf(serviceToken);
  support = t.clients(await t.createKey("support", 500n));
  await admin.admin.createCreditType({ creditType: { creditTypeId: credits, displayName: "Credits", scale: 0 }, requestId: randomUUID() });
  await admin.admin.createCreditType({ creditType: { creditTypeId: tokens, displayName: "Tokens", scale: 0 }, requestId: randomUUID() });
  for (const [featureKey, creditTypeId, burnRate] of [["chat", credits, 2n], ["image", credits, 5n], ["embed", tokens, 1n]] as const) {
    await admin.admin.createFeature({ feature: { featureKey, displayName: featureKey, creditTypeId, burnRate }, requestId: randomUUID() });
  }
});
afterAll(async () => t?.close());

describe("GetCaller", () => {
  it("describes each kind of key: id, name, role, a support key's grant limit, a customer key's customer, and the deployment's reason codes", async () => {
    await admin.admin.createCustomer({ customer: { customerId: "caller-own" }, requestId: randomUUID() });
    const portal = await customerKey("caller-own", "caller portal");
    const serviceToken = await t.createKey("service");
    const supportToken = await t.createKey("support", 750n);
    const described = async (clients: Clients) => {
      const res = await clients.ledger.getCaller({});
      return { keyId: res.keyId, name: res.name, role: res.role, grantLimit: res.grantLimit, customerId: res.customerId, grantReasonCodes: res.grantReasonCodes };
    };
    const portalKeyId = (await admin.admin.listApiKeys({})).apiKeys.find((key) => key.name === "caller portal")!.keyId;
    expect(await described(admin)).toEqual({ keyId: keyIdOf(t.adminToken), name: "configured admin", role: Role.ADMIN, grantLimit: 0n, customerId: "", grantReasonCodes: reasonCodes });
    expect(await described(t.clients(serviceToken))).toEqual({ keyId: keyIdOf(serviceToken), name: "service key", role: Role.SERVICE, grantLimit: 0n, customerId: "", grantReasonCodes: reasonCodes });
    expect(await described(t.clients(supportToken))).toEqual({ keyId: keyIdOf(supportToken), name: "support key", role: Role.SUPPORT, grantLimit: 750n, customerId: "", grantReasonCodes: reasonCodes });
    expect(await described(portal)).toEqual({ keyId: portalKeyId, name: "caller portal", role: Role.CUSTOMER, grantLimit: 0n, customerId: "caller-own", grantReasonCodes: reasonCodes });
  });

  it("needs a key: Unauthenticated MISSING_API_KEY without one", async () => {
    const error = await errorOf(t.clients(null).ledger.getCaller({}));
    expect([error.code, errorInfoOf(error)?.reason]).toEqual([Code.Unauthenticated, "MISSING_API_KEY"]);
  });
});

describe("grant reason codes", () => {
  const grantWith = (clients: Clients, customerId: string, reasonCode: string) =>
    clients.ledger.grant({ customerId, creditTypeId: credits, amount: 100n, source: GrantSource.SUPPORT, reasonCode, requestId: randomUUID() });

  it("a support key's grant with a reason code off the deployment's list is InvalidArgument INVALID_REASON_CODE and changes nothing", async () => {
    // "promotion" is on the default list, but not on this deployment's.
    for (const reasonCode of ["promotion", "purchase"]) {
      await refused(() => grantWith(support, "reasons-support", reasonCode), Code.InvalidArgument, "INVALID_REASON_CODE", { field: "reason_code" });
    }
    const error = await errorOf(grantWith(support, "reasons-support", "promotion"));
    // The reason-code list was seeded from this deployment's configured codes.
    expect(error.rawMessage).toBe('reason_code: "promotion" is not an enabled reason code (ListReasonCodes)');
    // Refused as invalid before its amount is weighed against the key's limit.
    await refused(
      () => support.ledger.grant({ customerId: "reasons-support", creditTypeId: credits, amount: 501n, source: GrantSource.SUPPORT, reasonCode: "nope", requestId: randomUUID() }),
      Code.InvalidArgument,
      "INVALID_REASON_CODE",
    );
  });

  it("a support key may grant with a listed code; service and admin keys with any code", async () => {
    for (const reasonCode of reasonCodes) expect((await grantWith(support, "reasons-support", reasonCode)).balance?.available).toBeGreaterThan(0n);
    expect((await grantWith(service, "reasons-service", "promotion")).balance?.available).toBe(100n);
    expect((await grantWith(admin, "reasons-admin", "anything_else")).balance?.available).toBe(100n);
    expect((await admin.ledger.getBalance({ customerId: "reasons-support" })).balances[0].available).toBe(200n);
  });
});

describe("GetUsageSummary", () => {
  // Written on Monday 2030-01-07 at 06:00 UTC. Burns, by the time they count at:
  //   Sat 01-05 10:00  event chat ×3 = 6
  //   Sun 01-06 08:00  event chat ×10 = 20, corrected on Monday (refund 20: it counts on Sunday)
  //   Sun 01-06 23:59:59.999  event chat ×1 = 2           (the last ms of a day and of a week)
  //   Mon 01-07 00:00  event chat ×2 = 4                  (the first ms of a day and of a week)
  //   Mon 01-07 01:00  event image ×1 = 5
  //   Mon 01-07 02:00  event embed ×9 = 9 tokens
  //   Mon 01-07 06:00  Burn of image ×2 = 10; Burn of 7 plain credits (no feature);
  //                    a reservation of chat ×3 (6) committed at 4; one of 50 credits released.
  // Another customer's burns never show.
  const customerId = "summer";
  let fiveEventId = "";
  let portal: Clients;

  beforeAll(async () => {
    clock.ms = at("2030-01-07T06:00:00Z");
    await grant(customerId, 10_000n);
    await grant(customerId, 100n, { creditTypeId: tokens });
    await grant("summer-other", 1_000n);
    await report("summer-other", "chat", 50n, "2030-01-06T12:00:00Z");
    await report(customerId, "chat", 3n, "2030-01-05T10:00:00Z");
    fiveEventId = await report(customerId, "chat", 10n, "2030-01-06T08:00:00Z");
    await report(customerId, "chat", 1n, "2030-01-06T23:59:59.999Z");
    await report(customerId, "chat", 2n, "2030-01-07T00:00:00Z");
    await report(customerId, "image", 1n, "2030-01-07T01:00:00Z");
    await report(customerId, "embed", 9n, "2030-01-07T02:00:00Z");
    await service.ledger.burn({ customerId, cost: { case: "usage", value: { featureKey: "image", quantity: 2n } }, requestId: randomUUID() });
    await burnCredits(customerId, 7n);
    const held = await service.ledger.reserve({ customerId, cost: { case: "usage", value: { featureKey: "chat", quantity: 3n } }, requestId: randomUUID() });
    expect(held.reservation?.amount).toBe(6n);
    await service.ledger.commit({ reservationId: held.reservation!.reservationId, amount: 4n, requestId: randomUUID() });
    const released = await service.ledger.reserve({ customerId, cost: { case: "credits", value: { creditTypeId: credits, amount: 50n } }, requestId: randomUUID() });
    await service.ledger.release({ reservationId: released.reservation!.reservationId, requestId: randomUUID() });
    const correction = await admin.admin.correctUsageEvent({ eventId: fiveEventId, reasonCode: "wrong_rate", requestId: randomUUID() });
    expect(correction.correction?.credits).toBe(20n);
    clock.advance(hourMs); // now Monday 07:00: the 06:00 burns are inside a period that ends now
    portal = await customerKey(customerId);
  });

  const summarize = async (clients: Clients, request: { start: string; end?: string; granularity: UsageGranularity; creditTypeId?: string; customerId?: string }) => {
    const res = await clients.ledger.getUsageSummary({
      customerId: request.customerId ?? customerId,
      creditTypeId: request.creditTypeId ?? "",
      startTime: timestampFromMs(at(request.start)),
      endTime: request.end === undefined ? undefined : timestampFromMs(at(request.end)),
      granularity: request.granularity,
    });
    return {
      startTime: isoOf(res.startTime),
      endTime: isoOf(res.endTime),
      buckets: res.buckets.map((bucket) => [isoOf(bucket.startTime), bucket.creditTypeId, bucket.featureKey, bucket.credits, bucket.count]),
    };
  };

  it("by day: each UTC day's burns per credit type and feature, net of corrections, from the start's day to now", async () => {
    expect(await summarize(admin, { start: "2030-01-05T10:00:00Z", granularity: UsageGranularity.DAY })).toEqual({
      startTime: "2030-01-05T00:00:00.000Z",
      endTime: "2030-01-07T07:00:00.000Z",
      buckets: [
        ["2030-01-05T00:00:00.000Z", credits, "chat", 6n, 1n],
        // 20 + 2 - 20: the corrected event still counts as one of the two burns.
        ["2030-01-06T00:00:00.000Z", credits, "chat", 2n, 2n],
        ["2030-01-07T00:00:00.000Z", credits, "", 7n, 1n],
        // the event of 4 and the commit of 4.
        ["2030-01-07T00:00:00.000Z", credits, "chat", 8n, 2n],
        // the event of 5 and the Burn of image ×2.
        ["2030-01-07T00:00:00.000Z", credits, "image", 15n, 2n],
        ["2030-01-07T00:00:00.000Z", tokens, "embed", 9n, 1n],
      ],
    });
  });

  it("by week: weeks start on Monday 00:00 UTC, so Sunday's last millisecond and Monday's first fall in different weeks", async () => {
    expect(await summarize(admin, { start: "2030-01-05T10:00:00Z", granularity: UsageGranularity.WEEK })).toEqual({
      startTime: "2029-12-31T00:00:00.000Z",
      endTime: "2030-01-07T07:00:00.000Z",
      buckets: [
        ["2029-12-31T00:00:00.000Z", credits, "chat", 8n, 3n],
        ["2030-01-07T00:00:00.000Z", credits, "", 7n, 1n],
        ["2030-01-07T00:00:00.000Z", credits, "chat", 8n, 2n],
        ["2030-01-07T00:00:00.000Z", credits, "image", 15n, 2n],
        ["2030-01-07T00:00:00.000Z", tokens, "embed", 9n, 1n],
      ],
    });
  });

  it("a correction counts in its event's bucket, whether the period reaches the correction's time or not", async () => {
    // Sunday only: the refund (made on Monday, after the period) still nets Sunday's event out.
    expect((await summarize(admin, { start: "2030-01-06T00:00:00Z", end: "2030-01-07T00:00:00Z", granularity: UsageGranularity.DAY })).buckets).toEqual([
      ["2030-01-06T00:00:00.000Z", credits, "chat", 2n, 2n],
    ]);
    // Monday's first hour: the refund, made on Monday, takes nothing from it; the end is exclusive (01:00's image is out).
    expect(await summarize(admin, { start: "2030-01-07T00:00:00Z", end: "2030-01-07T01:00:00Z", granularity: UsageGranularity.DAY })).toEqual({
      startTime: "2030-01-07T00:00:00.000Z",
      endTime: "2030-01-07T01:00:00.000Z",
      buckets: [["2030-01-07T00:00:00.000Z", credits, "chat", 4n, 1n]],
    });
  });

  it("a credit type filter keeps that credit type only", async () => {
    expect((await summarize(admin, { start: "2030-01-01T00:00:00Z", granularity: UsageGranularity.WEEK, creditTypeId: tokens })).buckets).toEqual([
      ["2030-01-07T00:00:00.000Z", tokens, "embed", 9n, 1n],
    ]);
  });

  it("a period with no burns has no buckets", async () => {
    expect((await summarize(admin, { start: "2029-12-01T00:00:00Z", end: "2029-12-02T00:00:00Z", granularity: UsageGranularity.DAY })).buckets).toEqual([]);
  });

  it("a customer key reads its own customer's summary, and any other customer, existing or not, is NotFound CUSTOMER_NOT_FOUND", async () => {
    expect(await summarize(portal, { start: "2030-01-05T10:00:00Z", granularity: UsageGranularity.WEEK })).toEqual(
      await summarize(support, { start: "2030-01-05T10:00:00Z", granularity: UsageGranularity.WEEK }),
    );
    for (const other of ["summer-other", "nobody-at-all"]) {
      await refused(() => summarize(portal, { customerId: other, start: "2030-01-05T00:00:00Z", granularity: UsageGranularity.DAY }), Code.NotFound, "CUSTOMER_NOT_FOUND", {
        customer_id: other,
      });
    }
    await refused(() => summarize(admin, { customerId: "nobody-at-all", start: "2030-01-05T00:00:00Z", granularity: UsageGranularity.DAY }), Code.NotFound, "CUSTOMER_NOT_FOUND");
  });

  it("a period of exactly 400 buckets is allowed, and its start is rounded down first", async () => {
    const days = await summarize(admin, { start: "2028-12-03T00:00:00Z", end: "2030-01-07T00:00:00Z", granularity: UsageGranularity.DAY });
    expect(days.buckets.map((bucket) => bucket[0])).toEqual(["2030-01-05T00:00:00.000Z", "2030-01-06T00:00:00.000Z"]);
    // 400 weeks from a Thursday: rounded down to its Monday, 2022-05-09.
    const weeks = await summarize(admin, { start: "2022-05-12T13:00:00Z", end: "2030-01-07T00:00:00Z", granularity: UsageGranularity.WEEK });
    expect(weeks.startTime).toBe("2022-05-09T00:00:00.000Z");
  });

  it("refuses a bad period or granularity with its reason, and changes nothing", async () => {
    const request = (over: Record<string, unknown>) => () =>
      admin.ledger.getUsageSummary({ customerId, startTime: timestampFromMs(at("2030-01-05T00:00:00Z")), granularity: UsageGranularity.DAY, ...over });
    const cases: [string, Record<string, unknown>, string, string][] = [
      ["no granularity", { granularity: UsageGranularity.UNSPECIFIED }, "INVALID_GRANULARITY", "granularity"],
      ["an unknown granularity", { granularity: 99 }, "INVALID_GRANULARITY", "granularity"],
      ["no start time", { startTime: undefined }, "MISSING_FIELD", "start_time"],
      ["an end equal to the start", { endTime: timestampFromMs(at("2030-01-05T00:00:00Z")) }, "INVALID_PERIOD", "end_time"],
      ["an end before the start", { endTime: timestampFromMs(at("2030-01-04T00:00:00Z")) }, "INVALID_PERIOD", "end_time"],
      ["a start after now, with no end", { startTime: timestampFromMs(at("2030-01-08T00:00:00Z")) }, "INVALID_PERIOD", "start_time"],
      ["401 days", { startTime: timestampFromMs(at("2028-12-02T00:00:00Z")), endTime: timestampFromMs(at("2030-01-07T00:00:00Z")) }, "INVALID_PERIOD", "start_time"],
      // 400 days from a start rounded down to its day: 401 buckets.
      ["400 days from mid-day", { startTime: timestampFromMs(at("2028-12-03T00:00:01Z")), endTime: timestampFromMs(at("2030-01-07T00:00:01Z")) }, "INVALID_PERIOD", "start_time"],
      ["401 weeks", { startTime: timestampFromMs(at("2022-05-08T23:59:59.999Z")), endTime: timestampFromMs(at("2030-01-07T00:00:00Z")), granularity: UsageGranularity.WEEK }, "INVALID_PERIOD", "start_time"],
      ["the whole timestamp range", { startTime: { seconds: -62135596800n, nanos: 0 } }, "INVALID_PERIOD", "start_time"],
      ["a start time with nanos out of range", { startTime: { seconds: 0n, nanos: -1 } }, "INVALID_TIME", "start_time"],
      ["an empty customer id", { customerId: "" }, "MISSING_FIELD", "customer_id"],
      ["a credit type id that is not a code", { creditTypeId: "Credits" }, "INVALID_CODE", "credit_type_id"],
    ];
    for (const [name, over, reason, field] of cases) {
      await expect(refused(request(over), Code.InvalidArgument, reason, { field }), name).resolves.toBeUndefined();
    }
  });
});

describe("GetBalanceForecast", () => {
  // T0 = Friday 2030-02-01 00:00 UTC. Grants at T0; burns at T0 + 1 day; forecasts at T0 + 2 days.
  const t0 = at("2030-02-01T00:00:00Z");
  let portal: Clients;

  beforeAll(async () => {
    clock.ms = t0;
    // fc: lots A 100 (expires T0+20d), C 11 (expires T0+300d), B 50 (never); 40 tokens expiring at T0+10d, never burned.
    await grant("fc", 100n, { expireAtMs: t0 + 20 * dayMs });
    await grant("fc", 11n, { expireAtMs: t0 + 300 * dayMs });
    await grant("fc", 50n);
    await grant("fc", 40n, { creditTypeId: tokens, expireAtMs: t0 + 10 * dayMs });
    for (const [customerId, amount] of [["od-pos", 50n], ["od-neg", 10n]] as const) {
      await admin.admin.createCustomer({ customer: { customerId, overdraftLimits: [{ creditTypeId: credits, amount: 100n }] }, requestId: randomUUID() });
      await grant(customerId, amount);
    }
    clock.advance(dayMs);
    await burnCredits("fc", 30n); // from A, the earliest to expire: A has 70 left
    await burnCredits("od-pos", 14n);
    await burnCredits("od-neg", 40n); // 10 from the lot, 30 on the overdraft
    clock.advance(dayMs);
    portal = await customerKey("fc");
  });

  const forecastOf = async (clients: Clients, customerId: string, lookbackDays = 0) => {
    const res = await clients.ledger.getBalanceForecast({ customerId, lookbackDays });
    return {
      lookbackDays: res.lookbackDays,
      forecastTime: isoOf(res.forecastTime),
      forecasts: res.forecasts.map((f) => ({
        creditTypeId: f.creditTypeId,
        available: f.available,
        burnedInLookback: f.burnedInLookback,
        dailyBurn: f.dailyBurn,
        emptyTime: isoOf(f.emptyTime),
        daysUntilEmpty: f.daysUntilEmpty,
        expiringUnused: f.expiringUnused,
      })),
    };
  };

  it("spends the recent daily burn from the lots in burn order, lets what is left of a lot expire, and says when the balance is empty, to the millisecond", async () => {
    // 30 burned over 14 days: 3 a day (rounded up). From T0+2d: A (70) loses 54 to burn
    // by its expiry 18 days later and 16 expire unused; then C (11, expiring long after)
    // and B (50): 61 at 3 a day, 20 1/3 days. Empty at T0+2d + 38 1/3 days.
    const emptyMs = t0 + 2 * dayMs + 18 * dayMs + (61 * dayMs) / 3;
    expect(await forecastOf(admin, "fc")).toEqual({
      lookbackDays: 14,
      forecastTime: "2030-02-03T00:00:00.000Z",
      forecasts: [
        { creditTypeId: credits, available: 131n, burnedInLookback: 30n, dailyBurn: 3n, emptyTime: new Date(emptyMs).toISOString(), daysUntilEmpty: 38, expiringUnused: 16n },
        // Nothing burns: no empty time, and the whole lot expires unused.
        { creditTypeId: tokens, available: 40n, burnedInLookback: 0n, dailyBurn: 0n, emptyTime: undefined, daysUntilEmpty: -1, expiringUnused: 40n },
      ],
    });
    expect(new Date(emptyMs).toISOString()).toBe("2030-03-13T08:00:00.000Z");
  });

  it("measures the rate over the lookback asked for", async () => {
    // 30 over 30 days is 1 a day: A loses 18 to burn by its expiry and 52 expire; C and B last 61 more days.
    const forecast = (await forecastOf(admin, "fc", 30)).forecasts[0];
    expect(forecast).toMatchObject({ burnedInLookback: 30n, dailyBurn: 1n, daysUntilEmpty: 79, expiringUnused: 52n });
  });

  it("counts a balance as empty at zero, not at its overdraft limit; one already below zero is empty now", async () => {
    // od-pos: 36 left, 14 burned over 14 days: 1 a day, 36 days (not 136 with the overdraft).
    expect((await forecastOf(admin, "od-pos")).forecasts).toEqual([
      { creditTypeId: credits, available: 36n, burnedInLookback: 14n, dailyBurn: 1n, emptyTime: "2030-03-11T00:00:00.000Z", daysUntilEmpty: 36, expiringUnused: 0n },
    ]);
    expect((await forecastOf(admin, "od-neg")).forecasts).toEqual([
      { creditTypeId: credits, available: -30n, burnedInLookback: 40n, dailyBurn: 3n, emptyTime: "2030-02-03T00:00:00.000Z", daysUntilEmpty: 0, expiringUnused: 0n },
    ]);
  });

  it("a lookback that ends before the last burn sees no burn: no empty time", async () => {
    clock.advance(1); // the burns were at T0+1d exactly; a day's lookback now starts 1 ms after them
    expect((await forecastOf(admin, "od-pos", 1)).forecasts).toEqual([
      { creditTypeId: credits, available: 36n, burnedInLookback: 0n, dailyBurn: 0n, emptyTime: undefined, daysUntilEmpty: -1, expiringUnused: 0n },
    ]);
    clock.advance(-1);
  });

  it("a customer key forecasts its own customer; any other customer, existing or not, is NotFound CUSTOMER_NOT_FOUND", async () => {
    expect(await forecastOf(portal, "fc")).toEqual(await forecastOf(support, "fc"));
    for (const other of ["od-pos", "nobody-at-all"]) {
      await refused(() => forecastOf(portal, other), Code.NotFound, "CUSTOMER_NOT_FOUND", { customer_id: other });
    }
    await refused(() => forecastOf(service, "nobody-at-all"), Code.NotFound, "CUSTOMER_NOT_FOUND");
  });

  it("takes a lookback of 1 to 90 days (0 is 14); anything else is InvalidArgument INVALID_LOOKBACK", async () => {
    expect((await forecastOf(admin, "fc", 90)).lookbackDays).toBe(90);
    for (const lookbackDays of [-1, 91, 2 ** 31 - 1]) {
      await refused(() => forecastOf(admin, "fc", lookbackDays), Code.InvalidArgument, "INVALID_LOOKBACK", { field: "lookback_days" });
    }
  });
});

describe("ListReservations", () => {
  const customerId = "resv";
  /** r[0..4]: reservations of 1..5 credits in that order; r[1] committed, r[3] released. */
  const r: string[] = [];
  let portal: Clients;

  beforeAll(async () => {
    clock.ms = at("2030-02-10T00:00:00Z");
    await grant(customerId, 1_000n);
    await grant("resv-other", 1_000n);
    for (const amount of [1n, 2n, 3n, 4n, 5n]) {
      const res = await service.ledger.reserve({ customerId, cost: { case: "credits", value: { creditTypeId: credits, amount } }, requestId: randomUUID() });
      r.push(res.reservation!.reservationId);
    }
    await service.ledger.reserve({ customerId: "resv-other", cost: { case: "credits", value: { creditTypeId: credits, amount: 9n } }, requestId: randomUUID() });
    await service.ledger.commit({ reservationId: r[1], amount: 2n, requestId: randomUUID() });
    await service.ledger.release({ reservationId: r[3], requestId: randomUUID() });
    portal = await customerKey(customerId);
  });

  const shape = (reservation: Reservation) => [reservation.reservationId, reservation.amount, ReservationStatus[reservation.status]];

  async function pages(clients: Clients, request: { includeResolved?: boolean; pageSize: number }) {
    const seen: (string | bigint)[][][] = [];
    let pageToken = "";
    for (let page = 0; page < 20; page++) {
      const res = await clients.ledger.listReservations({ customerId, ...request, pageToken });
      seen.push(res.reservations.map(shape));
      pageToken = res.nextPageToken;
      if (pageToken === "") return seen;
    }
    throw new Error("paging did not end within 20 pages");
  }

  it("lists only the held reservations by default, newest first", async () => {
    const res = await admin.ledger.listReservations({ customerId });
    expect(res.reservations.map(shape)).toEqual([
      [r[4], 5n, "HELD"],
      [r[2], 3n, "HELD"],
      [r[0], 1n, "HELD"],
    ]);
    expect(res.nextPageToken).toBe("");
    expect(res.reservations[0]).toMatchObject({ customerId, creditTypeId: credits, featureKey: "", expireTime: timestampFromMs(clock.ms + 5 * 60_000) });
  });

  it("with include_resolved, lists every one, committed and released too", async () => {
    expect((await admin.ledger.listReservations({ customerId, includeResolved: true })).reservations.map(shape)).toEqual([
      [r[4], 5n, "HELD"],
      [r[3], 4n, "RELEASED"],
      [r[2], 3n, "HELD"],
      [r[1], 2n, "COMMITTED"],
      [r[0], 1n, "HELD"],
    ]);
  });

  it("pages cover every reservation once, in order, and the last page's token is empty", async () => {
    expect(await pages(admin, { includeResolved: true, pageSize: 2 })).toEqual([
      [[r[4], 5n, "HELD"], [r[3], 4n, "RELEASED"]],
      [[r[2], 3n, "HELD"], [r[1], 2n, "COMMITTED"]],
      [[r[0], 1n, "HELD"]],
    ]);
    expect(await pages(admin, { pageSize: 1 })).toEqual([[[r[4], 5n, "HELD"]], [[r[2], 3n, "HELD"]], [[r[0], 1n, "HELD"]]]);
    expect(await pages(admin, { pageSize: 3 })).toEqual([[[r[4], 5n, "HELD"], [r[2], 3n, "HELD"], [r[0], 1n, "HELD"]]]);
  });

  it("a page token works only for the query it came from: InvalidArgument INVALID_PAGE_TOKEN otherwise", async () => {
    const { nextPageToken } = await admin.ledger.listReservations({ customerId, includeResolved: true, pageSize: 1 });
    expect(nextPageToken).not.toBe("");
    const forged = Buffer.from(`r1:${Date.now() * 1000}:${r[0]}:AAAAAAAAAAAAAAAA`).toString("base64url");
    for (const [pageToken, request] of [
      ["not-a-token", { customerId }],
      [nextPageToken, { customerId }],
      [nextPageToken, { customerId: "resv-other", includeResolved: true }],
      [forged, { customerId }],
    ] as const) {
      await refused(() => admin.ledger.listReservations({ ...request, pageSize: 1, pageToken }), Code.InvalidArgument, "INVALID_PAGE_TOKEN", { field: "page_token" });
    }
  });

  it("takes a page size of 1 to 1,000 (0 is 100)", async () => {
    expect((await admin.ledger.listReservations({ customerId, includeResolved: true, pageSize: 1_000 })).reservations).toHaveLength(5);
    for (const pageSize of [-1, 1_001]) {
      await refused(() => admin.ledger.listReservations({ customerId, pageSize }), Code.InvalidArgument, "INVALID_PAGE_SIZE", { field: "page_size" });
    }
  });

  it("a customer key lists its own customer's reservations; any other customer, existing or not, is NotFound CUSTOMER_NOT_FOUND", async () => {
    expect((await portal.ledger.listReservations({ customerId })).reservations.map(shape)).toEqual(
      (await support.ledger.listReservations({ customerId })).reservations.map(shape),
    );
    for (const other of ["resv-other", "nobody-at-all"]) {
      await refused(() => portal.ledger.listReservations({ customerId: other }), Code.NotFound, "CUSTOMER_NOT_FOUND", { customer_id: other });
    }
    await refused(() => admin.ledger.listReservations({ customerId: "nobody-at-all" }), Code.NotFound, "CUSTOMER_NOT_FOUND");
  });
});

describe("SearchCustomers", () => {
  beforeAll(async () => {
    for (const [customerId, displayName] of [
      ["acme_3", "Third"],
      ["zed", "ACME holdings"],
      ["acme", "Acme Corp"],
      ["acme-2", "Second"],
      // Ids before all the others, found by their names only: after every id match all the same.
      ["aaa-named", "Acme Partner"],
      ["aab-named", "acme again"],
      ["pct-1", "100% Real_Name"],
      ["pct-2", "100X RealXName"],
    ]) {
      await admin.admin.createCustomer({ customer: { customerId, displayName }, requestId: randomUUID() });
    }
    await admin.admin.setOverdraftLimit({ customerId: "acme", limit: { creditTypeId: credits, amount: 25n }, requestId: randomUUID() });
  });

  const ids = async (query: string, pageSize = 0, clients = support) => {
    const res = await clients.admin.searchCustomers({ query, pageSize });
    return { ids: res.customers.map((customer) => customer.customerId), truncated: res.truncated };
  };

  it("lists the exact id first, then ids it starts, then names it is part of (any case), each group by id, each customer once", async () => {
    expect(await ids("acme")).toEqual({ ids: ["acme", "acme-2", "acme_3", "aaa-named", "aab-named", "zed"], truncated: false });
    const res = await support.admin.searchCustomers({ query: "acme" });
    expect(res.customers[0]).toMatchObject({ customerId: "acme", displayName: "Acme Corp", overdraftLimits: [{ creditTypeId: credits, amount: 25n }] });
  });

  it("matches an id's prefix case-sensitively and a name case-insensitively", async () => {
    expect(await ids("Acme")).toEqual({ ids: ["aaa-named", "aab-named", "acme", "zed"], truncated: false });
    expect(await ids("acme-")).toEqual({ ids: ["acme-2"], truncated: false });
    expect(await ids("HOLDINGS")).toEqual({ ids: ["zed"], truncated: false });
  });

  it("matches % and _ in the query as themselves, not as wildcards", async () => {
    expect(await ids("100%")).toEqual({ ids: ["pct-1"], truncated: false });
    expect(await ids("l_n")).toEqual({ ids: ["pct-1"], truncated: false });
    expect(await ids("%")).toEqual({ ids: ["pct-1"], truncated: false });
    expect(await ids("no such customer")).toEqual({ ids: [], truncated: false });
  });

  it("says when more matched than the page holds", async () => {
    // The page is cut after the groups are ordered: the name matches with the first ids come last.
    expect(await ids("acme", 2)).toEqual({ ids: ["acme", "acme-2"], truncated: true });
    expect(await ids("acme", 5)).toEqual({ ids: ["acme", "acme-2", "acme_3", "aaa-named", "aab-named"], truncated: true });
    expect(await ids("acme", 6)).toEqual({ ids: ["acme", "acme-2", "acme_3", "aaa-named", "aab-named", "zed"], truncated: false });
    expect(await ids("acme", 100)).toEqual({ ids: ["acme", "acme-2", "acme_3", "aaa-named", "aab-named", "zed"], truncated: false });
  });

  it("is for support and admin keys: a service or customer key is PermissionDenied ROLE_NOT_ALLOWED", async () => {
    expect((await ids("zed", 0, admin)).ids).toEqual(["zed"]);
    for (const clients of [service, await customerKey("acme")]) {
      await refused(() => clients.admin.searchCustomers({ query: "acme" }), Code.PermissionDenied, "ROLE_NOT_ALLOWED");
    }
  });

  it("refuses an empty query, a bad page size and bad text, and changes nothing", async () => {
    const cases: [{ query: string; pageSize?: number }, string, string][] = [
      [{ query: "" }, "MISSING_FIELD", "query"],
      [{ query: "   " }, "MISSING_FIELD", "query"],
      [{ query: "acme", pageSize: 101 }, "INVALID_PAGE_SIZE", "page_size"],
      [{ query: "acme", pageSize: -1 }, "INVALID_PAGE_SIZE", "page_size"],
      [{ query: "a\u0000b" }, "INVALID_TEXT", "query"],
      [{ query: "a".repeat(201) }, "TEXT_TOO_LONG", "query"],
    ];
    for (const [request, reason, field] of cases) {
      await refused(() => support.admin.searchCustomers(request), Code.InvalidArgument, reason, { field });
    }
  });
});

describe("ListRateOverrides", () => {
  const t1 = at("2030-03-01T00:00:00Z");

  beforeAll(async () => {
    clock.ms = t1;
    await admin.admin.createCustomer({ customer: { customerId: "ovr" }, requestId: randomUUID() });
    await admin.admin.createCustomer({ customer: { customerId: "ovr-none" }, requestId: randomUUID() });
    const set = (featureKey: string, rate?: { credits: bigint; perUnits: bigint }) =>
      admin.admin.setRateOverride({ customerId: "ovr", featureKey, rate, reason: "deal", requestId: randomUUID() });
    await set("chat", { credits: 1n, perUnits: 3n });
    clock.advance(hourMs);
    await set("image", { credits: 4n, perUnits: 1n });
    clock.advance(hourMs);
    await set("chat", { credits: 2n, perUnits: 5n });
    await set("embed", { credits: 7n, perUnits: 1n });
    clock.advance(hourMs);
    await set("embed");
  });

  const overridesOf = async (clients: Clients, customerId: string) =>
    (await clients.admin.listRateOverrides({ customerId })).overrides.map((o) => [o.featureKey, o.rate?.credits, o.rate?.perUnits, isoOf(o.effectiveTime)]);

  it("lists the overrides in force by feature key, each from when its last change took effect; a cleared one is gone", async () => {
    expect(await overridesOf(support, "ovr")).toEqual([
      ["chat", 2n, 5n, "2030-03-01T02:00:00.000Z"],
      ["image", 4n, 1n, "2030-03-01T01:00:00.000Z"],
    ]);
    expect(await overridesOf(admin, "ovr-none")).toEqual([]);
  });

  it("an unknown customer is NotFound CUSTOMER_NOT_FOUND; a bad id InvalidArgument", async () => {
    await refused(() => overridesOf(support, "nobody-at-all"), Code.NotFound, "CUSTOMER_NOT_FOUND", { customer_id: "nobody-at-all" });
    await refused(() => overridesOf(support, ""), Code.InvalidArgument, "MISSING_FIELD", { field: "customer_id" });
    await refused(() => overridesOf(support, "a b"), Code.InvalidArgument, "INVALID_ID", { field: "customer_id" });
  });

  it("is for support and admin keys: a service or customer key is PermissionDenied ROLE_NOT_ALLOWED", async () => {
    for (const clients of [service, await customerKey("ovr")]) {
      await refused(() => overridesOf(clients, "ovr"), Code.PermissionDenied, "ROLE_NOT_ALLOWED");
    }
  });
});

describe("ExplainUsageEvent with a customer key", () => {
  const shared: string = `shared-${randomUUID()}`;
  let portal: Clients;
  let otherServiceKeyId = "";
  let theirs = "";

  beforeAll(async () => {
    clock.ms = at("2030-03-02T00:00:00Z");
    await grant("ex-own", 100n);
    await grant("ex-other", 100n);
    const otherServiceToken = await t.createKey("service");
    const otherService = t.clients(otherServiceToken);
    otherServiceKeyId = keyIdOf(otherServiceToken);
    // One event id, reported by two keys: for ex-own by one, for ex-other by the other.
    await report("ex-own", "chat", 1n, "2030-03-01T23:00:00Z", service, shared);
    await report("ex-other", "chat", 2n, "2030-03-01T23:00:00Z", otherService, shared);
    theirs = await report("ex-other", "chat", 3n, "2030-03-01T23:00:00Z");
    portal = await customerKey("ex-own");
  });

  it("explains its own customer's event, even where another customer's event shares its id", async () => {
    const res = await portal.admin.explainUsageEvent({ eventId: shared });
    expect(res).toMatchObject({ reporterKeyId: serviceKeyId, event: { eventId: shared, customerId: "ex-own", quantity: 1n }, outcome: UsageOutcome.BURNED });
    expect(res.entries.map((entry) => entry.amount)).toEqual([2n]);
    // For staff the same id is ambiguous until the reporter is named.
    await refused(() => admin.admin.explainUsageEvent({ eventId: shared }), Code.FailedPrecondition, "AMBIGUOUS_EVENT_ID");
  });

  it("answers another customer's event exactly as a missing one: NotFound USAGE_EVENT_NOT_FOUND", async () => {
    const answers = [];
    for (const [eventId, reporterKeyId] of [[theirs, ""], [shared, otherServiceKeyId], ["never-reported", ""]]) {
      const error = await errorOf(portal.admin.explainUsageEvent({ eventId, reporterKeyId }));
      const info = errorInfoOf(error);
      answers.push([Code[error.code], info?.reason, JSON.stringify(info?.metadata).replace(eventId, "<id>"), error.rawMessage.replace(eventId, "<id>")]);
    }
    expect(answers).toEqual(Array(3).fill(["NotFound", "USAGE_EVENT_NOT_FOUND", '{"event_id":"<id>"}', 'event id "<id>" not found']));
    // Staff see it.
    expect((await support.admin.explainUsageEvent({ eventId: theirs })).event?.customerId).toBe("ex-other");
  });

  it("by usage id too: its own event's, and another customer's answered exactly as a missing one", async () => {
    const usageIdOf = async (customerId: string) => (await admin.ledger.listLedgerEntries({ customerId, kinds: [EntryKind.BURN] })).entries[0].usageId;
    const own = await usageIdOf("ex-own");
    const other = await usageIdOf("ex-other");
    expect((await portal.admin.explainUsageEvent({ usageId: own })).event).toMatchObject({ eventId: shared, customerId: "ex-own" });
    const answers = [];
    for (const usageId of [other, "9223372036854775807"]) {
      const error = await errorOf(portal.admin.explainUsageEvent({ usageId }));
      const info = errorInfoOf(error);
      answers.push([Code[error.code], info?.reason, JSON.stringify(info?.metadata).replace(usageId, "<id>"), error.rawMessage.replace(usageId, "<id>")]);
    }
    expect(answers).toEqual(Array(2).fill(["NotFound", "USAGE_EVENT_NOT_FOUND", '{"usage_id":"<id>"}', 'usage id "<id>" not found']));
    expect((await support.admin.explainUsageEvent({ usageId: other })).event?.customerId).toBe("ex-other");
  });

  it("may still not correct an event: PermissionDenied ROLE_NOT_ALLOWED", async () => {
    await refused(() => portal.admin.correctUsageEvent({ eventId: shared, reasonCode: "mine", requestId: randomUUID() }), Code.PermissionDenied, "ROLE_NOT_ALLOWED");
  });
});

describe("after every case", () => {
  it("every ledger invariant holds in the database", async () => {
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });
});
