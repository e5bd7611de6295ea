// Promotions in the admin UI and the customer's own view, in headless Chromium against a
// real server and PostgreSQL: an admin creates a promo code on the Promotions page; the
// customer redeems it on its view and sees its promotional credits apart from purchased
// ones; a second redemption is refused in words; the code's count shows on the page, and
// an admin disables it.
import { randomUUID } from "node:crypto";
import { GrantSource, Role } from "@burndown/sdk";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithBrowser, seriousViolations, signIn as signInAs, startUi, stopUi } from "../../test-support/browser.js";
import type { Clients, TestServer } from "../../test-support/server.js";

const creditTypeId = "ai_credits";
let test: TestServer;
let browser: Browser;
let admin: Clients;
let customerKey: string;

beforeAll(async () => {
  ({ test, browser } = await startUi());
  admin = test.clients(test.adminToken);
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "AI credits", scale: 0 }, requestId: randomUUID() });
  await admin.admin.createCustomer({ customer: { customerId: "globex", displayName: "Globex" }, requestId: randomUUID() });
  await admin.ledger.grant({ customerId: "globex", creditTypeId, amount: 100n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
  customerKey = (await admin.admin.createApiKey({ name: "globex portal", role: Role.CUSTOMER, customerId: "globex", requestId: randomUUID() })).token;
}, 180_000);

afterAll(() => stopUi(test, browser));

const signIn = (token: string): Promise<Page> => signInAs(browser, test.server.httpUrl, token);

async function openPromotions(): Promise<Page> {
  const page = await signIn(test.adminToken);
  await page.getByRole("link", { name: "Platform", exact: true }).click();
  await page.getByRole("navigation", { name: "Platform" }).getByRole("link", { name: "Promotions" }).click();
  return page;
}

describeWithBrowser("promotions", () => {
  it("an admin creates a code; the customer redeems it, sees it apart from purchased credits, and a second try is refused in words", async () => {
    const page = await openPromotions();
    const form = page.getByRole("form", { name: "Create a promo code" });
    await form.getByLabel("Code customers type").fill("Welcome-50");
    await form.getByLabel("Credits each redemption gives").fill("50");
    await form.getByLabel("Credits last this many days").fill("30");
    await form.getByLabel("Redemptions allowed in all").fill("100");
    await form.getByLabel("Description").fill("welcome campaign");
    await form.getByRole("button", { name: "Create code" }).click();
    await form.getByText("Created Welcome-50.").waitFor();
    const rows = page.getByRole("table", { name: "Promo codes" }).locator("tbody tr");
    await expect.poll(() => rows.allInnerTexts()).toEqual([expect.stringMatching(/^Welcome-50\s+50 ai_credits\s+30 days from redemption\s+0\s+no end\s+0 of 100\s+welcome campaign\s+Enabled/)]);
    expect(await seriousViolations(page)).toEqual([]);

    const view = await browser.newPage();
    await view.goto(`${test.server.httpUrl}/customer#key=${encodeURIComponent(customerKey)}`);
    await view.getByRole("heading", { name: "Your credits" }).waitFor();
    const redeem = view.getByRole("form", { name: "Redeem a promo code" });
    await redeem.getByLabel("Promo code").fill("welcome-50");
    await redeem.getByRole("button", { name: "Redeem" }).click();
    await view.getByRole("status").getByText(/^Code Welcome-50 redeemed: 50 promotional ai_credits, expiring /).waitFor();
    const sources = view.getByRole("list", { name: "Your ai_credits by source" });
    await expect.poll(() => sources.locator("li").allInnerTexts()).toEqual([expect.stringMatching(/^50 promotional credits, expiring \w+ \d+, \d{4}$/), "100 purchased credits"]);
    await expect.poll(() => view.locator(".big").first().innerText()).toBe("150 ai_credits available");

    await redeem.getByLabel("Promo code").fill("WELCOME-50");
    await redeem.getByRole("button", { name: "Redeem" }).click();
    await view.getByRole("alert").getByText("Code not redeemed: You have already redeemed this promo code.").waitFor();
    await redeem.getByLabel("Promo code").fill("NO-SUCH-CODE");
    await redeem.getByRole("button", { name: "Redeem" }).click();
    await view.getByRole("alert").getByText("Code not redeemed: That promo code does not exist. Check its spelling.").waitFor();
    expect(await seriousViolations(view)).toEqual([]);
    await view.close();

    const balance = await admin.ledger.getBalance({ customerId: "globex", creditTypeId });
    expect(balance.balances[0].lots.map((lot) => [lot.source, lot.remaining])).toEqual([
      [GrantSource.PROMOTION, 50n],
      [GrantSource.PURCHASE, 100n],
    ]);
    await page.reload();
    await expect.poll(() => page.getByRole("table", { name: "Promo codes" }).getByTestId("redemptions").allInnerTexts()).toEqual(["1 of 100"]);
    await page.close();
  });

  it("support sees the customer's promotional credits apart on the customer screen, and the codes without a form", async () => {
    const page = await signIn(await test.createKey("support", 100n));
    await page.goto(`${test.server.httpUrl}/#/customers/globex`);
    await page.getByRole("heading", { name: "Balance: ai_credits" }).waitFor();
    await expect.poll(() => page.getByTestId("sources-ai_credits").innerText()).toMatch(/^50 promotional credits, expiring \w+ \d+, \d{4} · 100 purchased credits$/);
    await page.goto(`${test.server.httpUrl}/#/platform/promotions`);
    await page.getByRole("table", { name: "Promo codes" }).locator("tbody tr[data-code='Welcome-50']").waitFor();
    expect(await page.getByRole("form", { name: "Create a promo code" }).count()).toBe(0);
    expect(await page.getByRole("button", { name: /^Disable/ }).count()).toBe(0);
    await page.close();
  });

  it("an admin disables a code; it leaves the list of enabled codes and can no longer be redeemed", async () => {
    await admin.promotions.createPromoCode({ code: "SPRING", creditTypeId, amount: 10n, creditValidity: { seconds: 86_400n }, requestId: randomUUID() });
    const page = await openPromotions();
    const row = page.getByRole("table", { name: "Promo codes" }).locator("tbody tr[data-code='SPRING']");
    await row.getByRole("button", { name: "Disable SPRING" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Disable" }).click();
    await expect.poll(() => row.count()).toBe(0);
    await page.getByLabel("Show disabled codes").check();
    await expect.poll(() => row.getByTestId("code-state").innerText()).toMatch(/^Disabled /);
    const listed = await admin.promotions.listPromoCodes({ includeDisabled: true });
    expect(listed.promoCodes.find((code) => code.code === "SPRING")?.disableTime).toBeDefined();
    const refused = await admin.promotions.redeemPromoCode({ customerId: "globex", code: "spring", requestId: randomUUID() }).catch((error: Error) => error.message);
    expect(refused).toMatch(/promo code SPRING is disabled/);
    await page.close();
  });
});
