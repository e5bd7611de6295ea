// Wiring only: read the configuration, get a database, migrate, start, stop on a signal.
import type pg from "pg";
import { type Config, readConfig } from "./config.js";
import { RedisFanout } from "./fanout.js";
import { startServer } from "./server.js";
import { bootstrapAdminKey } from "./service/api-keys.js";
import { createPool } from "./store/database.js";
import { startEmbeddedDatabase } from "./store/embedded-database.js";
import { migrate } from "./store/migrations.js";
import { appRole, checkPrivileges } from "./store/privileges.js";

const log = (message: string) => console.error(`burndown: ${message}`);

/** checkDurability refuses a database that could lose acknowledged writes. */
async function checkDurability(pool: pg.Pool, config: Config): Promise<void> {
  const result = await pool.query("select current_setting('synchronous_commit') as sc, current_setting('fsync') as fsync");
  const { sc, fsync } = result.rows[0];
  if (sc !== "off" && fsync === "on") return;
  const problem = `the database has synchronous_commit=${sc}, fsync=${fsync}: acknowledged writes could be lost in a crash`;
  if (!config.allowUnsafeDurability) throw new Error(`${problem}. Refusing to start.`);
  log(`WARNING: ${problem} (allowed by BURNDOWN_TEST_ONLY_ALLOW_UNSAFE_DURABILITY)`);
}

/** reportPrivileges says which database user the server runs as, and warns when it could rewrite the ledger. */
async function reportPrivileges(pool: pg.Pool): Promise<void> {
  const report = await checkPrivileges(pool);
  if (!report.superuser && !report.ownsTables && !report.canChangeEntries) {
    log(`database user ${report.user}: least privilege (no DDL, ledger entries insert-only)`);
    return;
  }
  const why = report.superuser ? "is a superuser" : report.ownsTables ? "owns the tables" : "may update or delete ledger entries";
  log(
    `WARNING: database user ${report.user} ${why}, so it could disable the append-only triggers and rewrite the ledger. ` +
      `Run the server as a member of ${appRole} (DATABASE_URL) and migrate as the owner (BURNDOWN_MIGRATION_DATABASE_URL).`,
  );
}

async function main(): Promise<void> {
  const config = readConfig(process.env);
  const embedded = config.databaseUrl === null ? await startEmbeddedDatabase({ dataDir: config.dataDir, persistent: true, log }) : null;
  if (embedded) log(`embedded PostgreSQL running, data in ${config.dataDir}`);
  // Migrations run as the tables' owner; the server then runs with the app role's
  // privileges when it has a role to use (store/privileges.ts).
  const migrationPool = createPool(config.migrationDatabaseUrl ?? config.databaseUrl ?? embedded!.url, 1);
  try {
    await checkDurability(migrationPool, config);
    const applied = await migrate(migrationPool);
    if (applied.length > 0) log(`applied migrations ${applied.join(", ")}`);
    if (embedded) await migrationPool.query(`grant ${appRole} to burndown_server`);
  } finally {
    await migrationPool.end();
  }
  const pool = createPool(config.databaseUrl ?? embedded!.serverUrl);
  await reportPrivileges(pool);
  let fanout: RedisFanout | undefined;
  if (config.redisUrl !== null) {
    fanout = new RedisFanout({ url: config.redisUrl, channelPrefix: config.redisChannelPrefix, log });
    await fanout.start();
    log(`Redis fan-out on channel ${config.redisChannelPrefix}:fanout (the ledger does not depend on it)`);
  }
  const server = await startServer({ pool, fanout, host: config.host, httpPort: config.httpPort, grpcPort: config.grpcPort, jobIntervalMs: config.jobIntervalMs, log,
    usage: { lateCutoffMs: config.usageLateCutoffMs, dedupRetentionMs: config.usageDedupRetentionMs },
    admission: config.admission,
    writes: config.writes,
  });
  const admin = await bootstrapAdminKey(server.deps, config.adminKey);
  if (admin.token) {
    log("created the first admin API key. It is shown once; keep it safe:");
    console.log(`BURNDOWN_ADMIN_KEY=${admin.token}`);
  }
  console.log(`listening http=${server.httpUrl} grpc=${server.grpcUrl}`);
  log(`Connect, gRPC-Web and the admin UI on ${server.httpUrl}; gRPC (h2c) on ${server.grpcUrl}`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: shutting down`);
    await server.close();
    await fanout?.close();
    await pool.end();
    await embedded?.stop();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((error: unknown) => {
  log(`failed to start: ${error instanceof Error ? error.message : String(error)}`);
  if ((error as { code?: string })?.code === "42501") {
    log("the database user lacks a privilege: migrations need the tables' owner (BURNDOWN_MIGRATION_DATABASE_URL); the server needs a member of burndown_app");
  }
  process.exit(1);
});
