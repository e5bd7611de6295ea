// The finance report in the admin UI, in headless Chromium against a real server and
// PostgreSQL: an admin makes a finance key on the API keys page; signed in with it, a
// person sees the Finance screen and nothing else (no customers, even by address), runs
// this month's roll-forward, reads it in credits and in money, and downloads the same
// report as CSV. An admin finds the same screen beside the others.
import { randomUUID } from "node:crypto";
import { GrantSource } from "@burndown/sdk";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithBrowser, seriousViolations, signIn, startUi, stopUi } from "../../test-support/browser.js";
import type { Clients, TestServer } from "../../test-support/server.js";

const creditTypeId = "report_credits";
let test: TestServer;
let browser: Browser;
let admin: Clients;

beforeAll(async () => {
  ({ test, browser } = await startUi());
  admin = test.clients(test.adminToken);
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "Report credits", scale: 0 }, requestId: randomUUID() });
  // This month (the screen's default range ends with it): $100 for 10,000 credits, 500 free, 3,000 burned.
  const grant = (source: GrantSource, amount: bigint, costBasisMicros: bigint) =>
    admin.ledger.grant({ customerId: "initech", creditTypeId, amount, source, costBasisMicros, reasonCode: "report", requestId: randomUUID() });
  await grant(GrantSource.PURCHASE, 10_000n, 1_000_000n);
  await grant(GrantSource.PROMOTION, 500n, 0n);
  await admin.ledger.burn({ customerId: "initech", cost: { case: "credits", value: { creditTypeId, amount: 3_000n } }, requestId: randomUUID() });
}, 180_000);

afterAll(() => stopUi(test, browser));

/** makeFinanceKey makes a finance key the way an admin does, on the API keys page, and returns its token. */
async function makeFinanceKey(): Promise<string> {
  const page = await signIn(browser, test.server.httpUrl, test.adminToken);
  await page.getByRole("link", { name: "Platform", exact: true }).click();
  await page.getByRole("navigation", { name: "Platform" }).getByRole("link", { name: "API keys" }).click();
  const form = page.getByRole("form", { name: "Make an API key" });
  await form.getByLabel("Name (who or what uses it)").fill("controller");
  await form.getByLabel("Role").selectOption({ label: "Finance" });
  await form.getByRole("button", { name: "Make key" }).click();
  const token = await page.getByTestId("new-token").inputValue();
  expect(token).toMatch(/^bd_/);
  await page.context().close();
  return token;
}

/** runReport fills the report form for this month and the test's credit type, and waits for its tables. */
async function runReport(page: Page): Promise<void> {
  const form = page.getByRole("form", { name: "Revenue roll-forward" });
  await form.getByLabel("Credit type (empty for all)").fill(creditTypeId);
  await form.getByRole("button", { name: "Run report" }).click();
  await page.getByRole("table", { name: `${creditTypeId} in credits` }).waitFor();
}

const month = new Date().toLocaleString("en-US", { month: "long", year: "numeric", timeZone: "UTC" });

describeWithBrowser("the finance report", () => {
  it("a finance key sees only the Finance screen, reads this month's roll-forward in credits and money, and downloads it as CSV", async () => {
    const token = await makeFinanceKey();
    const page = await signIn(browser, test.server.httpUrl, token, "Finance");
    const nav = page.getByRole("navigation", { name: "Main" });
    expect(await nav.getByRole("link").allInnerTexts()).toEqual(["Burndown", "Finance"]);
    await runReport(page);
    const lastRow = (name: string) => page.getByRole("table", { name }).locator("tbody tr").last();
    // Opening, purchased, free, recognized, burn refunds, breakage, clawed back, adjustments, closing (and the memo).
    await expect.poll(() => lastRow(`${creditTypeId} in credits`).locator("th, td").allInnerTexts()).toEqual([
      month, "0", "10,000", "500", "3,000", "0", "0", "0", "0", "7,500", "0",
    ]);
    // In cents: $100 bought, $30 recognized, $70 deferred.
    expect(await lastRow(`${creditTypeId} in money (minor units)`).locator("th, td").allInnerTexts()).toEqual([
      month, "0", "10,000", "0", "3,000", "0", "0", "0", "0", "7,000",
    ]);
    expect(await seriousViolations(page)).toEqual([]);

    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download CSV" }).click()]);
    expect(download.suggestedFilename()).toMatch(/^revenue-roll-forward-\d{4}-\d{2}-01-\d{4}-\d{2}-01\.csv$/);
    const chunks: Buffer[] = [];
    for await (const chunk of (await download.createReadStream())!) chunks.push(chunk as Buffer);
    const [header, ...rows] = Buffer.concat(chunks).toString("utf8").trimEnd().split("\r\n");
    expect(header).toMatch(/^credit_type_id,period_start,period_end,opening_credits,purchased_credits,/);
    expect(rows.at(-1)).toMatch(new RegExp(`^${creditTypeId},[^,]+,[^,]+,0,10000,500,3000,0,0,0,0,7500,0,10000000000,0,3000000000,0,0,0,0,7000000000,0,0$`));

    // The address of a customer still shows the report: the key may read no customer.
    await page.goto(`${test.server.httpUrl}/#/customers/initech`);
    await page.getByRole("heading", { name: "Finance", exact: true }).waitFor();
    expect(await page.getByRole("heading", { name: "initech" }).count()).toBe(0);
    expect(await nav.getByRole("link", { name: "Customers" }).count()).toBe(0);
    await page.context().close();
  });

  it("an admin opens Finance from the main navigation and sees the same report", async () => {
    const page = await signIn(browser, test.server.httpUrl, test.adminToken);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Finance" }).click();
    await page.getByRole("heading", { name: "Finance", exact: true }).waitFor();
    await runReport(page);
    await expect.poll(() => page.getByRole("table", { name: `${creditTypeId} in credits` }).locator("tbody tr").last().locator("td").last().innerText()).toBe("0");
    expect(await page.getByRole("table", { name: `${creditTypeId} in credits` }).locator("tbody tr").count()).toBe(3);
    expect(await seriousViolations(page)).toEqual([]);
    await page.context().close();
  });
});
