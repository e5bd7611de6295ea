// Voids, refunds of charges and disputes through the contract, on real PostgreSQL: a void
// takes only a lot's free credits, never twice; a refund of a Burn, a commit or a usage
// event goes back last burned first, to the lots it came from, or as a new lot when its lot
// has expired, or off the debt; the refunds of one charge never add up past what it
// burned, even when 20 run at once; a dispute goes from open to resolved with its service
// levels, notes and refund; every refusal says why and changes nothing.
import { randomUUID } from "node:crypto";
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { DisputeStatus, EntryKind, errorInfoOf, GrantSource, Role } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invariantViolations } from "../../test-support/invariants.js";
import { databaseSnapshot, errorOf } from "../../test-support/snapshot.js";
import { type Clients, FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";

const creditTypeId = "fix_credits";
const dayMs = 86_400_000;
const hourMs = 3_600_000;
const clock = new FakeClock(Date.parse("2030-05-01T00:00:00Z"));
let t: TestServer;
let admin: Clients;
let service: Clients;
let support: Clients;
let supportKeyId: string;

async function refusal(call: Promise<unknown>): Promise<[string, string | undefined]> {
  const error = await errorOf(call);
  return [Code[error.code], errorInfoOf(error)?.reason];
}

/** unchanged runs a call that must be refused and shows the database did not change. */
async function refusedUnchanged(call: () => Promise<unknown>): Promise<[string, string | undefined]> {
  const before = await databaseSnapshot(t.database.pool);
  const refused = await refusal(call());
  expect(await databaseSnapshot(t.database.pool)).toEqual(before);
  return refused;
}

async function customer(overdraft = 0n): Promise<string> {
  const customerId = `cust-${randomUUID().slice(0, 8)}`;
  await admin.admin.createCustomer({ customer: { customerId, overdraftLimits: overdraft > 0n ? [{ creditTypeId, amount: overdraft }] : [] }, requestId: randomUUID() });
  return customerId;
}

async function grant(customerId: string, amount: bigint, options: { priority?: number; expireInMs?: number; costBasisMicros?: bigint } = {}): Promise<string> {
  const res = await admin.ledger.grant({
    customerId, creditTypeId, amount, source: GrantSource.PURCHASE, reasonCode: "buy", priority: options.priority ?? 0, requestId: randomUUID(),
    expireTime: options.expireInMs === undefined ? undefined : timestampFromMs(clock.ms + options.expireInMs), costBasisMicros: options.costBasisMicros ?? 0n,
  });
  return res.lot!.grantId;
}

async function burn(customerId: string, amount: bigint, requestId = randomUUID()) {
  const res = await service.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount } }, requestId });
  return { requestId, entries: res.entries };
}

async function balanceOf(customerId: string) {
  return (await admin.ledger.getBalance({ customerId, creditTypeId })).balances[0];
}

async function lotOf(grantId: string) {
  const result = await t.database.pool.query("select remaining::text, held::text, source, reason_code, cost_basis_micros::text from grants where grant_id = $1", [grantId]);
  return result.rows[0] as { remaining: string; held: string; source: string; reason_code: string; cost_basis_micros: string };
}

const voidGrant = (clients: Clients, customerId: string, grantId: string, amount = 0n, requestId = randomUUID()) =>
  clients.corrections.voidGrant({ customerId, grantId, amount, reasonCode: "granted_by_mistake", note: "wrong customer", requestId });
const refundBurn = (clients: Clients, customerId: string, burnRequestId: string, amount = 0n, requestId = randomUUID()) =>
  clients.corrections.refundCharge({ customerId, charge: { charge: { case: "burnRequestId", value: burnRequestId } }, amount, reasonCode: "goodwill", requestId });

