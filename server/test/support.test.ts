// Support grants through the contract, on real PostgreSQL: limits per call and per
// rolling period, per credit type and per key, that concurrent grants never pass together
// and a replay never counts twice; the sources support may grant with; the reason-code
// list; and maker-checker approvals, granted exactly once however many approve at once.
import { randomUUID } from "node:crypto";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { EntryKind, errorInfoOf, GrantRequestStatus, GrantSource, LedgerService, Role, SupportService } from "@burndown/sdk";
import { bearer } from "../../test-support/bearer.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invariantViolations } from "../../test-support/invariants.js";
import { databaseSnapshot, errorOf } from "../../test-support/snapshot.js";
import { type Clients, FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";

const dayMs = 86_400_000;
const clock = new FakeClock(Date.parse("2030-05-01T00:00:00Z"));
let t: TestServer;
let admin: Clients;

const fresh = (prefix: string) => `${prefix}_${randomUUID().slice(0, 8)}`;

async function refusal(call: Promise<unknown>): Promise<{ code: string; reason: string | undefined; metadata: Record<string, string> }> {
  const error = await errorOf(call);
  const info = errorInfoOf(error);
  return { code: Code[error.code], reason: info?.reason, metadata: info?.metadata ?? {} };
}

/** freshCreditType makes a credit type of its own, so that role limits set for it touch no other test. */
async function freshCreditType(): Promise<string> {
  const creditTypeId = fresh("ct");
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: creditTypeId, scale: 0 }, requestId: randomUUID() });
  return creditTypeId;
}

/** supportKey makes a support key and returns its clients and key id. */
async function supportKey(grantLimit = 0n): Promise<{ c: Clients; keyId: string }> {
  const token = await t.createKey("support", grantLimit);
  const c = t.clients(token);
  return { c, keyId: (await c.ledger.getCaller({})).keyId };
}

const grantOf = (creditTypeId: string, amount: bigint, overrides: Record<string, unknown> = {}) => ({
  customerId: fresh("cust"),
  creditTypeId,
  amount,
  source: GrantSource.SUPPORT,
  reasonCode: "goodwill",
  requestId: randomUUID(),
  ...overrides,
});

async function setRoleLimit(creditTypeId: string, perCallMax: bigint, periodMax: bigint, periodMs = dayMs) {
  await admin.support.setGrantLimit({ requestId: randomUUID(), limit: { role: Role.SUPPORT, creditTypeId, perCallMax, periodMax, period: durationFromMs(periodMs) } });
}

async function grantEntriesOf(customerId: string, creditTypeId: string) {
  const res = await admin.ledger.listLedgerEntries({ customerId, creditTypeId, pageSize: 100 });
  return res.entries.filter((entry) => entry.kind === EntryKind.GRANT);
}

beforeAll(async () => {
  // Many lanes, so that concurrent grants of different customers really run at once.
  t = await startTestServer({ clock, writes: { lanes: 16, partitions: 1 } });
  admin = t.clients(t.adminToken);
});

afterAll(async () => {
  expect(await invariantViolations(t.database.pool)).toEqual([]);
  await t?.close();
});

describe("defaults of a fresh deployment", () => {
  it("support keys are limited by a role limit for every credit type, and may grant with SUPPORT and PROMOTION only", async () => {
    const limits = (await admin.support.listGrantLimits({})).limits;
    expect(limits.map((l) => [l.role, l.keyId, l.creditTypeId, l.perCallMax, l.periodMax, l.period?.seconds])).toEqual([
      [Role.SUPPORT, "", "", 100_000n, 1_000_000n, 86_400n],
    ]);
    const sources = (await admin.support.listGrantSources({})).grantSources;
    expect(sources.map((s) => [s.role, s.sources])).toEqual([[Role.SUPPORT, [GrantSource.SUPPORT, GrantSource.PROMOTION]]]);
  });

  it("the reason codes are seeded from the configured list, and GetCaller answers them with a support key's sources", async () => {
    const codes = (await admin.support.listReasonCodes({})).reasonCodes.map((code) => code.code);
    expect(codes).toEqual(["correction", "goodwill", "migration", "promotion", "sales_deal", "service_credit"]);
    const { c } = await supportKey();
    const me = await c.ledger.getCaller({});
    expect([...me.grantReasonCodes].sort()).toEqual(codes);
    expect(me.grantSources).toEqual([GrantSource.SUPPORT, GrantSource.PROMOTION]);
  });
});

