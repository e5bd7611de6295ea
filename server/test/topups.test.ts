// Top-ups through the contract, on real PostgreSQL: versioned bundles, orders credited
// once when paid (however often, however concurrently the payment is confirmed), refunds
// that claw back what is left of the lot and turn what was burned into flagged debt, and
// every refusal changing nothing.
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { EntryKind, errorInfoOf, GrantSource, TopUpState } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invariantViolations } from "../../test-support/invariants.js";
import { errorOf } from "../../test-support/snapshot.js";
import { type Clients, startTestServer, type TestServer } from "../../test-support/server.js";

const creditTypeId = "api_credits";
let t: TestServer;
let admin: Clients;
let service: Clients;
let support: Clients;

const fresh = (prefix: string) => `${prefix}_${randomUUID().slice(0, 8)}`;

async function refusal(call: Promise<unknown>): Promise<{ code: string; reason: string | undefined }> {
  const error = await errorOf(call);
  return { code: Code[error.code], reason: errorInfoOf(error)?.reason };
}

/** orderTables is what a refused top-up call must leave as it was. */
async function orderTables() {
  const result = await t.database.pool.query(`select
    (select count(*) from topup_orders)::int as orders, (select count(*) from topup_refunds)::int as refunds,
    (select count(*) from grants)::int as grants, (select count(*) from ledger_entries)::int as entries,
    (select count(*) from bundles)::int as bundles, (select json_agg(o order by order_id) from topup_orders o) as rows`);
  return result.rows[0];
}

async function balanceOf(customerId: string) {
  const response = await service.ledger.getBalance({ customerId, creditTypeId });
  return response.balances.find((balance) => balance.creditTypeId === creditTypeId)!;
}

async function bundle(overrides: { credits?: bigint; bonusCredits?: bigint; priceMinor?: bigint; currency?: string; bundleId?: string } = {}) {
  const response = await admin.billing.createBundle({
    requestId: randomUUID(),
    bundleId: overrides.bundleId ?? fresh("bundle"),
    displayName: "1,000 API credits",
    creditTypeId,
    credits: overrides.credits ?? 1000n,
    bonusCredits: overrides.bonusCredits ?? 0n,
    currency: overrides.currency ?? "USD",
    priceMinor: overrides.priceMinor ?? 5000n,
  });
  return response.bundle!;
}

async function pendingOrder(customerId: string, bundleId: string) {
  return (await service.billing.createTopUp({ requestId: randomUUID(), customerId, item: { case: "bundleId", value: bundleId } })).topUp!;
}

async function paidOrder(customerId: string, options: { credits?: bigint; priceMinor?: bigint } = {}) {
  const made = await bundle({ credits: options.credits ?? 1000n, priceMinor: options.priceMinor ?? 5000n });
  const order = await pendingOrder(customerId, made.bundleId);
  const reference = fresh("pi");
  await service.billing.confirmTopUp({ requestId: randomUUID(), orderId: order.orderId, paymentReference: reference, amountMinor: order.priceMinor, currency: "USD" });
  return { order, reference };
}

beforeAll(async () => {
  t = await startTestServer();
  admin = t.clients(t.adminToken);
  service = t.clients(await t.createKey("service"));
  support = t.clients(await t.createKey("support", 1000n));
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "API credits", scale: 0 }, requestId: randomUUID() });
});

afterAll(async () => {
  expect(await invariantViolations(t.database.pool)).toEqual([]);
  await t?.close();
});

