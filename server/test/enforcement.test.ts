// Enforcement holds on every path: the kill switch, a feature's OBSERVE and OFF modes, and
// a rollout of another mode to a cohort of customers apply to Reserve, Commit, Release,
// Burn, the batch RPCs, ReportUsage, Check and the SDK's withCredits alike. Under the kill
// switch nothing is refused for lack of credits and what goes past a limit is debt, flagged;
// in OBSERVE the real balance is never touched and the shadow ledger records what would
// have been burned; in OFF it is recorded, not billed.
import { randomBytes, randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { createBurndownClient, EnforcementMode, EnforcementRule, errorInfoOf, GrantSource, UsageOutcome } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invariantViolations } from "../../test-support/invariants.js";
import { databaseSnapshot, errorOf } from "../../test-support/snapshot.js";
import { type Clients, startTestServer, type TestServer } from "../../test-support/server.js";

const creditTypeId = "api_credits";
const fresh = (prefix: string) => `${prefix}_${randomBytes(5).toString("hex")}`;

let t: TestServer;
let c: Clients;

beforeAll(async () => {
  t = await startTestServer();
  c = t.clients(t.adminToken);
  await c.admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 0 }, requestId: randomUUID() });
});
afterAll(() => t?.close());

async function feature(mode: EnforcementMode = EnforcementMode.ENFORCE, burnRate = 10n): Promise<string> {
  const featureKey = fresh("feature");
  await c.admin.createFeature({ feature: { featureKey, displayName: "Feature", creditTypeId, burnRate }, requestId: randomUUID() });
  if (mode !== EnforcementMode.ENFORCE) await c.admin.setEnforcementMode({ featureKey, mode, reason: "test", requestId: randomUUID() });
  return featureKey;
}

/** customer makes a customer with these credits (none: the customer exists, its balance does not). */
async function customer(credits: bigint | null, overdraftLimit = 0n): Promise<string> {
  const customerId = fresh("cust");
  await c.admin.createCustomer({
    customer: { customerId, overdraftLimits: overdraftLimit > 0n ? [{ creditTypeId, amount: overdraftLimit }] : [] },
    requestId: randomUUID(),
  });
  if (credits !== null) await c.ledger.grant({ customerId, creditTypeId, amount: credits, source: GrantSource.PURCHASE, reasonCode: "seed", requestId: randomUUID() });
  return customerId;
}

const balanceOf = async (customerId: string) => (await c.ledger.getBalance({ customerId, creditTypeId })).balances[0];
const usage = (featureKey: string, quantity = 1n) => ({ case: "usage" as const, value: { featureKey, quantity } });
const credits = (amount: bigint) => ({ case: "credits" as const, value: { creditTypeId, amount } });

async function shadowOf(customerId: string): Promise<{ mode: string; credits: string; source: string }[]> {
  const result = await t.database.pool.query(
    `select mode, credits::text, case when usage_id is not null then 'usage' when reservation_id is not null then 'reservation' else 'burn' end as source
     from shadow_entries where customer_id = $1 order by shadow_id`,
    [customerId],
  );
  return result.rows;
}

async function setKillSwitch(enabled: boolean): Promise<void> {
  await c.admin.setKillSwitch({ enabled, reason: "test", requestId: randomUUID() });
}

