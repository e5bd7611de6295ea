// The balance as of a past time and the ledger's verification in the admin UI, in headless
// Chromium against a real server and PostgreSQL: support asks for a customer's balance as
// of a moment, as recorded then and as known now, and sees a usage event reported late as
// the difference; the ledger shows both times of each entry and filters by record time;
// an admin verifies the ledger, clean and then with a stored balance corrupted in SQL.
import { randomUUID } from "node:crypto";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { GrantSource, UsageOutcome } from "@burndown/sdk";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithBrowser, seriousViolations, signIn as signInAs, startUi, stopUi } from "../../test-support/browser.js";
import type { Clients, TestServer } from "../../test-support/server.js";

const creditTypeId = "credits";
const customerId = "initech";
let test: TestServer;
let browser: Browser;
let admin: Clients;
/** the moment asked about: after the grant and the usage event, before the event was reported. */
let knownThenMs: number;
/** when the overdraft limit was raised, after knownThenMs: the balance then had none. */
let limitRaisedMs: number;

/** localOf writes a moment as a datetime-local value in UTC, to the second. */
const localOf = (ms: number) => new Date(ms).toISOString().slice(0, 19);

beforeAll(async () => {
  ({ test, browser } = await startUi());
  admin = test.clients(test.adminToken);
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "Credits", scale: 0 }, requestId: randomUUID() });
  await admin.admin.createFeature({ feature: { featureKey: "chat", displayName: "Chat", creditTypeId, burnRate: 1n }, requestId: randomUUID() });
  await admin.admin.createCustomer({ customer: { customerId, displayName: "Initech" }, requestId: randomUUID() });
  await admin.ledger.grant({ customerId, creditTypeId, amount: 100n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
  // The next whole second at least 300 ms away: the event happens before it, and is
  // reported (recorded) more than 300 ms after it.
  knownThenMs = Math.ceil((Date.now() + 300) / 1000) * 1000;
  await new Promise((resolve) => setTimeout(resolve, knownThenMs + 300 - Date.now()));
  const reported = await admin.ledger.reportUsage({
    events: [{ eventId: randomUUID(), customerId, featureKey: "chat", quantity: 30n, eventTime: timestampFromMs(knownThenMs - 200) }],
  });
  expect(reported.results.map((result) => result.outcome)).toEqual([UsageOutcome.BURNED]);
  await admin.admin.setOverdraftLimit({ customerId, limit: { creditTypeId, amount: 200n }, reason: "credit line", requestId: randomUUID() });
  limitRaisedMs = Date.now();
}, 180_000);

afterAll(() => stopUi(test, browser));

const signIn = (token: string): Promise<Page> => signInAs(browser, test.server.httpUrl, token);

