// Support limits and approvals in the admin UI, in headless Chromium against a real server
// and PostgreSQL: a support key's grant above its limit is filed as a request and says so;
// another person approves it from the queue (the requester sees no buttons on its own),
// and the customer's balance shows it once; admins manage reason codes and grant limits on
// the platform pages, and support reads them.
import { randomUUID } from "node:crypto";
import { GrantRequestStatus, Role } from "@burndown/sdk";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithBrowser, seriousViolations, signIn as signInAs, startUi, stopUi } from "../../test-support/browser.js";
import type { TestServer } from "../../test-support/server.js";

let test: TestServer;
let browser: Browser;
let requesterToken: string;
let approverToken: string;
const creditTypeId = "usd";

beforeAll(async () => {
  ({ test, browser } = await startUi());
  const { admin } = test.clients(test.adminToken);
  await admin.createCreditType({ creditType: { creditTypeId, displayName: "USD credits", scale: 2 }, requestId: randomUUID() });
  await admin.createCustomer({ customer: { customerId: "initech", displayName: "Initech" }, requestId: randomUUID() });
  requesterToken = await test.createKey("support", 10_000n); // may grant up to 100.00 per grant
  approverToken = await test.createKey("support", 100_000n); // up to 1,000.00
}, 180_000);

afterAll(() => stopUi(test, browser));

const signIn = (token: string): Promise<Page> => signInAs(browser, test.server.httpUrl, token);
const available = async () => (await test.clients(test.adminToken).ledger.getBalance({ customerId: "initech" })).balances[0]?.available ?? 0n;

async function openInitech(page: Page): Promise<void> {
  await page.goto(`${test.server.httpUrl}/#/customers/initech`);
  await page.getByRole("heading", { name: /Initech/ }).waitFor();
}

