// ReserveBatch and CommitBatch: each item is answered as its unary call would be, a failing
// item never fails its neighbours, a request id repeated inside a batch (or shared with a
// unary call) applies once, and two replicas taking batches for one hot customer never
// overspend and resolve each reservation once.
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { type BatchItemError, errorInfoOf, GrantSource, ReservationStatus } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { groupStats } from "../src/service/write-group.js";
import { invariantViolations } from "../../test-support/invariants.js";
import { type ReplicaProcesses, startReplicaProcesses } from "../../test-support/replicas.js";
import { databaseSnapshot, errorOf } from "../../test-support/snapshot.js";
import { type Clients, startTestServer, type TestServer } from "../../test-support/server.js";

const creditTypeId = "api_credits";
const credits = (amount: bigint) => ({ case: "credits" as const, value: { creditTypeId, amount } });

/** itemOf reads one batch result as [code, reason] for an error, or "ok". */
function itemOf(result: { result: { case: "response"; value: unknown } | { case: "error"; value: BatchItemError } | { case: undefined } }): "ok" | [Code, string] {
  if (result.result.case === "response") return "ok";
  if (result.result.case === "error") return [result.result.value.code as Code, result.result.value.reason];
  throw new Error("a result with neither a response nor an error");
}

describe("one server", () => {
  let t: TestServer;
  let ledger: Clients["ledger"];

  beforeAll(async () => {
    t = await startTestServer();
    await t.clients(t.adminToken).admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 0 }, requestId: randomUUID() });
    ledger = t.clients(await t.createKey("service")).ledger;
  });
  afterAll(() => t?.close());

  async function customer(amount: bigint): Promise<string> {
    const customerId = `cust-${randomUUID()}`;
    await ledger.grant({ customerId, creditTypeId, amount, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
    return customerId;
  }
  const balanceOf = async (customerId: string) => (await ledger.getBalance({ customerId, creditTypeId })).balances[0];

  it("ReserveBatch answers each item as Reserve would: failures change nothing and do not fail their neighbours", async () => {
    const a = await customer(100n);
    const b = await customer(10n);
    const res = await ledger.reserveBatch({
      requests: [
        { customerId: a, cost: credits(30n), requestId: randomUUID() },
        { customerId: a, cost: credits(80n), requestId: randomUUID() }, // 70 left: refused
        { customerId: a, cost: credits(40n), requestId: randomUUID() }, // after the refusal, in order: fits
        { customerId: b, cost: credits(20n), requestId: randomUUID() }, // refused
        { customerId: "", cost: credits(1n), requestId: randomUUID() }, // malformed
        { customerId: a, cost: { case: "credits", value: { creditTypeId: "no_such_type", amount: 1n } }, requestId: randomUUID() },
        { customerId: a, cost: credits(1n), requestId: "" }, // no request id
        { customerId: a, cost: credits(-5n), requestId: randomUUID() },
      ],
    });
    // Each failure is what the unary Reserve of the same request answers.
    const unary = async (request: Parameters<typeof ledger.reserve>[0]): Promise<[Code, string]> => {
      const error = await errorOf(ledger.reserve(request));
      return [error.code, errorInfoOf(error)?.reason ?? ""];
    };
    const b2 = await customer(10n);
    expect(res.results.map(itemOf)).toEqual([
      "ok",
      [Code.FailedPrecondition, "INSUFFICIENT_CREDITS"],
      "ok",
      await unary({ customerId: b2, cost: credits(20n), requestId: randomUUID() }),
      await unary({ customerId: "", cost: credits(1n), requestId: randomUUID() }),
      await unary({ customerId: a, cost: { case: "credits", value: { creditTypeId: "no_such_type", amount: 1n } }, requestId: randomUUID() }),
      await unary({ customerId: a, cost: credits(1n), requestId: "" }),
      await unary({ customerId: a, cost: credits(-5n), requestId: randomUUID() }),
    ]);
    const insufficient = res.results[1].result;
    expect(insufficient.case === "error" && insufficient.value.metadata).toMatchObject({ available: "70", required: "80" });
    expect(await balanceOf(a)).toMatchObject({ available: 30n, held: 70n });
    expect(await balanceOf(b)).toMatchObject({ available: 10n, held: 0n });
  });

  it("a request id repeated inside a batch applies once: the same request replays, a different one is REQUEST_ID_REUSED", async () => {
    const a = await customer(100n);
    const id = randomUUID();
    const res = await ledger.reserveBatch({
      requests: [
        { customerId: a, cost: credits(10n), requestId: id },
        { customerId: a, cost: credits(10n), requestId: id },
        { customerId: a, cost: credits(20n), requestId: id },
      ],
    });
    expect(res.results.map(itemOf)).toEqual(["ok", "ok", [Code.FailedPrecondition, "REQUEST_ID_REUSED"]]);
    const [first, second] = res.results.map((r) => (r.result.case === "response" ? r.result.value.reservation?.reservationId : undefined));
    expect(second).toBe(first);
    expect(await balanceOf(a)).toMatchObject({ held: 10n });
    // The unary method shares the record: it replays the batch item, and a batch replays a unary call.
    expect((await ledger.reserve({ customerId: a, cost: credits(10n), requestId: id })).reservation?.reservationId).toBe(first);
    const unaryId = randomUUID();
    const unary = await ledger.reserve({ customerId: a, cost: credits(5n), requestId: unaryId });
    const replay = await ledger.reserveBatch({ requests: [{ customerId: a, cost: credits(5n), requestId: unaryId }] });
    expect(replay.results[0].result.case === "response" && replay.results[0].result.value.reservation?.reservationId).toBe(unary.reservation?.reservationId);
    expect(await balanceOf(a)).toMatchObject({ held: 15n });
  });

  it("one request id on two customers in one batch (run side by side) applies to one of them only", async () => {
    const a = await customer(100n);
    const b = await customer(100n);
    const id = randomUUID();
    const res = await ledger.reserveBatch({ requests: [{ customerId: a, cost: credits(7n), requestId: id }, { customerId: b, cost: credits(7n), requestId: id }] });
    expect(res.results.map(itemOf).sort()).toEqual(["ok", [Code.FailedPrecondition, "REQUEST_ID_REUSED"]].sort());
    expect((await balanceOf(a)).held + (await balanceOf(b)).held).toBe(7n);
  });

  it("CommitBatch answers each item as Commit would", async () => {
    const a = await customer(100n);
    const held = await ledger.reserveBatch({ requests: [30n, 40n, 20n].map((amount) => ({ customerId: a, cost: credits(amount), requestId: randomUUID() })) });
    const [r1, r2, r3] = held.results.map((r) => (r.result.case === "response" ? r.result.value.reservation!.reservationId : ""));
    const commitId = randomUUID();
    const fellBack = groupStats.fellBack;
    const res = await ledger.commitBatch({
      requests: [
        { reservationId: r1, amount: 25n, requestId: commitId },
        { reservationId: r2, amount: 80n, requestId: randomUUID() }, // 40 more than held, with 15 available
        { reservationId: r1, amount: 25n, requestId: randomUUID() }, // already committed
        { reservationId: r1, amount: 25n, requestId: commitId }, // a replay
        { reservationId: r3, amount: 20n, requestId: randomUUID() },
        { reservationId: randomUUID(), amount: 1n, requestId: randomUUID() },
        { reservationId: "not-a-uuid", amount: 1n, requestId: randomUUID() },
      ],
    });
    const unary = async (request: Parameters<typeof ledger.commit>[0]): Promise<[Code, string]> => {
      const error = await errorOf(ledger.commit(request));
      return [error.code, errorInfoOf(error)?.reason ?? ""];
    };
    expect(res.results.map(itemOf)).toEqual([
      "ok",
      await unary({ reservationId: r2, amount: 80n, requestId: randomUUID() }),
      await unary({ reservationId: r1, amount: 25n, requestId: randomUUID() }),
      "ok",
      "ok",
      await unary({ reservationId: randomUUID(), amount: 1n, requestId: randomUUID() }),
      await unary({ reservationId: "not-a-uuid", amount: 1n, requestId: randomUUID() }),
    ]);
    // The refusals were answered inside the group; it did not have to fall back.
    expect(groupStats.fellBack).toBe(fellBack);
    const committed = res.results[0].result;
    expect(committed.case === "response" && committed.value.reservation).toMatchObject({ status: ReservationStatus.COMMITTED, committedAmount: 25n });
    expect(await balanceOf(a)).toMatchObject({ burned: 45n, held: 40n, available: 15n });
  });

  it("an item whose amount would leave int64 fails alone with AMOUNT_OUT_OF_RANGE, in ReserveBatch and CommitBatch", async () => {
    const admin = t.clients(t.adminToken).admin;
    await admin.createFeature({ feature: { featureKey: "huge", displayName: "Huge", creditTypeId, burnRate: 2n ** 62n }, requestId: randomUUID() });
    const a = await customer(100n);
    const reserved = await ledger.reserveBatch({
      requests: [
        { customerId: a, cost: credits(10n), requestId: randomUUID() },
        { customerId: a, cost: { case: "usage", value: { featureKey: "huge", quantity: 4n } }, requestId: randomUUID() }, // 2^64 credits
        { customerId: a, cost: credits(10n), requestId: randomUUID() },
      ],
    });
    expect(reserved.results.map(itemOf)).toEqual(["ok", [Code.InvalidArgument, "AMOUNT_OUT_OF_RANGE"], "ok"]);
    const [r1, , r2] = reserved.results.map((r) => (r.result.case === "response" ? r.result.value.reservation!.reservationId : ""));

    // With an overdraft limit of int64, a commit's excess is covered, but burned would pass int64.
    const int64Max = 2n ** 63n - 1n;
    await admin.setOverdraftLimit({ customerId: a, limit: { creditTypeId, amount: int64Max }, requestId: randomUUID(), reason: "test" });
    await ledger.burn({ customerId: a, cost: credits(5n), requestId: randomUUID() });
    const committed = await ledger.commitBatch({
      requests: [
        { reservationId: r1, amount: int64Max - 1n, requestId: randomUUID() },
        { reservationId: r2, amount: 7n, requestId: randomUUID() },
      ],
    });
    expect(committed.results.map(itemOf)).toEqual([[Code.InvalidArgument, "AMOUNT_OUT_OF_RANGE"], "ok"]);
    expect(await balanceOf(a)).toMatchObject({ burned: 12n, held: 10n, available: 78n });
  });

  it("group-commits one customer's items in one transaction, and commits each of its reservations in one more", async () => {
    const a = await customer(1_000n);
    const before = { ...groupStats };
    const held = await ledger.reserveBatch({ requests: Array.from({ length: 10 }, (_, i) => ({ customerId: a, cost: credits(BigInt(10 + i)), requestId: randomUUID() })) });
    expect(held.results.map(itemOf)).toEqual(Array(10).fill("ok"));
    const ids = held.results.map((r) => (r.result.case === "response" ? r.result.value.reservation!.reservationId : ""));
    const committed = await ledger.commitBatch({ requests: ids.map((reservationId, i) => ({ reservationId, amount: BigInt(i), requestId: randomUUID() })) });
    expect(committed.results.map(itemOf)).toEqual(Array(10).fill("ok"));
    expect(groupStats).toEqual({ committed: before.committed + 2, fellBack: before.fellBack });
    // Each answer shows the balance right after its own item, in request order.
    const helds = held.results.map((r) => (r.result.case === "response" ? r.result.value.balance!.held : -1n));
    expect(helds).toEqual(Array.from({ length: 10 }, (_, i) => BigInt(Array.from({ length: i + 1 }, (_, j) => 10 + j).reduce((x, y) => x + y, 0))));
    expect(await balanceOf(a)).toMatchObject({ held: 0n, burned: 45n, available: 955n });
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });

  it("a group whose transaction fails writes nothing and runs each item on its own: every item answered once", async () => {
    const a = await customer(1_000n);
    // A real fault, in PostgreSQL: the second reservation written for this customer within
    // one transaction fails, so a group of two or more aborts and single calls succeed.
    await t.database.pool.query(`
      create or replace function test_fail_second_hold() returns trigger language plpgsql as $$
      begin
        if new.customer_id = '${a}' then
          if current_setting('test.holds', true) = '1' then raise exception 'second hold in one transaction'; end if;
          perform set_config('test.holds', '1', true);
        end if;
        return new;
      end $$;
      create trigger test_fail_second_hold before insert on reservations for each row execute function test_fail_second_hold();`);
    try {
      const before = { ...groupStats };
      const requests = Array.from({ length: 5 }, (_, i) => ({ customerId: a, cost: credits(BigInt(100 * (i + 1))), requestId: randomUUID() }));
      const res = await ledger.reserveBatch({ requests });
      expect(groupStats).toEqual({ committed: before.committed, fellBack: before.fellBack + 1 });
      // 100 + 200 + 300 + 400 fill the 1,000; then 500 does not fit: the answers one transaction gives.
      expect(res.results.map(itemOf)).toEqual(["ok", "ok", "ok", "ok", [Code.FailedPrecondition, "INSUFFICIENT_CREDITS"]]);
      expect(await balanceOf(a)).toMatchObject({ held: 1_000n, available: 0n });
      const replay = await ledger.reserveBatch({ requests: requests.slice(0, 4) });
      expect(replay.results.map((r) => (r.result.case === "response" ? r.result.value.reservation?.reservationId : null))).toEqual(
        res.results.slice(0, 4).map((r) => (r.result.case === "response" ? r.result.value.reservation?.reservationId : null)),
      );
      expect(await balanceOf(a)).toMatchObject({ held: 1_000n });
    } finally {
      await t.database.pool.query("drop trigger test_fail_second_hold on reservations; drop function test_fail_second_hold()");
    }
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });

  it("refuses an empty batch and one over 1,000 items with INVALID_BATCH_SIZE, changing nothing", async () => {
    const a = await customer(10_000n);
    const before = await databaseSnapshot(t.database.pool);
    const tooMany = Array.from({ length: 1_001 }, () => ({ customerId: a, cost: credits(1n), requestId: randomUUID() }));
    for (const call of [() => ledger.reserveBatch({ requests: [] }), () => ledger.reserveBatch({ requests: tooMany }), () => ledger.commitBatch({ requests: [] })]) {
      const error = await errorOf(call());
      expect([error.code, errorInfoOf(error)?.reason]).toEqual([Code.InvalidArgument, "INVALID_BATCH_SIZE"]);
    }
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
  });
});