beforeAll(async () => {
  t = await startTestServer({ clock, disputeSla: { firstResponseMs: 2 * hourMs, resolutionMs: 2 * dayMs } });
  admin = t.clients(t.adminToken);
  service = t.clients(await t.createKey("service"));
  support = t.clients(await t.createKey("support"));
  supportKeyId = (await support.ledger.getCaller({})).keyId;
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "Fix", scale: 0 }, requestId: randomUUID() });
  await admin.admin.createFeature({ feature: { featureKey: "fix_chat", displayName: "Chat", creditTypeId, burnRate: 3n }, requestId: randomUUID() });
});
afterAll(async () => {
  if (t) expect(await invariantViolations(t.database.pool)).toEqual([]);
  await t?.close();
});

describe("VoidGrant", () => {
  it("voids a whole unused lot: granted falls, the lot is empty, one void entry names the lot, the reason and the actor, audited", async () => {
    const customerId = await customer();
    const grantId = await grant(customerId, 100n);
    const res = await voidGrant(support, customerId, grantId);
    expect(res).toMatchObject({ grantId, voided: 100n, held: 0n, remaining: 0n });
    expect(res.entries.map((entry) => [entry.kind, entry.amount, entry.grantId, entry.reasonCode, entry.actor])).toEqual([[EntryKind.VOID, 100n, grantId, "granted_by_mistake", supportKeyId]]);
    expect(await balanceOf(customerId)).toMatchObject({ granted: 0n, available: 0n });
    expect((await lotOf(grantId)).remaining).toBe("0");
    const audit = await t.database.pool.query("select action, actor from audit_log where action = 'void_grant' and details->'new'->>'grant_id' = $1", [grantId]);
    expect(audit.rows).toEqual([{ action: "void_grant", actor: supportKeyId }]);
    const listed = await admin.ledger.listLedgerEntries({ customerId, creditTypeId, kinds: [EntryKind.VOID] });
    expect(listed.entries.map((entry) => [entry.kind, entry.amount])).toEqual([[EntryKind.VOID, 100n]]);
  });

  it("voids part of a lot, and refuses more than what is unused with VOID_EXCEEDS_UNUSED, changing nothing", async () => {
    const customerId = await customer();
    const grantId = await grant(customerId, 100n);
    await burn(customerId, 30n);
    expect((await voidGrant(admin, customerId, grantId, 20n)).voided).toBe(20n);
    expect(await balanceOf(customerId)).toMatchObject({ granted: 80n, burned: 30n, available: 50n });
    expect(await refusedUnchanged(() => voidGrant(admin, customerId, grantId, 51n))).toEqual(["FailedPrecondition", "VOID_EXCEEDS_UNUSED"]);
  });

  it("voids the free part of a lot with a reservation on it now and leaves the held part pending: committed, it burns; given back, it is voided", async () => {
    const customerId = await customer();
    const grantId = await grant(customerId, 100n);
    const reserve = async (amount: bigint) => (await service.ledger.reserve({ customerId, cost: { case: "credits", value: { creditTypeId, amount } }, requestId: randomUUID() })).reservation!;
    const committed = await reserve(30n);
    const released = await reserve(20n);
    expect(await voidGrant(admin, customerId, grantId)).toMatchObject({ voided: 50n, held: 50n, pending: 50n, remaining: 50n });
    await service.ledger.commit({ reservationId: committed.reservationId, amount: 30n, requestId: randomUUID() });
    await service.ledger.release({ reservationId: released.reservationId, requestId: randomUUID() });
    expect(await balanceOf(customerId)).toMatchObject({ granted: 30n, burned: 30n, held: 0n, available: 0n });
    const voids = await admin.ledger.listLedgerEntries({ customerId, creditTypeId, kinds: [EntryKind.VOID] });
    expect(voids.entries.map((entry) => [entry.amount, entry.reasonCode]).sort()).toEqual([[20n, "lot_voided"], [50n, "granted_by_mistake"]]);
  });

  it("never takes more than the lot had: a second void finds NOTHING_TO_VOID, and a replay answers the first void without a second entry", async () => {
    const customerId = await customer();
    const grantId = await grant(customerId, 40n);
    const requestId = randomUUID();
    const first = await voidGrant(admin, customerId, grantId, 0n, requestId);
    const replay = await voidGrant(admin, customerId, grantId, 0n, requestId);
    expect(replay).toEqual(first);
    expect(await refusedUnchanged(() => voidGrant(admin, customerId, grantId))).toEqual(["FailedPrecondition", "NOTHING_TO_VOID"]);
    const voids = await t.database.pool.query("select count(*)::int as n from ledger_entries where grant_id = $1 and kind = 'void'", [grantId]);
    expect(voids.rows[0].n).toBe(1);
  });

  it("has nothing to void in a lot that has expired, and does not know another customer's lot", async () => {
    const customerId = await customer();
    const grantId = await grant(customerId, 50n, { expireInMs: dayMs });
    clock.advance(dayMs + 1);
    expect(await refusal(voidGrant(admin, customerId, grantId))).toEqual(["FailedPrecondition", "NOTHING_TO_VOID"]);
    const stranger = await customer();
    expect(await refusedUnchanged(() => voidGrant(admin, stranger, grantId))).toEqual(["NotFound", "GRANT_NOT_FOUND"]);
  });

  it("refuses to void a lot bought with a top-up (LOT_OF_TOP_UP): its credits go back with its money, so a refund cannot take them twice", async () => {
    const customerId = await customer();
    const bundleId = `b-${randomUUID().slice(0, 8)}`;
    await admin.billing.createBundle({ requestId: randomUUID(), bundleId, displayName: "Pack", creditTypeId, credits: 100n, currency: "USD", priceMinor: 1000n });
    const order = (await service.billing.createTopUp({ requestId: randomUUID(), customerId, item: { case: "bundleId", value: bundleId } })).topUp!;
    const paid = (await service.billing.confirmTopUp({ requestId: randomUUID(), orderId: order.orderId, paymentReference: `pi_${randomUUID()}`, amountMinor: order.priceMinor, currency: "USD" })).topUp!;
    expect(await refusedUnchanged(() => voidGrant(admin, customerId, paid.grantId))).toEqual(["FailedPrecondition", "LOT_OF_TOP_UP"]);
    // Refunded in full, the purchase takes back exactly its credits, none as debt.
    await burn(customerId, 30n);
    const refunded = (await admin.billing.refundTopUp({ orderId: order.orderId, amountMinor: order.priceMinor, currency: "USD", reasonCode: "refund", paymentReference: `re_${randomUUID()}`, requestId: randomUUID() })).topUp!;
    expect([refunded.clawedBackCredits, refunded.debtCredits]).toEqual([70n, 30n]);
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });
});

