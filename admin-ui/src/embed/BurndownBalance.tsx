// The customer's own view of their credits, for the vendor to embed: balance by credit
// type with what expires when, burn over time by feature, a days-until-empty forecast,
// and the ledger with why each credit burned. It signs in with a customer-scoped key,
// which the server confines to that one customer.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { TransportProvider, useQuery } from "@connectrpc/connect-query";
import { QueryClientProvider } from "@tanstack/react-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { LedgerService, UsageGranularity } from "@burndown/sdk/gen/burndown/v1/ledger_service_pb.js";
import { PromotionService } from "@burndown/sdk/gen/burndown/v1/promotions_pb.js";
import { EntryKind, GrantSource } from "@burndown/sdk/gen/burndown/v1/types_pb.js";
import { type FormEvent, type ReactNode, useMemo, useState } from "react";
import { newQueryClient, transportFor } from "../api.js";
import { dateOf, expirySummary, formatAmount, formatDate, formatTime } from "../format.js";
import { entryKindName, sourceSummary } from "../labels.js";
import { useChange } from "../mutations.js";
import { useForm } from "../pages/platform/forms.js";
import { EventStory } from "../pages/ExplainScreen.js";
import { Amount, ErrorNote, Loading, Section, useScales } from "../ui.js";
import { BuyCredits, Purchases } from "./Purchase.js";
import { UsageChart } from "./UsageChart.js";
import { DisputeLine, YourDisputes } from "./Disputes.js";

export interface BurndownBalanceProps {
  /** a customer-scoped API key. */
  customerKey: string;
  /** the Burndown server; the page's own origin by default. */
  baseUrl?: string;
  /** the vendor's own purchase flow, shown under the balance instead of Burndown's. */
  purchase?: ReactNode;
  /**
   * the vendor's checkout page, with {order_id} (and optionally {customer_id}) where the
   * order goes: with it, the view sells the catalog's bundles, opening an order and
   * linking to this page to pay it. Without it (and without `purchase`), nothing is sold.
   */
  checkoutUrl?: string;
}

export function BurndownBalance({ customerKey, baseUrl, purchase, checkoutUrl }: BurndownBalanceProps) {
  const transport = useMemo(() => transportFor(customerKey, baseUrl), [customerKey, baseUrl]);
  const queryClient = useMemo(newQueryClient, []);
  return (
    <TransportProvider transport={transport}>
      <QueryClientProvider client={queryClient}>
        <div className="burndown-customer">
          <CustomerView purchase={purchase} checkoutUrl={checkoutUrl} />
        </div>
      </QueryClientProvider>
    </TransportProvider>
  );
}

function CustomerView({ purchase, checkoutUrl }: { purchase?: ReactNode; checkoutUrl?: string }) {
  const caller = useQuery(LedgerService.method.getCaller, {});
  if (caller.isPending) return <Loading what="your account" />;
  if (caller.error) return <ErrorNote error={caller.error} />;
  const customerId = caller.data.customerId;
  if (customerId === "") return <p className="error">This view needs a customer key.</p>;
  return (
    <>
      <Balance customerId={customerId} purchase={purchase ?? (checkoutUrl ? <BuyCredits customerId={customerId} checkoutUrl={checkoutUrl} /> : undefined)} />
      <RedeemCode customerId={customerId} />
      <Purchases customerId={customerId} />
      <Usage customerId={customerId} />
      <History customerId={customerId} />
      <YourDisputes />
    </>
  );
}