describe("two replicas, one hot customer, batches", () => {
  const loopsPerReplica = 6;
  const roundsPerLoop = 4;
  const itemsPerBatch = 15;
  const initialCredits = 4_000n;
  let r: ReplicaProcesses;

  beforeAll(async () => {
    r = await startReplicaProcesses({ jobIntervalMs: 50 });
  }, 120_000);
  afterAll(() => r?.stop());

  it("concurrent ReserveBatch and racing CommitBatch calls never overspend and resolve each reservation once", async () => {
    await r.admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 0 }, requestId: randomUUID() });
    const replicas = r.ledgers;
    await replicas[0].grant({ customerId: "hot", creditTypeId, amount: initialCredits, source: GrantSource.PURCHASE, reasonCode: "seed", requestId: randomUUID() });

    let committed = 0n;
    let heldCount = 0;
    let refused = 0;
    const wins = new Map<string, number>();
    await Promise.all(
      Array.from({ length: loopsPerReplica * 2 }, async (_, loop) => {
        const home = replicas[loop % 2];
        const away = replicas[(loop + 1) % 2];
        for (let round = 0; round < roundsPerLoop; round++) {
          const amounts = Array.from({ length: itemsPerBatch }, (_, i) => BigInt(1 + ((loop * 31 + round * 7 + i * 13) % 60)));
          const reserved = await home.reserveBatch({ requests: amounts.map((amount) => ({ customerId: "hot", cost: credits(amount), requestId: randomUUID() })) });
          const holds: { reservationId: string; amount: bigint }[] = [];
          for (const result of reserved.results) {
            if (result.result.case === "response") holds.push({ reservationId: result.result.value.reservation!.reservationId, amount: result.result.value.reservation!.amount });
            else {
              expect(result.result.value?.reason).toBe("INSUFFICIENT_CREDITS");
              refused++;
            }
          }
          heldCount += holds.length;
          if (holds.length === 0) continue;
          // The same reservations committed on both replicas at once, with different request
          // ids and amounts: exactly one commit of each may win.
          const asks = (shift: bigint) => holds.map((hold) => ({ reservationId: hold.reservationId, amount: hold.amount - (shift % hold.amount), requestId: randomUUID() }));
          const [mine, theirs] = [asks(0n), asks(1n)];
          const [homeRes, awayRes] = await Promise.all([home.commitBatch({ requests: mine }), away.commitBatch({ requests: theirs })]);
          holds.forEach((hold, i) => {
            for (const [res, ask] of [[homeRes, mine[i]], [awayRes, theirs[i]]] as const) {
              const result = res.results[i].result;
              if (result.case === "response") {
                wins.set(hold.reservationId, (wins.get(hold.reservationId) ?? 0) + 1);
                committed += ask.amount;
              } else {
                expect(result.value?.reason).toBe("RESERVATION_NOT_HELD");
              }
            }
          });
        }
      }),
    );

    expect([...wins.values()].filter((count) => count !== 1)).toEqual([]);
    expect(wins.size).toBe(heldCount);
    const balance = (await replicas[1].getBalance({ customerId: "hot", creditTypeId })).balances[0];
    expect(balance).toMatchObject({ burned: committed, held: 0n, available: initialCredits - committed });
    expect(balance.available >= 0n).toBe(true);
    // Demand (about 21,000 in holds) exceeds supply, so the limit was contended.
    expect(refused).toBeGreaterThan(0);
    expect(await invariantViolations(r.database.pool)).toEqual([]);
  }, 120_000);
});

