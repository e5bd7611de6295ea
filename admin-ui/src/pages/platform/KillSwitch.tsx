// The kill switch: one switch for the whole deployment (not per feature) that stops every
// refusal for lack of credits while metering goes on. The API has no read of the switch,
// so its state is the newest set_kill_switch record of the audit trail, which every
// change writes in the same transaction; a switch never set is off, as the server
// counts it. Turning it either way goes through a confirmation.
import { callUnaryMethod, useTransport } from "@connectrpc/connect-query";
import { AdminService, type AuditRecord } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { useQuery } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { dateOf, formatTime } from "../../format.js";
import { useChange } from "../../mutations.js";
import { Confirm, ErrorNote, Loading, Section } from "../../ui.js";
import { AdminOnly, ReasonField, useForm } from "./forms.js";
import { killSwitchScanPageSize, killSwitchScanPagesMax } from "./limits.js";

/** KillSwitchState is what the audit trail says of the switch. */
export type KillSwitchState =
  | { kind: "on" | "off"; record: AuditRecord | null }
  /** unknown: no change within the records read, or one whose details do not read. */
  | { kind: "unknown"; record: AuditRecord | null };

/** killSwitchOf reads the switch's state from its newest audit record (or none found). */
export function killSwitchOf(record: AuditRecord | null, scannedAll: boolean): KillSwitchState {
  if (record === null) return { kind: scannedAll ? "off" : "unknown", record: null };
  const enabled = newStateOf(record.detailsJson);
  return enabled === null ? { kind: "unknown", record } : { kind: enabled ? "on" : "off", record };
}

/** newStateOf reads the "new" state of a set_kill_switch record's details ({"old":…,"new":…}); null if it does not read. */
function newStateOf(detailsJson: string): boolean | null {
  let details: unknown;
  try {
    details = JSON.parse(detailsJson);
  } catch {
    return null;
  }
  const enabled = (details as { new?: unknown } | null)?.new;
  return typeof enabled === "boolean" ? enabled : null;
}

/** useKillSwitch reads the switch's state; every change refetches it (see mutations.ts). */
export function useKillSwitch() {
  const transport = useTransport();
  return useQuery({
    queryKey: ["platform", "kill-switch"],
    queryFn: async ({ signal }): Promise<KillSwitchState> => {
      let pageToken = "";
      for (let page = 0; page < killSwitchScanPagesMax; page++) {
        const response = await callUnaryMethod(transport, AdminService.method.listAuditRecords, { pageSize: killSwitchScanPageSize, pageToken }, { signal });
        const found = response.auditRecords.find((record) => record.action === "set_kill_switch");
        if (found !== undefined) return killSwitchOf(found, false);
        if (response.nextPageToken === "") return killSwitchOf(null, true);
        pageToken = response.nextPageToken;
      }
      return killSwitchOf(null, false);
    },
  });
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
  if (state.kind === "off") return <p data-testid="kill-switch-state"><strong>Off</strong>{record ? since : " (never turned on)"}: each feature's enforcement mode applies.</p>;
  return <p className="warning" data-testid="kill-switch-state">Unknown: the audit trail read holds no readable change of the switch. Setting it either way makes it known.</p>;
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
            {state.kind !== "off" && (
              <button type={state.kind === "on" ? "submit" : "button"} onClick={state.kind === "on" ? undefined : ask(false)} disabled={change.isPending || form.values.reason.trim() === ""}>
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
