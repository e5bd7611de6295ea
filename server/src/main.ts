// Wiring only: read the configuration, get a database, migrate, start, stop on a signal.
import type pg from "pg";
import { type Config, ConfigError, configWarnings, readConfig } from "./config.js";
import { RedisFanout } from "./fanout.js";
import { createLogger, messageLog } from "./logger.js";
import { startTracing, type Tracing } from "./tracing.js";
import { type RunningServer, startServer } from "./server.js";
import { bootstrapAdminKey } from "./service/api-keys.js";
import { seedReasonCodeList } from "./service/reason-codes.js";
import { createPool, endPool } from "./store/database.js";
import { type EmbeddedDatabase, startEmbeddedDatabase } from "./store/embedded-database.js";
import { migrate } from "./store/migrations.js";
import { appRole, checkPrivileges } from "./store/privileges.js";

// JSON lines on stdout (logger.ts) at the configured level, once the configuration is read;
// info until then, so that a configuration error is a log line too.
let logger = createLogger("info");
let log = messageLog(logger);

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

/** Running is what a start has brought up so far, for a stop (or a failed start) to take down in order. */
interface Running {
  embedded?: EmbeddedDatabase;
  pool?: pg.Pool;
  fanout?: RedisFanout;
  server?: RunningServer;
  tracing?: Tracing;
}

async function start(config: Config, running: Running): Promise<void> {
  if (config.databaseUrl === null) {
    // The server owns its signals: it drains its calls before the database stops.
    running.embedded = await startEmbeddedDatabase({ dataDir: config.dataDir, persistent: true, log, ownSignals: true });
    log(`embedded PostgreSQL running, data in ${config.dataDir}`);
  }
  const embedded = running.embedded;
  // Migrations run as the tables' owner; the server then runs with the app role's
  // privileges when it has a role to use (store/privileges.ts).
  const migrationPool = createPool(config.migrationDatabaseUrl ?? config.databaseUrl ?? embedded!.url, 1);
  try {
    await checkDurability(migrationPool, config);
    const applied = await migrate(migrationPool);
    if (applied.length > 0) log(`applied migrations ${applied.join(", ")}`);
    if (embedded) await migrationPool.query(`grant ${appRole} to burndown_server`);
  } finally {
    await endPool(migrationPool);
  }
  const pool = (running.pool = createPool(config.databaseUrl ?? embedded!.serverUrl));
  await reportPrivileges(pool);
  if (config.redisUrl !== null) {
    running.fanout = new RedisFanout({ url: config.redisUrl, channelPrefix: config.redisChannelPrefix, log });
    await running.fanout.start();
    log(`Redis fan-out on channel ${config.redisChannelPrefix}:fanout (the ledger does not depend on it)`);
  }
  const server = (running.server = await startServer({
    pool,
    fanout: running.fanout,
    host: config.host,
    httpPort: config.httpPort,
    grpcPort: config.grpcPort,
    jobIntervalMs: config.jobIntervalMs,
    log,
    logger,
    usage: { lateCutoffMs: config.usageLateCutoffMs, dedupRetentionMs: config.usageDedupRetentionMs },
    grantReasonCodes: config.grantReasonCodes,
    grantRequestTtlMs: config.grantRequestTtlMs,
    admission: config.admission,
    writes: config.writes,
    customerViewFrameAncestors: config.customerViewFrameAncestors,
    corsOrigins: config.corsOrigins,
    checkoutUrl: config.checkoutUrl,
    stripeWebhookSecret: config.stripeWebhookSecret,
    webhooks: config.webhooks,
    recharge: { retryDelaysMs: config.rechargeRetryDelaysMs },
    disputeSla: config.disputeSla,
    metricsToken: config.metricsToken,
    selfCheck: config.selfCheck,
    usageQueue: config.usageQueue,
  }));
  // A deployment's first start keeps the reason codes it was configured with.
  await seedReasonCodeList(pool, config.grantReasonCodes);
  const admin = await bootstrapAdminKey(server.deps, config.adminKey);
  if (admin.token) {
    log("created the first admin API key. It is shown once; keep it safe:");
    console.log(`BURNDOWN_ADMIN_KEY=${admin.token}`);
  }
  console.log(`listening http=${server.httpUrl} grpc=${server.grpcUrl}`);
  log(`Connect, gRPC-Web and the admin UI on ${server.httpUrl}; gRPC (h2c) on ${server.grpcUrl}`);
}

