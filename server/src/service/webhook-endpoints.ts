// Webhook endpoints: create (the secret shown once), list, disable, rotate the secret.
// Each mutation is idempotent (runIdempotent) and audited; the audit never holds a secret.
import { randomBytes, randomUUID } from "node:crypto";
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { mapDriverErrors, type Tx } from "../store/database.js";
import { disableEndpoint, insertEndpoint, lockEndpoint, lockEndpointCount, selectEndpoints, updateSecret, type WebhookEndpointRow } from "../store/webhook-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { runIdempotent } from "./run-idempotent.js";

/** webhookEventTypes are the event types endpoints may subscribe to (see webhooks.proto). */
export const webhookEventTypes: readonly string[] = [
  "grant.created",
  "balance.negative",
  "pricing_version.moved",
  "topup.paid",
  "topup.refunded",
  "credits.expiring",
  "balance.low",
  "recharge.requested",
  "recharge.failed",
  "grant_request.created",
];

/** newSecret makes a signing secret: "whsec_" and 32 random bytes, base64url. */
function newSecret(): string {
  return `whsec_${randomBytes(32).toString("base64url")}`;
}

/** EndpointWithSecret is an endpoint and its secret, as shown once. */
export interface EndpointWithSecret {
  endpoint: WebhookEndpointRow;
  /** empty in a replay of the request. */
  secret: string;
}

const withoutSecret = (result: EndpointWithSecret): EndpointWithSecret => ({ ...result, secret: "" });

/** createWebhookEndpoint adds an endpoint, at most limits.webhookEndpointsMax enabled at once. */
export async function createWebhookEndpoint(
  deps: Deps,
  caller: Caller,
  idempotency: Idempotency,
  input: { url: string; eventTypes: string[]; description: string },
): Promise<EndpointWithSecret> {
  assert(input.eventTypes.every((type) => webhookEventTypes.includes(type)), "event types are checked before");
  return runIdempotent(
    deps,
    caller,
    idempotency,
    async (tx) => {
      if ((await lockEndpointCount(tx)) >= limits.webhookEndpointsMax) {
        throw new LedgerError("rejected", "TOO_MANY_WEBHOOK_ENDPOINTS", `at most ${limits.webhookEndpointsMax} webhook endpoints may be enabled; disable one first`, {
          endpoints_max: String(limits.webhookEndpointsMax),
        });
      }
      const secret = newSecret();
      const endpoint = await insertEndpoint(tx, { endpointId: randomUUID(), ...input, secret, createdBy: caller.keyId });
      await insertAuditRecord(tx, {
        actor: caller.keyId,
        requestId: caller.requestId,
        action: "create_webhook_endpoint",
        target: `webhook_endpoint:${endpoint.endpointId}`,
        reason: input.description === "" ? "webhook endpoint" : input.description,
        details: { old: null, new: { url: input.url, event_types: input.eventTypes, description: input.description } },
      });
      return { endpoint, secret };
    },
    withoutSecret,
  );
}

/** listWebhookEndpoints reads every endpoint, newest first, without secrets. */
export async function listWebhookEndpoints(deps: Deps): Promise<WebhookEndpointRow[]> {
  // Enabled ones are bounded; disabled ones are kept, so the list is bounded too.
  return mapDriverErrors(() => selectEndpoints(deps.pool, limits.pageSizeMax));
}

/** requireEndpoint locks an endpoint or refuses with WEBHOOK_ENDPOINT_NOT_FOUND; with enabled, a disabled one is refused too. */
export async function requireEndpoint(tx: Tx, endpointId: string, enabled: boolean): Promise<WebhookEndpointRow> {
  const endpoint = await lockEndpoint(tx, endpointId);
  if (endpoint === null) throw notFound("WEBHOOK_ENDPOINT_NOT_FOUND", "endpoint id", endpointId);
  if (enabled && endpoint.disabledAt !== null) {
    throw new LedgerError("rejected", "WEBHOOK_ENDPOINT_DISABLED", `webhook endpoint ${endpointId} is disabled`, { endpoint_id: endpointId });
  }
  return endpoint;
}

/** disableWebhookEndpoint stops an endpoint for good; an endpoint already disabled is returned as it is. */
export async function disableWebhookEndpoint(deps: Deps, caller: Caller, idempotency: Idempotency, endpointId: string): Promise<WebhookEndpointRow> {
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const endpoint = await requireEndpoint(tx, endpointId, false);
    if (endpoint.disabledAt !== null) return endpoint;
    const disabled = await disableEndpoint(tx, endpointId);
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "disable_webhook_endpoint",
      target: `webhook_endpoint:${endpointId}`,
      reason: endpoint.description === "" ? "webhook endpoint" : endpoint.description,
      details: { old: { enabled: true }, new: { enabled: false } },
    });
    return disabled;
  });
}

/** rotateWebhookSecret replaces an enabled endpoint's secret; the new one is shown once. */
export async function rotateWebhookSecret(deps: Deps, caller: Caller, idempotency: Idempotency, endpointId: string): Promise<EndpointWithSecret> {
  return runIdempotent(
    deps,
    caller,
    idempotency,
    async (tx) => {
      await requireEndpoint(tx, endpointId, true);
      const secret = newSecret();
      const endpoint = await updateSecret(tx, endpointId, secret);
      await insertAuditRecord(tx, {
        actor: caller.keyId,
        requestId: caller.requestId,
        action: "rotate_webhook_secret",
        target: `webhook_endpoint:${endpointId}`,
        reason: endpoint.description === "" ? "webhook endpoint" : endpoint.description,
        details: { old: null, new: { secret_time: endpoint.secretAt.toISOString() } },
      });
      return { endpoint, secret };
    },
    withoutSecret,
  );
}
