// Promotions through the contract, on real PostgreSQL: promotional lots burn before
// purchased ones, a promo code is redeemed once per customer however many attempts run at
// once, never more often than its max_redemptions across customers, every refusal says
// why and changes nothing, and the balance tells promotional credits from purchased ones.
import { randomUUID } from "node:crypto";
import { durationFromMs, timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { errorInfoOf, GrantSource, Role } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invariantViolations } from "../../test-support/invariants.js";
import { databaseSnapshot, errorOf } from "../../test-support/snapshot.js";
import { type Clients, FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";

const creditTypeId = "ai_credits";
const dayMs = 86_400_000;
const clock = new FakeClock(Date.parse("2030-03-01T00:00:00Z"));
let t: TestServer;
let admin: Clients;
let service: Clients;

const fresh = (prefix: string) => `${prefix}_${randomUUID().slice(0, 8)}`;
const freshCode = () => `PROMO-${randomUUID().slice(0, 8).toUpperCase()}`;

async function refusal(call: Promise<unknown>): Promise<{ code: string; reason: string | undefined }> {
  const error = await errorOf(call);
  return { code: Code[error.code], reason: errorInfoOf(error)?.reason };
}

/** createCode makes a code of 50 credits lasting 30 days from redemption, unless told otherwise. */
async function createCode(overrides: { code?: string; amount?: bigint; maxRedemptions?: bigint; validUntilMs?: number; priority?: number } = {}) {
  const response = await admin.promotions.createPromoCode({
    requestId: randomUUID(),
    code: overrides.code ?? freshCode(),
    creditTypeId,
    amount: overrides.amount ?? 50n,
    creditValidity: durationFromMs(30 * dayMs),
    priority: overrides.priority ?? 0,
    validUntil: overrides.validUntilMs === undefined ? undefined : timestampFromMs(overrides.validUntilMs),
    maxRedemptions: overrides.maxRedemptions ?? 0n,
    description: "spring campaign",
  });
  return response.promoCode!;
}

async function purchase(customerId: string, amount: bigint) {
  await service.ledger.grant({ requestId: randomUUID(), customerId, creditTypeId, amount, source: GrantSource.PURCHASE, reasonCode: "purchase" });
}

async function customerKey(customerId: string): Promise<Clients> {
  await admin.admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
  const created = await admin.admin.createApiKey({ name: `${customerId} portal`, role: Role.CUSTOMER, customerId, requestId: randomUUID() });
  return t.clients(created.token);
}

async function balanceOf(customerId: string) {
  const response = await admin.ledger.getBalance({ customerId, creditTypeId });
  return response.balances[0];
}

beforeAll(async () => {
  t = await startTestServer({ clock });
  admin = t.clients(t.adminToken);
  service = t.clients(await t.createKey("service"));
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "AI credits", scale: 0 }, requestId: randomUUID() });
});

afterAll(async () => {
  expect(await invariantViolations(t.database.pool)).toEqual([]);
  await t?.close();
});

