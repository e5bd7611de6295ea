// One customer, as support sees it: balances per credit type, the lots behind them and
// what expires when, open reservations, pricing, a grant form and the grants waiting for
// approval, and the ledger.
import { useQuery } from "@connectrpc/connect-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { LedgerService } from "@burndown/sdk/gen/burndown/v1/ledger_service_pb.js";
import { dateOf, expirySummary, formatDate, formatTime } from "../format.js";
import { grantSourceName, reservationStatusName, sourceSummary } from "../labels.js";
import { href } from "../router.js";
import { Amount, ErrorNote, Loading, Section, useScales } from "../ui.js";
import { GrantForm } from "./GrantForm.js";
import { LedgerTable } from "./LedgerTable.js";
import { OverdraftForm } from "./OverdraftForm.js";
import { PendingGrants } from "./PendingGrants.js";
import { Subscriptions } from "./Subscriptions.js";
import { AutoRecharge } from "./AutoRecharge.js";
import { BalanceAsOf } from "./BalanceAsOf.js";
import { PoolSection } from "./PoolSection.js";
import { TopUps } from "./TopUps.js";
import { useCaller } from "../caller.js";
import { GrantSource, Role } from "@burndown/sdk/gen/burndown/v1/types_pb.js";

export function CustomerScreen({ customerId, tab }: { customerId: string; tab?: string }) {
  const customer = useQuery(AdminService.method.getCustomer, { customerId });
  const me = useCaller();
  if (customer.isPending) return <Loading what="the customer" />;
  if (customer.error) return <ErrorNote error={customer.error} prefix={`Customer ${customerId}`} />;
  const info = customer.data.customer!;
  return (
    <>
      <nav aria-label="Breadcrumb" className="crumbs">
        <a href={href()}>Customers</a> / <span>{customerId}</span>
      </nav>
      <h1>
        {info.displayName || customerId} <span className="muted id">{customerId}</span>
      </h1>
      <div className="tabs" role="tablist" aria-label="Customer">
        <a role="tab" aria-selected={tab !== "ledger"} href={href("customers", customerId)}>
          Overview
        </a>
        <a role="tab" aria-selected={tab === "ledger"} href={href("customers", customerId, "ledger")}>
          Ledger
        </a>
      </div>
      {tab === "ledger" ? (
        <LedgerTable customerId={customerId} corrections />
      ) : (
        <>
          <Balances customerId={customerId} />
          <BalanceAsOf customerId={customerId} />
          <div className="columns">
            <GrantForm customerId={customerId} />
            <Pricing customerId={customerId} pricingVersionId={info.pricingVersionId} />
          </div>
          <PendingGrants customerId={customerId} />
          <PoolSection customerId={customerId} />
          <Reservations customerId={customerId} />
          <Subscriptions customerId={customerId} isAdmin={me.role === Role.ADMIN} />
          <TopUps customerId={customerId} />
          {(me.role === Role.ADMIN || me.role === Role.SUPPORT) && <AutoRecharge customerId={customerId} />}
          {me.role === Role.ADMIN && <OverdraftForm customerId={customerId} limits={info.overdraftLimits} />}
        </>
      )}
    </>
  );
}

