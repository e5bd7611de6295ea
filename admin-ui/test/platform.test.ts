// The platform screens of the admin UI, in headless Chromium against a real server and
// PostgreSQL: the kill switch behind its confirmation, a feature's enforcement mode, API
// keys (the token shown once, revocation), support's read-only view, credit types and
// pricing versions, replaying unrated usage, webhooks, and the audit trail. Every outcome the UI
// shows is checked through the API as well; axe-core finds no serious violation.
import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { CheckReason, EnforcementMode, FailurePolicy, GrantSource, Role, UsageOutcome } from "@burndown/sdk";
import { errorInfoOf } from "@burndown/sdk/error-reason";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithBrowser, seriousViolations, signIn as signInAs, startUi, stopUi } from "../../test-support/browser.js";
import type { Clients, TestServer } from "../../test-support/server.js";

const creditTypeId = "usd";
let test: TestServer;
let browser: Browser;
let supportToken: string;
let serviceToken: string;
let admin: Clients;

beforeAll(async () => {
  ({ test, browser } = await startUi());
  admin = test.clients(test.adminToken);
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "USD credits", scale: 2 }, requestId: randomUUID() });
  await admin.admin.createFeature({ feature: { featureKey: "chat", displayName: "Chat", creditTypeId, burnRate: 150n }, requestId: randomUUID() });
  await admin.admin.createFeature({ feature: { featureKey: "images", displayName: "Images", creditTypeId, burnRate: 500n }, requestId: randomUUID() });
  await admin.admin.createCustomer({ customer: { customerId: "acme", displayName: "Acme Corp" }, requestId: randomUUID() });
  // broke has no credits: Check on an enforced feature refuses it unless the kill switch is on.
  await admin.admin.createCustomer({ customer: { customerId: "broke", displayName: "Broke Ltd" }, requestId: randomUUID() });
  await admin.ledger.grant({ customerId: "acme", creditTypeId, amount: 100_000n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
  supportToken = await test.createKey("support", 10_000n);
  serviceToken = await test.createKey("service");
}, 180_000);

afterAll(() => stopUi(test, browser));

const signIn = (token: string): Promise<Page> => signInAs(browser, test.server.httpUrl, token);

async function openPlatform(page: Page, tab: string): Promise<void> {
  await page.getByRole("link", { name: "Platform", exact: true }).click();
  await page.getByRole("navigation", { name: "Platform" }).getByRole("link", { name: tab }).click();
  await page.getByRole("link", { name: tab, exact: true }).and(page.locator("[aria-current=page]")).waitFor();
}

/** killSwitchOn asks the ledger itself: Check lets a customer without credits through only under the kill switch. */
async function killSwitchOn(): Promise<boolean> {
  const answer = await admin.ledger.check({ customerId: "broke", featureKey: "chat" });
  return answer.reason === CheckReason.KILL_SWITCH;
}

/** setKillSwitch turns the switch through the features page, confirming in the dialog. */
async function setKillSwitch(page: Page, on: boolean, reason: string): Promise<void> {
  const form = page.getByRole("form", { name: "Kill switch" });
  await form.getByLabel("Reason (for the audit trail)").fill(reason);
  await form.getByRole("button", { name: on ? "Turn the kill switch on…" : "Turn the kill switch off…" }).click();
  const dialog = page.getByRole("dialog", { name: on ? "Turn the kill switch on?" : "Turn the kill switch off?" });
  await dialog.getByRole("button", { name: on ? "Turn it on" : "Turn it off" }).click();
  await dialog.waitFor({ state: "hidden" });
  await page.getByTestId("kill-switch-banner").waitFor({ state: on ? "visible" : "detached" });
  // The form clears its reason once the change has landed and every query has refetched:
  // wait for that, or the next fill could be cleared under it.
  await expect.poll(() => form.getByLabel("Reason (for the audit trail)").inputValue()).toBe("");
}