describe("promotional credits", () => {
  it("a redeemed code's lot burns before purchased credits, and the balance shows it apart with its expiry", async () => {
    const customerId = fresh("cust");
    await purchase(customerId, 100n);
    const code = await createCode({ amount: 50n });
    const redeemed = await service.promotions.redeemPromoCode({ requestId: randomUUID(), customerId, code: code.code });
    expect(redeemed.lot).toMatchObject({ source: GrantSource.PROMOTION, amount: 50n, remaining: 50n, reasonCode: "promo_code" });
    expect(timestampDate(redeemed.lot!.expireTime!).getTime()).toBe(clock.ms + 30 * dayMs);
    expect(redeemed.balance?.available).toBe(150n);

    await service.ledger.burn({ requestId: randomUUID(), customerId, cost: { case: "credits", value: { creditTypeId, amount: 30n } } });
    const balance = await balanceOf(customerId);
    expect(balance.available).toBe(120n);
    const bySource = balance.lots.map((lot) => [lot.source, lot.remaining, lot.expireTime === undefined ? null : timestampDate(lot.expireTime).getTime()]);
    expect(bySource).toEqual([
      [GrantSource.PROMOTION, 20n, clock.ms + 30 * dayMs],
      [GrantSource.PURCHASE, 100n, null],
    ]);
    const sources = balance.sources.map((source) => [source.source, source.remaining, source.held, source.nextExpireTime && timestampDate(source.nextExpireTime).getTime(), source.nextExpireAmount]);
    expect(sources).toEqual([
      [GrantSource.PROMOTION, 20n, 0n, clock.ms + 30 * dayMs, 20n],
      [GrantSource.PURCHASE, 100n, 0n, undefined, 0n],
    ]);
  });

  it("the balance's sources sum promotional lots with their soonest expiry, held parts included, and leave out lots not yet effective", async () => {
    const customerId = fresh("cust");
    const promotion = (amount: bigint, days: number, effectiveInDays = 0) =>
      service.ledger.grant({
        requestId: randomUUID(),
        customerId,
        creditTypeId,
        amount,
        source: GrantSource.PROMOTION,
        reasonCode: "sales_deal",
        effectiveTime: effectiveInDays === 0 ? undefined : timestampFromMs(clock.ms + effectiveInDays * dayMs),
        expireTime: timestampFromMs(clock.ms + days * dayMs),
      });
    await promotion(10n, 5);
    await promotion(15n, 5);
    await promotion(30n, 9);
    await promotion(99n, 20, 2);
    await purchase(customerId, 40n);
    await service.ledger.reserve({ requestId: randomUUID(), customerId, cost: { case: "credits", value: { creditTypeId, amount: 12n } } });
    const balance = await balanceOf(customerId);
    expect(balance.sources.map((source) => [source.source, source.remaining, source.held, timestampDate(source.nextExpireTime ?? timestampFromMs(0)).getTime(), source.nextExpireAmount])).toEqual([
      [GrantSource.PROMOTION, 55n, 12n, clock.ms + 5 * dayMs, 25n],
      [GrantSource.PURCHASE, 40n, 0n, 0, 0n],
    ]);
    expect(balance.available).toBe(83n);
    const granted = await service.ledger.grant({ requestId: randomUUID(), customerId, creditTypeId, amount: 1n, source: GrantSource.PROMOTION, reasonCode: "sales_deal" });
    expect(granted.balance?.sources).toEqual([]);
  });

  it("a promotional Grant by sales (source PROMOTION, an expiry, a priority) burns before purchased credits too", async () => {
    const customerId = fresh("cust");
    await purchase(customerId, 100n);
    await service.ledger.grant({
      requestId: randomUUID(),
      customerId,
      creditTypeId,
      amount: 40n,
      source: GrantSource.PROMOTION,
      reasonCode: "sales_deal",
      priority: 0,
      expireTime: timestampFromMs(clock.ms + 7 * dayMs),
    });
    await service.ledger.burn({ requestId: randomUUID(), customerId, cost: { case: "credits", value: { creditTypeId, amount: 50n } } });
    const lots = (await balanceOf(customerId)).lots.map((lot) => [lot.source, lot.remaining]);
    expect(lots).toEqual([[GrantSource.PURCHASE, 90n]]);
  });
});

