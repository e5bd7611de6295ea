// The database pool's metrics: its connections (open, idle, callers waiting, the most it
// may open) read from pg.Pool when scraped, and the time each checkout waited for a
// connection, timed around pool.connect. Every statement checks a connection out through
// pool.connect (pool.query does too, with a callback), so wrapping it sees them all.
import type pg from "pg";
import { Gauge, Histogram, type Registry } from "prom-client";

/** Checkout is pg.Pool.connect's callback. */
type Checkout = (error: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void;

/** instrumentPoolWaits registers the pool's gauges and times its checkouts into burndown_db_pool_wait_seconds. */
export function instrumentPoolWaits(pool: pg.Pool, registry: Registry): void {
  const registers = [registry];
  new Gauge({ name: "burndown_db_pool_connections", help: "Database connections the pool has open (idle or checked out).", registers, collect() { this.set(pool.totalCount); } });
  new Gauge({ name: "burndown_db_pool_idle_connections", help: "Open database connections not checked out.", registers, collect() { this.set(pool.idleCount); } });
  new Gauge({ name: "burndown_db_pool_waiting", help: "Checkouts waiting for a connection now (the pool is at its size).", registers, collect() { this.set(pool.waitingCount); } });
  new Gauge({ name: "burndown_db_pool_max", help: "The most connections the pool opens.", registers, collect() { this.set(pool.options.max ?? 10); } });
  const wait = new Histogram({
    name: "burndown_db_pool_wait_seconds",
    help: "Time a checkout waited for a database connection (a new connection's setup included), in seconds; failed checkouts too.",
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers,
  });
  const connect = pool.connect.bind(pool) as (callback?: Checkout) => Promise<pg.PoolClient> | undefined;
  pool.connect = ((callback?: Checkout) => {
    const startedMs = performance.now();
    const observe = () => wait.observe((performance.now() - startedMs) / 1_000);
    if (callback !== undefined) {
      return connect((error, client, done) => {
        observe();
        callback(error, client, done);
      });
    }
    return connect()!.then(
      (client) => {
        observe();
        return client;
      },
      (error: unknown) => {
        observe();
        throw error;
      },
    );
  }) as typeof pool.connect;
}