/** unauthenticatedReason is the ErrorInfo reason of a call refused as UNAUTHENTICATED (null if it was not). */
async function unauthenticatedReason(call: Promise<unknown>): Promise<string | null> {
  const error = await call.then(() => null, (caught: unknown) => caught);
  if (!(error instanceof ConnectError) || error.code !== Code.Unauthenticated) return null;
  return errorInfoOf(error)?.reason ?? null;
}

describeWithBrowser("the platform screens", () => {
  it("the kill switch asks first: Cancel changes nothing, Confirm turns it on everywhere (banner), and it turns off again", async () => {
    const page = await signIn(test.adminToken);
    const sent: string[] = [];
    page.on("request", (request) => {
      if (request.url().endsWith("/SetKillSwitch")) sent.push(request.postData() ?? "");
    });
    await openPlatform(page, "Features and enforcement");
    await expect.poll(() => page.getByTestId("kill-switch-state").innerText()).toMatch(/^Off\b/);
    expect(await killSwitchOn()).toBe(false);

    const form = page.getByRole("form", { name: "Kill switch" });
    await form.getByLabel("Reason (for the audit trail)").fill("incident 42: the ledger is slow");
    await form.getByRole("button", { name: "Turn the kill switch on…" }).click();
    const dialog = page.getByRole("dialog", { name: "Turn the kill switch on?" });
    await dialog.waitFor();
    expect(await dialog.innerText()).toContain("No customer will be refused for lack of credits, on any feature");
    expect(await seriousViolations(page)).toEqual([]);
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await dialog.waitFor({ state: "hidden" });
    expect(await killSwitchOn()).toBe(false);
    expect(await page.getByTestId("kill-switch-banner").count()).toBe(0);

    await form.getByRole("button", { name: "Turn the kill switch on…" }).click();
    await dialog.getByRole("button", { name: "Turn it on" }).click();
    await page.getByTestId("kill-switch-banner").waitFor();
    // The banner's "since when and why" comes from the audit trail, which may answer a moment later.
    await expect.poll(() => page.getByTestId("kill-switch-banner").innerText()).toMatch(/^The kill switch is ON: no customer is refused for lack of credits, on any feature\..*“incident 42: the ledger is slow”\.$/s);
    expect(await killSwitchOn()).toBe(true);
    // The banner stays on every platform page while the switch is on.
    await openPlatform(page, "Credit types");
    await page.getByTestId("kill-switch-banner").waitFor();
    await openPlatform(page, "Features and enforcement");

    await setKillSwitch(page, false, "incident 42 over");
    expect(await killSwitchOn()).toBe(false);
    await expect.poll(() => page.getByTestId("kill-switch-state").innerText()).toMatch(/^Off since .*incident 42 over/);
    // Only the two confirmations reached the server; the cancelled one sent nothing.
    expect(sent.map((body) => JSON.parse(body).enabled ?? false)).toEqual([true, false]);
    await page.context().close();
  });

  it("sets a feature's enforcement mode to observe", async () => {
    const page = await signIn(test.adminToken);
    await openPlatform(page, "Features and enforcement");
    await page.getByRole("button", { name: "Settings of images", exact: true }).click();
    const form = page.getByRole("form", { name: "Enforcement mode of images" });
    await form.getByLabel("Mode").selectOption({ label: "Observe" });
    await form.getByLabel("Reason (for the audit trail)").fill("shadow launch of the new image model");
    await form.getByRole("button", { name: "Set mode" }).click();
    await form.getByRole("status").filter({ hasText: "Mode set." }).waitFor();
    const { features } = await admin.admin.listFeatures({});
    expect(features.find((feature) => feature.featureKey === "images")?.enforcementMode).toBe(EnforcementMode.OBSERVE);
    expect(features.find((feature) => feature.featureKey === "chat")?.enforcementMode).toBe(EnforcementMode.ENFORCE);
    const row = page.getByRole("table", { name: "Features" }).locator("tr[data-feature=images]");
    await expect.poll(() => row.getByTestId("mode").innerText()).toBe("Observe");
    await page.context().close();
  });

  it("rolls observe out to listed customers and a percentage, and lets chat fail open within an offline budget", async () => {
    const page = await signIn(test.adminToken);
    await openPlatform(page, "Features and enforcement");
    await page.getByRole("button", { name: "Settings of chat", exact: true }).click();
    const rollout = page.getByRole("form", { name: "Rollout of chat" });
    await rollout.getByLabel("Cohort's mode").selectOption({ label: "Observe" });
    await rollout.getByLabel("Customers in the cohort").fill("acme\nbroke, acme");
    await rollout.getByLabel("Percent of the other customers").fill("25");
    await rollout.getByLabel("Reason (for the audit trail)").fill("observe before the price change");
    await rollout.getByRole("button", { name: "Set rollout" }).click();
    await rollout.getByRole("status").filter({ hasText: "Rollout set." }).waitFor();
    const policy = page.getByRole("form", { name: "Failure policy of chat" });
    await policy.getByLabel("Policy").selectOption({ label: "Fail open" });
    await policy.getByLabel("Offline credits per customer").fill("12.50");
    await policy.getByLabel("Allowed for the first minutes").fill("90");
    await policy.getByLabel("Reason (for the audit trail)").fill("chat must survive a ledger outage");
    await policy.getByRole("button", { name: "Set policy" }).click();
    await policy.getByRole("status").filter({ hasText: "Failure policy set." }).waitFor();
    const chat = (await admin.admin.listFeatures({})).features.find((feature) => feature.featureKey === "chat");
    expect({ mode: chat?.rollout?.mode, customerIds: chat?.rollout?.customerIds, percent: chat?.rollout?.percent }).toEqual({ mode: EnforcementMode.OBSERVE, customerIds: ["acme", "broke"], percent: 25 });
    expect({ policy: chat?.failurePolicy, creditsMax: chat?.offlineBudget?.creditsMax, seconds: chat?.offlineBudget?.durationMax?.seconds }).toEqual({ policy: FailurePolicy.FAIL_OPEN, creditsMax: 1_250n, seconds: 5_400n });
    const row = page.getByRole("table", { name: "Features" }).locator("tr[data-feature=chat]");
    await expect.poll(() => row.innerText()).toMatch(/Observe for 2 listed customers and 25% of the rest\s+Fail open \(up to 12\.50 credits, for 90 min\)/);
    // Put chat back as the other tests expect it: enforced for everyone.
    await rollout.getByLabel("Reason (for the audit trail)").fill("price change done");
    await rollout.getByRole("button", { name: "Clear rollout" }).click();
    await rollout.getByRole("status").filter({ hasText: "Rollout cleared." }).waitFor();
    expect((await admin.admin.listFeatures({})).features.find((feature) => feature.featureKey === "chat")?.rollout).toBeUndefined();
    await page.context().close();
  });

  it("makes an API key whose token is shown once and works, then revokes a key behind a confirmation", async () => {
    const page = await signIn(test.adminToken);
    await openPlatform(page, "API keys");
    const form = page.getByRole("form", { name: "Make an API key" });
    await form.getByLabel("Name (who or what uses it)").fill("checkout-service");
    await form.getByLabel("Role").selectOption({ label: "Service" });
    await form.getByRole("button", { name: "Make key" }).click();
    await page.getByTestId("new-token").waitFor();
    const token = await page.getByTestId("new-token").inputValue();
    expect(token).toMatch(/^bd_/);
    expect(await page.getByText("Copy this token now: it will not be shown again.").count()).toBe(1);
    const caller = await test.clients(token).ledger.getCaller({});
    expect({ name: caller.name, role: caller.role }).toEqual({ name: "checkout-service", role: Role.SERVICE });
    expect((await test.clients(token).admin.listCreditTypes({})).creditTypes.map((type) => type.creditTypeId)).toEqual([creditTypeId]);

    // Away and back: the token is gone from the page for good.
    await openPlatform(page, "Credit types");
    await openPlatform(page, "API keys");
    await page.getByRole("table", { name: "API keys" }).locator(`tr[data-key-id="${caller.keyId}"]`).waitFor();
    expect(await page.getByTestId("new-token").count()).toBe(0);
    expect(await page.content()).not.toContain(token);

    // Revoke: Cancel keeps the key; Revoke stops it.
    const row = page.getByRole("table", { name: "API keys" }).locator(`tr[data-key-id="${caller.keyId}"]`);
    await row.getByRole("button", { name: /^Revoke checkout-service/ }).click();
    const dialog = page.getByRole("dialog", { name: "Revoke the key “checkout-service”?" });
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await dialog.waitFor({ state: "hidden" });
    expect((await test.clients(token).ledger.getCaller({})).keyId).toBe(caller.keyId);
    await row.getByRole("button", { name: /^Revoke checkout-service/ }).click();
    await dialog.getByLabel("Reason (for the audit trail, optional)").fill("leaked in a log");
    await dialog.getByRole("button", { name: "Revoke" }).click();
    await expect.poll(() => row.getByTestId("key-state").innerText()).toMatch(/^Revoked /);
    const listed = (await admin.admin.listApiKeys({})).apiKeys.find((key) => key.keyId === caller.keyId);
    expect(listed?.revokeTime).toBeDefined();
    expect(await unauthenticatedReason(test.clients(token).ledger.getCaller({}))).toBe("INVALID_API_KEY");
    await page.context().close();
  });

  it("a support key sees the platform read-only, and a refused admin read in words", async () => {
    const page = await signIn(supportToken);
    await openPlatform(page, "Features and enforcement");
    await page.getByText("You are signed in with a support key: these screens are read-only.").waitFor();
    await page.getByRole("table", { name: "Features" }).locator("tr[data-feature=chat]").waitFor();
    await page.getByText("Only an admin key can turn the kill switch on or off.").waitFor();
    expect(await page.getByRole("button", { name: /kill switch/ }).count()).toBe(0);
    expect(await page.getByRole("button", { name: /^Settings of/ }).count()).toBe(0);
    expect(await page.getByRole("form", { name: "Add a feature" }).count()).toBe(0);
    expect(await seriousViolations(page)).toEqual([]);

    await openPlatform(page, "Pricing versions");
    await page.getByRole("heading", { name: "Pricing versions" }).waitFor();
    expect(await page.getByRole("form", { name: "Publish a pricing version" }).count()).toBe(0);
    expect(await page.getByRole("form", { name: "Set the default version" }).count()).toBe(0);

    await openPlatform(page, "Unrated events");
    await page.getByRole("heading", { name: "Unrated events" }).waitFor();
    expect(await page.getByRole("button", { name: "Replay" }).count()).toBe(0);

    // Listing keys is for admins: the server refuses, and the page says so in words.
    await openPlatform(page, "API keys");
    const alert = page.getByRole("alert");
    await alert.waitFor();
    expect(await alert.innerText()).toBe("Could not list API keys: Your key's role (support) may not do this (ListApiKeys). Ask an admin. ROLE_NOT_ALLOWED");
    expect(await page.getByRole("form", { name: "Make an API key" }).count()).toBe(0);
    expect(await seriousViolations(page)).toEqual([]);
    await page.context().close();
  });

  it("creates a credit type and a pricing version, and makes the version the default", async () => {
    const page = await signIn(test.adminToken);
    await openPlatform(page, "Credit types");
    const typeForm = page.getByRole("form", { name: "Add a credit type" });
    await typeForm.getByLabel("Credit type id").fill("gpu_seconds");
    await typeForm.getByLabel("Name").fill("GPU seconds");
    await typeForm.getByLabel("Scale").fill("3");
    await typeForm.getByRole("button", { name: "Add credit type" }).click();
    await typeForm.getByRole("status").filter({ hasText: "Added the credit type gpu_seconds." }).waitFor();
    const created = (await admin.admin.listCreditTypes({})).creditTypes.find((type) => type.creditTypeId === "gpu_seconds");
    expect({ name: created?.displayName, scale: created?.scale }).toEqual({ name: "GPU seconds", scale: 3 });
    await expect.poll(() => page.locator("tr[data-credit-type=gpu_seconds]").innerText()).toMatch(/gpu_seconds\s+GPU seconds\s+3\s+1\.000/);

    // An older version, so that choosing the default is a choice.
    await admin.admin.createPricingVersion({ pricingVersion: { pricingVersionId: "v2026", displayName: "2026 prices", rates: [] }, requestId: randomUUID() });
    await openPlatform(page, "Pricing versions");
    const versionForm = page.getByRole("form", { name: "Publish a pricing version" });
    await versionForm.getByLabel("Version id").fill("v2027");
    await versionForm.getByLabel("Name").fill("2027 prices");
    await versionForm.getByLabel("Credits for chat").fill("1.25");
    await versionForm.getByLabel("Per units for chat").fill("10");
    await versionForm.getByRole("button", { name: "Publish" }).click();
    await versionForm.getByRole("status").filter({ hasText: "Published v2027." }).waitFor();
    let listed = await admin.admin.listPricingVersions({});
    const version = listed.pricingVersions.find((candidate) => candidate.pricingVersionId === "v2027");
    expect(version?.rates.map((rate) => [rate.featureKey, rate.rate?.credits, rate.rate?.perUnits])).toEqual([["chat", 125n, 10n]]);
    expect(listed.defaultPricingVersionId).toBe("");
    const row = page.getByRole("table", { name: "Pricing versions" }).locator("tr[data-version=v2027]");
    await expect.poll(() => row.innerText()).toMatch(/chat: 1\.25 credits per 10 units/);
    expect(await row.getByText("default").count()).toBe(0);

    const defaultForm = page.getByRole("form", { name: "Set the default version" });
    await defaultForm.getByLabel("Version").selectOption("v2027");
    await defaultForm.getByLabel("Reason (for the audit trail)").fill("2027 price list");
    await defaultForm.getByRole("button", { name: "Set default" }).click();
    await defaultForm.getByRole("status").filter({ hasText: "v2027 is now the default." }).waitFor();
    listed = await admin.admin.listPricingVersions({});
    expect(listed.defaultPricingVersionId).toBe("v2027");
    await expect.poll(() => page.getByTestId("default-version").innerText()).toBe("Default for new customers: v2027");
    await row.getByText("default", { exact: true }).waitFor();
    await page.context().close();
  });

  it("a refused change is shown in words; sent again unchanged it keeps its request id, changed it gets a new one", async () => {
    await admin.admin.createPricingVersion({ pricingVersion: { pricingVersionId: "v-flat", displayName: "Flat", rates: [] }, requestId: randomUUID() });
    const page = await signIn(test.adminToken);
    const sent: { requestId: string; reason: string }[] = [];
    page.on("request", (request) => {
      if (request.url().endsWith("/MoveCustomersToPricingVersion")) sent.push(JSON.parse(request.postData() ?? "{}"));
    });
    await openPlatform(page, "Pricing versions");
    const form = page.getByRole("form", { name: "Move customers to a version" });
    await form.getByLabel(/^From/).selectOption("v-flat");
    await form.getByLabel(/^To/).selectOption("v-flat");
    await form.getByLabel("Reason (for the audit trail)").fill("tidy up");
    const refusal = "Nobody moved: The customers are on that version already. SAME_PRICING_VERSION";
    for (let attempt = 1; attempt <= 2; attempt++) {
      await form.getByRole("button", { name: "Move customers" }).click();
      await expect.poll(() => sent.length).toBe(attempt);
      await expect.poll(() => form.getByRole("alert").innerText()).toBe(refusal);
    }
    await form.getByLabel("Reason (for the audit trail)").fill("tidy up, again");
    await form.getByRole("button", { name: "Move customers" }).click();
    await expect.poll(() => sent.length).toBe(3);
    await expect.poll(() => form.getByRole("alert").innerText()).toBe(refusal);
    expect(sent[1].requestId).toBe(sent[0].requestId);
    expect(sent[2].requestId).not.toBe(sent[0].requestId);
    await page.context().close();
  });

  it("lists usage for a feature that did not exist, and replays it once the feature is made", async () => {
    const service = test.clients(serviceToken);
    const reported = await service.ledger.reportUsage({ events: [{ eventId: "late-video-1", customerId: "acme", featureKey: "video", quantity: 3n }] });
    expect(reported.results.map((result) => [result.outcome, result.reason])).toEqual([[UsageOutcome.UNRATED, "FEATURE_NOT_FOUND"]]);
    const burnedBefore = (await admin.ledger.getBalance({ customerId: "acme" })).balances[0].burned;

    const page = await signIn(test.adminToken);
    await openPlatform(page, "Unrated events");
    const rows = page.getByRole("table", { name: "Unrated events" }).getByRole("row");
    await expect.poll(() => rows.allInnerTexts()).toEqual([expect.stringContaining("Event id"), expect.stringMatching(/late-video-1\s+acme\s+video\s+3\s+No such feature\. FEATURE_NOT_FOUND/)]);

    await openPlatform(page, "Features and enforcement");
    const featureForm = page.getByRole("form", { name: "Add a feature" });
    await featureForm.getByLabel("Feature key").fill("video");
    await featureForm.getByLabel("Name").fill("Video");
    await featureForm.getByLabel("Credit type").selectOption(creditTypeId);
    await featureForm.getByLabel("Burn rate (credits per unit)").fill("2.00");
    await featureForm.getByRole("button", { name: "Add feature" }).click();
    await featureForm.getByRole("status").filter({ hasText: "Added the feature video." }).waitFor();
    const video = (await admin.admin.listFeatures({})).features.find((feature) => feature.featureKey === "video");
    expect({ rate: video?.burnRate, creditTypeId: video?.creditTypeId }).toEqual({ rate: 200n, creditTypeId });

    await openPlatform(page, "Unrated events");
    const replay = page.getByRole("form", { name: "Replay unrated events" });
    await replay.getByLabel("Reason (for the audit trail, optional)").fill("video launched before its feature");
    await replay.getByRole("button", { name: "Replay" }).click();
    await page.getByTestId("replay-result").waitFor();
    expect(await page.getByTestId("replay-result").innerText()).toBe("Replayed 1 event: 1 burned.");
    await page.getByText("None: every reported event was rated.").waitFor();
    expect((await admin.admin.listUnratedEvents({})).events).toEqual([]);
    // 3 videos at 2.00 each, from acme's balance.
    expect((await admin.ledger.getBalance({ customerId: "acme" })).balances[0].burned).toBe(burnedBefore + 600n);
    await page.context().close();
  });

  it("the audit trail lists kill switch changes newest first, with who and why", async () => {
    const page = await signIn(test.adminToken);
    const me = await admin.ledger.getCaller({});
    await openPlatform(page, "Features and enforcement");
    await setKillSwitch(page, true, "audit: payment provider outage");
    await setKillSwitch(page, false, "audit: provider back");
    await openPlatform(page, "Audit trail");
    const rows = page.getByRole("table", { name: "Audit records" }).getByRole("row");
    await expect.poll(async () => (await rows.allInnerTexts()).slice(1, 3)).toEqual([
      expect.stringMatching(new RegExp(`${me.keyId}\\s+set kill switch\\s+kill_switch\\s+audit: provider back\\s+\\{.*"new":false.*\\}`)),
      expect.stringMatching(new RegExp(`${me.keyId}\\s+set kill switch\\s+kill_switch\\s+audit: payment provider outage\\s+\\{.*"new":true.*\\}`)),
    ]);
    const { auditRecords } = await admin.admin.listAuditRecords({ pageSize: 2 });
    expect(auditRecords.map((record) => [record.action, record.reason, record.actor])).toEqual([
      ["set_kill_switch", "audit: provider back", me.keyId],
      ["set_kill_switch", "audit: payment provider outage", me.keyId],
    ]);
    expect(await seriousViolations(page)).toEqual([]);
    await page.context().close();
  });

  it("the audit trail shows each record's request id and finds the records of a call by the id a customer quoted", async () => {
    const requestId = `ticket-1234:${randomUUID()}`;
    const customerId = `quoted-${randomUUID().slice(0, 8)}`;
    await admin.admin.createCustomer({ customer: { customerId, displayName: "Quoted Ltd" }, requestId: randomUUID() }, { headers: { "x-request-id": requestId } });
    await admin.admin.createCustomer({ customer: { customerId: `other-${randomUUID().slice(0, 8)}` }, requestId: randomUUID() });
    const page = await signIn(supportToken);
    await openPlatform(page, "Audit trail");
    const table = page.getByRole("table", { name: "Audit records" });
    const quoted = table.locator("tr[data-action=create_customer]").filter({ hasText: `customer:${customerId}` });
    await expect.poll(() => quoted.getByTestId("request-id").innerText()).toBe(requestId);
    expect(await table.locator("tr[data-action=create_customer]").count()).toBeGreaterThan(1);

    const search = page.getByRole("search", { name: "Audit records by request id" });
    await search.getByLabel("Find the records of a call by its request id (x-request-id)").fill(` ${requestId} `);
    await search.getByRole("button", { name: "Find" }).click();
    await expect.poll(async () => (await table.getByRole("row").allInnerTexts()).length).toBe(2);
    expect(await table.getByRole("row").nth(1).innerText()).toMatch(new RegExp(`create customer\\s+customer:${customerId}\\s+.*${requestId}$`, "s"));
    expect(await seriousViolations(page)).toEqual([]);

    await search.getByLabel("Find the records of a call by its request id (x-request-id)").fill("no-such-call");
    await search.getByRole("button", { name: "Find" }).click();
    await page.getByText("No audit record carries the request id “no-such-call”.", { exact: false }).waitFor();
    await search.getByRole("button", { name: "Show every record" }).click();
    await expect.poll(() => table.locator("tr[data-action=create_customer]").count()).toBeGreaterThan(1);
    // The screen found what the API finds.
    const { auditRecords } = await admin.admin.listAuditRecords({ requestId });
    expect(auditRecords.map((record) => [record.action, record.target, record.requestId])).toEqual([["create_customer", `customer:${customerId}`, requestId]]);
    await page.context().close();
  });

  it("webhooks: an endpoint's secret is shown once, an event can be sent again, the secret rotated, the endpoint disabled; support only reads", async () => {
    const page = await signIn(test.adminToken);
    await openPlatform(page, "Webhooks");
    const url = `https://example.com/ui-${randomUUID().slice(0, 8)}`;
    const form = page.getByRole("form", { name: "Add a webhook endpoint" });
    await form.getByLabel("URL (http or https)").fill(url);
    await form.getByLabel("grant.created").check();
    await form.getByLabel("Description (optional)").fill("billing");
    await form.getByRole("button", { name: "Add endpoint" }).click();
    await page.getByTestId("new-secret").waitFor();
    const secret = await page.getByTestId("new-secret").inputValue();
    expect(secret).toMatch(/^whsec_/);
    const endpoint = (await admin.webhooks.listWebhookEndpoints({})).endpoints.find((candidate) => candidate.url === url);
    expect(endpoint).toMatchObject({ eventTypes: ["grant.created"], description: "billing" });
    expect(await seriousViolations(page)).toEqual([]);

    // A grant queues an event for it; "Send again" queues its delivery anew.
    const customerId = `webhook-${randomUUID().slice(0, 8)}`;
    await admin.ledger.grant({ customerId, creditTypeId, amount: 500n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
    const [event] = (await admin.webhooks.listWebhookEvents({ endpointId: endpoint!.endpointId })).events;
    expect(event.customerId).toBe(customerId);
    await openPlatform(page, "Audit trail");
    await openPlatform(page, "Webhooks");
    expect(await page.getByTestId("new-secret").count()).toBe(0); // away and back: the secret is gone for good
    expect(await page.content()).not.toContain(secret);
    const row = page.getByRole("table", { name: "Webhook events" }).locator(`tr[data-event-id="${event.eventId}"]`);
    await row.getByRole("button", { name: /^Send again/ }).click();
    await page.getByText("Queued to be sent again.").waitFor();
    const audits = await admin.admin.listAuditRecords({ pageSize: 1 });
    expect(audits.auditRecords.map((record) => [record.action, record.target])).toEqual([["replay_webhook_events", `webhook_endpoint:${endpoint!.endpointId}`]]);

    // Rotate: a new secret, shown once; then disable, behind a confirmation.
    const endpointRow = page.getByRole("table", { name: "Webhook endpoints" }).locator(`tr[data-endpoint-id="${endpoint!.endpointId}"]`);
    await endpointRow.getByRole("button", { name: /^Rotate secret/ }).click();
    await page.getByRole("dialog", { name: `Rotate the secret of ${url}?` }).getByRole("button", { name: "Rotate" }).click();
    await expect.poll(() => page.getByTestId("new-secret").inputValue()).toMatch(/^whsec_/);
    expect(await page.getByTestId("new-secret").inputValue()).not.toBe(secret);
    await endpointRow.getByRole("button", { name: /^Disable/ }).click();
    await page.getByRole("dialog", { name: `Disable ${url}?` }).getByRole("button", { name: "Disable" }).click();
    await expect.poll(() => endpointRow.getByTestId("endpoint-state").innerText()).toMatch(/^Disabled /);
    const disabled = (await admin.webhooks.listWebhookEndpoints({})).endpoints.find((candidate) => candidate.endpointId === endpoint!.endpointId);
    expect(disabled?.disableTime).toBeDefined();
    await page.context().close();

    // Support reads the same lists, and gets no form.
    const support = await signIn(supportToken);
    await openPlatform(support, "Webhooks");
    await support.getByRole("table", { name: "Webhook endpoints" }).locator(`tr[data-endpoint-id="${endpoint!.endpointId}"]`).waitFor();
    expect(await support.getByRole("form", { name: "Add a webhook endpoint" }).count()).toBe(0);
    expect(await support.getByRole("button", { name: /^Send again/ }).count()).toBe(0);
    await support.context().close();
  });

  it("every platform page passes axe-core without a serious violation", async () => {
    const page = await signIn(test.adminToken);
    const pages: [string, string][] = [
      ["Features and enforcement", "Features"],
      ["Credit types", "Credit types"],
      ["Pricing versions", "Pricing versions"],
      ["API keys", "API keys"],
      ["Unrated events", "Unrated events"],
      ["Webhooks", "Webhook endpoints"],
      ["Audit trail", "Audit trail"],
    ];
    for (const [tab, table] of pages) {
      await openPlatform(page, tab);
      await page.getByRole("table", { name: table }).or(page.getByRole("heading", { name: table })).first().waitFor();
      if (tab === "Features and enforcement") {
        await page.getByRole("button", { name: "Settings of chat", exact: true }).click();
        await page.getByRole("form", { name: "Failure policy of chat" }).getByLabel("Policy").selectOption({ label: "Fail open" });
      }
      expect({ tab, violations: await seriousViolations(page) }).toEqual({ tab, violations: [] });
    }
    await page.context().close();
  });
});
