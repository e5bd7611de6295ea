// Group commit's own guarantees, on a real server and database: a group never spans two
// customer-hash partitions, an op of another partition is handed to its own, groups are
// bounded in size, and concurrent calls of different customers do share transactions.
// Which transaction wrote a row is read from PostgreSQL itself (xmin).
import { randomUUID } from "node:crypto";
import { errorInfoOf, GrantSource } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { limits } from "../src/limits.js";
import { customerHash, customerHashOfReservation, reservationIdFor } from "../src/service/customer-hash.js";
import { reserveOp } from "../src/service/reserve.js";
import { groupTimings, runWriteGroup } from "../src/service/write-group.js";
import { GroupCommit } from "../src/service/group-commit.js";
import { invariantViolations } from "../../test-support/invariants.js";
import { type Clients, startTestServer, type TestServer } from "../../test-support/server.js";

const creditTypeId = "api_credits";
const credits = (amount: bigint) => ({ case: "credits" as const, value: { creditTypeId, amount } });

describe("reservation ids", () => {
  it("carry their customer's hash in a version 8 UUID, so a Commit finds its customer's lane", () => {
    for (const customerId of ["acme", "", "é-ü", randomUUID()]) {
      const id = reservationIdFor(customerId);
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(customerHashOfReservation(id)).toBe(customerHash(customerId));
    }
    expect(customerHashOfReservation(randomUUID())).toBeNull();
    expect(new Set(Array.from({ length: 100 }, () => reservationIdFor("acme"))).size).toBe(100);
  });

  it("lanes must be a positive multiple of partitions, so that a lane's customers share one partition", () => {
    const deps = { pool: undefined as never, now: () => new Date() };
    expect(() => new GroupCommit(deps, { lanes: 3, partitions: 2, groupWeightMax: 10 })).toThrow(/multiple/);
    expect(() => new GroupCommit(deps, { lanes: 0, partitions: 1, groupWeightMax: 10 })).toThrow(/multiple/);
    expect(new GroupCommit(deps, { lanes: 4, partitions: 2, groupWeightMax: 10 }).options.lanes).toBe(4);
  });
});

describe("two partitions, two lanes", () => {
  let t: TestServer;
  let ledger: Clients["ledger"];
  const partitions = 2;

  beforeAll(async () => {
    t = await startTestServer({ writes: { lanes: 2, partitions } });
    await t.clients(t.adminToken).admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 0 }, requestId: randomUUID() });
    ledger = t.clients(await t.createKey("service")).ledger;
  });
  afterAll(() => t?.close());

  /** customersIn makes n customer ids of one partition. */
  const customersIn = (partition: number, n: number): string[] => {
    const ids: string[] = [];
    while (ids.length < n) {
      const id = `part-${randomUUID()}`;
      if (customerHash(id) % partitions === partition) ids.push(id);
    }
    return ids;
  };

  it("no transaction writes entries of customers in two partitions, while transactions do span customers", async () => {
    const customers = [...customersIn(0, 6), ...customersIn(1, 6)];
    await Promise.all(customers.map((customerId) => ledger.grant({ customerId, creditTypeId, amount: 1_000n, source: GrantSource.PURCHASE, reasonCode: "seed", requestId: randomUUID() })));
    for (let round = 0; round < 5; round++) {
      const held = await ledger.reserveBatch({ requests: customers.map((customerId) => ({ customerId, cost: credits(5n), requestId: randomUUID() })) });
      const ids = held.results.map((r) => (r.result.case === "response" ? r.result.value.reservation!.reservationId : ""));
      await Promise.all([
        ledger.commitBatch({ requests: ids.map((reservationId) => ({ reservationId, amount: 3n, requestId: randomUUID() })) }),
        ...customers.map((customerId) => ledger.burn({ customerId, cost: credits(1n), requestId: randomUUID() })),
      ]);
    }
    const rows = (await t.database.pool.query("select xmin::text as tx, customer_id from ledger_entries")).rows as { tx: string; customer_id: string }[];
    const byTransaction = new Map<string, Set<string>>();
    for (const row of rows) byTransaction.set(row.tx, (byTransaction.get(row.tx) ?? new Set()).add(row.customer_id));
    const spanning = [...byTransaction.values()].filter((ids) => new Set([...ids].map((id) => customerHash(id) % partitions)).size > 1);
    expect(spanning).toEqual([]);
    expect([...byTransaction.values()].filter((ids) => ids.size > 1).length).toBeGreaterThan(0);
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });

  it("a group asked to run an op of another partition hands it back, naming the customer, and writes nothing for it", async () => {
    const [foreign] = customersIn(1, 1);
    await ledger.grant({ customerId: foreign, creditTypeId, amount: 100n, source: GrantSource.PURCHASE, reasonCode: "seed", requestId: randomUUID() });
    const caller = { keyId: "test", name: "test", role: "service" as const, grantLimit: 0n, requestId: null };
    const op = reserveOp(caller, { requestId: randomUUID(), method: "Reserve", payloadHash: Buffer.alloc(32) }, { customerId: foreign, cost: { kind: "credits", creditTypeId, amount: 10n }, ttlMs: 60_000 });
    const [outcome] = await runWriteGroup(t.server.deps, [op], { partition: { index: 0, count: partitions } });
    expect(outcome).toEqual({ deferred: true, customerId: foreign });
    expect((await ledger.getBalance({ customerId: foreign, creditTypeId })).balances[0]).toMatchObject({ held: 0n, available: 100n });
    // Through the lanes, the same op lands in its own partition's lane and applies.
    const result = await t.server.deps.writes.submit(op);
    expect(result.balance.held).toBe(10n);
  });

  it(`bounds a group to ${limits.groupWeightMax} items: more ops queued at once run in several transactions`, async () => {
    const [customerId] = customersIn(0, 1);
    await ledger.grant({ customerId, creditTypeId, amount: 10_000n, source: GrantSource.PURCHASE, reasonCode: "seed", requestId: randomUUID() });
    const caller = { keyId: "test", name: "test", role: "service" as const, grantLimit: 0n, requestId: null };
    const count = limits.groupWeightMax + 200;
    const ops = Array.from({ length: count }, () => reserveOp(caller, { requestId: randomUUID(), method: "Reserve", payloadHash: Buffer.alloc(32) }, { customerId, cost: { kind: "credits", creditTypeId, amount: 1n }, ttlMs: 60_000 }));
    const outcomes = await t.server.deps.writes.submitAll(ops);
    expect(outcomes.filter((outcome) => outcome.ok).length).toBe(count);
    const sizes = (await t.database.pool.query("select count(*)::int as n from reservations where customer_id = $1 group by xmin::text order by 1 desc", [customerId])).rows.map((row) => row.n as number);
    expect(sizes.length).toBeGreaterThan(1);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(limits.groupWeightMax);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(count);
  });
});