describe("redeeming a code", () => {
  it("matches the code in any case, and a replay of the same request answers the same lot even after the code is disabled", async () => {
    const customerId = fresh("cust");
    const code = await createCode({ code: `Spring-${randomUUID().slice(0, 6)}` });
    const request = { requestId: randomUUID(), customerId, code: code.code.toLowerCase() };
    const first = await service.promotions.redeemPromoCode(request);
    expect(first.code).toBe(code.code);
    await admin.promotions.disablePromoCode({ requestId: randomUUID(), code: code.code.toUpperCase() });
    const again = await service.promotions.redeemPromoCode(request);
    expect(again.lot?.grantId).toBe(first.lot?.grantId);
    expect((await balanceOf(customerId)).available).toBe(50n);
  });

  it("a code whose credits expire at a fixed time gives lots expiring then, and is PROMO_CODE_EXPIRED once that time has passed", async () => {
    const expireMs = clock.ms + 2 * dayMs;
    const code = (
      await admin.promotions.createPromoCode({ requestId: randomUUID(), code: freshCode(), creditTypeId, amount: 7n, creditExpireTime: timestampFromMs(expireMs), priority: 3 })
    ).promoCode!;
    expect([code.creditValidity, timestampDate(code.creditExpireTime!).getTime()]).toEqual([undefined, expireMs]);
    const lot = (await service.promotions.redeemPromoCode({ requestId: randomUUID(), customerId: fresh("cust"), code: code.code })).lot!;
    expect([timestampDate(lot.expireTime!).getTime(), lot.priority]).toEqual([expireMs, 3]);
    clock.advance(2 * dayMs);
    expect(await refusal(service.promotions.redeemPromoCode({ requestId: randomUUID(), customerId: fresh("cust"), code: code.code }))).toEqual({
      code: "FailedPrecondition",
      reason: "PROMO_CODE_EXPIRED",
    });
  });

  it("50 concurrent attempts by one customer's own key credit it once; the others are FailedPrecondition PROMO_CODE_ALREADY_REDEEMED", async () => {
    const customerId = fresh("cust");
    const mine = await customerKey(customerId);
    const code = await createCode({ amount: 25n });
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () => mine.promotions.redeemPromoCode({ requestId: randomUUID(), customerId, code: code.code })),
    );
    const granted = results.filter((result) => result.status === "fulfilled");
    expect(granted).toHaveLength(1);
    const refused = await Promise.all(results.filter((result) => result.status === "rejected").map((result) => refusal(Promise.reject(result.reason))));
    expect(new Set(refused.map((r) => `${r.code} ${r.reason}`))).toEqual(new Set(["FailedPrecondition PROMO_CODE_ALREADY_REDEEMED"]));
    expect((await mine.ledger.getBalance({ customerId })).balances[0].available).toBe(25n);
    const listed = (await admin.promotions.listPromoCodes({})).promoCodes.find((candidate) => candidate.code === code.code);
    expect(listed?.redemptionCount).toBe(1n);
  });

  it("a code with max_redemptions 5 redeemed by 20 customers at once credits exactly 5; the rest are PROMO_CODE_EXHAUSTED", async () => {
    const code = await createCode({ maxRedemptions: 5n, amount: 10n });
    const customers = Array.from({ length: 20 }, () => fresh("crowd"));
    const results = await Promise.allSettled(customers.map((customerId) => service.promotions.redeemPromoCode({ requestId: randomUUID(), customerId, code: code.code })));
    expect(results.filter((result) => result.status === "fulfilled")).toHaveLength(5);
    const refused = await Promise.all(results.filter((result) => result.status === "rejected").map((result) => refusal(Promise.reject(result.reason))));
    expect(new Set(refused.map((r) => `${r.code} ${r.reason}`))).toEqual(new Set(["FailedPrecondition PROMO_CODE_EXHAUSTED"]));
    const counts = await t.database.pool.query(
      "select (select count(*) from promo_redemptions where promo_code_id = $1)::int as redemptions, (select redemption_count from promo_codes where promo_code_id = $1)::int as counted",
      [code.promoCodeId],
    );
    expect(counts.rows[0]).toEqual({ redemptions: 5, counted: 5 });
    const credited = await t.database.pool.query("select count(*)::int as lots, sum(amount)::text as credits from grants where note = $1", [`promo code ${code.code}`]);
    expect(credited.rows[0]).toEqual({ lots: 5, credits: "50" });
  });

  it("a customer key may not redeem for another customer: NotFound CUSTOMER_NOT_FOUND, and nothing changes", async () => {
    const mine = await customerKey(fresh("own"));
    const code = await createCode();
    for (const customerId of [fresh("other"), "nobody"]) {
      const before = await databaseSnapshot(t.database.pool);
      expect(await refusal(mine.promotions.redeemPromoCode({ requestId: randomUUID(), customerId, code: code.code }))).toEqual({ code: "NotFound", reason: "CUSTOMER_NOT_FOUND" });
      expect(await databaseSnapshot(t.database.pool)).toEqual(before);
    }
  });

  it("emits grant.created for the lot, as every grant does, and audits create, redeem and disable", async () => {
    const endpoint = await admin.webhooks.createWebhookEndpoint({ requestId: randomUUID(), url: "http://127.0.0.1:9/promo", eventTypes: ["grant.created"] });
    const customerId = fresh("cust");
    const code = await createCode();
    const redeemed = await service.promotions.redeemPromoCode({ requestId: randomUUID(), customerId, code: code.code });
    await admin.promotions.disablePromoCode({ requestId: randomUUID(), code: code.code });
    const events = (await admin.webhooks.listWebhookEvents({ endpointId: endpoint.endpoint!.endpointId, pageSize: 1_000 })).events;
    const event = events.find((candidate) => candidate.customerId === customerId);
    expect(JSON.parse(event!.payloadJson)).toMatchObject({ grantId: redeemed.lot!.grantId, source: "promotion", reasonCode: "promo_code", amount: "50" });
    await admin.webhooks.disableWebhookEndpoint({ requestId: randomUUID(), endpointId: endpoint.endpoint!.endpointId });

    const audits = (await admin.admin.listAuditRecords({ pageSize: 1_000 })).auditRecords;
    const actions = audits.filter((record) => record.target === `promo_code:${code.promoCodeId}` || record.target === `customer:${customerId}`).map((record) => record.action);
    expect(actions.reverse()).toEqual(["create_promo_code", "redeem_promo_code", "disable_promo_code"]);
  });
});

