// Changes to who pays what, for admins: move a cohort of customers to another pricing
// version (grandfathering stays the default: only those moved change), and set or clear
// one customer's own rate for a feature (an enterprise deal). Both are audited.
import { useQuery } from "@connectrpc/connect-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { type FormEvent, useState } from "react";
import { formatAmount } from "../../format.js";
import { useChange } from "../../mutations.js";
import { ErrorNote, Section } from "../../ui.js";
import { Done, parseIds, problemOf, ReasonField, useForm } from "./forms.js";
import { parseRate, rateText, useFeatureScale } from "./rates.js";

/** baseRates is the "from" choice for customers pinned to no version. */
const baseRates = "";

/** MoveCustomersForm re-pins a cohort (or some of it) to another pricing version. */
export function MoveCustomersForm() {
  const versions = useQuery(AdminService.method.listPricingVersions, {});
  const move = useChange(AdminService.method.moveCustomersToPricingVersion);
  const form = useForm({ from: baseRates, to: "", customers: "", reason: "" });
  const [done, setDone] = useState<string | null>(null);
  const all = versions.data?.pricingVersions ?? [];
  const to = form.values.to || all[all.length - 1]?.pricingVersionId || "";
  const idsProblem = problemOf(() => parseIds(form.values.customers));
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    if (idsProblem !== null) return;
    const customerIds = parseIds(form.values.customers);
    move.mutate(
      form.submission({ fromPricingVersionId: form.values.from, toPricingVersionId: to, customerIds, reason: form.values.reason }),
      {
        onSuccess: (response) => {
          setDone(`Moved ${formatAmount(response.movedCount)} customer${response.movedCount === 1n ? "" : "s"} to ${to}.`);
          form.sent({ ...form.values, customers: "", reason: "" });
        },
      },
    );
  };
  return (
    <Section title="Move customers to a version">
      <form className="stack" aria-label="Move customers to a version" onSubmit={submit}>
        <label>
          From
          <select {...form.text("from")}>
            <option value={baseRates}>Base rates (no version)</option>
            {all.map((version) => (
              <option key={version.pricingVersionId} value={version.pricingVersionId}>{version.pricingVersionId}</option>
            ))}
          </select>
        </label>
        <label>
          To
          <select value={to} onChange={(event) => form.set("to", event.target.value)} required>
            {all.map((version) => (
              <option key={version.pricingVersionId} value={version.pricingVersionId}>{version.pricingVersionId}</option>
            ))}
          </select>
        </label>
        <label>
          Only these customers (ids, one per line; empty: everyone on the "from" version)
          <textarea rows={3} {...form.text("customers")} aria-invalid={idsProblem !== null} />
        </label>
        {idsProblem && <p className="error">{idsProblem}</p>}
        <ReasonField value={form.values.reason} onChange={(reason) => form.set("reason", reason)} />
        <button type="submit" className="primary" disabled={move.isPending || all.length === 0}>
          Move customers
        </button>
        <ErrorNote error={move.error} prefix="Nobody moved" />
        <Done text={done} />
      </form>
    </Section>
  );
}

/** RateOverrideForm sets or clears one customer's own rate for a feature. */
export function RateOverrideForm() {
  const features = useQuery(AdminService.method.listFeatures, {});
  const change = useChange(AdminService.method.setRateOverride);
  const scaleOf = useFeatureScale();
  const form = useForm({ customerId: "", featureKey: "", credits: "", perUnits: "", reason: "" });
  const [done, setDone] = useState<string | null>(null);
  const all = features.data?.features ?? [];
  const featureKey = form.values.featureKey || all[0]?.featureKey || "";
  const scale = scaleOf(featureKey);
  const rateProblem = form.values.credits.trim() === "" ? null : problemOf(() => parseRate(form.values.credits, form.values.perUnits, scale));
  const send = (clear: boolean) => {
    setDone(null);
    const rate = clear ? undefined : parseRate(form.values.credits, form.values.perUnits, scale);
    const customerId = form.values.customerId.trim();
    change.mutate(
      form.submission({ customerId, featureKey, rate, reason: form.values.reason }),
      {
        onSuccess: () => {
          setDone(clear ? `Cleared ${customerId}'s override of ${featureKey}.` : `${customerId} now pays ${rateText(rate, scale)} for ${featureKey}.`);
          form.sent({ ...form.values, reason: "" });
        },
      },
    );
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (rateProblem === null && form.values.credits.trim() !== "") send(false);
  };
  return (
    <Section title="A customer's own rate">
      <form className="stack" aria-label="Rate override" onSubmit={submit}>
        <div className="row">
          <label>
            Customer id
            <input {...form.text("customerId")} required />
          </label>
          <label>
            Feature
            <select value={featureKey} onChange={(event) => form.set("featureKey", event.target.value)} required>
              {all.map((feature) => (
                <option key={feature.featureKey} value={feature.featureKey}>{feature.featureKey}</option>
              ))}
            </select>
          </label>
          <label>
            Credits
            <input inputMode="decimal" {...form.text("credits")} aria-invalid={rateProblem !== null} />
          </label>
          <label>
            Per units (empty: 1)
            <input inputMode="numeric" {...form.text("perUnits")} />
          </label>
        </div>
        {rateProblem && <p className="error">{rateProblem}</p>}
        <ReasonField value={form.values.reason} onChange={(reason) => form.set("reason", reason)} />
        <div className="row">
          <button type="submit" className="primary" disabled={change.isPending || form.values.credits.trim() === ""}>
            Set override
          </button>
          <button type="button" disabled={change.isPending} onClick={(event) => event.currentTarget.form?.reportValidity() && send(true)}>
            Clear override
          </button>
        </div>
        <ErrorNote error={change.error} prefix="Override not changed" />
        <Done text={done} />
      </form>
    </Section>
  );
}