/** stopAll takes down what is running in order: calls drain, then the pool, then the database. */
async function stopAll(running: Running): Promise<void> {
  const steps: [string, (() => Promise<void>) | undefined][] = [
    ["server", running.server?.close],
    ["redis", running.fanout && (() => running.fanout!.close())],
    ["pool", running.pool && (() => endPool(running.pool!))],
    ["embedded PostgreSQL", running.embedded?.stop],
    ["tracing", running.tracing?.stop],
  ];
  for (const [name, step] of steps) {
    if (!step) continue;
    try {
      await step();
    } catch (error) {
      log(`stopping the ${name}: ${describe(error)}`);
    }
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return error === undefined ? "no reason given" : String(error);
}

/** advice says what to do about a start failure the error alone does not explain. */
function advice(error: unknown, config: Config | undefined): string | undefined {
  const code = (error as { code?: string })?.code;
  const where = config?.databaseUrl ? `the database at DATABASE_URL (${redact(config.databaseUrl)})` : "the database";
  switch (code) {
    case "ECONNREFUSED":
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "ETIMEDOUT":
      return `could not reach ${where}: is PostgreSQL running there? Unset DATABASE_URL to use the embedded PostgreSQL instead.`;
    case "28P01":
    case "28000":
      return `${where} refused the user or password: check them in DATABASE_URL.`;
    case "3D000":
      return `${where} does not exist: create it (createdb) or correct DATABASE_URL.`;
    case "42501":
      return "the database user lacks a privilege: migrations need the tables' owner (BURNDOWN_MIGRATION_DATABASE_URL); the server needs a member of burndown_app.";
    case "EADDRINUSE":
      return `a port is already in use (PORT=${config?.httpPort}, GRPC_PORT=${config?.grpcPort}): stop the other program, or choose free ports with PORT and GRPC_PORT (0 picks one).`;
    case "EACCES":
      return "permission denied: ports below 1024 need privileges (choose PORT and GRPC_PORT above 1024), or the data folder is not writable (BURNDOWN_DATA_DIR).";
    default:
      if (/No address added|address already in use/i.test(describe(error))) {
        return `the gRPC port GRPC_PORT=${config?.grpcPort} is already in use: stop the other program, or choose a free port with GRPC_PORT (0 picks one).`;
      }
      return undefined;
  }
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "not a URL";
  }
}

async function main(): Promise<void> {
  let config: Config | undefined;
  const running: Running = {};
  let starting: Promise<void> | undefined;
  let stopping = false;
  // A signal while starting waits for the start to settle, then takes down what came up:
  // a process manager stops the server, and the embedded PostgreSQL with it, with one signal.
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: shutting down`);
    await starting?.catch(() => undefined);
    await stopAll(running);
    process.exit(0);
  };
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(signal, () => void stop(signal));
  try {
    config = readConfig(process.env);
    logger = createLogger(config.logLevel);
    log = messageLog(logger);
    // Before anything else runs, so that the first call is traced.
    if (config.tracing) {
      running.tracing = await startTracing(process.env);
      log("OpenTelemetry tracing on (OTEL_* variables)");
    }
    for (const warning of configWarnings(process.env)) log(`WARNING: ${warning}`);
    starting = start(config, running);
    await starting;
  } catch (error) {
    if (stopping) return;
    stopping = true;
    if (error instanceof ConfigError) {
      // One line per bad value: every one is reported, not only the first.
      for (const problem of error.problems) log(`configuration: ${problem}`);
      log(`failed to start: ${error.problems.length} bad configuration value${error.problems.length === 1 ? "" : "s"} (see "Configuration" in README.md)`);
      process.exit(1);
    }
    log(`failed to start: ${describe(error)}`);
    const hint = advice(error, config);
    if (hint) log(hint);
    await stopAll(running);
    process.exit(1);
  }
}

void main();
