// Voids, refunds and disputes in headless Chromium against a real server and PostgreSQL:
// support voids a lot's unused credits and refunds part of a burn from the customer's
// ledger; a customer disputes a line of its history in its own view and follows its
// status; support works the disputes queue (assign to me, note, resolve with a refund).
import { randomUUID } from "node:crypto";
import { DisputeStatus, GrantSource, Role } from "@burndown/sdk";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithBrowser, seriousViolations, signIn as signInAs, startUi, stopUi } from "../../test-support/browser.js";
import type { TestServer } from "../../test-support/server.js";

let test: TestServer;
let browser: Browser;
let supportToken: string;
let customerKey: string;
const creditTypeId = "usd";

beforeAll(async () => {
  ({ test, browser } = await startUi());
  const { admin, ledger } = test.clients(test.adminToken);
  await admin.createCreditType({ creditType: { creditTypeId, displayName: "USD credits", scale: 2 }, requestId: randomUUID() });
  for (const customerId of ["hooli", "pied-piper", "initech"]) await admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
  // hooli: a purchase of 100.00 and a mistaken grant of 300.00; a burn of 40.00.
  await ledger.grant({ customerId: "hooli", creditTypeId, amount: 10_000n, source: GrantSource.PURCHASE, reasonCode: "purchase", priority: 0, requestId: randomUUID() });
  await ledger.grant({ customerId: "hooli", creditTypeId, amount: 30_000n, source: GrantSource.SUPPORT, reasonCode: "goodwill", priority: 5, requestId: randomUUID() });
  const service = test.clients(await test.createKey("service"));
  await service.ledger.burn({ customerId: "hooli", cost: { case: "credits", value: { creditTypeId, amount: 4_000n } }, requestId: randomUUID() });
  // pied-piper: 50.00, of which 12.00 burned.
  await ledger.grant({ customerId: "pied-piper", creditTypeId, amount: 5_000n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
  await service.ledger.burn({ customerId: "pied-piper", cost: { case: "credits", value: { creditTypeId, amount: 1_200n } }, requestId: randomUUID() });
  // initech: a mistaken grant of 100.00, of which 30.00 is held by an open reservation.
  await ledger.grant({ customerId: "initech", creditTypeId, amount: 10_000n, source: GrantSource.SUPPORT, reasonCode: "goodwill", requestId: randomUUID() });
  await service.ledger.reserve({ customerId: "initech", cost: { case: "credits", value: { creditTypeId, amount: 3_000n } }, requestId: randomUUID() });
  supportToken = await test.createKey("support");
  customerKey = (await admin.createApiKey({ name: "pied-piper portal", role: Role.CUSTOMER, customerId: "pied-piper", requestId: randomUUID() })).token;
}, 180_000);

afterAll(() => stopUi(test, browser));

const signIn = (token: string): Promise<Page> => signInAs(browser, test.server.httpUrl, token);
const balanceOf = async (customerId: string) => (await test.clients(test.adminToken).ledger.getBalance({ customerId })).balances[0];

async function openLedger(page: Page, customerId: string): Promise<void> {
  await page.goto(`${test.server.httpUrl}/#/customers/${customerId}/ledger`);
  await page.getByRole("table", { name: "Ledger entries" }).waitFor();
}

async function openCustomerView(): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${test.server.httpUrl}/customer#key=${encodeURIComponent(customerKey)}`);
  await page.getByRole("heading", { name: "Your credits" }).waitFor();
  return page;
}

describeWithBrowser("voids, refunds and disputes", () => {
  it("support voids the unused credits of a grant line, shown on the line, and the balance falls by them", async () => {
    const page = await signIn(supportToken);
    await openLedger(page, "hooli");
    // The mistaken lot burned nothing (the purchase burns first): all 300.00 is unused.
    await page.getByRole("button", { name: "Void 300.00 unused" }).click();
    const form = page.getByRole("form", { name: "Void unused credits" });
    await form.getByLabel("Reason code").fill("granted_by_mistake");
    expect(await seriousViolations(page)).toEqual([]);
    await form.getByRole("button", { name: "Void" }).click();
    await expect.poll(() => form.getByRole("status").innerText()).toBe("Voided 300.00.");
    expect(await balanceOf("hooli")).toMatchObject({ granted: 10_000n, burned: 4_000n, available: 6_000n });
    await expect.poll(() => page.locator('tr[data-entry-kind="Voided"]').count()).toBe(1);
    await page.close();
  });

  it("support voids a grant line whose lot a reservation holds part of: the unused part now, the held part shown pending", async () => {
    const page = await signIn(supportToken);
    await openLedger(page, "initech");
    await page.getByRole("button", { name: "Void 70.00 unused" }).click();
    const form = page.getByRole("form", { name: "Void unused credits" });
    await expect.poll(() => form.innerText()).toContain("30.00 more are held by open reservations");
    await form.getByLabel("Reason code").fill("granted_by_mistake");
    await form.getByRole("button", { name: "Void" }).click();
    await expect.poll(() => form.getByRole("status").innerText()).toBe("Voided 70.00; 30.00 pending until its reservations resolve.");
    await expect.poll(() => page.locator('tr[data-entry-kind="Grant"]').getByText("void pending").innerText()).toMatch(/^void pending\s*30\.00$/);
    expect(await seriousViolations(page)).toEqual([]);
    expect(await balanceOf("initech")).toMatchObject({ granted: 3_000n, held: 3_000n, available: 0n });
    await page.close();
  });

  it("support refunds part of a burn line with a reason, and a refund past what is left is refused in words", async () => {
    const page = await signIn(supportToken);
    await openLedger(page, "hooli");
    await page.getByRole("button", { name: "Refund" }).first().click();
    const form = page.getByRole("form", { name: "Refund a charge" });
    await form.getByLabel("Amount (empty: all of it)").fill("15.00");
    await form.getByLabel("Reason code").fill("goodwill");
    await form.getByRole("button", { name: "Refund" }).click();
    await expect.poll(() => form.getByRole("status").innerText()).toBe("Refunded 15.00 of 40.00.");
    expect(await balanceOf("hooli")).toMatchObject({ burned: 2_500n });
    await form.getByLabel("Amount (empty: all of it)").fill("30.00");
    await form.getByRole("button", { name: "Refund" }).click();
    await expect.poll(() => form.getByRole("alert").innerText()).toMatch(/Refused: That is more than is left to refund of this charge \(2500 in the smallest unit\)/);
    expect(await balanceOf("hooli")).toMatchObject({ burned: 2_500n });
    await page.close();
  });

  it("a customer disputes a burn line in its own view and sees the dispute open", async () => {
    const page = await openCustomerView();
    await page.getByRole("button", { name: "Dispute" }).first().click();
    const form = page.getByRole("form", { name: "Dispute this line" });
    await form.getByLabel("What is wrong with this line?").fill("We never ran that job");
    await form.getByRole("button", { name: "Send dispute" }).click();
    await expect.poll(() => page.getByTestId("your-dispute-status").allInnerTexts()).toEqual(["open"]);
    expect(await seriousViolations(page)).toEqual([]);
    await page.close();
  });

  it("support works the queue: assigns it to itself, notes it, resolves it with a refund; the customer sees it resolved", async () => {
    const page = await signIn(supportToken);
    await page.getByRole("link", { name: "Disputes" }).click();
    const queue = page.getByRole("table", { name: "Disputes" });
    await queue.getByRole("link", { name: "pied-piper" }).waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await queue.getByRole("row").nth(1).getByRole("link").first().click();
    await page.getByRole("button", { name: "Assign to me" }).click();
    await expect.poll(() => page.getByTestId("dispute-status").innerText()).toBe("investigating");
    const note = page.getByRole("form", { name: "Add a note" });
    await note.getByLabel("Note").fill("Job logs show no run");
    await note.getByRole("button", { name: "Add note" }).click();
    await expect.poll(() => page.getByRole("list", { name: "Notes" }).innerText()).toContain("Job logs show no run");
    const resolve = page.getByRole("form", { name: "Resolve the dispute" });
    await resolve.getByLabel("Reason code").fill("dispute_upheld");
    await resolve.getByRole("button", { name: "Refund and resolve" }).click();
    await expect.poll(() => page.getByTestId("dispute-status").innerText()).toBe("resolved, refunded");
    await expect.poll(() => page.getByText("Refunded 12.00 of 12.00 usd.").count()).toBe(1);
    expect(await seriousViolations(page)).toEqual([]);
    expect(await balanceOf("pied-piper")).toMatchObject({ burned: 0n, available: 5_000n });
    const disputes = (await test.clients(test.adminToken).corrections.listDisputes({ customerId: "pied-piper" })).disputes;
    expect(disputes.map((dispute) => dispute.status)).toEqual([DisputeStatus.RESOLVED_REFUNDED]);
    const view = await openCustomerView();
    await expect.poll(() => view.getByTestId("your-dispute-status").allInnerTexts()).toEqual(["resolved, refunded"]);
    await view.close();
    await page.close();
  });
});