describe("bundles", () => {
  it("a bundle_id created again is a new version, and the list shows the latest unless asked for all", async () => {
    const bundleId = fresh("bundle");
    const first = await bundle({ bundleId, credits: 1000n, bonusCredits: 100n, priceMinor: 5000n });
    const second = await bundle({ bundleId, credits: 2000n, priceMinor: 9000n });
    expect([first.version, second.version]).toEqual([1, 2]);
    const latest = (await support.billing.listBundles({})).bundles.filter((b) => b.bundleId === bundleId);
    expect(latest.map((b) => [b.version, b.credits, b.priceMinor])).toEqual([[2, 2000n, 9000n]]);
    const all = (await support.billing.listBundles({ allVersions: true })).bundles.filter((b) => b.bundleId === bundleId);
    expect(all.map((b) => [b.version, b.credits, b.bonusCredits])).toEqual([
      [1, 1000n, 100n],
      [2, 2000n, 0n],
    ]);
  });

  it("an order keeps the version it was made from, and may name an older one", async () => {
    const bundleId = fresh("bundle");
    await bundle({ bundleId, credits: 1000n, priceMinor: 5000n });
    const latestOrder = await pendingOrder(fresh("cust"), bundleId);
    await bundle({ bundleId, credits: 3000n, priceMinor: 12000n });
    const older = (await service.billing.createTopUp({ requestId: randomUUID(), customerId: fresh("cust"), item: { case: "bundleId", value: bundleId }, bundleVersion: 1 })).topUp!;
    const kept = (await service.billing.getTopUp({ orderId: latestOrder.orderId })).topUp!;
    expect([kept.bundleVersion, kept.credits, kept.priceMinor]).toEqual([1, 1000n, 5000n]);
    expect([older.bundleVersion, older.credits]).toEqual([1, 1000n]);
  });

  it("bad prices, currencies, credits and credit types are refused and create nothing", async () => {
    const before = await orderTables();
    const base = { bundleId: fresh("bundle"), displayName: "x", creditTypeId, credits: 10n, currency: "USD", priceMinor: 100n };
    const cases: [Record<string, unknown>, string, string][] = [
      [{ priceMinor: 0n }, "InvalidArgument", "INVALID_PRICE"],
      [{ priceMinor: -5n }, "InvalidArgument", "INVALID_PRICE"],
      [{ currency: "usd" }, "InvalidArgument", "INVALID_CURRENCY"],
      [{ credits: 0n }, "InvalidArgument", "INVALID_AMOUNT"],
      [{ creditExpiry: { seconds: 0n, nanos: 0 } }, "InvalidArgument", "INVALID_CREDIT_EXPIRY"],
      [{ creditTypeId: "no_such_type" }, "NotFound", "CREDIT_TYPE_NOT_FOUND"],
    ];
    for (const [change, code, reason] of cases) {
      expect(await refusal(admin.billing.createBundle({ requestId: randomUUID(), ...base, ...change })), JSON.stringify(change, (_k, v) => (typeof v === "bigint" ? v.toString() : v))).toEqual({ code, reason });
    }
    expect(await orderTables()).toEqual(before);
  });
});

