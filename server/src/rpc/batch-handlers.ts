// ReserveBatch and CommitBatch: many Reserves or Commits in one call, so a client that
// gathers concurrent operations pays the RPC stack's per-call cost once. Each item is
// answered exactly as the unary method would answer it: same validation, same request-id
// record (a unary retry replays a batched item and the other way round), same error code
// and reason. Items of one customer (commits: of one balance) are group-committed in one
// transaction (service/grouped-operations.ts) in request order; groups run side by side,
// a bounded number at a time, so one batch cannot take the whole pool.
import type { ServiceImpl } from "@connectrpc/connect";
import type { LedgerService } from "@burndown/sdk";
import { invalid, notFound } from "../errors.js";
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { commitGroup, type GroupedCommit, type GroupedReserve, type Outcome, reservationsToCommit, reserveGroup } from "../service/grouped-operations.js";
import type { ReservationResult } from "../service/reserve.js";
import { encodeReservationResult } from "./encode.js";
import { itemErrorOf } from "./interceptors.js";
import { callerOf, decodeCommit, decodeReserve } from "./ledger-handlers.js";

function requireBatchSize(count: number): void {
  if (count === 0 || count > limits.operationBatchSizeMax) {
    throw invalid("INVALID_BATCH_SIZE", "requests", `send 1 to ${limits.operationBatchSizeMax} requests`);
  }
}

/** runGroups runs each group (its items' indexes, in request order), at most limits.batchGroupsInFlightMax at once. */
async function runGroups<T>(groups: Iterable<number[]>, run: (indexes: number[]) => Promise<Outcome<T>[]>, outcomes: Outcome<T>[]): Promise<void> {
  const queue = [...groups];
  const worker = async () => {
    for (let group = queue.shift(); group !== undefined; group = queue.shift()) {
      const answers = await run(group);
      group.forEach((index, i) => (outcomes[index] = answers[i]));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limits.batchGroupsInFlightMax, queue.length) }, worker));
}

function groupBy(indexes: number[], keyOf: (index: number) => string): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  for (const index of indexes) {
    const key = keyOf(index);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [index]);
    else group.push(index);
  }
  return groups;
}

/** decodeEach validates every item; a malformed item's outcome is its InvalidArgument. */
function decodeEach<R, I>(requests: readonly R[], decode: (request: R) => I, outcomes: Outcome<ReservationResult>[]): (I | undefined)[] {
  return requests.map((request, index) => {
    try {
      return decode(request);
    } catch (error) {
      outcomes[index] = { ok: false, error };
      return undefined;
    }
  });
}

function resultsOf(outcomes: Outcome<ReservationResult>[], log: (message: string) => void) {
  return outcomes.map((outcome) =>
    outcome.ok
      ? { result: { case: "response" as const, value: encodeReservationResult(outcome.value) } }
      : { result: { case: "error" as const, value: itemErrorOf(outcome.error, log) } },
  );
}

/** batchHandlers implements ReserveBatch and CommitBatch. */
export function batchHandlers(deps: Deps, log: (message: string) => void): Partial<ServiceImpl<typeof LedgerService>> {
  return {
    async reserveBatch(req, ctx) {
      requireBatchSize(req.requests.length);
      const caller = callerOf(ctx);
      const outcomes = new Array<Outcome<ReservationResult>>(req.requests.length);
      const decoded: (GroupedReserve | undefined)[] = decodeEach(req.requests, decodeReserve, outcomes);
      const valid = decoded.flatMap((item, index) => (item === undefined ? [] : [index]));
      const groups = groupBy(valid, (index) => decoded[index]!.input.customerId);
      await runGroups(groups.values(), (indexes) => reserveGroup(deps, caller, indexes.map((index) => decoded[index]!)), outcomes);
      return { results: resultsOf(outcomes, log) };
    },
    async commitBatch(req, ctx) {
      requireBatchSize(req.requests.length);
      const caller = callerOf(ctx);
      const outcomes = new Array<Outcome<ReservationResult>>(req.requests.length);
      const decoded = decodeEach(req.requests, (request) => {
        const { idempotency, input } = decodeCommit(request);
        return { idempotency, ...input };
      }, outcomes);
      const valid = decoded.flatMap((item, index) => (item === undefined ? [] : [index]));
      // Which balance each reservation is on decides its group; read without locks (the
      // group re-reads statuses under the balance lock).
      const reservations = await reservationsToCommit(deps, valid.map((index) => decoded[index]!.reservationId));
      const known: number[] = [];
      for (const index of valid) {
        const { reservationId } = decoded[index]!;
        if (reservations.has(reservationId)) known.push(index);
        else outcomes[index] = { ok: false, error: notFound("RESERVATION_NOT_FOUND", "reservation id", reservationId) };
      }
      const groups = groupBy(known, (index) => {
        const reservation = reservations.get(decoded[index]!.reservationId)!;
        return JSON.stringify([reservation.customerId, reservation.creditTypeId]);
      });
      await runGroups(
        groups.values(),
        (indexes) =>
          commitGroup(
            deps,
            caller,
            indexes.map((index): GroupedCommit => ({ ...decoded[index]!, reservation: reservations.get(decoded[index]!.reservationId)! })),
          ),
        outcomes,
      );
      return { results: resultsOf(outcomes, log) };
    },
  };
}
