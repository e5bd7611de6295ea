// An admin sets how far into debt a customer may go, per credit type.
import { useQuery } from "@connectrpc/connect-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import type { CreditAmount } from "@burndown/sdk/gen/burndown/v1/types_pb.js";
import { type FormEvent, useState } from "react";
import { newRequestId } from "../api.js";
import { formatAmount, parseAmount } from "../format.js";
import { useChange } from "../mutations.js";
import { CreditTypeSelect, ErrorNote, Section } from "../ui.js";

export function OverdraftForm({ customerId, limits }: { customerId: string; limits: CreditAmount[] }) {
  const creditTypes = useQuery(AdminService.method.listCreditTypes, {});
  const change = useChange(AdminService.method.setOverdraftLimit);
  const [creditTypeId, setCreditTypeId] = useState("");
  const [text, setText] = useState("");
  const [reason, setReason] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const types = creditTypes.data?.creditTypes ?? [];
  const chosen = creditTypeId || types[0]?.creditTypeId || "";
  const scale = types.find((type) => type.creditTypeId === chosen)?.scale ?? 0;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setProblem(null);
    let amount: bigint;
    try {
      amount = parseAmount(text, scale);
    } catch (error) {
      setProblem((error as Error).message);
      return;
    }
    change.mutate({ customerId, limit: { creditTypeId: chosen, amount }, reason, requestId: newRequestId() });
  };
  return (
    <Section title="Overdraft limits">
      {limits.length === 0 ? <p className="muted">No overdraft: the balance cannot go below zero.</p> : (
        <ul>
          {limits.map((limit) => (
            <li key={limit.creditTypeId}>
              {limit.creditTypeId}: down to -{formatAmount(limit.amount, types.find((type) => type.creditTypeId === limit.creditTypeId)?.scale ?? 0)}
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={submit} className="row" aria-label="Set overdraft limit">
        <CreditTypeSelect types={types} value={chosen} onChange={setCreditTypeId} />
        <label>
          Limit
          <input inputMode="decimal" value={text} onChange={(event) => setText(event.target.value)} required />
        </label>
        <label>
          Reason
          <input value={reason} onChange={(event) => setReason(event.target.value)} required />
        </label>
        <button type="submit" disabled={change.isPending}>Set limit</button>
      </form>
      {problem && <p className="error">{problem}</p>}
      <ErrorNote error={change.error} prefix="Not changed" />
    </Section>
  );
}
