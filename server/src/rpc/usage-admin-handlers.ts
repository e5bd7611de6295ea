// AdminService methods for unrated usage: list the dead letters, and replay them once
// their customer and feature exist.
import type { ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { AdminService } from "@burndown/sdk";
import { invalid } from "../errors.js";
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { listUnratedEvents, replayUnratedEvents } from "../service/unrated-events.js";
import { listUsageConflicts } from "../service/usage-conflicts.js";
import type { StoredUsage } from "../store/usage-store.js";
import { optionalId, requirePageSize, requireText } from "./decode.js";
import { callerOf } from "./ledger-handlers.js";
import { encodeUsageResult } from "./usage-handlers.js";

/** eventOf encodes a stored usage event as it was received. */
function eventOf(stored: StoredUsage) {
  return {
    eventId: stored.eventId,
    customerId: stored.customerId,
    featureKey: stored.featureKey,
    quantity: stored.quantity,
    eventTime: timestampFromDate(stored.eventAt),
    properties: stored.properties,
    offline: stored.offline,
  };
}

/** usageAdminHandlers implements ListUnratedEvents, ReplayUnratedEvents and ListUsageConflicts. */
export function usageAdminHandlers(deps: Deps): Partial<ServiceImpl<typeof AdminService>> {
  return {
    async listUnratedEvents(req) {
      const page = await listUnratedEvents(deps, { pageSize: requirePageSize(req.pageSize), pageToken: req.pageToken });
      return {
        events: page.events.map((stored) => ({
          usageId: stored.usageId,
          reporterKeyId: stored.principal,
          event: eventOf(stored),
          reason: stored.reason,
          receiveTime: timestampFromDate(stored.receivedAt),
        })),
        nextPageToken: page.nextPageToken,
      };
    },
    async listUsageConflicts(req) {
      const page = await listUsageConflicts(deps, {
        reporterKeyId: optionalId("reporter_key_id", req.reporterKeyId),
        customerId: optionalId("customer_id", req.customerId),
        pageSize: requirePageSize(req.pageSize),
        pageToken: req.pageToken,
      });
      return {
        conflicts: page.conflicts.map((conflict) => ({
          conflictId: conflict.conflictId,
          reporterKeyId: conflict.principal,
          event: {
            eventId: conflict.eventId,
            customerId: conflict.customerId,
            featureKey: conflict.featureKey,
            quantity: conflict.quantity,
            eventTime: conflict.eventAt === null ? undefined : timestampFromDate(conflict.eventAt),
            properties: conflict.properties,
            offline: conflict.offline,
          },
          receiveTime: timestampFromDate(conflict.receivedAt),
          firstUsageId: conflict.first?.usageId ?? "",
          firstEvent: conflict.first === null ? undefined : eventOf(conflict.first),
          firstReceiveTime: conflict.first === null ? undefined : timestampFromDate(conflict.first.receivedAt),
        })),
        nextPageToken: page.nextPageToken,
        totalCount: page.total,
      };
    },
    async replayUnratedEvents(req, ctx) {
      if (req.limit < 0 || req.limit > limits.usageBatchSizeMax) throw invalid("INVALID_LIMIT", "limit", `must be between 0 and ${limits.usageBatchSizeMax}`);
      const results = await replayUnratedEvents(deps, callerOf(ctx), {
        limit: req.limit === 0 ? limits.usageBatchSizeMax : req.limit,
        reason: requireText("reason", req.reason, limits.reasonLengthMax),
      });
      return { results: results.map(encodeUsageResult) };
    },
  };
}
