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

/** ClaimRow is a claim to insert: who, which id, which method and payload, and the response to replay. */
export interface ClaimRow {
  principal: string;
  requestId: string;
  method: string;
  payloadHash: Buffer;
  response: Uint8Array;
}

/**
 * claimValues lays many claims out as nine statement parameters for claimRows: three text
 * arrays, then every payload hash and every response concatenated into one bytea each
 * (sent in binary: as arrays of bytea they would travel and be parsed as hex text, which
 * made the claims most of a group's write), then where each one starts and how long it is.
 */
export function claimValues(claims: readonly ClaimRow[]): unknown[] {
  const at = (parts: Uint8Array[]) => {
    const starts: number[] = [];
    let offset = 0;
    for (const part of parts) {
      starts.push(offset);
      offset += part.byteLength;
    }
    return starts;
  };
  const hashes = claims.map((claim) => claim.payloadHash);
  const responses = claims.map((claim) => claim.response);
  return [
    claims.map((claim) => claim.principal),
    claims.map((claim) => claim.requestId),
    claims.map((claim) => claim.method),
    Buffer.concat(hashes),
    Buffer.concat(responses),
    at(hashes),
    hashes.map((hash) => hash.byteLength),
    at(responses),
    responses.map((response) => response.byteLength),
  ];
}

/** claimRows is the select that unpacks claimValues' nine parameters (named by their placeholders) into rows, in (principal, request id) order. */
export function claimRows(...p: [string, string, string, string, string, string, string, string, string]): string {
  const [principals, requestIds, methods, hashes, responses, hashAt, hashLength, responseAt, responseLength] = p;
  return `select v.principal, v.request_id, v.method,
      substring(${hashes}::bytea from v.hash_at + 1 for v.hash_length), substring(${responses}::bytea from v.response_at + 1 for v.response_length)
    from unnest(${principals}::text[], ${requestIds}::text[], ${methods}::text[], ${hashAt}::int[], ${hashLength}::int[], ${responseAt}::int[], ${responseLength}::int[])
      as v(principal, request_id, method, hash_at, hash_length, response_at, response_length)
    order by v.principal, v.request_id`;
}

/**
 * insertClaims claims many request ids in one statement, in (principal, request id) order
 * so that concurrent groups sharing ids never deadlock; returns how many were new (a claim
 * another transaction committed first is skipped, and the caller rolls back). In the
 * transaction of the effects they answer for.
 */
export async function insertClaims(tx: Tx, claims: readonly ClaimRow[]): Promise<number> {
  if (claims.length === 0) return 0;
  const result = await tx.query({
    name: "insert_claims",
    text: `insert into idempotency_keys (principal, request_id, method, payload_hash, response)
           ${claimRows("$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9")}
           on conflict do nothing`,
    values: claimValues(claims),
  });
  return result.rowCount ?? 0;
}