describe("grant limits", () => {
  it("a support grant above the per-call limit is refused with GRANT_LIMIT_EXCEEDED saying approval is possible, and changes nothing", async () => {
    const creditTypeId = await freshCreditType();
    await setRoleLimit(creditTypeId, 100n, 1_000n);
    const { c } = await supportKey();
    const before = await databaseSnapshot(t.database.pool);
    const refused = await refusal(c.ledger.grant(grantOf(creditTypeId, 101n)));
    expect(refused).toMatchObject({ code: "PermissionDenied", reason: "GRANT_LIMIT_EXCEEDED", metadata: { per_call_max: "100", approval_possible: "true" } });
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
    expect((await c.ledger.grant(grantOf(creditTypeId, 100n))).lot?.amount).toBe(100n);
  });

  it("a key's own grant_limit still caps each call below the role limit", async () => {
    const creditTypeId = await freshCreditType();
    const { c } = await supportKey(50n);
    expect(await refusal(c.ledger.grant(grantOf(creditTypeId, 51n)))).toMatchObject({ reason: "GRANT_LIMIT_EXCEEDED", metadata: { per_call_max: "50" } });
    expect((await c.ledger.grant(grantOf(creditTypeId, 50n))).lot?.amount).toBe(50n);
  });

  it("a key's grants add up over the rolling period, and count again only once the period has passed", async () => {
    const creditTypeId = await freshCreditType();
    await setRoleLimit(creditTypeId, 100n, 250n);
    const { c } = await supportKey();
    await c.ledger.grant(grantOf(creditTypeId, 100n));
    await c.ledger.grant(grantOf(creditTypeId, 100n));
    expect(await refusal(c.ledger.grant(grantOf(creditTypeId, 100n)))).toMatchObject({ reason: "GRANT_LIMIT_EXCEEDED", metadata: { period_used: "200", period_max: "250" } });
    expect((await c.ledger.grant(grantOf(creditTypeId, 50n))).lot?.amount).toBe(50n);
    // Another key of the same role has its own sum.
    const other = await supportKey();
    expect((await other.c.ledger.grant(grantOf(creditTypeId, 100n))).lot?.amount).toBe(100n);
    clock.advance(dayMs + 1);
    expect((await c.ledger.grant(grantOf(creditTypeId, 100n))).lot?.amount).toBe(100n);
  });

  it("a limit of one credit type leaves the others to the limit for every type", async () => {
    const [limited, other] = [await freshCreditType(), await freshCreditType()];
    await setRoleLimit(limited, 10n, 10n);
    const { c } = await supportKey();
    expect(await refusal(c.ledger.grant(grantOf(limited, 11n)))).toMatchObject({ reason: "GRANT_LIMIT_EXCEEDED" });
    expect((await c.ledger.grant(grantOf(other, 1_000n))).lot?.amount).toBe(1_000n);
  });

  it("a key's own limit overrides its role's for that key and credit type, and deleting it restores the role's", async () => {
    const creditTypeId = await freshCreditType();
    await setRoleLimit(creditTypeId, 100n, 100n);
    const senior = await supportKey();
    const junior = await supportKey();
    await admin.support.setGrantLimit({
      requestId: randomUUID(),
      limit: { keyId: senior.keyId, creditTypeId, perCallMax: 5_000n, periodMax: 5_000n, period: durationFromMs(dayMs) },
    });
    expect((await senior.c.ledger.grant(grantOf(creditTypeId, 1_000n))).lot?.amount).toBe(1_000n);
    expect(await refusal(junior.c.ledger.grant(grantOf(creditTypeId, 1_000n)))).toMatchObject({ reason: "GRANT_LIMIT_EXCEEDED" });
    const listed = (await senior.c.support.listGrantLimits({ keyId: senior.keyId })).limits;
    expect(listed.map((l) => [l.keyId, l.creditTypeId])).toEqual(
      expect.arrayContaining([
        ["", creditTypeId],
        [senior.keyId, creditTypeId],
      ]),
    );
    await admin.support.deleteGrantLimit({ requestId: randomUUID(), keyId: senior.keyId, creditTypeId });
    expect(await refusal(senior.c.ledger.grant(grantOf(creditTypeId, 1_000n)))).toMatchObject({ reason: "GRANT_LIMIT_EXCEEDED" });
  });

  it("20 concurrent grants of one key against a period limit never pass it together", async () => {
    const creditTypeId = await freshCreditType();
    await setRoleLimit(creditTypeId, 100n, 1_000n);
    const { c, keyId } = await supportKey();
    const customers = Array.from({ length: 20 }, () => fresh("conc"));
    const results = await Promise.allSettled(customers.map((customerId) => c.ledger.grant(grantOf(creditTypeId, 100n, { customerId }))));
    const granted = results.filter((result) => result.status === "fulfilled");
    expect(granted).toHaveLength(10);
    for (const result of results) {
      if (result.status === "rejected") expect(errorInfoOf(result.reason)?.reason).toBe("GRANT_LIMIT_EXCEEDED");
    }
    let total = 0n;
    for (const customerId of customers) for (const entry of await grantEntriesOf(customerId, creditTypeId)) total += entry.amount;
    expect(total).toBe(1_000n);
    const tallied = await t.database.pool.query("select sum(amount)::text as total from support_grants where key_id = $1", [keyId]);
    expect(tallied.rows[0].total).toBe("1000");
  });

  it("a replayed grant answers its first lot and is not counted twice", async () => {
    const creditTypeId = await freshCreditType();
    await setRoleLimit(creditTypeId, 100n, 200n);
    const { c } = await supportKey();
    const request = grantOf(creditTypeId, 100n);
    const first = await c.ledger.grant(request);
    const replay = await c.ledger.grant(request);
    expect(replay.lot?.grantId).toBe(first.lot?.grantId);
    // 100 of 200 used: one more grant of 100 fits.
    expect((await c.ledger.grant(grantOf(creditTypeId, 100n))).lot?.amount).toBe(100n);
    // With the period used up, a replay still answers its first lot.
    expect((await c.ledger.grant(request)).lot?.grantId).toBe(first.lot?.grantId);
  });

  it("a bad limit is refused with INVALID_GRANT_LIMIT and changes nothing", async () => {
    const before = await databaseSnapshot(t.database.pool);
    const { keyId } = await supportKey();
    const after = await databaseSnapshot(t.database.pool);
    const cases = [
      { role: Role.SUPPORT, keyId, perCallMax: 1n, periodMax: 1n, period: durationFromMs(dayMs) },
      { role: Role.SERVICE, perCallMax: 1n, periodMax: 1n, period: durationFromMs(dayMs) },
      { role: Role.SUPPORT, perCallMax: 0n, periodMax: 1n, period: durationFromMs(dayMs) },
      { role: Role.SUPPORT, perCallMax: 1n, periodMax: 1n, period: durationFromMs(60_000) },
      { role: Role.SUPPORT, perCallMax: 1n, periodMax: 1n },
    ];
    for (const limit of cases) {
      expect(await refusal(admin.support.setGrantLimit({ requestId: randomUUID(), limit }))).toMatchObject({ code: "InvalidArgument", reason: "INVALID_GRANT_LIMIT" });
    }
    expect(await refusal(admin.support.setGrantLimit({ requestId: randomUUID() }))).toMatchObject({ code: "InvalidArgument", reason: "MISSING_FIELD" });
    expect(await refusal(admin.support.deleteGrantLimit({ requestId: randomUUID(), keyId, creditTypeId: "nothing_here" }))).toMatchObject({
      code: "NotFound",
      reason: "GRANT_LIMIT_NOT_FOUND",
    });
    expect(await databaseSnapshot(t.database.pool)).toEqual(after);
    expect(before).not.toEqual(after);
  });
});

