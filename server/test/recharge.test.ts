// Auto-recharge and the balance-low alert through the contract, on real PostgreSQL: a
// balance that falls below its threshold by any path (burn, commit, expiry) opens exactly
// one recharge order with one recharge.requested event, however many concurrent burns on
// however many replicas cross it; the monthly cap stops recharges and says so once a
// month; failed payments are retried on the schedule and then turn auto-recharge off;
// balance.low is sent once per crossing; refusals change nothing.
import { randomUUID } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { errorInfoOf, GrantSource, LedgerService, Role, type SetAutoRechargeRequestSchema, TopUpOrigin, TopUpState } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { runExpiryPass } from "../src/jobs/expiry-jobs.js";
import { runRechargePass } from "../src/jobs/recharge-jobs.js";
import { bearer } from "../../test-support/bearer.js";
import { invariantViolations } from "../../test-support/invariants.js";
import { errorOf } from "../../test-support/snapshot.js";
import { type Clients, FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";

const creditTypeId = "api_credits";
const otherCreditTypeId = "ai_credits";
const hourMs = 3_600_000;
let t: TestServer;
let clock: FakeClock;
let admin: Clients;
let service: Clients;
let support: Clients;
let bundleId: string;

const fresh = (prefix: string) => `${prefix}_${randomUUID().slice(0, 8)}`;

type Settings = Omit<MessageInitShape<typeof SetAutoRechargeRequestSchema>, "$typeName">;

/** configure grants a fresh customer credits and sets its auto-recharge (a plain 1,000 credits for 50 USD unless told). */
async function configure(options: { granted: bigint; settings: Partial<Settings> }): Promise<string> {
  const customerId = fresh("cust");
  if (options.granted > 0n) await grant(customerId, options.granted);
  await support.billing.setAutoRecharge({
    customerId,
    creditTypeId,
    enabled: true,
    threshold: 500n,
    item: { case: "amount", value: { creditTypeId, credits: 1000n, currency: "USD", priceMinor: 5000n } },
    requestId: randomUUID(),
    ...options.settings,
  });
  return customerId;
}

async function grant(customerId: string, amount: bigint, expireTime?: Date) {
  await service.ledger.grant({
    customerId,
    creditTypeId,
    amount,
    source: GrantSource.PURCHASE,
    reasonCode: "purchase",
    expireTime: expireTime === undefined ? undefined : timestampFromDate(expireTime),
    requestId: randomUUID(),
  });
}

function burn(customerId: string, amount: bigint, client: Clients = service) {
  return client.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount } }, requestId: randomUUID() });
}

/** recharges reads a customer's recharge orders, oldest first, through the contract. */
async function recharges(customerId: string) {
  const response = await service.billing.listTopUps({ customerId });
  return response.topUps.filter((order) => order.origin === TopUpOrigin.RECHARGE).reverse();
}

/** events reads the outbox's events of a type for a customer, oldest first. */
async function events(type: string, customerId: string): Promise<Record<string, unknown>[]> {
  const result = await t.database.pool.query("select payload from webhook_events where type = $1 and customer_id = $2 order by seq", [type, customerId]);
  return result.rows.map((row) => row.payload as Record<string, unknown>);
}

async function audits(action: string, customerId: string): Promise<number> {
  const result = await t.database.pool.query("select count(*)::int as n from audit_log where action = $1 and target = $2", [action, `customer:${customerId}`]);
  return result.rows[0].n;
}

/** waitForRecharges waits (polling, bounded) until the kicked job opened this many orders. */
async function waitForRecharges(customerId: string, count: number) {
  await vi.waitFor(async () => expect(await recharges(customerId)).toHaveLength(count), { timeout: 10_000, interval: 20 });
}

