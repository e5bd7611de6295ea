// AdminService methods for unrated usage: list the dead letters, and replay them once
// their customer and feature exist.
import type { ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { AdminService } from "@burndown/sdk";
import { invalid } from "../errors.js";
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { listUnratedEvents, replayUnratedEvents } from "../service/unrated-events.js";
import { requirePageSize, requireText } from "./decode.js";
import { callerOf } from "./ledger-handlers.js";
import { encodeUsageResult } from "./usage-handlers.js";

/** usageAdminHandlers implements ListUnratedEvents and ReplayUnratedEvents. */
export function usageAdminHandlers(deps: Deps): Partial<ServiceImpl<typeof AdminService>> {
  return {
    async listUnratedEvents(req) {
      const page = await listUnratedEvents(deps, { pageSize: requirePageSize(req.pageSize), pageToken: req.pageToken });
      return {
        events: page.events.map((stored) => ({
          usageId: stored.usageId,
          reporterKeyId: stored.principal,
          event: {
            eventId: stored.eventId,
            customerId: stored.customerId,
            featureKey: stored.featureKey,
            quantity: stored.quantity,
            eventTime: timestampFromDate(stored.eventAt),
            properties: stored.properties,
            offline: stored.offline,
          },
          reason: stored.reason,
          receiveTime: timestampFromDate(stored.receivedAt),
        })),
        nextPageToken: page.nextPageToken,
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
