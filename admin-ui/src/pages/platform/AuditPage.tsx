// The audit trail: every administrative action, newest first, with who did it, to what,
// why, the values before and after, and the request id of the call that did it (the one a
// customer quotes from an answer's x-request-id, and the server's log line carries). Support
// and admin keys may read it, and find a call's records by its request id.
import { useQuery } from "@connectrpc/connect-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { type FormEvent, useState } from "react";
import { dateOf, formatTime } from "../../format.js";
import { ErrorNote, Loading, Section } from "../../ui.js";
import { Pager, usePages } from "./forms.js";
import { auditPageSize } from "./limits.js";

/** AuditPage pages through the audit trail, newest first, or through the records of one call. */
export function AuditPage() {
  const pages = usePages();
  const [typed, setTyped] = useState("");
  const [requestId, setRequestId] = useState("");
  const records = useQuery(AdminService.method.listAuditRecords, { pageSize: auditPageSize, pageToken: pages.token, requestId });
  const find = (value: string) => {
    setRequestId(value);
    pages.reset();
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    find(typed.trim());
  };
  return (
    <Section title="Audit trail">
      <form role="search" aria-label="Audit records by request id" onSubmit={submit} className="search">
        <label htmlFor="audit-request-id">Find the records of a call by its request id (x-request-id)</label>
        <div className="row">
          <input id="audit-request-id" type="search" value={typed} onChange={(event) => setTyped(event.target.value)} placeholder="checkout-7f3a, or a UUID" />
          <button type="submit" className="primary">
            Find
          </button>
          {requestId !== "" && (
            <button type="button" onClick={() => (setTyped(""), find(""))}>
              Show every record
            </button>
          )}
        </div>
      </form>
      {records.isPending ? (
        <Loading what="the audit trail" />
      ) : records.error ? (
        <ErrorNote error={records.error} prefix="Could not read the audit trail" />
      ) : records.data.auditRecords.length === 0 ? (
        <p className="muted">
          {requestId === ""
            ? "No administrative action yet."
            : `No audit record carries the request id “${requestId}”. Records the server writes on its own (jobs, the usage queue, the Stripe webhook) carry none.`}
        </p>
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
              <th scope="col">Request id</th>
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
                <td data-testid="request-id">{record.requestId === "" ? <span className="muted" title="written by the server on its own, or before request ids were kept">none</span> : <code>{record.requestId}</code>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager pages={pages} nextToken={records.data?.nextPageToken} backLabel="Newer" nextLabel="Older" />
    </Section>
  );
}
