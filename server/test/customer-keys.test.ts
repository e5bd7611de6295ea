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
