// The kill switch: one switch for the whole deployment (not per feature) that stops every
// refusal for lack of credits while metering goes on. ListFeatures says whether it is on;
// the newest set_kill_switch record of the audit trail (first page only) says since when
// and why. Turning it either way goes through a confirmation.
import { useQuery } from "@connectrpc/connect-query";
import { AdminService, type AuditRecord } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { type FormEvent, useState } from "react";
import { dateOf, formatTime } from "../../format.js";
import { useChange } from "../../mutations.js";
import { Confirm, ErrorNote, Loading, Section } from "../../ui.js";
import { AdminOnly, ReasonField, useForm } from "./forms.js";

/** KillSwitchState is the switch, and the audit record of its newest change when one is at hand. */
export type KillSwitchState = { kind: "on" | "off"; record: AuditRecord | null };

/** useKillSwitch reads the switch's state; every change refetches it (see mutations.ts). */
export function useKillSwitch(): { isPending: boolean; error: unknown; data: KillSwitchState | undefined } {
  const features = useQuery(AdminService.method.listFeatures, {});
  // Support keys may list features but not always the audit trail: the reason is extra.
  const audit = useQuery(AdminService.method.listAuditRecords, { pageSize: 100 }, { retry: false });
  const record = audit.data?.auditRecords.find((entry) => entry.action === "set_kill_switch") ?? null;
  const data = features.data === undefined ? undefined : { kind: features.data.killSwitch ? ("on" as const) : ("off" as const), record };
  return { isPending: features.isPending, error: features.error, data };
}

/** KillSwitchBanner shouts while the switch is on, on every platform page. */
export function KillSwitchBanner() {
  const killSwitch = useKillSwitch();
  if (killSwitch.data?.kind !== "on") return null;
  const record = killSwitch.data.record;
  return (
    <div className="banner" role="status" data-testid="kill-switch-banner">
      The kill switch is ON: no customer is refused for lack of credits, on any feature. Usage is still metered, and
      what goes past an overdraft limit becomes debt.
      {record && ` Turned on ${formatTime(dateOf(record.createTime))} by ${record.actor}: “${record.reason}”.`}
    </div>
  );
}

function StateLine({ state }: { state: KillSwitchState }) {
  const record = state.record;
  const since = record ? ` since ${formatTime(dateOf(record.createTime))} (${record.actor}: “${record.reason}”)` : "";
  if (state.kind === "on") return <p data-testid="kill-switch-state"><strong>On</strong>{since}.</p>;
  return <p data-testid="kill-switch-state"><strong>Off</strong>{record ? since : ""}: each feature's enforcement mode applies.</p>;
}

/** KillSwitchSection shows the switch and, for admins, turns it on or off behind a confirmation. */
export function KillSwitchSection({ isAdmin }: { isAdmin: boolean }) {
  const killSwitch = useKillSwitch();
  const change = useChange(AdminService.method.setKillSwitch);
  const form = useForm({ reason: "" });
  const [asking, setAsking] = useState<boolean | null>(null);
  const ask = (enabled: boolean) => (event?: FormEvent) => {
    event?.preventDefault();
    setAsking(enabled);
  };
  const confirm = () => {
    if (asking === null) return;
    change.mutate(form.submission({ enabled: asking, reason: form.values.reason }), { onSuccess: () => form.sent({ reason: "" }) });
    setAsking(null);
  };
  const state = killSwitch.data;
  return (
    <Section title="Kill switch (every feature, every customer)">
      {killSwitch.isPending ? <Loading what="the kill switch" /> : killSwitch.error ? <ErrorNote error={killSwitch.error} prefix="Could not read the kill switch" /> : <StateLine state={state!} />}
      {!isAdmin ? (
        <AdminOnly what="turn the kill switch on or off" />
      ) : (
        state && (
          <form className="row" aria-label="Kill switch" onSubmit={ask(state.kind !== "on")}>
            <ReasonField value={form.values.reason} onChange={(reason) => form.set("reason", reason)} />
            {state.kind !== "on" && (
              <button type="submit" className="danger" disabled={change.isPending || form.values.reason.trim() === ""}>
                Turn the kill switch on…
              </button>
            )}
            {state.kind === "on" && (
              <button type="submit" disabled={change.isPending || form.values.reason.trim() === ""}>
                Turn the kill switch off…
              </button>
            )}
          </form>
        )
      )}
      <ErrorNote error={change.error} prefix="Kill switch not changed" />
      <Confirm
        open={asking !== null}
        title={asking ? "Turn the kill switch on?" : "Turn the kill switch off?"}
        confirmLabel={asking ? "Turn it on" : "Turn it off"}
        danger={asking === true}
        onConfirm={confirm}
        onCancel={() => setAsking(null)}
      >
        {asking ? (
          <p>No customer will be refused for lack of credits, on any feature, until it is turned off. Usage goes on being metered; what goes past an overdraft limit becomes debt.</p>
        ) : (
          <p>Customers out of credits will be refused again, as each feature's enforcement mode says.</p>
        )}
        <p>Reason: “{form.values.reason}”</p>
      </Confirm>
    </Section>
  );
}