describe("confirming a top-up", () => {
  it("credits one purchase lot with the bonus and the price as its cost basis, once", async () => {
    const customerId = fresh("cust");
    const made = await bundle({ credits: 1000n, bonusCredits: 250n, priceMinor: 5000n });
    const order = await pendingOrder(customerId, made.bundleId);
    expect([order.state, order.credits, order.priceMinor, order.currency]).toEqual([TopUpState.PENDING, 1250n, 5000n, "USD"]);
    expect(await refusal(service.ledger.getBalance({ customerId, creditTypeId }))).toMatchObject({ code: "NotFound" });
    const confirmed = (await service.billing.confirmTopUp({ requestId: randomUUID(), orderId: order.orderId, paymentReference: "pi_one", amountMinor: 5000n, currency: "USD" })).topUp!;
    expect([confirmed.state, confirmed.paymentReference]).toEqual([TopUpState.PAID, "pi_one"]);
    const balance = await balanceOf(customerId);
    expect([balance.available, balance.lots.length, balance.lots[0].source, balance.lots[0].grantId]).toEqual([1250n, 1, GrantSource.PURCHASE, confirmed.grantId]);
    // $50.00 for 1,250 credits: 4 cents a credit, 4,000,000 micro-cents.
    const lot = await t.database.pool.query("select cost_basis_micros::text from grants where grant_id = $1", [confirmed.grantId]);
    expect(lot.rows[0].cost_basis_micros).toBe("4000000");
    const again = (await service.billing.confirmTopUp({ requestId: randomUUID(), orderId: order.orderId, paymentReference: "pi_one", amountMinor: 5000n, currency: "USD" })).topUp!;
    expect([again.state, again.grantId]).toEqual([TopUpState.PAID, confirmed.grantId]);
    expect((await balanceOf(customerId)).available).toBe(1250n);
    const audit = await t.database.pool.query("select count(*)::int as n from audit_log where action = 'confirm_top_up' and details->'old'->>'order_id' = $1", [order.orderId]);
    expect(audit.rows[0].n).toBe(1);
  });

  it("a paid order's lot burns after promotional credits granted at the default priority, even when it expires first", async () => {
    const customerId = fresh("cust");
    const made = (
      await admin.billing.createBundle({ requestId: randomUUID(), bundleId: fresh("bundle"), displayName: "Monthly pack", creditTypeId, credits: 100n, currency: "USD", priceMinor: 500n, creditExpiry: { seconds: 86_400n } })
    ).bundle!;
    const order = await pendingOrder(customerId, made.bundleId);
    const paid = (await service.billing.confirmTopUp({ requestId: randomUUID(), orderId: order.orderId, paymentReference: fresh("pi"), amountMinor: 500n, currency: "USD" })).topUp!;
    // Promotional credits that expire a month later than the purchase.
    await service.ledger.grant({ requestId: randomUUID(), customerId, creditTypeId, amount: 30n, source: GrantSource.PROMOTION, reasonCode: "promo", expireTime: { seconds: BigInt(Math.floor(Date.now() / 1000) + 31 * 86_400) } });
    await service.ledger.burn({ requestId: randomUUID(), customerId, cost: { case: "credits", value: { creditTypeId, amount: 40n } } });
    const lots = (await balanceOf(customerId)).lots.map((lot) => [lot.grantId === paid.grantId ? "purchase" : "promotion", lot.priority, lot.remaining]);
    expect(lots).toEqual([["purchase", 100, 90n]]);
  });

  it("a cost basis that does not divide evenly is rounded down in micro-units", async () => {
    const customerId = fresh("cust");
    const { order } = await paidOrder(customerId, { credits: 3n, priceMinor: 1000n });
    const paid = (await service.billing.getTopUp({ orderId: order.orderId })).topUp!;
    const lot = await t.database.pool.query("select cost_basis_micros::text from grants where grant_id = $1", [paid.grantId]);
    expect(lot.rows[0].cost_basis_micros).toBe("333333333");
  });

  it("a plain amount at a price is an order too", async () => {
    const customerId = fresh("cust");
    const order = (await support.billing.createTopUp({
      requestId: randomUUID(),
      customerId,
      item: { case: "amount", value: { creditTypeId, credits: 700n, currency: "EUR", priceMinor: 1400n } },
    })).topUp!;
    expect([order.bundleId, order.bundleVersion, order.credits]).toEqual(["", 0, 700n]);
    await service.billing.confirmTopUp({ requestId: randomUUID(), orderId: order.orderId, paymentReference: fresh("pay"), amountMinor: 1400n, currency: "EUR" });
    expect((await balanceOf(customerId)).available).toBe(700n);
  });

  it("fifty concurrent confirmations of one order credit it once", async () => {
    const customerId = fresh("cust");
    const made = await bundle({ credits: 1000n, priceMinor: 5000n });
    const order = await pendingOrder(customerId, made.bundleId);
    const answers = await Promise.all(
      Array.from({ length: 50 }, () =>
        service.billing.confirmTopUp({ requestId: randomUUID(), orderId: order.orderId, paymentReference: "pi_race", amountMinor: 5000n, currency: "USD" }),
      ),
    );
    expect(new Set(answers.map((answer) => answer.topUp!.grantId)).size).toBe(1);
    const balance = await balanceOf(customerId);
    expect([balance.available, balance.lots.length]).toEqual([1000n, 1]);
  });

  it("an order paid with one reference refuses another, and nothing more is credited", async () => {
    const customerId = fresh("cust");
    const { order } = await paidOrder(customerId);
    const before = await orderTables();
    expect(await refusal(service.billing.confirmTopUp({ requestId: randomUUID(), orderId: order.orderId, paymentReference: "pi_other", amountMinor: 5000n, currency: "USD" }))).toEqual({
      code: "FailedPrecondition",
      reason: "TOPUP_ALREADY_PAID",
    });
    expect(await orderTables()).toEqual(before);
    expect((await balanceOf(customerId)).available).toBe(1000n);
  });

  it("a payment whose amount or currency is not the order's is refused and changes nothing", async () => {
    const customerId = fresh("cust");
    const made = await bundle({ priceMinor: 5000n });
    const order = await pendingOrder(customerId, made.bundleId);
    const before = await orderTables();
    for (const [amountMinor, currency] of [[4999n, "USD"], [5000n, "EUR"]] as const) {
      expect(await refusal(service.billing.confirmTopUp({ requestId: randomUUID(), orderId: order.orderId, paymentReference: fresh("pi"), amountMinor, currency }))).toEqual({
        code: "FailedPrecondition",
        reason: "PAYMENT_MISMATCH",
      });
    }
    expect(await orderTables()).toEqual(before);
  });

  it("a payment reference that paid one order cannot pay another", async () => {
    const { reference } = await paidOrder(fresh("cust"));
    const made = await bundle();
    const other = await pendingOrder(fresh("cust"), made.bundleId);
    expect(await refusal(service.billing.confirmTopUp({ requestId: randomUUID(), orderId: other.orderId, paymentReference: reference, amountMinor: 5000n, currency: "USD" }))).toEqual({
      code: "FailedPrecondition",
      reason: "PAYMENT_REFERENCE_USED",
    });
  });

  it("one payment reference confirming two customers' orders at once pays one of them", async () => {
    const made = await bundle();
    const orders = [await pendingOrder(fresh("cust"), made.bundleId), await pendingOrder(fresh("cust"), made.bundleId)];
    const reference = fresh("pi");
    const answers = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        service.billing.confirmTopUp({ requestId: randomUUID(), orderId: orders[i % 2].orderId, paymentReference: reference, amountMinor: 5000n, currency: "USD" }),
      ),
    );
    const refused = await Promise.all(answers.flatMap((answer) => (answer.status === "rejected" ? [refusal(Promise.reject(answer.reason))] : [])));
    expect(new Set(refused.map((each) => `${each.code} ${each.reason}`))).toEqual(new Set(refused.length === 0 ? [] : ["FailedPrecondition PAYMENT_REFERENCE_USED"]));
    const states = await Promise.all(orders.map(async (order) => (await service.billing.getTopUp({ orderId: order.orderId })).topUp!.state));
    expect(states.filter((state) => state === TopUpState.PAID).length).toBe(1);
    expect(refused.length).toBe(10);
  });

  it("unknown orders and bundles are NotFound; support may create orders but not confirm them", async () => {
    expect(await refusal(service.billing.confirmTopUp({ requestId: randomUUID(), orderId: randomUUID(), paymentReference: "pi_x", amountMinor: 1n, currency: "USD" }))).toEqual({
      code: "NotFound",
      reason: "TOPUP_NOT_FOUND",
    });
    expect(await refusal(service.billing.createTopUp({ requestId: randomUUID(), customerId: "c", item: { case: "bundleId", value: "no_such_bundle" } }))).toEqual({
      code: "NotFound",
      reason: "BUNDLE_NOT_FOUND",
    });
    const made = await bundle();
    expect(await refusal(service.billing.createTopUp({ requestId: randomUUID(), customerId: "c", item: { case: "bundleId", value: made.bundleId }, bundleVersion: 9 }))).toEqual({
      code: "NotFound",
      reason: "BUNDLE_NOT_FOUND",
    });
    expect(await refusal(service.billing.createTopUp({ requestId: randomUUID(), customerId: "c", item: { case: "bundleId", value: made.bundleId }, bundleVersion: -1 }))).toEqual({
      code: "InvalidArgument",
      reason: "INVALID_BUNDLE_VERSION",
    });
    const order = await pendingOrder(fresh("cust"), made.bundleId);
    expect(await refusal(support.billing.confirmTopUp({ requestId: randomUUID(), orderId: order.orderId, paymentReference: "pi_x", amountMinor: 5000n, currency: "USD" }))).toEqual({
      code: "PermissionDenied",
      reason: "ROLE_NOT_ALLOWED",
    });
  });

  it("a CreateTopUp retried with its request id answers the same order", async () => {
    const made = await bundle();
    const request = { requestId: randomUUID(), customerId: fresh("cust"), item: { case: "bundleId" as const, value: made.bundleId } };
    const [first, second] = [await service.billing.createTopUp(request), await service.billing.createTopUp(request)];
    expect(second.topUp!.orderId).toBe(first.topUp!.orderId);
  });
});

