// Pooled credits in the admin UI, in headless Chromium against a real server and
// PostgreSQL: an admin attaches a member on the pool owner's page and limits it; the
// member's burns show as its use this period and, in the owner's ledger, under its name;
// the member's page links to the pool it burns from; detaching takes a confirmation.
import { randomUUID } from "node:crypto";
import { GrantSource, PoolPeriod } from "@burndown/sdk";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithBrowser, seriousViolations, signIn as signInAs, startUi, stopUi } from "../../test-support/browser.js";
import type { Clients, TestServer } from "../../test-support/server.js";

const creditTypeId = "team_credits";
let test: TestServer;
let browser: Browser;
let admin: Clients;

beforeAll(async () => {
  ({ test, browser } = await startUi());
  admin = test.clients(test.adminToken);
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "Team credits", scale: 0 }, requestId: randomUUID() });
  for (const [customerId, displayName] of [["globex", "Globex"], ["globex-design", "Globex design team"]]) {
    await admin.admin.createCustomer({ customer: { customerId, displayName }, requestId: randomUUID() });
  }
  await admin.ledger.grant({ customerId: "globex", creditTypeId, amount: 10_000n, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
}, 180_000);

afterAll(() => stopUi(test, browser));

const signIn = (token: string): Promise<Page> => signInAs(browser, test.server.httpUrl, token);

describeWithBrowser("pooled credits", () => {
  it("an admin attaches and limits a member; its burns show as its use and in the owner's ledger; detaching asks first", async () => {
    const page = await signIn(test.adminToken);
    await page.goto(`${test.server.httpUrl}/#/customers/globex`);
    await page.getByRole("heading", { name: /Globex/ }).first().waitFor();
    await page.getByText("No members: this customer spends only its own credits.").waitFor();
    const attach = page.getByRole("form", { name: "Attach a member" });
    await attach.getByLabel("Member customer id").fill("globex-design");
    await attach.getByRole("button", { name: "Attach" }).click();
    const rows = page.getByRole("table", { name: "Pool members" }).locator("tbody tr");
    await expect.poll(() => rows.allInnerTexts()).toEqual([expect.stringMatching(/^globex-design\s+No limit, nothing used this month/)]);

    const limit = page.getByRole("form", { name: "Set a member's limit" });
    await limit.getByLabel("Limit (empty: none)").fill("500");
    await limit.getByLabel("Per").selectOption({ label: "day" });
    await limit.getByRole("button", { name: "Set limit" }).click();
    await expect.poll(() => rows.allInnerTexts()).toEqual([expect.stringMatching(/team_credits: 0 used of 500 per day/)]);
    const pool = await admin.pools.listPoolMembers({ customerId: "globex" });
    expect(pool.members[0].limits.map((l) => [l.limit, l.period])).toEqual([[500n, PoolPeriod.DAY]]);

    await admin.ledger.burn({ customerId: "globex-design", cost: { case: "credits", value: { creditTypeId, amount: 120n } }, requestId: randomUUID() });
    await page.reload();
    await expect.poll(() => rows.allInnerTexts()).toEqual([expect.stringMatching(/team_credits: 120 used of 500 per day/)]);
    expect(await page.getByTestId(`available-${creditTypeId}`).innerText()).toBe("9,880");

    await page.getByRole("tab", { name: "Ledger" }).click();
    const entries = page.getByRole("table", { name: "Ledger entries" }).locator("tbody tr");
    await expect.poll(() => entries.first().innerText()).toMatch(/Burn\s+120\s+team_credits\s+burn\s+globex-design/);
    expect(await seriousViolations(page)).toEqual([]);

    await page.getByRole("tab", { name: "Overview" }).click();
    await page.getByRole("button", { name: "Detach" }).click();
    await page.getByRole("dialog", { name: "Detach from the pool?" }).getByRole("button", { name: "Detach" }).click();
    await page.getByText("No members: this customer spends only its own credits.").waitFor();
    expect((await admin.pools.listPoolMembers({ customerId: "globex" })).members).toEqual([]);
  });

  it("a member's page says it burns from its owner's pool, with a link there", async () => {
    await admin.pools.attachPoolMember({ parentCustomerId: "globex", memberCustomerId: "globex-design", requestId: randomUUID() });
    const page = await signIn(await test.createKey("support"));
    await page.goto(`${test.server.httpUrl}/#/customers/globex-design`);
    const note = page.getByTestId("pool-membership");
    await expect.poll(() => note.innerText()).toMatch(/^Burns from the pool of globex/);
    await note.getByRole("link", { name: "globex" }).click();
    await page.getByRole("heading", { name: /^Globex\s+globex$/ }).waitFor();
    // Support sees the pool, but not the forms that change it.
    await page.getByRole("table", { name: "Pool members" }).waitFor();
    expect(await page.getByRole("form", { name: "Attach a member" }).count()).toBe(0);
    expect(await seriousViolations(page)).toEqual([]);
  });
});
