// The disputes queue, as support works it: open disputes oldest first (filter by status,
// owner, overdue), each with its customer, lines, service-level due times and notes;
// assign one to yourself, add a note, and resolve it with a refund of one of its lines or
// a rejection with a reason.
import { useQuery } from "@connectrpc/connect-query";
import { CorrectionService, type Dispute, DisputeStatus } from "@burndown/sdk/gen/burndown/v1/corrections_pb.js";
import { type FormEvent, useState } from "react";
import { newRequestId } from "../api.js";
import { useCaller } from "../caller.js";
import { dateOf, formatAmount, formatTime, parseAmount } from "../format.js";
import { useChange } from "../mutations.js";
import { href } from "../router.js";
import { ErrorNote, Loading, Section, useScales } from "../ui.js";

/** disputeStatusName is a status in words. */
export function disputeStatusName(status: DisputeStatus): string {
  return { [DisputeStatus.OPEN]: "open", [DisputeStatus.INVESTIGATING]: "investigating", [DisputeStatus.RESOLVED_REFUNDED]: "resolved, refunded", [DisputeStatus.REJECTED]: "rejected" }[status as number] ?? "unknown";
}

export function DisputesScreen({ disputeId }: { disputeId?: string }) {
  const me = useCaller();
  const [status, setStatus] = useState<DisputeStatus>(DisputeStatus.UNSPECIFIED);
  const [mine, setMine] = useState(false);
  const [overdueOnly, setOverdueOnly] = useState(false);
  const disputes = useQuery(CorrectionService.method.listDisputes, { status, owner: mine ? me.keyId : "", overdueOnly, pageSize: 100 });
  return (
    <>
      <h1>Disputes</h1>
      <Section title="Queue">
        <form className="filters row" aria-label="Filter the queue" onSubmit={(event) => event.preventDefault()}>
          <label>
            Status
            <select value={status} onChange={(event) => setStatus(Number(event.target.value) as DisputeStatus)}>
              <option value={DisputeStatus.UNSPECIFIED}>Any</option>
              {[DisputeStatus.OPEN, DisputeStatus.INVESTIGATING, DisputeStatus.RESOLVED_REFUNDED, DisputeStatus.REJECTED].map((value) => (
                <option key={value} value={value}>{disputeStatusName(value)}</option>
              ))}
            </select>
          </label>
          <label>
            <input type="checkbox" checked={mine} onChange={(event) => setMine(event.target.checked)} /> Mine only
          </label>
          <label>
            <input type="checkbox" checked={overdueOnly} onChange={(event) => setOverdueOnly(event.target.checked)} /> Overdue only
          </label>
        </form>
        {disputes.isPending ? (
          <Loading what="disputes" />
        ) : disputes.error ? (
          <ErrorNote error={disputes.error} />
        ) : disputes.data.disputes.length === 0 ? (
          <p className="muted">No disputes match.</p>
        ) : (
          <table aria-label="Disputes">
            <thead>
              <tr>
                <th scope="col">Opened</th>
                <th scope="col">Customer</th>
                <th scope="col">Status</th>
                <th scope="col">Owner</th>
                <th scope="col">Respond by</th>
                <th scope="col">Resolve by</th>
                <th scope="col">Claim</th>
              </tr>
            </thead>
            <tbody>
              {disputes.data.disputes.map((dispute) => (
                <tr key={dispute.disputeId} aria-current={dispute.disputeId === disputeId ? "true" : undefined}>
                  <td><a href={href("disputes", dispute.disputeId)}>{formatTime(dateOf(dispute.openTime))}</a></td>
                  <td><a href={href("customers", dispute.customerId, "ledger")}>{dispute.customerId}</a></td>
                  <td>
                    {disputeStatusName(dispute.status)}
                    {dispute.overdue && <span className="badge warn">overdue</span>}
                  </td>
                  <td>{dispute.owner === me.keyId ? "me" : dispute.owner || "—"}</td>
                  <td>{formatTime(dateOf(dispute.firstResponseDueTime))}</td>
                  <td>{formatTime(dateOf(dispute.resolutionDueTime))}</td>
                  <td>{dispute.description}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      {disputeId && <DisputeDetail key={disputeId} disputeId={disputeId} />}
    </>
  );
}

function DisputeDetail({ disputeId }: { disputeId: string }) {
  const me = useCaller();
  const dispute = useQuery(CorrectionService.method.getDispute, { disputeId });
  const assign = useChange(CorrectionService.method.assignDispute);
  const scaleOf = useScales();
  if (dispute.isPending) return <Loading what="the dispute" />;
  if (dispute.error) return <ErrorNote error={dispute.error} />;
  const d = dispute.data.dispute!;
  const closed = d.status === DisputeStatus.RESOLVED_REFUNDED || d.status === DisputeStatus.REJECTED;
  return (
    <Section title={`Dispute of ${d.customerId}`}>
      <dl className="figures">
        <dt>Status</dt>
        <dd data-testid="dispute-status">{disputeStatusName(d.status)}</dd>
        <dt>Owner</dt>
        <dd>{d.owner === me.keyId ? "me" : d.owner || "nobody yet"}</dd>
        <dt>Lines</dt>
        <dd>{d.entryIds.join(", ")}</dd>
        <dt>First response</dt>
        <dd>{d.firstResponseTime ? formatTime(dateOf(d.firstResponseTime)) : `due ${formatTime(dateOf(d.firstResponseDueTime))}`}</dd>
      </dl>
      <p>{d.description}</p>
      {d.rejectReason && <p>Rejected: {d.rejectReason}</p>}
      {d.refunds.map((refund) => (
        <p key={refund.refundId}>
          Refunded {formatAmount(refund.amount, scaleOf(refund.creditTypeId))} of {formatAmount(refund.charged, scaleOf(refund.creditTypeId))} {refund.creditTypeId}.
        </p>
      ))}
      <h3>Notes</h3>
      {d.notes.length === 0 ? <p className="muted">No notes yet.</p> : (
        <ul aria-label="Notes">
          {d.notes.map((note, index) => (
            <li key={index}>{formatTime(dateOf(note.createTime))} · <code>{note.author}</code>: {note.text}</li>
          ))}
        </ul>
      )}
      {!closed && (
        <>
          {d.owner !== me.keyId && (
            <button type="button" disabled={assign.isPending} onClick={() => assign.mutate({ disputeId, owner: "", requestId: newRequestId() })}>
              Assign to me
            </button>
          )}
          <ErrorNote error={assign.error} prefix="Not assigned" />
          <NoteForm disputeId={disputeId} />
          <ResolveForm dispute={d} />
        </>
      )}
    </Section>
  );
}

function NoteForm({ disputeId }: { disputeId: string }) {
  const note = useChange(CorrectionService.method.addDisputeNote);
  const [text, setText] = useState("");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (text.trim() !== "") note.mutate({ disputeId, text, requestId: newRequestId() }, { onSuccess: () => setText("") });
  };
  return (
    <form onSubmit={submit} aria-label="Add a note" className="stack">
      <label>
        Note
        <textarea value={text} onChange={(event) => setText(event.target.value)} maxLength={1000} rows={2} required />
      </label>
      <button type="submit" disabled={note.isPending}>Add note</button>
      <ErrorNote error={note.error} prefix="Not added" />
    </form>
  );
}

function ResolveForm({ dispute }: { dispute: Dispute }) {
  const resolve = useChange(CorrectionService.method.resolveDispute);
  const [how, setHow] = useState<"refund" | "reject">("refund");
  const [entryId, setEntryId] = useState(dispute.entryIds[0] ?? "");
  const [amountText, setAmountText] = useState("");
  const [reason, setReason] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setProblem(null);
    let amount = 0n;
    try {
      amount = amountText.trim() === "" ? 0n : parseAmount(amountText);
    } catch (error) {
      return setProblem((error as Error).message);
    }
    const resolution = how === "refund"
      ? { case: "refund" as const, value: { entryId, amount, reasonCode: reason.trim() } }
      : { case: "reject" as const, value: { reason: reason.trim() } };
    resolve.mutate({ disputeId: dispute.disputeId, resolution, requestId: newRequestId() });
  };
  return (
    <form onSubmit={submit} aria-label="Resolve the dispute" className="stack">
      <fieldset>
        <legend>Resolve</legend>
        <label>
          <input type="radio" name="how" checked={how === "refund"} onChange={() => setHow("refund")} /> Refund
        </label>
        <label>
          <input type="radio" name="how" checked={how === "reject"} onChange={() => setHow("reject")} /> Reject
        </label>
      </fieldset>
      {how === "refund" && (
        <>
          <label>
            Line
            <select value={entryId} onChange={(event) => setEntryId(event.target.value)}>
              {dispute.entryIds.map((id) => <option key={id} value={id}>{id}</option>)}
            </select>
          </label>
          <label>
            Amount to refund (smallest unit; empty: all of it)
            <input inputMode="numeric" value={amountText} onChange={(event) => setAmountText(event.target.value)} />
          </label>
        </>
      )}
      <label>
        {how === "refund" ? "Reason code" : "Why it is rejected"}
        <input value={reason} onChange={(event) => setReason(event.target.value)} required />
      </label>
      {problem && <p className="error">{problem}</p>}
      <button type="submit" className="primary" disabled={resolve.isPending}>{how === "refund" ? "Refund and resolve" : "Reject"}</button>
      <ErrorNote error={resolve.error} prefix="Not resolved" />
    </form>
  );
}
