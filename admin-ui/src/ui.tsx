// Small pieces every screen uses: refusals in words, loading states, amounts at their
// credit type's scale, and a confirmation for actions that hurt when done by mistake.
import { useQuery } from "@connectrpc/connect-query";
import { AdminService, type CreditType } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { type ReactNode, useEffect, useId, useRef } from "react";
import { refusalOf } from "./errors.js";
import { formatAmount } from "./format.js";

export function ErrorNote({ error, prefix }: { error: unknown; prefix?: string }) {
  if (!error) return null;
  const refusal = refusalOf(error);
  return (
    <p className="error" role="alert">
      {prefix ? `${prefix}: ` : ""}
      {refusal.text} <code className="reason">{refusal.reason}</code>
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status">
      Loading {what}…
    </p>
  );
}

/** useScales maps credit type ids to their scale (digits after the point). */
export function useScales(): (creditTypeId: string) => number {
  const { data } = useQuery(AdminService.method.listCreditTypes, {});
  return (creditTypeId) => data?.creditTypes.find((type) => type.creditTypeId === creditTypeId)?.scale ?? 0;
}

export function Amount({ value, scale, className }: { value: bigint; scale: number; className?: string }) {
  return <span className={`amount ${value < 0n ? "negative" : ""} ${className ?? ""}`}>{formatAmount(value, scale)}</span>;
}

export function Section({ title, children, actions }: { title: string; children: ReactNode; actions?: ReactNode }) {
  const id = useId();
  return (
    <section aria-labelledby={id} className="card">
      <header className="card-header">
        <h2 id={id}>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}

/** Confirm is a modal dialog: the action runs only on an explicit yes. */
export function Confirm({ open, title, children, confirmLabel, onConfirm, onCancel, danger }: {
  open: boolean;
  title: string;
  children: ReactNode;
  confirmLabel: string;
  onConfirm: () => void;
  onCancel: () => void;
  danger?: boolean;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (open && !element.open) element.showModal();
    if (!open && element.open) element.close();
  }, [open]);
  return (
    <dialog ref={dialog} onCancel={onCancel} aria-labelledby="confirm-title">
      <h2 id="confirm-title">{title}</h2>
      <div>{children}</div>
      <div className="actions">
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" className={danger ? "danger" : "primary"} onClick={onConfirm}>
          {confirmLabel}
        </button>
      </div>
    </dialog>
  );
}

/** CreditTypeSelect picks one of the credit types by id, showing their names. */
export function CreditTypeSelect({ types, value, onChange }: { types: CreditType[]; value: string; onChange: (creditTypeId: string) => void }) {
  return (
    <label>
      Credit type
      <select value={value} onChange={(event) => onChange(event.target.value)} required>
        {types.map((type) => (
          <option key={type.creditTypeId} value={type.creditTypeId}>
            {type.displayName || type.creditTypeId}
          </option>
        ))}
      </select>
    </label>
  );
}
