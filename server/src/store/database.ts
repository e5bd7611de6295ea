// The PostgreSQL pool and transactions. `pg` was chosen over `postgres` by measurement
// (bench/driver-choice.ts: the hot-path transaction shape ran about 1.4x faster with
// pg's named prepared statements on this machine). Driver errors become domain errors
// here: connection faults are `unavailable`, lock conflicts `conflict`.
import pg from "pg";
import { LedgerError } from "../errors.js";
import { limits } from "../limits.js";

/** Tx is a client inside an open transaction. */
export type Tx = pg.PoolClient;

/** Db is anything that runs a statement: the pool (autocommit) or a transaction. */
export type Db = Pick<pg.Pool, "query">;

// int8 comes back as a string; the store converts to bigint explicitly where it reads.
// timestamptz stays a Date.

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
    query_timeout: limits.statementTimeoutMsMax + 1_000,
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
  pool.on("connect", (client) => {
    client.on("error", () => {});
  });
  return pool;
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
 * withTransaction runs work in one READ COMMITTED transaction and commits it. On any
 * error it rolls back; a client whose connection failed, or whose rollback fails, is
 * destroyed, not reused.
 */
export async function withTransaction<T>(pool: pg.Pool, work: (tx: Tx) => Promise<T>): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw toDomainError(error);
  }
  let broken: Error | undefined;
  try {
    await client.query("begin");
    const result = await work(client);
    await client.query("commit");
    return result;
  } catch (error) {
    const mapped = toDomainError(error);
    if (mapped instanceof LedgerError && mapped.kind === "unavailable") {
      // The connection timed out or broke: a rollback could wait as long again. Destroy it;
      // PostgreSQL rolls back a transaction whose connection is gone (and aborts one left
      // idle past idle_in_transaction_session_timeout, should the connection linger).
      broken = error as Error;
    } else {
      try {
        await client.query("rollback");
      } catch (rollbackError) {
        broken = rollbackError as Error;
      }
    }
    throw mapped;
  } finally {
    client.release(broken);
  }
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
