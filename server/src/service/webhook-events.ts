// Webhook events: the outbox as people read it (newest first, with each delivery) and
// replay. Events are queued by the changes that cause them (enqueueWebhookEvents in their
// transaction); the worker (jobs/webhook-delivery.ts) sends them.
import { invalid, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { mapDriverErrors } from "../store/database.js";
import { requeueDeliveries, selectEvents, selectMissingEvents, type WebhookEventRow } from "../store/webhook-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { runIdempotent } from "./run-idempotent.js";
import { requireEndpoint } from "./webhook-endpoints.js";

function decodeToken(pageToken: string): bigint | null {
  if (pageToken === "") return null;
  const [version, before] = Buffer.from(pageToken, "base64url").toString("utf8").split(":");
  if (version !== "webhook1" || !/^[1-9][0-9]{0,18}$/.test(before ?? "") || BigInt(before) > limits.amountMax) {
    throw invalid("INVALID_PAGE_TOKEN", "page_token", "not a token from a previous page of webhook events");
  }
  return BigInt(before);
}

/** listWebhookEvents reads one page of outbox events, newest first, and the token for the next. */
export async function listWebhookEvents(
  deps: Deps,
  input: { endpointId: string | null; pageSize: number; pageToken: string },
): Promise<{ events: WebhookEventRow[]; nextPageToken: string }> {
  const beforeSeq = decodeToken(input.pageToken);
  const rows = await mapDriverErrors(() => selectEvents(deps.pool, { endpointId: input.endpointId, beforeSeq, limit: input.pageSize + 1 }));
  const events = rows.slice(0, input.pageSize);
  const last = events.at(-1);
  const nextPageToken = rows.length > input.pageSize && last ? Buffer.from(`webhook1:${last.seq}`).toString("base64url") : "";
  return { events, nextPageToken };
}

/** ReplaySelection is what to send again: named events, or the failed ones since a time. */
export type ReplaySelection = { eventIds: string[] } | { since: Date };

/** replayWebhookEvents queues deliveries again, due now, to one enabled endpoint; audited. */
export async function replayWebhookEvents(
  deps: Deps,
  caller: Caller,
  idempotency: Idempotency,
  input: { endpointId: string; selection: ReplaySelection },
): Promise<{ replayedCount: bigint }> {
  const { selection } = input;
  assert(!("eventIds" in selection) || selection.eventIds.length <= limits.webhookReplayEventsMax, "replays are bounded");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    await requireEndpoint(tx, input.endpointId, true);
    if ("eventIds" in selection) {
      const [missing] = await selectMissingEvents(tx, selection.eventIds);
      if (missing !== undefined) throw notFound("WEBHOOK_EVENT_NOT_FOUND", "event id", missing);
    }
    const count = await requeueDeliveries(tx, {
      endpointId: input.endpointId,
      eventIds: "eventIds" in selection ? selection.eventIds : null,
      since: "since" in selection ? selection.since : null,
      limit: limits.webhookReplayEventsMax,
    });
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "replay_webhook_events",
      target: `webhook_endpoint:${input.endpointId}`,
      reason: "replay",
      details: {
        old: null,
        new: "eventIds" in selection ? { event_ids: selection.eventIds } : { since_time: selection.since.toISOString() },
        replayed_count: String(count),
      },
    });
    return { replayedCount: BigInt(count) };
  });
}
