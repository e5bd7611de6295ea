// Grant limits: the most support keys may grant, per call and per rolling period, for
// their role or one key, for one credit type or every one; and the sources support may
// grant with. Admins set and remove them; support keys read them.
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { useQuery } from "@connectrpc/connect-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { type GrantLimit, SupportService } from "@burndown/sdk/gen/burndown/v1/support_pb.js";
import { GrantSource, Role } from "@burndown/sdk/gen/burndown/v1/types_pb.js";
import { type FormEvent, useState } from "react";
import { formatAmount } from "../../format.js";
import { grantSourceName } from "../../labels.js";
import { useChange } from "../../mutations.js";
import { ErrorNote, Loading, Section, useScales } from "../../ui.js";
import { AdminOnly, Done, parseWhole, useForm } from "./forms.js";

const hourMs = 3_600_000;

/** periodName says a period in hours or days. */
function periodName(seconds: bigint): string {
  const hours = seconds / 3_600n;
  return hours % 24n === 0n ? `${hours / 24n} day${hours === 24n ? "" : "s"}` : `${hours} hour${hours === 1n ? "" : "s"}`;
}

/** GrantLimitsPage lists limits and sources and, for admins, changes them. */
export function GrantLimitsPage({ isAdmin }: { isAdmin: boolean }) {
  return (
    <>
      <LimitsTable isAdmin={isAdmin} />
      {isAdmin ? <SetLimitForm /> : <AdminOnly what="set or remove grant limits" />}
      <SourcesSection isAdmin={isAdmin} />
    </>
  );
}

