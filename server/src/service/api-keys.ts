// API keys: creation, listing, revocation and verification. A token is
// "bd_<key id>_<secret>"; only SHA-256 of the secret is stored (the secret is 256 random
// bits, so a slow hash adds nothing), and it is compared in constant time. Verified keys
// are cached for at most apiKeyCacheMsMax, which bounds how long a revoked key still works.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { LedgerError, notFound } from "../errors.js";
import { limits } from "../limits.js";
import { type ApiKeyRow, countAdminKeys, insertApiKey, lockKeyBootstrap, revokeApiKey as storeRevokeApiKey, selectApiKeys, selectApiKeySecret } from "../store/api-key-store.js";
import { mapDriverErrors, withTransaction } from "../store/database.js";
import type { Caller, Deps, Idempotency, Role } from "./context.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { requireCustomer } from "./catalog.js";
import { runIdempotent } from "./run-idempotent.js";

const tokenPattern = /^bd_([0-9a-f]{20})_([A-Za-z0-9_-]{43})$/;

function hashSecret(secret: string): Buffer {
  return createHash("sha256").update(secret).digest();
}

function newToken(): { keyId: string; secret: string; token: string } {
  const keyId = randomBytes(10).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  return { keyId, secret, token: `bd_${keyId}_${secret}` };
}

/** parseToken splits a token into key id and secret, or null when it is not one. */
export function parseToken(token: string): { keyId: string; secret: string } | null {
  const match = tokenPattern.exec(token);
  return match ? { keyId: match[1], secret: match[2] } : null;
}

/** createApiKey makes a key; the token is in the first response only, never in a replay. */
export async function createApiKey(
  deps: Deps,
  caller: Caller,
  idempotency: Idempotency,
  input: { name: string; role: Role; grantLimit: bigint; expiresAt: Date | null; reason: string; customerId: string | null },
): Promise<{ apiKey: ApiKeyRow; token: string }> {
  const grantLimit = input.role === "support" && input.grantLimit === 0n ? limits.supportGrantLimitDefault : input.grantLimit;
  return runIdempotent(
    deps,
    caller,
    idempotency,
    async (tx) => {
      if (input.customerId !== null) await requireCustomer(tx, input.customerId);
      const { keyId, secret, token } = newToken();
      const apiKey = await insertApiKey(tx, { keyId, name: input.name, role: input.role, grantLimit, expiresAt: input.expiresAt, customerId: input.customerId, secretHash: hashSecret(secret) });
      // Never the secret or its hash: the audit trail is readable by support.
      await insertAuditRecord(tx, {
        actor: caller.keyId,
        requestId: caller.requestId,
        action: "create_api_key",
        target: `api_key:${keyId}`,
        reason: input.reason,
        details: {
          old: null,
          new: { name: input.name, role: input.role, grant_limit: grantLimit.toString(), expire_time: input.expiresAt?.toISOString() ?? null, customer_id: input.customerId },
        },
      });
      return { apiKey, token };
    },
    (result) => ({ ...result, token: "" }),
  );
}

/** listApiKeys reads every key, without secrets. */
export async function listApiKeys(deps: Deps): Promise<ApiKeyRow[]> {
  return mapDriverErrors(() => selectApiKeys(deps.pool, limits.pageSizeMax));
}

/**
 * revokeApiKey stops a key from working: at once on this replica and, with Redis, on
 * every replica; without Redis (or while it is down) other replicas refuse it within
 * apiKeyCacheMsMax.
 */
export async function revokeApiKey(deps: Deps, caller: Caller, idempotency: Idempotency, input: { keyId: string; reason: string }): Promise<ApiKeyRow> {
  const revoked = await runIdempotent(deps, caller, idempotency, async (tx) => {
    const revoked = await storeRevokeApiKey(tx, input.keyId);
    if (revoked === null) throw notFound("API_KEY_NOT_FOUND", "key id", input.keyId);
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "revoke_api_key",
      target: `api_key:${input.keyId}`,
      reason: input.reason,
      // A second revocation keeps the first time: new shows the time the key stopped working.
      details: { old: null, new: { revoke_time: revoked.revokedAt?.toISOString() ?? null } },
    });
    return revoked;
  });
  // Committed: announce it (a replay announces again, which is harmless).
  deps.fanout.keyRevoked(input.keyId);
  return revoked;
}

