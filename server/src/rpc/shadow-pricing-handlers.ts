// AdminService.GetShadowPricingReport: decode the report's request (the candidate, the
// period, the filters, the page), call the service, encode the page and the totals.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { AdminService, GetShadowPricingReportRequest, ShadowPricingRowSchema, ShadowPricingTotalSchema } from "@burndown/sdk";
import { invalid } from "../errors.js";
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import {
  getShadowPricingReport,
  type ShadowPricingAmounts,
  type ShadowPricingInput,
  type ShadowPricingRow,
  type ShadowPricingTotal,
} from "../service/shadow-pricing.js";
import { optionalCode, optionalTime, requireCode, requireId, requirePageSize } from "./decode.js";

/** requirePeriod checks a report's period: both ends set, the end after the start, at most reportPeriodMsMax long. */
function requirePeriod(req: GetShadowPricingReportRequest): { startAt: Date; endAt: Date } {
  const startAt = optionalTime("start_time", req.startTime);
  const endAt = optionalTime("end_time", req.endTime);
  if (startAt === null) throw invalid("INVALID_PERIOD", "start_time", "is required");
  if (endAt === null) throw invalid("INVALID_PERIOD", "end_time", "is required");
  if (endAt.getTime() <= startAt.getTime()) throw invalid("INVALID_PERIOD", "end_time", "must be after start_time");
  if (endAt.getTime() - startAt.getTime() > limits.reportPeriodMsMax) {
    throw invalid("INVALID_PERIOD", "end_time", `must be at most ${limits.reportPeriodMsMax / 86_400_000} days after start_time`);
  }
  return { startAt, endAt };
}

/** requireFilters checks the customer and feature filters; a repeat is harmless, so it is dropped. */
function requireFilters(req: GetShadowPricingReportRequest): { customerIds: string[]; featureKeys: string[] } {
  if (req.customerIds.length > limits.reportCustomerIdsMax) {
    throw invalid("TOO_MANY_CUSTOMER_IDS", "customer_ids", `must name at most ${limits.reportCustomerIdsMax} customers`);
  }
  if (req.featureKeys.length > limits.reportFeatureKeysMax) {
    throw invalid("TOO_MANY_FEATURE_KEYS", "feature_keys", `must name at most ${limits.reportFeatureKeysMax} features`);
  }
  return {
    customerIds: [...new Set(req.customerIds.map((id, index) => requireId(`customer_ids[${index}]`, id)))],
    featureKeys: [...new Set(req.featureKeys.map((key, index) => requireCode(`feature_keys[${index}]`, key)))],
  };
}

function decodeRequest(req: GetShadowPricingReportRequest): ShadowPricingInput {
  const candidatePricingVersionId = requireCode("candidate_pricing_version_id", req.candidatePricingVersionId);
  const current = optionalCode("current_pricing_version_id", req.currentPricingVersionId);
  return {
    candidatePricingVersionId,
    ...requirePeriod(req),
    ...requireFilters(req),
    currentPricingVersionId: current === "" ? null : current,
    pageSize: requirePageSize(req.pageSize),
    pageToken: req.pageToken,
  };
}

function encodeAmounts(amounts: ShadowPricingAmounts) {
  return {
    events: amounts.events,
    burnedCredits: amounts.burnedCredits,
    shadowedCredits: amounts.shadowedCredits,
    notBilledCredits: amounts.notBilledCredits,
    currentCredits: amounts.currentCredits,
    candidateCredits: amounts.candidateCredits,
  };
}

function encodeRow(row: ShadowPricingRow): MessageInitShape<typeof ShadowPricingRowSchema> {
  return { customerId: row.customerId, featureKey: row.featureKey, creditTypeId: row.creditTypeId, quantity: row.quantity, ...encodeAmounts(row) };
}

function encodeTotal(total: ShadowPricingTotal): MessageInitShape<typeof ShadowPricingTotalSchema> {
  return { creditTypeId: total.creditTypeId, ...encodeAmounts(total) };
}

/** shadowPricingHandlers implements GetShadowPricingReport. */
export function shadowPricingHandlers(deps: Deps): Partial<ServiceImpl<typeof AdminService>> {
  return {
    async getShadowPricingReport(req) {
      const report = await getShadowPricingReport(deps, decodeRequest(req));
      return { rows: report.rows.map(encodeRow), totals: report.totals.map(encodeTotal), nextPageToken: report.nextPageToken };
    },
  };
}
