// WebhookService: decode, call one service, encode.
import type { ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  CreateWebhookEndpointRequestSchema,
  DisableWebhookEndpointRequestSchema,
  ReplayWebhookEventsRequestSchema,
  RotateWebhookSecretRequestSchema,
  WebhookDeliveryStatus,
  type WebhookService,
} from "@burndown/sdk";
import { invalid } from "../errors.js";
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { createWebhookEndpoint, disableWebhookEndpoint, listWebhookEndpoints, rotateWebhookSecret, webhookEventTypes } from "../service/webhook-endpoints.js";
import { listWebhookEvents, type ReplaySelection, replayWebhookEvents } from "../service/webhook-events.js";
import type { WebhookDeliveryRow, WebhookEndpointRow, WebhookEventRow } from "../store/webhook-store.js";
import { optionalTime, requirePageSize, requireText, requireUuid } from "./decode.js";
import { callerOf } from "./ledger-handlers.js";
import { idempotencyOf } from "./request-hash.js";

/** requireUrl checks an endpoint URL: absolute http or https, bounded. */
function requireUrl(value: string): string {
  let url: URL | null = null;
  try {
    url = value.length > 0 && value.length <= limits.webhookUrlLengthMax ? new URL(value) : null;
  } catch {
    // Not a URL at all: refused below like any other.
    url = null;
  }
  if (url === null || !(url.protocol === "http:" || url.protocol === "https:") || url.hostname === "") {
    throw invalid("INVALID_URL", "url", `must be an absolute http or https URL of at most ${limits.webhookUrlLengthMax} characters`);
  }
  return value;
}

/** requireEventTypes checks subscribed event types against the known ones; duplicates are dropped. */
function requireEventTypes(values: string[]): string[] {
  const unknown = values.find((type) => !webhookEventTypes.includes(type));
  if (unknown !== undefined) throw invalid("INVALID_EVENT_TYPE", "event_types", `${JSON.stringify(unknown)} is not one of ${webhookEventTypes.join(", ")}`);
  return [...new Set(values)];
}

function requireEndpointId(value: string): string {
  return requireUuid("endpoint_id", value);
}

/** requireReplaySelection checks that a replay names event ids or a since_time, not both. */
function requireReplaySelection(eventIds: string[], since: Date | null): ReplaySelection {
  if ((eventIds.length > 0) === (since !== null)) throw invalid("INVALID_REPLAY_SELECTION", "event_ids", "set either event_ids or since_time");
  if (since !== null) return { since };
  if (eventIds.length > limits.webhookReplayEventsMax) throw invalid("TOO_MANY_EVENT_IDS", "event_ids", `at most ${limits.webhookReplayEventsMax}`);
  return { eventIds: [...new Set(eventIds.map((id) => requireUuid("event_ids", id)))] };
}

function encodeEndpoint(row: WebhookEndpointRow) {
  return {
    endpointId: row.endpointId,
    url: row.url,
    eventTypes: row.eventTypes,
    description: row.description,
    createTime: timestampFromDate(row.createdAt),
    disableTime: row.disabledAt === null ? undefined : timestampFromDate(row.disabledAt),
    secretTime: timestampFromDate(row.secretAt),
  };
}

const statuses = { pending: WebhookDeliveryStatus.PENDING, delivered: WebhookDeliveryStatus.DELIVERED, failed: WebhookDeliveryStatus.FAILED };

function encodeDelivery(row: WebhookDeliveryRow) {
  return {
    endpointId: row.endpointId,
    status: statuses[row.status],
    attempts: row.attempts,
    lastHttpStatus: row.lastHttpStatus,
    lastError: row.lastError,
    nextAttemptTime: row.status === "pending" ? timestampFromDate(row.nextAttemptAt) : undefined,
    deliverTime: row.deliveredAt === null ? undefined : timestampFromDate(row.deliveredAt),
  };
}

function encodeEvent(row: WebhookEventRow) {
  return {
    eventId: row.eventId,
    type: row.type,
    customerId: row.customerId,
    payloadJson: JSON.stringify(row.payload),
    createTime: timestampFromDate(row.createdAt),
    deliveries: row.deliveries.map(encodeDelivery),
  };
}

/** webhookHandlers implements WebhookService. */
export function webhookHandlers(deps: Deps): ServiceImpl<typeof WebhookService> {
  return {
    async createWebhookEndpoint(req, ctx) {
      const idempotency = idempotencyOf(CreateWebhookEndpointRequestSchema, "CreateWebhookEndpoint", req);
      const result = await createWebhookEndpoint(deps, callerOf(ctx), idempotency, {
        url: requireUrl(req.url),
        eventTypes: requireEventTypes(req.eventTypes),
        description: requireText("description", req.description, limits.noteLengthMax),
      });
      return { endpoint: encodeEndpoint(result.endpoint), secret: result.secret };
    },
    async listWebhookEndpoints() {
      return { endpoints: (await listWebhookEndpoints(deps)).map(encodeEndpoint) };
    },
    async disableWebhookEndpoint(req, ctx) {
      const idempotency = idempotencyOf(DisableWebhookEndpointRequestSchema, "DisableWebhookEndpoint", req);
      const endpoint = await disableWebhookEndpoint(deps, callerOf(ctx), idempotency, requireEndpointId(req.endpointId));
      return { endpoint: encodeEndpoint(endpoint) };
    },
    async rotateWebhookSecret(req, ctx) {
      const idempotency = idempotencyOf(RotateWebhookSecretRequestSchema, "RotateWebhookSecret", req);
      const result = await rotateWebhookSecret(deps, callerOf(ctx), idempotency, requireEndpointId(req.endpointId));
      return { endpoint: encodeEndpoint(result.endpoint), secret: result.secret };
    },
    async listWebhookEvents(req) {
      const page = await listWebhookEvents(deps, {
        endpointId: req.endpointId === "" ? null : requireEndpointId(req.endpointId),
        pageSize: requirePageSize(req.pageSize),
        pageToken: requireText("page_token", req.pageToken, limits.pageTokenLengthMax),
      });
      return { events: page.events.map(encodeEvent), nextPageToken: page.nextPageToken };
    },
    async replayWebhookEvents(req, ctx) {
      const idempotency = idempotencyOf(ReplayWebhookEventsRequestSchema, "ReplayWebhookEvents", req);
      const result = await replayWebhookEvents(deps, callerOf(ctx), idempotency, {
        endpointId: requireEndpointId(req.endpointId),
        selection: requireReplaySelection(req.eventIds, optionalTime("since_time", req.sinceTime)),
      });
      return { replayedCount: result.replayedCount };
    },
  };
}
