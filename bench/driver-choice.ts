// driver-choice compares the two PostgreSQL drivers on the ledger's hot-path shape:
// a transaction that locks a balance row, updates it and inserts an entry. Both run
// side by side in one process against the same database so the ratio survives noise.
// Run: npx tsx bench/driver-choice.ts  (DATABASE_URL defaults to the local test database)
import pg from "pg";
import postgres from "postgres";

const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const clientsCount = Number(process.env.CLIENTS ?? 16);
const durationMs = Number(process.env.DURATION_MS ?? 5000);
const rowsCount = 1000;

async function setup(): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  await sql`drop table if exists bench_driver_balance, bench_driver_entry`;
  await sql`create table bench_driver_balance (id int primary key, available bigint not null)`;
  await sql`create table bench_driver_entry (id bigserial primary key, balance_id int not null, amount bigint not null)`;
  await sql`insert into bench_driver_balance select g, 1000000000 from generate_series(1, ${rowsCount}) g`;
  await sql.end();
}

async function runPg(): Promise<number> {
  const pool = new pg.Pool({ connectionString: url, max: clientsCount });
  let done = 0;
  const deadline = Date.now() + durationMs;
  await Promise.all(Array.from({ length: clientsCount }, async () => {
    while (Date.now() < deadline) {
      const id = 1 + Math.floor(Math.random() * rowsCount);
      const client = await pool.connect();
      try {
        await client.query("begin");
        await client.query({ name: "u", text: "update bench_driver_balance set available = available - $2 where id = $1 and available >= $2 returning available", values: [id, "1"] });
        await client.query({ name: "i", text: "insert into bench_driver_entry (balance_id, amount) values ($1, $2)", values: [id, "1"] });
        await client.query("commit");
        done++;
      } finally {
        client.release();
      }
    }
  }));
  await pool.end();
  return done / (durationMs / 1000);
}

async function runPostgres(): Promise<number> {
  const sql = postgres(url, { max: clientsCount, prepare: true });
  let done = 0;
  const deadline = Date.now() + durationMs;
  await Promise.all(Array.from({ length: clientsCount }, async () => {
    while (Date.now() < deadline) {
      const id = 1 + Math.floor(Math.random() * rowsCount);
      await sql.begin(async (tx) => {
        await tx`update bench_driver_balance set available = available - ${"1"} where id = ${id} and available >= ${"1"} returning available`;
        await tx`insert into bench_driver_entry (balance_id, amount) values (${id}, ${"1"})`;
      });
      done++;
    }
  }));
  await sql.end();
  return done / (durationMs / 1000);
}

await setup();
const results: Record<string, number[]> = { pg: [], postgres: [] };
for (let round = 0; round < 3; round++) {
  results.pg.push(await runPg());
  results.postgres.push(await runPostgres());
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pgTps = median(results.pg);
const postgresTps = median(results.postgres);
console.log(JSON.stringify({ clientsCount, durationMs, pg: results.pg.map(Math.round), postgres: results.postgres.map(Math.round) }));
const cleanup = postgres(url, { max: 1, onnotice: () => {} });
await cleanup`drop table bench_driver_balance, bench_driver_entry`;
await cleanup.end();
console.log(`pg ${Math.round(pgTps)} tx/s, postgres ${Math.round(postgresTps)} tx/s, postgres/pg = ${(postgresTps / pgTps).toFixed(2)}`);
