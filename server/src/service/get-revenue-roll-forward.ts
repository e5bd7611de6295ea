// GetRevenueRollForward: deferred revenue, recognition and breakage per credit type and
// period, from the entries alone (store/revenue-store.ts sums them in one statement). The
// report's identity is checked here on every period before anything is answered.
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { selectCreditType } from "../store/catalog-store.js";
import { mapDriverErrors, withSnapshot } from "../store/database.js";
import { type RevenueAmounts, revenueLineNames, type RevenuePeriodRow, selectRevenueRollForward } from "../store/revenue-store.js";
import type { Deps } from "./context.js";

/** RevenueReportInput is a validated report query (rpc/finance-handlers.ts checks the periods). */
export interface RevenueReportInput {
  startAt: Date;
  endAt: Date;
  granularity: "day" | "month";
  /** "" for every credit type. */
  creditTypeId: string;
  asRecordedAt: Date | null;
}

/** RollForwardLines are one period's lines in one unit, closing included. */
export type RollForwardLines = Omit<RevenueAmounts, "net"> & { closing: bigint };

/** RollForwardPeriod is one period of one credit type. */
export interface RollForwardPeriod {
  startAt: Date;
  endAt: Date;
  credits: RollForwardLines;
  currencyMicros: RollForwardLines;
  overdraftBurnedCredits: bigint;
  clawedBackAsDebtCredits: bigint;
}

/** RevenueRollForward is the report: per credit type, its periods in time order. */
export interface RevenueRollForward {
  creditTypes: { creditTypeId: string; periods: RollForwardPeriod[] }[];
  asRecordedAt: Date;
}

/**
 * linesOf closes a period: closing = opening + the net of its lines, which must equal
 * opening + purchased + granted_free + burn_refunded + adjusted - recognized - breakage
 * - clawed_back. An entry counted in no line, or in one with the wrong sign, fails here.
 */
function linesOf(amounts: RevenueAmounts): RollForwardLines {
  const { net, ...lines } = amounts;
  const closing = lines.opening + net;
  const byIdentity =
    lines.opening + lines.purchased + lines.granted_free + lines.burn_refunded + lines.adjusted - lines.recognized - lines.breakage - lines.clawed_back;
  assert(closing === byIdentity, "a period's closing is its opening plus its lines");
  assert(revenueLineNames.every((line) => typeof lines[line] === "bigint"), "every line is summed");
  return { ...lines, closing };
}

/** checkedPeriod closes one period and refuses currency amounts past int64. */
function checkedPeriod(row: RevenuePeriodRow): RollForwardPeriod {
  assert(row.unclassified === 0n, "every entry kind has a line in the roll-forward");
  const period = {
    startAt: row.periodStart,
    endAt: row.periodEnd,
    credits: linesOf(row.credits),
    currencyMicros: linesOf(row.currencyMicros),
    overdraftBurnedCredits: row.overdraftBurnedCredits,
    clawedBackAsDebtCredits: row.clawedBackAsDebtCredits,
  };
  const amounts = [...Object.values(period.credits), ...Object.values(period.currencyMicros)];
  if (amounts.some((amount) => amount > limits.amountMax || amount < -limits.amountMax)) {
    throw new LedgerError("rejected", "REPORT_AMOUNT_OUT_OF_RANGE", "a currency total of this report does not fit in int64; report one credit type or fewer periods");
  }
  return period;
}

/** groupByCreditType splits the rows per credit type, checking that each period opens at the previous one's closing. */
function groupByCreditType(rows: RevenuePeriodRow[]): RevenueRollForward["creditTypes"] {
  const groups: RevenueRollForward["creditTypes"] = [];
  for (const row of rows) {
    const period = checkedPeriod(row);
    const last = groups.at(-1);
    if (last === undefined || last.creditTypeId !== row.creditTypeId) {
      groups.push({ creditTypeId: row.creditTypeId, periods: [period] });
      continue;
    }
    const previous = last.periods.at(-1)!;
    assert(previous.endAt.getTime() === period.startAt.getTime(), "periods follow one another");
    assert(previous.credits.closing === period.credits.opening && previous.currencyMicros.closing === period.currencyMicros.opening, "a period opens at the previous one's closing");
    last.periods.push(period);
  }
  return groups;
}

/**
 * getRevenueRollForward reports the roll-forward. NotFound CREDIT_TYPE_NOT_FOUND for an
 * unknown credit type; FailedPrecondition REPORT_TOO_LARGE past revenueReportCreditTypesMax
 * credit types, REPORT_AMOUNT_OUT_OF_RANGE past int64.
 */
export async function getRevenueRollForward(deps: Deps, input: RevenueReportInput): Promise<RevenueRollForward> {
  assert(input.endAt > input.startAt, "a report's range is not empty");
  const recordedBy = input.asRecordedAt ?? deps.now();
  const rows = await mapDriverErrors(() =>
    withSnapshot(deps.pool, async (tx) => {
      if (input.creditTypeId !== "" && (await selectCreditType(tx, input.creditTypeId)) === null) {
        throw notFound("CREDIT_TYPE_NOT_FOUND", "credit type id", input.creditTypeId);
      }
      return selectRevenueRollForward(tx, { ...input, recordedBy: input.asRecordedAt, creditTypesMax: limits.revenueReportCreditTypesMax + 1 });
    }),
  );
  const creditTypes = groupByCreditType(rows);
  if (creditTypes.length > limits.revenueReportCreditTypesMax) {
    throw new LedgerError("rejected", "REPORT_TOO_LARGE", `more than ${limits.revenueReportCreditTypesMax} credit types: report one credit type at a time`, {
      credit_types_max: String(limits.revenueReportCreditTypesMax),
    });
  }
  assert(creditTypes.every((type) => type.periods.length === creditTypes[0].periods.length), "every credit type has every period");
  return { creditTypes, asRecordedAt: recordedBy };
}
