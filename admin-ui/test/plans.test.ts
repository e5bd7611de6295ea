// Plans in the admin UI, in headless Chromium against a real server and PostgreSQL: an
// admin adds a plan and its next version on the Plans page; on a customer's page the
// admin subscribes them (period 1's credits arrive), sees the schedule with its next
// grant date, moves them to the latest version, cancels, and schedules a recurring grant
// of their own.
import { randomUUID } from "node:crypto";
import { SubscriptionState } from "@burndown/sdk";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithBrowser, seriousViolations, signIn as signInAs, startUi, stopUi } from "../../test-support/browser.js";
import type { Clients, TestServer } from "../../test-support/server.js";

const creditTypeId = "plan_credits";
let test: TestServer;
let browser: Browser;
let admin: Clients;

beforeAll(async () => {
  ({ test, browser } = await startUi());
  admin = test.clients(test.adminToken);
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "Plan credits", scale: 0 }, requestId: randomUUID() });
  await admin.admin.createCustomer({ customer: { customerId: "globex", displayName: "Globex" }, requestId: randomUUID() });
}, 180_000);

afterAll(() => stopUi(test, browser));

const signIn = (token: string): Promise<Page> => signInAs(browser, test.server.httpUrl, token);

describeWithBrowser("plans", () => {
  it("an admin adds a plan, then a new version of it, with a rollover cap; the list shows the latest, or every version", async () => {
    const page = await signIn(test.adminToken);
    await page.getByRole("link", { name: "Platform", exact: true }).click();
    await page.getByRole("navigation", { name: "Platform" }).getByRole("link", { name: "Plans" }).click();
    const form = page.getByRole("form", { name: "Add a plan" });
    for (const credits of ["1,000", "2,000"]) {
      await form.getByLabel("Plan id").fill("team");
      await form.getByLabel("Name shown to customers").fill("Team");
      await form.getByRole("combobox", { name: "Credit type", exact: true }).selectOption(creditTypeId);
      await form.getByLabel("Credits per period").fill(credits);
      await form.getByLabel("Unused credits at the end of a period").selectOption("percent");
      await form.getByLabel("Rollover cap").fill("25");
      await form.getByRole("button", { name: "Save plan" }).click();
      await form.getByText(/Saved team version/).waitFor();
    }
    const rows = page.getByRole("table", { name: "Plans" }).locator("tbody tr");
    await expect.poll(() => rows.allInnerTexts()).toEqual([expect.stringMatching(/^team\s+2\s+Team\s+2,000 plan_credits every month, expires at period end, rolls over up to 25%/)]);
    await page.getByLabel("Show every version").check();
    await expect.poll(() => rows.count()).toBe(2);
    const listed = await admin.plans.listPlans({ allVersions: true });
    expect(listed.plans.map((plan) => [plan.version, plan.allotments[0].amount])).toEqual([
      [1, 1000n],
      [2, 2000n],
    ]);
    expect(await seriousViolations(page)).toEqual([]);
  });

  it("on a customer's page an admin subscribes, sees the next grant date, moves to the latest version and cancels", async () => {
    await admin.plans.createPlan({ planId: "basic", displayName: "Basic", allotments: [{ creditTypeId, amount: 300n, period: { unit: 2, length: 1 }, lotExpiry: { case: "expireAtPeriodEnd", value: true } }], requestId: randomUUID() });
    const page = await signIn(test.adminToken);
    await page.goto(`${test.server.httpUrl}/#/customers/globex`);
    await page.getByRole("heading", { name: /Globex/ }).waitFor();
    const subscribe = page.getByRole("form", { name: "Subscribe to a plan" });
    await subscribe.getByLabel("Plan").selectOption({ label: "Basic (basic v1)" });
    await subscribe.getByRole("button", { name: "Subscribe" }).click();
    await subscribe.getByRole("status").getByText(/Subscribed to basic version 1/).waitFor();
    const balance = await admin.ledger.getBalance({ customerId: "globex", creditTypeId });
    expect(balance.balances[0].available).toBe(300n);
    const schedules = page.getByRole("table", { name: "Scheduled grants" }).locator("tbody tr");
    await expect.poll(() => schedules.allInnerTexts()).toEqual([expect.stringMatching(/^plan\s+300 plan_credits every month, expires at period end\s+1\s+\S+/)]);
    // A new version of the plan; the subscriber keeps version 1 until moved.
    await admin.plans.createPlan({ planId: "basic", displayName: "Basic", allotments: [{ creditTypeId, amount: 500n, period: { unit: 2, length: 1 }, lotExpiry: { case: "expireAtPeriodEnd", value: true } }], requestId: randomUUID() });
    const subscriptions = page.getByRole("table", { name: "Subscriptions" });
    await subscriptions.getByRole("button", { name: "Move to latest version" }).click();
    await expect.poll(async () => (await admin.plans.listSubscriptions({ customerId: "globex" })).subscriptions.map((s) => [s.planVersion, s.state])).toEqual([
      [2, SubscriptionState.ACTIVE],
      [1, SubscriptionState.MOVED],
    ]);
    await expect.poll(() => subscriptions.locator("tbody tr").allInnerTexts()).toEqual([expect.stringMatching(/basic v2\s+active/), expect.stringMatching(/basic v1\s+moved/)]);
    await subscriptions.getByRole("button", { name: "Cancel subscription" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Cancel subscription" }).click();
    await expect.poll(() => subscriptions.locator("tbody tr").first().innerText()).toMatch(/basic v2\s+cancelled/);
    expect(await seriousViolations(page)).toEqual([]);
  });

  it("an admin schedules a recurring grant of the customer's own; it shows with its next grant", async () => {
    const page = await signIn(test.adminToken);
    await page.goto(`${test.server.httpUrl}/#/customers/globex`);
    const form = page.getByRole("form", { name: "Schedule a recurring grant" });
    await form.getByLabel("Credit type", { exact: true }).selectOption(creditTypeId);
    await form.getByLabel("Credits per period").fill("40");
    await form.getByLabel("Every").fill("7");
    await form.getByLabel("Period unit").selectOption({ label: "days" });
    await form.getByLabel("Reason code").fill("goodwill");
    await form.getByLabel("Periods (0: forever)").fill("4");
    await form.getByRole("button", { name: "Schedule a recurring grant" }).click();
    await form.getByRole("status").getByText("Scheduled.").waitFor();
    const rows = page.getByRole("table", { name: "Scheduled grants" }).locator("tbody tr");
    await expect.poll(() => rows.first().innerText()).toMatch(/^goodwill\s+40 plan_credits every 7 days, expires at period end\s+1 of 4\s+\S+/);
    expect(await seriousViolations(page)).toEqual([]);
  });
});
