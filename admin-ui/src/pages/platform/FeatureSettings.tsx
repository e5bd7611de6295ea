// One feature's enforcement, for admins: its mode, a rollout of another mode to a cohort
// (listed customers and a stable percentage), and what SDKs do while the ledger cannot
// be reached. Each change is audited, so each asks why.
import { AdminService, type Feature } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { EnforcementMode, FailurePolicy } from "@burndown/sdk/gen/burndown/v1/usage_pb.js";
import { type FormEvent, type ReactNode, useState } from "react";
import { formatAmount, parseAmount } from "../../format.js";
import { enforcementModes, failurePolicies } from "../../labels.js";
import { useChange } from "../../mutations.js";
import { ErrorNote, Section } from "../../ui.js";
import { Done, parseIds, parseWhole, problemOf, ReasonField, useForm } from "./forms.js";
import { offlineMinutesMax } from "./limits.js";

/** FeatureSettings changes one feature's mode, rollout and failure policy. */
export function FeatureSettings({ feature, scale }: { feature: Feature; scale: number }) {
  return (
    <Section title={`Settings of ${feature.featureKey}`}>
      <div className="columns">
        <ModeForm feature={feature} />
        <RolloutForm feature={feature} />
        <FailurePolicyForm feature={feature} scale={scale} />
      </div>
    </Section>
  );
}

function Fieldset({ legend, children }: { legend: string; children: ReactNode }) {
  return (
    <fieldset className="stack">
      <legend>{legend}</legend>
      {children}
    </fieldset>
  );
}

function ModeSelect({ label, value, onChange }: { label: string; value: string; onChange: (value: string) => void }) {
  return (
    <label>
      {label}
      <select value={value} onChange={(event) => onChange(event.target.value)}>
        {enforcementModes.map(([mode, name]) => (
          <option key={mode} value={mode}>
            {name}
          </option>
        ))}
      </select>
    </label>
  );
}

function ModeForm({ feature }: { feature: Feature }) {
  const change = useChange(AdminService.method.setEnforcementMode);
  const form = useForm({ mode: String(feature.enforcementMode), reason: "" });
  const [done, setDone] = useState<string | null>(null);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    const mode = Number(form.values.mode) as EnforcementMode;
    change.mutate(
      form.submission({ featureKey: feature.featureKey, mode, reason: form.values.reason }),
      { onSuccess: () => { setDone("Mode set."); form.sent({ ...form.values, reason: "" }); } },
    );
  };
  return (
    <form aria-label={`Enforcement mode of ${feature.featureKey}`} onSubmit={submit}>
      <Fieldset legend="Enforcement mode">
        <ModeSelect label="Mode" value={form.values.mode} onChange={(mode) => form.set("mode", mode)} />
        <p className="muted">Enforce burns and refuses when out of credits; Observe rates into the shadow ledger only; Off records without billing.</p>
        <ReasonField value={form.values.reason} onChange={(reason) => form.set("reason", reason)} />
        <button type="submit" className="primary" disabled={change.isPending}>Set mode</button>
        <ErrorNote error={change.error} prefix="Mode not set" />
        <Done text={done} />
      </Fieldset>
    </form>
  );
}

