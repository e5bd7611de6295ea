// Reason codes: what support grants and grant requests are filed under, for reports.
// Admins add codes, relabel them and disable or enable them; a code itself never changes.
import { useQuery } from "@connectrpc/connect-query";
import { type ReasonCode, SupportService } from "@burndown/sdk/gen/burndown/v1/support_pb.js";
import { type FormEvent, useState } from "react";
import { useChange } from "../../mutations.js";
import { ErrorNote, Loading, Section } from "../../ui.js";
import { AdminOnly, Done, useForm } from "./forms.js";

/** ReasonCodesPage lists the codes and, for admins, adds and changes them. */
export function ReasonCodesPage({ isAdmin }: { isAdmin: boolean }) {
  const [editing, setEditing] = useState<ReasonCode | null>(null);
  return (
    <>
      <CodesTable isAdmin={isAdmin} onEdit={setEditing} />
      {!isAdmin ? <AdminOnly what="add or change reason codes" /> : editing ? <EditCodeForm key={editing.code} code={editing} onDone={() => setEditing(null)} /> : <CreateCodeForm />}
    </>
  );
}

function CodesTable({ isAdmin, onEdit }: { isAdmin: boolean; onEdit: (code: ReasonCode) => void }) {
  const codes = useQuery(SupportService.method.listReasonCodes, { includeDisabled: true });
  return (
    <Section title="Reason codes">
      {codes.isPending ? (
        <Loading what="reason codes" />
      ) : codes.error ? (
        <ErrorNote error={codes.error} prefix="Could not list reason codes" />
      ) : (
        <table aria-label="Reason codes">
          <thead>
            <tr>
              <th scope="col">Code</th>
              <th scope="col">Label</th>
              <th scope="col">Description</th>
              <th scope="col">State</th>
              {isAdmin && <th scope="col"><span className="sr-only">Actions</span></th>}
            </tr>
          </thead>
          <tbody>
            {codes.data.reasonCodes.map((code) => (
              <tr key={code.code} data-code={code.code}>
                <td><code>{code.code}</code></td>
                <td>{code.label}</td>
                <td>{code.description}</td>
                <td data-testid="reason-code-state">{code.disabled ? "Disabled" : "Enabled"}</td>
                {isAdmin && (
                  <td>
                    <button type="button" onClick={() => onEdit(code)}>
                      Edit<span className="sr-only"> {code.code}</span>
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

function CreateCodeForm() {
  const create = useChange(SupportService.method.createReasonCode);
  const initial = { code: "", label: "", description: "" };
  const form = useForm(initial);
  const [done, setDone] = useState<string | null>(null);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    const request = { code: form.values.code.trim(), label: form.values.label.trim(), description: form.values.description };
    create.mutate(form.submission(request), {
      onSuccess: (response) => {
        setDone(`Added ${response.reasonCode?.code}.`);
        form.sent(initial);
      },
    });
  };
  return (
    <Section title="Add a reason code">
      <form className="stack" aria-label="Add a reason code" onSubmit={submit}>
        <label>
          Code (lowercase letters, digits, '_', '.' and '-')
          <input {...form.text("code")} required maxLength={64} pattern="[a-z0-9][a-z0-9_.\-]*" />
        </label>
        <label>
          Label
          <input {...form.text("label")} required maxLength={200} />
        </label>
        <label>
          When to use it
          <input {...form.text("description")} maxLength={1000} />
        </label>
        <button type="submit" className="primary" disabled={create.isPending}>
          Add code
        </button>
        <ErrorNote error={create.error} prefix="Code not added" />
        <Done text={done} />
      </form>
    </Section>
  );
}

function EditCodeForm({ code, onDone }: { code: ReasonCode; onDone: () => void }) {
  const update = useChange(SupportService.method.updateReasonCode);
  const form = useForm({ label: code.label, description: code.description, disabled: code.disabled });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const request = { code: code.code, label: form.values.label.trim(), description: form.values.description, disabled: form.values.disabled };
    update.mutate(form.submission(request), { onSuccess: onDone });
  };
  return (
    <Section title={`Change ${code.code}`}>
      <form className="stack" aria-label={`Change ${code.code}`} onSubmit={submit}>
        <label>
          Label
          <input {...form.text("label")} required maxLength={200} />
        </label>
        <label>
          When to use it
          <input {...form.text("description")} maxLength={1000} />
        </label>
        <label>
          <input type="checkbox" checked={form.values.disabled} onChange={(event) => form.set("disabled", event.target.checked)} /> Disabled (no new grants may
          use it)
        </label>
        <div className="actions">
          <button type="button" onClick={onDone}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={update.isPending}>
            Save
          </button>
        </div>
        <ErrorNote error={update.error} prefix="Code not changed" />
      </form>
    </Section>
  );
}
