// A customer's grant requests waiting for approval, so that whoever opens the customer sees
// what was asked for and by whom; they are decided on the Approvals screen.
import { useQuery } from "@connectrpc/connect-query";
import { GrantRequestStatus, SupportService } from "@burndown/sdk/gen/burndown/v1/support_pb.js";
import { dateOf, formatAmount, formatTime } from "../format.js";
import { grantSourceName } from "../labels.js";
import { href } from "../router.js";
import { ErrorNote, Section, useScales } from "../ui.js";

/** PendingGrants lists a customer's pending grant requests; nothing when there are none. */
export function PendingGrants({ customerId }: { customerId: string }) {
  const requests = useQuery(SupportService.method.listGrantRequests, { customerId, status: GrantRequestStatus.PENDING, pageSize: 20 });
  const scaleOf = useScales();
  if (requests.error) return <ErrorNote error={requests.error} prefix="Could not list grant requests" />;
  const pending = requests.data?.grantRequests ?? [];
  if (pending.length === 0) return null;
  return (
    <Section title="Waiting for approval" actions={<a href={href("approvals")}>Open the approval queue</a>}>
      <table aria-label="Grant requests waiting for approval">
        <thead>
          <tr>
            <th scope="col">Filed</th>
            <th scope="col">By</th>
            <th scope="col" className="num">Credits</th>
            <th scope="col">Source</th>
            <th scope="col">Reason</th>
            <th scope="col">Expires</th>
          </tr>
        </thead>
        <tbody>
          {pending.map((request) => (
            <tr key={request.grantRequestId}>
              <td>{formatTime(dateOf(request.createTime))}</td>
              <td><code>{request.requesterKeyId}</code></td>
              <td className="num">{formatAmount(request.amount, scaleOf(request.creditTypeId))} {request.creditTypeId}</td>
              <td>{grantSourceName(request.source)}</td>
              <td>{request.reasonCode.replaceAll("_", " ")}</td>
              <td>{formatTime(dateOf(request.expireTime))}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}
