// The customer's own view, as a vendor embeds it (/customer#key=...), in headless
// Chromium: balance with what expires when, burn per day and week by feature from known
// events, the days-until-empty forecast, history with why each credit burned, and never
// another customer's data.
import { randomUUID } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { GrantSource, Role } from "@burndown/sdk";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithBrowser, seriousViolations, startUi, stopUi } from "../../test-support/browser.js";
import type { TestServer } from "../../test-support/server.js";

const dayMs = 86_400_000;
const creditTypeId = "usd";
let test: TestServer;
let browser: Browser;
let customerKey: string;
let otherKey: string;
const today = new Date(Math.floor(Date.now() / dayMs) * dayMs);
const daysAgo = (days: number, hour = 12) => new Date(today.getTime() - days * dayMs + hour * 3_600_000);

beforeAll(async () => {
  ({ test, browser } = await startUi());
  const { admin, ledger } = test.clients(test.adminToken);
  await admin.createCreditType({ creditType: { creditTypeId, displayName: "USD credits", scale: 2 }, requestId: randomUUID() });
  await admin.createFeature({ feature: { featureKey: "chat", displayName: "Chat", creditTypeId, burnRate: 150n }, requestId: randomUUID() });
  await admin.createFeature({ feature: { featureKey: "images", displayName: "Images", creditTypeId, burnRate: 500n }, requestId: randomUUID() });
  for (const [customerId, displayName] of [["initech", "Initech"], ["umbrella", "Umbrella Corp"]]) {
    await admin.createCustomer({ customer: { customerId, displayName }, requestId: randomUUID() });
  }
  // 100.00 effective since before the events, so that they burn it as they happened.
  await ledger.grant({ customerId: "initech", creditTypeId, amount: 10_000n, source: GrantSource.PURCHASE, reasonCode: "purchase", effectiveTime: timestampFromDate(daysAgo(6, 0)), requestId: randomUUID() });
  await ledger.grant({ customerId: "umbrella", creditTypeId, amount: 99_900n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
  const service = test.clients(await test.createKey("service"));
  // Two days ago: 2 chats (3.00) and 1 image (5.00); four days ago: 4 chats (6.00). 14.00 in all.
  const events = [
    { eventId: "i-1", featureKey: "chat", quantity: 2n, at: daysAgo(2) },
    { eventId: "i-2", featureKey: "images", quantity: 1n, at: daysAgo(2, 13) },
    { eventId: "i-3", featureKey: "chat", quantity: 4n, at: daysAgo(4) },
  ];
  const reported = await service.ledger.reportUsage({ events: events.map((event) => ({ eventId: event.eventId, customerId: "initech", featureKey: event.featureKey, quantity: event.quantity, eventTime: timestampFromDate(event.at) })) });
  expect(reported.results.map((result) => result.reason)).toEqual(["", "", ""]);
  await service.ledger.reportUsage({ events: [{ eventId: "u-1", customerId: "umbrella", featureKey: "images", quantity: 7n }] });
  const keyFor = async (customerId: string) =>
    (await admin.createApiKey({ name: `${customerId} portal`, role: Role.CUSTOMER, customerId, requestId: randomUUID() })).token;
  customerKey = await keyFor("initech");
  otherKey = await keyFor("umbrella");
}, 180_000);

afterAll(() => stopUi(test, browser));

async function openView(key: string): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${test.server.httpUrl}/customer#key=${encodeURIComponent(key)}`);
  await page.getByRole("heading", { name: "Your credits" }).waitFor();
  return page;
}

describeWithBrowser("the customer view", () => {
  it("shows the balance, and takes the key out of the address bar", async () => {
    const page = await openView(customerKey);
    expect(page.url()).toBe(`${test.server.httpUrl}/customer`);
    await expect.poll(() => page.locator(".big").first().innerText()).toBe("86.00 usd available");
    expect(await page.getByRole("list", { name: "When your usd expire" }).innerText()).toBe("86.00 never expiring");
    expect(await seriousViolations(page)).toEqual([]);
    await page.close();
  });

  it("charts burn per day and per week by feature from the known events", async () => {
    const page = await openView(customerKey);
    const bars = page.locator("svg g[data-bucket]");
    await expect.poll(() => bars.count()).toBe(30);
    const totals = Object.fromEntries(await bars.evaluateAll((groups) => groups.map((group) => [group.getAttribute("data-bucket"), group.getAttribute("data-total")])));
    const day = (days: number) => daysAgo(days).toISOString().slice(0, 10);
    expect(totals[day(2)]).toBe("800");
    expect(totals[day(4)]).toBe("600");
    expect(Object.entries(totals).filter(([, total]) => total !== "0")).toHaveLength(2);
    expect(await page.getByRole("img", { name: /Credits burned per day: 14\.00 in total/ }).count()).toBe(1);
    expect(await page.locator(".legend li").allInnerTexts()).toEqual(["chat", "images"]);
    await page.getByRole("button", { name: "Weekly" }).click();
    await expect.poll(() => bars.count()).toBe(12);
    const weekly = await bars.evaluateAll((groups) => groups.map((group) => BigInt(group.getAttribute("data-total") ?? "0")).reduce((a, b) => a + b, 0n).toString());
    expect(weekly).toBe("1400");
    expect(await seriousViolations(page)).toEqual([]);
    await page.close();
  });

  it("forecasts days until empty from the recent burn rate", async () => {
    const page = await openView(customerKey);
    const forecast = page.getByTestId("forecast-usd");
    await forecast.waitFor();
    // 14.00 over 14 days is 1.00 a day; 86.00 lasts 86 days.
    const until = new Intl.DateTimeFormat("en-US", { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" }).format(new Date(Date.now() + 86 * dayMs));
    expect(await forecast.innerText()).toBe(`At your recent usage (1.00 a day), your credits last about 86 more days, until ${until}.`);
    await page.close();
  });

  it("lists history with why each credit burned", async () => {
    const page = await openView(customerKey);
    const table = page.getByRole("table", { name: "Your credit history" });
    await table.getByRole("row").nth(4).waitFor();
    const rows = await table.getByRole("row").allInnerTexts();
    expect(rows.slice(1).map((row) => row.split("\t").slice(1, 3).join(" "))).toEqual(["Burn -5.00 usd", "Burn -3.00 usd", "Burn -6.00 usd", "Grant 100.00 usd"]);
    await table.getByRole("button", { name: /why\?/ }).first().click();
    const story = page.getByRole("list", { name: "What happened" });
    await story.waitFor();
    expect(await story.innerText()).toMatch(/1 units of images for initech/);
    expect(await seriousViolations(page)).toEqual([]);
    await page.close();
  });

  it("never shows another customer: each key sees its own, and asking for another is NOT_FOUND", async () => {
    const page = await openView(otherKey);
    await expect.poll(() => page.locator(".big").first().innerText()).toBe("964.00 usd available");
    expect(await page.content()).not.toContain("initech");
    // The same key, asking the API from the page for the other customer, is refused as if it did not exist.
    const answer = await page.evaluate(async (key) => {
      const response = await fetch("/burndown.v1.LedgerService/GetBalance", { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: JSON.stringify({ customerId: "initech" }) });
      return { status: response.status, body: await response.json() };
    }, otherKey);
    expect(answer.status).toBe(404);
    expect(JSON.stringify(answer.body)).toContain("CUSTOMER_NOT_FOUND");
    await page.close();
  });
});