describe("the kill switch", () => {
  beforeAll(() => setKillSwitch(true));
  afterAll(() => setKillSwitch(false));

  it("ListFeatures says whether it is on, to every role that may list features", async () => {
    expect((await c.admin.listFeatures({})).killSwitch).toBe(true);
    await setKillSwitch(false);
    expect((await c.admin.listFeatures({})).killSwitch).toBe(false);
    await setKillSwitch(true);
    const service = t.clients(await t.createKey("service"));
    expect((await service.admin.listFeatures({})).killSwitch).toBe(true);
  });

  it("Reserve does not refuse: one that does not fit is made forced, holding nothing, and its commit burns past the limit, flagged", async () => {
    const customerId = await customer(10n);
    const reserved = await c.ledger.reserve({ customerId, cost: credits(50n), requestId: randomUUID() });
    expect(reserved.reservation).toMatchObject({ forced: true, mode: EnforcementMode.ENFORCE, amount: 50n });
    expect(await balanceOf(customerId)).toMatchObject({ held: 0n, available: 10n });
    const committed = await c.ledger.commit({ reservationId: reserved.reservation!.reservationId, amount: 50n, requestId: randomUUID() });
    expect(committed.overLimit).toBe(true);
    expect(await balanceOf(customerId)).toMatchObject({ burned: 50n, available: -40n });
    const entries = (await c.ledger.listLedgerEntries({ customerId, creditTypeId })).entries.filter((entry) => entry.reasonCode !== "seed");
    expect(entries.some((entry) => entry.overLimit)).toBe(true);
  });

  it("a Reserve that fits holds as usual, and a commit above it burns the excess past the limit, flagged", async () => {
    const customerId = await customer(100n);
    const reserved = await c.ledger.reserve({ customerId, cost: credits(60n), requestId: randomUUID() });
    expect(reserved.reservation).toMatchObject({ forced: false, mode: EnforcementMode.ENFORCE });
    expect(await balanceOf(customerId)).toMatchObject({ held: 60n });
    const committed = await c.ledger.commit({ reservationId: reserved.reservation!.reservationId, amount: 130n, requestId: randomUUID() });
    expect(committed.overLimit).toBe(true);
    expect(await balanceOf(customerId)).toMatchObject({ burned: 130n, held: 0n, available: -30n });
  });

  it("Burn does not refuse, also for a customer who never had credits of the type, and flags what went past the limit", async () => {
    const poor = await customer(5n, 10n);
    const burned = await c.ledger.burn({ customerId: poor, cost: credits(40n), requestId: randomUUID() });
    expect(burned).toMatchObject({ overLimit: true, mode: EnforcementMode.ENFORCE });
    expect(burned.entries.filter((entry) => entry.overLimit).length).toBeGreaterThan(0);
    expect(await balanceOf(poor)).toMatchObject({ available: -35n, burned: 40n });
    const never = await customer(null);
    const first = await c.ledger.burn({ customerId: never, cost: credits(7n), requestId: randomUUID() });
    expect(first.overLimit).toBe(true);
    expect(await balanceOf(never)).toMatchObject({ available: -7n, burned: 7n });
  });

  it("the batch RPCs do not refuse either, item by item", async () => {
    const customerId = await customer(10n);
    const held = await c.ledger.reserveBatch({ requests: [5n, 50n].map((amount) => ({ customerId, cost: credits(amount), requestId: randomUUID() })) });
    expect(held.results.map((r) => r.result.case)).toEqual(["response", "response"]);
    const reservations = held.results.map((r) => (r.result.case === "response" ? r.result.value.reservation! : undefined)!);
    expect(reservations.map((r) => r.forced)).toEqual([false, true]);
    const committed = await c.ledger.commitBatch({ requests: reservations.map((r) => ({ reservationId: r.reservationId, amount: r.amount, requestId: randomUUID() })) });
    expect(committed.results.map((r) => r.result.case)).toEqual(["response", "response"]);
    expect(await balanceOf(customerId)).toMatchObject({ burned: 55n, available: -45n });
  });

  it("Check allows, ReportUsage meters, and the SDK's withCredits runs its action for a customer with nothing", async () => {
    const featureKey = await feature();
    const customerId = await customer(1n);
    expect(await c.ledger.check({ customerId, featureKey, quantity: 10n })).toMatchObject({ allowed: true, wouldAllow: false, rule: EnforcementRule.FEATURE_DEFAULT });
    const reported = await c.ledger.reportUsage({ events: [{ eventId: randomUUID(), customerId, featureKey, quantity: 3n }] });
    expect(reported.results[0]).toMatchObject({ outcome: UsageOutcome.BURNED, credits: 30n, overLimit: true });
    const sdk = createBurndownClient({ baseUrl: t.server.grpcUrl, apiKey: t.adminToken });
    try {
      let ran = false;
      await sdk.withCredits({ customerId, featureKey, quantity: 2n }, async () => {
        ran = true;
      });
      expect(ran).toBe(true);
    } finally {
      await sdk.close();
    }
    expect(await balanceOf(customerId)).toMatchObject({ burned: 50n, available: -49n });
  });

  it("once off again, the same requests are refused and change nothing", async () => {
    const customerId = await customer(10n);
    await setKillSwitch(false);
    try {
      const before = await databaseSnapshot(t.database.pool);
      for (const call of [
        () => c.ledger.reserve({ customerId, cost: credits(50n), requestId: randomUUID() }),
        () => c.ledger.burn({ customerId, cost: credits(50n), requestId: randomUUID() }),
      ]) {
        const error = await errorOf(call());
        expect([error.code, errorInfoOf(error)?.reason]).toEqual([Code.FailedPrecondition, "INSUFFICIENT_CREDITS"]);
      }
      expect(await databaseSnapshot(t.database.pool)).toEqual(before);
    } finally {
      await setKillSwitch(true);
    }
  });

  it("leaves every invariant intact (balances past their limit are flagged)", async () => {
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });
});

