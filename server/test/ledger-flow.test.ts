// The hot path end to end over real HTTP on real PostgreSQL: grant, reserve, commit,
// release, burn, balance and entries, over both the Connect and the gRPC protocol.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EntryKind, GrantSource, ReservationStatus } from "@burndown/sdk";
import { startTestServer, type TestServer } from "../../test-support/server.js";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
  await t.clients(t.adminToken).admin.createCreditType({ creditType: { creditTypeId: "api_credits", displayName: "API", scale: 0 }, requestId: randomUUID() });
});
afterAll(async () => t.close());

describe.each(["connect", "grpc"] as const)("over %s", (protocol) => {
  it("a grant, a reserve, a partial commit and a burn leave the balance the entries add up to", async () => {
    const { ledger } = t.clients(t.adminToken, protocol);
    const customerId = `flow-${protocol}`;
    const granted = await ledger.grant({ customerId, creditTypeId: "api_credits", amount: 1000n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
    expect(granted.balance?.available).toBe(1000n);

    const reserved = await ledger.reserve({ customerId, cost: { case: "credits", value: { creditTypeId: "api_credits", amount: 300n } }, requestId: randomUUID() });
    expect(reserved.reservation?.status).toBe(ReservationStatus.HELD);
    expect(reserved.balance).toMatchObject({ available: 700n, held: 300n });

    const committed = await ledger.commit({ reservationId: reserved.reservation!.reservationId, amount: 120n, requestId: randomUUID() });
    expect(committed.reservation).toMatchObject({ status: ReservationStatus.COMMITTED, committedAmount: 120n });
    expect(committed.balance).toMatchObject({ available: 880n, held: 0n, burned: 120n });

    const second = await ledger.reserve({ customerId, cost: { case: "credits", value: { creditTypeId: "api_credits", amount: 50n } }, requestId: randomUUID() });
    const released = await ledger.release({ reservationId: second.reservation!.reservationId, requestId: randomUUID() });
    expect(released.reservation?.status).toBe(ReservationStatus.RELEASED);
    expect(released.balance?.available).toBe(880n);

    const burned = await ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId: "api_credits", amount: 80n } }, requestId: randomUUID() });
    expect(burned.entries.map((entry) => [entry.kind, entry.amount])).toEqual([[EntryKind.BURN, 80n]]);

    const balance = await ledger.getBalance({ customerId });
    expect(balance.balances).toHaveLength(1);
    expect(balance.balances[0]).toMatchObject({ available: 800n, granted: 1000n, burned: 200n, held: 0n, expired: 0n });
    expect(balance.balances[0].lots.map((lot) => [lot.amount, lot.remaining])).toEqual([[1000n, 800n]]);

    const entries = await ledger.listLedgerEntries({ customerId });
    const sum = (kind: EntryKind) => entries.entries.filter((entry) => entry.kind === kind).reduce((total, entry) => total + entry.amount, 0n);
    expect(sum(EntryKind.GRANT) - sum(EntryKind.BURN) - (sum(EntryKind.HOLD) - sum(EntryKind.RELEASE))).toBe(800n);
  });
});

describe("features", () => {
  it("a reserve and a burn by feature usage are priced at the feature's burn rate", async () => {
    const { ledger, admin } = t.clients(t.adminToken);
    await admin.createFeature({ feature: { featureKey: "image_generation", displayName: "Images", creditTypeId: "api_credits", burnRate: 7n }, requestId: randomUUID() });
    const customerId = "feature-user";
    await ledger.grant({ customerId, creditTypeId: "api_credits", amount: 100n, source: GrantSource.PLAN, reasonCode: "plan", requestId: randomUUID() });
    const reserved = await ledger.reserve({ customerId, cost: { case: "usage", value: { featureKey: "image_generation", quantity: 3n } }, requestId: randomUUID() });
    expect(reserved.reservation).toMatchObject({ amount: 21n, featureKey: "image_generation", creditTypeId: "api_credits" });
    const burned = await ledger.burn({ customerId, cost: { case: "usage", value: { featureKey: "image_generation", quantity: 2n } }, requestId: randomUUID() });
    expect(burned).toMatchObject({ amount: 14n, creditTypeId: "api_credits" });
    expect(burned.balance).toMatchObject({ available: 65n, held: 21n, burned: 14n });
  });
});

describe("after the flows", () => {
  it("every ledger invariant holds in the database", async () => {
    const { invariantViolations } = await import("../../test-support/invariants.js");
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });
});