describe("sources", () => {
  it("support may not grant PURCHASE or RECHARGE credits: PermissionDenied GRANT_SOURCE_NOT_ALLOWED", async () => {
    const creditTypeId = await freshCreditType();
    const { c } = await supportKey();
    for (const source of [GrantSource.PURCHASE, GrantSource.RECHARGE]) {
      expect(await refusal(c.ledger.grant(grantOf(creditTypeId, 10n, { source })))).toMatchObject({ code: "PermissionDenied", reason: "GRANT_SOURCE_NOT_ALLOWED" });
    }
    expect((await c.ledger.grant(grantOf(creditTypeId, 10n, { source: GrantSource.PROMOTION }))).lot?.source).toBe(GrantSource.PROMOTION);
  });

  it("an admin narrows support's sources, never to PURCHASE", async () => {
    const creditTypeId = await freshCreditType();
    const { c } = await supportKey();
    expect(await refusal(admin.support.setGrantSources({ requestId: randomUUID(), grantSources: { role: Role.SUPPORT, sources: [GrantSource.PURCHASE] } }))).toMatchObject({
      code: "InvalidArgument",
      reason: "INVALID_GRANT_SOURCES",
    });
    await admin.support.setGrantSources({ requestId: randomUUID(), grantSources: { role: Role.SUPPORT, sources: [GrantSource.SUPPORT] } });
    try {
      expect(await refusal(c.ledger.grant(grantOf(creditTypeId, 10n, { source: GrantSource.PROMOTION })))).toMatchObject({ reason: "GRANT_SOURCE_NOT_ALLOWED" });
      expect((await c.ledger.getCaller({})).grantSources).toEqual([GrantSource.SUPPORT]);
    } finally {
      await admin.support.setGrantSources({ requestId: randomUUID(), grantSources: { role: Role.SUPPORT, sources: [GrantSource.SUPPORT, GrantSource.PROMOTION] } });
    }
  });
});

