// The approval queue: grants asked for above their asker's limit. Another person (an
// admin, or a support key whose own limit covers the amount) approves one, which grants
// it exactly once, or rejects it with a reason. One's own requests are listed without
// those buttons: the server refuses self-approval too.
import { useQuery } from "@connectrpc/connect-query";
import { GrantRequestStatus, type PendingGrant, SupportService } from "@burndown/sdk/gen/burndown/v1/support_pb.js";
import { useState } from "react";
import { useCaller } from "../caller.js";
import { dateOf, formatAmount, formatTime } from "../format.js";
import { grantSourceName } from "../labels.js";
import { useChange } from "../mutations.js";
import { href } from "../router.js";
import { Confirm, ErrorNote, Loading, Section, useScales } from "../ui.js";
import { Done, Pager, ReasonField, useForm, usePages } from "./platform/forms.js";
import { listPageSize } from "./platform/limits.js";

const statuses: [GrantRequestStatus, string][] = [
  [GrantRequestStatus.PENDING, "Pending"],
  [GrantRequestStatus.APPROVED, "Approved"],
  [GrantRequestStatus.REJECTED, "Rejected"],
  [GrantRequestStatus.EXPIRED, "Expired"],
  [GrantRequestStatus.UNSPECIFIED, "All"],
];

const statusName = (status: GrantRequestStatus) => statuses.find(([value]) => value === status)?.[1] ?? "Unknown";

/** ApprovalsScreen lists grant requests (pending first) and decides them. */
export function ApprovalsScreen() {
  const me = useCaller();
  const [status, setStatus] = useState(GrantRequestStatus.PENDING);
  const pages = usePages();
  const requests = useQuery(SupportService.method.listGrantRequests, { status, pageSize: listPageSize, pageToken: pages.token });
  const approve = useChange(SupportService.method.approveGrantRequest);
  const reject = useChange(SupportService.method.rejectGrantRequest);
  const form = useForm({ reason: "" });
  const [asking, setAsking] = useState<{ request: PendingGrant; verb: "approve" | "reject" } | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const scaleOf = useScales();
  const decide = () => {
    if (asking === null) return;
    const { request, verb } = asking;
    const amount = `${formatAmount(request.amount, scaleOf(request.creditTypeId))} ${request.creditTypeId}`;
    const sent = form.submission({ grantRequestId: request.grantRequestId, reason: form.values.reason });
    const onSuccess = () => {
      setDone(verb === "approve" ? `Approved: granted ${amount} to ${request.customerId}.` : `Rejected the request of ${amount} for ${request.customerId}.`);
      form.sent({ reason: "" });
    };
    if (verb === "approve") approve.mutate(sent, { onSuccess });
    else reject.mutate(sent, { onSuccess });
    setAsking(null);
  };
  return (
    <>
      <h1>Approvals</h1>
      <Section title="Grant requests">
        <label>
          Status
          <select
            value={status}
            onChange={(event) => {
              setStatus(Number(event.target.value) as GrantRequestStatus);
              pages.reset();
            }}
          >
            {statuses.map(([value, name]) => (
              <option key={value} value={value}>
                {name}
              </option>
            ))}
          </select>
        </label>
        {requests.isPending ? (
          <Loading what="grant requests" />
        ) : requests.error ? (
          <ErrorNote error={requests.error} prefix="Could not list grant requests" />
        ) : requests.data.grantRequests.length === 0 ? (
          <p className="muted">No {statusName(status).toLowerCase()} requests.</p>
        ) : (
          <table aria-label="Grant requests">
            <thead>
              <tr>
                <th scope="col">Filed</th>
                <th scope="col">By</th>
                <th scope="col">Customer</th>
                <th scope="col" className="num">Credits</th>
                <th scope="col">Source</th>
                <th scope="col">Reason</th>
                <th scope="col">Ticket</th>
                <th scope="col">Status</th>
                <th scope="col"><span className="sr-only">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {requests.data.grantRequests.map((request) => (
                <tr key={request.grantRequestId} data-request={request.grantRequestId}>
                  <td>{formatTime(dateOf(request.createTime))}</td>
                  <td><code>{request.requesterKeyId}</code></td>
                  <td><a href={href("customers", request.customerId)}>{request.customerId}</a></td>
                  <td className="num">{formatAmount(request.amount, scaleOf(request.creditTypeId))} {request.creditTypeId}</td>
                  <td>{grantSourceName(request.source)}</td>
                  <td>
                    {request.reasonCode.replaceAll("_", " ")}
                    {request.note && <span className="muted"> · {request.note}</span>}
                  </td>
                  <td>{request.ticketUrl && <a href={request.ticketUrl} rel="noreferrer noopener" target="_blank">ticket</a>}</td>
                  <td data-testid="request-status">
                    {statusName(request.status)}
                    {request.status === GrantRequestStatus.PENDING && <span className="muted"> until {formatTime(dateOf(request.expireTime))}</span>}
                    {request.decisionReason && <span className="muted"> · {request.decisionReason}</span>}
                  </td>
                  <td>
                    {request.status !== GrantRequestStatus.PENDING ? null : request.requesterKeyId === me.keyId ? (
                      <span className="muted">Your request</span>
                    ) : (
                      <>
                        <button type="button" className="primary" onClick={() => setAsking({ request, verb: "approve" })}>
                          Approve<span className="sr-only"> the request for {request.customerId}</span>
                        </button>{" "}
                        <button type="button" className="danger" onClick={() => setAsking({ request, verb: "reject" })}>
                          Reject<span className="sr-only"> the request for {request.customerId}</span>
                        </button>
                      </>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <Pager pages={pages} nextToken={requests.data?.nextPageToken} backLabel="Newer" nextLabel="Older" />
        <ErrorNote error={approve.error} prefix="Not approved" />
        <ErrorNote error={reject.error} prefix="Not rejected" />
        <Done text={done} />
      </Section>
      <Confirm
        open={asking !== null}
        title={asking?.verb === "approve" ? "Approve this grant?" : "Reject this request?"}
        confirmLabel={asking?.verb === "approve" ? "Approve and grant" : "Reject"}
        danger={asking?.verb === "reject"}
        onConfirm={decide}
        onCancel={() => setAsking(null)}
      >
        {asking && (
          <p>
            {formatAmount(asking.request.amount, scaleOf(asking.request.creditTypeId))} {asking.request.creditTypeId} for {asking.request.customerId}
            {asking.verb === "approve" ? ", granted at once on your authority." : "; nothing is granted."}
          </p>
        )}
        <ReasonField value={form.values.reason} onChange={(value) => form.set("reason", value)} required={asking?.verb === "reject"} />
      </Confirm>
    </>
  );
}
