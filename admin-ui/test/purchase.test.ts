// Buying credits, end to end in headless Chromium: the customer view sells the catalog's
// bundles, opens an order and links to the vendor's checkout (BURNDOWN_CHECKOUT_URL);
// Stripe's signed webhook pays it and the credits appear in the open view without a
// reload. On a customer's page, an admin records a payment made outside Stripe, cancels an
// unpaid order and refunds part of a paid one; support sees the orders but no such action.
import { randomUUID } from "node:crypto";
import { Role, TopUpState } from "@burndown/sdk";
import type { Browser, Page } from "playwright-core";
import Stripe from "stripe";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithBrowser, seriousViolations, signIn as signInAs, startUi, stopUi } from "../../test-support/browser.js";
import type { Clients, TestServer } from "../../test-support/server.js";

const creditTypeId = "api_credits";
const stripeSecret = `whsec_${randomUUID().replaceAll("-", "")}`;
const checkoutUrl = "https://shop.example/pay?order={order_id}&customer={customer_id}";
let test: TestServer;
let browser: Browser;
let admin: Clients;
let customerKey: string;

beforeAll(async () => {
  ({ test, browser } = await startUi({ stripeWebhookSecret: stripeSecret, checkoutUrl }));
  admin = test.clients(test.adminToken);
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "API credits", scale: 0 }, requestId: randomUUID() });
  for (const customerId of ["globex", "hooli"]) {
    await admin.admin.createCustomer({ customer: { customerId, displayName: customerId === "globex" ? "Globex" : "Hooli" }, requestId: randomUUID() });
  }
  await admin.billing.createBundle({ bundleId: "starter", displayName: "Starter", creditTypeId, credits: 500n, bonusCredits: 50n, currency: "USD", priceMinor: 2500n, requestId: randomUUID() });
  await admin.billing.createBundle({ bundleId: "pro", displayName: "Pro", creditTypeId, credits: 5000n, currency: "USD", priceMinor: 20000n, requestId: randomUUID() });
  customerKey = (await admin.admin.createApiKey({ name: "globex portal", role: Role.CUSTOMER, customerId: "globex", requestId: randomUUID() })).token;
}, 180_000);

afterAll(() => stopUi(test, browser));

/** payWithStripe delivers Stripe's checkout.session.completed for an order, signed as Stripe signs it. */
async function payWithStripe(orderId: string, amountTotal: number): Promise<void> {
  const payload = JSON.stringify({
    id: `evt_${randomUUID().slice(0, 12)}`,
    object: "event",
    type: "checkout.session.completed",
    data: { object: { id: `cs_${randomUUID().slice(0, 12)}`, object: "checkout.session", payment_status: "paid", payment_intent: `pi_${randomUUID().slice(0, 12)}`, amount_total: amountTotal, currency: "usd", metadata: { burndown_order_id: orderId } } },
  });
  const header = Stripe.webhooks.generateTestHeaderString({ payload, secret: stripeSecret });
  const response = await fetch(`${test.server.httpUrl}/webhooks/stripe`, { method: "POST", headers: { "content-type": "application/json", "stripe-signature": header }, body: payload });
  expect(response.status).toBe(200);
}

async function openView(key: string): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${test.server.httpUrl}/customer#key=${encodeURIComponent(key)}`);
  await page.getByRole("heading", { name: "Your credits" }).waitFor();
  return page;
}

