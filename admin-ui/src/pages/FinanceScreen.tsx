// The finance report: the revenue roll-forward (deferred revenue, recognition on burn,
// breakage on expiry) per credit type and period, in credits and in money, with its CSV.
// Finance keys see only this screen; admins see it beside the others.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  type CreditTypeRollForward,
  FinanceService,
  ReportGranularity,
  type RevenueReportQuerySchema,
} from "@burndown/sdk/gen/burndown/v1/finance_pb.js";
import { type FormEvent, useState } from "react";
import { dateOf, formatAmount, formatDate, formatMicros, formatTime } from "../format.js";
import { ErrorNote, Loading, Section } from "../ui.js";

type Granularity = "month" | "day";
type QueryInit = MessageInitShape<typeof RevenueReportQuerySchema>;

/** The lines as the table shows them, in the roll-forward's order; a minus marks the lines that reduce deferred revenue. */
type LineKey = "opening" | "purchased" | "grantedFree" | "recognized" | "burnRefunded" | "breakage" | "clawedBack" | "adjusted" | "closing";
const columns: [LineKey, string][] = [
  ["opening", "Opening deferred"],
  ["purchased", "+ Purchased"],
  ["grantedFree", "+ Granted free"],
  ["recognized", "− Recognized"],
  ["burnRefunded", "+ Burn refunds"],
  ["breakage", "− Breakage"],
  ["clawedBack", "− Clawed back"],
  ["adjusted", "± Adjustments"],
  ["closing", "Closing deferred"],
];

/** monthInput is the UTC month of a time as an <input type="month"> value. */
const monthInput = (at: Date) => at.toISOString().slice(0, 7);

/** rangeOf turns what was typed (whole months or days, both ends included) into the report's start and exclusive end. */
function rangeOf(granularity: Granularity, from: string, to: string): { start: Date; end: Date } | null {
  if (granularity === "month") {
    const start = new Date(`${from}-01T00:00:00Z`);
    const last = new Date(`${to}-01T00:00:00Z`);
    if (Number.isNaN(start.getTime()) || Number.isNaN(last.getTime())) return null;
    return { start, end: new Date(Date.UTC(last.getUTCFullYear(), last.getUTCMonth() + 1, 1)) };
  }
  const start = new Date(`${from}T00:00:00Z`);
  const last = new Date(`${to}T00:00:00Z`);
  if (Number.isNaN(start.getTime()) || Number.isNaN(last.getTime())) return null;
  return { start, end: new Date(last.getTime() + 86_400_000) };
}

/** FinanceScreen asks for a roll-forward and shows it, with a CSV download of the same report. */
export function FinanceScreen() {
  const now = new Date();
  const [granularity, setGranularity] = useState<Granularity>("month");
  const [from, setFrom] = useState(monthInput(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 2, 1))));
  const [to, setTo] = useState(monthInput(now));
  const [creditTypeId, setCreditTypeId] = useState("");
  const [asked, setAsked] = useState<QueryInit | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const changeGranularity = (next: Granularity) => {
    setGranularity(next);
    // Months type as 2030-01, days as 2030-01-31: keep the same span in the other form.
    setFrom(next === "day" ? `${from.slice(0, 7)}-01` : from.slice(0, 7));
    setTo(next === "day" ? `${to.slice(0, 7)}-01` : to.slice(0, 7));
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const range = rangeOf(granularity, from, to);
    if (range === null || range.end <= range.start) {
      setProblem("Choose a start and an end, the end not before the start.");
      return;
    }
    setProblem(null);
    setAsked({
      startTime: timestampFromDate(range.start),
      endTime: timestampFromDate(range.end),
      granularity: granularity === "month" ? ReportGranularity.MONTH : ReportGranularity.DAY,
      creditTypeId: creditTypeId.trim(),
    });
  };
  return (
    <>
      <h1>Finance</h1>
      <Section title="Revenue roll-forward">
        <p className="muted">
          Deferred revenue is what is left of every lot, at the price its credits were bought for. It falls as credits burn (recognized) or expire
          unused (breakage). Periods are UTC; an entry counts when it took effect, so a late expiry or late usage can still change a past period.
        </p>
        <form className="row" aria-label="Revenue roll-forward" onSubmit={submit}>
          <label>
            Periods
            <select value={granularity} onChange={(event) => changeGranularity(event.target.value as Granularity)}>
              <option value="month">Months</option>
              <option value="day">Days</option>
            </select>
          </label>
          <label>
            From (UTC)
            <input type={granularity === "month" ? "month" : "date"} value={from} onChange={(event) => setFrom(event.target.value)} required />
          </label>
          <label>
            To (UTC, included)
            <input type={granularity === "month" ? "month" : "date"} value={to} onChange={(event) => setTo(event.target.value)} required />
          </label>
          <label>
            Credit type (empty for all)
            <input value={creditTypeId} onChange={(event) => setCreditTypeId(event.target.value)} placeholder="api_credits" />
          </label>
          <button type="submit" className="primary">
            Run report
          </button>
        </form>
        {problem && (
          <p className="error" role="alert">
            {problem}
          </p>
        )}
        {asked && <Report query={asked} />}
      </Section>
    </>
  );
}