describe("RefundCharge", () => {
  it("refunds part of a burn, last burned first, then the rest, back to the lots it came from; then NOTHING_TO_REFUND", async () => {
    const customerId = await customer();
    const first = await grant(customerId, 30n, { priority: 0 });
    const second = await grant(customerId, 100n, { priority: 1 });
    const { requestId } = await burn(customerId, 50n);
    const part = await refundBurn(support, customerId, requestId, 10n);
    expect(part.refund).toMatchObject({ amount: 10n, charged: 50n, refundedTotal: 10n, reasonCode: "goodwill", actor: supportKeyId });
    expect(part.entries.map((entry) => [entry.kind, entry.grantId, entry.amount])).toEqual([[EntryKind.REFUND, second, 10n]]);
    const rest = await refundBurn(admin, customerId, requestId);
    expect(rest.refund).toMatchObject({ amount: 40n, refundedTotal: 50n });
    expect(rest.entries.map((entry) => [entry.grantId, entry.amount]).sort()).toEqual([[first, 30n], [second, 10n]].sort());
    expect(await balanceOf(customerId)).toMatchObject({ burned: 0n, available: 130n });
    const audits = await t.database.pool.query("select actor, details->'new'->>'amount' as amount from audit_log where action = 'refund_charge' and details->>'charge_ref' = $1 order by audit_id", [requestId]);
    expect(audits.rows).toEqual([{ actor: supportKeyId, amount: "10" }, { actor: (await admin.ledger.getCaller({})).keyId, amount: "40" }]);
    expect(await refusedUnchanged(() => refundBurn(admin, customerId, requestId))).toEqual(["FailedPrecondition", "NOTHING_TO_REFUND"]);
  });

  it("refunds a committed reservation by its id, and refuses more than is left with REFUND_EXCEEDS_CHARGE", async () => {
    const customerId = await customer();
    await grant(customerId, 100n);
    const reservation = (await service.ledger.reserve({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 40n } }, requestId: randomUUID() })).reservation!;
    await service.ledger.commit({ reservationId: reservation.reservationId, amount: 25n, requestId: randomUUID() });
    const charge = { charge: { case: "reservationId" as const, value: reservation.reservationId } };
    expect(await refusedUnchanged(() => admin.corrections.refundCharge({ customerId, charge, amount: 26n, reasonCode: "goodwill", requestId: randomUUID() }))).toEqual([
      "FailedPrecondition", "REFUND_EXCEEDS_CHARGE",
    ]);
    const res = await admin.corrections.refundCharge({ customerId, charge, amount: 0n, reasonCode: "goodwill", requestId: randomUUID() });
    expect(res.refund).toMatchObject({ amount: 25n, charged: 25n, chargeRef: reservation.reservationId });
    expect(await balanceOf(customerId)).toMatchObject({ burned: 0n, available: 100n });
  });

  it("refunds a usage event by one of its entries in part; CorrectUsageEvent then refuses with ALREADY_REFUNDED, and a corrected event has nothing to refund", async () => {
    const customerId = await customer();
    await grant(customerId, 100n);
    const report = async () => {
      const eventId = randomUUID();
      await service.ledger.reportUsage({ events: [{ eventId, customerId, featureKey: "fix_chat", quantity: 4n }] });
      const entries = (await admin.ledger.listLedgerEntries({ customerId, creditTypeId, kinds: [EntryKind.BURN] })).entries;
      return { eventId, entry: entries.find((entry) => entry.usageId !== "" && !entry.reasonCode.startsWith("x"))! };
    };
    const { eventId, entry } = await report();
    const res = await admin.corrections.refundCharge({ customerId, charge: { charge: { case: "entryId", value: entry.entryId } }, amount: 5n, reasonCode: "bad_rating", requestId: randomUUID() });
    expect(res.refund).toMatchObject({ amount: 5n, charged: 12n, chargeRef: entry.usageId });
    expect(res.entries.every((refund) => refund.usageId === entry.usageId)).toBe(true);
    expect(await refusal(admin.admin.correctUsageEvent({ eventId, reasonCode: "dup", requestId: randomUUID() }))).toEqual(["FailedPrecondition", "ALREADY_REFUNDED"]);
    const other = await report();
    await admin.admin.correctUsageEvent({ eventId: other.eventId, reasonCode: "dup", requestId: randomUUID() });
    const charge = { charge: { case: "usageId" as const, value: other.entry.usageId } };
    expect(await refusal(admin.corrections.refundCharge({ customerId, charge, reasonCode: "dup", requestId: randomUUID() }))).toEqual(["FailedPrecondition", "NOTHING_TO_REFUND"]);
  });

  it("never gives back more than a burn took when 20 partial refunds of it run at once", async () => {
    const customerId = await customer();
    await grant(customerId, 1_000n);
    const { requestId } = await burn(customerId, 100n);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => refundBurn(admin, customerId, requestId, 7n)));
    const accepted = results.filter((result) => result.status === "fulfilled");
    expect(accepted).toHaveLength(14);
    for (const result of results) if (result.status === "rejected") expect(errorInfoOf(result.reason)?.reason).toBe("REFUND_EXCEEDS_CHARGE");
    const totals = accepted.map((result) => (result as PromiseFulfilledResult<Awaited<ReturnType<typeof refundBurn>>>).value.refund!.refundedTotal).sort((a, b) => Number(a - b));
    expect(totals).toEqual(Array.from({ length: 14 }, (_, index) => 7n * BigInt(index + 1)));
    expect(await balanceOf(customerId)).toMatchObject({ burned: 2n, available: 998n });
  });

  it("gives back the part of a lot that has expired since as a new lot, source adjustment, reason refund, at the lot's cost basis", async () => {
    const customerId = await customer();
    const expiring = await grant(customerId, 50n, { expireInMs: dayMs, costBasisMicros: 2_500n });
    const { requestId } = await burn(customerId, 40n);
    clock.advance(dayMs + 1);
    const res = await refundBurn(admin, customerId, requestId);
    expect(res.entries.map((entry) => [entry.kind, entry.amount, entry.reasonCode])).toEqual([[EntryKind.GRANT, 40n, "refund"]]);
    const newLot = await lotOf(res.entries[0].grantId);
    expect(newLot).toMatchObject({ remaining: "40", source: "adjustment", reason_code: "refund", cost_basis_micros: "2500" });
    expect((await lotOf(expiring)).remaining).toBe("0");
    expect(await balanceOf(customerId)).toMatchObject({ granted: 90n, burned: 40n, expired: 10n, available: 40n });
  });

  it("takes a refund of an overdraft burn off the debt, and gives back debt that a later grant repaid as a new lot", async () => {
    const customerId = await customer(100n);
    const { requestId } = await burn(customerId, 60n);
    const offDebt = await refundBurn(admin, customerId, requestId, 20n);
    expect(offDebt.entries.map((entry) => [entry.kind, entry.grantId, entry.amount])).toEqual([[EntryKind.REFUND, "", 20n]]);
    expect(await balanceOf(customerId)).toMatchObject({ burned: 40n, available: -40n });
    await grant(customerId, 100n);
    const rest = await refundBurn(admin, customerId, requestId);
    expect(rest.entries.map((entry) => [entry.kind, entry.amount, entry.reasonCode])).toEqual([[EntryKind.GRANT, 40n, "refund"]]);
    expect(await balanceOf(customerId)).toMatchObject({ available: 100n });
  });

  it("answers a replay with the first refund, and does not know a charge the customer never made", async () => {
    const customerId = await customer();
    await grant(customerId, 100n);
    const { requestId } = await burn(customerId, 10n);
    const key = randomUUID();
    const first = await refundBurn(admin, customerId, requestId, 3n, key);
    expect(await refundBurn(admin, customerId, requestId, 3n, key)).toEqual(first);
    expect(await balanceOf(customerId)).toMatchObject({ burned: 7n });
    const stranger = await customer();
    expect(await refusedUnchanged(() => refundBurn(admin, stranger, requestId))).toEqual(["NotFound", "CHARGE_NOT_FOUND"]);
  });
});