beforeAll(async () => {
  clock = new FakeClock(Date.parse("2030-01-10T00:00:00Z"));
  t = await startTestServer({ clock });
  admin = t.clients(t.adminToken);
  service = t.clients(await t.createKey("service"));
  support = t.clients(await t.createKey("support", 1000n));
  for (const id of [creditTypeId, otherCreditTypeId]) {
    await admin.admin.createCreditType({ creditType: { creditTypeId: id, displayName: id, scale: 0 }, requestId: randomUUID() });
  }
  bundleId = fresh("bundle");
  await admin.billing.createBundle({ requestId: randomUUID(), bundleId, displayName: "1,000 API credits", creditTypeId, credits: 1000n, bonusCredits: 100n, currency: "USD", priceMinor: 5000n });
  // Events are written only when an endpoint subscribes; no delivery runs (jobs are off).
  await admin.webhooks.createWebhookEndpoint({ url: "https://example.com/hooks", eventTypes: [], requestId: randomUUID() });
});

afterAll(async () => {
  expect(await invariantViolations(t.database.pool)).toEqual([]);
  await t?.close();
});

describe("the trigger", () => {
  it("200 concurrent burns crossing the threshold open exactly one recharge order and one recharge.requested, within the kick", async () => {
    const customerId = await configure({ granted: 1000n, settings: { item: { case: "bundleId", value: bundleId } } });
    const burns = await Promise.allSettled(Array.from({ length: 200 }, () => burn(customerId, 5n)));
    expect(burns.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(200);
    // Opened by the kick after the crossing group, without any pass run by the test.
    await waitForRecharges(customerId, 1);
    await Promise.all([runRechargePass(t.server.deps), runRechargePass(t.server.deps)]);
    const [order] = await recharges(customerId);
    expect(order).toMatchObject({ state: TopUpState.PENDING, bundleId, bundleVersion: 1, credits: 1100n, priceMinor: 5000n, currency: "USD", attempt: 1 });
    expect(await recharges(customerId)).toHaveLength(1);
    expect(await events("recharge.requested", customerId)).toEqual([
      { orderId: order.orderId, customerId, creditTypeId, bundleId, bundleVersion: 1, credits: "1100", currency: "USD", priceMinor: "5000", attempt: 1 },
    ]);
  });

  it("two replicas, each burning and each running the job, still open exactly one order", async () => {
    const replica = await t.startReplica();
    const replicaLedger = createClient(LedgerService, createConnectTransport({ baseUrl: replica.httpUrl, httpVersion: "1.1", interceptors: [bearer(t.adminToken)] }));
    const replicaClients = { ...service, ledger: replicaLedger };
    const customerId = await configure({ granted: 1000n, settings: {} });
    const burns = Array.from({ length: 200 }, (_, i) => burn(customerId, 5n, i % 2 === 0 ? service : replicaClients));
    await Promise.all([...burns, runRechargePass(t.server.deps), runRechargePass(replica.deps)]);
    await waitForRecharges(customerId, 1);
    await Promise.all([runRechargePass(t.server.deps), runRechargePass(replica.deps)]);
    expect(await recharges(customerId)).toHaveLength(1);
    expect(await events("recharge.requested", customerId)).toHaveLength(1);
    expect((await service.ledger.getBalance({ customerId, creditTypeId })).balances[0].available).toBe(0n);
  });

  it("a commit above the held amount that crosses the threshold opens a recharge", async () => {
    const customerId = await configure({ granted: 1000n, settings: {} });
    const reserved = await service.ledger.reserve({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 100n } }, requestId: randomUUID() });
    await runRechargePass(t.server.deps);
    expect(await recharges(customerId)).toHaveLength(0);
    await service.ledger.commit({ reservationId: reserved.reservation!.reservationId, amount: 600n, requestId: randomUUID() });
    await waitForRecharges(customerId, 1);
  });

  it("an expiry that takes the balance below the threshold opens a recharge", async () => {
    const customerId = fresh("cust");
    await grant(customerId, 100n);
    await grant(customerId, 600n, new Date(clock.ms + hourMs));
    await support.billing.setAutoRecharge({ customerId, creditTypeId, enabled: true, threshold: 500n, item: { case: "bundleId", value: bundleId }, requestId: randomUUID() });
    await runRechargePass(t.server.deps);
    expect(await recharges(customerId)).toHaveLength(0);
    clock.advance(hourMs + 1_000);
    await runExpiryPass(t.server.deps);
    await waitForRecharges(customerId, 1);
    expect(await events("recharge.requested", customerId)).toHaveLength(1);
  });

  it("enabling auto-recharge on a balance already below its threshold opens a recharge; disabled settings open none", async () => {
    const below = await configure({ granted: 100n, settings: {} });
    await runRechargePass(t.server.deps);
    expect(await recharges(below)).toHaveLength(1);
    const disabled = await configure({ granted: 1000n, settings: { enabled: false } });
    await burn(disabled, 900n);
    await runRechargePass(t.server.deps);
    expect(await recharges(disabled)).toHaveLength(0);
  });

  it("a paid recharge credits once through ConfirmTopUp, and the next crossing opens the next one", async () => {
    const customerId = await configure({ granted: 1000n, settings: {} });
    await burn(customerId, 600n);
    await waitForRecharges(customerId, 1);
    const [order] = await recharges(customerId);
    const confirm = { orderId: order.orderId, paymentReference: fresh("pi"), amountMinor: 5000n, currency: "USD", requestId: randomUUID() };
    await Promise.all([service.billing.confirmTopUp(confirm), service.billing.confirmTopUp({ ...confirm, requestId: randomUUID() })]);
    expect((await service.ledger.getBalance({ customerId, creditTypeId })).balances[0].available).toBe(1400n);
    await burn(customerId, 1000n);
    await waitForRecharges(customerId, 2);
    expect((await recharges(customerId)).map((o) => o.state).sort()).toEqual([TopUpState.PENDING, TopUpState.PAID]);
  });
});

