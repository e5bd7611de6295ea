// Idempotency keys. The row is inserted in the same transaction as the effect, so the
// claim and the effect commit together; the primary key rejects a second claim.
import type { Db, Tx } from "./database.js";

/** IdempotencyRow is the first successful response to a (principal, request id). */
export interface IdempotencyRow {
  method: string;
  payloadHash: Buffer;
  response: Buffer;
}

/** insertIdempotencyKey claims a request id; throws a unique violation when already claimed. Any transaction. */
export async function insertIdempotencyKey(
  tx: Tx,
  key: { principal: string; requestId: string; method: string; payloadHash: Buffer; response: Uint8Array },
): Promise<void> {
  await tx.query({
    name: "insert_idempotency_key",
    text: "insert into idempotency_keys (principal, request_id, method, payload_hash, response) values ($1, $2, $3, $4, $5)",
    values: [key.principal, key.requestId, key.method, key.payloadHash, Buffer.from(key.response)],
  });
}

/** selectIdempotencyKey reads a claimed request id, or null. No locks. */
export async function selectIdempotencyKey(tx: Db, principal: string, requestId: string): Promise<IdempotencyRow | null> {
  const result = await tx.query({
    name: "select_idempotency_key",
    text: "select method, payload_hash, response from idempotency_keys where principal = $1 and request_id = $2",
    values: [principal, requestId],
  });
  if (result.rows.length === 0) return null;
  const row = result.rows[0];
  return { method: row.method, payloadHash: row.payload_hash, response: row.response };
}

/** selectClaimedRequestIds says which of requestIds the principal has already claimed. No locks. */
export async function selectClaimedRequestIds(db: Db, principal: string, requestIds: string[]): Promise<Set<string>> {
  const result = await db.query({
    name: "select_claimed_request_ids",
    text: "select request_id from idempotency_keys where principal = $1 and request_id = any($2::text[])",
    values: [principal, requestIds],
  });
  return new Set(result.rows.map((row) => row.request_id as string));
}