describe.each([
  { mode: EnforcementMode.OBSERVE, name: "OBSERVE", shadow: "observe", reason: "observe_only" },
  { mode: EnforcementMode.OFF, name: "OFF", shadow: "off", reason: "enforcement_off" },
])("a feature in $name", ({ mode, shadow }) => {
  it("Reserve and Commit hold and burn nothing, and the commit is recorded in the shadow ledger", async () => {
    const featureKey = await feature(mode);
    const customerId = await customer(100n);
    const before = await balanceOf(customerId);
    const reserved = await c.ledger.reserve({ customerId, cost: usage(featureKey, 30n), requestId: randomUUID() });
    expect(reserved.reservation).toMatchObject({ mode, forced: false, amount: 300n });
    expect(await balanceOf(customerId)).toEqual(before);
    await c.ledger.commit({ reservationId: reserved.reservation!.reservationId, amount: 120n, requestId: randomUUID() });
    const released = await c.ledger.reserve({ customerId, cost: usage(featureKey), requestId: randomUUID() });
    await c.ledger.release({ reservationId: released.reservation!.reservationId, requestId: randomUUID() });
    expect(await balanceOf(customerId)).toEqual(before);
    expect(await shadowOf(customerId)).toEqual([{ mode: shadow, credits: "120", source: "reservation" }]);
  });

  it("Burn, the batch RPCs and ReportUsage leave the balance alone; a customer with nothing is not refused", async () => {
    const featureKey = await feature(mode);
    const customerId = await customer(null);
    const burned = await c.ledger.burn({ customerId, cost: usage(featureKey, 2n), requestId: randomUUID() });
    expect(burned).toMatchObject({ mode, entries: [], amount: 20n, overLimit: false });
    const held = await c.ledger.reserveBatch({ requests: [{ customerId, cost: usage(featureKey), requestId: randomUUID() }] });
    const reservation = held.results[0].result.case === "response" ? held.results[0].result.value.reservation! : undefined;
    expect(reservation?.mode).toBe(mode);
    const committed = await c.ledger.commitBatch({ requests: [{ reservationId: reservation!.reservationId, amount: 10n, requestId: randomUUID() }] });
    expect(committed.results[0].result.case).toBe("response");
    const reported = await c.ledger.reportUsage({ events: [{ eventId: randomUUID(), customerId, featureKey, quantity: 1n }] });
    expect(reported.results[0].outcome).toBe(mode === EnforcementMode.OBSERVE ? UsageOutcome.SHADOWED : UsageOutcome.NOT_BILLED);
    // Usage creates the customer's (empty) balance of the credit type; nothing moved in it.
    expect((await c.ledger.getBalance({ customerId })).balances.map((b) => [b.granted, b.held, b.burned, b.available])).toEqual([[0n, 0n, 0n, 0n]]);
    const recorded = await shadowOf(customerId);
    expect(recorded.filter((row) => row.source !== "usage")).toEqual([
      { mode: shadow, credits: "20", source: "burn" },
      { mode: shadow, credits: "10", source: "reservation" },
    ]);
  });

  it("Check allows and says so, and the SDK's withCredits runs without touching the balance", async () => {
    const featureKey = await feature(mode);
    const customerId = await customer(1n);
    const checked = await c.ledger.check({ customerId, featureKey, quantity: 5n });
    expect(checked).toMatchObject({ allowed: true, wouldAllow: false, mode, rule: EnforcementRule.FEATURE_DEFAULT });
    const sdk = createBurndownClient({ baseUrl: t.server.grpcUrl, apiKey: t.adminToken });
    try {
      let ran = false;
      await sdk.withCredits({ customerId, featureKey, quantity: 5n }, async () => {
        ran = true;
      });
      expect(ran).toBe(true);
    } finally {
      await sdk.close();
    }
    expect(await balanceOf(customerId)).toMatchObject({ burned: 0n, held: 0n, available: 1n });
    expect((await shadowOf(customerId)).map((row) => [row.mode, row.credits])).toEqual([[shadow, "50"]]);
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });
});

