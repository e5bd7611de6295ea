// Grant credits as support does: amount at the credit type's scale, source (those the
// key's role may use), a reason code from the list, a ticket link, a note and an optional
// expiry. The key's own limit is shown before submitting. The form sends RequestGrant: a
// grant within the limit is made at once, one above it is filed for another person to
// approve (Approvals), and the form says which; a refusal is shown in words.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useQuery } from "@connectrpc/connect-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { SupportService } from "@burndown/sdk/gen/burndown/v1/support_pb.js";
import { GrantSource, Role } from "@burndown/sdk/gen/burndown/v1/types_pb.js";
import { type FormEvent, useState } from "react";
import { newRequestId } from "../api.js";
import { useCaller } from "../caller.js";
import { formatAmount, parseAmount } from "../format.js";
import { grantSources } from "../labels.js";
import { useChange } from "../mutations.js";
import { CreditTypeSelect, ErrorNote, Section } from "../ui.js";

export function GrantForm({ customerId }: { customerId: string }) {
  const me = useCaller();
  const creditTypes = useQuery(AdminService.method.listCreditTypes, {});
  const grant = useChange(SupportService.method.requestGrant);
  const [creditTypeId, setCreditTypeId] = useState("");
  const [amountText, setAmountText] = useState("");
  const [source, setSource] = useState<GrantSource>(GrantSource.SUPPORT);
  const [reasonCode, setReasonCode] = useState("");
  const [note, setNote] = useState("");
  const [ticketUrl, setTicketUrl] = useState("");
  const [expiry, setExpiry] = useState("");
  const [requestId, setRequestId] = useState(newRequestId);
  const [done, setDone] = useState<string | null>(null);
  const types = creditTypes.data?.creditTypes ?? [];
  const chosenType = creditTypeId || types[0]?.creditTypeId || "";
  const scale = types.find((type) => type.creditTypeId === chosenType)?.scale ?? 0;
  let amount: bigint | null = null;
  let amountProblem: string | null = null;
  if (amountText.trim() !== "") {
    try {
      amount = parseAmount(amountText, scale);
      if (amount <= 0n) amountProblem = "The amount must be more than zero.";
    } catch (error) {
      amountProblem = (error as Error).message;
    }
  }
  const isSupport = me.role === Role.SUPPORT;
  const overLimit = isSupport && amount !== null && amount > me.grantLimit;
  const codes = me.grantReasonCodes;
  // A restricted role (support) is offered only the sources it may use.
  const sources = me.grantSources.length === 0 ? grantSources : grantSources.filter(([value]) => me.grantSources.includes(value));

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    if (amount === null || amountProblem !== null) return;
    const expireTime = expiry ? timestampFromDate(new Date(`${expiry}T23:59:59Z`)) : undefined;
    const chosenSource = sources.some(([value]) => value === source) ? source : (sources[0]?.[0] ?? source);
    grant.mutate(
      { grant: { customerId, creditTypeId: chosenType, amount, source: chosenSource, reasonCode: reasonCode || codes[0] || "support", note, ticketUrl: ticketUrl.trim(), expireTime, requestId } },
      {
        onSuccess: (response) => {
          setDone(
            response.pending
              ? `Above your limit: ${formatAmount(amount!, scale)} ${chosenType} filed for approval by another person.`
              : `Granted ${formatAmount(amount!, scale)} ${chosenType}.`,
          );
          setAmountText("");
          setNote("");
          setTicketUrl("");
          setExpiry("");
          setRequestId(newRequestId());
        },
      },
    );
  };
  // A changed form is a new request; an unchanged one re-sent keeps its id (safe to retry).
  const edited = <T,>(set: (value: T) => void) => (value: T) => {
    set(value);
    setRequestId(newRequestId());
  };

  return (
    <Section title="Grant credits">
      <form onSubmit={submit} aria-label="Grant credits" className="stack">
        {isSupport && (
          <p className="limit" data-testid="grant-limit">
            Your key may grant up to <strong>{formatAmount(me.grantLimit, scale)}</strong> {chosenType} per grant.
          </p>
        )}
        <CreditTypeSelect types={types} value={chosenType} onChange={edited(setCreditTypeId)} />
        <label>
          Amount
          <input inputMode="decimal" value={amountText} onChange={(event) => edited(setAmountText)(event.target.value)} aria-invalid={amountProblem !== null || overLimit} required />
        </label>
        {amountProblem && <p className="error">{amountProblem}</p>}
        {overLimit && <p className="warning">That is above your limit: it will be filed for approval by another person.</p>}
        <label>
          Source
          <select value={source} onChange={(event) => edited(setSource)(Number(event.target.value) as GrantSource)}>
            {sources.map(([value, name]) => (
              <option key={value} value={value}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Reason
          <select value={reasonCode || codes[0] || ""} onChange={(event) => edited(setReasonCode)(event.target.value)}>
            {codes.map((code) => (
              <option key={code} value={code}>
                {code.replaceAll("_", " ")}
              </option>
            ))}
          </select>
        </label>
        <label>
          Note (for the ledger and the audit trail)
          <textarea value={note} onChange={(event) => edited(setNote)(event.target.value)} maxLength={1000} rows={2} />
        </label>
        <label>
          Ticket link (optional)
          <input type="url" value={ticketUrl} onChange={(event) => edited(setTicketUrl)(event.target.value)} maxLength={2000} placeholder="https://…" />
        </label>
        <label>
          Expires (end of day, UTC; empty: never)
          <input type="date" value={expiry} onChange={(event) => edited(setExpiry)(event.target.value)} />
        </label>
        <button type="submit" className="primary" disabled={grant.isPending || amount === null || amountProblem !== null}>
          {grant.isPending ? "Sending…" : overLimit ? "Request approval" : "Grant"}
        </button>
        <ErrorNote error={grant.error} prefix="Not granted" />
        {done && (
          <p className="success" role="status">
            {done}
          </p>
        )}
      </form>
    </Section>
  );
}
