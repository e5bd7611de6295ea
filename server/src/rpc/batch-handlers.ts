// ReserveBatch and CommitBatch: many Reserves or Commits in one call, so a client that
// gathers concurrent operations pays the RPC stack's per-call cost once. Each item is
// answered exactly as the unary method would answer it: same validation, same request-id
// record (a unary retry replays a batched item and the other way round), same error code
// and reason. The handler decodes and encodes; every item is an op of the write path
// (service/group-commit.ts), which puts each customer's items, in request order, into the
// group transactions of its lane, with whatever else arrives meanwhile.
import type { ServiceImpl } from "@connectrpc/connect";
import type { LedgerService } from "@burndown/sdk";
import { invalid } from "../errors.js";
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { commitBatch } from "../service/resolve-reservation.js";
import { type ReservationResult, reserveBatch } from "../service/reserve.js";
import type { Outcome } from "../service/write-op.js";
import { encodeReservationResult } from "./encode.js";
import { itemErrorOf } from "./interceptors.js";
import { callerOf, decodeCommit, decodeReserve } from "./ledger-handlers.js";

function requireBatchSize(count: number): void {
  if (count === 0 || count > limits.operationBatchSizeMax) {
    throw invalid("INVALID_BATCH_SIZE", "requests", `send 1 to ${limits.operationBatchSizeMax} requests`);
  }
}

/**
 * decodeEach validates every item and runs the valid ones through run; a malformed item's
 * outcome is its InvalidArgument, in its place.
 */
async function decodeEach<R, I>(requests: readonly R[], decode: (request: R) => I, run: (items: I[]) => Promise<Outcome<ReservationResult>[]>): Promise<Outcome<ReservationResult>[]> {
  const outcomes = new Array<Outcome<ReservationResult>>(requests.length);
  const valid: I[] = [];
  const positions: number[] = [];
  requests.forEach((request, index) => {
    try {
      valid.push(decode(request));
      positions.push(index);
    } catch (error) {
      outcomes[index] = { ok: false, error };
    }
  });
  const answers = valid.length === 0 ? [] : await run(valid);
  positions.forEach((index, i) => (outcomes[index] = answers[i]));
  return outcomes;
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
      const outcomes = await decodeEach(req.requests, decodeReserve, (items) => reserveBatch(deps, caller, items));
      return { results: resultsOf(outcomes, log) };
    },
    async commitBatch(req, ctx) {
      requireBatchSize(req.requests.length);
      const caller = callerOf(ctx);
      const decode = (request: (typeof req.requests)[number]) => {
        const { idempotency, input } = decodeCommit(request);
        return { idempotency, ...input };
      };
      const outcomes = await decodeEach(req.requests, decode, (items) => commitBatch(deps, caller, items));
      return { results: resultsOf(outcomes, log) };
    },
  };
}
