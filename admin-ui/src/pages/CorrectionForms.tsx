// Corrections from a ledger line, as support makes them: void the unused credits of a lot
// (the unused amount is shown; empty voids all of it), or refund all or part of a burn,
// with a reason code. Each goes through CorrectionService; a refusal is shown in words
// and changes nothing.
import { CorrectionService } from "@burndown/sdk/gen/burndown/v1/corrections_pb.js";
import type { LedgerEntry } from "@burndown/sdk/gen/burndown/v1/types_pb.js";
import { type FormEvent, useRef, useState } from "react";
import { newRequestId } from "../api.js";
import { formatAmount, parseAmount } from "../format.js";
import { useChange } from "../mutations.js";
import { ErrorNote } from "../ui.js";

/** amountOf reads an optional amount: empty is 0 (all), a bad one is a message. */
function amountOf(text: string, scale: number): { amount: bigint; problem: string | null } {
  if (text.trim() === "") return { amount: 0n, problem: null };
  try {
    const amount = parseAmount(text, scale);
    return amount > 0n ? { amount, problem: null } : { amount: 0n, problem: "The amount must be more than zero." };
  } catch (error) {
    return { amount: 0n, problem: (error as Error).message };
  }
}

function CorrectionForm({ label, intro, submitLabel, scale, pending, error, done, onSubmit }: {
  label: string;
  intro: string;
  submitLabel: string;
  scale: number;
  pending: boolean;
  error: unknown;
  done: string | null;
  onSubmit: (amount: bigint, reasonCode: string, requestId: string) => void;
}) {
  // The same request sent again keeps its id (a retry is answered, not applied twice); another gets a new one.
  const last = useRef<{ signature: string; requestId: string } | null>(null);
  const [amountText, setAmountText] = useState("");
  const [reasonCode, setReasonCode] = useState("");
  const { amount, problem } = amountOf(amountText, scale);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (problem !== null || reasonCode.trim() === "") return;
    const signature = `${amount}:${reasonCode.trim()}`;
    if (last.current?.signature !== signature || done !== null) last.current = { signature, requestId: newRequestId() };
    onSubmit(amount, reasonCode.trim(), last.current.requestId);
  };
  return (
    <form onSubmit={submit} aria-label={label} className="stack card">
      <p>{intro}</p>
      <label>
        Amount (empty: all of it)
        <input inputMode="decimal" value={amountText} onChange={(event) => setAmountText(event.target.value)} aria-invalid={problem !== null} />
      </label>
      {problem && <p className="error">{problem}</p>}
      <label>
        Reason code
        <input value={reasonCode} onChange={(event) => setReasonCode(event.target.value)} placeholder="granted_by_mistake" required pattern="[a-z0-9][a-z0-9_.\-]*" />
      </label>
      <button type="submit" className="primary" disabled={pending || problem !== null}>
        {pending ? "Working…" : submitLabel}
      </button>
      <ErrorNote error={error} prefix="Refused" />
      {done && (
        <p className="success" role="status">
          {done}
        </p>
      )}
    </form>
  );
}

/**
 * VoidForm voids a lot's unused credits; with no amount, the whole lot: what open
 * reservations hold then waits for them (voided as they give it back, burned as they commit it).
 */
export function VoidForm({ customerId, grantId, unused, held, scale }: { customerId: string; grantId: string; unused: bigint; held: bigint; scale: number }) {
  const voidGrant = useChange(CorrectionService.method.voidGrant);
  const [done, setDone] = useState<string | null>(null);
  const heldNote =
    held > 0n
      ? ` ${formatAmount(held, scale)} more are held by open reservations: voiding all of it (empty amount) voids them as the reservations give them back; what they use still burns.`
      : "";
  return (
    <CorrectionForm
      label="Void unused credits"
      intro={`Lot ${grantId.slice(0, 8)} has ${formatAmount(unused, scale)} unused credits.${heldNote}`}
      submitLabel="Void"
      scale={scale}
      pending={voidGrant.isPending}
      error={voidGrant.error}
      done={done}
      onSubmit={(amount, reasonCode, requestId) =>
        voidGrant.mutate(
          { customerId, grantId, amount, reasonCode, requestId },
          {
            onSuccess: (res) =>
              setDone(
                `Voided ${formatAmount(res.voided, scale)}` +
                  (res.pending > 0n ? `; ${formatAmount(res.pending, scale)} pending until its reservations resolve` : res.held > 0n ? `; ${formatAmount(res.held, scale)} stay held` : "") +
                  ".",
              ),
          },
        )
      }
    />
  );
}

/** RefundForm refunds all or part of the charge a burn line belongs to. */
export function RefundForm({ customerId, entry, scale }: { customerId: string; entry: LedgerEntry; scale: number }) {
  const refund = useChange(CorrectionService.method.refundCharge);
  const [done, setDone] = useState<string | null>(null);
  return (
    <CorrectionForm
      label="Refund a charge"
      intro={`Refund the charge of burn line ${entry.entryId} (${formatAmount(entry.amount, scale)} on this line), back to the lots it came from.`}
      submitLabel="Refund"
      scale={scale}
      pending={refund.isPending}
      error={refund.error}
      done={done}
      onSubmit={(amount, reasonCode, requestId) =>
        refund.mutate(
          { customerId, charge: { charge: { case: "entryId", value: entry.entryId } }, amount, reasonCode, requestId },
          { onSuccess: (res) => setDone(`Refunded ${formatAmount(res.refund!.amount, scale)} of ${formatAmount(res.refund!.charged, scale)}.`) },
        )
      }
    />
  );
}