describe("the monthly cap", () => {
  it("no order past the cap: one audit record and one recharge.failed a month, then recharges again next month", async () => {
    const customerId = await configure({ granted: 1000n, settings: { monthlyRechargesMax: 1 } });
    await burn(customerId, 600n);
    await waitForRecharges(customerId, 1);
    const [order] = await recharges(customerId);
    await service.billing.confirmTopUp({ orderId: order.orderId, paymentReference: fresh("pi"), amountMinor: 5000n, currency: "USD", requestId: randomUUID() });
    for (let round = 0; round < 2; round++) {
      await burn(customerId, 1000n);
      await runRechargePass(t.server.deps);
      await grant(customerId, 1000n);
    }
    expect(await recharges(customerId)).toHaveLength(1);
    expect(await events("recharge.failed", customerId)).toEqual([
      { customerId, creditTypeId, reason: "monthly_cap_reached", disabled: false, monthlyRechargesMax: 1, available: "400" },
    ]);
    expect(await audits("recharge_cap_reached", customerId)).toBe(1);
    expect((await service.billing.getAutoRecharge({ customerId, creditTypeId })).autoRecharge?.rechargesThisMonth).toBe(1);
    clock.ms = Date.parse("2030-02-01T00:00:01Z");
    await burn(customerId, 1000n);
    await waitForRecharges(customerId, 2);
  });
});