describe("cancelling a top-up", () => {
  it("a pending order is cancelled and can no longer be paid; a paid one cannot be cancelled", async () => {
    const customerId = fresh("cust");
    const made = await bundle();
    const order = await pendingOrder(customerId, made.bundleId);
    const cancelled = (await service.billing.cancelTopUp({ requestId: randomUUID(), orderId: order.orderId, note: "customer changed their mind" })).topUp!;
    expect(cancelled.state).toBe(TopUpState.CANCELLED);
    expect(await refusal(service.billing.confirmTopUp({ requestId: randomUUID(), orderId: order.orderId, paymentReference: fresh("pi"), amountMinor: 5000n, currency: "USD" }))).toEqual({
      code: "FailedPrecondition",
      reason: "TOPUP_NOT_PENDING",
    });
    const { order: paid } = await paidOrder(customerId);
    expect(await refusal(service.billing.cancelTopUp({ requestId: randomUUID(), orderId: paid.orderId }))).toEqual({ code: "FailedPrecondition", reason: "TOPUP_NOT_PENDING" });
    expect(await refusal(service.billing.cancelTopUp({ requestId: randomUUID(), orderId: randomUUID() }))).toEqual({ code: "NotFound", reason: "TOPUP_NOT_FOUND" });
  });
});

