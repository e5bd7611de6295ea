// Pooled credits through the contract, on real PostgreSQL: members spend their pool
// owner's balance and the ledger names them, limits per period hold under concurrent
// siblings, detaching stops pooling, usage and reservations of members, and every refused
// membership change changes nothing.
import { randomUUID } from "node:crypto";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { CheckReason, EntryKind, errorInfoOf, GrantSource, LedgerService, PoolPeriod, UsageGranularity, UsageOutcome } from "@burndown/sdk";
import { bearer } from "../../test-support/bearer.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invariantViolations } from "../../test-support/invariants.js";
import { errorOf } from "../../test-support/snapshot.js";
import { type Clients, startTestServer, type TestServer } from "../../test-support/server.js";

const creditTypeId = "seat_credits";
let t: TestServer;
let admin: Clients;
let service: Clients;

async function refusal(call: Promise<unknown>): Promise<{ code: string; reason: string | undefined }> {
  const error = await errorOf(call);
  return { code: Code[error.code], reason: errorInfoOf(error)?.reason };
}

async function customer(credits = 0n): Promise<string> {
  const customerId = `org-${randomUUID().slice(0, 8)}`;
  await admin.admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
  if (credits > 0n) await grant(customerId, credits);
  return customerId;
}

async function grant(customerId: string, amount: bigint): Promise<void> {
  await service.ledger.grant({ customerId, creditTypeId, amount, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
}

async function attach(parentCustomerId: string, memberCustomerId: string) {
  return admin.pools.attachPoolMember({ parentCustomerId, memberCustomerId, requestId: randomUUID() });
}

async function setLimit(memberCustomerId: string, limit: bigint, period = PoolPeriod.MONTH) {
  return admin.pools.setPoolMemberLimit({ memberCustomerId, creditTypeId, limit, period, requestId: randomUUID() });
}

const burn = (customerId: string, amount: bigint) => service.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount } }, requestId: randomUUID() });

async function available(customerId: string): Promise<bigint> {
  const response = await service.ledger.getBalance({ customerId, creditTypeId });
  return response.balances.find((balance) => balance.creditTypeId === creditTypeId)?.available ?? 0n;
}

async function usedBy(parentCustomerId: string, memberCustomerId: string): Promise<bigint> {
  const pool = await admin.pools.listPoolMembers({ customerId: parentCustomerId });
  const member = pool.members.find((m) => m.memberCustomerId === memberCustomerId);
  return member?.usage.find((usage) => usage.creditTypeId === creditTypeId)?.used ?? 0n;
}

/** poolTables is what a refused membership change must leave as it was. */
async function poolTables() {
  const result = await t.database.pool.query(`select
    (select json_agg(m order by member_customer_id) from (select member_customer_id, parent_customer_id from pool_members) m) as members,
    (select json_agg(l order by member_customer_id, credit_type_id) from pool_member_limits l) as limits,
    (select count(*) from audit_log)::int as audits`);
  return result.rows[0];
}

beforeAll(async () => {
  t = await startTestServer();
  admin = t.clients(t.adminToken);
  service = t.clients(await t.createKey("service"));
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "Seat credits", scale: 0 }, requestId: randomUUID() });
  await admin.admin.createFeature({ feature: { featureKey: "seat_chat", displayName: "Chat", creditTypeId, burnRate: 3n }, requestId: randomUUID() });
});

afterAll(async () => {
  expect(await invariantViolations(t.database.pool)).toEqual([]);
  await t?.close();
});