describe("a group that waited for a balance's lock", () => {
  let t: TestServer;
  let ledger: Clients["ledger"];

  beforeAll(async () => {
    t = await startTestServer();
    await t.clients(t.adminToken).admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 0 }, requestId: randomUUID() });
    ledger = t.clients(await t.createKey("service")).ledger;
  });
  afterAll(() => t?.close());

  it("decides on the balance as the transaction it waited for left it, not as its statement's snapshot saw it", async () => {
    const customerId = `waited-${randomUUID()}`;
    const granted = await ledger.grant({ customerId, creditTypeId, amount: 100n, source: GrantSource.PURCHASE, reasonCode: "seed", requestId: randomUUID() });
    const grantId = granted.lot!.grantId;
    const reloads = groupTimings.reloads;
    // Another writer (here by hand, as any writer does: lot, balance row and entry) holds the
    // balance's lock and burns 60 from the lot while a Reserve of 30 waits for it.
    const writer = await t.database.pool.connect();
    try {
      await writer.query("begin");
      await writer.query("select 1 from balances where customer_id = $1 for update", [customerId]);
      const reserved = ledger.reserve({ customerId, cost: credits(30n), requestId: randomUUID() }).then(
        () => "reserved",
        (error: unknown) => errorInfoOf(error)?.reason,
      );
      for (let i = 0; i < 200; i++) {
        const waiting = await t.database.pool.query("select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'");
        if (waiting.rows[0].n > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await writer.query("update grants set remaining = remaining - 60 where grant_id = $1", [grantId]);
      await writer.query("update balances set burned = burned + 60 where customer_id = $1", [customerId]);
      await writer.query(
        "insert into ledger_entries (customer_id, credit_type_id, kind, amount, grant_id, actor, effective_at) values ($1, $2, 'burn', 60, $3, 'test', now())",
        [customerId, creditTypeId, grantId],
      );
      await writer.query("commit");
      // The hold is drawn from the lot as the writer left it (40), not as the snapshot saw it (100).
      expect(await reserved).toBe("reserved");
    } finally {
      writer.release();
    }
    expect(groupTimings.reloads).toBe(reloads + 1);
    const balance = (await ledger.getBalance({ customerId, creditTypeId })).balances[0];
    expect(balance).toMatchObject({ available: 10n, held: 30n, burned: 60n });
    expect(balance.lots.map((lot) => [lot.remaining, lot.held])).toEqual([[40n, 30n]]);
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });
});