describe("two replicas, one write lane each, many overlapping customers", () => {
  const customers = Array.from({ length: 12 }, (_, i) => `overlap-${String(i).padStart(2, "0")}`);
  const loopsPerReplica = 4;
  const roundsPerLoop = 5;
  const initialCredits = 1_000n;
  let r: ReplicaProcesses;

  beforeAll(async () => {
    // One lane per replica: each replica's groups hold items of many customers, and the two
    // replicas' groups lock overlapping sets of balances at the same time.
    r = await startReplicaProcesses({ jobIntervalMs: 50, env: { BURNDOWN_WRITE_LANES: "1" } });
  }, 120_000);
  afterAll(() => r?.stop());

  const deadlocks = async () => BigInt((await r.database.pool.query("select deadlocks::text from pg_stat_database where datname = current_database()")).rows[0].deadlocks);

  it("groups that span customers lock in one global order: no deadlock, no overspend, each reservation resolved once", async () => {
    await r.admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 0 }, requestId: randomUUID() });
    const replicas = r.ledgers;
    for (const customerId of customers) {
      await replicas[0].grant({ customerId, creditTypeId, amount: initialCredits, source: GrantSource.PURCHASE, reasonCode: "seed", requestId: randomUUID() });
    }
    const deadlocksBefore = await deadlocks();
    const committed = new Map<string, bigint>(customers.map((c) => [c, 0n]));
    const wins = new Map<string, number>();
    let reservations = 0;
    await Promise.all(
      Array.from({ length: loopsPerReplica * 2 }, async (_, loop) => {
        const home = replicas[loop % 2];
        const away = replicas[(loop + 1) % 2];
        for (let round = 0; round < roundsPerLoop; round++) {
          // Replica 0's batches name the customers in ascending order, replica 1's in descending.
          const order = loop % 2 === 0 ? customers : [...customers].reverse();
          const requests = order.map((customerId, i) => ({ customerId, cost: credits(BigInt(1 + ((loop * 17 + round * 5 + i * 3) % 25))), requestId: randomUUID() }));
          const [batch, ...unary] = await Promise.all([
            home.reserveBatch({ requests: requests.slice(0, 8) }),
            ...requests.slice(8).map((request) => home.reserve(request).then((res) => ({ result: { case: "response" as const, value: res } }), (error: unknown) => ({ error }))),
          ]);
          const holds: { reservationId: string; customerId: string; amount: bigint }[] = [];
          for (const result of [...batch.results, ...unary]) {
            if ("error" in result) expect(errorInfoOf(result.error)?.reason).toBe("INSUFFICIENT_CREDITS");
            else if (result.result.case === "response") {
              const reservation = result.result.value.reservation!;
              holds.push({ reservationId: reservation.reservationId, customerId: reservation.customerId, amount: reservation.amount });
            } else expect(result.result.value?.reason).toBe("INSUFFICIENT_CREDITS");
          }
          reservations += holds.length;
          // Every reservation committed on both replicas at once: one commit of each wins.
          const asks = (shift: bigint) => holds.map((hold) => ({ reservationId: hold.reservationId, amount: hold.amount - (shift % hold.amount), requestId: randomUUID() }));
          const [mine, theirs] = [asks(0n), asks(1n)];
          const [homeRes, awayRes] = await Promise.all([home.commitBatch({ requests: mine }), away.commitBatch({ requests: [...theirs].reverse() })]);
          const theirResults = [...awayRes.results].reverse();
          holds.forEach((hold, i) => {
            for (const [result, ask] of [[homeRes.results[i].result, mine[i]], [theirResults[i].result, theirs[i]]] as const) {
              if (result.case === "response") {
                wins.set(hold.reservationId, (wins.get(hold.reservationId) ?? 0) + 1);
                committed.set(hold.customerId, committed.get(hold.customerId)! + ask.amount);
              } else {
                expect(result.value?.reason).toBe("RESERVATION_NOT_HELD");
              }
            }
          });
        }
      }),
    );
    expect(await deadlocks()).toBe(deadlocksBefore);
    expect([...wins.values()].filter((count) => count !== 1)).toEqual([]);
    expect(wins.size).toBe(reservations);
    for (const customerId of customers) {
      const balance = (await replicas[1].getBalance({ customerId, creditTypeId })).balances[0];
      expect(balance, customerId).toMatchObject({ burned: committed.get(customerId), held: 0n, available: initialCredits - committed.get(customerId)! });
    }
    // Groups did span customers on both replicas: transactions whose entries touch several customers.
    const spanning = await r.database.pool.query(
      "select count(*)::int as n from (select xmin::text from ledger_entries where kind = 'hold' group by 1 having count(distinct customer_id) > 1) multi",
    );
    expect(spanning.rows[0].n).toBeGreaterThan(1);
    expect(await invariantViolations(r.database.pool)).toEqual([]);
  }, 120_000);

  it("two groups naming the same customers in opposite orders, both stopped by a lock in the middle, finish without a deadlock", async () => {
    const replicas = r.ledgers;
    const deadlocksBefore = await deadlocks();
    const waiting = async () =>
      Number((await r.database.pool.query("select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'")).rows[0].count);
    const until = async (count: number) => {
      for (let i = 0; i < 200 && (await waiting()) < count; i++) await new Promise((resolve) => setTimeout(resolve, 25));
      expect(await waiting()).toBe(count);
    };
    const batch = (order: string[]) => ({ requests: order.map((customerId) => ({ customerId, cost: credits(1n), requestId: randomUUID() })) });
    // A transaction of our own holds one balance in the middle of the key order.
    const blocker = await r.database.pool.connect();
    try {
      await blocker.query("begin");
      await blocker.query("select 1 from balances where customer_id = $1 for update", [customers[5]]);
      // Locking in key order, the first group takes the balances before the blocked one and
      // waits; the second waits on the first balance. Locking in request order instead, the
      // second would take the last six and the two would deadlock once the blocker ends.
      const first = replicas[0].reserveBatch(batch(customers));
      await until(1);
      const second = replicas[1].reserveBatch(batch([...customers].reverse()));
      await until(2);
      await blocker.query("commit");
      const results = [...(await first).results, ...(await second).results];
      expect(results.map((result) => result.result.case)).toEqual(Array(customers.length * 2).fill("response"));
    } finally {
      blocker.release();
    }
    expect(await deadlocks()).toBe(deadlocksBefore);
    expect(await invariantViolations(r.database.pool)).toEqual([]);
  }, 60_000);
});
