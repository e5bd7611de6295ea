// LedgerService usage methods: ReportUsage and Check. Decode, call one service, encode.
import type { ServiceImpl } from "@connectrpc/connect";
import { CheckReason, EnforcementRule, type LedgerService, type UsageEvent, UsageOutcome } from "@burndown/sdk";
import { invalid, LedgerError } from "../errors.js";
import { limits } from "../limits.js";
import { check, type CheckReason as DomainCheckReason } from "../service/check.js";
import type { Rule } from "../ledger/enforcement.js";
import type { Deps } from "../service/context.js";
import { reportUsage, type UsageInput, type UsageOutcome as DomainOutcome, type UsageResult } from "../service/report-usage.js";
import { enforcementModeOf, optionalTime, requireCode, requireId, requireQuantity } from "./decode.js";
import { encodeBalance } from "./encode.js";
import { ownCustomer } from "./interceptors.js";
import { callerOf } from "./ledger-handlers.js";

const outcomes: Record<DomainOutcome, UsageOutcome> = {
  burned: UsageOutcome.BURNED,
  duplicate: UsageOutcome.DUPLICATE,
  rejected: UsageOutcome.REJECTED,
  unrated: UsageOutcome.UNRATED,
  shadowed: UsageOutcome.SHADOWED,
  not_billed: UsageOutcome.NOT_BILLED,
};

const enforcementRules: Record<Rule, EnforcementRule> = {
  feature_default: EnforcementRule.FEATURE_DEFAULT,
  customer_list: EnforcementRule.CUSTOMER_LIST,
  percentage: EnforcementRule.PERCENTAGE,
  no_feature: EnforcementRule.NO_FEATURE,
};

const checkReasons: Record<DomainCheckReason, CheckReason> = {
  sufficient_credits: CheckReason.SUFFICIENT_CREDITS,
  insufficient_credits: CheckReason.INSUFFICIENT_CREDITS,
  observe_only: CheckReason.OBSERVE_ONLY,
  enforcement_off: CheckReason.ENFORCEMENT_OFF,
  kill_switch: CheckReason.KILL_SWITCH,
  child_limit_exceeded: CheckReason.CHILD_LIMIT_EXCEEDED,
};

/** encodeUsageResult converts one event's result. */
export function encodeUsageResult(result: UsageResult) {
  return { ...result, outcome: outcomes[result.outcome] };
}

function requireProperties(properties: Record<string, string>): Record<string, string> {
  const entries = Object.entries(properties);
  if (entries.length > limits.usagePropertiesMax) throw invalid("TOO_MANY_PROPERTIES", "properties", `at most ${limits.usagePropertiesMax} entries`);
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > limits.usagePropertyKeyLengthMax || value.length > limits.usagePropertyValueLengthMax) {
      throw invalid("INVALID_PROPERTY", "properties", `keys 1-${limits.usagePropertyKeyLengthMax} and values up to ${limits.usagePropertyValueLengthMax} characters`);
    }
    // Stored as jsonb, which cannot hold NUL.
    if (key.includes("\u0000") || value.includes("\u0000")) throw invalid("INVALID_PROPERTY", "properties", "keys and values must not contain NUL characters");
  }
  return properties;
}

/** decodeUsageEvent checks one event; a malformed event becomes a per-event rejection, not a failed batch. */
export function decodeUsageEvent(event: UsageEvent): UsageInput | { eventId: string; rejected: string } {
  try {
    return {
      eventId: requireId("event_id", event.eventId),
      customerId: requireId("customer_id", event.customerId),
      featureKey: requireCode("feature_key", event.featureKey),
      quantity: requireQuantity("quantity", event.quantity),
      eventAt: optionalTime("event_time", event.eventTime),
      properties: requireProperties(event.properties),
      offline: event.offline,
    };
  } catch (error) {
    if (error instanceof LedgerError && error.kind === "invalid") return { eventId: event.eventId.slice(0, limits.idLengthMax), rejected: error.reason };
    throw error;
  }
}

/** usageHandlers implements LedgerService's ReportUsage and Check. */
export function usageHandlers(deps: Deps): Partial<ServiceImpl<typeof LedgerService>> {
  return {
    async reportUsage(req, ctx) {
      if (req.events.length === 0 || req.events.length > limits.usageBatchSizeMax) {
        throw invalid("INVALID_BATCH_SIZE", "events", `send 1 to ${limits.usageBatchSizeMax} events`);
      }
      const results = await reportUsage(deps, callerOf(ctx), req.events.map(decodeUsageEvent));
      return { results: results.map(encodeUsageResult) };
    },
    async check(req, ctx) {
      const quantity = req.quantity === 0n ? 1n : requireQuantity("quantity", req.quantity);
      const customerId = ownCustomer(callerOf(ctx), requireId("customer_id", req.customerId));
      const result = await check(deps, { customerId, featureKey: requireCode("feature_key", req.featureKey), quantity });
      return { ...result, reason: checkReasons[result.reason], mode: enforcementModeOf(result.mode), rule: enforcementRules[result.rule], balance: encodeBalance(result.balance) };
    },
  };
}