describe("spending from the pool", () => {
  it("a member's burn reduces its owner's balance, and the owner's ledger names the member", async () => {
    const parent = await customer(1_000n);
    const child = await customer(50n);
    const attached = await attach(parent, child);
    expect([attached.member?.parentCustomerId, attached.member?.memberCustomerId]).toEqual([parent, child]);

    const burned = await burn(child, 120n);
    expect(burned.entries.map((entry) => [entry.customerId, entry.memberCustomerId, entry.amount])).toEqual([[parent, child, 120n]]);
    expect(await available(parent)).toBe(880n);
    // The member's own credits wait, unused, until it is detached.
    expect(await available(child)).toBe(50n);

    await burn(parent, 30n);
    const ofChild = await service.ledger.listLedgerEntries({ customerId: parent, kinds: [EntryKind.BURN], memberCustomerId: child });
    expect(ofChild.entries.map((entry) => [entry.amount, entry.memberCustomerId])).toEqual([[120n, child]]);
    const all = await service.ledger.listLedgerEntries({ customerId: parent, kinds: [EntryKind.BURN] });
    expect(all.entries.map((entry) => [entry.amount, entry.memberCustomerId])).toEqual([[30n, ""], [120n, child]]);
    expect(await usedBy(parent, child)).toBe(120n);

    const summary = await service.ledger.getUsageSummary({
      customerId: parent, startTime: timestampFromMs(Date.now() - 86_400_000), granularity: UsageGranularity.DAY, byMember: true,
    });
    const byMember = new Map<string, bigint>();
    for (const bucket of summary.buckets) byMember.set(bucket.memberCustomerId, (byMember.get(bucket.memberCustomerId) ?? 0n) + bucket.credits);
    expect(Object.fromEntries(byMember)).toEqual({ "": 30n, [child]: 120n });
  });

  it("a burn past the member's limit is refused with CHILD_LIMIT_EXCEEDED and changes nothing; Check says so", async () => {
    const parent = await customer(1_000n);
    const child = await customer();
    await attach(parent, child);
    const limited = await setLimit(child, 100n, PoolPeriod.DAY);
    expect(limited.member?.limits).toEqual([expect.objectContaining({ creditTypeId, limit: 100n, period: PoolPeriod.DAY })]);

    await burn(child, 60n);
    const error = await errorOf(burn(child, 41n));
    expect([Code[error.code], errorInfoOf(error)?.reason, errorInfoOf(error)?.metadata]).toEqual([
      "FailedPrecondition",
      "CHILD_LIMIT_EXCEEDED",
      { customer_id: child, credit_type_id: creditTypeId, limit: "100", used: "60", required: "41" },
    ]);
    expect(await available(parent)).toBe(940n);
    expect(await usedBy(parent, child)).toBe(60n);

    const check = await service.ledger.check({ customerId: child, featureKey: "seat_chat", quantity: 14n });
    expect([check.allowed, check.reason, check.poolCustomerId, check.memberLimited, check.memberLimitRemaining, check.balance?.available]).toEqual([
      false, CheckReason.CHILD_LIMIT_EXCEEDED, parent, true, 40n, 940n,
    ]);
    const fits = await service.ledger.check({ customerId: child, featureKey: "seat_chat", quantity: 13n });
    expect([fits.allowed, fits.reason]).toEqual([true, CheckReason.SUFFICIENT_CREDITS]);

    await burn(child, 40n);
    await admin.pools.setPoolMemberLimit({ memberCustomerId: child, creditTypeId, unlimited: true, requestId: randomUUID() });
    await burn(child, 500n);
    expect(await available(parent)).toBe(400n);
  });

  it("100 concurrent burns by two siblings never take either past its limit, nor the pool past its credits", async () => {
    const parent = await customer(400n);
    const [a, b] = [await customer(), await customer()];
    await attach(parent, a);
    await attach(parent, b);
    await setLimit(a, 300n);
    await setLimit(b, 150n);
    const outcomes = await Promise.all(
      Array.from({ length: 100 }, (_, i) => {
        const member = i % 2 === 0 ? a : b;
        return burn(member, 10n).then(
          () => ({ member, reason: "ok" }),
          (error: unknown) => ({ member, reason: errorInfoOf(error)?.reason ?? String(error) }),
        );
      }),
    );
    const accepted = (member: string) => BigInt(outcomes.filter((o) => o.member === member && o.reason === "ok").length) * 10n;
    expect(outcomes.every((o) => ["ok", "CHILD_LIMIT_EXCEEDED", "INSUFFICIENT_CREDITS"].includes(o.reason))).toBe(true);
    expect(accepted(a)).toBeLessThanOrEqual(300n);
    expect(accepted(b)).toBeLessThanOrEqual(150n);
    // 500 asked of each, 450 allowed by the limits: the pool of 400 is spent, and never overspent.
    expect(accepted(a) + accepted(b)).toBe(400n);
    expect(await available(parent)).toBe(0n);
    expect([await usedBy(parent, a), await usedBy(parent, b)]).toEqual([accepted(a), accepted(b)]);
  });

  it("detaching stops pooling: the customer spends its own credits again, and its pooled burns stay in the owner's ledger", async () => {
    const parent = await customer(1_000n);
    const child = await customer(200n);
    await attach(parent, child);
    await burn(child, 100n);
    const detached = await admin.pools.detachPoolMember({ memberCustomerId: child, requestId: randomUUID() });
    expect(detached.parentCustomerId).toBe(parent);

    const own = await burn(child, 150n);
    expect(own.entries.map((entry) => [entry.customerId, entry.memberCustomerId])).toEqual([[child, ""]]);
    expect([await available(parent), await available(child)]).toEqual([900n, 50n]);
    expect((await admin.pools.listPoolMembers({ customerId: parent })).members).toEqual([]);
    const pooled = await service.ledger.listLedgerEntries({ customerId: parent, memberCustomerId: child });
    expect(pooled.entries.map((entry) => entry.amount)).toEqual([100n]);
  });

  it("burns racing a detach each land once, on the pool or on the customer's own balance, and the pool's counter counts exactly the pooled ones", async () => {
    const parent = await customer(1_000n);
    const child = await customer(1_000n);
    await attach(parent, child);
    const burns = Array.from({ length: 40 }, () => burn(child, 5n));
    const detached = admin.pools.detachPoolMember({ memberCustomerId: child, requestId: randomUUID() });
    const entries = (await Promise.all(burns)).flatMap((burned) => burned.entries);
    await detached;
    const pooled = entries.filter((entry) => entry.customerId === parent);
    const own = entries.filter((entry) => entry.customerId === child);
    expect(pooled.every((entry) => entry.memberCustomerId === child) && own.every((entry) => entry.memberCustomerId === "")).toBe(true);
    expect(pooled.length + own.length).toBe(40);
    expect([await available(parent), await available(child)]).toEqual([1_000n - 5n * BigInt(pooled.length), 1_000n - 5n * BigInt(own.length)]);
    const counter = await t.database.pool.query("select used::text from pool_usage where parent_customer_id = $1 and member_customer_id = $2", [parent, child]);
    expect(counter.rows.map((row) => BigInt(row.used))).toEqual(pooled.length === 0 ? [] : [5n * BigInt(pooled.length)]);
  });

  it("a member's usage events burn the pool, each entry linked to its event and member; past the limit they are flagged, not refused", async () => {
    const parent = await customer(1_000n);
    const child = await customer();
    await attach(parent, child);
    await setLimit(child, 10n);
    const events = [
      { eventId: randomUUID(), customerId: child, featureKey: "seat_chat", quantity: 3n },
      { eventId: randomUUID(), customerId: child, featureKey: "seat_chat", quantity: 1n },
      { eventId: randomUUID(), customerId: parent, featureKey: "seat_chat", quantity: 1n },
    ];
    const results = (await service.ledger.reportUsage({ events })).results;
    expect(results.map((r) => [r.outcome, r.credits, r.overLimit])).toEqual([
      [UsageOutcome.BURNED, 9n, false],
      [UsageOutcome.BURNED, 3n, true],
      [UsageOutcome.BURNED, 3n, false],
    ]);
    expect(await available(parent)).toBe(985n);
    const entries = await service.ledger.listLedgerEntries({ customerId: parent, kinds: [EntryKind.BURN] });
    // The parent's own event and its member's may land in different groups, in either order: compare them sorted.
    const rows = entries.entries.map((entry) => [entry.amount, entry.memberCustomerId, entry.usageId !== ""] as const);
    expect([...rows].sort((a, b) => Number(a[0] - b[0]) || a[1].localeCompare(b[1]))).toEqual([
      [3n, "", true],
      [3n, child, true],
      [9n, child, true],
    ]);
    expect(await usedBy(parent, child)).toBe(12n);
    // A duplicate changes nothing.
    const again = (await service.ledger.reportUsage({ events: [events[0]] })).results;
    expect(again.map((r) => r.outcome)).toEqual([UsageOutcome.DUPLICATE]);
    expect(await available(parent)).toBe(985n);
  });

  it("a member's hold counts against its limit until committed or released", async () => {
    const parent = await customer(1_000n);
    const child = await customer();
    await attach(parent, child);
    await setLimit(child, 100n);
    const reserve = (amount: bigint) => service.ledger.reserve({ customerId: child, cost: { case: "credits", value: { creditTypeId, amount } }, requestId: randomUUID() });
    const first = (await reserve(80n)).reservation!;
    expect(await refusal(reserve(30n))).toEqual({ code: "FailedPrecondition", reason: "CHILD_LIMIT_EXCEEDED" });
    expect(await usedBy(parent, child)).toBe(80n);
    await service.ledger.commit({ reservationId: first.reservationId, amount: 50n, requestId: randomUUID() });
    expect(await usedBy(parent, child)).toBe(50n);
    const second = (await reserve(40n)).reservation!;
    await service.ledger.release({ reservationId: second.reservationId, requestId: randomUUID() });
    expect(await usedBy(parent, child)).toBe(50n);
    expect(await available(parent)).toBe(950n);
    const entries = await service.ledger.listLedgerEntries({ customerId: parent, memberCustomerId: child });
    expect(entries.entries.every((entry) => entry.memberCustomerId === child)).toBe(true);
    expect(entries.entries.map((entry) => entry.kind)).toContain(EntryKind.BURN);
  });
});