describe("disputes", () => {
  async function customerKey(customerId: string): Promise<Clients> {
    const created = await admin.admin.createApiKey({ name: `${customerId} portal`, role: Role.CUSTOMER, customerId, requestId: randomUUID() });
    return t.clients(created.token);
  }

  it("goes from open to investigating to resolved with a refund, with its service levels, notes and the refund linked", async () => {
    const customerId = await customer();
    await grant(customerId, 100n);
    const { entries } = await burn(customerId, 30n);
    const own = await customerKey(customerId);
    const opened = (await own.corrections.openDispute({ customerId, entryIds: [entries[0].entryId], description: "I never used this", requestId: randomUUID() })).dispute!;
    expect(opened).toMatchObject({ customerId, status: DisputeStatus.OPEN, entryIds: [entries[0].entryId], owner: "", overdue: false });
    expect(timestampDate(opened.firstResponseDueTime!).getTime() - timestampDate(opened.openTime!).getTime()).toBe(2 * hourMs);
    expect(timestampDate(opened.resolutionDueTime!).getTime() - timestampDate(opened.openTime!).getTime()).toBe(2 * dayMs);
    expect((await own.corrections.listDisputes({})).disputes.map((dispute) => dispute.disputeId)).toEqual([opened.disputeId]);
    clock.advance(3 * hourMs);
    const overdue = (await support.corrections.listDisputes({ overdueOnly: true, customerId })).disputes;
    expect(overdue.map((dispute) => [dispute.disputeId, dispute.overdue])).toEqual([[opened.disputeId, true]]);
    const assigned = (await support.corrections.assignDispute({ disputeId: opened.disputeId, requestId: randomUUID() })).dispute!;
    expect(assigned).toMatchObject({ status: DisputeStatus.INVESTIGATING, owner: supportKeyId, overdue: false });
    expect(timestampDate(assigned.firstResponseTime!).getTime()).toBe(clock.ms);
    await support.corrections.addDisputeNote({ disputeId: opened.disputeId, text: "checked the logs: a retry storm", requestId: randomUUID() });
    const resolved = (
      await support.corrections.resolveDispute({
        disputeId: opened.disputeId,
        resolution: { case: "refund", value: { entryId: entries[0].entryId, amount: 0n, reasonCode: "dispute_upheld" } },
        requestId: randomUUID(),
      })
    ).dispute!;
    expect(resolved).toMatchObject({ status: DisputeStatus.RESOLVED_REFUNDED, resolvedBy: supportKeyId });
    expect(resolved.refunds.map((refund) => [refund.amount, refund.disputeId])).toEqual([[30n, opened.disputeId]]);
    expect(resolved.notes.map((note) => [note.author, note.text])).toEqual([[supportKeyId, "checked the logs: a retry storm"]]);
    expect(await balanceOf(customerId)).toMatchObject({ burned: 0n, available: 100n });
    expect((await own.corrections.getDispute({ disputeId: opened.disputeId })).dispute!.status).toBe(DisputeStatus.RESOLVED_REFUNDED);
    expect(await refusedUnchanged(() => support.corrections.addDisputeNote({ disputeId: opened.disputeId, text: "late", requestId: randomUUID() }))).toEqual([
      "FailedPrecondition", "DISPUTE_CLOSED",
    ]);
    const audits = await t.database.pool.query("select action from audit_log where target = $1 order by audit_id", [`dispute:${opened.disputeId}`]);
    expect(audits.rows.map((row) => row.action)).toEqual(["open_dispute", "assign_dispute", "add_dispute_note", "resolve_dispute"]);
  });

  it("is rejected with a reason; a refund of an entry it does not name is INVALID_RESOLUTION", async () => {
    const customerId = await customer();
    await grant(customerId, 100n);
    const { entries } = await burn(customerId, 10n);
    const other = await burn(customerId, 5n);
    const dispute = (await admin.corrections.openDispute({ customerId, entryIds: [entries[0].entryId], description: "too much", requestId: randomUUID() })).dispute!;
    const refundOther = { case: "refund" as const, value: { entryId: other.entries[0].entryId, amount: 0n, reasonCode: "x" } };
    expect(await refusedUnchanged(() => support.corrections.resolveDispute({ disputeId: dispute.disputeId, resolution: refundOther, requestId: randomUUID() }))).toEqual([
      "InvalidArgument", "INVALID_RESOLUTION",
    ]);
    const rejected = (await support.corrections.resolveDispute({ disputeId: dispute.disputeId, resolution: { case: "reject", value: { reason: "usage is in the logs" } }, requestId: randomUUID() })).dispute!;
    expect(rejected).toMatchObject({ status: DisputeStatus.REJECTED, rejectReason: "usage is in the logs" });
    expect(await balanceOf(customerId)).toMatchObject({ burned: 15n });
  });

  it("lets a customer key open one on its own ledger lines only, and see only its own", async () => {
    const mine = await customer();
    const theirs = await customer();
    await grant(mine, 10n);
    await grant(theirs, 10n);
    const own = await customerKey(mine);
    const theirEntry = (await burn(theirs, 1n)).entries[0].entryId;
    expect(await refusedUnchanged(() => own.corrections.openDispute({ customerId: mine, entryIds: [theirEntry], description: "x", requestId: randomUUID() }))).toEqual([
      "NotFound", "ENTRY_NOT_FOUND",
    ]);
    expect(await refusedUnchanged(() => own.corrections.openDispute({ customerId: theirs, entryIds: [theirEntry], description: "x", requestId: randomUUID() }))).toEqual([
      "NotFound", "CUSTOMER_NOT_FOUND",
    ]);
    const theirDispute = (await admin.corrections.openDispute({ customerId: theirs, entryIds: [theirEntry], description: "x", requestId: randomUUID() })).dispute!;
    expect(await refusal(own.corrections.getDispute({ disputeId: theirDispute.disputeId }))).toEqual(["NotFound", "DISPUTE_NOT_FOUND"]);
    expect(await refusal(own.corrections.listDisputes({ customerId: theirs }))).toEqual(["NotFound", "CUSTOMER_NOT_FOUND"]);
    expect((await own.corrections.listDisputes({})).disputes).toEqual([]);
    expect(await refusal(own.corrections.addDisputeNote({ disputeId: theirDispute.disputeId, text: "x", requestId: randomUUID() }))).toEqual([
      "PermissionDenied", "ROLE_NOT_ALLOWED",
    ]);
  });

  it("pages the queue oldest first and filters by status and owner", async () => {
    const customerId = await customer();
    await grant(customerId, 10n);
    const entryId = (await burn(customerId, 1n)).entries[0].entryId;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await admin.corrections.openDispute({ customerId, entryIds: [entryId], description: `d${i}`, requestId: randomUUID() })).dispute!.disputeId);
    await support.corrections.assignDispute({ disputeId: ids[1], owner: "dana", requestId: randomUUID() });
    const first = await support.corrections.listDisputes({ customerId, pageSize: 2 });
    const second = await support.corrections.listDisputes({ customerId, pageSize: 2, pageToken: first.nextPageToken });
    expect([...first.disputes, ...second.disputes].map((dispute) => dispute.disputeId)).toEqual(ids);
    expect(second.nextPageToken).toBe("");
    expect((await support.corrections.listDisputes({ owner: "dana" })).disputes.map((dispute) => dispute.disputeId)).toEqual([ids[1]]);
    expect((await support.corrections.listDisputes({ customerId, status: DisputeStatus.OPEN })).disputes.map((dispute) => dispute.disputeId)).toEqual([ids[0], ids[2]]);
  });
});