describe("failed payments", () => {
  it("a failed recharge is asked for again after 1 h, 6 h and 24 h, then fails and turns auto-recharge off", async () => {
    const customerId = await configure({ granted: 1000n, settings: {} });
    await burn(customerId, 600n);
    await waitForRecharges(customerId, 1);
    const [order] = await recharges(customerId);
    for (const [index, delayMs] of [hourMs, 6 * hourMs, 24 * hourMs].entries()) {
      const failed = (await service.billing.failTopUp({ orderId: order.orderId, reason: "card_declined", requestId: randomUUID() })).topUp!;
      expect(failed).toMatchObject({ state: TopUpState.PENDING, paymentFailures: index + 1, failureReason: "card_declined" });
      expect(failed.retryTime).toBeDefined();
      clock.advance(delayMs - 1_000);
      await runRechargePass(t.server.deps);
      expect((await recharges(customerId))[0].attempt).toBe(index + 1);
      clock.advance(1_000);
      await runRechargePass(t.server.deps);
      expect((await recharges(customerId))[0]).toMatchObject({ attempt: index + 2, state: TopUpState.PENDING });
    }
    const last = (await service.billing.failTopUp({ orderId: order.orderId, reason: "card_declined", requestId: randomUUID() })).topUp!;
    expect(last).toMatchObject({ state: TopUpState.FAILED, paymentFailures: 4 });
    expect((await events("recharge.requested", customerId)).map((event) => event.attempt)).toEqual([1, 2, 3, 4]);
    const failures = await events("recharge.failed", customerId);
    expect(failures.map((event) => event.disabled)).toEqual([false, false, false, true]);
    const settings = (await service.billing.getAutoRecharge({ customerId, creditTypeId })).autoRecharge!;
    expect(settings.enabled).toBe(false);
    expect(settings.disabledReason).toContain("4 failed payments");
    expect(await audits("disable_auto_recharge", customerId)).toBe(1);
    // Turned off: another crossing opens nothing.
    await grant(customerId, 1000n);
    await burn(customerId, 1000n);
    await runRechargePass(t.server.deps);
    expect(await recharges(customerId)).toHaveLength(1);
    // A failure reported again changes nothing.
    const again = await errorOf(service.billing.failTopUp({ orderId: order.orderId, reason: "card_declined", requestId: randomUUID() }));
    expect([Code[again.code], errorInfoOf(again)?.reason]).toEqual(["FailedPrecondition", "TOPUP_NOT_PENDING"]);
  });

  it("a plain order whose payment failed fails at once, and a replay of the report answers the same", async () => {
    const customerId = fresh("cust");
    const order = (await service.billing.createTopUp({ customerId, item: { case: "bundleId", value: bundleId }, requestId: randomUUID() })).topUp!;
    const request = { orderId: order.orderId, reason: "insufficient_funds", requestId: randomUUID() };
    const first = (await service.billing.failTopUp(request)).topUp!;
    expect(first).toMatchObject({ state: TopUpState.FAILED, paymentFailures: 1, origin: TopUpOrigin.API });
    expect((await service.billing.failTopUp(request)).topUp).toEqual(first);
    expect(await events("recharge.failed", customerId)).toEqual([]);
  });
});

describe("credit on creation", () => {
  const available = async (customerId: string) => (await service.ledger.getBalance({ customerId, creditTypeId })).balances[0].available;
  const failUntilDone = async (orderId: string) => {
    for (const delayMs of [hourMs, 6 * hourMs, 24 * hourMs]) {
      await service.billing.failTopUp({ orderId, reason: "card_declined", requestId: randomUUID() });
      clock.advance(delayMs);
      await runRechargePass(t.server.deps);
    }
    return (await service.billing.failTopUp({ orderId, reason: "card_declined", requestId: randomUUID() })).topUp!;
  };

  it("credits the order when it opens; its payment credits nothing more", async () => {
    const customerId = await configure({ granted: 1000n, settings: { creditOnCreation: true } });
    await burn(customerId, 600n);
    await vi.waitFor(async () => expect((await recharges(customerId))[0]?.unpaidCredits).toBe(1000n), { timeout: 10_000, interval: 20 });
    expect(await available(customerId)).toBe(1400n);
    const [order] = await recharges(customerId);
    expect(order.grantId).not.toBe("");
    await runRechargePass(t.server.deps);
    expect(await available(customerId)).toBe(1400n);
    const paid = (await service.billing.confirmTopUp({ orderId: order.orderId, paymentReference: fresh("pi"), amountMinor: 5000n, currency: "USD", requestId: randomUUID() })).topUp!;
    expect(paid).toMatchObject({ state: TopUpState.PAID, grantId: order.grantId, unpaidCredits: 0n });
    expect(await available(customerId)).toBe(1400n);
  });

  it("the last failed payment claws back what is left of the lot and turns what was burned into debt", async () => {
    const customerId = await configure({ granted: 1000n, settings: { creditOnCreation: true } });
    await burn(customerId, 600n);
    await vi.waitFor(async () => expect((await recharges(customerId))[0]?.unpaidCredits).toBe(1000n), { timeout: 10_000, interval: 20 });
    // 400 from the first lot, then 800 of the recharge's 1,000.
    await burn(customerId, 1200n);
    const [order] = await recharges(customerId);
    const failed = await failUntilDone(order.orderId);
    expect(failed).toMatchObject({ state: TopUpState.FAILED, paymentFailures: 4, unpaidCredits: 0n, clawedBackCredits: 200n, debtCredits: 800n });
    expect(await available(customerId)).toBe(-800n);
    expect((await service.billing.getAutoRecharge({ customerId, creditTypeId })).autoRecharge?.enabled).toBe(false);
    expect((await events("recharge.failed", customerId)).map((event) => event.disabled)).toEqual([false, false, false, true]);
  });

  it("cancelling an order credited on creation claws its credits back", async () => {
    const customerId = await configure({ granted: 1000n, settings: { creditOnCreation: true } });
    await burn(customerId, 600n);
    await vi.waitFor(async () => expect((await recharges(customerId))[0]?.unpaidCredits).toBe(1000n), { timeout: 10_000, interval: 20 });
    const [order] = await recharges(customerId);
    const cancelled = (await service.billing.cancelTopUp({ orderId: order.orderId, note: "customer asked", requestId: randomUUID() })).topUp!;
    expect(cancelled).toMatchObject({ state: TopUpState.CANCELLED, unpaidCredits: 0n, clawedBackCredits: 1000n, debtCredits: 0n });
    expect(await available(customerId)).toBe(400n);
  });
});

