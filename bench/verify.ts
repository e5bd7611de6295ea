// VerifyLedger on a large ledger: seeds a scratch database (DATABASE_URL's server, or an
// embedded PostgreSQL) with about 1,000,000 consistent ledger entries in set-based inserts
// (generate_series), through the real migrations and constraints, then times the
// verification of every balance, lot and reservation against them, and of one customer.
//   npx tsx bench/verify.ts [--customers 50000] [--runs 3]
import pg from "pg";
import { limits } from "../server/src/limits.js";
import { verifyLedger } from "../server/src/service/verify-ledger.js";
import { createPool, endPool } from "../server/src/store/database.js";
import { migrate } from "../server/src/store/migrations.js";
import { scratchDatabase } from "../test-support/scratch-database.js";

const option = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? Number(process.argv[index + 1]) : fallback;
};
const customers = option("customers", 50_000);
const runs = option("runs", 3);
/** committedPerCustomer reservations committed (hold, burn, release each) per customer. */
const committedPerCustomer = 4;

// Per customer, 20 entries: lot A (1,000, never expires) and lot B (500, expired: 100
// burned, 400 expired); 4 reservations of 50 on A, each committed at 40 (hold, burn,
// release); 1 open reservation holding 30 on A; 3 burns of 10 on A. Totals: granted
// 1,500, held 30, burned 290, expired 400; A remaining 810 (30 held); B remaining 0.
const seed = [
  `insert into credit_types (credit_type_id, display_name, scale) values ('credits', 'Credits', 0)`,
  `insert into customers (customer_id) select 'c' || i from generate_series(1, $1) i`,
  `insert into balances (customer_id, credit_type_id, granted, held, burned, expired)
   select 'c' || i, 'credits', 1500, 30, 290, 400 from generate_series(1, $1) i`,
  `insert into grants (customer_id, grant_id, credit_type_id, source, amount, remaining, held, expired, effective_at, expires_at, reason_code, request_id, actor)
   select 'c' || i, md5('a' || i)::uuid, 'credits', 'purchase', 1000, 810, 30, 0, now() - interval '30 days', null, 'bench', 'ga' || i, 'bench'
   from generate_series(1, $1) i
   union all
   select 'c' || i, md5('b' || i)::uuid, 'credits', 'promotion', 500, 0, 0, 400, now() - interval '30 days', now() - interval '1 day', 'bench', 'gb' || i, 'bench'
   from generate_series(1, $1) i`,
  `insert into reservations (customer_id, reservation_id, credit_type_id, amount, holds, status, committed_amount, expires_at, resolved_at, request_id, actor)
   select 'c' || i, md5('r' || i || '-' || k)::uuid, 'credits', case when k = 0 then 30 else 50 end,
     jsonb_build_array(jsonb_build_object('grantId', md5('a' || i)::uuid::text, 'amount', case when k = 0 then '30' else '50' end)),
     case when k = 0 then 'held' else 'committed' end, case when k = 0 then 0 else 40 end,
     now() + interval '1 hour', case when k = 0 then null else now() - interval '2 days' end, 'r' || i || '-' || k, 'bench'
   from generate_series(1, $1) i, generate_series(0, ${committedPerCustomer}) k`,
  `insert into ledger_entries (customer_id, credit_type_id, kind, amount, grant_id, reservation_id, actor, effective_at)
   select 'c' || i, 'credits', e.kind, e.amount, md5(e.lot || i)::uuid,
     case when e.reservation is null then null else md5('r' || i || '-' || e.reservation)::uuid end, 'bench', now() - e.age
   from generate_series(1, $1) i
   cross join lateral (values
     ('grant', 1000::bigint, 'a', null::int, interval '30 days'),
     ('grant', 500, 'b', null, interval '30 days'),
     ('burn', 100, 'b', null, interval '20 days'),
     ('expire', 400, 'b', null, interval '1 day'),
     ('hold', 30, 'a', 0, interval '1 minute'),
     ('burn', 10, 'a', null, interval '3 hours'),
     ('burn', 10, 'a', null, interval '2 hours'),
     ('burn', 10, 'a', null, interval '1 hour')
   ) as e(kind, amount, lot, reservation, age)
   union all
   select 'c' || i, 'credits', e.kind, e.amount, md5('a' || i)::uuid, md5('r' || i || '-' || k)::uuid, 'bench', now() - interval '2 days'
   from generate_series(1, $1) i, generate_series(1, ${committedPerCustomer}) k
   cross join lateral (values ('hold', 50::bigint), ('burn', 40), ('release', 50)) as e(kind, amount)`,
];

const db = await scratchDatabase("burndown_bench_verify");
const pool = createPool(db.url, 2);
pool.on("error", () => {});
// Seeding a million rows outlasts the server's statement timeout: a plain connection seeds.
const seeder = new pg.Client({ connectionString: db.url });
try {
  await migrate(pool);
  await seeder.connect();
  const seedStartMs = performance.now();
  for (const sql of seed) await seeder.query(sql, sql.includes("$1") ? [customers] : []);
  await seeder.query("analyze");
  const seededMs = performance.now() - seedStartMs;
  const entries = (await pool.query("select count(*)::int as n from ledger_entries")).rows[0].n as number;
  console.log(`seeded ${customers} customers, ${entries} entries in ${(seededMs / 1000).toFixed(1)} s`);
  for (let run = 1; run <= runs; run++) {
    const result = await verifyLedger(pool, { customerId: "" });
    const { counts } = result;
    console.log(
      `verify all, run ${run}: ${(result.durationMs / 1000).toFixed(2)} s for ${counts.balances} balances, ${counts.lots} lots, ` +
        `${counts.reservations} reservations, ${counts.entries} entries; ${counts.differences} differences`,
    );
    if (counts.differences !== 0n) throw new Error(`the seeded ledger should verify clean: ${JSON.stringify(result.differences.slice(0, 3))}`);
  }
  const one = await verifyLedger(pool, { customerId: `c${Math.ceil(customers / 2)}` });
  console.log(`verify one customer: ${one.durationMs.toFixed(1)} ms for ${one.counts.entries} entries`);
  // A corrupted projection is found in the large ledger too.
  await seeder.query("update grants set remaining = remaining - 1, held = held - 1 where customer_id = 'c7' and amount = 1000");
  const corrupted = await verifyLedger(pool, { customerId: "" });
  console.log(`after corrupting one lot: ${corrupted.counts.differences} differences (${corrupted.differences.map((d) => `${d.row} ${d.column}`).join(", ")})`);
  console.log(`(differences listed at most: ${limits.verifyDifferencesListedMax})`);
} finally {
  await seeder.end();
  await endPool(pool);
  await db.stop();
}
