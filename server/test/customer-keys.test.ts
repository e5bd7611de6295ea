// Customer-scoped API keys, for the vendor's own customers: a key bound to one customer
// reads that customer's balance, entries and checks, and nothing else; another customer,
// existing or not, is the same NotFound, so existence does not leak.
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { errorInfoOf, GrantSource, Role } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorOf } from "../../test-support/snapshot.js";
import { type Clients, startTestServer, type TestServer } from "../../test-support/server.js";

const creditTypeId = "credits";
let t: TestServer;
let admin: Clients;
let mine: Clients;
let keyId: string;

beforeAll(async () => {
  t = await startTestServer();
  admin = t.clients(t.adminToken);
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "Credits", scale: 0 }, requestId: randomUUID() });
  await admin.admin.createFeature({ feature: { featureKey: "chat", displayName: "Chat", creditTypeId, burnRate: 2n }, requestId: randomUUID() });
  for (const customerId of ["alice", "bob"]) {
    await admin.ledger.grant({ customerId, creditTypeId, amount: 100n, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
  }
  const created = await admin.admin.createApiKey({ name: "alice portal", role: Role.CUSTOMER, customerId: "alice", reason: "customer portal", requestId: randomUUID() });
  keyId = created.apiKey!.keyId;
  expect(created.apiKey).toMatchObject({ role: Role.CUSTOMER, customerId: "alice" });
  mine = t.clients(created.token);
});
afterAll(() => t?.close());

describe("a customer key", () => {
  it("reads its own customer's balance, entries and checks", async () => {
    expect((await mine.ledger.getBalance({ customerId: "alice" })).balances.map((balance) => balance.available)).toEqual([100n]);
    expect((await mine.ledger.listLedgerEntries({ customerId: "alice" })).entries).toHaveLength(1);
    expect((await mine.ledger.check({ customerId: "alice", featureKey: "chat", quantity: 1n })).allowed).toBe(true);
  });

  it.each(["bob", "nobody-at-all"])("asking about %s is NotFound CUSTOMER_NOT_FOUND, the same whether it exists or not", async (customerId) => {
    for (const call of [
      () => mine.ledger.getBalance({ customerId }),
      () => mine.ledger.listLedgerEntries({ customerId }),
      () => mine.ledger.check({ customerId, featureKey: "chat", quantity: 1n }),
    ]) {
      const error = await errorOf(call());
      expect([error.code, errorInfoOf(error)?.reason, errorInfoOf(error)?.metadata]).toEqual([Code.NotFound, "CUSTOMER_NOT_FOUND", { customer_id: customerId }]);
      expect(error.rawMessage).toBe(`customer id "${customerId}" not found`);
    }
  });

  it("may change nothing, not even its own customer: PermissionDenied", async () => {
    for (const call of [
      () => mine.ledger.grant({ customerId: "alice", creditTypeId, amount: 1n, source: GrantSource.PROMOTION, reasonCode: "self", requestId: randomUUID() }),
      () => mine.ledger.burn({ customerId: "alice", cost: { case: "credits", value: { creditTypeId, amount: 1n } }, requestId: randomUUID() }),
      () => mine.ledger.reportUsage({ events: [{ eventId: randomUUID(), customerId: "alice", featureKey: "chat", quantity: 1n }] }),
      () => mine.admin.listApiKeys({}),
    ]) {
      const error = await errorOf(call());
      expect([error.code, errorInfoOf(error)?.reason]).toEqual([Code.PermissionDenied, "ROLE_NOT_ALLOWED"]);
    }
    expect((await admin.ledger.getBalance({ customerId: "alice" })).balances[0].available).toBe(100n);
  });

  it("is made only for an existing customer, and only a customer key is bound to one; its audit record names the customer", async () => {
    const cases = [
      { request: { role: Role.CUSTOMER }, code: Code.InvalidArgument, reason: "MISSING_FIELD" },
      { request: { role: Role.CUSTOMER, customerId: "ghost" }, code: Code.NotFound, reason: "CUSTOMER_NOT_FOUND" },
      { request: { role: Role.SERVICE, customerId: "alice" }, code: Code.InvalidArgument, reason: "INVALID_CUSTOMER_ID" },
    ];
    for (const { request, code, reason } of cases) {
      const error = await errorOf(admin.admin.createApiKey({ name: "x", ...request, requestId: randomUUID() }));
      expect([error.code, errorInfoOf(error)?.reason]).toEqual([code, reason]);
    }
    const record = (await admin.admin.listAuditRecords({ pageSize: 50 })).auditRecords.find((candidate) => candidate.target === `api_key:${keyId}`);
    expect(JSON.parse(record!.detailsJson).new).toMatchObject({ role: "customer", customer_id: "alice" });
    expect(record!.reason).toBe("customer portal");
  });
});