describeWithBrowser("buying credits", () => {
  it("the customer buys a bundle in their view, pays at the vendor's checkout, and sees the credits arrive without a reload", async () => {
    const page = await openView(customerKey);
    const offers = page.getByRole("list", { name: "Credits on sale" });
    await expect.poll(() => offers.getByRole("listitem").allInnerTexts()).toEqual([
      expect.stringMatching(/Pro\s+5,000 api_credits\s+200\.00 USD\s+Buy/),
      expect.stringMatching(/Starter\s+500 api_credits \+ 50 bonus\s+25\.00 USD\s+Buy/),
    ]);
    await page.getByRole("button", { name: "Buy Starter" }).click();
    const status = page.getByRole("status").filter({ hasText: "is ready" });
    await status.waitFor();
    const orders = (await admin.billing.listTopUps({ customerId: "globex" })).topUps;
    expect(orders.map((order) => [order.state, order.bundleId, order.credits, order.priceMinor])).toEqual([[TopUpState.PENDING, "starter", 550n, 2500n]]);
    const orderId = orders[0].orderId;
    const pay = status.getByRole("link", { name: "Pay 25.00 USD" });
    expect(await pay.getAttribute("href")).toBe(`https://shop.example/pay?order=${orderId}&customer=globex`);
    expect(await pay.getAttribute("target")).toBe("_blank");

    const purchases = page.getByRole("table", { name: "Your purchases" }).locator("tbody tr");
    await expect.poll(() => purchases.allInnerTexts()).toEqual([expect.stringMatching(/550 api_credits\s+25\.00 USD\s+waiting for payment/)]);
    // The vendor's checkout takes the payment; Stripe tells Burndown.
    await payWithStripe(orderId, 2500);
    await expect.poll(() => purchases.allInnerTexts(), { timeout: 15_000 }).toEqual([expect.stringMatching(/550 api_credits\s+25\.00 USD\s+paid/)]);
    await expect.poll(() => page.locator('[data-credit-type="api_credits"] .big').innerText(), { timeout: 15_000 }).toMatch(/^550 api_credits available/);
    expect(await seriousViolations(page)).toEqual([]);
  });

  it("a customer view without a checkout page sells nothing itself", async () => {
    const { test: plain, browser: plainBrowser } = await startUi();
    try {
      const { admin: a } = plain.clients(plain.adminToken);
      await a.createCreditType({ creditType: { creditTypeId, displayName: "API credits", scale: 0 }, requestId: randomUUID() });
      await a.createCustomer({ customer: { customerId: "solo" }, requestId: randomUUID() });
      await plain.clients(plain.adminToken).billing.createBundle({ bundleId: "starter", displayName: "Starter", creditTypeId, credits: 5n, currency: "USD", priceMinor: 100n, requestId: randomUUID() });
      const key = (await a.createApiKey({ name: "solo", role: Role.CUSTOMER, customerId: "solo", requestId: randomUUID() })).token;
      const page = await plainBrowser.newPage();
      await page.goto(`${plain.server.httpUrl}/customer#key=${encodeURIComponent(key)}`);
      await page.getByText("Need more credits? Ask your account manager.").waitFor();
      expect(await page.getByRole("button", { name: /^Buy/ }).count()).toBe(0);
    } finally {
      await stopUi(plain, plainBrowser);
    }
  });

  it("an admin records a payment, cancels an unpaid order and refunds part of a paid one; support sees no such action", async () => {
    const open = async () => (await admin.billing.createTopUp({ customerId: "hooli", item: { case: "bundleId", value: "starter" }, requestId: randomUUID() })).topUp!.orderId;
    const toPay = await open();
    const page = await signInAs(browser, test.server.httpUrl, test.adminToken);
    await page.goto(`${test.server.httpUrl}/#/customers/hooli`);
    const row = (orderId: string) => page.locator(`tr[data-order="${orderId}"]`);
    await row(toPay).getByRole("button", { name: "Record payment" }).click();
    const payForm = page.getByRole("form", { name: "Record a payment" });
    await payForm.getByLabel("Payment reference").fill("wire-2026-118");
    await payForm.getByRole("button", { name: "Record payment" }).click();
    await expect.poll(() => row(toPay).innerText()).toMatch(/paid\s+starter v1\s+550 api_credits\s+25\.00 USD\s+wire-2026-118/);
    expect((await admin.ledger.getBalance({ customerId: "hooli", creditTypeId })).balances[0].available).toBe(550n);

    await row(toPay).getByRole("button", { name: "Refund" }).click();
    const refundForm = page.getByRole("form", { name: "Refund the order" });
    await refundForm.getByLabel("Amount refunded").fill("1000");
    await refundForm.getByLabel("Refund reference").fill("re-77");
    await refundForm.getByRole("button", { name: "Refund" }).click();
    // 10.00 of 25.00 refunded: 550 × 1000 / 2500 = 220 credits clawed back.
    await expect.poll(() => row(toPay).innerText()).toMatch(/partially refunded.*10\.00 USD\s+220 \(0\)/s);
    expect((await admin.ledger.getBalance({ customerId: "hooli", creditTypeId })).balances[0].available).toBe(330n);

    // More than is left to refund is refused in words, and changes nothing.
    await row(toPay).getByRole("button", { name: "Refund" }).click();
    await refundForm.getByLabel("Amount refunded").fill("1600");
    await refundForm.getByLabel("Refund reference").fill("re-78");
    await refundForm.getByRole("button", { name: "Refund" }).click();
    await refundForm.getByRole("alert").filter({ hasText: "REFUND_EXCEEDS_PAYMENT" }).waitFor();
    expect((await admin.billing.getTopUp({ orderId: toPay })).topUp?.refundedMinor).toBe(1000n);
    await refundForm.getByRole("button", { name: "Back" }).click();

    const toCancel = await open();
    await page.reload();
    await row(toCancel).getByRole("button", { name: "Cancel order" }).click();
    const cancelForm = page.getByRole("form", { name: "Cancel the order" });
    await cancelForm.getByLabel("Why").fill("customer changed their mind");
    await cancelForm.getByRole("button", { name: "Cancel order" }).click();
    await expect.poll(() => row(toCancel).innerText()).toMatch(/cancelled/);
    expect((await admin.billing.getTopUp({ orderId: toCancel })).topUp?.state).toBe(TopUpState.CANCELLED);
    expect(await seriousViolations(page)).toEqual([]);

    const support = await signInAs(browser, test.server.httpUrl, await test.createKey("support", 100n));
    await support.goto(`${test.server.httpUrl}/#/customers/hooli`);
    await support.locator(`tr[data-order="${toPay}"]`).waitFor();
    expect(await support.getByRole("button", { name: /Record payment|Refund|Cancel order/ }).count()).toBe(0);
  });
});
