// Bundles and top-ups in the admin UI, in headless Chromium against a real server and
// PostgreSQL: an admin adds a bundle and its next version on the Bundles page; support
// opens a top-up from it on a customer's page, sees it pending, and after its payment
// (confirmed through the API, as a vendor's backend would) sees it paid with its credits.
import { randomUUID } from "node:crypto";
import { TopUpState } from "@burndown/sdk";
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
  await admin.admin.createCustomer({ customer: { customerId: "acme", displayName: "Acme Corp" }, requestId: randomUUID() });
  supportToken = await test.createKey("support", 100n);
}, 180_000);

afterAll(() => stopUi(test, browser));

const signIn = (token: string): Promise<Page> => signInAs(browser, test.server.httpUrl, token);

describeWithBrowser("bundles and top-ups", () => {
  it("an admin adds a bundle, then a new version of it; the list shows the latest, or every version", async () => {
    const page = await signIn(test.adminToken);
    await page.getByRole("link", { name: "Platform", exact: true }).click();
    await page.getByRole("navigation", { name: "Platform" }).getByRole("link", { name: "Bundles" }).click();
    const form = page.getByRole("form", { name: "Add a bundle" });
    for (const [credits, price] of [["1,000", "5000"], ["2,000", "9000"]]) {
      await form.getByLabel("Bundle id").fill("api_pack");
      await form.getByLabel("Name shown to customers").fill("API pack");
      await form.getByLabel("Credits (in").fill(credits);
      await form.getByLabel("Price in minor units").fill(price);
      await form.getByRole("button", { name: "Save bundle" }).click();
      await form.getByText(/Saved api_pack version/).waitFor();
    }
    const rows = page.getByRole("table", { name: "Bundles" }).locator("tbody tr");
    await expect.poll(() => rows.allInnerTexts()).toEqual([expect.stringMatching(/^api_pack\s+2\s+API pack\s+2,000 api_credits\s+0\s+90\.00 USD\s+never expire/)]);
    await page.getByLabel("Show every version").check();
    await expect.poll(() => rows.count()).toBe(2);
    const listed = await admin.billing.listBundles({ allVersions: true });
    expect(listed.bundles.map((bundle) => [bundle.version, bundle.credits, bundle.priceMinor])).toEqual([
      [1, 1000n, 5000n],
      [2, 2000n, 9000n],
    ]);
    expect(await seriousViolations(page)).toEqual([]);
  });

  it("support opens a top-up on a customer's page; once paid it shows paid and the credits arrive", async () => {
    await admin.billing.createBundle({ bundleId: "starter", displayName: "Starter", creditTypeId, credits: 500n, currency: "USD", priceMinor: 2500n, requestId: randomUUID() });
    const page = await signIn(supportToken);
    await page.goto(`${test.server.httpUrl}/#/customers/acme`);
    await page.getByRole("heading", { name: /Acme Corp/ }).waitFor();
    const form = page.getByRole("form", { name: "Open a top-up" });
    await form.getByLabel("Bundle").selectOption({ label: "Starter (25.00 USD)" });
    await form.getByRole("button", { name: "Open a top-up" }).click();
    await form.getByRole("status").getByText(/pending until paid/).waitFor();
    const orders = await admin.billing.listTopUps({ customerId: "acme" });
    expect(orders.topUps.map((order) => [order.state, order.credits, order.priceMinor])).toEqual([[TopUpState.PENDING, 500n, 2500n]]);
    const rows = page.getByRole("table", { name: "Top-ups" }).locator("tbody tr");
    await expect.poll(() => rows.allInnerTexts()).toEqual([expect.stringMatching(/pending\s+starter v1\s+500 api_credits\s+25\.00 USD/)]);
    await admin.billing.confirmTopUp({ orderId: orders.topUps[0].orderId, paymentReference: "pi_ui_1", amountMinor: 2500n, currency: "USD", requestId: randomUUID() });
    await page.reload();
    await expect.poll(() => rows.allInnerTexts()).toEqual([expect.stringMatching(/paid\s+starter v1\s+500 api_credits\s+25\.00 USD\s+pi_ui_1/)]);
    await page.getByRole("heading", { name: "Balance: api_credits" }).waitFor();
    const balance = await admin.ledger.getBalance({ customerId: "acme", creditTypeId });
    expect(balance.balances[0].available).toBe(500n);
    expect(await seriousViolations(page)).toEqual([]);
  });
});
