// AdminService handlers for pricing versions, rate overrides (set and listed), enforcement
// switches and the audit log: decode, call one service function, encode.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  type AdminService,
  type AuditRecordSchema,
  CreatePricingVersionRequestSchema,
  MoveCustomersToPricingVersionRequestSchema,
  type PricingVersionSchema,
  type Rate,
  type RateSchema,
  SetDefaultPricingVersionRequestSchema,
  SetEnforcementModeRequestSchema,
  SetEnforcementRolloutRequestSchema,
  SetFailurePolicyRequestSchema,
  SetKillSwitchRequestSchema,
  SetRateOverrideRequestSchema,
} from "@burndown/sdk";
import { invalid } from "../errors.js";
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { setEnforcementMode, setEnforcementRollout, setFailurePolicy, setKillSwitch } from "../service/enforcement.js";
import { listAuditRecords } from "../service/list-audit-records.js";
import { listRateOverrides } from "../service/list-rate-overrides.js";
import { createPricingVersion, listPricingVersions, moveCustomersToPricingVersion, setDefaultPricingVersion, setRateOverride } from "../service/pricing.js";
import type { AuditRecordRow } from "../store/audit-store.js";
import type { PricingVersionRow, RateValue } from "../store/pricing-store.js";
import { optionalCode, requireCode, requireEnforcementMode, requireFailurePolicy, requireId, requireNonNegative, requirePageSize, requireRollout, requireText } from "./decode.js";
import { encodeFeature } from "./encode.js";
import { callerOf } from "./ledger-handlers.js";
import { isRequestId } from "./observe-interceptor.js";
import { idempotencyOf } from "./request-hash.js";

function required<T>(field: string, value: T | undefined): T {
  if (value === undefined) throw invalid("MISSING_FIELD", field, "is required");
  return value;
}

/** requireReason checks the reason of an audited action: 1 to limits.reasonLengthMax characters, not blank. */
function requireReason(value: string): string {
  return requireText("reason", value, limits.reasonLengthMax, true);
}

/** requireRate checks a Rate: credits 0 or more, per_units 0 or more where 0 means 1. */
function requireRate(field: string, rate: Rate): RateValue {
  const credits = requireNonNegative(`${field}.credits`, rate.credits);
  const perUnits = requireNonNegative(`${field}.per_units`, rate.perUnits);
  return { credits, perUnits: perUnits === 0n ? 1n : perUnits };
}

function requireRates(rates: { featureKey: string; rate?: Rate }[]): ({ featureKey: string } & RateValue)[] {
  if (rates.length > limits.ratesPerVersionMax) throw invalid("TOO_MANY_RATES", "pricing_version.rates", `must have at most ${limits.ratesPerVersionMax} rates`);
  const seen = new Set<string>();
  return rates.map((featureRate, index) => {
    const field = `pricing_version.rates[${index}]`;
    const featureKey = requireCode(`${field}.feature_key`, featureRate.featureKey);
    if (seen.has(featureKey)) throw invalid("DUPLICATE_FEATURE", `${field}.feature_key`, `rates feature ${JSON.stringify(featureKey)} twice`);
    seen.add(featureKey);
    return { featureKey, ...requireRate(`${field}.rate`, required(`${field}.rate`, featureRate.rate)) };
  });
}

function requireCustomerIds(customerIds: string[]): string[] {
  if (customerIds.length > limits.customerIdsPerMoveMax) {
    throw invalid("TOO_MANY_CUSTOMER_IDS", "customer_ids", `must name at most ${limits.customerIdsPerMoveMax} customers`);
  }
  // Naming a customer twice moves it once; repeats are harmless, so they are dropped.
  return [...new Set(customerIds.map((customerId, index) => requireId(`customer_ids[${index}]`, customerId)))];
}

function encodeRate(rate: RateValue): MessageInitShape<typeof RateSchema> {
  return { credits: rate.credits, perUnits: rate.perUnits };
}

function encodePricingVersion(version: PricingVersionRow): MessageInitShape<typeof PricingVersionSchema> {
  return {
    pricingVersionId: version.pricingVersionId,
    displayName: version.displayName,
    rates: version.rates.map((rate) => ({ featureKey: rate.featureKey, rate: encodeRate(rate) })),
    createTime: timestampFromDate(version.createdAt),
  };
}

function encodeAuditRecord(record: AuditRecordRow): MessageInitShape<typeof AuditRecordSchema> {
  return {
    auditId: record.auditId.toString(),
    actor: record.actor,
    action: record.action,
    target: record.target,
    reason: record.reason,
    detailsJson: JSON.stringify(record.details),
    createTime: timestampFromDate(record.createdAt),
    requestId: record.requestId ?? "",
  };
}

/** auditRequestIdOf is ListAuditRecords' request id filter: null when empty, else a request id as the server keeps them. */
function auditRequestIdOf(value: string): string | null {
  if (value === "") return null;
  if (!isRequestId(value)) throw invalid("INVALID_ID", "request_id", "must be a request id: 1-128 letters, digits and . _ : -");
  return value;
}

