// The audit trail: every administrative action, newest first, with who did it, to what,
// why and the values before and after. Support and admin keys may read it.
import { useQuery } from "@connectrpc/connect-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { dateOf, formatTime } from "../../format.js";
import { ErrorNote, Loading, Section } from "../../ui.js";
import { Pager, usePages } from "./forms.js";
import { auditPageSize } from "./limits.js";

/** AuditPage pages through the audit trail, newest first. */
export function AuditPage() {
  const pages = usePages();
  const records = useQuery(AdminService.method.listAuditRecords, { pageSize: auditPageSize, pageToken: pages.token });
  return (
    <Section title="Audit trail">
      {records.isPending ? (
        <Loading what="the audit trail" />
      ) : records.error ? (
        <ErrorNote error={records.error} prefix="Could not read the audit trail" />
      ) : records.data.auditRecords.length === 0 ? (
        <p className="muted">No administrative action yet.</p>
      ) : (
        <table aria-label="Audit records">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Actor (key id)</th>
              <th scope="col">Action</th>
              <th scope="col">Target</th>
              <th scope="col">Reason</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {records.data.auditRecords.map((record) => (
              <tr key={record.auditId} data-action={record.action}>
                <td>{formatTime(dateOf(record.createTime))}</td>
                <td><code>{record.actor}</code></td>
                <td>{record.action.replaceAll("_", " ")}</td>
                <td><code>{record.target}</code></td>
                <td>{record.reason}</td>
                <td><code className="details">{record.detailsJson}</code></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager pages={pages} nextToken={records.data?.nextPageToken} backLabel="Newer" nextLabel="Older" />
    </Section>
  );
}
