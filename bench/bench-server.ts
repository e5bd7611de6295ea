// A server in its own process on a fresh database (DATABASE_URL, or an embedded
// PostgreSQL), with an admin token, for the benchmarks.
import os from "node:os";
import pg from "pg";
import { newApiKeyToken } from "../server/src/service/api-keys.js";
import { startEmbeddedDatabase } from "../server/src/store/embedded-database.js";
import { migrate } from "../server/src/store/migrations.js";
import { type ServerProcess, startServerProcess } from "../test-support/server-process.js";

/** BenchServer is a running server for a benchmark. */
export interface BenchServer {
  server: ServerProcess;
  token: string;
  /** the benchmark's own database, for baselines that bypass the server. */
  databaseUrl: string;
  stop: () => Promise<void>;
}

/** benchDatabase creates a fresh database (under DATABASE_URL, or in an embedded PostgreSQL) and drops it on stop. */
export async function benchDatabase(): Promise<{ url: string; stop: () => Promise<void> }> {
  const name = `burndown_bench_${Date.now()}_${process.pid}`;
  if (process.env.DATABASE_URL) {
    const admin = async (sql: string) => {
      const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await client.connect();
      await client.query(sql);
      await client.end();
    };
    await admin(`create database ${name}`);
    const url = new URL(process.env.DATABASE_URL);
    url.pathname = `/${name}`;
    return { url: url.toString(), stop: () => admin(`drop database if exists ${name} with (force)`) };
  }
  const embedded = await startEmbeddedDatabase({ dataDir: `${os.tmpdir()}/burndown-bench-${process.pid}`, persistent: false });
  return { url: embedded.url, stop: embedded.stop };
}

/** startBenchServer starts a migrated database and a server process on it. */
export async function startBenchServer(env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<BenchServer> {
  const db = await benchDatabase();
  const token = newApiKeyToken();
  let server: ServerProcess;
  try {
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    await migrate(pool);
    await pool.end();
    server = await startServerProcess({ DATABASE_URL: db.url, BURNDOWN_ADMIN_KEY: token, BURNDOWN_JOB_INTERVAL_MS: "1000", ...env }, 60_000, nodeArgs);
  } catch (error) {
    await db.stop(); // a server that never started must not leave its database behind.
    throw error;
  }
  return {
    server,
    token,
    databaseUrl: db.url,
    stop: async () => {
      await server.stop();
      await db.stop();
    },
  };
}

/** percentile reads a percentile from sorted numbers. */
export function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