/** Report shows one asked report and offers its CSV. */
function Report({ query }: { query: QueryInit }) {
  const report = useQuery(FinanceService.method.getRevenueRollForward, { query });
  if (report.isPending) return <Loading what="the report" />;
  if (report.error) return <ErrorNote error={report.error} prefix="No report" />;
  return (
    <>
      <p className="muted">
        As recorded at {formatTime(dateOf(report.data.asRecordedTime))}. Credits are in each credit type's smallest unit; money is in minor units
        of the price (cents), exact to a millionth.
      </p>
      <CsvDownload query={query} />
      {report.data.creditTypes.length === 0 && <p className="muted">No credit types yet.</p>}
      {report.data.creditTypes.map((type) => (
        <CreditTypeTables key={type.creditTypeId} type={type} />
      ))}
    </>
  );
}

/** CsvDownload fetches the same report as CSV and hands it to the browser as a file. */
function CsvDownload({ query }: { query: QueryInit }) {
  const exported = useMutation(FinanceService.method.exportRevenueRollForward);
  const download = async () => {
    const res = await exported.mutateAsync({ query });
    const url = URL.createObjectURL(new Blob([res.csv], { type: "text/csv" }));
    const link = document.createElement("a");
    link.href = url;
    link.download = res.filename;
    document.body.append(link);
    link.click();
    link.remove();
    URL.revokeObjectURL(url);
  };
  return (
    <div className="row">
      <button type="button" onClick={() => void download().catch(() => undefined)} disabled={exported.isPending}>
        Download CSV
      </button>
      <ErrorNote error={exported.error} prefix="No CSV" />
    </div>
  );
}

/** periodLabel names a period by its first day (or month). */
function periodLabel(start: Date | undefined, end: Date | undefined): string {
  if (start === undefined || end === undefined) return "";
  const days = (end.getTime() - start.getTime()) / 86_400_000;
  return days === 1 ? formatDate(start) : start.toLocaleString("en-US", { month: "long", year: "numeric", timeZone: "UTC" });
}

/** CreditTypeTables shows one credit type's roll-forward twice: in credits, then in money. */
function CreditTypeTables({ type }: { type: CreditTypeRollForward }) {
  const tables: [string, "credits" | "currencyMicros", (value: bigint) => string][] = [
    ["credits", "credits", (value) => formatAmount(value)],
    ["money (minor units)", "currencyMicros", formatMicros],
  ];
  return (
    <>
      <h3>{type.creditTypeId}</h3>
      {tables.map(([title, unit, format]) => (
        <table key={unit} aria-label={`${type.creditTypeId} in ${title}`}>
          <caption>In {title}</caption>
          <thead>
            <tr>
              <th scope="col">Period</th>
              {columns.map(([key, label]) => (
                <th key={key} scope="col" className="num">
                  {label}
                </th>
              ))}
              {unit === "credits" && (
                <th scope="col" className="num">
                  Memo: burned beyond lots
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {type.periods.map((period) => {
              const lines = period[unit];
              return (
                <tr key={String(period.startTime?.seconds)}>
                  <th scope="row">{periodLabel(dateOf(period.startTime), dateOf(period.endTime))}</th>
                  {columns.map(([key]) => (
                    <td key={key} className="num">
                      {lines ? format(lines[key]) : ""}
                    </td>
                  ))}
                  {unit === "credits" && <td className="num">{formatAmount(period.overdraftBurnedCredits)}</td>}
                </tr>
              );
            })}
          </tbody>
        </table>
      ))}
    </>
  );
}
