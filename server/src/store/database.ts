// The PostgreSQL pool and transactions. `pg` was chosen over `postgres` by measurement
// (bench/driver-choice.ts: the hot-path transaction shape ran about 1.4x faster with
// pg's named prepared statements on this machine). Driver errors become domain errors
// here: connection faults are `unavailable`, lock conflicts `conflict`.
//
// A call with a deadline (deadline.ts) bounds its waits here too: the wait for a
// connection and each statement end by the deadline with Unavailable, so a caller of a
// blackholed or stalled database gets an answer it can act on within its own timeout.
import { context, trace } from "@opentelemetry/api";
import pg from "pg";
import { remainingMs } from "../deadline.js";
import { LedgerError } from "../errors.js";
import { limits } from "../limits.js";
import { endSpan, recording, startDatabaseSpan, tracedQuery } from "./traced-queries.js";

/** Tx is a client inside an open transaction. */
export type Tx = Pick<pg.PoolClient, "query">;

/** Db is anything that runs a statement: the pool (autocommit) or a transaction. */
export type Db = Pick<pg.Pool, "query">;

// int8 comes back as a string; the store converts to bigint explicitly where it reads.
// timestamptz stays a Date.

/** how long the driver waits for a statement's answer: past PostgreSQL's own statement_timeout, for when no answer can come. */
const queryTimeoutMsMax = limits.statementTimeoutMsMax + 1_000;

/** each pool's clients whose connection is still open (pool.end() does not wait for them to close). */
const openClients = new WeakMap<pg.Pool, Set<pg.PoolClient>>();

/**
 * endPool ends a pool and waits (up to 2 s) until its connections have closed: pool.end()
 * resolves as soon as it has asked them to, and a database stopped right after would
 * terminate them mid-goodbye.
 */
export async function endPool(pool: pg.Pool): Promise<void> {
  const open = openClients.get(pool);
  await pool.end();
  if (open === undefined || open.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all([...open].map((client) => new Promise((resolve) => client.once("end", resolve)))),
    new Promise((resolve) => {
      timer = setTimeout(resolve, 2_000);
    }),
  ]);
  clearTimeout(timer);
}

/** createPool opens a pool with bounded waits, so a dead database fails requests fast. */
export function createPool(databaseUrl: string, max: number = limits.poolSizeMax): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max,
    connectionTimeoutMillis: limits.connectTimeoutMsMax,
    idleTimeoutMillis: 30_000,
    statement_timeout: limits.statementTimeoutMsMax,
    // A transaction left open by a vanished server (a network partition) must not hold
    // its row locks until TCP notices: PostgreSQL aborts it after this long idle.
    idle_in_transaction_session_timeout: limits.idleInTransactionMsMax,
    // A statement whose caller gave up (its deadline passed: the connection is closed)
    // must not go on holding a backend and its locks: PostgreSQL checks this often whether
    // the client is still there and cancels the statement when it is not (PostgreSQL 14+).
    options: `-c client_connection_check_interval=${limits.clientCheckIntervalMs}`,
    query_timeout: queryTimeoutMsMax,
    application_name: "burndown",
  });
  // An idle client's connection can die (database restart, forced drop); the pool
  // discards it. Without a handler the error would crash the process.
  pool.on("error", (error) => {
    process.emitWarning(`burndown: idle database connection failed: ${error.message}`);
  });
  // A checked-out client whose connection dies between two statements (PostgreSQL killed
  // while a transaction plans in JavaScript) emits "error" on the client, not the pool;
  // with no listener that would crash the process. The next statement on it fails, the
  // failure maps to Unavailable, and withTransaction destroys the client.
  const open = new Set<pg.PoolClient>();
  openClients.set(pool, open);
  pool.on("connect", (client) => {
    client.on("error", () => {});
    open.add(client);
    client.once("end", () => open.delete(client));
  });
  // Reads outside a transaction go through pool.query: under a deadline, they wait for a
  // connection and run their statement within it (the same bounds as withTransaction).
  const unbounded = pool.query.bind(pool) as (config: pg.QueryConfig) => Promise<pg.QueryResult>;
  pool.query = ((config: string | pg.QueryConfig, values?: unknown[]) => {
    const query = queryConfigOf(config, values);
    if (remainingMs() === undefined) return recording() ? tracedQuery(unbounded, query) : unbounded(query);
    return withClient(pool, (client) => client.query(query));
  }) as typeof pool.query;
  return pool;
}