function Balance({ customerId, purchase }: { customerId: string; purchase?: ReactNode }) {
  const balance = useQuery(LedgerService.method.getBalance, { customerId });
  const forecast = useQuery(LedgerService.method.getBalanceForecast, { customerId });
  const scaleOf = useScales();
  if (balance.isPending) return <Loading what="your balance" />;
  if (balance.error) return <ErrorNote error={balance.error} />;
  return (
    <Section title="Your credits">
      {balance.data.balances.length === 0 && <p className="muted">No credits yet.</p>}
      {balance.data.balances.map((credit) => {
        const scale = scaleOf(credit.creditTypeId);
        const outlook = forecast.data?.forecasts.find((entry) => entry.creditTypeId === credit.creditTypeId);
        return (
          <div key={credit.creditTypeId} className="balance-block" data-credit-type={credit.creditTypeId}>
            <p className="big">
              <Amount value={credit.available} scale={scale} /> <span className="muted">{credit.creditTypeId} available</span>
            </p>
            {credit.held > 0n && <p className="muted">{formatAmount(credit.held, scale)} held for actions in progress</p>}
            <ul className="expiry-lines" aria-label={`When your ${credit.creditTypeId} expire`}>
              {expirySummary(credit.lots, scale).map((line) => (
                <li key={line.label}>{line.label}</li>
              ))}
            </ul>
            {credit.sources.some((source) => source.source === GrantSource.PROMOTION) && (
              <ul className="source-lines" aria-label={`Your ${credit.creditTypeId} by source`}>
                {sourceSummary(credit.sources, scale).map((line) => (
                  <li key={line.source}>{line.label}</li>
                ))}
              </ul>
            )}
            {outlook && (
              <p className="forecast" data-testid={`forecast-${credit.creditTypeId}`}>
                {outlook.daysUntilEmpty < 0
                  ? outlook.dailyBurn === 0n
                    ? "No recent usage: your credits are not running down."
                    : "At your recent usage, your credits last more than a year."
                  : outlook.daysUntilEmpty === 0
                    ? "At your recent usage, your credits run out today."
                    : `At your recent usage (${formatAmount(outlook.dailyBurn, scale)} a day), your credits last about ${outlook.daysUntilEmpty} more day${outlook.daysUntilEmpty === 1 ? "" : "s"}, until ${formatDate(dateOf(outlook.emptyTime))}.`}
                {outlook.expiringUnused > 0n ? ` ${formatAmount(outlook.expiringUnused, scale)} would expire before you use them.` : ""}
              </p>
            )}
          </div>
        );
      })}
      <div className="purchase">{purchase ?? <p className="muted">Need more credits? Ask your account manager.</p>}</div>
    </Section>
  );
}

/** RedeemCode lets the customer redeem a promo code; the credits join the balance above, shown apart as promotional. */
function RedeemCode({ customerId }: { customerId: string }) {
  const redeem = useChange(PromotionService.method.redeemPromoCode);
  const form = useForm({ code: "" });
  const [done, setDone] = useState<string | null>(null);
  const scaleOf = useScales();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    redeem.mutate(form.submission({ customerId, code: form.values.code.trim() }), {
      onSuccess: (response) => {
        const lot = response.lot;
        const credits = lot === undefined ? "" : `${formatAmount(lot.amount, scaleOf(response.balance?.creditTypeId ?? ""))} promotional ${response.balance?.creditTypeId ?? "credits"}`;
        setDone(`Code ${response.code} redeemed: ${credits}${lot?.expireTime ? `, expiring ${formatDate(dateOf(lot.expireTime))}` : ""}.`);
        form.sent({ code: "" });
      },
    });
  };
  return (
    <Section title="Redeem a promo code">
      <form className="row" aria-label="Redeem a promo code" onSubmit={submit}>
        <label>
          Promo code
          <input {...form.text("code")} required maxLength={64} autoComplete="off" />
        </label>
        <button type="submit" className="primary" disabled={redeem.isPending}>
          Redeem
        </button>
      </form>
      {done && <p className="success" role="status">{done}</p>}
      <ErrorNote error={redeem.error} prefix="Code not redeemed" />
    </Section>
  );
}

const dayMs = 86_400_000;

function bucketStarts(granularity: UsageGranularity, start: Date, end: Date): Date[] {
  const starts: Date[] = [];
  const step = granularity === UsageGranularity.WEEK ? 7 * dayMs : dayMs;
  for (let at = start.getTime(); at < end.getTime(); at += step) starts.push(new Date(at));
  return starts;
}