function Balances({ customerId }: { customerId: string }) {
  const balance = useQuery(LedgerService.method.getBalance, { customerId });
  const scaleOf = useScales();
  if (balance.isPending) return <Loading what="balances" />;
  if (balance.error) return <ErrorNote error={balance.error} />;
  if (balance.data.balances.length === 0) return <Section title="Balances"><p className="muted">No credits yet. Grant some below.</p></Section>;
  return (
    <>
      {balance.data.balances.map((credit) => {
        const scale = scaleOf(credit.creditTypeId);
        const debt = credit.available < 0n ? -credit.available : 0n;
        const expiring = expirySummary(credit.lots, scale);
        return (
          <Section key={credit.creditTypeId} title={`Balance: ${credit.creditTypeId}`}>
            <dl className="figures" aria-label={`${credit.creditTypeId} balance`}>
              <div>
                <dt>Available</dt>
                <dd data-testid={`available-${credit.creditTypeId}`}>
                  <Amount value={credit.available < 0n ? 0n : credit.available} scale={scale} />
                </dd>
              </div>
              <div>
                <dt>Held</dt>
                <dd><Amount value={credit.held} scale={scale} /></dd>
              </div>
              <div>
                <dt>Burned</dt>
                <dd><Amount value={credit.burned} scale={scale} /></dd>
              </div>
              <div>
                <dt>Expired</dt>
                <dd><Amount value={credit.expired} scale={scale} /></dd>
              </div>
              <div>
                <dt>Debt</dt>
                <dd data-testid={`debt-${credit.creditTypeId}`}><Amount value={debt} scale={scale} className={debt > 0n ? "negative" : ""} /></dd>
              </div>
              <div>
                <dt>Granted</dt>
                <dd><Amount value={credit.granted} scale={scale} /></dd>
              </div>
            </dl>
            {expiring.length > 0 && (
              <p className="expiry-summary" data-testid={`expiry-${credit.creditTypeId}`}>
                {expiring.map((line) => line.label).join(" · ")}
              </p>
            )}
            {credit.sources.some((source) => source.source === GrantSource.PROMOTION) && (
              <p className="expiry-summary" data-testid={`sources-${credit.creditTypeId}`}>
                {sourceSummary(credit.sources, scale).map((line) => line.label).join(" · ")}
              </p>
            )}
            {credit.overdraftLimit > 0n && (
              <p className="muted">
                Overdraft allowed down to <Amount value={-credit.overdraftLimit} scale={scale} />.
              </p>
            )}
            <table aria-label={`Lots of ${credit.creditTypeId}`}>
              <thead>
                <tr>
                  <th scope="col">Lot</th>
                  <th scope="col">Source</th>
                  <th scope="col">Reason</th>
                  <th scope="col" className="num">Granted</th>
                  <th scope="col" className="num">Remaining</th>
                  <th scope="col" className="num">Held</th>
                  <th scope="col" className="num">Priority</th>
                  <th scope="col">Effective</th>
                  <th scope="col">Expires</th>
                </tr>
              </thead>
              <tbody>
                {credit.lots.map((lot) => (
                  <tr key={lot.grantId}>
                    <td><code title={lot.grantId}>{lot.grantId.slice(0, 8)}</code></td>
                    <td>{grantSourceName(lot.source)}</td>
                    <td>{lot.reasonCode}</td>
                    <td className="num"><Amount value={lot.amount} scale={scale} /></td>
                    <td className="num"><Amount value={lot.remaining} scale={scale} /></td>
                    <td className="num"><Amount value={lot.held} scale={scale} /></td>
                    <td className="num">{lot.priority}</td>
                    <td>{formatDate(dateOf(lot.effectiveTime))}</td>
                    <td>{formatDate(dateOf(lot.expireTime))}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Section>
        );
      })}
    </>
  );
}

function Reservations({ customerId }: { customerId: string }) {
  const reservations = useQuery(LedgerService.method.listReservations, { customerId });
  const scaleOf = useScales();
  return (
    <Section title="Open reservations">
      {reservations.isPending ? (
        <Loading what="reservations" />
      ) : reservations.error ? (
        <ErrorNote error={reservations.error} />
      ) : reservations.data.reservations.length === 0 ? (
        <p className="muted">None held now.</p>
      ) : (
        <table aria-label="Open reservations">
          <thead>
            <tr>
              <th scope="col">Reservation</th>
              <th scope="col">Feature</th>
              <th scope="col">Credit type</th>
              <th scope="col" className="num">Held</th>
              <th scope="col">Status</th>
              <th scope="col">Expires</th>
            </tr>
          </thead>
          <tbody>
            {reservations.data.reservations.map((reservation) => (
              <tr key={reservation.reservationId}>
                <td><code title={reservation.reservationId}>{reservation.reservationId.slice(0, 8)}</code></td>
                <td>{reservation.featureKey || "—"}</td>
                <td>{reservation.creditTypeId}</td>
                <td className="num"><Amount value={reservation.amount} scale={scaleOf(reservation.creditTypeId)} /></td>
                <td>{reservationStatusName(reservation.status)}</td>
                <td>{formatTime(dateOf(reservation.expireTime))}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

function Pricing({ customerId, pricingVersionId }: { customerId: string; pricingVersionId: string }) {
  const overrides = useQuery(AdminService.method.listRateOverrides, { customerId });
  return (
    <Section title="Pricing">
      <p>
        Pricing version: <strong>{pricingVersionId || "the default version"}</strong>
      </p>
      {overrides.isPending ? (
        <Loading what="rate overrides" />
      ) : overrides.error ? (
        <ErrorNote error={overrides.error} />
      ) : overrides.data.overrides.length === 0 ? (
        <p className="muted">No rate overrides: the version's rates apply.</p>
      ) : (
        <table aria-label="Rate overrides">
          <thead>
            <tr>
              <th scope="col">Feature</th>
              <th scope="col">Rate</th>
              <th scope="col">Since</th>
            </tr>
          </thead>
          <tbody>
            {overrides.data.overrides.map((override) => (
              <tr key={override.featureKey}>
                <td>{override.featureKey}</td>
                <td>{override.rate ? `${override.rate.credits} credits per ${override.rate.perUnits} units` : "—"}</td>
                <td>{formatDate(dateOf(override.effectiveTime))}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}
