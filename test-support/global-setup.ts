// Provides PostgreSQL to the whole test run: DATABASE_URL when set, otherwise an
// embedded PostgreSQL started here. A template database is migrated once; each test
// file then copies it (CREATE DATABASE ... TEMPLATE) and drops its copy at the end.
import { createHash } from "node:crypto";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { startEmbeddedDatabase } from "../server/src/store/embedded-database.js";
import { migrate, migrations } from "../server/src/store/migrations.js";
import { appPrivileges, appRole } from "../server/src/store/privileges.js";

declare module "vitest" {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
    /** the same server, as a login role with only the running server's privileges. */
    serverDatabaseUrl: string;
    templateDatabase: string;
  }
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

const testServerRole = "burndown_test_server";
const testServerPassword = "burndown";

interface SharedDatabase {
  adminUrl: string;
  serverUrl: string;
  template: string;
  stopEmbedded: (() => Promise<void>) | null;
  users: number;
}

// Every vitest project runs this setup (they extend the root config), in one process: the
// first starts PostgreSQL (or reads DATABASE_URL) and builds the template, the others share
// it, and the last teardown stops an embedded cluster. Kept on globalThis because each
// project may load this module afresh.
const sharedKey = Symbol.for("burndown.test.sharedDatabase");
type SharedSlot = { [sharedKey]?: Promise<SharedDatabase> };

async function prepare(): Promise<SharedDatabase> {
  let adminUrl = process.env.DATABASE_URL;
  let stopEmbedded: (() => Promise<void>) | null = null;
  if (!adminUrl) {
    console.warn("tests: DATABASE_URL is not set; starting an embedded PostgreSQL for this run");
    const embedded = await startEmbeddedDatabase({ dataDir: path.join(os.tmpdir(), `burndown-test-pg-${process.pid}`), persistent: false });
    adminUrl = embedded.url;
    stopEmbedded = embedded.stop;
  }
  const digest = createHash("sha256").update(JSON.stringify({ migrations, appPrivileges })).digest("hex").slice(0, 12);
  const template = `burndown_template_${digest}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  // Concurrent test runs on one server must not race to build the same template.
  await admin.query("select pg_advisory_lock(4242)");
  try {
    const exists = await admin.query("select 1 from pg_database where datname = $1", [template]);
    if (exists.rows.length === 0) {
      await admin.query(`create database ${template}_building`);
      const pool = new pg.Pool({ connectionString: withDatabase(adminUrl, `${template}_building`), max: 1 });
      await migrate(pool);
      await pool.end();
      await admin.query(`alter database ${template}_building rename to ${template}`);
    }
    // Test servers connect as this role, so the whole suite runs with the privileges a
    // production server is given, and a statement needing more fails a test.
    await admin.query(`do $$ begin create role ${testServerRole} login password '${testServerPassword}'; exception when duplicate_object then null; end $$`);
    await admin.query(`grant ${appRole} to ${testServerRole}`);
  } finally {
    await admin.query("select pg_advisory_unlock(4242)");
    await admin.end();
  }
  const serverUrl = new URL(adminUrl);
  serverUrl.username = testServerRole;
  serverUrl.password = testServerPassword;
  return { adminUrl, serverUrl: serverUrl.toString(), template, stopEmbedded, users: 0 };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const slot = globalThis as SharedSlot;
  slot[sharedKey] ??= prepare();
  const shared = await slot[sharedKey];
  shared.users++;
  project.provide("adminDatabaseUrl", shared.adminUrl);
  project.provide("serverDatabaseUrl", shared.serverUrl);
  project.provide("templateDatabase", shared.template);
  return async () => {
    if (--shared.users > 0) return;
    delete slot[sharedKey];
    await shared.stopEmbedded?.();
  };
}
