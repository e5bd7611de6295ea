// A customer's ledger: every entry, newest first, paged, filtered by kind, credit type,
// effective day and record time, each with both its times (when it took effect, when it
// was recorded: they differ for usage reported late and for expiry recorded by the job),
// its reason, actor, request id and the lot it touched. An entry of a usage event opens
// that event's story. With corrections, a grant line can be voided (its lot's unused
// credits shown) and a burn line refunded.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useQuery } from "@connectrpc/connect-query";
import { LedgerService } from "@burndown/sdk/gen/burndown/v1/ledger_service_pb.js";
import { EntryKind } from "@burndown/sdk/gen/burndown/v1/types_pb.js";
import { useState } from "react";
import { dateOf, formatTime } from "../format.js";
import { entryKindName, entryKinds } from "../labels.js";
import { href } from "../router.js";
import { Amount, ErrorNote, Loading, Section, useScales } from "../ui.js";
import { RefundForm, VoidForm } from "./CorrectionForms.js";

const pageSize = 25;

/** momentOf reads a datetime-local value as a UTC moment, or undefined when empty. */
function momentOf(value: string) {
  if (!value) return undefined;
  const date = new Date(`${value.length === 16 ? `${value}:00` : value}Z`);
  return Number.isNaN(date.getTime()) ? undefined : timestampFromDate(date);
}