function RolloutForm({ feature }: { feature: Feature }) {
  const change = useChange(AdminService.method.setEnforcementRollout);
  const rollout = feature.rollout;
  const form = useForm({
    mode: String(rollout?.mode ?? EnforcementMode.OBSERVE),
    customers: rollout?.customerIds.join("\n") ?? "",
    percent: String(rollout?.percent ?? 0),
    reason: "",
  });
  const [done, setDone] = useState<string | null>(null);
  const percentProblem = problemOf(() => {
    const percent = parseWhole(form.values.percent || "0", "The percentage");
    if (percent > 100n) throw new Error("The percentage must be from 0 to 100.");
  });
  const idsProblem = problemOf(() => parseIds(form.values.customers));
  const send = (clear: boolean) => {
    setDone(null);
    const next = clear
      ? undefined
      : { mode: Number(form.values.mode) as EnforcementMode, customerIds: parseIds(form.values.customers), percent: Number(parseWhole(form.values.percent || "0", "The percentage")) };
    change.mutate(
      form.submission({ featureKey: feature.featureKey, rollout: next, reason: form.values.reason }),
      { onSuccess: () => { setDone(clear ? "Rollout cleared." : "Rollout set."); form.sent({ ...form.values, reason: "" }); } },
    );
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (percentProblem === null && idsProblem === null) send(false);
  };
  return (
    <form aria-label={`Rollout of ${feature.featureKey}`} onSubmit={submit}>
      <Fieldset legend="Rollout to a cohort">
        <ModeSelect label="Cohort's mode" value={form.values.mode} onChange={(mode) => form.set("mode", mode)} />
        <label>
          Customers in the cohort (ids, one per line)
          <textarea rows={3} {...form.text("customers")} aria-invalid={idsProblem !== null} />
        </label>
        {idsProblem && <p className="error">{idsProblem}</p>}
        <label>
          Percent of the other customers (0 to 100)
          <input inputMode="numeric" {...form.text("percent")} aria-invalid={percentProblem !== null} />
        </label>
        {percentProblem && <p className="error">{percentProblem}</p>}
        <ReasonField value={form.values.reason} onChange={(reason) => form.set("reason", reason)} />
        <div className="row">
          <button type="submit" className="primary" disabled={change.isPending}>Set rollout</button>
          <button
            type="button"
            disabled={change.isPending || rollout === undefined}
            onClick={(event) => (event.currentTarget.form?.reportValidity() ?? true) && send(true)}
          >
            Clear rollout
          </button>
        </div>
        <ErrorNote error={change.error} prefix="Rollout not changed" />
        <Done text={done} />
      </Fieldset>
    </form>
  );
}

function FailurePolicyForm({ feature, scale }: { feature: Feature; scale: number }) {
  const change = useChange(AdminService.method.setFailurePolicy);
  const budget = feature.offlineBudget;
  const form = useForm({
    policy: String(feature.failurePolicy || FailurePolicy.FAIL_CLOSED),
    credits: budget && budget.creditsMax > 0n ? formatAmount(budget.creditsMax, scale) : "",
    // Whole minutes, rounded up: a budget set in seconds through the API is not shortened by a resend.
    minutes: budget?.durationMax && budget.durationMax.seconds > 0n ? String((budget.durationMax.seconds + 59n) / 60n) : "",
    reason: "",
  });
  const [done, setDone] = useState<string | null>(null);
  const open = Number(form.values.policy) === FailurePolicy.FAIL_OPEN;
  const creditsProblem = form.values.credits.trim() === "" ? null : problemOf(() => parseAmount(form.values.credits, scale));
  const minutesProblem = problemOf(() => {
    if (parseWhole(form.values.minutes || "0", "The minutes") > offlineMinutesMax) throw new Error("At most 30 days (43,200 minutes).");
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    if (open && (creditsProblem !== null || minutesProblem !== null)) return;
    const minutes = open ? parseWhole(form.values.minutes || "0", "The minutes") : 0n;
    const offlineBudget = open
      ? { creditsMax: form.values.credits.trim() === "" ? 0n : parseAmount(form.values.credits, scale), durationMax: minutes > 0n ? { seconds: minutes * 60n } : undefined }
      : undefined;
    change.mutate(
      form.submission({ featureKey: feature.featureKey, failurePolicy: Number(form.values.policy) as FailurePolicy, offlineBudget, reason: form.values.reason }),
      { onSuccess: () => { setDone("Failure policy set."); form.sent({ ...form.values, reason: "" }); } },
    );
  };
  return (
    <form aria-label={`Failure policy of ${feature.featureKey}`} onSubmit={submit}>
      <Fieldset legend="When the ledger is unreachable">
        <label>
          Policy
          <select {...form.text("policy")}>
            {failurePolicies.map(([policy, name]) => (
              <option key={policy} value={policy}>
                {name}
              </option>
            ))}
          </select>
        </label>
        {open && (
          <>
            <label>
              Offline credits per customer, per outage (empty: no limit)
              <input inputMode="decimal" {...form.text("credits")} aria-invalid={creditsProblem !== null} />
            </label>
            {creditsProblem && <p className="error">{creditsProblem}</p>}
            <label>
              Allowed for the first minutes of an outage (empty: no limit)
              <input inputMode="numeric" {...form.text("minutes")} aria-invalid={minutesProblem !== null} />
            </label>
            {minutesProblem && <p className="error">{minutesProblem}</p>}
          </>
        )}
        <ReasonField value={form.values.reason} onChange={(reason) => form.set("reason", reason)} />
        <button type="submit" className="primary" disabled={change.isPending}>Set policy</button>
        <ErrorNote error={change.error} prefix="Failure policy not set" />
        <Done text={done} />
      </Fieldset>
    </form>
  );
}
