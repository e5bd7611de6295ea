// LedgerService's reads for the admin UI and the customer's own view: who the calling key
// is, a customer's reservations, its usage per day or week, and its balance forecast.
// Decode, call one service function, encode. A customer key reads its own customer only
// (ownCustomer), as for GetBalance.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { type BalanceForecastSchema, type LedgerService, UsageGranularity } from "@burndown/sdk";
import { invalid } from "../errors.js";
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { type BalanceForecastView, getBalanceForecast } from "../service/get-balance-forecast.js";
import { getCaller } from "../service/get-caller.js";
import { type Granularity, getUsageSummary } from "../service/get-usage-summary.js";
import { listReservations } from "../service/list-reservations.js";
import { grantSourceOf, optionalCode, optionalTime, requireId, requirePageSize, requireText, roleOf } from "./decode.js";
import { encodeReservation } from "./encode.js";
import { ownCustomer } from "./interceptors.js";
import { callerOf } from "./ledger-handlers.js";

const granularities: Record<number, Granularity> = { [UsageGranularity.DAY]: "day", [UsageGranularity.WEEK]: "week" };

/** requireGranularity converts a UsageGranularity; unspecified or unknown values are refused. */
function requireGranularity(value: UsageGranularity): Granularity {
  const granularity = granularities[value];
  if (granularity === undefined) throw invalid("INVALID_GRANULARITY", "granularity", "must be DAY or WEEK");
  return granularity;
}

/** requireLookbackDays applies the default (0 means forecastLookbackDaysDefault) and the bound. */
function requireLookbackDays(value: number): number {
  if (value === 0) return limits.forecastLookbackDaysDefault;
  if (value < 0 || value > limits.forecastLookbackDaysMax) throw invalid("INVALID_LOOKBACK", "lookback_days", `must be between 0 and ${limits.forecastLookbackDaysMax}`);
  return value;
}

function encodeForecast(forecast: BalanceForecastView): MessageInitShape<typeof BalanceForecastSchema> {
  return {
    creditTypeId: forecast.creditTypeId,
    available: forecast.available,
    burnedInLookback: forecast.burnedInLookback,
    dailyBurn: forecast.dailyBurn,
    emptyTime: forecast.emptyAt === null ? undefined : timestampFromDate(forecast.emptyAt),
    daysUntilEmpty: forecast.daysUntilEmpty,
    expiringUnused: forecast.expiringUnused,
  };
}

/** readHandlers implements LedgerService's GetCaller, ListReservations, GetUsageSummary and GetBalanceForecast. */
export function readHandlers(deps: Deps): Partial<ServiceImpl<typeof LedgerService>> {
  return {
    async getCaller(_req, ctx) {
      const caller = await getCaller(deps, callerOf(ctx));
      return {
        ...caller,
        role: roleOf(caller.role),
        customerId: caller.customerId ?? "",
        grantReasonCodes: [...caller.grantReasonCodes],
        grantSources: caller.grantSources.map(grantSourceOf),
      };
    },
    async listReservations(req, ctx) {
      const page = await listReservations(deps, {
        customerId: ownCustomer(callerOf(ctx), requireId("customer_id", req.customerId)),
        includeResolved: req.includeResolved,
        pageSize: requirePageSize(req.pageSize),
        pageToken: requireText("page_token", req.pageToken, limits.pageTokenLengthMax),
      });
      return { reservations: page.reservations.map(encodeReservation), nextPageToken: page.nextPageToken };
    },
    async getUsageSummary(req, ctx) {
      const customerId = ownCustomer(callerOf(ctx), requireId("customer_id", req.customerId));
      const startAt = optionalTime("start_time", req.startTime);
      if (startAt === null) throw invalid("MISSING_FIELD", "start_time", "is required");
      const summary = await getUsageSummary(deps, {
        customerId,
        creditTypeId: optionalCode("credit_type_id", req.creditTypeId),
        startAt,
        endAt: optionalTime("end_time", req.endTime),
        granularity: requireGranularity(req.granularity),
        byMember: req.byMember,
      });
      return {
        buckets: summary.buckets.map((bucket) => ({
          startTime: timestampFromDate(bucket.startAt),
          featureKey: bucket.featureKey,
          creditTypeId: bucket.creditTypeId,
          credits: bucket.credits,
          count: bucket.count,
          memberCustomerId: bucket.memberCustomerId,
        })),
        startTime: timestampFromDate(summary.startAt),
        endTime: timestampFromDate(summary.endAt),
      };
    },
    async getBalanceForecast(req, ctx) {
      const result = await getBalanceForecast(deps, {
        customerId: ownCustomer(callerOf(ctx), requireId("customer_id", req.customerId)),
        creditTypeId: optionalCode("credit_type_id", req.creditTypeId),
        lookbackDays: requireLookbackDays(req.lookbackDays),
      });
      return { forecasts: result.forecasts.map(encodeForecast), lookbackDays: result.lookbackDays, forecastTime: timestampFromDate(result.forecastAt) };
    },
  };
}
