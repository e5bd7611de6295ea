// ReserveBatch and CommitBatch: many Reserves or Commits in one call, so a client that
// gathers concurrent operations pays the RPC stack's per-call cost once. Each item runs
// exactly as the unary method would (reserveOne, commitOne): its own request id and
// idempotency record, its own transaction, its own answer. A failing item becomes an
// error result and never fails its neighbours. Items for one customer (or, for commits,
// one reservation) run in request order; different ones run side by side, a bounded
// number at a time, so one batch cannot take the whole pool.
import type { ServiceImpl } from "@connectrpc/connect";
import type { LedgerService } from "@burndown/sdk";
import { invalid } from "../errors.js";
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { type ItemError, itemErrorOf } from "./interceptors.js";
import { callerOf, commitOne, reserveOne } from "./ledger-handlers.js";

type Outcome<T> = { ok: true; value: T } | { ok: false; error: ItemError };

function requireBatchSize(count: number): void {
  if (count === 0 || count > limits.operationBatchSizeMax) {
    throw invalid("INVALID_BATCH_SIZE", "requests", `send 1 to ${limits.operationBatchSizeMax} requests`);
  }
}

/**
 * runGrouped runs one item at a time per group key, in request order within a group, and
 * at most limits.batchGroupsInFlightMax groups at once. It never rejects: each item's
 * failure is its own outcome.
 */
async function runGrouped<I, T>(items: readonly I[], keyOf: (item: I) => string, run: (item: I) => Promise<T>, log: (message: string) => void): Promise<Outcome<T>[]> {
  const groups = new Map<string, number[]>();
  items.forEach((item, index) => {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [index]);
    else group.push(index);
  });
  const outcomes = new Array<Outcome<T>>(items.length);
  const queue = [...groups.values()];
  const worker = async () => {
    for (let group = queue.shift(); group !== undefined; group = queue.shift()) {
      for (const index of group) {
        try {
          outcomes[index] = { ok: true, value: await run(items[index]) };
        } catch (error) {
          outcomes[index] = { ok: false, error: itemErrorOf(error, log) };
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limits.batchGroupsInFlightMax, queue.length) }, worker));
  return outcomes;
}

function resultOf<T>(outcome: Outcome<T>) {
  return outcome.ok ? { result: { case: "response" as const, value: outcome.value } } : { result: { case: "error" as const, value: outcome.error } };
}

/** batchHandlers implements ReserveBatch and CommitBatch. */
export function batchHandlers(deps: Deps, log: (message: string) => void): Partial<ServiceImpl<typeof LedgerService>> {
  return {
    async reserveBatch(req, ctx) {
      requireBatchSize(req.requests.length);
      const caller = callerOf(ctx);
      const outcomes = await runGrouped(req.requests, (item) => item.customerId, (item) => reserveOne(deps, caller, item), log);
      return { results: outcomes.map(resultOf) };
    },
    async commitBatch(req, ctx) {
      requireBatchSize(req.requests.length);
      const caller = callerOf(ctx);
      const outcomes = await runGrouped(req.requests, (item) => item.reservationId, (item) => commitOne(deps, caller, item), log);
      return { results: outcomes.map(resultOf) };
    },
  };
}
