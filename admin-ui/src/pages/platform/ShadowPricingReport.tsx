// The shadow pricing report: a past period's usage rated by a candidate version beside
// what the real pricing charged, per customer and feature, to read before moving a
// cohort. It changes nothing; support and admin keys may run it.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useQuery } from "@connectrpc/connect-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { type FormEvent, useState } from "react";
import { formatAmount } from "../../format.js";
import { Amount, ErrorNote, Loading, Section, useScales } from "../../ui.js";
import { Pager, parseIds, problemOf, useForm, usePages } from "./forms.js";
import { listPageSize } from "./limits.js";

interface Asked {
  candidate: string;
  from: string;
  to: string;
  customerIds: string[];
}

/** ShadowPricingReport rates a past period with a candidate version beside the real pricing. */
export function ShadowPricingReport() {
  const versions = useQuery(AdminService.method.listPricingVersions, {});
  const form = useForm({ candidate: "", from: "", to: "", customers: "" });
  const [asked, setAsked] = useState<Asked | null>(null);
  const pages = usePages();
  const all = versions.data?.pricingVersions ?? [];
  const candidate = form.values.candidate || all[all.length - 1]?.pricingVersionId || "";
  const idsProblem = problemOf(() => parseIds(form.values.customers));
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (idsProblem !== null) return;
    pages.reset();
    setAsked({ candidate, from: form.values.from, to: form.values.to, customerIds: parseIds(form.values.customers) });
  };
  return (
    <Section title="Shadow pricing report">
      <form className="row" aria-label="Shadow pricing report" onSubmit={submit}>
        <label>
          Candidate version
          <select value={candidate} onChange={(event) => form.set("candidate", event.target.value)} required>
            {all.map((version) => (
              <option key={version.pricingVersionId} value={version.pricingVersionId}>{version.pricingVersionId}</option>
            ))}
          </select>
        </label>
        <label>
          From (UTC)
          <input type="date" {...form.text("from")} required />
        </label>
        <label>
          To (UTC, inclusive)
          <input type="date" {...form.text("to")} required />
        </label>
        <label>
          Only these customers (optional)
          <input {...form.text("customers")} aria-invalid={idsProblem !== null} />
        </label>
        <button type="submit" disabled={all.length === 0}>Run report</button>
      </form>
      {idsProblem && <p className="error">{idsProblem}</p>}
      {asked && <ReportTable asked={asked} pages={pages} />}
    </Section>
  );
}

function ReportTable({ asked, pages }: { asked: Asked; pages: ReturnType<typeof usePages> }) {
  const scaleOf = useScales();
  const report = useQuery(AdminService.method.getShadowPricingReport, {
    candidatePricingVersionId: asked.candidate,
    startTime: timestampFromDate(new Date(`${asked.from}T00:00:00Z`)),
    // The day typed as "to" counts whole: the period ends at the next midnight, exclusive.
    endTime: timestampFromDate(new Date(Date.parse(`${asked.to}T00:00:00Z`) + 86_400_000)),
    customerIds: asked.customerIds,
    pageSize: listPageSize,
    pageToken: pages.token,
  });
  if (report.isPending) return <Loading what="the report" />;
  if (report.error) return <ErrorNote error={report.error} prefix="No report" />;
  const { rows, totals, nextPageToken } = report.data;
  return (
    <>
      <h3>Totals</h3>
      {totals.length === 0 ? (
        <p className="muted">No rated usage in that period.</p>
      ) : (
        <ul>
          {totals.map((total) => (
            <li key={total.creditTypeId}>
              {total.creditTypeId}: {formatAmount(total.events)} events, now {formatAmount(total.currentCredits, scaleOf(total.creditTypeId))}, with {asked.candidate}{" "}
              {formatAmount(total.candidateCredits, scaleOf(total.creditTypeId))}
            </li>
          ))}
        </ul>
      )}
      {rows.length > 0 && (
        <table aria-label="Shadow pricing by customer and feature">
          <thead>
            <tr>
              <th scope="col">Customer</th>
              <th scope="col">Feature</th>
              <th scope="col" className="num">Events</th>
              <th scope="col" className="num">Quantity</th>
              <th scope="col" className="num">Burned</th>
              <th scope="col" className="num">Shadowed</th>
              <th scope="col" className="num">Not billed</th>
              <th scope="col" className="num">Now</th>
              <th scope="col" className="num">Candidate</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => {
              const scale = scaleOf(row.creditTypeId);
              return (
                <tr key={`${row.customerId} ${row.featureKey}`}>
                  <td>{row.customerId}</td>
                  <td>{row.featureKey}</td>
                  <td className="num">{formatAmount(row.events)}</td>
                  <td className="num">{formatAmount(row.quantity)}</td>
                  <td className="num"><Amount value={row.burnedCredits} scale={scale} /></td>
                  <td className="num"><Amount value={row.shadowedCredits} scale={scale} /></td>
                  <td className="num"><Amount value={row.notBilledCredits} scale={scale} /></td>
                  <td className="num"><Amount value={row.currentCredits} scale={scale} /></td>
                  <td className="num"><Amount value={row.candidateCredits} scale={scale} /></td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <Pager pages={pages} nextToken={nextPageToken} backLabel="Previous" nextLabel="Next" />
    </>
  );
}
