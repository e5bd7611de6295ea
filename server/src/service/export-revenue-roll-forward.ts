// ExportRevenueRollForward: the roll-forward as CSV, for spreadsheets and the general
// ledger. Every amount is an integer (credits, and currency in micro minor units), so a
// spreadsheet never sees a rounded float.
import { assert } from "../ledger/balance-state.js";
import type { Deps } from "./context.js";
import { getRevenueRollForward, type RevenueReportInput, type RollForwardLines } from "./get-revenue-roll-forward.js";

/** csvLines are the roll-forward's lines in the CSV's column order. */
const csvLines: (keyof RollForwardLines)[] = ["opening", "purchased", "granted_free", "recognized", "burn_refunded", "breakage", "clawed_back", "adjusted", "closing"];

/** csvHeader names the columns: the lines in credits, then in currency, then the memo lines. */
export const csvHeader = [
  "credit_type_id",
  "period_start",
  "period_end",
  ...csvLines.map((line) => `${line}_credits`),
  ...csvLines.map((line) => `${line}_micros`),
  "overdraft_burned_credits",
  "clawed_back_as_debt_credits",
].join(",");

/** csvField quotes a text field when RFC 4180 requires it. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** day formats a time as its UTC date, for the file name. */
const day = (at: Date) => at.toISOString().slice(0, 10);

/** exportRevenueRollForward makes the report (getRevenueRollForward) and writes it as CSV with a file name. */
export async function exportRevenueRollForward(deps: Deps, input: RevenueReportInput): Promise<{ csv: string; filename: string }> {
  const report = await getRevenueRollForward(deps, input);
  const rows = report.creditTypes.flatMap((type) =>
    type.periods.map((period) =>
      [
        csvField(type.creditTypeId),
        period.startAt.toISOString(),
        period.endAt.toISOString(),
        ...csvLines.map((line) => period.credits[line].toString()),
        ...csvLines.map((line) => period.currencyMicros[line].toString()),
        period.overdraftBurnedCredits.toString(),
        period.clawedBackAsDebtCredits.toString(),
      ].join(","),
    ),
  );
  const columns = csvHeader.split(",").length;
  assert(rows.every((row) => row.split(",").length === columns || row.includes('"')), "every row has every column");
  assert(rows.length === report.creditTypes.reduce((sum, type) => sum + type.periods.length, 0), "one row per credit type and period");
  const filename = `revenue-roll-forward-${day(input.startAt)}-${day(input.endAt)}.csv`;
  return { csv: `${[csvHeader, ...rows].join("\r\n")}\r\n`, filename };
}
