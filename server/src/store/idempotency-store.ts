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

/**
 * insertClaims claims many request ids in one statement, in (principal, request id) order
 * so that concurrent groups sharing ids never deadlock; returns how many were new (a claim
 * another transaction committed first is skipped, and the caller rolls back). In the
 * transaction of the effects they answer for.
 */
export async function insertClaims(
  tx: Tx,
  claims: readonly { principal: string; requestId: string; method: string; payloadHash: Buffer; response: Uint8Array }[],
): Promise<number> {
  if (claims.length === 0) return 0;
  const result = await tx.query({
    name: "insert_claims",
    text: `insert into idempotency_keys (principal, request_id, method, payload_hash, response)
           select * from unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[]) as v(principal, request_id, method, payload_hash, response)
           order by v.principal, v.request_id
           on conflict do nothing`,
    values: [claims.map((c) => c.principal), claims.map((c) => c.requestId), claims.map((c) => c.method), claims.map((c) => c.payloadHash), claims.map((c) => Buffer.from(c.response))],
  });
  return result.rowCount ?? 0;
}