function LimitsTable({ isAdmin }: { isAdmin: boolean }) {
  const limits = useQuery(SupportService.method.listGrantLimits, {});
  const remove = useChange(SupportService.method.deleteGrantLimit);
  const form = useForm({});
  const scaleOf = useScales();
  const removeLimit = (limit: GrantLimit) => remove.mutate(form.submission({ role: limit.role, keyId: limit.keyId, creditTypeId: limit.creditTypeId }), { onSuccess: () => form.sent() });
  return (
    <Section title="Grant limits">
      <p className="muted">
        A support key's grant is checked against its own limit for the credit type, else its own for every type, else the role's for the type, else the role's for every
        type. The key's own per-grant limit (API keys) applies on top.
      </p>
      {limits.isPending ? (
        <Loading what="grant limits" />
      ) : limits.error ? (
        <ErrorNote error={limits.error} prefix="Could not list grant limits" />
      ) : (
        <table aria-label="Grant limits">
          <thead>
            <tr>
              <th scope="col">Applies to</th>
              <th scope="col">Credit type</th>
              <th scope="col" className="num">Per grant</th>
              <th scope="col" className="num">Per period</th>
              <th scope="col">Period</th>
              {isAdmin && <th scope="col"><span className="sr-only">Actions</span></th>}
            </tr>
          </thead>
          <tbody>
            {limits.data.limits.map((limit) => {
              const subject = limit.keyId ? `key ${limit.keyId}` : "support role";
              return (
                <tr key={`${limit.keyId}:${limit.role}:${limit.creditTypeId}`}>
                  <td>{subject}</td>
                  <td>{limit.creditTypeId || "every type"}</td>
                  <td className="num">{formatAmount(limit.perCallMax, scaleOf(limit.creditTypeId))}</td>
                  <td className="num">{formatAmount(limit.periodMax, scaleOf(limit.creditTypeId))}</td>
                  <td>{periodName(limit.period?.seconds ?? 0n)}</td>
                  {isAdmin && (
                    <td>
                      <button type="button" className="danger" onClick={() => removeLimit(limit)}>
                        Remove<span className="sr-only"> the limit of {subject} for {limit.creditTypeId || "every type"}</span>
                      </button>
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <ErrorNote error={remove.error} prefix="Limit not removed" />
    </Section>
  );
}

const everyType = "";

function SetLimitForm() {
  const set = useChange(SupportService.method.setGrantLimit);
  const types = useQuery(AdminService.method.listCreditTypes, {});
  const initial = { keyId: "", creditTypeId: everyType, perCallMax: "", periodMax: "", periodHours: "24" };
  const form = useForm(initial);
  const [done, setDone] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const typeList = types.data?.creditTypes ?? [];
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    setProblem(null);
    try {
      const keyId = form.values.keyId.trim();
      const limit = {
        role: keyId === "" ? Role.SUPPORT : Role.UNSPECIFIED,
        keyId,
        creditTypeId: form.values.creditTypeId,
        perCallMax: parseWhole(form.values.perCallMax, "Per grant"),
        periodMax: parseWhole(form.values.periodMax, "Per period"),
        period: durationFromMs(Number(parseWhole(form.values.periodHours, "Hours")) * hourMs),
      };
      set.mutate(form.submission({ limit }), {
        onSuccess: () => {
          setDone(`Limit set for ${keyId === "" ? "the support role" : `key ${keyId}`}.`);
          form.sent(initial);
        },
      });
    } catch (error) {
      setProblem(error instanceof Error ? error.message : String(error));
    }
  };
  return (
    <Section title="Set a grant limit">
      <form className="stack" aria-label="Set a grant limit" onSubmit={submit}>
        <label>
          Key id (empty: every support key)
          <input {...form.text("keyId")} maxLength={128} />
        </label>
        <label>
          Applies to
          <select {...form.text("creditTypeId")}>
            <option value={everyType}>Every credit type</option>
            {typeList.map((type) => (
              <option key={type.creditTypeId} value={type.creditTypeId}>
                {type.displayName || type.creditTypeId}
              </option>
            ))}
          </select>
        </label>
        <label>
          Most per grant (in the credit type's smallest unit)
          <input inputMode="numeric" {...form.text("perCallMax")} required />
        </label>
        <label>
          Most per period, all grants of a key together
          <input inputMode="numeric" {...form.text("periodMax")} required />
        </label>
        <label>
          Period in hours (1 to 8,760; 720 is 30 days)
          <input inputMode="numeric" {...form.text("periodHours")} required />
        </label>
        <button type="submit" className="primary" disabled={set.isPending}>
          Set limit
        </button>
        {problem && <p className="error" role="alert">{problem}</p>}
        <ErrorNote error={set.error} prefix="Limit not set" />
        <Done text={done} />
      </form>
    </Section>
  );
}

/** Sources support may be allowed; Purchase and Recharge never are. */
const allowable: GrantSource[] = [GrantSource.SUPPORT, GrantSource.PROMOTION, GrantSource.PLAN, GrantSource.ADJUSTMENT];

function SourcesSection({ isAdmin }: { isAdmin: boolean }) {
  const sources = useQuery(SupportService.method.listGrantSources, {});
  const set = useChange(SupportService.method.setGrantSources);
  const form = useForm({});
  const [chosen, setChosen] = useState<GrantSource[] | null>(null);
  const current = sources.data?.grantSources.find((row) => row.role === Role.SUPPORT)?.sources ?? [];
  const selected = chosen ?? current;
  const toggle = (source: GrantSource, on: boolean) => setChosen(on ? [...selected, source] : selected.filter((value) => value !== source));
  const save = (event: FormEvent) => {
    event.preventDefault();
    set.mutate(form.submission({ grantSources: { role: Role.SUPPORT, sources: selected } }), {
      onSuccess: () => {
        setChosen(null);
        form.sent();
      },
    });
  };
  return (
    <Section title="Sources support may grant">
      {sources.isPending ? (
        <Loading what="sources" />
      ) : !isAdmin ? (
        <p data-testid="support-sources">{current.map(grantSourceName).join(", ")}</p>
      ) : (
        <form className="stack" aria-label="Sources support may grant" onSubmit={save}>
          <fieldset>
            <legend>Support keys may grant credits of these sources (never Purchase or Recharge)</legend>
            {allowable.map((source) => (
              <label key={source}>
                <input type="checkbox" checked={selected.includes(source)} onChange={(event) => toggle(source, event.target.checked)} /> {grantSourceName(source)}
              </label>
            ))}
          </fieldset>
          <button type="submit" className="primary" disabled={set.isPending || selected.length === 0}>
            Save sources
          </button>
          <ErrorNote error={set.error} prefix="Sources not saved" />
        </form>
      )}
    </Section>
  );
}