interface CachedKey {
  caller: Caller;
  secretHash: Buffer;
  expiresAtMs: number | null;
  cachedUntilMs: number;
}

/** KeyVerifier checks tokens against the database, with a short, bounded cache. */
export class KeyVerifier {
  private readonly cache = new Map<string, CachedKey>();

  constructor(private readonly deps: Deps) {}

  /** forget drops one key from the cache: the next request reads it again. */
  forget(keyId: string): void {
    this.cache.delete(keyId);
  }

  /** forgetAll drops every cached key. */
  forgetAll(): void {
    this.cache.clear();
  }

  /** verify returns the caller a token belongs to, or throws Unauthenticated. */
  async verify(token: string): Promise<Caller> {
    const parsed = parseToken(token);
    if (parsed === null) throw unauthenticated("the API key is malformed");
    const nowMs = this.deps.now().getTime();
    let cached = this.cache.get(parsed.keyId);
    if (cached === undefined || cached.cachedUntilMs <= nowMs) {
      cached = await this.load(parsed.keyId, nowMs);
    }
    const presented = hashSecret(parsed.secret);
    if (!timingSafeEqual(presented, cached.secretHash)) throw unauthenticated("the API key is not valid");
    if (cached.expiresAtMs !== null && cached.expiresAtMs <= nowMs) throw unauthenticated("the API key has expired");
    return cached.caller;
  }

  private async load(keyId: string, nowMs: number): Promise<CachedKey> {
    const row = await mapDriverErrors(() => selectApiKeySecret(this.deps.pool, keyId));
    if (row === null || row.revokedAt !== null) {
      this.cache.delete(keyId);
      throw unauthenticated("the API key is not valid");
    }
    if (this.cache.size >= limits.apiKeyCacheEntriesMax) this.cache.clear();
    const entry: CachedKey = {
      // The key's, shared by its calls: authInterceptor gives each call a copy with its request id.
      caller: { keyId: row.keyId, name: row.name, role: row.role, grantLimit: row.grantLimit, requestId: null, ...(row.customerId === null ? {} : { customerId: row.customerId }) },
      secretHash: row.secretHash,
      expiresAtMs: row.expiresAt?.getTime() ?? null,
      cachedUntilMs: nowMs + limits.apiKeyCacheMsMax,
    };
    this.cache.set(keyId, entry);
    return entry;
  }
}

function unauthenticated(message: string): LedgerError {
  return new LedgerError("unauthenticated", "INVALID_API_KEY", message);
}

/**
 * bootstrapAdminKey makes sure an admin can get in. With a configured token it stores
 * that token's key if missing; otherwise, when no active admin key exists, it creates
 * one and returns its token so the caller can print it once.
 */
export async function bootstrapAdminKey(deps: Deps, configuredToken: string | undefined): Promise<{ token: string | null; keyId: string | null }> {
  return withTransaction(deps.pool, async (tx) => {
    await lockKeyBootstrap(tx);
    if (configuredToken !== undefined) {
      const parsed = parseToken(configuredToken);
      if (parsed === null) throw new Error("BURNDOWN_ADMIN_KEY is not a Burndown API key (bd_<20 hex>_<43 base64url>)");
      if ((await selectApiKeySecret(tx, parsed.keyId)) === null) {
        await insertApiKey(tx, { keyId: parsed.keyId, name: "configured admin", role: "admin", grantLimit: 0n, expiresAt: null, customerId: null, secretHash: hashSecret(parsed.secret) });
      }
      return { token: null, keyId: parsed.keyId };
    }
    if ((await countAdminKeys(tx)) > 0) return { token: null, keyId: null };
    const { keyId, secret, token } = newToken();
    await insertApiKey(tx, { keyId, name: "first admin", role: "admin", grantLimit: 0n, expiresAt: null, customerId: null, secretHash: hashSecret(secret) });
    return { token, keyId };
  });
}

/** newApiKeyToken makes a fresh token, for configuration and tests. */
export function newApiKeyToken(): string {
  return newToken().token;
}
