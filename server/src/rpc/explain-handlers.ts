// AdminService handlers for explaining and correcting a usage event: decode, call one
// service function, encode.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  type AdminService,
  CorrectUsageEventRequestSchema,
  type ExplainUsageEventResponseSchema,
  type RateBreakdownSchema,
  type UsageCorrectionSchema,
  UsageOutcome,
} from "@burndown/sdk";
import { limits } from "../limits.js";
import { LedgerError } from "../errors.js";
import type { Deps } from "../service/context.js";
import { correctUsageEvent } from "../service/correct-usage.js";
import { explainUsageEvent, type UsageEventRef, type UsageExplanation } from "../service/explain-usage.js";
import type { CorrectionRow } from "../store/correction-store.js";
import type { StoredUsage, UsageStatus } from "../store/usage-store.js";
import { optionalId, requireCode, requireId, requireText } from "./decode.js";
import { encodeEntry, encodeLot } from "./encode.js";
import { callerOf } from "./ledger-handlers.js";
import { idempotencyOf } from "./request-hash.js";

/** requireUsageId reads a usage id: the decimal int64 a ledger entry carries. */
function requireUsageId(value: string): bigint {
  if (!/^[1-9][0-9]{0,18}$/.test(value) || BigInt(value) > 9_223_372_036_854_775_807n) {
    throw new LedgerError("invalid", "INVALID_ID", "usage_id must be a usage id from a ledger entry (a positive integer)", { field: "usage_id" });
  }
  return BigInt(value);
}

const outcomes: Record<UsageStatus, UsageOutcome> = {
  burned: UsageOutcome.BURNED,
  shadowed: UsageOutcome.SHADOWED,
  not_billed: UsageOutcome.NOT_BILLED,
  unrated: UsageOutcome.UNRATED,
};

/** encodeRating shows how an event's credits were computed; unset for events not rated into credits. */
function encodeRating(usage: StoredUsage): MessageInitShape<typeof RateBreakdownSchema> | undefined {
  if (usage.status !== "burned" && usage.status !== "shadowed") return undefined;
  return {
    pricingVersionId: usage.pricingVersionId ?? "",
    override: usage.rateOverride,
    rate: { credits: usage.rateCredits ?? 0n, perUnits: usage.ratePerUnits ?? 0n },
    carryBefore: usage.carryBefore ?? 0n,
    carryAfter: usage.carryAfter ?? 0n,
    credits: usage.credits ?? 0n,
  };
}

function encodeCorrection(correction: CorrectionRow): MessageInitShape<typeof UsageCorrectionSchema> {
  return {
    actor: correction.actor,
    reasonCode: correction.reasonCode,
    note: correction.note,
    createTime: timestampFromDate(correction.createdAt),
    credits: correction.credits,
  };
}

function encodeExplanation(explanation: UsageExplanation): MessageInitShape<typeof ExplainUsageEventResponseSchema> {
  const { usage } = explanation;
  return {
    usageId: usage.usageId,
    reporterKeyId: usage.principal,
    event: {
      eventId: usage.eventId,
      customerId: usage.customerId,
      featureKey: usage.featureKey,
      quantity: usage.quantity,
      eventTime: timestampFromDate(usage.eventAt),
      properties: usage.properties,
      offline: usage.offline,
    },
    outcome: outcomes[usage.status],
    reason: usage.reason,
    receiveTime: timestampFromDate(usage.receivedAt),
    creditTypeId: usage.creditTypeId ?? "",
    rating: encodeRating(usage),
    entries: explanation.entries.map(encodeEntry),
    lots: explanation.lots.map(encodeLot),
    overLimit: usage.overLimit,
    correction: explanation.correction === null ? undefined : encodeCorrection(explanation.correction),
  };
}

/** explainHandlers implements AdminService's ExplainUsageEvent and CorrectUsageEvent. */
export function explainHandlers(deps: Deps): Partial<ServiceImpl<typeof AdminService>> {
  return {
    async explainUsageEvent(req, ctx) {
      const reporterKeyId = optionalId("reporter_key_id", req.reporterKeyId);
      const caller = callerOf(ctx);
      const event: UsageEventRef =
        req.usageId !== ""
          ? { usageId: requireUsageId(req.usageId) }
          : { eventId: requireId("event_id", req.eventId), reporterKeyId: reporterKeyId === "" ? null : reporterKeyId };
      // A customer key sees its own customer's events only; another's is USAGE_EVENT_NOT_FOUND, as a missing one.
      const explanation = await explainUsageEvent(deps, caller.role === "customer" ? { ...event, customerId: caller.customerId } : event);
      return encodeExplanation(explanation);
    },
    async correctUsageEvent(req, ctx) {
      const idempotency = idempotencyOf(CorrectUsageEventRequestSchema, "CorrectUsageEvent", req);
      const reporterKeyId = optionalId("reporter_key_id", req.reporterKeyId);
      const result = await correctUsageEvent(deps, callerOf(ctx), idempotency, {
        eventId: requireId("event_id", req.eventId),
        reporterKeyId: reporterKeyId === "" ? null : reporterKeyId,
        reasonCode: requireCode("reason_code", req.reasonCode),
        note: requireText("note", req.note, limits.noteLengthMax),
      });
      return { correction: encodeCorrection(result.correction), entries: result.entries.map(encodeEntry) };
    },
  };
}
