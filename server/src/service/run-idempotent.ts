// Idempotent mutations (AIP-155). The effect and the claim on the request id commit in
// one transaction; the primary key on (principal, request id) is the guard. A replay that
// races its original waits on the balance lock, redoes the work, fails on the key, rolls
// back, and returns the stored response: it never applies twice. Only successes are
// stored: a rejected request changes nothing, not even the key.
import { LedgerError } from "../errors.js";
import { isUniqueViolation, mapDriverErrors, type Tx, withTransaction } from "../store/database.js";
import type { ClaimWrite as IdempotencyWrite } from "../store/balance-writer.js";
import { insertIdempotencyKey, selectIdempotencyKey } from "../store/idempotency-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { decodeResult, encodeResult } from "./result-codec.js";

/**
 * IdempotencyClaim lets work write the claim itself, in the statement that writes its
 * effect (one round trip fewer), when it knows its result before that write.
 */
export interface IdempotencyClaim<T> {
  /** rowFor returns the claim for result; once called, runIdempotent does not insert the claim again. */
  rowFor: (result: T) => IdempotencyWrite;
}

/** claimRowOf is the claim on a request id that remembers result as its answer. */
export function claimRowOf<T>(caller: Caller, idempotency: Idempotency, result: T): IdempotencyWrite {
  return {
    principal: caller.keyId,
    requestId: idempotency.requestId,
    method: idempotency.method,
    payloadHash: idempotency.payloadHash,
    response: encodeResult(result),
  };
}

/** runIdempotent runs work once per (caller, request id) and replays its result after. */
export async function runIdempotent<T>(
  deps: Deps,
  caller: Caller,
  idempotency: Idempotency,
  work: (tx: Tx, claim: IdempotencyClaim<T>) => Promise<T>,
  redact: (result: T) => T = (result) => result,
): Promise<T> {
  try {
    return await withTransaction(deps.pool, async (tx) => {
      let claimed = false;
      const rowFor = (result: T): IdempotencyWrite => claimRowOf(caller, idempotency, redact(result));
      const result = await work(tx, {
        rowFor: (value) => {
          claimed = true;
          return rowFor(value);
        },
      });
      if (!claimed) await insertIdempotencyKey(tx, rowFor(result));
      return result;
    });
  } catch (error) {
    const mayBeReplay = isUniqueViolation(error, "idempotency_keys_pkey") || (error instanceof LedgerError && error.kind !== "unavailable");
    if (!mayBeReplay) throw error;
    const stored = await mapDriverErrors(() => selectIdempotencyKey(deps.pool, caller.keyId, idempotency.requestId));
    if (stored === null) throw error;
    if (stored.method !== idempotency.method || !stored.payloadHash.equals(idempotency.payloadHash)) {
      throw new LedgerError("rejected", "REQUEST_ID_REUSED", `request id ${JSON.stringify(idempotency.requestId)} was used for a different request`, {
        request_id: idempotency.requestId,
        first_method: stored.method,
      });
    }
    return decodeResult<T>(stored.response);
  }
}