describe("two replicas", () => {
  it("a membership changed through one replica is what the other's next burn spends from", async () => {
    const replica = await t.startReplica();
    const token = await t.createKey("service");
    const other = createClient(LedgerService, createConnectTransport({ baseUrl: replica.httpUrl, httpVersion: "1.1", interceptors: [bearer(token)] }));
    const otherBurn = (customerId: string, amount: bigint) => other.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount } }, requestId: randomUUID() });
    const parent = await customer(1_000n);
    const child = await customer(100n);
    // The other replica learns that child spends its own credits, then that it spends the pool's.
    await otherBurn(child, 10n);
    await attach(parent, child);
    expect((await otherBurn(child, 20n)).entries.map((entry) => [entry.customerId, entry.memberCustomerId])).toEqual([[parent, child]]);
    await admin.pools.detachPoolMember({ memberCustomerId: child, requestId: randomUUID() });
    expect((await otherBurn(child, 30n)).entries.map((entry) => [entry.customerId, entry.memberCustomerId])).toEqual([[child, ""]]);
    expect([await available(parent), await available(child)]).toEqual([980n, 60n]);
  });
});

describe("membership", () => {
  it("an attach replayed with its request id answers the first time and is audited once", async () => {
    const parent = await customer();
    const child = await customer();
    const requestId = randomUUID();
    const first = await admin.pools.attachPoolMember({ parentCustomerId: parent, memberCustomerId: child, requestId });
    const before = await poolTables();
    const again = await admin.pools.attachPoolMember({ parentCustomerId: parent, memberCustomerId: child, requestId });
    expect(again.member).toEqual(first.member);
    expect(await poolTables()).toEqual(before);
    const audits = await t.database.pool.query("select action, details from audit_log where target = $1 and action like '%pool%'", [`customer:${child}`]);
    expect(audits.rows).toEqual([{ action: "attach_pool_member", details: { old: null, new: { parent_customer_id: parent } } }]);
    const mine = await admin.pools.listPoolMembers({ customerId: child });
    expect([mine.parentCustomerId, mine.members.length]).toEqual([parent, 0]);
  });

  it("bad input and forbidden shapes are refused with their reasons and change nothing", async () => {
    const parent = await customer();
    const child = await customer();
    const other = await customer();
    await attach(parent, child);
    const before = await poolTables();
    // Each call starts when it is awaited: one refusal at a time, none left unhandled.
    const cases: [() => Promise<unknown>, string, string][] = [
      [() => attach(parent, parent), "InvalidArgument", "SELF_POOL"],
      [() => attach(parent, "nobody-here"), "NotFound", "CUSTOMER_NOT_FOUND"],
      [() => attach("nobody-here", other), "NotFound", "CUSTOMER_NOT_FOUND"],
      [() => attach(other, child), "FailedPrecondition", "ALREADY_POOLED"],
      [() => attach(child, other), "FailedPrecondition", "POOL_NESTING"],
      [() => attach(other, parent), "FailedPrecondition", "POOL_NESTING"],
      [() => setLimit(child, -1n), "InvalidArgument", "NEGATIVE_LIMIT"],
      [() => setLimit(child, 10n, PoolPeriod.UNSPECIFIED), "InvalidArgument", "INVALID_POOL_PERIOD"],
      [() => setLimit(other, 10n), "NotFound", "POOL_MEMBER_NOT_FOUND"],
      [() => admin.pools.setPoolMemberLimit({ memberCustomerId: child, creditTypeId: "no_such_credits", limit: 1n, period: PoolPeriod.DAY, requestId: randomUUID() }), "NotFound", "CREDIT_TYPE_NOT_FOUND"],
      [() => admin.pools.detachPoolMember({ memberCustomerId: other, requestId: randomUUID() }), "NotFound", "POOL_MEMBER_NOT_FOUND"],
      [() => admin.pools.listPoolMembers({ customerId: "nobody-here" }), "NotFound", "CUSTOMER_NOT_FOUND"],
    ];
    for (const [call, code, reason] of cases) expect([reason, await refusal(call())]).toEqual([reason, { code, reason }]);
    expect(await poolTables()).toEqual(before);
  });

  it("support may list a pool but not change it", async () => {
    const support = t.clients(await t.createKey("support", 1_000n));
    const parent = await customer();
    const child = await customer();
    expect(await refusal(support.pools.attachPoolMember({ parentCustomerId: parent, memberCustomerId: child, requestId: randomUUID() }))).toEqual({
      code: "PermissionDenied",
      reason: expect.any(String),
    });
    expect((await support.pools.listPoolMembers({ customerId: parent })).members).toEqual([]);
  });
});
