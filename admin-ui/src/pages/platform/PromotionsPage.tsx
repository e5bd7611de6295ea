// Promotions: promo codes that give customers promotional credits (a lot that expires,
// burned before purchased credits when it expires first), with how often each was
// redeemed; admins create codes and disable them. Customers redeem codes on their own view.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useQuery } from "@connectrpc/connect-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { type PromoCode, PromotionService } from "@burndown/sdk/gen/burndown/v1/promotions_pb.js";
import { type FormEvent, useState } from "react";
import { dateOf, formatAmount, formatDate } from "../../format.js";
import { useChange } from "../../mutations.js";
import { Confirm, CreditTypeSelect, ErrorNote, Loading, Section, useScales } from "../../ui.js";
import { AdminOnly, Done, Pager, parseWhole, useForm, usePages } from "./forms.js";

const dayMs = 86_400_000;

/** PromotionsPage lists promo codes and, for admins, creates and disables them. */
export function PromotionsPage({ isAdmin }: { isAdmin: boolean }) {
  return (
    <>
      <CodesTable isAdmin={isAdmin} />
      {isAdmin ? <CreateCodeForm /> : <AdminOnly what="create or disable promo codes" />}
    </>
  );
}

/** lastingOf says how long a code's credits last. */
function lastingOf(code: PromoCode): string {
  if (code.creditExpireTime) return `until ${formatDate(dateOf(code.creditExpireTime))}`;
  const days = (code.creditValidity?.seconds ?? 0n) / 86_400n;
  return `${days} day${days === 1n ? "" : "s"} from redemption`;
}

