// A connection that dies while its transaction is between two statements (the database
// restarted, a backend killed) must fail that transaction with Unavailable and leave the
// process running, and the pool must go on with fresh connections. Found by the
// database-crash test, whose server process once died of exactly this.
import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LedgerError } from "../src/errors.js";
import { createPool, withTransaction } from "../src/store/database.js";
import { createTestDatabase, type TestDatabase } from "../../test-support/database.js";

let database: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool(database.url, 2);
});
afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

describe("a connection lost mid-transaction", () => {
  it("fails the transaction with Unavailable, does not crash the process, and the pool recovers", async () => {
    const failure = await withTransaction(pool, async (tx) => {
      const pid = (await tx.query("select pg_backend_pid() as pid")).rows[0].pid as number;
      // Another session kills this one's backend while the transaction holds it between statements.
      await database.pool.query("select pg_terminate_backend($1)", [pid]);
      await sleep(300); // the FATAL arrives on the idle, checked-out client: its "error" event fires now
      await tx.query("select 1");
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(LedgerError);
    expect(failure).toMatchObject({ kind: "unavailable", reason: "DATABASE_UNAVAILABLE" });
    const again = await withTransaction(pool, async (tx) => (await tx.query("select 41 + 1 as answer")).rows[0].answer as number);
    expect(again).toBe(42);
  });
});