describeWithBrowser("support limits and approvals in the admin UI", () => {
  it("a grant above the key's limit is filed for approval; another support key approves it from the queue, once", async () => {
    const before = await available();
    const requester = await signIn(requesterToken);
    await openInitech(requester);
    const form = requester.getByRole("form", { name: "Grant credits" });
    await form.getByLabel("Amount").fill("250");
    await form.getByLabel("Reason").selectOption("goodwill");
    await form.getByText("That is above your limit: it will be filed for approval by another person.").waitFor();
    await form.getByLabel("Ticket link (optional)").fill("https://tickets.example/T-77");
    await form.getByRole("button", { name: "Request approval" }).click();
    await form.getByRole("status").filter({ hasText: "Above your limit: 250.00 usd filed for approval by another person." }).waitFor();
    expect(await available()).toBe(before);
    const waiting = requester.getByRole("table", { name: "Grant requests waiting for approval" }).getByRole("row");
    await expect.poll(() => waiting.allInnerTexts()).toEqual([expect.stringContaining("Filed"), expect.stringMatching(/250\.00 usd\s+Support\s+goodwill/)]);
    expect(await seriousViolations(requester)).toEqual([]);
    // The requester sees its own request without approve or reject.
    await requester.getByRole("link", { name: "Approvals" }).click();
    const own = requester.getByRole("table", { name: "Grant requests" }).getByRole("row").nth(1);
    await expect.poll(() => own.innerText()).toMatch(/initech\s+250\.00 usd\s+Support\s+goodwill\s+ticket\s+Pending.*Your request/s);
    expect(await own.getByRole("button").count()).toBe(0);
    expect(await seriousViolations(requester)).toEqual([]);
    await requester.close();

    const approver = await signIn(approverToken);
    await approver.getByRole("link", { name: "Approvals" }).click();
    await approver.getByRole("button", { name: "Approve the request for initech" }).click();
    const dialog = approver.getByRole("dialog");
    await dialog.getByLabel("Reason (for the audit trail, optional)").fill("checked the ticket");
    expect(await seriousViolations(approver)).toEqual([]);
    await dialog.getByRole("button", { name: "Approve and grant" }).click();
    await approver.getByRole("status").filter({ hasText: "Approved: granted 250.00 usd to initech." }).waitFor();
    expect(await available()).toBe(before + 25_000n);
    await approver.getByLabel("Status").selectOption({ label: "Approved" });
    const decided = approver.getByRole("table", { name: "Grant requests" }).getByRole("row").nth(1);
    await expect.poll(() => decided.innerText()).toMatch(/Approved · checked the ticket/);
    const listed = await test.clients(test.adminToken).support.listGrantRequests({ status: GrantRequestStatus.APPROVED });
    expect(listed.grantRequests.map((request) => request.ticketUrl)).toEqual(["https://tickets.example/T-77"]);
    await approver.close();
  });

  it("a rejection needs a reason and grants nothing", async () => {
    const support = test.clients(requesterToken);
    await support.support.requestGrant({ grant: { customerId: "initech", creditTypeId, amount: 50_000n, source: 4, reasonCode: "goodwill", requestId: randomUUID() } });
    const before = await available();
    const admin = await signIn(test.adminToken);
    await admin.getByRole("link", { name: "Approvals" }).click();
    await admin.getByRole("button", { name: "Reject the request for initech" }).click();
    const dialog = admin.getByRole("dialog");
    await dialog.getByLabel("Reason (for the audit trail)").fill("not in policy");
    await dialog.getByRole("button", { name: "Reject" }).click();
    await admin.getByRole("status").filter({ hasText: "Rejected the request of 500.00 usd for initech." }).waitFor();
    expect(await available()).toBe(before);
    await admin.close();
  });

  it("an admin adds and disables a reason code; the grant form offers only enabled codes", async () => {
    const admin = await signIn(test.adminToken);
    await admin.getByRole("link", { name: "Platform" }).click();
    await admin.getByRole("link", { name: "Reason codes" }).click();
    const add = admin.getByRole("form", { name: "Add a reason code" });
    await add.getByLabel("Code (lowercase letters, digits, '_', '.' and '-')").fill("outage_credit");
    await add.getByLabel("Label").fill("Outage credit");
    await add.getByRole("button", { name: "Add code" }).click();
    await add.getByRole("status").filter({ hasText: "Added outage_credit." }).waitFor();
    expect(await seriousViolations(admin)).toEqual([]);
    const support = await signIn(requesterToken);
    await openInitech(support);
    const reason = support.getByRole("form", { name: "Grant credits" }).getByLabel("Reason");
    await expect.poll(async () => (await reason.locator("option").allInnerTexts()).includes("outage credit")).toBe(true);
    await admin.getByRole("button", { name: "Edit outage_credit" }).click();
    const edit = admin.getByRole("form", { name: "Change outage_credit" });
    await edit.getByLabel(/Disabled/).check();
    await edit.getByRole("button", { name: "Save" }).click();
    await expect.poll(() => admin.locator('tr[data-code="outage_credit"]').getByTestId("reason-code-state").innerText()).toBe("Disabled");
    await support.reload();
    await support.getByRole("form", { name: "Grant credits" }).waitFor();
    expect(await support.getByRole("form", { name: "Grant credits" }).getByLabel("Reason").locator("option").allInnerTexts()).not.toContain("outage credit");
    await support.close();
    await admin.close();
  });

  it("an admin sets a grant limit for one key and credit type; support reads the limits and its sources", async () => {
    const keyId = (await test.clients(requesterToken).ledger.getCaller({})).keyId;
    const admin = await signIn(test.adminToken);
    await admin.goto(`${test.server.httpUrl}/#/platform/grant-limits`);
    const form = admin.getByRole("form", { name: "Set a grant limit" });
    await form.getByLabel("Key id (empty: every support key)").fill(keyId);
    await form.getByLabel("Applies to").selectOption({ label: "USD credits" });
    await form.getByLabel("Most per grant (in the credit type's smallest unit)").fill("5000");
    await form.getByLabel("Most per period, all grants of a key together").fill("20000");
    await form.getByLabel("Period in hours (1 to 8,760; 720 is 30 days)").fill("720");
    await form.getByRole("button", { name: "Set limit" }).click();
    await form.getByRole("status").filter({ hasText: `Limit set for key ${keyId}.` }).waitFor();
    const rows = admin.getByRole("table", { name: "Grant limits" }).getByRole("row");
    await expect.poll(() => rows.allInnerTexts()).toEqual([
      expect.stringContaining("Applies to"),
      expect.stringMatching(/support role\s+every type\s+100,000\s+1,000,000\s+1 day/),
      expect.stringMatching(new RegExp(`key ${keyId}\\s+usd\\s+50\\.00\\s+200\\.00\\s+30 days`)),
    ]);
    expect(await seriousViolations(admin)).toEqual([]);
    const limits = await test.clients(test.adminToken).support.listGrantLimits({ keyId });
    expect(limits.limits.find((limit) => limit.keyId === keyId)).toMatchObject({ perCallMax: 5_000n, periodMax: 20_000n, role: Role.UNSPECIFIED });
    await admin.close();

    const support = await signIn(requesterToken);
    await support.goto(`${test.server.httpUrl}/#/platform/grant-limits`);
    await expect.poll(() => support.getByTestId("support-sources").innerText()).toBe("Support, Promotion");
    expect(await support.getByRole("form", { name: "Set a grant limit" }).count()).toBe(0);
    expect(await seriousViolations(support)).toEqual([]);
    await support.close();
  });
});
