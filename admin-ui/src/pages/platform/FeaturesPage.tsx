// Features and enforcement: the kill switch, every feature with its burn rate, mode,
// rollout and failure policy, a feature's settings, and a form to add one.
import { useQuery } from "@connectrpc/connect-query";
import { AdminService, type Feature } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { EnforcementMode, type EnforcementRollout, FailurePolicy } from "@burndown/sdk/gen/burndown/v1/usage_pb.js";
import { type FormEvent, useState } from "react";
import { formatAmount, parseAmount } from "../../format.js";
import { enforcementModeName, enforcementModes, failurePolicyName } from "../../labels.js";
import { useChange } from "../../mutations.js";
import { CreditTypeSelect, ErrorNote, Loading, Section, useScales } from "../../ui.js";
import { FeatureSettings } from "./FeatureSettings.js";
import { AdminOnly, Done, problemOf, useForm } from "./forms.js";
import { KillSwitchSection } from "./KillSwitch.js";

/** rolloutSummary says who gets which mode besides the feature's own. */
export function rolloutSummary(rollout: EnforcementRollout | undefined): string {
  if (rollout === undefined) return "None";
  const listed = rollout.customerIds.length;
  const who = [listed > 0 ? `${listed} listed customer${listed === 1 ? "" : "s"}` : "", rollout.percent > 0 ? `${rollout.percent}% of the rest` : ""].filter(Boolean).join(" and ");
  return `${enforcementModeName(rollout.mode)} for ${who || "no one"}`;
}

/** failurePolicySummary says what SDKs do offline, with the budget of a fail-open policy. */
export function failurePolicySummary(feature: Feature, scale: number): string {
  if (feature.failurePolicy !== FailurePolicy.FAIL_OPEN) return failurePolicyName(feature.failurePolicy);
  const budget = feature.offlineBudget;
  const credits = budget && budget.creditsMax > 0n ? `up to ${formatAmount(budget.creditsMax, scale)} credits` : "";
  const seconds = budget?.durationMax?.seconds ?? 0n;
  const minutes = seconds <= 0n ? "" : seconds % 60n === 0n ? `for ${seconds / 60n} min` : `for ${seconds} s`;
  const bounds = [credits, minutes].filter(Boolean).join(", ");
  return `Fail open (${bounds || "no limit"})`;
}

/** FeaturesPage shows the kill switch and every feature; admins change them here. */
export function FeaturesPage({ isAdmin }: { isAdmin: boolean }) {
  const features = useQuery(AdminService.method.listFeatures, {});
  const scaleOf = useScales();
  const [selected, setSelected] = useState<string | null>(null);
  const chosen = features.data?.features.find((feature) => feature.featureKey === selected);
  return (
    <>
      <KillSwitchSection isAdmin={isAdmin} />
      <Section title="Features">
        {features.isPending ? (
          <Loading what="features" />
        ) : features.error ? (
          <ErrorNote error={features.error} prefix="Could not list features" />
        ) : features.data.features.length === 0 ? (
          <p className="muted">No features yet.</p>
        ) : (
          <table aria-label="Features">
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col">Name</th>
                <th scope="col">Credit type</th>
                <th scope="col" className="num">Burn rate (per unit)</th>
                <th scope="col">Enforcement</th>
                <th scope="col">Rollout</th>
                <th scope="col">Failure policy</th>
                {isAdmin && <th scope="col"><span className="sr-only">Actions</span></th>}
              </tr>
            </thead>
            <tbody>
              {features.data.features.map((feature) => (
                <tr key={feature.featureKey} data-feature={feature.featureKey}>
                  <td><code>{feature.featureKey}</code></td>
                  <td>{feature.displayName}</td>
                  <td>{feature.creditTypeId}</td>
                  <td className="num">{formatAmount(feature.burnRate, scaleOf(feature.creditTypeId))}</td>
                  <td data-testid="mode">{enforcementModeName(feature.enforcementMode)}</td>
                  <td>{rolloutSummary(feature.rollout)}</td>
                  <td>{failurePolicySummary(feature, scaleOf(feature.creditTypeId))}</td>
                  {isAdmin && (
                    <td>
                      <button type="button" aria-expanded={selected === feature.featureKey} onClick={() => setSelected(selected === feature.featureKey ? null : feature.featureKey)}>
                        Settings<span className="sr-only"> of {feature.featureKey}</span>
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      {isAdmin && chosen && <FeatureSettings key={chosen.featureKey} feature={chosen} scale={scaleOf(chosen.creditTypeId)} />}
      {isAdmin ? <CreateFeatureForm /> : <AdminOnly what="add features or change their enforcement" />}
    </>
  );
}

function CreateFeatureForm() {
  const creditTypes = useQuery(AdminService.method.listCreditTypes, {});
  const create = useChange(AdminService.method.createFeature);
  const initial = { featureKey: "", displayName: "", creditTypeId: "", burnRate: "", mode: String(EnforcementMode.ENFORCE) };
  const form = useForm(initial);
  const [done, setDone] = useState<string | null>(null);
  const types = creditTypes.data?.creditTypes ?? [];
  const creditTypeId = form.values.creditTypeId || types[0]?.creditTypeId || "";
  const scale = types.find((type) => type.creditTypeId === creditTypeId)?.scale ?? 0;
  const rateProblem = form.values.burnRate.trim() === "" ? null : problemOf(() => parseAmount(form.values.burnRate, scale));
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    if (rateProblem !== null) return;
    const { featureKey, displayName, burnRate, mode } = form.values;
    const feature = { featureKey: featureKey.trim(), displayName, creditTypeId, burnRate: parseAmount(burnRate, scale), enforcementMode: Number(mode) as EnforcementMode };
    create.mutate(
      form.submission({ feature }),
      {
        onSuccess: () => {
          setDone(`Added the feature ${feature.featureKey}.`);
          form.sent(initial);
        },
      },
    );
  };
  return (
    <Section title="Add a feature">
      <form className="stack" aria-label="Add a feature" onSubmit={submit}>
        <label>
          Feature key (lowercase letters, digits, '_', '.', '-')
          <input {...form.text("featureKey")} required maxLength={64} />
        </label>
        <label>
          Name
          <input {...form.text("displayName")} />
        </label>
        <CreditTypeSelect types={types} value={creditTypeId} onChange={(value) => form.set("creditTypeId", value)} />
        <label>
          Burn rate (credits per unit)
          <input inputMode="decimal" {...form.text("burnRate")} aria-invalid={rateProblem !== null} required />
        </label>
        {rateProblem && <p className="error">{rateProblem}</p>}
        <label>
          Enforcement mode
          <select {...form.text("mode")}>
            {enforcementModes.map(([value, name]) => (
              <option key={value} value={value}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" className="primary" disabled={create.isPending || types.length === 0}>
          Add feature
        </button>
        {types.length === 0 && <p className="muted">Add a credit type first.</p>}
        <ErrorNote error={create.error} prefix="Feature not added" />
        <Done text={done} />
      </form>
    </Section>
  );
}

