// The running server's database role: migrations run as the owner, the server as a member
// of burndown_app with only the privileges its statements need (store/privileges.ts). As
// that role the ledger cannot be rewritten: no UPDATE, DELETE or TRUNCATE of entries or
// audit records, no DDL, no DISABLE TRIGGER. Every in-process test server in this suite
// runs as such a role (test-support/server.ts), so a statement needing more fails a test.
import { randomBytes, randomUUID } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService, GrantSource, LedgerService } from "@burndown/sdk";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import { newApiKeyToken } from "../src/service/api-keys.js";
import { migrate } from "../src/store/migrations.js";
import { appPrivileges, appRole, checkPrivileges } from "../src/store/privileges.js";
import { adminQuery, createTestDatabase, databaseUrlFor, type TestDatabase } from "../../test-support/database.js";
import { bearer } from "../../test-support/bearer.js";
import { startServerProcess } from "../../test-support/server-process.js";

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.drop());

async function codeOf(pool: pg.Pool, sql: string): Promise<string> {
  try {
    await pool.query(sql);
    return "succeeded";
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

describe("the server's database role", () => {
  it("appPrivileges names every table of the schema, so a new table cannot be forgotten", async () => {
    const tables = await database.pool.query<{ tablename: string }>("select tablename from pg_tables where schemaname = current_schema() order by 1");
    expect(tables.rows.map((row) => row.tablename)).toEqual(Object.keys(appPrivileges).sort());
  });

  it("is what test servers connect as: not a superuser, not the owner, and unable to change ledger entries", async () => {
    const report = await checkPrivileges(database.serverPool);
    expect(report).toEqual({ user: "burndown_test_server", superuser: false, ownsTables: false, canChangeEntries: false });
    expect(await checkPrivileges(database.pool)).toMatchObject({ ownsTables: true, canChangeEntries: true });
  });

  it.each([
    "update ledger_entries set amount = 0",
    "delete from ledger_entries",
    "truncate ledger_entries",
    "alter table ledger_entries disable trigger all",
    "drop trigger ledger_entries_no_update_delete on ledger_entries",
    "drop table ledger_entries",
    "update audit_log set reason = 'rewritten'",
    "delete from audit_log",
    "update pricing_rates set credits = 0",
    "delete from shadow_entries",
    "truncate balances",
    "insert into schema_migrations (version, name) values (999, 'forged')",
    "alter table balances drop constraint balances_pkey",
    "set role postgres",
    `set role ${appRole}; set role postgres`,
  ])("refuses %s as the server's role (permission denied)", async (sql) => {
    expect(await codeOf(database.serverPool, sql)).toBe("42501");
  });

  it("loses any privilege granted beyond appPrivileges at the next migration run", async () => {
    await database.pool.query(`grant update, delete, truncate on ledger_entries to ${appRole}`);
    expect(await checkPrivileges(database.serverPool)).toMatchObject({ canChangeEntries: true });
    expect(await migrate(database.pool)).toEqual([]);
    expect(await checkPrivileges(database.serverPool)).toMatchObject({ canChangeEntries: false });
  });

  it("can run migrate when nothing is left to apply (a server given only its own role), changing nothing", async () => {
    expect(await migrate(database.serverPool)).toEqual([]);
  });
});

describe("the server process", () => {
  const created: string[] = [];
  const admin = adminQuery;
  afterAll(async () => {
    for (const name of created) await admin(`drop database if exists ${name} with (force)`);
  });

  it("migrates an empty database as the owner (BURNDOWN_MIGRATION_DATABASE_URL), then serves as the app role", async () => {
    const name = `burndown_test_${randomBytes(6).toString("hex")}`;
    await admin(`create database ${name}`);
    created.push(name);
    const serverUrl = new URL(inject("serverDatabaseUrl"));
    serverUrl.pathname = `/${name}`;
    const token = newApiKeyToken();
    const server = await startServerProcess({
      DATABASE_URL: serverUrl.toString(),
      BURNDOWN_MIGRATION_DATABASE_URL: databaseUrlFor(name),
      BURNDOWN_ADMIN_KEY: token,
      BURNDOWN_JOB_INTERVAL_MS: "50",
    });
    try {
      expect(server.output.some((line) => line.includes("applied migrations 1, 2, 3, 4"))).toBe(true);
      expect(server.output.some((line) => line.includes("database user burndown_test_server: least privilege"))).toBe(true);
      const transport = createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [bearer(token)] });
      await createClient(AdminService, transport).createCreditType({ creditType: { creditTypeId: "credits", displayName: "Credits", scale: 0 }, requestId: randomUUID() });
      const ledger = createClient(LedgerService, transport);
      await ledger.grant({ customerId: "acme", creditTypeId: "credits", amount: 100n, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
      const hold = await ledger.reserve({ customerId: "acme", cost: { case: "credits", value: { creditTypeId: "credits", amount: 30n } }, requestId: randomUUID(), ttl: { seconds: 1n } });
      expect(hold.reservation?.reservationId).toMatch(/./);
      // The expiry job runs as the app role too: the hold lapses and its credits return.
      let available = 0n;
      for (let i = 0; i < 100 && available !== 100n; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        available = (await ledger.getBalance({ customerId: "acme", creditTypeId: "credits" })).balances[0].available;
      }
      expect(available).toBe(100n);
    } finally {
      await server.stop("SIGTERM");
    }
  }, 120_000);

  it("warns when it runs as a user that could rewrite the ledger", async () => {
    const server = await startServerProcess({ DATABASE_URL: database.url, BURNDOWN_JOB_INTERVAL_MS: "0" });
    try {
      const warning = server.output.find((line) => line.includes("WARNING: database user"));
      expect(warning).toMatch(/could disable the append-only triggers/);
    } finally {
      await server.stop("SIGTERM");
    }
  });
});
