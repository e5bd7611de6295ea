// Plans: recurring allotments of credits (an amount of a credit type every period, lots
// that expire at the end of their period or never, and what rolls over), bundles on offer
// and a pricing version for subscribers. A plan is versioned: saving a plan id again makes
// its next version, and subscribers keep theirs until moved.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { useQuery } from "@connectrpc/connect-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { type Allotment, type AllotmentSchema, PeriodUnit, PlanService } from "@burndown/sdk/gen/burndown/v1/plans_pb.js";
import { type FormEvent, useState } from "react";
import { dateOf, formatAmount, formatDate } from "../../format.js";
import { useChange } from "../../mutations.js";
import { CreditTypeSelect, ErrorNote, Loading, Section, useScales } from "../../ui.js";
import { AdminOnly, Done, parseIds, parseWhole, useForm } from "./forms.js";

const unitNames: Record<number, [string, string]> = {
  [PeriodUnit.DAY]: ["day", "days"],
  [PeriodUnit.MONTH]: ["month", "months"],
  [PeriodUnit.YEAR]: ["year", "years"],
};

/** periodText says how often an allotment is granted: "every month", "every 30 days". */
export function periodText(allotment: Allotment): string {
  const [one, many] = unitNames[allotment.period?.unit ?? PeriodUnit.UNSPECIFIED] ?? ["period", "periods"];
  const length = allotment.period?.length ?? 1;
  return length === 1 ? `every ${one}` : `every ${length} ${many}`;
}

/** allotmentText says what an allotment grants, how long its lots last and what rolls over. */
export function allotmentText(allotment: Allotment, scale: number): string {
  const expiry =
    allotment.lotExpiry.case === "expireAtPeriodEnd" ? "expires at period end" : allotment.lotExpiry.case === "lotLifetime" ? `lasts ${allotment.lotExpiry.value.seconds / 86_400n} days` : "never expires";
  const cap = allotment.rollover?.cap;
  const rollover = cap?.case === "maxAmount" ? `, rolls over up to ${formatAmount(cap.value, scale)}` : cap?.case === "maxPercent" ? `, rolls over up to ${cap.value}%` : "";
  return `${formatAmount(allotment.amount, scale)} ${allotment.creditTypeId} ${periodText(allotment)}, ${expiry}${rollover}`;
}

