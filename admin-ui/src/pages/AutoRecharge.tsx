// A customer's auto-recharge and balance-low alert, per credit type: what is set (and
// whether the server turned it off after failed payments), how many recharges this month
// against the cap, and a form that sets them. The recharge orders themselves are top-ups
// (origin "auto-recharge" in the Top-ups table, with their failed payments).
import { useQuery } from "@connectrpc/connect-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { type AutoRecharge as Settings, BillingService } from "@burndown/sdk/gen/burndown/v1/billing_pb.js";
import { type FormEvent, useState } from "react";
import { newRequestId } from "../api.js";
import { formatAmount, parseAmount } from "../format.js";
import { useChange } from "../mutations.js";
import { CreditTypeSelect, ErrorNote, Loading, Section, useScales } from "../ui.js";
import { formatPrice } from "./platform/BundlesPage.js";

/** AutoRecharge shows a customer's settings and, for staff, the form that sets them. */
export function AutoRecharge({ customerId }: { customerId: string }) {
  const settings = useQuery(BillingService.method.listAutoRecharges, { customerId });
  const scaleOf = useScales();
  return (
    <Section title="Auto-recharge and balance alert">
      {settings.isPending ? (
        <Loading what="auto-recharge" />
      ) : settings.error ? (
        <ErrorNote error={settings.error} prefix="Could not read auto-recharge" />
      ) : settings.data.autoRecharges.length === 0 ? (
        <p className="muted">No auto-recharge and no balance alert.</p>
      ) : (
        <table aria-label="Auto-recharge">
          <thead>
            <tr>
              <th scope="col">Credit type</th>
              <th scope="col">Auto-recharge</th>
              <th scope="col" className="num">Below</th>
              <th scope="col">Buys</th>
              <th scope="col" className="num">This month</th>
              <th scope="col" className="num">Alert below</th>
            </tr>
          </thead>
          <tbody>
            {settings.data.autoRecharges.map((row) => {
              const scale = scaleOf(row.creditTypeId);
              return (
                <tr key={row.creditTypeId} data-credit-type={row.creditTypeId}>
                  <td>{row.creditTypeId}</td>
                  <td>{row.enabled ? (row.creditOnCreation ? "on, credited when opened" : "on") : row.disabledReason ? `off: ${row.disabledReason}` : "off"}</td>
                  <td className="num">{row.threshold === 0n ? "" : formatAmount(row.threshold, scale)}</td>
                  <td>{buys(row, scale)}</td>
                  <td className="num">{row.monthlyRechargesMax === 0 ? `${row.rechargesThisMonth} (no cap)` : `${row.rechargesThisMonth} of ${row.monthlyRechargesMax}`}</td>
                  <td className="num">{row.balanceLowThreshold === 0n ? "" : formatAmount(row.balanceLowThreshold, scale)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <AutoRechargeForm customerId={customerId} />
    </Section>
  );
}

function buys(row: Settings, scale: number): string {
  if (row.item.case === "bundleId") return row.bundleVersion === 0 ? `${row.item.value} (latest)` : `${row.item.value} v${row.bundleVersion}`;
  if (row.item.case === "amount") return `${formatAmount(row.item.value.credits, scale)} for ${formatPrice(row.item.value.priceMinor, row.item.value.currency)}`;
  return "";
}

function AutoRechargeForm({ customerId }: { customerId: string }) {
  const creditTypes = useQuery(AdminService.method.listCreditTypes, {});
  const bundles = useQuery(BillingService.method.listBundles, {});
  const set = useChange(BillingService.method.setAutoRecharge);
  const [creditTypeId, setCreditTypeId] = useState("");
  const [enabled, setEnabled] = useState(true);
  const [creditOnCreation, setCreditOnCreation] = useState(false);
  const [threshold, setThreshold] = useState("");
  const [bundleId, setBundleId] = useState("");
  const [cap, setCap] = useState("0");
  const [alert, setAlert] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const types = creditTypes.data?.creditTypes ?? [];
  const chosenType = creditTypeId || types[0]?.creditTypeId || "";
  const scale = types.find((type) => type.creditTypeId === chosenType)?.scale ?? 0;
  const offered = (bundles.data?.bundles ?? []).filter((bundle) => bundle.creditTypeId === chosenType);
  const chosenBundle = bundleId || offered[0]?.bundleId || "";
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setProblem(null);
    setDone(null);
    let amounts: { threshold: bigint; alert: bigint };
    try {
      amounts = { threshold: threshold === "" ? 0n : parseAmount(threshold, scale), alert: alert === "" ? 0n : parseAmount(alert, scale) };
    } catch (error) {
      setProblem((error as Error).message);
      return;
    }
    set.mutate(
      {
        customerId,
        creditTypeId: chosenType,
        enabled,
        threshold: amounts.threshold,
        item: chosenBundle === "" ? { case: undefined } : { case: "bundleId", value: chosenBundle },
        monthlyRechargesMax: Number(cap) || 0,
        balanceLowThreshold: amounts.alert,
        creditOnCreation,
        requestId: newRequestId(),
      },
      { onSuccess: () => setDone(`Saved for ${chosenType}.`) },
    );
  };
  return (
    <form className="stack" aria-label="Set auto-recharge" onSubmit={submit}>
      <CreditTypeSelect types={types} value={chosenType} onChange={setCreditTypeId} />
      <label>
        <input type="checkbox" checked={enabled} onChange={(event) => setEnabled(event.target.checked)} /> Recharge automatically
      </label>
      <label>
        <input type="checkbox" checked={creditOnCreation} onChange={(event) => setCreditOnCreation(event.target.checked)} /> Credit when the order opens, before payment
      </label>
      <label>
        Recharge when available falls below
        <input inputMode="decimal" value={threshold} onChange={(event) => setThreshold(event.target.value)} />
      </label>
      <label>
        Bundle to buy
        <select value={chosenBundle} onChange={(event) => setBundleId(event.target.value)}>
          {offered.length === 0 && <option value="">No bundle of this credit type</option>}
          {offered.map((bundle) => (
            <option key={bundle.bundleId} value={bundle.bundleId}>
              {bundle.displayName} ({formatPrice(bundle.priceMinor, bundle.currency)})
            </option>
          ))}
        </select>
      </label>
      <label>
        Recharges a month at most (0: no cap)
        <input inputMode="numeric" value={cap} onChange={(event) => setCap(event.target.value)} />
      </label>
      <label>
        Alert (balance.low) when available falls below
        <input inputMode="decimal" value={alert} onChange={(event) => setAlert(event.target.value)} />
      </label>
      <button type="submit" disabled={set.isPending}>
        Save auto-recharge
      </button>
      {problem && <p className="error">{problem}</p>}
      <ErrorNote error={set.error} prefix="Not saved" />
      {done && <p role="status">{done}</p>}
    </form>
  );
}