describe("reason codes", () => {
  it("an admin adds, relabels and disables a code; a disabled code is refused for support grants and requests", async () => {
    const creditTypeId = await freshCreditType();
    const code = fresh("outage");
    await admin.support.createReasonCode({ requestId: randomUUID(), code, label: "Outage", description: "credits for downtime" });
    const { c } = await supportKey();
    expect((await c.ledger.grant(grantOf(creditTypeId, 5n, { reasonCode: code }))).lot?.reasonCode).toBe(code);
    const updated = await admin.support.updateReasonCode({ requestId: randomUUID(), code, label: "Outage credit", description: "", disabled: true });
    expect([updated.reasonCode?.label, updated.reasonCode?.disabled]).toEqual(["Outage credit", true]);
    expect(await refusal(c.ledger.grant(grantOf(creditTypeId, 5n, { reasonCode: code })))).toMatchObject({ code: "InvalidArgument", reason: "INVALID_REASON_CODE" });
    expect(await refusal(admin.support.requestGrant({ grant: grantOf(creditTypeId, 5n, { reasonCode: code }) }))).toMatchObject({ reason: "INVALID_REASON_CODE" });
    expect((await c.ledger.getCaller({})).grantReasonCodes).not.toContain(code);
    const all = (await c.support.listReasonCodes({ includeDisabled: true })).reasonCodes;
    expect(all.find((row) => row.code === code)?.disabled).toBe(true);
    expect((await c.support.listReasonCodes({})).reasonCodes.map((row) => row.code)).not.toContain(code);
    // Service and admin keys may still name any code on a plain Grant.
    expect((await admin.ledger.grant(grantOf(creditTypeId, 5n, { reasonCode: code }))).lot?.reasonCode).toBe(code);
  });

  it("creating a code twice is AlreadyExists, updating an unknown one NotFound, and a code needs a label", async () => {
    const code = fresh("dup");
    await admin.support.createReasonCode({ requestId: randomUUID(), code, label: "Dup" });
    expect(await refusal(admin.support.createReasonCode({ requestId: randomUUID(), code, label: "Dup" }))).toMatchObject({ code: "AlreadyExists", reason: "REASON_CODE_EXISTS" });
    expect(await refusal(admin.support.updateReasonCode({ requestId: randomUUID(), code: fresh("none"), label: "x" }))).toMatchObject({ code: "NotFound", reason: "REASON_CODE_UNKNOWN" });
    expect(await refusal(admin.support.createReasonCode({ requestId: randomUUID(), code: fresh("nolabel"), label: "" }))).toMatchObject({ code: "InvalidArgument", reason: "MISSING_FIELD" });
    expect(await refusal(admin.support.createReasonCode({ requestId: randomUUID(), code: "Not A Code", label: "x" }))).toMatchObject({ code: "InvalidArgument" });
  });

  it("a ticket link must be an http(s) URL; a valid one is kept in the audit record", async () => {
    const creditTypeId = await freshCreditType();
    const { c } = await supportKey();
    for (const ticketUrl of ["ftp://tickets.example/1", "javascript:alert(1)", "not a url", `https://tickets.example/${"x".repeat(2_000)}`]) {
      expect(await refusal(c.ledger.grant(grantOf(creditTypeId, 5n, { ticketUrl })))).toMatchObject({ code: "InvalidArgument", reason: "INVALID_TICKET_URL" });
    }
    const ticketUrl = "https://tickets.example/T-1234";
    const res = await c.ledger.grant(grantOf(creditTypeId, 5n, { ticketUrl }));
    const audits = (await admin.admin.listAuditRecords({ pageSize: 20 })).auditRecords;
    const audit = audits.find((record) => record.action === "grant" && JSON.parse(record.detailsJson).new?.grant_id === res.lot?.grantId);
    expect(JSON.parse(audit!.detailsJson).ticket_url).toBe(ticketUrl);
  });
});

