// Bundles: the credits on sale (a price in a currency's minor units for credits of one
// type, bonus credits and how long they last). A bundle is versioned: saving a bundle id
// again makes its next version, and orders keep the version they were made from.
import { useQuery } from "@connectrpc/connect-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { BillingService } from "@burndown/sdk/gen/burndown/v1/billing_pb.js";
import { type FormEvent, useState } from "react";
import { dateOf, formatAmount, formatDate, formatPrice } from "../../format.js";
import { useChange } from "../../mutations.js";
import { CreditTypeSelect, ErrorNote, Loading, Section, useScales } from "../../ui.js";
import { AdminOnly, Done, parseWhole, useForm } from "./forms.js";

/** formatPrice shows minor units of a currency in its major unit (two decimals; none for zero-decimal currencies). */
// formatPrice lives in format.ts, where the customer view finds it too.
export { formatPrice };

/** BundlesPage lists the catalog's bundles (latest versions, or all) and, for admins, adds one or a version. */
export function BundlesPage({ isAdmin }: { isAdmin: boolean }) {
  const [allVersions, setAllVersions] = useState(false);
  const bundles = useQuery(BillingService.method.listBundles, { allVersions });
  const scaleOf = useScales();
  return (
    <>
      <Section title="Bundles">
        <label>
          <input type="checkbox" checked={allVersions} onChange={(event) => setAllVersions(event.target.checked)} /> Show every version
        </label>
        {bundles.isPending ? (
          <Loading what="bundles" />
        ) : bundles.error ? (
          <ErrorNote error={bundles.error} prefix="Could not list bundles" />
        ) : bundles.data.bundles.length === 0 ? (
          <p className="muted">No bundles yet.</p>
        ) : (
          <table aria-label="Bundles">
            <thead>
              <tr>
                <th scope="col">Id</th>
                <th scope="col" className="num">Version</th>
                <th scope="col">Name</th>
                <th scope="col" className="num">Credits</th>
                <th scope="col" className="num">Bonus</th>
                <th scope="col" className="num">Price</th>
                <th scope="col">Credits last</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {bundles.data.bundles.map((bundle) => (
                <tr key={`${bundle.bundleId}@${bundle.version}`} data-bundle={bundle.bundleId}>
                  <td><code>{bundle.bundleId}</code></td>
                  <td className="num">{bundle.version}</td>
                  <td>{bundle.displayName}</td>
                  <td className="num">{formatAmount(bundle.credits, scaleOf(bundle.creditTypeId))} {bundle.creditTypeId}</td>
                  <td className="num">{formatAmount(bundle.bonusCredits, scaleOf(bundle.creditTypeId))}</td>
                  <td className="num">{formatPrice(bundle.priceMinor, bundle.currency)}</td>
                  <td>{bundle.creditExpiry ? `${bundle.creditExpiry.seconds / 86_400n} days` : "never expire"}</td>
                  <td>{formatDate(dateOf(bundle.createTime))}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      {isAdmin ? <CreateBundleForm /> : <AdminOnly what="add bundles" />}
    </>
  );
}

function CreateBundleForm() {
  const create = useChange(BillingService.method.createBundle);
  const types = useQuery(AdminService.method.listCreditTypes, {});
  const initial = { bundleId: "", displayName: "", creditTypeId: "", credits: "", bonusCredits: "0", currency: "USD", priceMinor: "", expiryDays: "" };
  const form = useForm(initial);
  const [done, setDone] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const typeList = types.data?.creditTypes ?? [];
  const creditTypeId = form.values.creditTypeId || typeList[0]?.creditTypeId || "";
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    setProblem(null);
    try {
      const days = form.values.expiryDays.trim();
      const request = {
        bundleId: form.values.bundleId.trim(),
        displayName: form.values.displayName,
        creditTypeId,
        credits: parseWhole(form.values.credits, "Credits"),
        bonusCredits: parseWhole(form.values.bonusCredits || "0", "Bonus credits"),
        currency: form.values.currency.trim().toUpperCase(),
        priceMinor: parseWhole(form.values.priceMinor, "Price"),
        creditExpiry: days === "" ? undefined : { seconds: parseWhole(days, "Days") * 86_400n, nanos: 0 },
      };
      create.mutate(form.submission(request), {
        onSuccess: (response) => {
          setDone(`Saved ${response.bundle?.bundleId} version ${response.bundle?.version}.`);
          form.sent(initial);
        },
      });
    } catch (error) {
      setProblem(error instanceof Error ? error.message : String(error));
    }
  };
  return (
    <Section title="Add a bundle or a new version">
      <form className="stack" aria-label="Add a bundle" onSubmit={submit}>
        <label>
          Bundle id (an existing id makes its next version)
          <input {...form.text("bundleId")} required maxLength={64} />
        </label>
        <label>
          Name shown to customers
          <input {...form.text("displayName")} required maxLength={200} />
        </label>
        <CreditTypeSelect types={typeList} value={creditTypeId} onChange={(value) => form.set("creditTypeId", value)} />
        <label>
          Credits (in the credit type's smallest unit)
          <input inputMode="numeric" {...form.text("credits")} required />
        </label>
        <label>
          Bonus credits
          <input inputMode="numeric" {...form.text("bonusCredits")} />
        </label>
        <label>
          Currency (ISO 4217, such as USD)
          <input {...form.text("currency")} required maxLength={3} />
        </label>
        <label>
          Price in minor units (cents for USD)
          <input inputMode="numeric" {...form.text("priceMinor")} required />
        </label>
        <label>
          Credits last this many days after payment (empty: never expire)
          <input inputMode="numeric" {...form.text("expiryDays")} />
        </label>
        <button type="submit" className="primary" disabled={create.isPending}>
          Save bundle
        </button>
        {problem && <p className="error" role="alert">{problem}</p>}
        <ErrorNote error={create.error} prefix="Bundle not saved" />
        <Done text={done} />
      </form>
    </Section>
  );
}