describe("refunding a top-up", () => {
  it("a full refund of an unused order claws back the whole lot with entries linked to it", async () => {
    const customerId = fresh("cust");
    const { order } = await paidOrder(customerId);
    const refunded = await service.billing.refundTopUp({ requestId: randomUUID(), orderId: order.orderId, amountMinor: 5000n, currency: "USD", reasonCode: "refund", paymentReference: "re_1" });
    const paid = (await service.billing.getTopUp({ orderId: order.orderId })).topUp!;
    expect([refunded.topUp!.state, refunded.topUp!.refundedMinor, refunded.topUp!.clawedBackCredits, refunded.topUp!.debtCredits]).toEqual([TopUpState.REFUNDED, 5000n, 1000n, 0n]);
    expect(refunded.entries.map((entry) => [entry.kind, entry.amount, entry.grantId, entry.reasonCode, entry.overLimit])).toEqual([[EntryKind.CLAWBACK, 1000n, paid.grantId, "refund", false]]);
    expect(paid.state).toBe(TopUpState.REFUNDED);
    const balance = await balanceOf(customerId);
    expect([balance.available, balance.burned]).toEqual([0n, 1000n]);
  });

  it("a partial refund takes its share; what was burned becomes debt, flagged past the overdraft limit", async () => {
    const customerId = fresh("cust");
    const { order } = await paidOrder(customerId, { credits: 1000n, priceMinor: 5000n });
    await service.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 700n } }, requestId: randomUUID() });
    // 40% refunded: 400 credits, of the 300 left.
    const partial = await service.billing.refundTopUp({ requestId: randomUUID(), orderId: order.orderId, amountMinor: 2000n, currency: "USD", reasonCode: "refund", paymentReference: "re_a" });
    expect([partial.topUp!.state, partial.topUp!.clawedBackCredits, partial.topUp!.debtCredits]).toEqual([TopUpState.PARTIALLY_REFUNDED, 300n, 100n]);
    expect(partial.entries.map((entry) => [entry.amount, entry.grantId === "", entry.overLimit])).toEqual([
      [300n, false, false],
      [100n, true, true],
    ]);
    expect((await balanceOf(customerId)).available).toBe(-100n);
    // The rest: 600 more, all of it burned already.
    const rest = await service.billing.refundTopUp({ requestId: randomUUID(), orderId: order.orderId, amountMinor: 3000n, currency: "USD", reasonCode: "chargeback", paymentReference: "dp_b" });
    expect([rest.topUp!.state, rest.topUp!.clawedBackCredits, rest.topUp!.debtCredits]).toEqual([TopUpState.REFUNDED, 300n, 700n]);
    expect((await balanceOf(customerId)).available).toBe(-700n);
  });

  it("debt within the overdraft limit is not flagged, and later credits repay it", async () => {
    const customerId = fresh("cust");
    const { order } = await paidOrder(customerId, { credits: 1000n, priceMinor: 5000n });
    await admin.admin.setOverdraftLimit({ customerId, limit: { creditTypeId, amount: 500n }, reason: "contract", requestId: randomUUID() });
    await service.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 1000n } }, requestId: randomUUID() });
    const refunded = await service.billing.refundTopUp({ requestId: randomUUID(), orderId: order.orderId, amountMinor: 1000n, currency: "USD", reasonCode: "refund", paymentReference: "re_c" });
    expect(refunded.entries.map((entry) => [entry.amount, entry.grantId === "", entry.overLimit])).toEqual([[200n, true, false]]);
    await paidOrder(customerId, { credits: 1000n, priceMinor: 5000n });
    expect((await balanceOf(customerId)).available).toBe(800n);
  });

  it("the same refund twice claws back once; refunds beyond the payment, of unpaid orders or in another currency are refused", async () => {
    const customerId = fresh("cust");
    const { order } = await paidOrder(customerId);
    const request = { orderId: order.orderId, amountMinor: 1000n, currency: "USD", reasonCode: "refund", paymentReference: "re_dup" };
    await service.billing.refundTopUp({ requestId: randomUUID(), ...request });
    const again = await service.billing.refundTopUp({ requestId: randomUUID(), ...request });
    expect([again.entries.length, again.topUp!.refundedMinor, again.topUp!.clawedBackCredits]).toEqual([0, 1000n, 200n]);
    const before = await orderTables();
    expect(await refusal(service.billing.refundTopUp({ requestId: randomUUID(), ...request, paymentReference: "re_big", amountMinor: 4001n }))).toEqual({
      code: "FailedPrecondition",
      reason: "REFUND_EXCEEDS_PAYMENT",
    });
    expect(await refusal(service.billing.refundTopUp({ requestId: randomUUID(), ...request, paymentReference: "re_eur", currency: "EUR" }))).toEqual({
      code: "FailedPrecondition",
      reason: "PAYMENT_MISMATCH",
    });
    const made = await bundle();
    const pending = await pendingOrder(customerId, made.bundleId);
    const afterPending = await orderTables();
    expect(await refusal(service.billing.refundTopUp({ requestId: randomUUID(), ...request, orderId: pending.orderId }))).toEqual({ code: "FailedPrecondition", reason: "TOPUP_NOT_PAID" });
    expect(await orderTables()).toEqual(afterPending);
    expect(before.refunds).toBe(afterPending.refunds);
  });
});

describe("listing top-ups", () => {
  it("a customer's orders come newest first, in pages", async () => {
    const customerId = fresh("cust");
    const made = await bundle();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await pendingOrder(customerId, made.bundleId)).orderId);
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await support.billing.listTopUps({ customerId, pageSize: 2, pageToken });
      expect(page.topUps.length).toBeLessThanOrEqual(2);
      seen.push(...page.topUps.map((order) => order.orderId));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(seen).toEqual([...ids].reverse());
    expect(await refusal(support.billing.listTopUps({ customerId, pageToken: "nonsense" }))).toEqual({ code: "InvalidArgument", reason: "INVALID_PAGE_TOKEN" });
  });
});
