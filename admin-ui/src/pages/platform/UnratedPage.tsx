// Usage the ledger kept without charging: events whose customer or feature did not exist
// yet (replayed once they do), and events refused because their event id was taken by
// another event from the same key (a producer bug whose usage would otherwise be lost).
import { useQuery } from "@connectrpc/connect-query";
import { AdminService, type ReplayUnratedEventsResponse } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { UsageOutcome } from "@burndown/sdk/gen/burndown/v1/usage_pb.js";
import { type FormEvent, useState } from "react";
import { reasonText } from "../../errors.js";
import { dateOf, formatAmount, formatTime } from "../../format.js";
import { usageOutcomeName } from "../../labels.js";
import { useChange } from "../../mutations.js";
import { href } from "../../router.js";
import { ErrorNote, Loading, Section } from "../../ui.js";
import { AdminOnly, Pager, parseWhole, problemOf, ReasonField, useForm, usePages } from "./forms.js";
import { listPageSize, replayLimitMax } from "./limits.js";

/** UnratedPage lists unrated events and usage conflicts; admins replay the events. */
export function UnratedPage({ isAdmin }: { isAdmin: boolean }) {
  return (
    <>
      <UnratedEvents />
      {isAdmin ? <ReplayForm /> : <AdminOnly what="replay unrated events" />}
      <UsageConflicts />
    </>
  );
}

function UnratedEvents() {
  const pages = usePages();
  const events = useQuery(AdminService.method.listUnratedEvents, { pageSize: listPageSize, pageToken: pages.token });
  return (
    <Section title="Unrated events">
      {events.isPending ? (
        <Loading what="unrated events" />
      ) : events.error ? (
        <ErrorNote error={events.error} prefix="Could not list unrated events" />
      ) : events.data.events.length === 0 ? (
        <p className="muted">None: every reported event was rated.</p>
      ) : (
        <table aria-label="Unrated events">
          <thead>
            <tr>
              <th scope="col">Received</th>
              <th scope="col">Event id</th>
              <th scope="col">Customer</th>
              <th scope="col">Feature</th>
              <th scope="col" className="num">Quantity</th>
              <th scope="col">Why unrated</th>
              <th scope="col">Reported by</th>
            </tr>
          </thead>
          <tbody>
            {events.data.events.map((unrated) => (
              <tr key={unrated.usageId} data-usage-id={unrated.usageId}>
                <td>{formatTime(dateOf(unrated.receiveTime))}</td>
                <td><code>{unrated.event?.eventId}</code></td>
                <td>{unrated.event?.customerId}</td>
                <td>{unrated.event?.featureKey}</td>
                <td className="num">{formatAmount(unrated.event?.quantity ?? 0n)}</td>
                <td>
                  {reasonText(unrated.reason)} <code className="reason">{unrated.reason}</code>
                </td>
                <td><code>{unrated.reporterKeyId}</code></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager pages={pages} nextToken={events.data?.nextPageToken} backLabel="Older" nextLabel="Newer" />
    </Section>
  );
}

/** replaySummary counts what became of the events tried: "Replayed 3 events: 2 burned, 1 still unrated." */
export function replaySummary(response: ReplayUnratedEventsResponse): string {
  const counts = new Map<UsageOutcome, number>();
  for (const result of response.results) counts.set(result.outcome, (counts.get(result.outcome) ?? 0) + 1);
  const parts = [...counts.entries()].map(([outcome, count]) => `${count} ${usageOutcomeName(outcome)}`);
  const tried = response.results.length;
  if (tried === 0) return "Nothing to replay: no unrated event left.";
  return `Replayed ${tried} event${tried === 1 ? "" : "s"}: ${parts.join(", ")}.`;
}

function ReplayForm() {
  // ReplayUnratedEvents takes no request id: a second replay only finds what is still unrated.
  const replay = useChange(AdminService.method.replayUnratedEvents);
  const form = useForm({ limit: "", reason: "" });
  const [result, setResult] = useState<string | null>(null);
  const limitProblem = problemOf(() => {
    if (form.values.limit.trim() !== "" && parseWhole(form.values.limit, "The number of events") > BigInt(replayLimitMax)) throw new Error(`At most ${replayLimitMax.toLocaleString("en-US")} events at a time.`);
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setResult(null);
    if (limitProblem !== null) return;
    const limit = form.values.limit.trim() === "" ? 0 : Number(parseWhole(form.values.limit, "The number of events"));
    replay.mutate({ limit, reason: form.values.reason }, { onSuccess: (response) => setResult(replaySummary(response)) });
  };
  return (
    <Section title="Replay unrated events">
      <form className="row" aria-label="Replay unrated events" onSubmit={submit}>
        <label>
          At most this many, oldest first (empty: {replayLimitMax.toLocaleString("en-US")})
          <input inputMode="numeric" {...form.text("limit")} aria-invalid={limitProblem !== null} />
        </label>
        <ReasonField value={form.values.reason} onChange={(reason) => form.set("reason", reason)} required={false} />
        <button type="submit" className="primary" disabled={replay.isPending}>
          {replay.isPending ? "Replaying…" : "Replay"}
        </button>
      </form>
      {limitProblem && <p className="error">{limitProblem}</p>}
      <p className="muted">Events whose customer and feature now exist are rated and charged at the rates in force at their time; the rest stay here.</p>
      <ErrorNote error={replay.error} prefix="Nothing replayed" />
      {result && <p className="success" role="status" data-testid="replay-result">{result}</p>}
    </Section>
  );
}

function UsageConflicts() {
  const pages = usePages();
  const conflicts = useQuery(AdminService.method.listUsageConflicts, { pageSize: listPageSize, pageToken: pages.token });
  return (
    <Section title="Usage conflicts (event id reused with another body)">
      {conflicts.isPending ? (
        <Loading what="usage conflicts" />
      ) : conflicts.error ? (
        <ErrorNote error={conflicts.error} prefix="Could not list usage conflicts" />
      ) : conflicts.data.conflicts.length === 0 ? (
        <p className="muted">None.</p>
      ) : (
        <>
          <p>{formatAmount(conflicts.data.totalCount)} in all, newest first.</p>
          <table aria-label="Usage conflicts">
            <thead>
              <tr>
                <th scope="col">Received</th>
                <th scope="col">Event id</th>
                <th scope="col">Refused event</th>
                <th scope="col">Event that took the id</th>
                <th scope="col">Reported by</th>
              </tr>
            </thead>
            <tbody>
              {conflicts.data.conflicts.map((conflict) => (
                <tr key={conflict.conflictId}>
                  <td>{formatTime(dateOf(conflict.receiveTime))}</td>
                  <td><code>{conflict.event?.eventId}</code></td>
                  <td>
                    {conflict.event?.customerId} · {conflict.event?.featureKey} × {formatAmount(conflict.event?.quantity ?? 0n)}
                  </td>
                  <td>
                    {conflict.firstEvent ? `${conflict.firstEvent.customerId} · ${conflict.firstEvent.featureKey} × ${formatAmount(conflict.firstEvent.quantity)}` : "—"}
                    {conflict.firstUsageId && (
                      <>
                        {" "}
                        <a href={href("events", conflict.firstUsageId)}>usage event {conflict.firstUsageId}</a>
                      </>
                    )}
                  </td>
                  <td><code>{conflict.reporterKeyId}</code></td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <Pager pages={pages} nextToken={conflicts.data?.nextPageToken} backLabel="Newer" nextLabel="Older" />
    </Section>
  );
}
