// withTransaction reports success only when PostgreSQL committed. A statement that fails
// aborts the transaction even when the work catches its error; PostgreSQL then answers
// COMMIT with ROLLBACK, and that must be an error, never a quiet success (the batch
// groups plan items whose refusals may come from a failed statement).
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool, withTransaction } from "../src/store/database.js";
import { createTestDatabase, type TestDatabase } from "../../test-support/database.js";

let database: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool(database.url, 2);
  await database.pool.query("create table tx_probe (n int primary key)");
});
afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

describe("withTransaction", () => {
  it("throws when a caught statement failure made COMMIT roll back, and writes nothing", async () => {
    const failure = await withTransaction(pool, async (tx) => {
      await tx.query("insert into tx_probe values (1)");
      await tx.query("select 1 / 0").catch(() => undefined); // the work swallows the error; the transaction is aborted
      return "looks fine";
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/rolled back/);
    expect((await database.pool.query("select count(*)::int as n from tx_probe")).rows[0].n).toBe(0);
    // The connection is healthy and goes on.
    expect(await withTransaction(pool, async (tx) => (await tx.query("insert into tx_probe values (2) returning n")).rows[0].n)).toBe(2);
  });
});
