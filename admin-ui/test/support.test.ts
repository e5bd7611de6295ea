// The admin UI as support uses it, in headless Chromium against a real server and
// PostgreSQL: sign in with a support key, find a customer, read balances, lots and what
// expires when, grant within the key's limit and see the ledger update, see a grant above
// the limit filed for approval (and nothing granted), and open a usage event's story.
import { randomUUID } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { EntryKind, GrantSource } from "@burndown/sdk";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithBrowser, seriousViolations, signIn as signInAs, startUi, stopUi } from "../../test-support/browser.js";
import type { TestServer } from "../../test-support/server.js";

let test: TestServer;
let browser: Browser;
let supportToken: string;
const creditTypeId = "usd";

beforeAll(async () => {
  ({ test, browser } = await startUi());
  const { admin, ledger } = test.clients(test.adminToken);
  await admin.createCreditType({ creditType: { creditTypeId, displayName: "USD credits", scale: 2 }, requestId: randomUUID() });
  await admin.createFeature({ feature: { featureKey: "chat", displayName: "Chat", creditTypeId, burnRate: 150n }, requestId: randomUUID() });
  await admin.createCustomer({ customer: { customerId: "acme", displayName: "Acme Corp" }, requestId: randomUUID() });
  await admin.createCustomer({ customer: { customerId: "acme-labs", displayName: "Acme Labs" }, requestId: randomUUID() });
  await admin.createCustomer({ customer: { customerId: "globex", displayName: "Globex Inc" }, requestId: randomUUID() });
  // 500.00 that expire on Jan 31, 2027, and 1,000.00 that never do.
  await ledger.grant({ customerId: "acme", creditTypeId, amount: 50_000n, source: GrantSource.PROMOTION, reasonCode: "promotion", expireTime: timestampFromDate(new Date("2027-01-31T12:00:00Z")), requestId: randomUUID() });
  await ledger.grant({ customerId: "acme", creditTypeId, amount: 100_000n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
  const service = test.clients(await test.createKey("service"));
  // A usage event of 3 chats at 1.50 each burns 4.50, from the lot that expires first.
  const reported = await service.ledger.reportUsage({ events: [{ eventId: "evt-chat-1", customerId: "acme", featureKey: "chat", quantity: 3n }] });
  expect(reported.results[0].reason).toBe("");
  // A reservation of 2.00 is open.
  await service.ledger.reserve({ customerId: "acme", cost: { case: "credits", value: { creditTypeId, amount: 200n } }, requestId: randomUUID() });
  supportToken = await test.createKey("support", 10_000n); // may grant up to 100.00 per grant
}, 180_000);

afterAll(() => stopUi(test, browser));

const signIn = (token: string): Promise<Page> => signInAs(browser, test.server.httpUrl, token);

async function openAcme(page: Page): Promise<void> {
  await page.getByLabel("Find a customer by id or name").fill("Acme");
  await page.getByRole("button", { name: "Search" }).click();
  const results = page.getByRole("row");
  await page.getByRole("link", { name: "acme", exact: true }).waitFor();
  // Both Acmes match the name; the exact id comes first.
  expect(await results.allInnerTexts()).toEqual([expect.stringContaining("Customer id"), expect.stringMatching(/^acme\s+Acme Corp/), expect.stringMatching(/^acme-labs\s+Acme Labs/)]);
  await page.getByRole("link", { name: "acme", exact: true }).click();
  await page.getByRole("heading", { name: /Acme Corp/ }).waitFor();
}

const available = async () => (await test.clients(test.adminToken).ledger.getBalance({ customerId: "acme" })).balances[0].available;

describeWithBrowser("support in the admin UI", () => {
  it("the sign-in and search pages have no serious accessibility violation", async () => {
    const page = await browser.newPage();
    await page.goto(test.server.httpUrl);
    await page.getByLabel("API key").waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await page.close();
    const signedIn = await signIn(supportToken);
    await signedIn.getByLabel("Find a customer by id or name").fill("acme");
    await signedIn.getByRole("button", { name: "Search" }).click();
    await signedIn.getByRole("link", { name: "acme", exact: true }).waitFor();
    expect(await seriousViolations(signedIn)).toEqual([]);
    await signedIn.close();
  });

  it("finds a customer by name and reads balances, lots, what expires when and open reservations", async () => {
    const page = await signIn(supportToken);
    await openAcme(page);
    // 1,500.00 granted - 4.50 burned - 2.00 held.
    await expect.poll(() => page.getByTestId("available-usd").innerText()).toBe("1,493.50");
    const figures = await page.getByRole("definition").allInnerTexts();
    expect(figures).toEqual(["1,493.50", "2.00", "4.50", "0.00", "0.00", "1,500.00"]);
    expect(await page.getByTestId("expiry-usd").innerText()).toBe("495.50 expiring Jan 31, 2027 · 1,000.00 never expiring");
    const lots = await page.getByRole("table", { name: "Lots of usd" }).getByRole("row").allInnerTexts();
    expect(lots.slice(1)).toEqual([
      expect.stringMatching(/Promotion\s+promotion\s+500\.00\s+495\.50\s+2\.00\s+0\s+\w+ \d+, \d{4}\s+Jan 31, 2027/),
      expect.stringMatching(/Purchase\s+purchase\s+1,000\.00\s+1,000\.00\s+0\.00\s+0\s+\w+ \d+, \d{4}\s+never/),
    ]);
    const reservations = await page.getByRole("table", { name: "Open reservations" }).getByRole("row").allInnerTexts();
    expect(reservations).toHaveLength(2);
    expect(reservations[1]).toMatch(/usd\s+2\.00\s+held/);
    expect(await seriousViolations(page)).toEqual([]);
    await page.close();
  });

  it("grants within the key's limit, shown before submitting; the balance and the ledger update", async () => {
    const before = await available();
    const page = await signIn(supportToken);
    await openAcme(page);
    // The limit is shown at the credit type's scale once the credit types have loaded, which may be after the heading.
    await expect.poll(() => page.getByTestId("grant-limit").innerText()).toBe("Your key may grant up to 100.00 usd per grant.");
    const form = page.getByRole("form", { name: "Grant credits" });
    await form.getByLabel("Amount").fill("25.50");
    await form.getByLabel("Reason").selectOption("goodwill");
    await form.getByLabel("Note (for the ledger and the audit trail)").fill("outage on Dec 5");
    await form.getByRole("button", { name: "Grant" }).click();
    await form.getByRole("status").filter({ hasText: "Granted 25.50 usd." }).waitFor();
    expect(await available()).toBe(before + 2_550n);
    await expect.poll(() => page.getByTestId("available-usd").innerText()).toBe("1,519.00");
    await page.getByRole("tab", { name: "Ledger" }).click();
    const newest = page.getByRole("table", { name: "Ledger entries" }).getByRole("row").nth(1);
    await expect.poll(() => newest.innerText()).toMatch(/Grant\s+25\.50\s+usd\s+goodwill/);
    expect(await seriousViolations(page)).toEqual([]);
    await page.close();
  });

  it("a grant above the key's limit is filed for approval, said in words, and nothing is granted", async () => {
    const before = await available();
    const page = await signIn(supportToken);
    await openAcme(page);
    const form = page.getByRole("form", { name: "Grant credits" });
    await form.getByLabel("Amount").fill("150");
    await form.getByText("That is above your limit: it will be filed for approval by another person.").waitFor();
    await form.getByRole("button", { name: "Request approval" }).click();
    await form.getByRole("status").filter({ hasText: "Above your limit: 150.00 usd filed for approval by another person." }).waitFor();
    expect(await available()).toBe(before);
    expect(await seriousViolations(page)).toEqual([]);
    await page.close();
  });

  it("a ledger entry of a usage event opens its story: event, rate and version, lots, entries, corrections", async () => {
    const page = await signIn(supportToken);
    await openAcme(page);
    await page.getByRole("tab", { name: "Ledger" }).click();
    await page.getByLabel("Kind").selectOption({ label: "Burn" });
    const burnRows = page.getByRole("table", { name: "Ledger entries" }).getByRole("row");
    await expect.poll(() => burnRows.count()).toBe(2);
    await page.getByRole("link", { name: /usage event/ }).click();
    await page.getByRole("heading", { name: "Usage event evt-chat-1" }).waitFor();
    const story = await page.getByRole("list", { name: "What happened" }).innerText();
    expect(story).toContain("3 units of chat for acme");
    expect(story).toContain("It burned credits from the balance.");
    expect(story).toMatch(/150 credits per 1 units/);
    expect(story).toContain("4.50 usd");
    expect(story).toMatch(/Promotion, promotion, granted 500\.00/);
    expect(story).toContain("Not corrected.");
    const entries = await page.getByRole("table", { name: "Entries of this event" }).getByRole("row").allInnerTexts();
    expect(entries.slice(1).map((row) => row.split("\t")[1] + " " + row.split("\t")[2])).toEqual(["Burn 4.50"]);
    // Support may read, not correct.
    expect(await page.getByRole("form", { name: "Correct this event" }).count()).toBe(0);
    expect(await seriousViolations(page)).toEqual([]);
    await page.close();
  });

  it("an admin corrects the event from its page: the refund shows in the story and the balance", async () => {
    const before = await available();
    const page = await signIn(test.adminToken);
    const { entries } = await test.clients(test.adminToken).ledger.listLedgerEntries({ customerId: "acme", kinds: [EntryKind.BURN] });
    await page.goto(`${test.server.httpUrl}/#/events/${entries[0].usageId}`);
    const form = page.getByRole("form", { name: "Correct this event" });
    await form.getByLabel("Note").fill("rated twice upstream");
    await form.getByRole("button", { name: "Refund this event" }).click();
    await page.getByTestId("correction").waitFor();
    expect(await page.getByTestId("correction").innerText()).toMatch(/\(wrong_rate: rated twice upstream\): 4\.50 refunded\./);
    expect(await available()).toBe(before + 450n);
    await page.close();
  });
});