function CodesTable({ isAdmin }: { isAdmin: boolean }) {
  const [includeDisabled, setIncludeDisabled] = useState(false);
  const pages = usePages();
  const codes = useQuery(PromotionService.method.listPromoCodes, { includeDisabled, pageSize: 50, pageToken: pages.token });
  const disable = useChange(PromotionService.method.disablePromoCode);
  const form = useForm({});
  const [asking, setAsking] = useState<PromoCode | null>(null);
  const scaleOf = useScales();
  const confirm = () => {
    if (asking !== null) disable.mutate(form.submission({ code: asking.code }), { onSuccess: () => form.sent() });
    setAsking(null);
  };
  return (
    <Section title="Promo codes">
      <label>
        <input
          type="checkbox"
          checked={includeDisabled}
          onChange={(event) => {
            setIncludeDisabled(event.target.checked);
            pages.reset();
          }}
        />{" "}
        Show disabled codes
      </label>
      {codes.isPending ? (
        <Loading what="promo codes" />
      ) : codes.error ? (
        <ErrorNote error={codes.error} prefix="Could not list promo codes" />
      ) : codes.data.promoCodes.length === 0 ? (
        <p className="muted">No promo codes yet.</p>
      ) : (
        <table aria-label="Promo codes">
          <thead>
            <tr>
              <th scope="col">Code</th>
              <th scope="col" className="num">Credits</th>
              <th scope="col">Credits last</th>
              <th scope="col" className="num">Priority</th>
              <th scope="col">Redeem until</th>
              <th scope="col" className="num">Redemptions</th>
              <th scope="col">Description</th>
              <th scope="col">State</th>
              {isAdmin && <th scope="col"><span className="sr-only">Actions</span></th>}
            </tr>
          </thead>
          <tbody>
            {codes.data.promoCodes.map((code) => (
              <tr key={code.promoCodeId} data-code={code.code}>
                <td><code>{code.code}</code></td>
                <td className="num">{formatAmount(code.amount, scaleOf(code.creditTypeId))} {code.creditTypeId}</td>
                <td>{lastingOf(code)}</td>
                <td className="num">{code.priority}</td>
                <td>{code.validUntil ? formatDate(dateOf(code.validUntil)) : "no end"}</td>
                <td className="num" data-testid="redemptions">
                  {code.redemptionCount.toLocaleString("en-US")}
                  {code.maxRedemptions > 0n ? ` of ${code.maxRedemptions.toLocaleString("en-US")}` : ""}
                </td>
                <td>{code.description}</td>
                <td data-testid="code-state">{code.disableTime ? `Disabled ${formatDate(dateOf(code.disableTime))}` : "Enabled"}</td>
                {isAdmin && (
                  <td>
                    {!code.disableTime && (
                      <button type="button" className="danger" onClick={() => setAsking(code)}>
                        Disable<span className="sr-only"> {code.code}</span>
                      </button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager pages={pages} nextToken={codes.data?.nextPageToken} backLabel="Newer" nextLabel="Older" />
      <ErrorNote error={disable.error} prefix="Code not disabled" />
      <Confirm open={asking !== null} title={`Disable ${asking?.code ?? ""}?`} confirmLabel="Disable" danger onConfirm={confirm} onCancel={() => setAsking(null)}>
        <p>Nobody can redeem it any more. Credits it gave stay. This cannot be undone: create another code instead.</p>
      </Confirm>
    </Section>
  );
}

function CreateCodeForm() {
  const create = useChange(PromotionService.method.createPromoCode);
  const types = useQuery(AdminService.method.listCreditTypes, {});
  const initial = { code: "", creditTypeId: "", amount: "", validityDays: "30", priority: "0", validUntil: "", maxRedemptions: "", description: "" };
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
      const until = form.values.validUntil.trim();
      const request = {
        code: form.values.code.trim(),
        creditTypeId,
        amount: parseWhole(form.values.amount, "Credits"),
        creditValidity: { seconds: parseWhole(form.values.validityDays, "Days") * 86_400n, nanos: 0 },
        priority: Number(parseWhole(form.values.priority || "0", "Priority")),
        // The last day to redeem, through its end (UTC).
        validUntil: until === "" ? undefined : timestampFromDate(new Date(Date.parse(`${until}T00:00:00Z`) + dayMs)),
        maxRedemptions: form.values.maxRedemptions.trim() === "" ? 0n : parseWhole(form.values.maxRedemptions, "Redemptions"),
        description: form.values.description,
      };
      create.mutate(form.submission(request), {
        onSuccess: (response) => {
          setDone(`Created ${response.promoCode?.code}.`);
          form.sent(initial);
        },
      });
    } catch (error) {
      setProblem(error instanceof Error ? error.message : String(error));
    }
  };
  return (
    <Section title="Create a promo code">
      <form className="stack" aria-label="Create a promo code" onSubmit={submit}>
        <label>
          Code customers type (letters, digits, '-' and '_'; any case matches)
          <input {...form.text("code")} required minLength={3} maxLength={64} />
        </label>
        <CreditTypeSelect types={typeList} value={creditTypeId} onChange={(value) => form.set("creditTypeId", value)} />
        <label>
          Credits each redemption gives (in the credit type's smallest unit)
          <input inputMode="numeric" {...form.text("amount")} required />
        </label>
        <label>
          Credits last this many days after redemption
          <input inputMode="numeric" {...form.text("validityDays")} required />
        </label>
        <label>
          Burn priority (lower burns first; purchases use 0)
          <input inputMode="numeric" {...form.text("priority")} />
        </label>
        <label>
          Last day to redeem (empty: no end)
          <input type="date" {...form.text("validUntil")} />
        </label>
        <label>
          Redemptions allowed in all (empty: no limit)
          <input inputMode="numeric" {...form.text("maxRedemptions")} />
        </label>
        <label>
          Description (for staff)
          <input {...form.text("description")} maxLength={1000} />
        </label>
        <button type="submit" className="primary" disabled={create.isPending}>
          Create code
        </button>
        {problem && <p className="error" role="alert">{problem}</p>}
        <ErrorNote error={create.error} prefix="Code not created" />
        <Done text={done} />
      </form>
    </Section>
  );
}
