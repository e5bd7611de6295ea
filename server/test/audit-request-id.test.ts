// Every audit record carries the request id of the call that made it (its log line's
// requestId, its answer's x-request-id), over both listeners and by both routes a record is
// written (a service's own transaction, and the write path's group, where ops of several
// calls share one transaction); records the server's jobs write carry none. ListAuditRecords
// returns it and finds a call's records by it.
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { type AuditRecord, errorInfoOf, GrantSource } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { errorOf } from "../../test-support/snapshot.js";
import { type Clients, startTestServer, type TestServer } from "../../test-support/server.js";

const creditTypeId = "api_credits";
let t: TestServer;
let admin: Clients;

const fresh = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/** grantTo grants a customer credits over a protocol, with an x-request-id when given; resolves with the answer's x-request-id. */
async function grantTo(customerId: string, options: { protocol: "connect" | "grpc"; requestId?: string }): Promise<string | null> {
  let answered: string | null = null;
  const headers: Record<string, string> = options.requestId === undefined ? {} : { "x-request-id": options.requestId };
  await t.clients(t.adminToken, options.protocol).ledger.grant(
    { customerId, creditTypeId, amount: 100n, source: GrantSource.PURCHASE, reasonCode: "seed", requestId: randomUUID() },
    { headers, onHeader: (header) => (answered = header.get("x-request-id")) },
  );
  return answered;
}

/** recordsOf reads the audit records of a call through the contract. */
async function recordsOf(requestId: string): Promise<AuditRecord[]> {
  return (await admin.admin.listAuditRecords({ requestId, pageSize: 10 })).auditRecords;
}

beforeAll(async () => {
  // One lane, so that calls queued behind a group in flight join the next group together.
  t = await startTestServer({ writes: { lanes: 1, partitions: 1 } });
  admin = t.clients(t.adminToken);
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 0 }, requestId: randomUUID() });
});
afterAll(() => t?.close());

describe.each(["connect", "grpc"] as const)("a call over %s", (protocol) => {
  it("with an x-request-id leaves it on the record the write path drafts (Grant)", async () => {
    const customerId = fresh("cust");
    const requestId = `support-${protocol}-${randomUUID()}`;
    expect(await grantTo(customerId, { protocol, requestId })).toBe(requestId);
    const records = await recordsOf(requestId);
    expect(records.map((record) => [record.action, record.target, record.requestId])).toEqual([["grant", `customer:${customerId}`, requestId]]);
  });

  it("with an x-request-id leaves it on the record its own transaction writes (CreateCustomer)", async () => {
    const customerId = fresh("cust");
    const requestId = `ticket-42:${protocol}.${randomUUID()}`;
    await t.clients(t.adminToken, protocol).admin.createCustomer({ customer: { customerId }, requestId: randomUUID() }, { headers: { "x-request-id": requestId } });
    const records = await recordsOf(requestId);
    expect(records.map((record) => [record.action, record.target, record.requestId])).toEqual([["create_customer", `customer:${customerId}`, requestId]]);
  });

  it("without one leaves the id the server made, the one its answer's x-request-id carries", async () => {
    const customerId = fresh("cust");
    const answered = await grantTo(customerId, { protocol });
    expect(answered).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const records = await recordsOf(answered!);
    expect(records.map((record) => [record.target, record.requestId])).toEqual([[`customer:${customerId}`, answered]]);
  });
});

