// Credit types: the kinds of credit the ledger keeps, each with its scale (the decimal
// places every amount of it is shown with). Admins add them; they are never changed.
import { useQuery } from "@connectrpc/connect-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { type FormEvent, useState } from "react";
import { dateOf, formatAmount, formatDate } from "../../format.js";
import { useChange } from "../../mutations.js";
import { ErrorNote, Loading, Section } from "../../ui.js";
import { AdminOnly, Done, useForm } from "./forms.js";

/** scaleMax is the most decimal places a credit type may have (the server's bound). */
const scaleMax = 12;

/** CreditTypesPage lists credit types and, for admins, adds them. */
export function CreditTypesPage({ isAdmin }: { isAdmin: boolean }) {
  const creditTypes = useQuery(AdminService.method.listCreditTypes, {});
  return (
    <>
      <Section title="Credit types">
        {creditTypes.isPending ? (
          <Loading what="credit types" />
        ) : creditTypes.error ? (
          <ErrorNote error={creditTypes.error} prefix="Could not list credit types" />
        ) : creditTypes.data.creditTypes.length === 0 ? (
          <p className="muted">No credit types yet.</p>
        ) : (
          <table aria-label="Credit types">
            <thead>
              <tr>
                <th scope="col">Id</th>
                <th scope="col">Name</th>
                <th scope="col" className="num">Scale</th>
                <th scope="col">One credit is written</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {creditTypes.data.creditTypes.map((type) => (
                <tr key={type.creditTypeId} data-credit-type={type.creditTypeId}>
                  <td><code>{type.creditTypeId}</code></td>
                  <td>{type.displayName}</td>
                  <td className="num">{type.scale}</td>
                  <td>{formatAmount(10n ** BigInt(type.scale), type.scale)}</td>
                  <td>{formatDate(dateOf(type.createTime))}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      {isAdmin ? <CreateCreditTypeForm /> : <AdminOnly what="add credit types" />}
    </>
  );
}

function CreateCreditTypeForm() {
  const create = useChange(AdminService.method.createCreditType);
  const initial = { creditTypeId: "", displayName: "", scale: "0" };
  const form = useForm(initial);
  const [done, setDone] = useState<string | null>(null);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    const creditType = { creditTypeId: form.values.creditTypeId.trim(), displayName: form.values.displayName, scale: Number(form.values.scale) };
    create.mutate(
      form.submission({ creditType }),
      {
        onSuccess: () => {
          setDone(`Added the credit type ${creditType.creditTypeId}.`);
          form.sent(initial);
        },
      },
    );
  };
  return (
    <Section title="Add a credit type">
      <form className="stack" aria-label="Add a credit type" onSubmit={submit}>
        <label>
          Credit type id (lowercase letters, digits, '_', '.', '-')
          <input {...form.text("creditTypeId")} required maxLength={64} />
        </label>
        <label>
          Name
          <input {...form.text("displayName")} />
        </label>
        <label>
          Scale (decimal places, 0 to {scaleMax}; cannot be changed later)
          <input type="number" min={0} max={scaleMax} step={1} {...form.text("scale")} required />
        </label>
        <button type="submit" className="primary" disabled={create.isPending}>
          Add credit type
        </button>
        <ErrorNote error={create.error} prefix="Credit type not added" />
        <Done text={done} />
      </form>
    </Section>
  );
}
