// Pricing versions: immutable sets of rates, one of them the default new customers are
// pinned to. Admins publish versions, pick the default, move cohorts between versions and
// give a customer its own rate; staff may compare a version against real usage first.
import { useQuery } from "@connectrpc/connect-query";
import { AdminService, type Feature } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { type FormEvent, useState } from "react";
import { dateOf, formatDate } from "../../format.js";
import { useChange } from "../../mutations.js";
import { ErrorNote, Loading, Section } from "../../ui.js";
import { AdminOnly, Done, problemOf, ReasonField, useForm } from "./forms.js";
import { MoveCustomersForm, RateOverrideForm } from "./PricingChanges.js";
import { parseRate, rateText, useFeatureScale } from "./rates.js";
import { ShadowPricingReport } from "./ShadowPricingReport.js";

/** PricingPage lists pricing versions; admins publish, choose the default and move customers. */
export function PricingPage({ isAdmin }: { isAdmin: boolean }) {
  return (
    <>
      <PricingVersions />
      {isAdmin ? (
        <>
          <div className="columns">
            <SetDefaultForm />
            <MoveCustomersForm />
          </div>
          <CreateVersionForm />
          <RateOverrideForm />
        </>
      ) : (
        <AdminOnly what="publish pricing versions, set the default, move customers or set rate overrides" />
      )}
      <ShadowPricingReport />
    </>
  );
}