describe("approvals", () => {
  /** fileRequest has a support key limited to 100 per call ask for `amount`. */
  async function fileRequest(amount: bigint, requester?: { c: Clients; keyId: string }) {
    const creditTypeId = await freshCreditType();
    await setRoleLimit(creditTypeId, 100n, 1_000n);
    const asker = requester ?? (await supportKey());
    const grant = grantOf(creditTypeId, amount, { ticketUrl: "https://tickets.example/42", note: "outage for a day" });
    const res = await asker.c.support.requestGrant({ grant });
    return { asker, grant, creditTypeId, res };
  }

  it("RequestGrant within the limit grants at once", async () => {
    const { res } = await fileRequest(100n);
    expect(res.granted?.lot?.amount).toBe(100n);
    expect(res.pending).toBeUndefined();
  });

  it("above the limit it files a pending request, grants nothing and queues grant_request.created; a replay answers the same request", async () => {
    const endpoint = await admin.webhooks.createWebhookEndpoint({ url: "https://hooks.example/burndown", eventTypes: ["grant_request.created"], requestId: randomUUID() });
    const { asker, grant, res } = await fileRequest(500n);
    const events = (await admin.webhooks.listWebhookEvents({ endpointId: endpoint.endpoint!.endpointId, pageSize: 10 })).events;
    expect(events.map((event) => [event.type, JSON.parse(event.payloadJson).grantRequestId])).toEqual([["grant_request.created", res.pending?.grantRequestId]]);
    expect(res.pending).toMatchObject({ status: GrantRequestStatus.PENDING, amount: 500n, requesterKeyId: asker.keyId, ticketUrl: "https://tickets.example/42" });
    expect(await grantEntriesOf(grant.customerId, grant.creditTypeId)).toEqual([]);
    const replay = await asker.c.support.requestGrant({ grant });
    expect(replay.pending?.grantRequestId).toBe(res.pending?.grantRequestId);
    const listed = await asker.c.support.listGrantRequests({ status: GrantRequestStatus.PENDING, requesterKeyId: asker.keyId });
    expect(listed.grantRequests.map((request) => request.grantRequestId)).toEqual([res.pending?.grantRequestId]);
    const forCustomer = await asker.c.support.listGrantRequests({ customerId: grant.customerId });
    expect(forCustomer.grantRequests.map((request) => request.grantRequestId)).toEqual([res.pending?.grantRequestId]);
    expect((await asker.c.support.listGrantRequests({ customerId: fresh("nobody") })).grantRequests).toEqual([]);
  });

  it("the requester may not approve or reject its own request", async () => {
    const { asker, res } = await fileRequest(500n);
    const grantRequestId = res.pending!.grantRequestId;
    const before = await databaseSnapshot(t.database.pool);
    expect(await refusal(asker.c.support.approveGrantRequest({ requestId: randomUUID(), grantRequestId }))).toMatchObject({ code: "PermissionDenied", reason: "SELF_APPROVAL_NOT_ALLOWED" });
    expect(await refusal(asker.c.support.rejectGrantRequest({ requestId: randomUUID(), grantRequestId, reason: "no" }))).toMatchObject({ reason: "SELF_APPROVAL_NOT_ALLOWED" });
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
  });

  it("an admin approves: granted once, on the admin's authority, audited; a replay answers the same, a second approval is ALREADY_DECIDED", async () => {
    const { grant, res } = await fileRequest(500n);
    const grantRequestId = res.pending!.grantRequestId;
    const approval = { requestId: randomUUID(), grantRequestId, reason: "checked the outage" };
    const approved = await admin.support.approveGrantRequest(approval);
    expect(approved.grantRequest).toMatchObject({ status: GrantRequestStatus.APPROVED, decisionReason: "checked the outage", grantId: approved.granted?.lot?.grantId });
    expect(approved.granted?.lot).toMatchObject({ amount: 500n, source: GrantSource.SUPPORT, reasonCode: "goodwill" });
    const replay = await admin.support.approveGrantRequest(approval);
    expect(replay.granted?.lot?.grantId).toBe(approved.granted?.lot?.grantId);
    const second = t.clients(await t.createKey("admin"));
    expect(await refusal(second.support.approveGrantRequest({ requestId: randomUUID(), grantRequestId }))).toMatchObject({
      code: "FailedPrecondition",
      reason: "ALREADY_DECIDED",
      metadata: { status: "approved" },
    });
    expect((await grantEntriesOf(grant.customerId, grant.creditTypeId)).map((entry) => entry.amount)).toEqual([500n]);
    const actions = (await admin.admin.listAuditRecords({ pageSize: 50 })).auditRecords.map((record) => record.action);
    expect(actions).toEqual(expect.arrayContaining(["request_grant", "approve_grant_request"]));
  });

  it("two approvers at once: exactly one grant, the other ALREADY_DECIDED", async () => {
    const { grant, res } = await fileRequest(700n);
    const grantRequestId = res.pending!.grantRequestId;
    // A support approver whose own limit covers the amount races the two admins.
    const peer = await supportKey();
    await admin.support.setGrantLimit({ requestId: randomUUID(), limit: { keyId: peer.keyId, perCallMax: 1_000n, periodMax: 1_000n, period: durationFromMs(dayMs) } });
    const approvers = [admin, t.clients(await t.createKey("admin")), peer.c];
    const results = await Promise.allSettled(approvers.map((c) => c.support.approveGrantRequest({ requestId: randomUUID(), grantRequestId, reason: "ok" })));
    expect(results.filter((result) => result.status === "fulfilled")).toHaveLength(1);
    for (const result of results) {
      if (result.status === "rejected") expect(errorInfoOf(result.reason)?.reason).toBe("ALREADY_DECIDED");
    }
    expect((await grantEntriesOf(grant.customerId, grant.creditTypeId)).map((entry) => entry.amount)).toEqual([700n]);
  });

  it("a support approver grants only within its own limit", async () => {
    const { res, creditTypeId } = await fileRequest(500n);
    const grantRequestId = res.pending!.grantRequestId;
    const peer = await supportKey();
    expect(await refusal(peer.c.support.approveGrantRequest({ requestId: randomUUID(), grantRequestId }))).toMatchObject({
      reason: "GRANT_LIMIT_EXCEEDED",
      metadata: { approval_possible: "false" },
    });
    await admin.support.setGrantLimit({ requestId: randomUUID(), limit: { keyId: peer.keyId, creditTypeId, perCallMax: 1_000n, periodMax: 1_000n, period: durationFromMs(dayMs) } });
    const approved = await peer.c.support.approveGrantRequest({ requestId: randomUUID(), grantRequestId });
    expect(approved.grantRequest?.deciderKeyId).toBe(peer.keyId);
  });

  it("an approval whose grant is refused leaves the request pending and grants nothing: the decision and the grant commit together", async () => {
    const creditTypeId = await freshCreditType();
    await setRoleLimit(creditTypeId, 100n, 1_000n);
    const asker = await supportKey();
    const lotExpiry = timestampFromMs(clock.ms + dayMs);
    const pastExpiry = timestampFromMs(clock.ms - 1);
    expect(await refusal(asker.c.support.requestGrant({ grant: grantOf(creditTypeId, 500n, { expireTime: pastExpiry }) }))).toMatchObject({ reason: "INVALID_EXPIRE_TIME" });
    const grant = grantOf(creditTypeId, 500n, { expireTime: lotExpiry });
    const res = await asker.c.support.requestGrant({ grant });
    const grantRequestId = res.pending!.grantRequestId;
    clock.advance(2 * dayMs);
    expect(await refusal(admin.support.approveGrantRequest({ requestId: randomUUID(), grantRequestId }))).toMatchObject({ code: "InvalidArgument", reason: "INVALID_EXPIRE_TIME" });
    const listed = await admin.support.listGrantRequests({ requesterKeyId: asker.keyId });
    expect(listed.grantRequests.map((request) => [request.grantRequestId, request.status])).toEqual([[grantRequestId, GrantRequestStatus.PENDING]]);
    expect(await grantEntriesOf(grant.customerId, creditTypeId)).toEqual([]);
  });

  it("a rejection says why and grants nothing; a rejected request cannot be approved", async () => {
    const { grant, res } = await fileRequest(500n);
    const grantRequestId = res.pending!.grantRequestId;
    expect(await refusal(admin.support.rejectGrantRequest({ requestId: randomUUID(), grantRequestId, reason: "" }))).toMatchObject({ code: "InvalidArgument", reason: "MISSING_FIELD" });
    const rejected = await admin.support.rejectGrantRequest({ requestId: randomUUID(), grantRequestId, reason: "not covered by policy" });
    expect(rejected.grantRequest).toMatchObject({ status: GrantRequestStatus.REJECTED, decisionReason: "not covered by policy", grantId: "" });
    expect(await refusal(admin.support.approveGrantRequest({ requestId: randomUUID(), grantRequestId }))).toMatchObject({ reason: "ALREADY_DECIDED" });
    expect(await grantEntriesOf(grant.customerId, grant.creditTypeId)).toEqual([]);
  });

  it("a request not decided within the TTL expires and can no longer be approved", async () => {
    const { res } = await fileRequest(500n);
    const grantRequestId = res.pending!.grantRequestId;
    clock.advance(7 * dayMs);
    const before = await databaseSnapshot(t.database.pool);
    expect(await refusal(admin.support.approveGrantRequest({ requestId: randomUUID(), grantRequestId }))).toMatchObject({ code: "FailedPrecondition", reason: "GRANT_REQUEST_EXPIRED" });
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
    const expired = await admin.support.listGrantRequests({ status: GrantRequestStatus.EXPIRED, pageSize: 1_000 });
    expect(expired.grantRequests.map((request) => request.grantRequestId)).toContain(grantRequestId);
  });

  it("a plain Grant above the limit stays refused, and requests are listed in pages", async () => {
    const asker = await supportKey();
    for (let i = 0; i < 3; i++) await fileRequest(500n, asker);
    const first = await admin.support.listGrantRequests({ requesterKeyId: asker.keyId, pageSize: 2 });
    expect(first.grantRequests).toHaveLength(2);
    const second = await admin.support.listGrantRequests({ requesterKeyId: asker.keyId, pageSize: 2, pageToken: first.nextPageToken });
    expect(second.grantRequests).toHaveLength(1);
    expect(second.nextPageToken).toBe("");
    expect(await refusal(admin.support.listGrantRequests({ pageToken: "garbage" }))).toMatchObject({ code: "InvalidArgument", reason: "INVALID_PAGE_TOKEN" });
    expect(await refusal(admin.support.approveGrantRequest({ requestId: randomUUID(), grantRequestId: "not-a-uuid" }))).toMatchObject({ code: "InvalidArgument", reason: "INVALID_ID" });
    expect(await refusal(admin.support.approveGrantRequest({ requestId: randomUUID(), grantRequestId: randomUUID() }))).toMatchObject({ code: "NotFound", reason: "GRANT_REQUEST_NOT_FOUND" });
    expect(await refusal(admin.support.requestGrant({}))).toMatchObject({ code: "InvalidArgument", reason: "MISSING_FIELD" });
  });
});