describe("every refusal says why and changes nothing", () => {
  const valid = () => ({ requestId: randomUUID(), code: freshCode(), creditTypeId, amount: 10n, creditValidity: durationFromMs(dayMs) });
  const createCases: [string, () => Record<string, unknown>, string, string][] = [
    ["no code", () => ({ ...valid(), code: "" }), "InvalidArgument", "MISSING_FIELD"],
    ["a code with a space", () => ({ ...valid(), code: "NO SPACES" }), "InvalidArgument", "INVALID_PROMO_CODE"],
    ["a code of two characters", () => ({ ...valid(), code: "AB" }), "InvalidArgument", "INVALID_PROMO_CODE"],
    ["a zero amount", () => ({ ...valid(), amount: 0n }), "InvalidArgument", "INVALID_AMOUNT"],
    ["no expiry of the credits", () => ({ ...valid(), creditValidity: undefined }), "InvalidArgument", "INVALID_PROMO_EXPIRY"],
    ["both expiries", () => ({ ...valid(), creditExpireTime: timestampFromMs(clock.ms + dayMs) }), "InvalidArgument", "INVALID_PROMO_EXPIRY"],
    ["a validity of half a second", () => ({ ...valid(), creditValidity: durationFromMs(500) }), "InvalidArgument", "INVALID_PROMO_EXPIRY"],
    ["a credit expiry in the past", () => ({ ...valid(), creditValidity: undefined, creditExpireTime: timestampFromMs(clock.ms - 1) }), "InvalidArgument", "INVALID_PROMO_EXPIRY"],
    ["a valid_until in the past", () => ({ ...valid(), validUntil: timestampFromMs(clock.ms - 1) }), "InvalidArgument", "INVALID_VALID_UNTIL"],
    ["a negative max_redemptions", () => ({ ...valid(), maxRedemptions: -1n }), "InvalidArgument", "INVALID_MAX_REDEMPTIONS"],
    ["a priority past 1000", () => ({ ...valid(), priority: 1001 }), "InvalidArgument", "INVALID_PRIORITY"],
    ["an unknown credit type", () => ({ ...valid(), creditTypeId: "nope" }), "NotFound", "CREDIT_TYPE_NOT_FOUND"],
  ];

  it.each(createCases)("CreatePromoCode with %s is %s %s", async (_name, request, code, reason) => {
    const before = await databaseSnapshot(t.database.pool);
    expect(await refusal(admin.promotions.createPromoCode(request()))).toEqual({ code, reason });
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
  });

  it("CreatePromoCode of a code that exists in another case is AlreadyExists PROMO_CODE_EXISTS", async () => {
    const existing = await createCode({ code: `Dup-${randomUUID().slice(0, 6)}` });
    const before = await databaseSnapshot(t.database.pool);
    expect(await refusal(admin.promotions.createPromoCode({ ...valid(), code: existing.code.toUpperCase() }))).toEqual({ code: "AlreadyExists", reason: "PROMO_CODE_EXISTS" });
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
  });

  it("RedeemPromoCode of an unknown, disabled, expired, exhausted or already redeemed code is refused with its reason", async () => {
    const customerId = fresh("cust");
    await purchase(customerId, 5n);
    const disabled = await createCode();
    await admin.promotions.disablePromoCode({ requestId: randomUUID(), code: disabled.code });
    const expiring = await createCode({ validUntilMs: clock.ms + 1_000 });
    const exhausted = await createCode({ maxRedemptions: 1n });
    await service.promotions.redeemPromoCode({ requestId: randomUUID(), customerId: fresh("first"), code: exhausted.code });
    const redeemed = await createCode();
    const lot = await service.promotions.redeemPromoCode({ requestId: randomUUID(), customerId, code: redeemed.code });
    clock.advance(1_000);
    const cases: [string, string, string][] = [
      ["NO-SUCH-CODE", "NotFound", "PROMO_CODE_NOT_FOUND"],
      [disabled.code, "FailedPrecondition", "PROMO_CODE_DISABLED"],
      [expiring.code, "FailedPrecondition", "PROMO_CODE_EXPIRED"],
      [exhausted.code, "FailedPrecondition", "PROMO_CODE_EXHAUSTED"],
      [redeemed.code.toLowerCase(), "FailedPrecondition", "PROMO_CODE_ALREADY_REDEEMED"],
      ["x", "InvalidArgument", "INVALID_PROMO_CODE"],
    ];
    for (const [code, status, reason] of cases) {
      const before = await databaseSnapshot(t.database.pool);
      expect([code, await refusal(service.promotions.redeemPromoCode({ requestId: randomUUID(), customerId, code }))]).toEqual([code, { code: status, reason }]);
      expect(await databaseSnapshot(t.database.pool)).toEqual(before);
    }
    const already = await errorOf(service.promotions.redeemPromoCode({ requestId: randomUUID(), customerId, code: redeemed.code }));
    expect(errorInfoOf(already)?.metadata).toMatchObject({ code: redeemed.code, grant_id: lot.lot!.grantId });
    expect((await balanceOf(customerId)).available).toBe(55n);
  });

  it("a redemption of a brand-new customer's refused code creates no customer", async () => {
    const disabled = await createCode();
    await admin.promotions.disablePromoCode({ requestId: randomUUID(), code: disabled.code });
    const before = await databaseSnapshot(t.database.pool);
    expect(await refusal(service.promotions.redeemPromoCode({ requestId: randomUUID(), customerId: fresh("new"), code: disabled.code }))).toEqual({
      code: "FailedPrecondition",
      reason: "PROMO_CODE_DISABLED",
    });
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
  });
});