/** queryConfigOf folds pg's (text, values) and (config, values) call forms into one config. */
function queryConfigOf(config: string | pg.QueryConfig, values: unknown[] | undefined): pg.QueryConfig {
  if (typeof config === "string") return { text: config, values };
  return values === undefined ? config : { ...config, values };
}

function deadlinePassed(waitingFor: string): LedgerError {
  return new LedgerError("unavailable", "DATABASE_UNAVAILABLE", `the database did not answer within the call's deadline (${waitingFor}); retry`, {});
}

/**
 * connect takes a client from the pool; under a deadline it gives up when the deadline
 * passes, and a client that arrives later goes straight back to the pool.
 */
async function connect(pool: pg.Pool): Promise<pg.PoolClient> {
  const budgetMs = remainingMs();
  if (budgetMs === undefined) return pool.connect();
  if (budgetMs <= 0) throw deadlinePassed("waiting for a connection");
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(deadlinePassed("waiting for a connection"));
    }, budgetMs);
    pool.connect().then(
      (client) => {
        if (late) return client.release();
        clearTimeout(timer);
        resolve(client);
      },
      (error: unknown) => {
        if (late) return;
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/**
 * bounded gives a client whose statements each end by the call's deadline (pg's per-query
 * read timeout, which fails the statement locally even when no packet comes back); a
 * statement that timed out leaves the connection unusable, and the caller destroys it.
 */
function bounded(client: pg.PoolClient): Tx {
  if (remainingMs() === undefined) return client;
  return {
    query: ((config: string | pg.QueryConfig, values?: unknown[]) => {
      const budgetMs = remainingMs() ?? 0;
      if (budgetMs <= 0) return Promise.reject(deadlinePassed("before a statement"));
      const query = queryConfigOf(config, values);
      return client.query({ ...query, query_timeout: Math.min(Math.ceil(budgetMs), queryTimeoutMsMax) } as pg.QueryConfig);
    }) as Tx["query"],
  };
}

/** tracedTx gives a client whose every statement has a span (store/traced-queries.ts). */
function tracedTx(tx: Tx): Tx {
  const run = (query: pg.QueryConfig) => tx.query(query);
  return { query: ((config: string | pg.QueryConfig, values?: unknown[]) => tracedQuery(run, queryConfigOf(config, values))) as Tx["query"] };
}

/**
 * withClient runs statements on one pooled client. A client whose connection failed (an
 * Unavailable error), or that work marks broken, is destroyed, not reused.
 */
async function withClient<T>(pool: pg.Pool, work: (client: Tx, markBroken: (error: Error) => void) => Promise<T>): Promise<T> {
  let client: pg.PoolClient;
  const traced = recording();
  try {
    client = await (traced ? endSpan(startDatabaseSpan("pg.connect"), connect(pool)) : connect(pool));
  } catch (error) {
    throw toDomainError(error);
  }
  let broken: Error | undefined;
  try {
    return await work(traced ? tracedTx(bounded(client)) : bounded(client), (error) => (broken ??= error));
  } catch (error) {
    const mapped = toDomainError(error);
    // The connection timed out or broke: a rollback could wait as long again. Destroy it;
    // PostgreSQL rolls back a transaction whose connection is gone (and aborts one left
    // idle past idle_in_transaction_session_timeout, should the connection linger).
    if (isUnavailable(mapped)) broken ??= error as Error;
    throw mapped;
  } finally {
    client.release(broken);
  }
}

function isUnavailable(error: unknown): boolean {
  return error instanceof LedgerError && error.kind === "unavailable";
}

const conflictCodes = new Set(["40001", "40P01", "55P03"]);

/** isUniqueViolation says whether a driver error is a unique-key violation. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const pgError = error as { code?: string; constraint?: string };
  return pgError?.code === "23505" && (constraint === undefined || pgError.constraint === constraint);
}

/** toDomainError turns a driver error into `unavailable` or `conflict`; other errors pass through. */
export function toDomainError(error: unknown): unknown {
  if (error instanceof LedgerError) return error;
  const code = (error as { code?: string })?.code;
  if (code === "22003") {
    // bigint overflow: a balance total (granted, held, burned) would pass the int64 range.
    return new LedgerError("invalid", "AMOUNT_OUT_OF_RANGE", "the amount would take a balance total beyond the int64 range", {}, { cause: error });
  }
  if (typeof code === "string" && conflictCodes.has(code)) {
    return new LedgerError("conflict", "CONCURRENT_UPDATE", "a concurrent change won; retry with the same request id", {}, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  const isConnectionFault =
    (typeof code === "string" && (code.startsWith("08") || code.startsWith("57P") || code === "53300" || code === "57014")) ||
    /timeout|terminat|ECONNREFUSED|ECONNRESET|EPIPE|Connection|connect/i.test(message);
  if (isConnectionFault) {
    return new LedgerError("unavailable", "DATABASE_UNAVAILABLE", "the database is unavailable; retry", {}, { cause: error });
  }
  return error;
}

/**
 * withTransaction runs work in one READ COMMITTED transaction and commits it, and
 * throws if PostgreSQL rolled it back instead. On any error it rolls back; a client whose connection failed, or whose rollback fails, is
 * destroyed, not reused.
 */
export function withTransaction<T>(pool: pg.Pool, work: (tx: Tx) => Promise<T>): Promise<T> {
  if (!recording()) return runTransaction(pool, work);
  // The transaction's statements are children of its span.
  const span = startDatabaseSpan("pg.transaction");
  return endSpan(span, context.with(trace.setSpan(context.active(), span), runTransaction<T>, undefined, pool, work));
}

async function runTransaction<T>(pool: pg.Pool, work: (tx: Tx) => Promise<T>): Promise<T> {
  return withClient(pool, async (tx, markBroken) => {
    try {
      await tx.query("begin");
      const result = await work(tx);
      // A statement that failed aborted the transaction even if work caught its error;
      // PostgreSQL then answers COMMIT with ROLLBACK, which must not pass for success.
      const committed = await tx.query("commit");
      if (committed.command !== "COMMIT") throw new Error("the transaction was aborted by a failed statement and rolled back at COMMIT");
      return result;
    } catch (error) {
      if (!isUnavailable(toDomainError(error))) await tx.query("rollback").catch(markBroken);
      throw error;
    }
  });
}

/** withSnapshot runs reads in one REPEATABLE READ, READ ONLY transaction: one consistent view. */
export async function withSnapshot<T>(pool: pg.Pool, work: (tx: Tx) => Promise<T>): Promise<T> {
  return withTransaction(pool, async (tx) => {
    await tx.query("set transaction isolation level repeatable read, read only");
    return work(tx);
  });
}

/** mapDriverErrors runs reads outside a transaction, turning driver errors into domain errors. */
export async function mapDriverErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw toDomainError(error);
  }
}

/**
 * setStatementLimits sets limits for the rest of the caller's transaction (SET LOCAL: they end
 * with it): a statement timeout, optionally the memory of each sort or hash (a long
 * aggregate then stays in memory), and optionally custom plans for every statement (a
 * generic plan of "$1 = '' or customer_id = $1" would read every row).
 */
export async function setStatementLimits(tx: Db, limits: { timeoutMs: number; workMemMb?: number; customPlans?: boolean }): Promise<void> {
  const whole = (n: number) => Number.isInteger(n) && n > 0;
  if (!whole(limits.timeoutMs) || (limits.workMemMb !== undefined && !whole(limits.workMemMb))) throw new Error(`setStatementLimits: bad limits ${JSON.stringify(limits)}`);
  const settings = [`set local statement_timeout = ${limits.timeoutMs}`];
  if (limits.workMemMb !== undefined) settings.push(`set local work_mem = '${limits.workMemMb}MB'`);
  if (limits.customPlans) settings.push("set local plan_cache_mode = force_custom_plan");
  await tx.query(settings.join("; "));
}