describe("two replicas", () => {
  it("concurrent grants of one key through two replicas never pass its period limit together, and two approvers on them grant once", async () => {
    const replica = await t.startReplica();
    const onReplica = (token: string) => {
      const transport = createConnectTransport({ baseUrl: replica.httpUrl, httpVersion: "1.1", interceptors: [bearer(token)] });
      return { ledger: createClient(LedgerService, transport), support: createClient(SupportService, transport) };
    };
    const creditTypeId = await freshCreditType();
    await setRoleLimit(creditTypeId, 100n, 1_000n);
    const token = await t.createKey("support");
    const [here, there] = [t.clients(token), onReplica(token)];
    const customers = Array.from({ length: 20 }, () => fresh("repl"));
    const results = await Promise.allSettled(customers.map((customerId, i) => (i % 2 === 0 ? here : there).ledger.grant(grantOf(creditTypeId, 100n, { customerId }))));
    expect(results.filter((result) => result.status === "fulfilled")).toHaveLength(10);
    let total = 0n;
    for (const customerId of customers) for (const entry of await grantEntriesOf(customerId, creditTypeId)) total += entry.amount;
    expect(total).toBe(1_000n);

    const asker = t.clients(await t.createKey("support", 5n));
    const grant = grantOf(creditTypeId, 50n);
    const grantRequestId = (await asker.support.requestGrant({ grant })).pending!.grantRequestId;
    const otherAdmin = onReplica(await t.createKey("admin"));
    const approvals = await Promise.allSettled([admin, otherAdmin].map((c) => c.support.approveGrantRequest({ requestId: randomUUID(), grantRequestId })));
    expect(approvals.filter((result) => result.status === "fulfilled")).toHaveLength(1);
    expect((await grantEntriesOf(grant.customerId, creditTypeId)).map((entry) => entry.amount)).toEqual([50n]);
  });
});