describe("listing and disabling codes", () => {
  it("lists enabled codes newest first with their counts, disabled ones only when asked, in pages", async () => {
    const older = await createCode();
    clock.advance(1);
    const newer = await createCode();
    await service.promotions.redeemPromoCode({ requestId: randomUUID(), customerId: fresh("cust"), code: newer.code });
    await admin.promotions.disablePromoCode({ requestId: randomUUID(), code: older.code });
    const enabled = (await admin.promotions.listPromoCodes({ pageSize: 1_000 })).promoCodes;
    expect(enabled.map((code) => code.code)).toContain(newer.code);
    expect(enabled.map((code) => code.code)).not.toContain(older.code);
    expect(enabled.find((code) => code.code === newer.code)?.redemptionCount).toBe(1n);
    const all = (await admin.promotions.listPromoCodes({ pageSize: 1_000, includeDisabled: true })).promoCodes;
    expect(all.find((code) => code.code === older.code)?.disableTime).toBeDefined();

    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await admin.promotions.listPromoCodes({ pageSize: 2, pageToken, includeDisabled: true });
      seen.push(...page.promoCodes.map((code) => code.code));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(seen).toEqual(all.map((code) => code.code));
  });

  it("DisablePromoCode of an unknown code is NotFound PROMO_CODE_NOT_FOUND", async () => {
    expect(await refusal(admin.promotions.disablePromoCode({ requestId: randomUUID(), code: "NOT-A-CODE" }))).toEqual({ code: "NotFound", reason: "PROMO_CODE_NOT_FOUND" });
  });
});
