// Auto-recharge in the admin UI, in headless Chromium against a real server and
// PostgreSQL: support sets a customer's auto-recharge and balance alert on the customer's
// page (credited on creation) and sees them listed; when the balance falls below the threshold (burned through
// the API, as a product would) the recharge order shows in the customer's top-ups, and a
// failed payment shows with its reason and retry time.
import { randomUUID } from "node:crypto";
import { GrantSource, TopUpOrigin } from "@burndown/sdk";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithBrowser, seriousViolations, signIn as signInAs, startUi, stopUi } from "../../test-support/browser.js";
import type { Clients, TestServer } from "../../test-support/server.js";

const creditTypeId = "api_credits";
let test: TestServer;
let browser: Browser;
let admin: Clients;
let supportToken: string;

beforeAll(async () => {
  ({ test, browser } = await startUi());
  admin = test.clients(test.adminToken);
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "API credits", scale: 0 }, requestId: randomUUID() });
  await admin.admin.createCustomer({ customer: { customerId: "globex", displayName: "Globex" }, requestId: randomUUID() });
  await admin.billing.createBundle({ bundleId: "refill", displayName: "Refill", creditTypeId, credits: 1000n, currency: "USD", priceMinor: 4000n, requestId: randomUUID() });
  supportToken = await test.createKey("support", 100n);
}, 180_000);

afterAll(() => stopUi(test, browser));

const signIn = (token: string): Promise<Page> => signInAs(browser, test.server.httpUrl, token);

describeWithBrowser("auto-recharge", () => {
  it("support sets auto-recharge and an alert; a fall below the threshold shows a recharge order, then its failed payment", async () => {
    const page = await signIn(supportToken);
    await page.goto(`${test.server.httpUrl}/#/customers/globex`);
    await page.getByRole("heading", { name: /Globex/ }).waitFor();
    const form = page.getByRole("form", { name: "Set auto-recharge" });
    await form.getByLabel("Credit when the order opens").check();
    await form.getByLabel("Recharge when available falls below").fill("500");
    await form.getByLabel("Bundle to buy").selectOption({ label: "Refill (40.00 USD)" });
    await form.getByLabel("Recharges a month at most").fill("2");
    await form.getByLabel("Alert (balance.low)").fill("200");
    await form.getByRole("button", { name: "Save auto-recharge" }).click();
    await form.getByRole("status").getByText(/Saved for api_credits/).waitFor();
    const settings = page.getByRole("table", { name: "Auto-recharge" }).locator("tbody tr");
    await expect.poll(() => settings.allInnerTexts()).toEqual([expect.stringMatching(/^api_credits\s+on, credited when opened\s+500\s+refill \(latest\)\s+0 of 2\s+200/)]);
    const stored = await admin.billing.getAutoRecharge({ customerId: "globex", creditTypeId });
    expect(stored.autoRecharge).toMatchObject({ enabled: true, threshold: 500n, item: { case: "bundleId", value: "refill" }, monthlyRechargesMax: 2, balanceLowThreshold: 200n, creditOnCreation: true });

    await admin.ledger.grant({ customerId: "globex", creditTypeId, amount: 1000n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
    await admin.ledger.burn({ customerId: "globex", cost: { case: "credits", value: { creditTypeId, amount: 600n } }, requestId: randomUUID() });
    await expect.poll(async () => (await admin.billing.listTopUps({ customerId: "globex" })).topUps.map((order) => order.origin)).toEqual([TopUpOrigin.RECHARGE]);
    await page.reload();
    const orders = page.getByRole("table", { name: "Top-ups" }).locator("tbody tr");
    await expect.poll(() => orders.allInnerTexts()).toEqual([expect.stringMatching(/pending\s+refill v1\s+1,000 api_credits\s+40\.00 USD.*auto-recharge, attempt 1, 1,000 credited unpaid/s)]);
    await expect.poll(() => settings.allInnerTexts()).toEqual([expect.stringMatching(/1 of 2/)]);

    const [order] = (await admin.billing.listTopUps({ customerId: "globex" })).topUps;
    await admin.billing.failTopUp({ orderId: order.orderId, reason: "card_declined", requestId: randomUUID() });
    await page.reload();
    await expect.poll(() => orders.allInnerTexts()).toEqual([expect.stringMatching(/auto-recharge, attempt 1, 1,000 credited unpaid\s+1: card_declined, retry /)]);
    expect(await seriousViolations(page)).toEqual([]);
  });
});