/** PlansPage lists the plans (latest versions, or all) and, for admins, adds one or a version. */
export function PlansPage({ isAdmin }: { isAdmin: boolean }) {
  const [allVersions, setAllVersions] = useState(false);
  const plans = useQuery(PlanService.method.listPlans, { allVersions });
  const scaleOf = useScales();
  return (
    <>
      <Section title="Plans">
        <label>
          <input type="checkbox" checked={allVersions} onChange={(event) => setAllVersions(event.target.checked)} /> Show every version
        </label>
        {plans.isPending ? (
          <Loading what="plans" />
        ) : plans.error ? (
          <ErrorNote error={plans.error} prefix="Could not list plans" />
        ) : plans.data.plans.length === 0 ? (
          <p className="muted">No plans yet.</p>
        ) : (
          <table aria-label="Plans">
            <thead>
              <tr>
                <th scope="col">Id</th>
                <th scope="col" className="num">Version</th>
                <th scope="col">Name</th>
                <th scope="col">Allotments</th>
                <th scope="col">Bundles</th>
                <th scope="col">Pricing version</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {plans.data.plans.map((plan) => (
                <tr key={`${plan.planId}@${plan.version}`} data-plan={plan.planId}>
                  <td><code>{plan.planId}</code></td>
                  <td className="num">{plan.version}</td>
                  <td>{plan.displayName}</td>
                  <td>{plan.allotments.map((allotment, index) => <div key={index}>{allotmentText(allotment, scaleOf(allotment.creditTypeId))}</div>)}</td>
                  <td>{plan.bundleIds.join(", ")}</td>
                  <td>{plan.pricingVersionId}</td>
                  <td>{formatDate(dateOf(plan.createTime))}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      {isAdmin ? <CreatePlanForm /> : <AdminOnly what="add plans" />}
    </>
  );
}

/** AllotmentValues are an allotment's fields as typed. */
export interface AllotmentValues {
  creditTypeId: string;
  amount: string;
  unit: string;
  length: string;
  expiry: string;
  rollover: string;
  cap: string;
}

export const initialAllotment: AllotmentValues = { creditTypeId: "", amount: "", unit: String(PeriodUnit.MONTH), length: "1", expiry: "period_end", rollover: "none", cap: "" };

/** allotmentOf reads an allotment's typed fields; throws a message for a person when one does not read. */
export function allotmentOf(values: AllotmentValues, creditTypeId: string): MessageInitShape<typeof AllotmentSchema> {
  const rollover =
    values.rollover === "amount"
      ? { cap: { case: "maxAmount" as const, value: parseWhole(values.cap, "Rollover cap") } }
      : values.rollover === "percent"
        ? { cap: { case: "maxPercent" as const, value: Number(parseWhole(values.cap, "Rollover percent")) } }
        : undefined;
  return {
    creditTypeId,
    amount: parseWhole(values.amount, "Credits per period"),
    period: { unit: Number(values.unit) as PeriodUnit, length: Number(parseWhole(values.length, "Period length")) },
    lotExpiry: values.expiry === "period_end" ? { case: "expireAtPeriodEnd", value: true } : { case: undefined },
    rollover,
  };
}

/** AllotmentFields are the inputs of one allotment. */
export function AllotmentFields({ values, set, creditTypeId, onCreditType }: {
  values: AllotmentValues;
  set: <K extends keyof AllotmentValues>(key: K, value: AllotmentValues[K]) => void;
  creditTypeId: string;
  onCreditType: (value: string) => void;
}) {
  const types = useQuery(AdminService.method.listCreditTypes, {});
  return (
    <>
      <CreditTypeSelect types={types.data?.creditTypes ?? []} value={creditTypeId} onChange={onCreditType} />
      <label>
        Credits per period (in the credit type's smallest unit)
        <input inputMode="numeric" value={values.amount} onChange={(event) => set("amount", event.target.value)} required />
      </label>
      <label>
        Every
        <input inputMode="numeric" value={values.length} onChange={(event) => set("length", event.target.value)} required />
      </label>
      <label>
        Period unit
        <select value={values.unit} onChange={(event) => set("unit", event.target.value)}>
          <option value={PeriodUnit.DAY}>days</option>
          <option value={PeriodUnit.MONTH}>months</option>
          <option value={PeriodUnit.YEAR}>years</option>
        </select>
      </label>
      <label>
        Each period's credits
        <select value={values.expiry} onChange={(event) => set("expiry", event.target.value)}>
          <option value="period_end">expire at the end of their period</option>
          <option value="never">never expire</option>
        </select>
      </label>
      <label>
        Unused credits at the end of a period
        <select value={values.rollover} onChange={(event) => set("rollover", event.target.value)} disabled={values.expiry !== "period_end"}>
          <option value="none">expire</option>
          <option value="amount">roll over, up to an amount</option>
          <option value="percent">roll over, up to a percent of the allotment</option>
        </select>
      </label>
      {values.rollover !== "none" && values.expiry === "period_end" && (
        <label>
          Rollover cap ({values.rollover === "amount" ? "credits" : "percent"})
          <input inputMode="numeric" value={values.cap} onChange={(event) => set("cap", event.target.value)} required />
        </label>
      )}
    </>
  );
}

function CreatePlanForm() {
  const create = useChange(PlanService.method.createPlan);
  const types = useQuery(AdminService.method.listCreditTypes, {});
  const initial = { planId: "", displayName: "", bundleIds: "", pricingVersionId: "" };
  const form = useForm(initial);
  const [allotment, setAllotment] = useState(initialAllotment);
  const [done, setDone] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const creditTypeId = allotment.creditTypeId || types.data?.creditTypes[0]?.creditTypeId || "";
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    setProblem(null);
    try {
      const request = {
        planId: form.values.planId.trim(),
        displayName: form.values.displayName,
        allotments: [allotmentOf(allotment, creditTypeId)],
        bundleIds: parseIds(form.values.bundleIds),
        pricingVersionId: form.values.pricingVersionId.trim(),
      };
      create.mutate(form.submission(request), {
        onSuccess: (response) => {
          setDone(`Saved ${response.plan?.planId} version ${response.plan?.version}.`);
          form.sent(initial);
          setAllotment(initialAllotment);
        },
      });
    } catch (error) {
      setProblem(error instanceof Error ? error.message : String(error));
    }
  };
  return (
    <Section title="Add a plan or a new version">
      <form className="stack" aria-label="Add a plan" onSubmit={submit}>
        <label>
          Plan id (an existing id makes its next version)
          <input {...form.text("planId")} required maxLength={64} />
        </label>
        <label>
          Name shown to customers
          <input {...form.text("displayName")} required maxLength={200} />
        </label>
        <AllotmentFields
          values={allotment}
          set={(key, value) => setAllotment((current) => ({ ...current, [key]: value }))}
          creditTypeId={creditTypeId}
          onCreditType={(value) => setAllotment((current) => ({ ...current, creditTypeId: value }))}
        />
        <label>
          Bundles on offer (ids, optional)
          <input {...form.text("bundleIds")} />
        </label>
        <label>
          Pricing version for subscribers (optional)
          <input {...form.text("pricingVersionId")} maxLength={64} />
        </label>
        <button type="submit" className="primary" disabled={create.isPending}>
          Save plan
        </button>
        {problem && <p className="error" role="alert">{problem}</p>}
        <ErrorNote error={create.error} prefix="Plan not saved" />
        <Done text={done} />
      </form>
    </Section>
  );
}