function Usage({ customerId }: { customerId: string }) {
  const [granularity, setGranularity] = useState<UsageGranularity>(UsageGranularity.DAY);
  // Whole UTC days: the last 30 days, or the last 12 weeks from a Monday.
  const now = new Date();
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const mondayOffset = (new Date(today).getUTCDay() + 6) % 7;
  const start = granularity === UsageGranularity.WEEK ? new Date(today - mondayOffset * dayMs - 11 * 7 * dayMs) : new Date(today - 29 * dayMs);
  const end = new Date(granularity === UsageGranularity.WEEK ? today - mondayOffset * dayMs + 7 * dayMs : today + dayMs);
  const summary = useQuery(LedgerService.method.getUsageSummary, { customerId, startTime: timestampFromDate(start), endTime: timestampFromDate(end), granularity });
  const scaleOf = useScales();
  const creditTypes = [...new Set((summary.data?.buckets ?? []).map((bucket) => bucket.creditTypeId))];
  return (
    <Section
      title="Usage"
      actions={
        <div role="group" aria-label="Usage by" className="toggle">
          <button type="button" aria-pressed={granularity === UsageGranularity.DAY} onClick={() => setGranularity(UsageGranularity.DAY)}>
            Daily
          </button>
          <button type="button" aria-pressed={granularity === UsageGranularity.WEEK} onClick={() => setGranularity(UsageGranularity.WEEK)}>
            Weekly
          </button>
        </div>
      }
    >
      {summary.isPending ? (
        <Loading what="usage" />
      ) : summary.error ? (
        <ErrorNote error={summary.error} />
      ) : creditTypes.length === 0 ? (
        <p className="muted">No usage in this period.</p>
      ) : (
        creditTypes.map((creditTypeId) => (
          <div key={creditTypeId}>
            <h3>{creditTypeId}</h3>
            <UsageChart
              buckets={summary.data.buckets.filter((bucket) => bucket.creditTypeId === creditTypeId)}
              starts={bucketStarts(granularity, start, end)}
              scale={scaleOf(creditTypeId)}
              unit={granularity === UsageGranularity.WEEK ? "week" : "day"}
            />
          </div>
        ))
      )}
    </Section>
  );
}

function History({ customerId }: { customerId: string }) {
  const [token, setToken] = useState<string[]>([""]);
  const [open, setOpen] = useState<string | null>(null);
  const [disputing, setDisputing] = useState<string | null>(null);
  const entries = useQuery(LedgerService.method.listLedgerEntries, {
    customerId,
    kinds: [EntryKind.GRANT, EntryKind.BURN, EntryKind.EXPIRE, EntryKind.REFUND, EntryKind.SETTLE, EntryKind.UNEXPIRE, EntryKind.CLAWBACK, EntryKind.VOID],
    pageSize: 20,
    pageToken: token[token.length - 1],
  });
  const scaleOf = useScales();
  return (
    <Section title="History">
      {entries.isPending ? (
        <Loading what="your history" />
      ) : entries.error ? (
        <ErrorNote error={entries.error} />
      ) : (
        <table aria-label="Your credit history">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">What</th>
              <th scope="col" className="num">Credits</th>
              <th scope="col">Why</th>
            </tr>
          </thead>
          <tbody>
            {entries.data.entries.map((entry) => {
              const sign = entry.kind === EntryKind.GRANT || entry.kind === EntryKind.REFUND || entry.kind === EntryKind.UNEXPIRE ? 1n : -1n;
              return (
                <tr key={entry.entryId}>
                  <td>{formatTime(dateOf(entry.effectiveTime))}</td>
                  <td>{entryKindName(entry.kind)}</td>
                  <td className="num">
                    <Amount value={sign * entry.amount} scale={scaleOf(entry.creditTypeId)} /> {entry.creditTypeId}
                  </td>
                  <td>
                    {entry.usageId ? (
                      <button type="button" className="link" onClick={() => setOpen(open === entry.usageId ? null : entry.usageId)} aria-expanded={open === entry.usageId}>
                        usage event {entry.usageId}: why?
                      </button>
                    ) : (
                      entry.reasonCode
                    )}
                    {open === entry.usageId && entry.usageId && <Why usageId={entry.usageId} />}
                    {entry.kind === EntryKind.BURN && disputing !== entry.entryId && (
                      <button type="button" className="link" onClick={() => setDisputing(entry.entryId)}>
                        Dispute
                      </button>
                    )}
                    {disputing === entry.entryId && <DisputeLine customerId={customerId} entryId={entry.entryId} onDone={() => setDisputing(null)} />}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <div className="pager">
        <button type="button" disabled={token.length <= 1} onClick={() => setToken(token.slice(0, -1))}>
          Newer
        </button>
        <button type="button" disabled={!entries.data?.nextPageToken} onClick={() => setToken([...token, entries.data!.nextPageToken])}>
          Older
        </button>
      </div>
    </Section>
  );
}

function Why({ usageId }: { usageId: string }) {
  const explained = useQuery(AdminService.method.explainUsageEvent, { usageId });
  if (explained.isPending) return <Loading what="why" />;
  if (explained.error) return <ErrorNote error={explained.error} />;
  return <EventStory story={explained.data} />;
}

