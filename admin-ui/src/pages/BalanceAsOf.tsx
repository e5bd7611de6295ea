// A customer's balance as of a past moment, rebuilt from the ledger: as we know it now,
// and, given a record time, as it was known then, side by side with the difference (a
// usage event reported late shows there), and the lots as they stood.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useQuery } from "@connectrpc/connect-query";
import { LedgerService, type CreditBalance, type AsOfLot } from "@burndown/sdk/gen/burndown/v1/ledger_service_pb.js";
import { type FormEvent, useState } from "react";
import { dateOf, formatDate, formatTime } from "../format.js";
import { grantSourceName } from "../labels.js";
import { Amount, ErrorNote, Loading, Section, useScales } from "../ui.js";

/** utcOf reads a datetime-local value as a UTC moment (the ledger's times are UTC). */
function utcOf(value: string): Date | undefined {
  if (!value) return undefined;
  const date = new Date(`${value.length === 16 ? `${value}:00` : value}Z`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

const figures: [keyof Pick<CreditBalance, "available" | "held" | "burned" | "expired" | "pending" | "granted" | "overdraftLimit">, string][] = [
  ["available", "Available"],
  ["held", "Held"],
  ["burned", "Burned"],
  ["expired", "Expired"],
  ["pending", "Pending"],
  ["granted", "Granted"],
  ["overdraftLimit", "Overdraft limit"],
];

/** BalanceAsOf is the "as of" control of a customer's balance and what it shows. */
export function BalanceAsOf({ customerId }: { customerId: string }) {
  const [effective, setEffective] = useState("");
  const [recorded, setRecorded] = useState("");
  const [asked, setAsked] = useState<{ asOf: Date; asRecorded?: Date } | null>(null);
  const asOfTime = asked ? timestampFromDate(asked.asOf) : undefined;
  const now = useQuery(LedgerService.method.getBalance, { customerId, asOfTime }, { enabled: asked !== null });
  const then = useQuery(
    LedgerService.method.getBalance,
    { customerId, asOfTime, asRecordedTime: asked?.asRecorded ? timestampFromDate(asked.asRecorded) : undefined },
    { enabled: asked?.asRecorded !== undefined },
  );
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const asOf = utcOf(effective);
    if (asOf) setAsked({ asOf, asRecorded: utcOf(recorded) });
  };
  const pending = now.isPending || (asked?.asRecorded !== undefined && then.isPending);
  return (
    <Section title="Balance as of a time">
      <form className="filters row" aria-label="Balance as of a time" onSubmit={submit}>
        <label>
          Effective time (UTC)
          <input type="datetime-local" step={1} required value={effective} onChange={(event) => setEffective(event.target.value)} />
        </label>
        <label>
          As recorded at (UTC, optional)
          <input type="datetime-local" step={1} value={recorded} onChange={(event) => setRecorded(event.target.value)} />
        </label>
        <button type="submit">Show</button>
      </form>
      <p className="muted">
        Rebuilt from the ledger entries. With a record time, only entries recorded by then count: what support could have seen at that moment.
      </p>
      {!asked ? null : pending ? (
        <Loading what="the balance then" />
      ) : now.error || then.error ? (
        <ErrorNote error={now.error ?? then.error} />
      ) : (
        <AsOfResult knownNow={now.data!.balances} knownThen={asked.asRecorded ? then.data!.balances : undefined} lots={(asked.asRecorded ? then.data! : now.data!).asOfLots} asOf={asked.asOf} asRecorded={asked.asRecorded} />
      )}
    </Section>
  );
}

function AsOfResult({ knownNow, knownThen, lots, asOf, asRecorded }: { knownNow: CreditBalance[]; knownThen?: CreditBalance[]; lots: AsOfLot[]; asOf: Date; asRecorded?: Date }) {
  const scaleOf = useScales();
  const creditTypes = [...new Set([...knownNow, ...(knownThen ?? [])].map((balance) => balance.creditTypeId))].sort();
  if (creditTypes.length === 0) return <p className="muted" role="status">No credits as of {formatTime(asOf)}.</p>;
  return (
    <div role="status">
      <p>
        As of <strong>{formatTime(asOf)}</strong>{asRecorded ? <> as recorded by <strong>{formatTime(asRecorded)}</strong>, beside what we know now</> : ", as known now"}.
      </p>
      {creditTypes.map((creditTypeId) => {
        const scale = scaleOf(creditTypeId);
        const nowBalance = knownNow.find((balance) => balance.creditTypeId === creditTypeId);
        const thenBalance = knownThen?.find((balance) => balance.creditTypeId === creditTypeId);
        return (
          <table key={creditTypeId} aria-label={`${creditTypeId} as of then`}>
            <thead>
              <tr>
                <th scope="col">{creditTypeId}</th>
                {knownThen && <th scope="col" className="num">As known then</th>}
                <th scope="col" className="num">As known now</th>
                {knownThen && <th scope="col" className="num">Difference</th>}
              </tr>
            </thead>
            <tbody>
              {figures.map(([field, label]) => {
                const nowValue = nowBalance?.[field] ?? 0n;
                const thenValue = thenBalance?.[field] ?? 0n;
                return (
                  <tr key={field} data-figure={field}>
                    <th scope="row">{label}</th>
                    {knownThen && <td className="num"><Amount value={thenValue} scale={scale} /></td>}
                    <td className="num"><Amount value={nowValue} scale={scale} /></td>
                    {knownThen && <td className="num">{nowValue === thenValue ? "—" : <Amount value={nowValue - thenValue} scale={scale} />}</td>}
                  </tr>
                );
              })}
            </tbody>
          </table>
        );
      })}
      <table aria-label="Lots as of then">
        <thead>
          <tr>
            <th scope="col">Lot</th>
            <th scope="col">Credit type</th>
            <th scope="col">Source</th>
            <th scope="col" className="num">Granted</th>
            <th scope="col" className="num">Remaining</th>
            <th scope="col" className="num">Held</th>
            <th scope="col" className="num">Expired</th>
            <th scope="col">State then</th>
            <th scope="col">Expires</th>
          </tr>
        </thead>
        <tbody>
          {lots.map(({ creditTypeId, lot, expired, effective, pastExpiry }) => (
            <tr key={lot!.grantId}>
              <td><code title={lot!.grantId}>{lot!.grantId.slice(0, 8)}</code></td>
              <td>{creditTypeId}</td>
              <td>{grantSourceName(lot!.source)}</td>
              <td className="num"><Amount value={lot!.amount} scale={scaleOf(creditTypeId)} /></td>
              <td className="num"><Amount value={lot!.remaining} scale={scaleOf(creditTypeId)} /></td>
              <td className="num"><Amount value={lot!.held} scale={scaleOf(creditTypeId)} /></td>
              <td className="num"><Amount value={expired} scale={scaleOf(creditTypeId)} /></td>
              <td>{pastExpiry ? "past expiry" : effective ? "live" : "pending"}</td>
              <td>{formatDate(dateOf(lot!.expireTime))}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
