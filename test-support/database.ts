// A fresh, migrated database per test file, copied from the run's template.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";
import { createPool } from "../server/src/store/database.js";

/** TestDatabase is a database of one's own, dropped by drop(). */
export interface TestDatabase {
  /** as the owner (tests' own inspection and setup). */
  url: string;
  pool: pg.Pool;
  /** as a login role with only the running server's privileges (privileges.ts): what servers use. */
  serverUrl: string;
  serverPool: pg.Pool;
  drop: () => Promise<void>;
}

/** databaseUrlFor points the admin URL at another database on the same server. */
export function databaseUrlFor(database: string): string {
  const parsed = new URL(inject("adminDatabaseUrl"));
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** adminQuery runs one statement as the run's administrator (create and drop databases). */
export async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: inject("adminDatabaseUrl") });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/** createTestDatabase copies the migrated template into a new database. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `burndown_test_${randomBytes(6).toString("hex")}`;
  await adminQuery(`create database ${name} template ${inject("templateDatabase")}`);
  const url = databaseUrlFor(name);
  const pool = createPool(url);
  const serverUrl = new URL(inject("serverDatabaseUrl"));
  serverUrl.pathname = `/${name}`;
  const serverPool = createPool(serverUrl.toString());
  return {
    url,
    pool,
    serverUrl: serverUrl.toString(),
    serverPool,
    drop: async () => {
      await Promise.all([pool.end(), serverPool.end()]);
      await adminQuery(`drop database if exists ${name} with (force)`);
    },
  };
}