describe("calls whose ops share one write-path transaction", () => {
  it("each leave their own request id on their own record", async () => {
    const [blocked, first, second] = [fresh("blocked"), fresh("first"), fresh("second")];
    await grantTo(blocked, { protocol: "connect" });
    const writes = t.server.deps.writes as unknown as { lanes: { queue: unknown[] }[] };
    // A writer holds one balance's lock: the lane's group in flight (a Grant to it) waits, and
    // the next two calls queue behind it, to run together in the lane's next group.
    const writer = await t.database.pool.connect();
    let grants: Promise<unknown>[];
    try {
      await writer.query("begin");
      await writer.query("select 1 from balances where customer_id = $1 for update", [blocked]);
      const waiting = grantTo(blocked, { protocol: "connect", requestId: `waiting-${randomUUID()}` });
      await vi.waitFor(async () => {
        const locked = await t.database.pool.query("select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'");
        expect(locked.rows[0].n).toBeGreaterThan(0);
      }, { timeout: 10_000, interval: 10 });
      grants = [waiting, grantTo(first, { protocol: "connect", requestId: "call-one" }), grantTo(second, { protocol: "grpc", requestId: "call-two" })];
      await vi.waitFor(() => expect(writes.lanes[0].queue.length).toBe(2), { timeout: 10_000, interval: 5 });
    } finally {
      await writer.query("commit");
      writer.release();
    }
    await Promise.all(grants);
    const rows = await t.database.pool.query<{ tx: string; target: string; request_id: string }>(
      "select xmin::text as tx, target, request_id from audit_log where target = any($1) order by target",
      [[`customer:${first}`, `customer:${second}`]],
    );
    // One transaction wrote both records, each with its own call's id.
    expect(new Set(rows.rows.map((row) => row.tx)).size).toBe(1);
    expect(rows.rows.map((row) => [row.target, row.request_id])).toEqual([
      [`customer:${first}`, "call-one"],
      [`customer:${second}`, "call-two"],
    ]);
  });
});

describe("a record a job writes", () => {
  it("carries no request id, not even that of the call whose group kicked the job", async () => {
    const customerId = fresh("cust");
    await grantTo(customerId, { protocol: "connect" });
    await admin.billing.setAutoRecharge({
      customerId,
      creditTypeId,
      enabled: true,
      threshold: 50n,
      item: { case: "amount", value: { creditTypeId, credits: 1000n, currency: "USD", priceMinor: 5000n } },
      requestId: randomUUID(),
    });
    // The burn crosses the threshold; its group kicks the recharge job, which opens an order, audited.
    const burnRequestId = `burn-${randomUUID()}`;
    await admin.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 60n } }, requestId: randomUUID() }, { headers: { "x-request-id": burnRequestId } });
    const opened = async () => (await admin.admin.listAuditRecords({ pageSize: 100 })).auditRecords.filter((record) => record.action === "open_recharge" && record.target === `customer:${customerId}`);
    await vi.waitFor(async () => expect(await opened()).toHaveLength(1), { timeout: 10_000, interval: 20 });
    expect((await opened())[0].requestId).toBe("");
    const stored = await t.database.pool.query("select request_id from audit_log where action = 'open_recharge' and target = $1", [`customer:${customerId}`]);
    expect(stored.rows).toEqual([{ request_id: null }]);
  });
});

describe("ListAuditRecords by request id", () => {
  it("refuses a request id the server would never have kept with INVALID_ID", async () => {
    const error = await errorOf(admin.admin.listAuditRecords({ requestId: "has spaces" }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(errorInfoOf(error)?.reason).toBe("INVALID_ID");
  });

  it("finds nothing for an id no call had, and pages a call's records newest first", async () => {
    expect(await recordsOf(`never-${randomUUID()}`)).toEqual([]);
    const requestId = `batch-${randomUUID()}`;
    const customers = [fresh("cust"), fresh("cust"), fresh("cust")];
    for (const customerId of customers) await admin.admin.createCustomer({ customer: { customerId }, requestId: randomUUID() }, { headers: { "x-request-id": requestId } });
    const page = await admin.admin.listAuditRecords({ requestId, pageSize: 2 });
    expect(page.auditRecords.map((record) => record.target)).toEqual([`customer:${customers[2]}`, `customer:${customers[1]}`]);
    const next = await admin.admin.listAuditRecords({ requestId, pageSize: 2, pageToken: page.nextPageToken });
    expect(next.auditRecords.map((record) => record.target)).toEqual([`customer:${customers[0]}`]);
    expect(next.nextPageToken).toBe("");
  });
});
