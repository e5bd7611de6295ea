// FinanceService handlers: decode the report query, call one service, encode.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type FinanceService, ReportGranularity, type RevenueReportQuery, type RollForwardLinesSchema, type RollForwardPeriodSchema } from "@burndown/sdk";
import type { ServiceImpl } from "@connectrpc/connect";
import { LedgerError, invalid } from "../errors.js";
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { exportRevenueRollForward } from "../service/export-revenue-roll-forward.js";
import { getRevenueRollForward, type RevenueReportInput, type RollForwardLines, type RollForwardPeriod } from "../service/get-revenue-roll-forward.js";
import { optionalCode, optionalTime } from "./decode.js";

const granularities: Record<number, RevenueReportInput["granularity"]> = { [ReportGranularity.DAY]: "day", [ReportGranularity.MONTH]: "month" };

/** invalidPeriod is the report range's one reason, with the field it is about. */
function invalidPeriod(field: string, message: string, details: Record<string, string> = {}): LedgerError {
  return new LedgerError("invalid", "INVALID_REPORT_PERIOD", `${field}: ${message}`, { field, ...details });
}

/** periodBoundary checks that a time is set and starts a UTC day, or a UTC month. */
function periodBoundary(field: string, at: Date | null, granularity: RevenueReportInput["granularity"]): Date {
  if (at === null) throw invalidPeriod(field, "is required");
  const startsDay = at.getTime() % 86_400_000 === 0;
  if (!startsDay || (granularity === "month" && at.getUTCDate() !== 1)) {
    throw invalidPeriod(field, granularity === "day" ? "must be at 00:00 UTC" : "must be the first of a month at 00:00 UTC");
  }
  return at;
}

/** periodCount counts a range's periods: whole days, or months. */
function periodCount(startAt: Date, endAt: Date, granularity: RevenueReportInput["granularity"]): number {
  if (granularity === "day") return (endAt.getTime() - startAt.getTime()) / 86_400_000;
  return (endAt.getUTCFullYear() - startAt.getUTCFullYear()) * 12 + endAt.getUTCMonth() - startAt.getUTCMonth();
}

/** requireReportQuery checks a report query: a granularity, a range of whole periods within the limit, a credit type code. */
export function requireReportQuery(query: RevenueReportQuery | undefined): RevenueReportInput {
  if (query === undefined) throw invalid("MISSING_FIELD", "query", "is required");
  const granularity = granularities[query.granularity];
  if (granularity === undefined) throw invalid("INVALID_ENUM", "query.granularity", "must be DAY or MONTH");
  const startAt = periodBoundary("query.start_time", optionalTime("query.start_time", query.startTime), granularity);
  const endAt = periodBoundary("query.end_time", optionalTime("query.end_time", query.endTime), granularity);
  if (endAt <= startAt) throw invalidPeriod("query.end_time", "must be after start_time");
  if (periodCount(startAt, endAt, granularity) > limits.revenueReportPeriodsMax) {
    throw invalidPeriod("query.end_time", `a report covers at most ${limits.revenueReportPeriodsMax} periods`, { periods_max: String(limits.revenueReportPeriodsMax) });
  }
  return {
    startAt,
    endAt,
    granularity,
    creditTypeId: optionalCode("query.credit_type_id", query.creditTypeId),
    asRecordedAt: optionalTime("query.as_recorded_time", query.asRecordedTime),
  };
}

/** encodeLines converts a period's lines in one unit. */
function encodeLines(lines: RollForwardLines): MessageInitShape<typeof RollForwardLinesSchema> {
  return {
    opening: lines.opening,
    purchased: lines.purchased,
    grantedFree: lines.granted_free,
    recognized: lines.recognized,
    burnRefunded: lines.burn_refunded,
    breakage: lines.breakage,
    clawedBack: lines.clawed_back,
    adjusted: lines.adjusted,
    closing: lines.closing,
  };
}

/** encodePeriod converts one period of a roll-forward. */
function encodePeriod(period: RollForwardPeriod): MessageInitShape<typeof RollForwardPeriodSchema> {
  return {
    startTime: timestampFromDate(period.startAt),
    endTime: timestampFromDate(period.endAt),
    credits: encodeLines(period.credits),
    currencyMicros: encodeLines(period.currencyMicros),
    overdraftBurnedCredits: period.overdraftBurnedCredits,
    clawedBackAsDebtCredits: period.clawedBackAsDebtCredits,
  };
}

/** financeHandlers implements FinanceService. */
export function financeHandlers(deps: Deps): ServiceImpl<typeof FinanceService> {
  return {
    async getRevenueRollForward(req) {
      const report = await getRevenueRollForward(deps, requireReportQuery(req.query));
      return {
        creditTypes: report.creditTypes.map((type) => ({ creditTypeId: type.creditTypeId, periods: type.periods.map(encodePeriod) })),
        asRecordedTime: timestampFromDate(report.asRecordedAt),
      };
    },
    async exportRevenueRollForward(req) {
      return exportRevenueRollForward(deps, requireReportQuery(req.query));
    },
  };
}