function PricingVersions() {
  const versions = useQuery(AdminService.method.listPricingVersions, {});
  const scaleOf = useFeatureScale();
  if (versions.isPending) return <Loading what="pricing versions" />;
  if (versions.error) return <ErrorNote error={versions.error} prefix="Could not list pricing versions" />;
  const { pricingVersions, defaultPricingVersionId } = versions.data;
  return (
    <Section title="Pricing versions">
      <p data-testid="default-version">
        Default for new customers: <strong>{defaultPricingVersionId || "none (the features' base rates)"}</strong>
      </p>
      {pricingVersions.length === 0 ? (
        <p className="muted">No pricing versions yet: every customer pays the features' base rates.</p>
      ) : (
        <table aria-label="Pricing versions">
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Name</th>
              <th scope="col">Published</th>
              <th scope="col">Rates (features not listed: base rate)</th>
            </tr>
          </thead>
          <tbody>
            {pricingVersions.map((version) => (
              <tr key={version.pricingVersionId} data-version={version.pricingVersionId}>
                <td>
                  <code>{version.pricingVersionId}</code>
                  {version.pricingVersionId === defaultPricingVersionId && <span className="badge">default</span>}
                </td>
                <td>{version.displayName}</td>
                <td>{formatDate(dateOf(version.createTime))}</td>
                <td>
                  <ul>
                    {version.rates.map((rate) => (
                      <li key={rate.featureKey}>
                        {rate.featureKey}: {rateText(rate.rate, scaleOf(rate.featureKey))}
                      </li>
                    ))}
                  </ul>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

function SetDefaultForm() {
  const versions = useQuery(AdminService.method.listPricingVersions, {});
  const change = useChange(AdminService.method.setDefaultPricingVersion);
  const form = useForm({ pricingVersionId: "", reason: "" });
  const [done, setDone] = useState<string | null>(null);
  const all = versions.data?.pricingVersions ?? [];
  const chosen = form.values.pricingVersionId || all[all.length - 1]?.pricingVersionId || "";
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    change.mutate(
      form.submission({ pricingVersionId: chosen, reason: form.values.reason }),
      { onSuccess: (response) => { setDone(`${response.pricingVersionId} is now the default.`); form.sent({ pricingVersionId: "", reason: "" }); } },
    );
  };
  return (
    <Section title="Set the default version">
      <form className="stack" aria-label="Set the default version" onSubmit={submit}>
        <label>
          Version
          <select value={chosen} onChange={(event) => form.set("pricingVersionId", event.target.value)} required>
            {all.map((version) => (
              <option key={version.pricingVersionId} value={version.pricingVersionId}>
                {version.pricingVersionId}
                {version.displayName ? ` (${version.displayName})` : ""}
              </option>
            ))}
          </select>
        </label>
        <p className="muted">New customers are pinned to the default; customers already pinned stay where they are.</p>
        <ReasonField value={form.values.reason} onChange={(reason) => form.set("reason", reason)} />
        <button type="submit" className="primary" disabled={change.isPending || all.length === 0}>
          Set default
        </button>
        <ErrorNote error={change.error} prefix="Default not set" />
        <Done text={done} />
      </form>
    </Section>
  );
}

type RateTexts = Record<string, { credits: string; perUnits: string }>;

/** ratesOf reads the rates typed per feature; a feature with no credits typed is left out (base rate). */
function ratesOf(features: Feature[], texts: RateTexts, scaleOf: (featureKey: string) => number) {
  return features.flatMap((feature) => {
    const typed = texts[feature.featureKey];
    if (typed === undefined || typed.credits.trim() === "") return [];
    try {
      return [{ featureKey: feature.featureKey, rate: parseRate(typed.credits, typed.perUnits, scaleOf(feature.featureKey)) }];
    } catch (error) {
      throw new Error(`${feature.featureKey}: ${(error as Error).message}`);
    }
  });
}

function CreateVersionForm() {
  const features = useQuery(AdminService.method.listFeatures, {});
  const create = useChange(AdminService.method.createPricingVersion);
  const scaleOf = useFeatureScale();
  const initial = { pricingVersionId: "", displayName: "", makeDefault: false, rates: {} as RateTexts };
  const form = useForm(initial);
  const [done, setDone] = useState<string | null>(null);
  const all = features.data?.features ?? [];
  const ratesProblem = problemOf(() => ratesOf(all, form.values.rates, scaleOf));
  const setRate = (featureKey: string, field: "credits" | "perUnits", value: string) => {
    const current = form.values.rates[featureKey] ?? { credits: "", perUnits: "" };
    form.set("rates", { ...form.values.rates, [featureKey]: { ...current, [field]: value } });
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    if (ratesProblem !== null) return;
    const pricingVersion = { pricingVersionId: form.values.pricingVersionId.trim(), displayName: form.values.displayName, rates: ratesOf(all, form.values.rates, scaleOf) };
    create.mutate(
      form.submission({ pricingVersion, makeDefault: form.values.makeDefault }),
      { onSuccess: () => { setDone(`Published ${pricingVersion.pricingVersionId}.`); form.sent(initial); } },
    );
  };
  return (
    <Section title="Publish a pricing version">
      <form className="stack" aria-label="Publish a pricing version" onSubmit={submit}>
        <div className="row">
          <label>
            Version id (lowercase letters, digits, '_', '.', '-')
            <input {...form.text("pricingVersionId")} required maxLength={64} />
          </label>
          <label>
            Name
            <input {...form.text("displayName")} />
          </label>
        </div>
        <p className="muted">A version cannot be changed once published. Leave a feature's credits empty to keep its base rate.</p>
        <RateInputs features={all} rates={form.values.rates} onChange={setRate} scaleOf={scaleOf} />
        {ratesProblem && <p className="error">{ratesProblem}</p>}
        <label className="checkbox">
          <input type="checkbox" checked={form.values.makeDefault} onChange={(event) => form.set("makeDefault", event.target.checked)} />
          Also make it the default for new customers
        </label>
        <button type="submit" className="primary" disabled={create.isPending || ratesProblem !== null}>
          Publish
        </button>
        <ErrorNote error={create.error} prefix="Version not published" />
        <Done text={done} />
      </form>
    </Section>
  );
}

/** RateInputs takes a rate per feature: credits at its credit type's scale, per a whole number of units. */
function RateInputs({ features, rates, onChange, scaleOf }: {
  features: Feature[];
  rates: RateTexts;
  onChange: (featureKey: string, field: "credits" | "perUnits", value: string) => void;
  scaleOf: (featureKey: string) => number;
}) {
  return (
    <table aria-label="Rates of the new version">
      <thead>
        <tr>
          <th scope="col">Feature</th>
          <th scope="col">Base rate</th>
          <th scope="col">Credits</th>
          <th scope="col">Per units (empty: 1)</th>
        </tr>
      </thead>
      <tbody>
        {features.map((feature) => (
          <tr key={feature.featureKey}>
            <td><code>{feature.featureKey}</code></td>
            <td>{rateText({ credits: feature.burnRate, perUnits: 1n }, scaleOf(feature.featureKey))}</td>
            <td>
              <input inputMode="decimal" aria-label={`Credits for ${feature.featureKey}`} value={rates[feature.featureKey]?.credits ?? ""} onChange={(event) => onChange(feature.featureKey, "credits", event.target.value)} />
            </td>
            <td>
              <input inputMode="numeric" aria-label={`Per units for ${feature.featureKey}`} value={rates[feature.featureKey]?.perUnits ?? ""} onChange={(event) => onChange(feature.featureKey, "perUnits", event.target.value)} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