describe("refusals", () => {
  it("refuses calls without a key, and service keys, for every method but the customer's reads", async () => {
    const customerId = await customer();
    const grantId = await grant(customerId, 10n);
    const anonymous = t.clients(null);
    const calls = (clients: Clients) => [
      () => voidGrant(clients, customerId, grantId),
      () => refundBurn(clients, customerId, "r"),
      () => clients.corrections.openDispute({ customerId, entryIds: ["1"], description: "x", requestId: randomUUID() }),
      () => clients.corrections.getDispute({ disputeId: randomUUID() }),
      () => clients.corrections.listDisputes({}),
      () => clients.corrections.assignDispute({ disputeId: randomUUID(), requestId: randomUUID() }),
      () => clients.corrections.addDisputeNote({ disputeId: randomUUID(), text: "x", requestId: randomUUID() }),
      () => clients.corrections.resolveDispute({ disputeId: randomUUID(), resolution: { case: "reject", value: { reason: "x" } }, requestId: randomUUID() }),
    ];
    for (const call of calls(anonymous)) expect(await refusedUnchanged(call)).toEqual(["Unauthenticated", "MISSING_API_KEY"]);
    for (const call of calls(service)) expect(await refusedUnchanged(call)).toEqual(["PermissionDenied", "ROLE_NOT_ALLOWED"]);
  });

  it("refuses bad input with InvalidArgument and a reason naming it, changing nothing", async () => {
    const customerId = await customer();
    const grantId = await grant(customerId, 10n);
    const disputeId = randomUUID();
    const cases: [string, () => Promise<unknown>, string][] = [
      ["void grant_id", () => admin.corrections.voidGrant({ customerId, grantId: "nope", reasonCode: "x", requestId: randomUUID() }), "INVALID_ID"],
      ["void amount", () => admin.corrections.voidGrant({ customerId, grantId, amount: -1n, reasonCode: "x", requestId: randomUUID() }), "INVALID_AMOUNT"],
      ["void reason", () => admin.corrections.voidGrant({ customerId, grantId, reasonCode: "", requestId: randomUUID() }), "MISSING_FIELD"],
      ["void request id", () => admin.corrections.voidGrant({ customerId, grantId, reasonCode: "x", requestId: "" }), "MISSING_FIELD"],
      ["refund charge", () => admin.corrections.refundCharge({ customerId, reasonCode: "x", requestId: randomUUID() }), "MISSING_FIELD"],
      ["refund entry id", () => admin.corrections.refundCharge({ customerId, charge: { charge: { case: "entryId", value: "-3" } }, reasonCode: "x", requestId: randomUUID() }), "INVALID_ID"],
      ["refund amount", () => refundBurn(admin, customerId, "r", -5n), "INVALID_AMOUNT"],
      ["refund reason", () => admin.corrections.refundCharge({ customerId, charge: { charge: { case: "burnRequestId", value: "r" } }, reasonCode: "BAD CODE", requestId: randomUUID() }), "INVALID_CODE"],
      ["dispute entries", () => admin.corrections.openDispute({ customerId, entryIds: [], description: "x", requestId: randomUUID() }), "MISSING_FIELD"],
      ["dispute entries count", () => admin.corrections.openDispute({ customerId, entryIds: Array.from({ length: 101 }, (_, i) => String(i + 1)), description: "x", requestId: randomUUID() }), "TOO_MANY_ENTRIES"],
      ["dispute description", () => admin.corrections.openDispute({ customerId, entryIds: ["1"], description: " ", requestId: randomUUID() }), "MISSING_FIELD"],
      ["get dispute id", () => admin.corrections.getDispute({ disputeId: "x" }), "INVALID_ID"],
      ["list page size", () => admin.corrections.listDisputes({ pageSize: -1 }), "INVALID_PAGE_SIZE"],
      ["list page token", () => admin.corrections.listDisputes({ pageToken: "garbage" }), "INVALID_PAGE_TOKEN"],
      ["list status", () => admin.corrections.listDisputes({ status: 99 as DisputeStatus }), "INVALID_ENUM"],
      ["assign owner", () => admin.corrections.assignDispute({ disputeId, owner: "x".repeat(200), requestId: randomUUID() }), "TEXT_TOO_LONG"],
      ["note text", () => admin.corrections.addDisputeNote({ disputeId, text: "", requestId: randomUUID() }), "MISSING_FIELD"],
      ["resolution", () => admin.corrections.resolveDispute({ disputeId, requestId: randomUUID() }), "INVALID_RESOLUTION"],
      ["reject reason", () => admin.corrections.resolveDispute({ disputeId, resolution: { case: "reject", value: { reason: "" } }, requestId: randomUUID() }), "MISSING_FIELD"],
    ];
    for (const [name, call, reason] of cases) expect([name, ...(await refusedUnchanged(call))]).toEqual([name, "InvalidArgument", reason]);
    expect(await refusedUnchanged(() => admin.corrections.assignDispute({ disputeId, requestId: randomUUID() }))).toEqual(["NotFound", "DISPUTE_NOT_FOUND"]);
  });
});