describe("a rollout of another mode to a cohort", () => {
  it("applies to the listed customers and to its percentage, on every path, and Check names the rule", async () => {
    const featureKey = await feature(EnforcementMode.ENFORCE);
    const listed = await customer(100n);
    const other = await customer(100n);
    await c.admin.setEnforcementRollout({ featureKey, rollout: { mode: EnforcementMode.OBSERVE, customerIds: [listed] }, reason: "shadow the pilot", requestId: randomUUID() });
    expect(await c.ledger.check({ customerId: listed, featureKey })).toMatchObject({ mode: EnforcementMode.OBSERVE, rule: EnforcementRule.CUSTOMER_LIST, reason: 3 });
    expect(await c.ledger.check({ customerId: other, featureKey })).toMatchObject({ mode: EnforcementMode.ENFORCE, rule: EnforcementRule.FEATURE_DEFAULT });
    for (const customerId of [listed, other]) {
      await c.ledger.burn({ customerId, cost: usage(featureKey), requestId: randomUUID() });
      await c.ledger.reportUsage({ events: [{ eventId: randomUUID(), customerId, featureKey, quantity: 1n }] });
    }
    expect(await balanceOf(listed)).toMatchObject({ burned: 0n });
    expect(await balanceOf(other)).toMatchObject({ burned: 20n });

    // The whole customer base, by percentage.
    await c.admin.setEnforcementRollout({ featureKey, rollout: { mode: EnforcementMode.OFF, percent: 100 }, reason: "everyone off", requestId: randomUUID() });
    expect(await c.ledger.check({ customerId: other, featureKey })).toMatchObject({ mode: EnforcementMode.OFF, rule: EnforcementRule.PERCENTAGE });
    const burned = await c.ledger.burn({ customerId: other, cost: usage(featureKey), requestId: randomUUID() });
    expect(burned.mode).toBe(EnforcementMode.OFF);
    expect(await balanceOf(other)).toMatchObject({ burned: 20n });

    // Cleared: everyone gets the feature's own mode again.
    const cleared = await c.admin.setEnforcementRollout({ featureKey, reason: "rolled back", requestId: randomUUID() });
    expect(cleared.feature?.rollout).toBeUndefined();
    expect(await c.ledger.check({ customerId: listed, featureKey })).toMatchObject({ mode: EnforcementMode.ENFORCE, rule: EnforcementRule.FEATURE_DEFAULT });
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });

  it("holds on Reserve and Commit, the batch RPCs and the SDK's withCredits, for the cohort only", async () => {
    const featureKey = await feature(EnforcementMode.ENFORCE);
    const cohort = await customer(5n);
    const rest = await customer(5n);
    await c.admin.setEnforcementRollout({ featureKey, rollout: { mode: EnforcementMode.OBSERVE, customerIds: [cohort] }, reason: "pilot", requestId: randomUUID() });
    const sdk = createBurndownClient({ baseUrl: t.server.grpcUrl, apiKey: t.adminToken });
    try {
      // 3 units at 10 credits: more than either customer has.
      for (const customerId of [cohort, rest]) {
        const reserve = c.ledger.reserve({ customerId, cost: usage(featureKey, 3n), requestId: randomUUID() });
        const batch = c.ledger.reserveBatch({ requests: [{ customerId, cost: usage(featureKey, 3n), requestId: randomUUID() }] });
        let ran = false;
        const sdkCall = sdk.withCredits({ customerId, featureKey, quantity: 3n }, async () => {
          ran = true;
        });
        if (customerId === cohort) {
          const reserved = await reserve;
          expect(reserved.reservation).toMatchObject({ mode: EnforcementMode.OBSERVE, amount: 30n });
          await c.ledger.commit({ reservationId: reserved.reservation!.reservationId, amount: 30n, requestId: randomUUID() });
          const held = (await batch).results[0].result;
          expect(held.case === "response" && held.value.reservation?.mode).toBe(EnforcementMode.OBSERVE);
          const committed = await c.ledger.commitBatch({ requests: [{ reservationId: held.case === "response" ? held.value.reservation!.reservationId : "", amount: 30n, requestId: randomUUID() }] });
          expect(committed.results[0].result.case).toBe("response");
          await sdkCall;
          expect(ran).toBe(true);
          expect(await balanceOf(cohort)).toMatchObject({ burned: 0n, held: 0n, available: 5n });
          expect((await shadowOf(cohort)).map((row) => [row.mode, row.credits])).toEqual([["observe", "30"], ["observe", "30"], ["observe", "30"]]);
        } else {
          expect(errorInfoOf(await errorOf(reserve))?.reason).toBe("INSUFFICIENT_CREDITS");
          const refused = (await batch).results[0].result;
          expect(refused.case === "error" && refused.value.reason).toBe("INSUFFICIENT_CREDITS");
          await expect(sdkCall).rejects.toThrow();
          expect(ran).toBe(false);
          expect(await balanceOf(rest)).toMatchObject({ burned: 0n, held: 0n, available: 5n });
          expect(await shadowOf(rest)).toEqual([]);
        }
      }
    } finally {
      await sdk.close();
    }
  });

  it("by percentage keeps each customer in as the percentage grows", async () => {
    const featureKey = await feature(EnforcementMode.ENFORCE);
    const customers = await Promise.all(Array.from({ length: 40 }, () => customer(null)));
    const cohortAt = async (percent: number) => {
      await c.admin.setEnforcementRollout({ featureKey, rollout: { mode: EnforcementMode.OFF, percent }, reason: `${percent}%`, requestId: randomUUID() });
      const checks = await Promise.all(customers.map((customerId) => c.ledger.check({ customerId, featureKey })));
      return new Set(customers.filter((_, index) => checks[index].rule === EnforcementRule.PERCENTAGE));
    };
    const [ten, fifty, ninety] = [await cohortAt(10), await cohortAt(50), await cohortAt(90)];
    for (const customerId of ten) expect(fifty.has(customerId)).toBe(true);
    for (const customerId of fifty) expect(ninety.has(customerId)).toBe(true);
    expect(fifty.size).toBeGreaterThan(ten.size);
    expect(ninety.size).toBeGreaterThan(fifty.size);
    expect((await cohortAt(0)).size).toBe(0);
    expect((await cohortAt(100)).size).toBe(40);
  });

  it("is audited with its old and new values, and shows on the feature", async () => {
    const featureKey = await feature();
    const customerId = await customer(null);
    const set = await c.admin.setEnforcementRollout({ featureKey, rollout: { mode: EnforcementMode.OBSERVE, customerIds: [customerId, customerId], percent: 25 }, reason: "pilot", requestId: randomUUID() });
    expect(set.feature?.rollout).toMatchObject({ mode: EnforcementMode.OBSERVE, customerIds: [customerId], percent: 25 });
    expect((await c.admin.listFeatures({})).features.find((f) => f.featureKey === featureKey)?.rollout).toMatchObject({ percent: 25 });
    await c.admin.setEnforcementRollout({ featureKey, reason: "done", requestId: randomUUID() });
    const records = (await c.admin.listAuditRecords({ pageSize: 2 })).auditRecords.map((record) => ({ ...record, details: JSON.parse(record.detailsJson) }));
    expect(records.map((record) => [record.action, record.target, record.reason, record.details])).toEqual([
      ["set_enforcement_rollout", `feature:${featureKey}`, "done", { old: { mode: "observe", customer_ids: [customerId], percent: 25 }, new: null }],
      ["set_enforcement_rollout", `feature:${featureKey}`, "pilot", { old: null, new: { mode: "observe", customer_ids: [customerId], percent: 25 } }],
    ]);
  });

  it("refuses a bad rollout with a reason, changing nothing", async () => {
    const featureKey = await feature();
    const before = await databaseSnapshot(t.database.pool);
    const cases: [Parameters<typeof c.admin.setEnforcementRollout>[0], Code, string][] = [
      [{ featureKey, rollout: { mode: EnforcementMode.OBSERVE, percent: 101 }, reason: "x", requestId: randomUUID() }, Code.InvalidArgument, "INVALID_PERCENT"],
      [{ featureKey, rollout: { mode: EnforcementMode.UNSPECIFIED }, reason: "x", requestId: randomUUID() }, Code.InvalidArgument, "INVALID_ENUM"],
      [{ featureKey, rollout: { mode: EnforcementMode.OBSERVE, customerIds: Array.from({ length: 1_001 }, (_, i) => `c${i}`) }, reason: "x", requestId: randomUUID() }, Code.InvalidArgument, "TOO_MANY_CUSTOMERS"],
      [{ featureKey, rollout: { mode: EnforcementMode.OBSERVE, customerIds: ["has space"] }, reason: "x", requestId: randomUUID() }, Code.InvalidArgument, "INVALID_ID"],
      [{ featureKey: fresh("missing"), rollout: { mode: EnforcementMode.OBSERVE }, reason: "x", requestId: randomUUID() }, Code.NotFound, "FEATURE_NOT_FOUND"],
      [{ featureKey, rollout: { mode: EnforcementMode.OBSERVE }, reason: "", requestId: randomUUID() }, Code.InvalidArgument, "MISSING_FIELD"],
    ];
    for (const [request, code, reason] of cases) {
      const error = await errorOf(c.admin.setEnforcementRollout(request));
      expect([error.code, errorInfoOf(error)?.reason], reason).toEqual([code, reason]);
    }
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
  });
});
