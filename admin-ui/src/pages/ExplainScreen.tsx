// "Why was this charged?" as a story a support person can read out: the event as
// received, the rate and pricing version it was rated at, the lots it drew from, the
// entries written, and any correction. An admin can correct the event from here.
import { useQuery } from "@connectrpc/connect-query";
import { AdminService, type ExplainUsageEventResponse } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { Role } from "@burndown/sdk/gen/burndown/v1/types_pb.js";
import { UsageOutcome } from "@burndown/sdk/gen/burndown/v1/usage_pb.js";
import { type FormEvent, useState } from "react";
import { newRequestId } from "../api.js";
import { useCaller } from "../caller.js";
import { dateOf, formatTime } from "../format.js";
import { entryKindName, grantSourceName } from "../labels.js";
import { useChange } from "../mutations.js";
import { href } from "../router.js";
import { Amount, ErrorNote, Loading, Section, useScales } from "../ui.js";

export function ExplainScreen({ usageId }: { usageId: string }) {
  const explained = useQuery(AdminService.method.explainUsageEvent, { usageId });
  const me = useCaller();
  if (explained.isPending) return <Loading what="the usage event" />;
  if (explained.error) return <ErrorNote error={explained.error} prefix={`Usage event ${usageId}`} />;
  const story = explained.data;
  return (
    <>
      <nav aria-label="Breadcrumb" className="crumbs">
        <a href={href()}>Customers</a> / <a href={href("customers", story.event?.customerId ?? "")}>{story.event?.customerId}</a> / <span>usage event {usageId}</span>
      </nav>
      <h1>Usage event {story.event?.eventId}</h1>
      <EventStory story={story} />
      {me.role === Role.ADMIN && story.outcome === UsageOutcome.BURNED && !story.correction && <CorrectionForm story={story} />}
    </>
  );
}

const outcomeWords: Record<number, string> = {
  [UsageOutcome.BURNED]: "burned credits from the balance",
  [UsageOutcome.SHADOWED]: "was metered in shadow (observe mode): the balance was not touched",
  [UsageOutcome.NOT_BILLED]: "was recorded, not billed (enforcement off)",
  [UsageOutcome.UNRATED]: "could not be rated yet (its customer or feature was unknown) and is kept for replay",
  [UsageOutcome.DUPLICATE]: "was a duplicate",
  [UsageOutcome.REJECTED]: "was rejected",
};

/** EventStory tells one event's story in order: event, rate, lots, entries, correction. */
export function EventStory({ story }: { story: ExplainUsageEventResponse }) {
  const scaleOf = useScales();
  const scale = scaleOf(story.creditTypeId);
  const event = story.event;
  const rating = story.rating;
  return (
    <ol className="story" aria-label="What happened">
      <li>
        <h2>The event</h2>
        <p>
          <strong>{event?.quantity.toString()}</strong> units of <strong>{event?.featureKey}</strong> for <strong>{event?.customerId}</strong> at{" "}
          {formatTime(dateOf(event?.eventTime))}, received {formatTime(dateOf(story.receiveTime))}
          {event?.offline ? " (reported from offline)" : ""}. It {outcomeWords[story.outcome] ?? "was recorded"}
          {story.reason ? ` (${story.reason})` : ""}.
        </p>
      </li>
      {rating && (
        <li>
          <h2>The rate</h2>
          <p>
            Rated at {rating.override ? "the customer's own rate override" : <>pricing version <strong>{rating.pricingVersionId}</strong></>}:{" "}
            {rating.rate?.credits.toString()} credits per {rating.rate?.perUnits.toString()} units. Carried fraction before {rating.carryBefore.toString()}, after{" "}
            {rating.carryAfter.toString()}: <strong><Amount value={rating.credits} scale={scale} /> {story.creditTypeId}</strong>
            {story.overLimit ? ", past the overdraft limit under the kill switch (flagged)" : ""}.
          </p>
        </li>
      )}
      <li>
        <h2>The lots it drew from</h2>
        {story.lots.length === 0 ? (
          <p className="muted">None.</p>
        ) : (
          <ul>
            {story.lots.map((lot) => (
              <li key={lot.grantId}>
                Lot <code>{lot.grantId.slice(0, 8)}</code>: {grantSourceName(lot.source)}, {lot.reasonCode}, granted <Amount value={lot.amount} scale={scale} />, now{" "}
                <Amount value={lot.remaining} scale={scale} /> left{lot.expireTime ? `, expires ${formatTime(dateOf(lot.expireTime))}` : ""}
              </li>
            ))}
          </ul>
        )}
      </li>
      <li>
        <h2>The ledger entries</h2>
        {story.entries.length === 0 ? (
          <p className="muted">None: the balance was not touched.</p>
        ) : (
          <table aria-label="Entries of this event">
            <thead>
              <tr>
                <th scope="col">Entry</th>
                <th scope="col">Kind</th>
                <th scope="col" className="num">Amount</th>
                <th scope="col">Lot</th>
                <th scope="col">When</th>
              </tr>
            </thead>
            <tbody>
              {story.entries.map((entry) => (
                <tr key={entry.entryId}>
                  <td>{entry.entryId}</td>
                  <td>{entryKindName(entry.kind)}</td>
                  <td className="num"><Amount value={entry.amount} scale={scale} /></td>
                  <td>{entry.grantId ? <code>{entry.grantId.slice(0, 8)}</code> : "—"}</td>
                  <td>{formatTime(dateOf(entry.effectiveTime))}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </li>
      <li>
        <h2>Corrections</h2>
        {story.correction ? (
          <p data-testid="correction">
            Corrected by <code>{story.correction.actor}</code> on {formatTime(dateOf(story.correction.createTime))} ({story.correction.reasonCode}
            {story.correction.note ? `: ${story.correction.note}` : ""}): <Amount value={story.correction.credits} scale={scale} /> refunded.
          </p>
        ) : (
          <p className="muted">Not corrected.</p>
        )}
      </li>
    </ol>
  );
}

function CorrectionForm({ story }: { story: ExplainUsageEventResponse }) {
  const correct = useChange(AdminService.method.correctUsageEvent);
  const [reasonCode, setReasonCode] = useState("wrong_rate");
  const [note, setNote] = useState("");
  const [requestId] = useState(newRequestId);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    correct.mutate({ eventId: story.event?.eventId ?? "", reporterKeyId: story.reporterKeyId, reasonCode, note, requestId });
  };
  return (
    <Section title="Correct this event">
      <form onSubmit={submit} className="stack" aria-label="Correct this event">
        <p className="muted">Refunds what the event burned, with entries linked to it. Audited; it cannot be undone.</p>
        <label>
          Reason code
          <input value={reasonCode} onChange={(event) => setReasonCode(event.target.value)} required pattern="[a-z0-9_\-]+" />
        </label>
        <label>
          Note
          <textarea value={note} onChange={(event) => setNote(event.target.value)} rows={2} maxLength={1000} />
        </label>
        <button type="submit" className="danger" disabled={correct.isPending}>
          Refund this event
        </button>
        <ErrorNote error={correct.error} prefix="Not corrected" />
      </form>
    </Section>
  );
}
