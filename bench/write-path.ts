// The write path on its own, without RPC: callers in this process run Reserve + Commit
// pairs through the server's group commit (service/group-commit.ts) on a fresh database,
// beside the naive ledger's debits on the same database, in alternating windows so that
// both see the same machine. Prints pairs/s, the ratio, and where a group's time goes.
//   npx tsx bench/write-path.ts [--callers 64] [--customers 2000] [--lanes 4] [--seconds 5] [--rounds 2] [--hot] [--no-naive]
import { createHash, randomUUID } from "node:crypto";
import pg from "pg";
import { limits } from "../server/src/limits.js";
import { LocalFanout } from "../server/src/fanout.js";
import type { Caller, Deps, Idempotency } from "../server/src/service/context.js";
import { grantOp } from "../server/src/service/grant.js";
import { GroupCommit } from "../server/src/service/group-commit.js";
import { commit } from "../server/src/service/resolve-reservation.js";
import { reserve } from "../server/src/service/reserve.js";
import { groupTimings } from "../server/src/service/write-group.js";
import { createPool } from "../server/src/store/database.js";
import { migrate } from "../server/src/store/migrations.js";
import { benchDatabase } from "./bench-server.js";

const option = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? Number(process.argv[index + 1]) : fallback;
};
const callers = option("callers", 64);
const customersCount = option("customers", 2_000);
const lanes = option("lanes", limits.writeLanesDefault);
const windowMs = option("seconds", 5) * 1_000;
const rounds = option("rounds", 2);
const hot = process.argv.includes("--hot");
/** --no-naive: our write path alone (for profiling it). */
const naive = !process.argv.includes("--no-naive");


const idempotencyOf = (method: string): Idempotency => {
  const requestId = randomUUID();
  return { requestId, method, payloadHash: createHash("sha256").update(requestId).digest() };
};

const db = await benchDatabase();
const pool = createPool(db.url, limits.poolSizeMax);
try {
  await migrate(pool);
  await pool.query("insert into credit_types (credit_type_id, display_name, scale) values ('credits', 'Credits', 0)");
  await pool.query("insert into api_keys (key_id, name, role, secret_hash) values ('bench', 'bench', 'service', '\\x00')");
  const deps: Deps = {
    pool,
    now: () => new Date(),
    usage: { lateCutoffMs: limits.usageLateCutoffMsDefault, dedupRetentionMs: limits.usageDedupRetentionMsDefault },
    fanout: new LocalFanout(),
    grantReasonCodes: limits.grantReasonCodesDefault,
    writes: new GroupCommit({ pool, now: () => new Date() }, { lanes, partitions: 1, groupWeightMax: limits.groupWeightMax }),
  };
  const caller: Caller = { keyId: "bench", name: "bench", role: "service", grantLimit: 0n, requestId: null };
  const customers = Array.from({ length: customersCount }, (_, i) => `c-${i}`);
  const grants = customers.map((customerId) =>
    grantOp(caller, idempotencyOf("Grant"), {
      customerId, creditTypeId: "credits", amount: 1_000_000_000n, source: "purchase", reasonCode: "bench", note: "", priority: 0,
      effectiveAt: null, expiresAt: null, costBasisMicros: 0n, ticketUrl: "",
    }),
  );
  for (const outcome of await deps.writes.submitAll(grants)) if (!outcome.ok) throw outcome.error;
  await pool.query("create table bench_naive_balances (customer_id text primary key, available bigint not null)");
  await pool.query("create table bench_naive_entries (entry_id bigserial primary key, customer_id text not null, amount bigint not null, request_id uuid not null unique)");
  await pool.query("insert into bench_naive_balances select unnest($1::text[]), 1000000000", [customers]);
  const pick = () => (hot ? customers[0] : customers[Math.floor(Math.random() * customers.length)]);

  const cost = { kind: "credits" as const, creditTypeId: "credits", amount: 3n };
  const pair = async () => {
    const held = await reserve(deps, caller, idempotencyOf("Reserve"), { customerId: pick(), cost, ttlMs: 60_000 });
    await commit(deps, caller, idempotencyOf("Commit"), { reservationId: held.reservation.reservationId, amount: 2n });
  };
  // Some history before the statistics are taken, as in a database in use (see hot-path.ts).
  await Promise.all(Array.from({ length: callers }, async () => {
    for (let i = 0; i < 50; i++) await pair();
  }));
  await pool.query("vacuum analyze");
  const naivePool = createPool(db.url, limits.poolSizeMax);
  const debit = async () => {
    const client = await naivePool.connect();
    try {
      await client.query("begin");
      const customerId = pick();
      const { rows } = await client.query({ name: "n1", text: "select available from bench_naive_balances where customer_id = $1 for update", values: [customerId] });
      if (BigInt(rows[0].available) < 3n) throw new Error("insufficient");
      await client.query({ name: "n2", text: "update bench_naive_balances set available = available - 3 where customer_id = $1", values: [customerId] });
      await client.query({ name: "n3", text: "insert into bench_naive_entries (customer_id, amount, request_id) values ($1, 3, $2)", values: [customerId, randomUUID()] });
      await client.query("commit");
    } finally {
      client.release();
    }
  };
  const measure = async (work: () => Promise<void>): Promise<number> => {
    let done = 0;
    const endAt = performance.now() + windowMs;
    await Promise.all(Array.from({ length: callers }, async () => {
      while (performance.now() < endAt) {
        await work();
        done++;
      }
    }));
    return done / (windowMs / 1_000);
  };
  for (let round = 1; round <= rounds; round++) {
    const before = { ...groupTimings };
    const pairs = await measure(pair);
    const delta = Object.fromEntries(Object.entries(groupTimings).map(([k, v]) => [k, v - before[k as keyof typeof before]])) as typeof groupTimings;
    const debits = naive ? await measure(debit) : Number.NaN;
    const per = (ms: number) => (ms / delta.transactions).toFixed(2);
    console.log(
      `round ${round}: ${pairs.toFixed(0)} pairs/s, naive ${debits.toFixed(0)} debits/s, ratio ${(pairs / debits).toFixed(2)}x; ` +
        `${delta.transactions} groups of ${(delta.ops / delta.transactions).toFixed(1)} ops, ms per group: read ${per(delta.readMs)} create ${per(delta.createMs)} ` +
        `lock ${per(delta.lockMs)} load ${per(delta.loadMs)} plan ${per(delta.planMs)} write ${per(delta.writeMs)} commit ${per(delta.commitMs)} total ${per(delta.totalMs)}`,
    );
  }
  await naivePool.end();
} finally {
  await pool.end();
  await db.stop();
}
