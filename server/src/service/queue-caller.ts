// Who usage from a queue acts as: the API key the operator named (BURNDOWN_NATS_API_KEY_ID).
// A message carries no credentials, so the consumer reads the key itself, as the auth
// interceptor would for a call: the key must be live and allowed to report usage. Events
// from the queue are then that key's, and share its event-id dedup with its RPC calls.
import { assert } from "../ledger/balance-state.js";
import { selectApiKeySecret } from "../store/api-key-store.js";
import { mapDriverErrors } from "../store/database.js";
import type { Caller, Deps, Role } from "./context.js";

/** reportingRoles are the roles that may report usage (ReportUsage's, in rpc/interceptors.ts). */
const reportingRoles: readonly Role[] = ["service", "admin"];

/** QueueCaller is the key the consumer acts as, or why it may not act. */
export type QueueCaller = { caller: Caller } | { refused: "API_KEY_NOT_FOUND" | "API_KEY_REVOKED" | "API_KEY_EXPIRED" | "API_KEY_ROLE_NOT_ALLOWED" };

/** queueCaller reads the key the consumer acts as, and checks that it may report usage now. */
export async function queueCaller(deps: Deps, keyId: string): Promise<QueueCaller> {
  assert(keyId.length > 0, "the consumer names its key");
  const key = await mapDriverErrors(() => selectApiKeySecret(deps.pool, keyId));
  if (key === null) return { refused: "API_KEY_NOT_FOUND" };
  if (key.revokedAt !== null) return { refused: "API_KEY_REVOKED" };
  if (key.expiresAt !== null && key.expiresAt.getTime() <= deps.now().getTime()) return { refused: "API_KEY_EXPIRED" };
  if (!reportingRoles.includes(key.role)) return { refused: "API_KEY_ROLE_NOT_ALLOWED" };
  assert(key.keyId === keyId, "the key read is the key named");
  return { caller: { keyId: key.keyId, name: key.name, role: key.role, grantLimit: key.grantLimit, requestId: null } };
}