export function LedgerTable({ customerId, eventLink = (usageId: string) => href("events", usageId), corrections = false }: {
  customerId: string;
  eventLink?: (usageId: string) => string;
  corrections?: boolean;
}) {
  const [correcting, setCorrecting] = useState<{ kind: "void" | "refund"; entryId: string } | null>(null);
  const [kind, setKind] = useState<EntryKind | 0>(0);
  const [creditTypeId, setCreditTypeId] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [recordedFrom, setRecordedFrom] = useState("");
  const [recordedTo, setRecordedTo] = useState("");
  const [tokens, setTokens] = useState<string[]>([""]);
  const scaleOf = useScales();
  const balance = useQuery(LedgerService.method.getBalance, { customerId });
  const entries = useQuery(LedgerService.method.listLedgerEntries, {
    customerId,
    creditTypeId,
    kinds: kind === 0 ? [] : [kind],
    startTime: from ? timestampFromDate(new Date(`${from}T00:00:00Z`)) : undefined,
    endTime: to ? timestampFromDate(new Date(`${to}T23:59:59.999Z`)) : undefined,
    recordStartTime: momentOf(recordedFrom),
    recordEndTime: momentOf(recordedTo),
    pageSize,
    pageToken: tokens[tokens.length - 1],
  });
  // A lot as GetBalance lists it (lots with credits left); its unused credits are its free part.
  const lotOf = (grantId: string) => (balance.data?.balances ?? []).flatMap((credit) => credit.lots).find((candidate) => candidate.grantId === grantId);
  const unusedOf = (grantId: string): bigint => {
    const lot = lotOf(grantId);
    return lot === undefined ? 0n : lot.remaining - lot.held;
  };
  // What of a lot not voided yet open reservations hold: a void of the whole lot leaves it pending.
  const voidableHeldOf = (grantId: string): bigint => {
    const lot = lotOf(grantId);
    return lot === undefined || lot.voidTime !== undefined ? 0n : lot.held;
  };
  const voidPendingOf = (grantId: string): bigint => lotOf(grantId)?.voidPending ?? 0n;
  const chosenEntry = correcting === null ? undefined : entries.data?.entries.find((entry) => entry.entryId === correcting.entryId);
  const chosen = correcting === null || chosenEntry === undefined ? null : { kind: correcting.kind, entry: chosenEntry };
  const resetPaging = <T,>(set: (value: T) => void) => (value: T) => {
    set(value);
    setTokens([""]);
  };
  return (
    <Section title="Ledger">
      <form className="filters row" aria-label="Filter the ledger" onSubmit={(event) => event.preventDefault()}>
        <label>
          Kind
          <select value={kind} onChange={(event) => resetPaging(setKind)(Number(event.target.value) as EntryKind)}>
            <option value={0}>All kinds</option>
            {entryKinds.map(([value, name]) => (
              <option key={value} value={value}>{name}</option>
            ))}
          </select>
        </label>
        <label>
          Credit type
          <select value={creditTypeId} onChange={(event) => resetPaging(setCreditTypeId)(event.target.value)}>
            <option value="">All credit types</option>
            {(balance.data?.balances ?? []).map((credit) => (
              <option key={credit.creditTypeId} value={credit.creditTypeId}>{credit.creditTypeId}</option>
            ))}
          </select>
        </label>
        <label>
          From
          <input type="date" value={from} onChange={(event) => resetPaging(setFrom)(event.target.value)} />
        </label>
        <label>
          To
          <input type="date" value={to} onChange={(event) => resetPaging(setTo)(event.target.value)} />
        </label>
        <label>
          Recorded from (UTC)
          <input type="datetime-local" step={1} value={recordedFrom} onChange={(event) => resetPaging(setRecordedFrom)(event.target.value)} />
        </label>
        <label>
          Recorded before (UTC)
          <input type="datetime-local" step={1} value={recordedTo} onChange={(event) => resetPaging(setRecordedTo)(event.target.value)} />
        </label>
      </form>
      {entries.isPending ? (
        <Loading what="ledger entries" />
      ) : entries.error ? (
        <ErrorNote error={entries.error} />
      ) : entries.data.entries.length === 0 ? (
        <p className="muted">No entries match.</p>
      ) : (
        <table aria-label="Ledger entries">
          <thead>
            <tr>
              <th scope="col">Effective</th>
              <th scope="col">Recorded</th>
              <th scope="col">Kind</th>
              <th scope="col" className="num">Amount</th>
              <th scope="col">Credit type</th>
              <th scope="col">Reason</th>
              <th scope="col">Member</th>
              <th scope="col">Actor</th>
              <th scope="col">Request id</th>
              <th scope="col">Lot</th>
              <th scope="col">Why</th>
              {corrections && <th scope="col">Correct</th>}
            </tr>
          </thead>
          <tbody>
            {entries.data.entries.map((entry) => (
              <tr key={entry.entryId} data-entry-kind={entryKindName(entry.kind)}>
                <td>{formatTime(dateOf(entry.effectiveTime))}</td>
                <td>{formatTime(dateOf(entry.recordTime))}</td>
                <td>
                  {entryKindName(entry.kind)}
                  {entry.overLimit && <span className="badge warn" title="burned past the overdraft limit under the kill switch">over limit</span>}
                  {entry.kind === EntryKind.GRANT && voidPendingOf(entry.grantId) > 0n && (
                    <span className="badge warn" title="the lot was voided; what its open reservations hold is voided as they give it back">
                      void pending <Amount value={voidPendingOf(entry.grantId)} scale={scaleOf(entry.creditTypeId)} />
                    </span>
                  )}
                </td>
                <td className="num"><Amount value={entry.amount} scale={scaleOf(entry.creditTypeId)} /></td>
                <td>{entry.creditTypeId}</td>
                <td>{entry.reasonCode}</td>
                <td>{entry.memberCustomerId ? <a href={href("customers", entry.memberCustomerId)}>{entry.memberCustomerId}</a> : ""}</td>
                <td><code>{entry.actor}</code></td>
                <td><code title={entry.requestId}>{entry.requestId.slice(0, 12)}</code></td>
                <td>{entry.grantId ? <code title={entry.grantId}>{entry.grantId.slice(0, 8)}</code> : "—"}</td>
                <td>{entry.usageId ? <a href={eventLink(entry.usageId)}>usage event {entry.usageId}</a> : entry.reservationId ? <span title={entry.reservationId}>reservation</span> : ""}</td>
                {corrections && (
                  <td>
                    {entry.kind === EntryKind.GRANT && (unusedOf(entry.grantId) > 0n || voidableHeldOf(entry.grantId) > 0n) && (
                      <button type="button" onClick={() => setCorrecting({ kind: "void", entryId: entry.entryId })}>
                        Void <Amount value={unusedOf(entry.grantId)} scale={scaleOf(entry.creditTypeId)} /> unused
                      </button>
                    )}
                    {entry.kind === EntryKind.BURN && (
                      <button type="button" onClick={() => setCorrecting({ kind: "refund", entryId: entry.entryId })}>
                        Refund
                      </button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {chosen && chosen.kind === "void" && (
        <VoidForm
          key={chosen.entry.entryId}
          customerId={customerId}
          grantId={chosen.entry.grantId}
          unused={unusedOf(chosen.entry.grantId)}
          held={voidableHeldOf(chosen.entry.grantId)}
          scale={scaleOf(chosen.entry.creditTypeId)}
        />
      )}
      {chosen && chosen.kind === "refund" && <RefundForm key={chosen.entry.entryId} customerId={customerId} entry={chosen.entry} scale={scaleOf(chosen.entry.creditTypeId)} />}
      <div className="pager">
        <button type="button" disabled={tokens.length <= 1} onClick={() => setTokens(tokens.slice(0, -1))}>
          Newer
        </button>
        <span className="muted">Page {tokens.length}</span>
        <button type="button" disabled={!entries.data?.nextPageToken} onClick={() => setTokens([...tokens, entries.data!.nextPageToken])}>
          Older
        </button>
      </div>
    </Section>
  );
}
