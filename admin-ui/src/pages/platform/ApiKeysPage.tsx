// API keys, for admins: every key with its role and state, a form that makes one and
// shows its token once, and revocation behind a confirmation. The token lives only in
// this page's state (not in the query cache), so leaving the page forgets it for good.
// A support key may not list keys; the page says so in the server's words.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { AdminService, type ApiKey } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { Role } from "@burndown/sdk/gen/burndown/v1/types_pb.js";
import { useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { useCaller } from "../../caller.js";
import { dateOf, formatAmount, formatDate, formatTime } from "../../format.js";
import { roleName, roles } from "../../labels.js";
import { useChange } from "../../mutations.js";
import { Confirm, ErrorNote, Loading, Section } from "../../ui.js";
import { parseWhole, problemOf, ReasonField, useForm } from "./forms.js";

interface NewKey {
  name: string;
  token: string;
}

/** ApiKeysPage lists keys and, for admins, makes and revokes them. */
export function ApiKeysPage({ isAdmin }: { isAdmin: boolean }) {
  const [newKey, setNewKey] = useState<NewKey | null>(null);
  return (
    <>
      {newKey && <NewToken created={newKey} onDone={() => setNewKey(null)} />}
      <KeysTable isAdmin={isAdmin} />
      {isAdmin && <CreateKeyForm onCreated={setNewKey} />}
    </>
  );
}

function NewToken({ created, onDone }: { created: NewKey; onDone: () => void }) {
  const [copied, setCopied] = useState<string | null>(null);
  const copy = () => {
    navigator.clipboard.writeText(created.token).then(
      () => setCopied("Copied."),
      () => setCopied("Could not copy: select the token and copy it by hand."),
    );
  };
  return (
    <section className="token-box" aria-labelledby="new-token-title">
      <h2 id="new-token-title">The new key “{created.name}”</h2>
      <p className="warning">
        <strong>Copy this token now: it will not be shown again.</strong> Burndown keeps only its hash.
      </p>
      <div className="row">
        <input readOnly value={created.token} aria-label="New key's token" data-testid="new-token" onFocus={(event) => event.currentTarget.select()} />
        <button type="button" className="primary" onClick={copy}>Copy</button>
        <button type="button" onClick={onDone}>I have stored it</button>
      </div>
      {copied && <p role="status">{copied}</p>}
    </section>
  );
}

function keyState(key: ApiKey, nowMs: number): string {
  const revoked = dateOf(key.revokeTime);
  if (revoked) return `Revoked ${formatTime(revoked)}`;
  const expires = dateOf(key.expireTime);
  if (expires && expires.getTime() <= nowMs) return "Expired";
  return "Active";
}

function KeysTable({ isAdmin }: { isAdmin: boolean }) {
  const me = useCaller();
  const keys = useQuery(AdminService.method.listApiKeys, {});
  const revoke = useChange(AdminService.method.revokeApiKey);
  const [asking, setAsking] = useState<ApiKey | null>(null);
  const form = useForm({ reason: "" });
  const [nowMs] = useState(Date.now);
  const confirm = () => {
    if (asking === null) return;
    revoke.mutate(form.submission({ keyId: asking.keyId, reason: form.values.reason }), { onSuccess: () => form.sent({ reason: "" }) });
    setAsking(null);
  };
  return (
    <Section title="API keys">
      {keys.isPending ? (
        <Loading what="API keys" />
      ) : keys.error ? (
        <ErrorNote error={keys.error} prefix="Could not list API keys" />
      ) : (
        <table aria-label="API keys">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Key id</th>
              <th scope="col">Role</th>
              <th scope="col" className="num">Grant limit</th>
              <th scope="col">Customer</th>
              <th scope="col">Created</th>
              <th scope="col">Expires</th>
              <th scope="col">State</th>
              {isAdmin && <th scope="col"><span className="sr-only">Actions</span></th>}
            </tr>
          </thead>
          <tbody>
            {keys.data.apiKeys.map((key) => (
              <tr key={key.keyId} data-key-id={key.keyId}>
                <td>{key.name}{key.keyId === me.keyId && <span className="badge">you</span>}</td>
                <td><code>{key.keyId}</code></td>
                <td>{roleName(key.role)}</td>
                <td className="num">{key.role === Role.SUPPORT ? formatAmount(key.grantLimit) : "—"}</td>
                <td>{key.customerId || "—"}</td>
                <td>{formatDate(dateOf(key.createTime))}</td>
                <td>{formatDate(dateOf(key.expireTime))}</td>
                <td data-testid="key-state">{keyState(key, nowMs)}</td>
                {isAdmin && (
                  <td>
                    {!key.revokeTime && (
                      <button type="button" className="danger" onClick={() => setAsking(key)}>
                        Revoke<span className="sr-only"> {key.name} ({key.keyId})</span>
                      </button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ErrorNote error={revoke.error} prefix="Key not revoked" />
      <Confirm open={asking !== null} title={`Revoke the key “${asking?.name ?? ""}”?`} confirmLabel="Revoke" danger onConfirm={confirm} onCancel={() => setAsking(null)}>
        <p>Every call made with it will fail from now on. This cannot be undone: make a new key instead.</p>
        {asking?.keyId === me.keyId && <p className="warning">This is the key you are signed in with: you will be signed out.</p>}
        <ReasonField value={form.values.reason} onChange={(reason) => form.set("reason", reason)} required={false} />
      </Confirm>
    </Section>
  );
}

function CreateKeyForm({ onCreated }: { onCreated: (created: NewKey) => void }) {
  const queryClient = useQueryClient();
  // Not useChange: gcTime 0 drops the response (and its token) from the mutation cache as soon as this form lets go of it.
  const create = useMutation(AdminService.method.createApiKey, { gcTime: 0, onSettled: () => queryClient.invalidateQueries() });
  const initial = { name: "", role: String(Role.SERVICE), grantLimit: "", customerId: "", expiry: "", reason: "" };
  const form = useForm(initial);
  const role = Number(form.values.role) as Role;
  const limitProblem = role === Role.SUPPORT && form.values.grantLimit.trim() !== "" ? problemOf(() => parseWhole(form.values.grantLimit, "The grant limit")) : null;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (limitProblem !== null) return;
    const grantLimit = role === Role.SUPPORT && form.values.grantLimit.trim() !== "" ? parseWhole(form.values.grantLimit, "The grant limit") : 0n;
    const expireTime = form.values.expiry ? timestampFromDate(new Date(`${form.values.expiry}T23:59:59Z`)) : undefined;
    const name = form.values.name.trim();
    create.mutate(
      form.submission({ name, role, grantLimit, customerId: role === Role.CUSTOMER ? form.values.customerId.trim() : "", expireTime, reason: form.values.reason }),
      {
        onSuccess: (response) => {
          // A replayed request answers without the token: there is nothing to show again.
          if (response.token !== "") onCreated({ name, token: response.token });
          form.sent(initial);
          create.reset();
        },
      },
    );
  };
  return (
    <Section title="Make an API key">
      <form className="stack" aria-label="Make an API key" onSubmit={submit}>
        <label>
          Name (who or what uses it)
          <input {...form.text("name")} required maxLength={128} />
        </label>
        <label>
          Role
          <select {...form.text("role")}>
            {roles.map(([value, name]) => (
              <option key={value} value={value}>{name}</option>
            ))}
          </select>
        </label>
        {role === Role.SUPPORT && (
          <label>
            Grant limit (the most one grant may add, in the smallest unit; empty: the server's default)
            <input inputMode="numeric" {...form.text("grantLimit")} aria-invalid={limitProblem !== null} />
          </label>
        )}
        {limitProblem && <p className="error">{limitProblem}</p>}
        {role === Role.CUSTOMER && (
          <label>
            Customer id (the one customer the key may read)
            <input {...form.text("customerId")} required />
          </label>
        )}
        <label>
          Expires (end of day, UTC; empty: never)
          <input type="date" {...form.text("expiry")} />
        </label>
        <ReasonField value={form.values.reason} onChange={(reason) => form.set("reason", reason)} required={false} />
        <button type="submit" className="primary" disabled={create.isPending}>
          Make key
        </button>
        <ErrorNote error={create.error} prefix="No key made" />
      </form>
    </Section>
  );
}