describe("a customer key buying credits", () => {
  it("opens an order for its own customer from a bundle's latest version, and reads its own orders only", async () => {
    const bundleId = `pack_${randomUUID().slice(0, 8)}`;
    const sell = (priceMinor: bigint) =>
      admin.billing.createBundle({ bundleId, displayName: "Pack", creditTypeId, credits: 100n, currency: "USD", priceMinor, requestId: randomUUID() });
    await sell(500n);
    await sell(450n); // version 2: what a customer buys now
    expect((await mine.billing.listBundles({})).bundles.find((bundle) => bundle.bundleId === bundleId)).toMatchObject({ version: 2, priceMinor: 450n });

    const order = (await mine.billing.createTopUp({ customerId: "alice", item: { case: "bundleId", value: bundleId }, requestId: randomUUID() })).topUp!;
    expect(order).toMatchObject({ customerId: "alice", bundleVersion: 2, priceMinor: 450n, credits: 100n });
    expect((await mine.billing.getTopUp({ orderId: order.orderId })).topUp?.orderId).toBe(order.orderId);
    expect((await mine.billing.listTopUps({ customerId: "alice" })).topUps.map((topUp) => topUp.orderId)).toContain(order.orderId);

    const before = (await admin.billing.listTopUps({ customerId: "alice", pageSize: 100 })).topUps.length;
    for (const [call, code, reason] of [
      [() => mine.billing.createTopUp({ customerId: "alice", item: { case: "amount", value: { creditTypeId, credits: 1_000_000n, currency: "USD", priceMinor: 1n } }, requestId: randomUUID() }), Code.PermissionDenied, "CUSTOMER_BUYS_BUNDLES_ONLY"],
      [() => mine.billing.createTopUp({ customerId: "alice", item: { case: "bundleId", value: bundleId }, bundleVersion: 1, requestId: randomUUID() }), Code.PermissionDenied, "CUSTOMER_BUYS_BUNDLES_ONLY"],
      [() => mine.billing.createTopUp({ customerId: "bob", item: { case: "bundleId", value: bundleId }, requestId: randomUUID() }), Code.NotFound, "CUSTOMER_NOT_FOUND"],
      [() => mine.billing.listTopUps({ customerId: "bob" }), Code.NotFound, "CUSTOMER_NOT_FOUND"],
    ] as const) {
      const error = await errorOf(call());
      expect([error.code, errorInfoOf(error)?.reason]).toEqual([code, reason]);
    }
    expect((await admin.billing.listTopUps({ customerId: "alice", pageSize: 100 })).topUps).toHaveLength(before);

    const bobs = (await admin.billing.createTopUp({ customerId: "bob", item: { case: "bundleId", value: bundleId }, requestId: randomUUID() })).topUp!;
    const error = await errorOf(mine.billing.getTopUp({ orderId: bobs.orderId }));
    expect([error.code, errorInfoOf(error)?.reason, error.rawMessage]).toEqual([Code.NotFound, "TOPUP_NOT_FOUND", `order id "${bobs.orderId}" not found`]);
    // A customer may not pay its own order either.
    const paying = await errorOf(mine.billing.confirmTopUp({ orderId: order.orderId, paymentReference: "pi_self", amountMinor: 450n, currency: "USD", requestId: randomUUID() }));
    expect([paying.code, errorInfoOf(paying)?.reason]).toEqual([Code.PermissionDenied, "ROLE_NOT_ALLOWED"]);
  });
});
