// The customer's side of disputes: dispute a line of its own history (in its own words),
// and follow the status of its disputes. A customer key may open and read, never change.
import { useQuery } from "@connectrpc/connect-query";
import { CorrectionService } from "@burndown/sdk/gen/burndown/v1/corrections_pb.js";
import { type FormEvent, useState } from "react";
import { newRequestId } from "../api.js";
import { dateOf, formatTime } from "../format.js";
import { useChange } from "../mutations.js";
import { disputeStatusName } from "../pages/DisputesScreen.js";
import { ErrorNote, Loading, Section } from "../ui.js";

/** DisputeLine is the form to dispute one ledger line. */
export function DisputeLine({ customerId, entryId, onDone }: { customerId: string; entryId: string; onDone: () => void }) {
  const open = useChange(CorrectionService.method.openDispute);
  const [description, setDescription] = useState("");
  const [requestId] = useState(newRequestId);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (description.trim() !== "") open.mutate({ customerId, entryIds: [entryId], description, requestId }, { onSuccess: onDone });
  };
  return (
    <form onSubmit={submit} aria-label="Dispute this line" className="stack">
      <label>
        What is wrong with this line?
        <textarea value={description} onChange={(event) => setDescription(event.target.value)} maxLength={1000} rows={2} required />
      </label>
      <button type="submit" className="primary" disabled={open.isPending}>Send dispute</button>
      <ErrorNote error={open.error} prefix="Not sent" />
    </form>
  );
}

/** YourDisputes lists the customer's disputes and where each is. */
export function YourDisputes() {
  const disputes = useQuery(CorrectionService.method.listDisputes, { pageSize: 50 });
  return (
    <Section title="Your disputes">
      {disputes.isPending ? (
        <Loading what="your disputes" />
      ) : disputes.error ? (
        <ErrorNote error={disputes.error} />
      ) : disputes.data.disputes.length === 0 ? (
        <p className="muted">No disputes.</p>
      ) : (
        <table aria-label="Your disputes">
          <thead>
            <tr>
              <th scope="col">Opened</th>
              <th scope="col">Lines</th>
              <th scope="col">Your words</th>
              <th scope="col">Status</th>
              <th scope="col">Answer due</th>
            </tr>
          </thead>
          <tbody>
            {disputes.data.disputes.map((dispute) => (
              <tr key={dispute.disputeId}>
                <td>{formatTime(dateOf(dispute.openTime))}</td>
                <td>{dispute.entryIds.join(", ")}</td>
                <td>{dispute.description}</td>
                <td data-testid="your-dispute-status">{disputeStatusName(dispute.status)}{dispute.rejectReason ? `: ${dispute.rejectReason}` : ""}</td>
                <td>{dispute.resolveTime ? "—" : formatTime(dateOf(dispute.resolutionDueTime))}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}