describeWithBrowser("balance as of a time", () => {
  it("shows the balance then as recorded then beside as known now, the late event as the difference, and the lots then", async () => {
    const page = await signIn(await test.createKey("support"));
    await page.goto(`${test.server.httpUrl}/#/customers/${customerId}`);
    const form = page.getByRole("form", { name: "Balance as of a time" });
    await form.getByLabel("Effective time (UTC)").fill(localOf(knownThenMs));
    await form.getByLabel("As recorded at (UTC, optional)").fill(localOf(knownThenMs));
    await form.getByRole("button", { name: "Show" }).click();
    const figures = page.getByRole("table", { name: "credits as of then" });
    await figures.waitFor();
    const row = (figure: string) => figures.locator(`tr[data-figure="${figure}"]`).innerText();
    expect((await row("available")).split(/\s+/)).toEqual(["Available", "100", "70", "-30"]);
    expect((await row("burned")).split(/\s+/)).toEqual(["Burned", "0", "30", "30"]);
    expect((await row("granted")).split(/\s+/)).toEqual(["Granted", "100", "100", "—"]);
    // The limit raised since is not the limit then, as known then or now.
    expect((await row("overdraftLimit")).split(/\s+/)).toEqual(["Overdraft", "limit", "0", "0", "—"]);
    const lots = page.getByRole("table", { name: "Lots as of then" }).locator("tbody tr");
    expect((await lots.allInnerTexts()).map((text) => text.split(/\t/).slice(1, 8))).toEqual([["credits", "Purchase", "100", "100", "0", "0", "live"]]);
    expect(await seriousViolations(page)).toEqual([]);

    // Without a record time: as known now only.
    await form.getByLabel("As recorded at (UTC, optional)").fill("");
    await form.getByRole("button", { name: "Show" }).click();
    await expect.poll(() => row("available")).toMatch(/^Available\s+70$/);

    // A moment after the raise (whole seconds, as the form takes them): the new limit.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, limitRaisedMs + 1_100 - Date.now())));
    await form.getByLabel("Effective time (UTC)").fill(localOf(Math.floor(Date.now() / 1000) * 1000));
    await form.getByRole("button", { name: "Show" }).click();
    await expect.poll(() => row("overdraftLimit")).toMatch(/^Overdraft limit\s+200$/);
  });

  it("shows each entry's effective and record times and filters by record time", async () => {
    const page = await signIn(await test.createKey("support"));
    await page.goto(`${test.server.httpUrl}/#/customers/${customerId}/ledger`);
    const table = page.getByRole("table", { name: "Ledger entries" });
    await table.waitFor();
    expect(await table.locator("thead th").allInnerTexts()).toEqual(expect.arrayContaining(["Effective", "Recorded"]));
    await expect.poll(() => table.locator("tbody tr").count()).toBe(2);
    await page.getByLabel("Recorded from (UTC)").fill(localOf(knownThenMs));
    await expect.poll(() => table.locator("tbody tr").count()).toBe(1);
    const late = table.locator("tbody tr").first();
    expect(await late.getAttribute("data-entry-kind")).toBe("Burn");
    const [effective, recorded] = (await late.innerText()).split("\t");
    expect(effective).toContain(new Date(knownThenMs - 1000).toISOString().slice(11, 19));
    expect(recorded).toContain(new Date(knownThenMs).toISOString().slice(11, 19));
    await page.getByLabel("Recorded before (UTC)").fill(localOf(knownThenMs));
    await page.getByText("No entries match.").waitFor();
    expect(await seriousViolations(page)).toEqual([]);
  });
});

describeWithBrowser("verifying the ledger", () => {
  it("an admin runs it clean, then sees a corrupted stored balance named with stored and rebuilt values; support may not run it", async () => {
    const page = await signIn(test.adminToken);
    await page.getByRole("link", { name: "Platform", exact: true }).click();
    await page.getByRole("navigation", { name: "Platform" }).getByRole("link", { name: "Verify the ledger" }).click();
    const form = page.getByRole("form", { name: "Verify the ledger" });
    await form.getByRole("button", { name: "Verify now" }).click();
    const result = page.getByRole("status", { name: "Verification result" });
    await result.getByText("No differences: every projection equals its entries.").waitFor();
    expect(await result.getByTestId("verify-counts").innerText()).toMatch(/^Checked 1 balances, 1 lots and 0 reservations against 2 entries in \d+ (ms|\.\d s)\.$/);
    expect(await seriousViolations(page)).toEqual([]);

    await test.database.pool.query("update balances set burned = burned + 5 where customer_id = $1", [customerId]);
    try {
      await form.getByLabel("Customer id (optional)").fill(customerId);
      await form.getByRole("button", { name: "Verify now" }).click();
      await result.getByText("1 differences found.").waitFor();
      const rows = page.getByRole("table", { name: "Differences" }).locator("tbody tr");
      expect((await rows.allInnerTexts()).map((text) => text.split("\t"))).toEqual([["balances", `${customerId}/${creditTypeId}`, "burned", "35", "30"]]);
      expect(await seriousViolations(page)).toEqual([]);
    } finally {
      await test.database.pool.query("update balances set burned = burned - 5 where customer_id = $1", [customerId]);
    }

    const support = await signIn(await test.createKey("support"));
    await support.goto(`${test.server.httpUrl}/#/platform/verify`);
    await support.getByText("Only an admin key can verify the ledger.").waitFor();
    expect(await support.getByRole("form", { name: "Verify the ledger" }).count()).toBe(0);
  });
});