describe("balance.low", () => {
  it("is sent once per crossing, and again only after the balance went back above its threshold", async () => {
    const customerId = await configure({ granted: 1000n, settings: { enabled: false, threshold: 0n, item: { case: undefined }, balanceLowThreshold: 300n } });
    for (let i = 0; i < 9; i++) await burn(customerId, 100n);
    expect(await events("balance.low", customerId)).toEqual([{ creditTypeId, available: "200", threshold: "300" }]);
    // Back to 200, still below: not re-armed, and a burn sends nothing.
    await grant(customerId, 100n);
    await burn(customerId, 50n);
    expect(await events("balance.low", customerId)).toHaveLength(1);
    // Back to the threshold: re-armed.
    await grant(customerId, 150n);
    await burn(customerId, 150n);
    expect(await events("balance.low", customerId)).toEqual([
      { creditTypeId, available: "200", threshold: "300" },
      { creditTypeId, available: "150", threshold: "300" },
    ]);
    expect(await recharges(customerId)).toHaveLength(0);
  });
});

describe("settings", () => {
  it("are read back by staff and by the customer's own key, audited once per change", async () => {
    const customerId = await configure({ granted: 0n, settings: { item: { case: "bundleId", value: bundleId }, monthlyRechargesMax: 3, balanceLowThreshold: 200n } });
    const read = (await service.billing.getAutoRecharge({ customerId, creditTypeId })).autoRecharge!;
    expect(read).toMatchObject({ customerId, creditTypeId, enabled: true, threshold: 500n, item: { case: "bundleId", value: bundleId }, monthlyRechargesMax: 3, balanceLowThreshold: 200n });
    const portal = await admin.admin.createApiKey({ name: "portal", role: Role.CUSTOMER, customerId, requestId: randomUUID() });
    const own = t.clients(portal.token);
    expect((await own.billing.listAutoRecharges({ customerId })).autoRecharges.map((s) => s.creditTypeId)).toEqual([creditTypeId]);
    const other = await errorOf(own.billing.getAutoRecharge({ customerId: "someone-else", creditTypeId }));
    expect(errorInfoOf(other)?.reason).toBe("CUSTOMER_NOT_FOUND");
    expect(await audits("set_auto_recharge", customerId)).toBe(1);
    const missing = await errorOf(service.billing.getAutoRecharge({ customerId, creditTypeId: otherCreditTypeId }));
    expect([Code[missing.code], errorInfoOf(missing)?.reason]).toEqual(["NotFound", "AUTO_RECHARGE_NOT_FOUND"]);
  });

  const amount = (value: Partial<{ creditTypeId: string; credits: bigint; currency: string; priceMinor: bigint }>) => ({
    case: "amount" as const,
    value: { creditTypeId, credits: 1000n, currency: "USD", priceMinor: 5000n, ...value },
  });
  const refused: { name: string; change: () => Partial<Settings>; code: string; reason: string }[] = [
    { name: "a negative threshold", change: () => ({ threshold: -1n }), code: "InvalidArgument", reason: "INVALID_THRESHOLD" },
    { name: "enabled with no threshold", change: () => ({ threshold: 0n }), code: "InvalidArgument", reason: "INVALID_THRESHOLD" },
    { name: "a negative balance-low threshold", change: () => ({ balanceLowThreshold: -5n }), code: "InvalidArgument", reason: "INVALID_THRESHOLD" },
    { name: "enabled with nothing to buy", change: () => ({ item: { case: undefined } }), code: "InvalidArgument", reason: "RECHARGE_ITEM_MISSING" },
    { name: "an unknown bundle", change: () => ({ item: { case: "bundleId", value: "no_such_bundle" } }), code: "NotFound", reason: "BUNDLE_NOT_FOUND" },
    { name: "a bundle version that does not exist", change: () => ({ item: { case: "bundleId", value: bundleId }, bundleVersion: 9 }), code: "NotFound", reason: "BUNDLE_NOT_FOUND" },
    { name: "a bundle of another credit type", change: () => ({ creditTypeId: otherCreditTypeId, item: { case: "bundleId", value: bundleId } }), code: "InvalidArgument", reason: "CREDIT_TYPE_MISMATCH" },
    { name: "an amount of another credit type", change: () => ({ item: amount({ creditTypeId: otherCreditTypeId }) }), code: "InvalidArgument", reason: "CREDIT_TYPE_MISMATCH" },
    { name: "a zero price", change: () => ({ item: amount({ priceMinor: 0n }) }), code: "InvalidArgument", reason: "INVALID_PRICE" },
    { name: "a negative price", change: () => ({ item: amount({ priceMinor: -100n }) }), code: "InvalidArgument", reason: "INVALID_PRICE" },
    { name: "a currency in lower case", change: () => ({ item: amount({ currency: "usd" }) }), code: "InvalidArgument", reason: "INVALID_CURRENCY" },
    { name: "zero credits", change: () => ({ item: amount({ credits: 0n }) }), code: "InvalidArgument", reason: "INVALID_AMOUNT" },
    { name: "a negative monthly cap", change: () => ({ monthlyRechargesMax: -1 }), code: "InvalidArgument", reason: "INVALID_MONTHLY_LIMIT" },
    { name: "an unknown credit type", change: () => ({ creditTypeId: "no_such_type", item: { case: undefined }, enabled: false, threshold: 0n }), code: "NotFound", reason: "CREDIT_TYPE_NOT_FOUND" },
  ];
  it.each(refused)("$name is refused with $code $reason and changes nothing", async ({ change, code, reason }) => {
    const customerId = fresh("cust");
    const before = await t.database.pool.query("select (select count(*) from recharge_settings)::int as s, (select count(*) from audit_log)::int as a, (select count(*) from balances)::int as b");
    const error = await errorOf(
      support.billing.setAutoRecharge({
        customerId,
        creditTypeId,
        enabled: true,
        threshold: 500n,
        item: amount({}),
        requestId: randomUUID(),
        ...change(),
      }),
    );
    expect([Code[error.code], errorInfoOf(error)?.reason]).toEqual([code, reason]);
    const after = await t.database.pool.query("select (select count(*) from recharge_settings)::int as s, (select count(*) from audit_log)::int as a, (select count(*) from balances)::int as b");
    expect(after.rows).toEqual(before.rows);
  });
});