/** pricingHandlers implements AdminService's pricing, enforcement and audit methods. */
export function pricingHandlers(deps: Deps): Partial<ServiceImpl<typeof AdminService>> {
  return {
    async createPricingVersion(req, ctx) {
      const idempotency = idempotencyOf(CreatePricingVersionRequestSchema, "CreatePricingVersion", req);
      const version = required("pricing_version", req.pricingVersion);
      const created = await createPricingVersion(deps, callerOf(ctx), idempotency, {
        pricingVersionId: requireCode("pricing_version.pricing_version_id", version.pricingVersionId),
        displayName: requireText("pricing_version.display_name", version.displayName, limits.displayNameLengthMax),
        rates: requireRates(version.rates),
        makeDefault: req.makeDefault,
      });
      return { pricingVersion: encodePricingVersion(created) };
    },
    async listPricingVersions() {
      const listed = await listPricingVersions(deps);
      return { pricingVersions: listed.versions.map(encodePricingVersion), defaultPricingVersionId: listed.defaultPricingVersionId ?? "" };
    },
    async setDefaultPricingVersion(req, ctx) {
      const idempotency = idempotencyOf(SetDefaultPricingVersionRequestSchema, "SetDefaultPricingVersion", req);
      const result = await setDefaultPricingVersion(deps, callerOf(ctx), idempotency, {
        pricingVersionId: requireCode("pricing_version_id", req.pricingVersionId),
        reason: requireReason(req.reason),
      });
      return { pricingVersionId: result.pricingVersionId };
    },
    async moveCustomersToPricingVersion(req, ctx) {
      const idempotency = idempotencyOf(MoveCustomersToPricingVersionRequestSchema, "MoveCustomersToPricingVersion", req);
      const from = optionalCode("from_pricing_version_id", req.fromPricingVersionId);
      const to = requireCode("to_pricing_version_id", req.toPricingVersionId);
      if (from === to) throw invalid("SAME_PRICING_VERSION", "to_pricing_version_id", "must differ from from_pricing_version_id");
      const result = await moveCustomersToPricingVersion(deps, callerOf(ctx), idempotency, {
        fromPricingVersionId: from === "" ? null : from,
        toPricingVersionId: to,
        customerIds: requireCustomerIds(req.customerIds),
        reason: requireReason(req.reason),
      });
      return { movedCount: result.movedCount };
    },
    async setRateOverride(req, ctx) {
      const idempotency = idempotencyOf(SetRateOverrideRequestSchema, "SetRateOverride", req);
      const result = await setRateOverride(deps, callerOf(ctx), idempotency, {
        customerId: requireId("customer_id", req.customerId),
        featureKey: requireCode("feature_key", req.featureKey),
        rate: req.rate === undefined ? null : requireRate("rate", req.rate),
        reason: requireReason(req.reason),
      });
      return { rate: result.rate === null ? undefined : encodeRate(result.rate) };
    },
    async listRateOverrides(req) {
      const overrides = await listRateOverrides(deps, requireId("customer_id", req.customerId));
      return {
        overrides: overrides.map((override) => ({
          featureKey: override.featureKey,
          rate: encodeRate(override),
          effectiveTime: override.effectiveAt === null ? undefined : timestampFromDate(override.effectiveAt),
        })),
      };
    },
    async setEnforcementMode(req, ctx) {
      const idempotency = idempotencyOf(SetEnforcementModeRequestSchema, "SetEnforcementMode", req);
      const feature = await setEnforcementMode(deps, callerOf(ctx), idempotency, {
        featureKey: requireCode("feature_key", req.featureKey),
        mode: requireEnforcementMode("mode", req.mode),
        reason: requireReason(req.reason),
      });
      return { feature: encodeFeature(feature) };
    },
    async setEnforcementRollout(req, ctx) {
      const idempotency = idempotencyOf(SetEnforcementRolloutRequestSchema, "SetEnforcementRollout", req);
      const feature = await setEnforcementRollout(deps, callerOf(ctx), idempotency, {
        featureKey: requireCode("feature_key", req.featureKey),
        rollout: req.rollout === undefined ? null : requireRollout(req.rollout),
        reason: requireReason(req.reason),
      });
      return { feature: encodeFeature(feature) };
    },
    async setKillSwitch(req, ctx) {
      const idempotency = idempotencyOf(SetKillSwitchRequestSchema, "SetKillSwitch", req);
      const result = await setKillSwitch(deps, callerOf(ctx), idempotency, { enabled: req.enabled, reason: requireReason(req.reason) });
      return { enabled: result.enabled };
    },
    async setFailurePolicy(req, ctx) {
      const idempotency = idempotencyOf(SetFailurePolicyRequestSchema, "SetFailurePolicy", req);
      const budget = req.offlineBudget;
      const offlineMs = budget?.durationMax === undefined ? 0 : Number(budget.durationMax.seconds) * 1000 + Math.floor(budget.durationMax.nanos / 1e6);
      if (budget?.durationMax && (budget.durationMax.nanos < 0 || budget.durationMax.nanos > 999_999_999 || offlineMs < 0 || offlineMs > limits.offlineBudgetMsMax)) {
        throw invalid("INVALID_DURATION", "offline_budget.duration_max", `must be between 0 and ${limits.offlineBudgetMsMax / 86_400_000} days`);
      }
      const feature = await setFailurePolicy(deps, callerOf(ctx), idempotency, {
        featureKey: requireCode("feature_key", req.featureKey),
        policy: {
          failurePolicy: requireFailurePolicy("failure_policy", req.failurePolicy),
          offlineCreditsMax: requireNonNegative("offline_budget.credits_max", budget?.creditsMax ?? 0n),
          offlineMsMax: BigInt(offlineMs),
        },
        reason: requireReason(req.reason),
      });
      return { feature: encodeFeature(feature) };
    },
    async listAuditRecords(req) {
      const page = await listAuditRecords(deps, {
        pageSize: requirePageSize(req.pageSize),
        pageToken: requireText("page_token", req.pageToken, limits.pageTokenLengthMax),
        requestId: auditRequestIdOf(req.requestId),
      });
      return { auditRecords: page.records.map(encodeAuditRecord), nextPageToken: page.nextPageToken };
    },
  };
}
