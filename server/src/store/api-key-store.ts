// API keys. Only a hash of each secret is stored.
import type { Db, Tx } from "./database.js";

/** ApiKeyRow is a stored API key without its hash. */
export interface ApiKeyRow {
  keyId: string;
  name: string;
  role: "service" | "support" | "admin" | "customer" | "finance";
  grantLimit: bigint;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  /** for customer keys, the one customer the key may read; null otherwise. */
  customerId: string | null;
}

const apiKeyColumns = "key_id, name, role, grant_limit, created_at, expires_at, revoked_at, customer_id";

function toApiKey(row: Record<string, unknown>): ApiKeyRow {
  return {
    keyId: row.key_id as string,
    name: row.name as string,
    role: row.role as ApiKeyRow["role"],
    grantLimit: BigInt(row.grant_limit as string),
    createdAt: row.created_at as Date,
    expiresAt: row.expires_at as Date | null,
    revokedAt: row.revoked_at as Date | null,
    customerId: (row.customer_id as string | null) ?? null,
  };
}

/** insertApiKey stores a key and its secret's hash. Any transaction. */
/** lockKeyBootstrap serializes bootstrapping the first admin key across replicas, until the transaction ends. */
export async function lockKeyBootstrap(tx: Tx): Promise<void> {
  await tx.query("select pg_advisory_xact_lock($1)", [0x6b657973]); // "keys"
}

export async function insertApiKey(db: Db, key: Omit<ApiKeyRow, "createdAt" | "revokedAt"> & { secretHash: Buffer }): Promise<ApiKeyRow> {
  const result = await db.query({
    name: "insert_api_key",
    text: `insert into api_keys (key_id, name, role, secret_hash, grant_limit, expires_at, customer_id) values ($1, $2, $3, $4, $5, $6, $7) returning ${apiKeyColumns}`,
    values: [key.keyId, key.name, key.role, key.secretHash, key.grantLimit.toString(), key.expiresAt, key.customerId],
  });
  return toApiKey(result.rows[0]);
}

/** selectApiKeySecret reads a key with its secret's hash, or null. No locks. */
export async function selectApiKeySecret(db: Db, keyId: string): Promise<(ApiKeyRow & { secretHash: Buffer }) | null> {
  const result = await db.query({
    name: "select_api_key_secret",
    text: `select ${apiKeyColumns}, secret_hash from api_keys where key_id = $1`,
    values: [keyId],
  });
  if (result.rows.length === 0) return null;
  return { ...toApiKey(result.rows[0]), secretHash: result.rows[0].secret_hash };
}

/** selectApiKeys reads every key in creation order. No locks. */
export async function selectApiKeys(db: Db, limit: number): Promise<ApiKeyRow[]> {
  const result = await db.query({
    name: "select_api_keys",
    text: `select ${apiKeyColumns} from api_keys order by created_at, key_id limit $1`,
    values: [limit],
  });
  return result.rows.map(toApiKey);
}

/** revokeApiKey marks a key revoked (keeping the first revoke time); null when unknown. Any transaction. */
export async function revokeApiKey(db: Db, keyId: string): Promise<ApiKeyRow | null> {
  const result = await db.query({
    name: "revoke_api_key",
    text: `update api_keys set revoked_at = coalesce(revoked_at, now()) where key_id = $1 returning ${apiKeyColumns}`,
    values: [keyId],
  });
  return result.rows.length === 0 ? null : toApiKey(result.rows[0]);
}

/** countApiKeys counts keys; used to decide whether to create the first admin key. No locks. */
export async function countAdminKeys(db: Db): Promise<number> {
  const result = await db.query({ name: "count_admin_keys", text: "select count(*)::int as n from api_keys where role = 'admin' and revoked_at is null" });
  return result.rows[0].n as number;
}