describe("bad input", () => {
  it("each SupportService RPC that takes input refuses a bad one with InvalidArgument and its reason, and changes nothing", async () => {
    const s = admin.support;
    const grant = grantOf("api_credits", 10n);
    const cases: [string, () => Promise<unknown>, string][] = [
      ["SetGrantLimit without a role or key", () => s.setGrantLimit({ requestId: randomUUID(), limit: { perCallMax: 1n, periodMax: 1n, period: durationFromMs(dayMs) } }), "INVALID_GRANT_LIMIT"],
      ["SetGrantLimit without a request id", () => s.setGrantLimit({ limit: { role: Role.SUPPORT, perCallMax: 1n, periodMax: 1n, period: durationFromMs(dayMs) } }), "MISSING_FIELD"],
      ["ListGrantLimits of a malformed key id", () => s.listGrantLimits({ keyId: "has space" }), "INVALID_ID"],
      ["DeleteGrantLimit of both a role and a key", () => s.deleteGrantLimit({ requestId: randomUUID(), role: Role.SUPPORT, keyId: "k" }), "INVALID_GRANT_LIMIT"],
      ["SetGrantSources with none", () => s.setGrantSources({ requestId: randomUUID(), grantSources: { role: Role.SUPPORT, sources: [] } }), "INVALID_GRANT_SOURCES"],
      ["SetGrantSources for the service role", () => s.setGrantSources({ requestId: randomUUID(), grantSources: { role: Role.SERVICE, sources: [GrantSource.SUPPORT] } }), "INVALID_GRANT_SOURCES"],
      ["CreateReasonCode of an uppercase code", () => s.createReasonCode({ requestId: randomUUID(), code: "BAD CODE", label: "x" }), "INVALID_CODE"],
      ["UpdateReasonCode without a label", () => s.updateReasonCode({ requestId: randomUUID(), code: "goodwill", label: "" }), "MISSING_FIELD"],
      ["RequestGrant of a negative amount", () => s.requestGrant({ grant: { ...grant, amount: -1n } }), "INVALID_AMOUNT"],
      ["RequestGrant with an ftp ticket link", () => s.requestGrant({ grant: { ...grant, ticketUrl: "ftp://x.example/1" } }), "INVALID_TICKET_URL"],
      ["ApproveGrantRequest of a malformed id", () => s.approveGrantRequest({ requestId: randomUUID(), grantRequestId: "42" }), "INVALID_ID"],
      ["RejectGrantRequest without a reason", () => s.rejectGrantRequest({ requestId: randomUUID(), grantRequestId: randomUUID() }), "MISSING_FIELD"],
      ["ListGrantRequests of an unknown status", () => s.listGrantRequests({ status: 99 as GrantRequestStatus }), "INVALID_ENUM"],
      ["ListGrantRequests of a page too large", () => s.listGrantRequests({ pageSize: 1_001 }), "INVALID_PAGE_SIZE"],
    ];
    const before = await databaseSnapshot(t.database.pool);
    for (const [name, call, reason] of cases) expect(await refusal(call()), name).toMatchObject({ code: "InvalidArgument", reason });
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
  });
});

describe("without a key", () => {
  it("every SupportService RPC is Unauthenticated MISSING_API_KEY", async () => {
    const anonymous = t.clients(null).support;
    const calls: Promise<unknown>[] = [
      anonymous.setGrantLimit({ requestId: randomUUID() }),
      anonymous.listGrantLimits({}),
      anonymous.deleteGrantLimit({ requestId: randomUUID() }),
      anonymous.setGrantSources({ requestId: randomUUID() }),
      anonymous.listGrantSources({}),
      anonymous.createReasonCode({ requestId: randomUUID() }),
      anonymous.updateReasonCode({ requestId: randomUUID() }),
      anonymous.listReasonCodes({}),
      anonymous.requestGrant({}),
      anonymous.approveGrantRequest({ requestId: randomUUID() }),
      anonymous.rejectGrantRequest({ requestId: randomUUID() }),
      anonymous.listGrantRequests({}),
    ];
    for (const call of calls) expect(await refusal(call)).toMatchObject({ code: "Unauthenticated", reason: "MISSING_API_KEY" });
  });
});
