// POST /webhooks/stripe on real PostgreSQL, signed offline with the stripe package's own
// test-header helper: good signatures confirm and refund orders exactly once however
// often Stripe delivers; bad or stale signatures are 400 and change nothing.
import { randomUUID } from "node:crypto";
import { EntryKind, TopUpState } from "@burndown/sdk";
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invariantViolations } from "../../test-support/invariants.js";
import { type Clients, startTestServer, type TestServer } from "../../test-support/server.js";

const secret = `whsec_${randomUUID().replaceAll("-", "")}`;
const creditTypeId = "api_credits";
let t: TestServer;
let noSecret: TestServer;
let api: Clients;

const fresh = (prefix: string) => `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 14)}`;

/** post sends a body to the webhook, signed with a secret at a time (now by default). */
async function post(server: TestServer, payload: string, options: { secret?: string; timestampS?: number; signature?: string } = {}) {
  const header =
    options.signature ?? Stripe.webhooks.generateTestHeaderString({ payload, secret: options.secret ?? secret, timestamp: options.timestampS ?? Math.floor(Date.now() / 1000) });
  const response = await fetch(`${server.server.httpUrl}/webhooks/stripe`, { method: "POST", headers: { "content-type": "application/json", "stripe-signature": header }, body: payload });
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

function event(type: string, object: Record<string, unknown>, id = fresh("evt")): string {
  return JSON.stringify({ id, object: "event", type, api_version: "2025-01-27", created: Math.floor(Date.now() / 1000), data: { object } });
}

async function pendingOrder(customerId: string, priceMinor = 5000n, credits = 1000n) {
  const order = await api.billing.createTopUp({ requestId: randomUUID(), customerId, item: { case: "amount", value: { creditTypeId, credits, currency: "USD", priceMinor } } });
  return order.topUp!;
}

function checkoutCompleted(orderId: string, paymentIntent: string, amountTotal = 5000, currency = "usd") {
  return event("checkout.session.completed", {
    id: fresh("cs"),
    object: "checkout.session",
    payment_status: "paid",
    payment_intent: paymentIntent,
    amount_total: amountTotal,
    currency,
    metadata: { burndown_order_id: orderId },
  });
}

async function available(customerId: string): Promise<bigint> {
  const response = await api.ledger.getBalance({ customerId, creditTypeId });
  return response.balances.find((balance) => balance.creditTypeId === creditTypeId)?.available ?? 0n;
}

async function stateOf() {
  const result = await t.database.pool.query(`select
    (select count(*) from grants)::int as grants, (select count(*) from ledger_entries)::int as entries,
    (select count(*) from topup_refunds)::int as refunds, (select json_agg(o order by order_id) from topup_orders o) as orders`);
  return result.rows[0];
}

beforeAll(async () => {
  t = await startTestServer({ stripeWebhookSecret: secret });
  noSecret = await startTestServer();
  api = t.clients(t.adminToken);
  await api.admin.createCreditType({ creditType: { creditTypeId, displayName: "API credits", scale: 0 }, requestId: randomUUID() });
});

afterAll(async () => {
  expect(await invariantViolations(t.database.pool)).toEqual([]);
  await Promise.all([t?.close(), noSecret?.close()]);
});

describe("payments", () => {
  it("checkout.session.completed pays the order; the event again and the payment intent's own event credit nothing more", async () => {
    const customerId = fresh("cust");
    const order = await pendingOrder(customerId);
    const paymentIntent = fresh("pi");
    const payload = checkoutCompleted(order.orderId, paymentIntent);
    expect(await post(t, payload)).toMatchObject({ status: 200, body: { outcome: `order ${order.orderId} paid` } });
    expect(await post(t, payload)).toMatchObject({ status: 200, body: { outcome: `order ${order.orderId} paid` } });
    const succeeded = event("payment_intent.succeeded", { id: paymentIntent, object: "payment_intent", amount_received: 5000, currency: "usd", metadata: { burndown_order_id: order.orderId } });
    expect(await post(t, succeeded)).toMatchObject({ status: 200 });
    const paid = (await api.billing.getTopUp({ orderId: order.orderId })).topUp!;
    expect([paid.state, paid.paymentReference]).toEqual([TopUpState.PAID, paymentIntent]);
    expect(await available(customerId)).toBe(1000n);
  });

  it("a delayed payment: the session completes unpaid (nothing credited), then async_payment_succeeded pays it, once", async () => {
    const customerId = fresh("cust");
    const order = await pendingOrder(customerId);
    const session = { id: fresh("cs"), object: "checkout.session", payment_intent: fresh("pi"), amount_total: 5000, currency: "usd", metadata: { burndown_order_id: order.orderId } };
    expect(await post(t, event("checkout.session.completed", { ...session, payment_status: "unpaid" }))).toMatchObject({ status: 200, body: { outcome: "ignored: not paid yet" } });
    expect((await api.billing.getTopUp({ orderId: order.orderId })).topUp?.state).toBe(TopUpState.PENDING);
    const succeeded = event("checkout.session.async_payment_succeeded", { ...session, payment_status: "paid" });
    expect(await post(t, succeeded)).toMatchObject({ status: 200, body: { outcome: `order ${order.orderId} paid` } });
    expect(await post(t, succeeded)).toMatchObject({ status: 200, body: { outcome: `order ${order.orderId} paid` } });
    expect(await available(customerId)).toBe(1000n);
    expect((await api.billing.getTopUp({ orderId: order.orderId })).topUp).toMatchObject({ state: TopUpState.PAID, paymentReference: session.payment_intent });
  });

  it("ten concurrent deliveries of one event credit once", async () => {
    const customerId = fresh("cust");
    const order = await pendingOrder(customerId);
    const payload = checkoutCompleted(order.orderId, fresh("pi"));
    const answers = await Promise.all(Array.from({ length: 10 }, () => post(t, payload)));
    expect(answers.map((answer) => answer.status)).toEqual(Array(10).fill(200));
    expect(await available(customerId)).toBe(1000n);
  });

  it("a payment of another amount or currency is 422 PAYMENT_MISMATCH and changes nothing", async () => {
    const order = await pendingOrder(fresh("cust"));
    const before = await stateOf();
    expect(await post(t, checkoutCompleted(order.orderId, fresh("pi"), 4999))).toMatchObject({ status: 422, body: { error: "PAYMENT_MISMATCH" } });
    expect(await post(t, checkoutCompleted(order.orderId, fresh("pi"), 5000, "eur"))).toMatchObject({ status: 422, body: { error: "PAYMENT_MISMATCH" } });
    expect(await stateOf()).toEqual(before);
  });

  it("events about no order of ours, unpaid sessions and other types are acknowledged and ignored", async () => {
    const before = await stateOf();
    expect(await post(t, event("checkout.session.completed", { id: fresh("cs"), payment_status: "paid", amount_total: 100, currency: "usd", metadata: {} }))).toMatchObject({
      status: 200,
      body: { outcome: "ignored: no burndown_order_id" },
    });
    const order = await pendingOrder(fresh("cust"));
    expect(await post(t, event("checkout.session.completed", { id: fresh("cs"), payment_status: "unpaid", amount_total: 5000, currency: "usd", metadata: { burndown_order_id: order.orderId } }))).toMatchObject({
      status: 200,
      body: { outcome: "ignored: not paid yet" },
    });
    expect(await post(t, event("customer.created", { id: fresh("cus") }))).toMatchObject({ status: 200, body: { outcome: "ignored: event type" } });
    expect((await stateOf()).grants).toBe(before.grants);
  });
});

describe("failed payments", () => {
  it("payment_intent.payment_failed fails the order with the decline code, once however often it is delivered", async () => {
    const customerId = fresh("cust");
    const order = await pendingOrder(customerId);
    const payload = event("payment_intent.payment_failed", {
      id: fresh("pi"),
      object: "payment_intent",
      last_payment_error: { code: "card_declined", decline_code: "insufficient_funds" },
      metadata: { burndown_order_id: order.orderId },
    });
    expect(await post(t, payload)).toMatchObject({ status: 200, body: { outcome: `order ${order.orderId} failed` } });
    expect(await post(t, payload)).toMatchObject({ status: 200, body: { outcome: `order ${order.orderId} failed` } });
    const failed = (await api.billing.getTopUp({ orderId: order.orderId })).topUp!;
    expect(failed).toMatchObject({ state: TopUpState.FAILED, paymentFailures: 1, failureReason: "insufficient_funds", grantId: "" });
  });
});

describe("signatures", () => {
  it("a wrong secret, a tampered body, a missing header and a stale timestamp are 400 and change nothing", async () => {
    const order = await pendingOrder(fresh("cust"));
    const payload = checkoutCompleted(order.orderId, fresh("pi"));
    const before = await stateOf();
    expect((await post(t, payload, { secret: `whsec_${randomUUID().replaceAll("-", "")}` })).status).toBe(400);
    const signed = Stripe.webhooks.generateTestHeaderString({ payload, secret });
    expect((await post(t, payload.replace('"amount_total":5000', '"amount_total":5001'), { signature: signed })).status).toBe(400);
    expect((await post(t, payload, { signature: "" })).status).toBe(400);
    expect((await post(t, payload, { timestampS: Math.floor(Date.now() / 1000) - 301 })).status).toBe(400);
    expect(await stateOf()).toEqual(before);
    // Signed within the tolerance, the same body is accepted.
    expect((await post(t, payload, { timestampS: Math.floor(Date.now() / 1000) - 200 })).status).toBe(200);
  });

  it("a deployment without a secret has no webhook route: 404", async () => {
    const response = await fetch(`${noSecret.server.httpUrl}/webhooks/stripe`, { method: "POST", body: "{}" });
    expect(response.status).toBe(404);
  });
});

describe("refunds and disputes", () => {
  async function paidByStripe(customerId: string) {
    const order = await pendingOrder(customerId);
    const paymentIntent = fresh("pi");
    expect((await post(t, checkoutCompleted(order.orderId, paymentIntent))).status).toBe(200);
    return { order, paymentIntent };
  }

  it("charge.refunded claws back up to the refunded total, once per delivery and per total", async () => {
    const customerId = fresh("cust");
    const { order, paymentIntent } = await paidByStripe(customerId);
    const chargeId = fresh("ch");
    const refunded = (amount: number) => event("charge.refunded", { id: chargeId, object: "charge", payment_intent: paymentIntent, amount_refunded: amount, currency: "usd", metadata: {} });
    const first = refunded(1000);
    expect(await post(t, first)).toMatchObject({ status: 200, body: { outcome: `order ${order.orderId} partially_refunded` } });
    expect(await post(t, first)).toMatchObject({ status: 200 });
    expect(await available(customerId)).toBe(800n);
    // The same total in another event (Stripe sends one per change) takes nothing more.
    expect(await post(t, refunded(1000))).toMatchObject({ status: 200 });
    expect(await available(customerId)).toBe(800n);
    expect(await post(t, refunded(5000))).toMatchObject({ status: 200, body: { outcome: `order ${order.orderId} refunded` } });
    expect(await available(customerId)).toBe(0n);
    const entries = await api.ledger.listLedgerEntries({ customerId, creditTypeId, kinds: [EntryKind.CLAWBACK] });
    expect(entries.entries.map((entry) => [entry.amount, entry.reasonCode])).toEqual(
      expect.arrayContaining([
        [200n, "refund"],
        [800n, "refund"],
      ]),
    );
    expect(entries.entries.length).toBe(2);
  });

  it("charge.dispute.created claws back the disputed amount, burned credits as flagged debt", async () => {
    const customerId = fresh("cust");
    const { order, paymentIntent } = await paidByStripe(customerId);
    await api.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 900n } }, requestId: randomUUID() });
    const dispute = event("charge.dispute.created", { id: fresh("dp"), object: "dispute", charge: fresh("ch"), payment_intent: paymentIntent, amount: 5000, currency: "usd" });
    expect(await post(t, dispute)).toMatchObject({ status: 200, body: { outcome: `order ${order.orderId} refunded` } });
    expect(await post(t, dispute)).toMatchObject({ status: 200 });
    const after = (await api.billing.getTopUp({ orderId: order.orderId })).topUp!;
    expect([after.clawedBackCredits, after.debtCredits]).toEqual([100n, 900n]);
    expect(await available(customerId)).toBe(-900n);
    const entries = await api.ledger.listLedgerEntries({ customerId, creditTypeId, kinds: [EntryKind.CLAWBACK] });
    expect(entries.entries.map((entry) => [entry.amount, entry.grantId === "", entry.overLimit, entry.reasonCode]).sort()).toEqual(
      [
        [100n, false, false, "chargeback"],
        [900n, true, true, "chargeback"],
      ].sort(),
    );
  });

  it("charge.dispute.closed won gives the clawed-back credits back as a new lot, once; a lost dispute gives nothing", async () => {
    const customerId = fresh("cust");
    const { order, paymentIntent } = await paidByStripe(customerId);
    await api.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 300n } }, requestId: randomUUID() });
    const disputeId = fresh("dp");
    const dispute = (type: string, status: string) => event(type, { id: disputeId, object: "dispute", charge: fresh("ch"), payment_intent: paymentIntent, amount: 5000, currency: "usd", status });
    await post(t, dispute("charge.dispute.created", "needs_response"));
    expect(await available(customerId)).toBe(-300n);
    expect(await post(t, dispute("charge.dispute.closed", "lost"))).toMatchObject({ status: 200, body: { outcome: "ignored: dispute lost" } });
    expect(await available(customerId)).toBe(-300n);
    const won = dispute("charge.dispute.closed", "won");
    expect(await post(t, won)).toMatchObject({ status: 200, body: { outcome: `order ${order.orderId} dispute won: 1000 credits restored` } });
    // Another delivery, and another event about the same dispute, restore nothing more.
    expect(await post(t, won)).toMatchObject({ status: 200 });
    expect(await post(t, dispute("charge.dispute.closed", "won"))).toMatchObject({ status: 200 });
    expect(await available(customerId)).toBe(700n);
    const grants = await api.ledger.listLedgerEntries({ customerId, creditTypeId, kinds: [EntryKind.GRANT] });
    expect(grants.entries.filter((entry) => entry.reasonCode === "chargeback_won").map((entry) => entry.amount)).toEqual([1000n]);
  });
});
