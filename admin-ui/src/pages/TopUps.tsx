// A customer's top-up orders: what they bought (or were offered), in which state, paid by
// which payment and what was refunded and clawed back; and a form that opens a pending
// order from a bundle for the customer to pay. Payment confirms it (the vendor's backend
// or Stripe), never this screen.
import { useQuery } from "@connectrpc/connect-query";
import { BillingService } from "@burndown/sdk/gen/burndown/v1/billing_pb.js";
import { type TopUp, TopUpState } from "@burndown/sdk/gen/burndown/v1/billing_pb.js";
import { Role } from "@burndown/sdk/gen/burndown/v1/types_pb.js";
import { type FormEvent, useState } from "react";
import { newRequestId } from "../api.js";
import { useCaller } from "../caller.js";
import { dateOf, formatAmount, formatPrice, formatTime } from "../format.js";
import { useChange } from "../mutations.js";
import { ErrorNote, Loading, Section, useScales } from "../ui.js";

const stateNames: Record<TopUpState, string> = {
  [TopUpState.UNSPECIFIED]: "unknown",
  [TopUpState.PENDING]: "pending",
  [TopUpState.PAID]: "paid",
  [TopUpState.CANCELLED]: "cancelled",
  [TopUpState.PARTIALLY_REFUNDED]: "partially refunded",
  [TopUpState.REFUNDED]: "refunded",
};

/** TopUps lists a customer's orders, newest first, and opens new ones from bundles. */
export function TopUps({ customerId }: { customerId: string }) {
  const orders = useQuery(BillingService.method.listTopUps, { customerId, pageSize: 50 });
  const scaleOf = useScales();
  // Paying, cancelling and refunding move money: admin keys only (support may open orders).
  const mayPay = useCaller().role === Role.ADMIN;
  const [action, setAction] = useState<OrderAction | null>(null);
  return (
    <Section title="Top-ups">
      {orders.isPending ? (
        <Loading what="top-ups" />
      ) : orders.error ? (
        <ErrorNote error={orders.error} prefix="Could not list top-ups" />
      ) : orders.data.topUps.length === 0 ? (
        <p className="muted">No top-ups yet.</p>
      ) : (
        <table aria-label="Top-ups">
          <thead>
            <tr>
              <th scope="col">Created</th>
              <th scope="col">State</th>
              <th scope="col">Bundle</th>
              <th scope="col" className="num">Credits</th>
              <th scope="col" className="num">Price</th>
              <th scope="col">Payment</th>
              <th scope="col" className="num">Refunded</th>
              <th scope="col" className="num">Clawed back (as debt)</th>
              {mayPay && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {orders.data.topUps.map((order) => {
              const scale = scaleOf(order.creditTypeId);
              return (
                <tr key={order.orderId} data-order={order.orderId}>
                  <td>{formatTime(dateOf(order.createTime))}</td>
                  <td>{stateNames[order.state]}</td>
                  <td>{order.bundleId === "" ? "amount" : `${order.bundleId} v${order.bundleVersion}`}</td>
                  <td className="num">{formatAmount(order.credits, scale)} {order.creditTypeId}</td>
                  <td className="num">{formatPrice(order.priceMinor, order.currency)}</td>
                  <td><code>{order.paymentReference}</code></td>
                  <td className="num">{order.refundedMinor === 0n ? "" : formatPrice(order.refundedMinor, order.currency)}</td>
                  <td className="num">
                    {order.clawedBackCredits + order.debtCredits === 0n ? "" : `${formatAmount(order.clawedBackCredits + order.debtCredits, scale)} (${formatAmount(order.debtCredits, scale)})`}
                  </td>
                  {mayPay && (
                    <td>
                      {order.state === TopUpState.PENDING && (
                        <>
                          <button type="button" onClick={() => setAction({ kind: "pay", order })}>Record payment</button>{" "}
                          <button type="button" onClick={() => setAction({ kind: "cancel", order })}>Cancel order</button>
                        </>
                      )}
                      {(order.state === TopUpState.PAID || order.state === TopUpState.PARTIALLY_REFUNDED) && (
                        <button type="button" onClick={() => setAction({ kind: "refund", order })}>Refund</button>
                      )}
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {action && <OrderActionForm key={`${action.kind}:${action.order.orderId}`} action={action} onDone={() => setAction(null)} />}
      <NewTopUpForm customerId={customerId} />
    </Section>
  );
}

/** OrderAction is what an admin is doing to one order. */
type OrderAction = { kind: "pay" | "cancel" | "refund"; order: TopUp };

const actionTitles = { pay: "Record a payment", cancel: "Cancel the order", refund: "Refund the order" } as const;

/**
 * OrderActionForm records a payment received outside Stripe (a wire transfer, an
 * invoice), cancels an unpaid order, or refunds part or all of a paid one, which claws
 * back its credits (what was burned already becomes debt).
 */
function OrderActionForm({ action, onDone }: { action: OrderAction; onDone: () => void }) {
  const { kind, order } = action;
  const confirm = useChange(BillingService.method.confirmTopUp);
  const cancel = useChange(BillingService.method.cancelTopUp);
  const refund = useChange(BillingService.method.refundTopUp);
  const [requestId] = useState(newRequestId);
  const [reference, setReference] = useState("");
  const [note, setNote] = useState("");
  const [amount, setAmount] = useState((order.priceMinor - order.refundedMinor).toString());
  const [reasonCode, setReasonCode] = useState("refund");
  const [problem, setProblem] = useState<string | null>(null);
  const pending = confirm.isPending || cancel.isPending || refund.isPending;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setProblem(null);
    const done = { onSuccess: onDone };
    if (kind === "pay") confirm.mutate({ orderId: order.orderId, paymentReference: reference.trim(), amountMinor: order.priceMinor, currency: order.currency, requestId }, done);
    if (kind === "cancel") cancel.mutate({ orderId: order.orderId, note, requestId }, done);
    if (kind === "refund") {
      if (!/^[0-9]{1,18}$/.test(amount.trim())) return setProblem("The amount is a whole number of minor units (cents).");
      refund.mutate({ orderId: order.orderId, amountMinor: BigInt(amount.trim()), currency: order.currency, reasonCode, paymentReference: reference.trim(), requestId }, done);
    }
  };
  return (
    <form className="stack card" aria-label={actionTitles[kind]} onSubmit={submit}>
      <h3>
        {actionTitles[kind]}: {formatPrice(order.priceMinor, order.currency)} order of {formatTime(dateOf(order.createTime))}
      </h3>
      {kind === "pay" && (
        <label>
          Payment reference (as your payment system knows it)
          <input value={reference} onChange={(event) => setReference(event.target.value)} required maxLength={128} />
        </label>
      )}
      {kind === "cancel" && (
        <label>
          Why (for the audit log)
          <input value={note} onChange={(event) => setNote(event.target.value)} maxLength={1000} />
        </label>
      )}
      {kind === "refund" && (
        <>
          <label>
            Amount refunded, in minor units of {order.currency}
            <input value={amount} onChange={(event) => setAmount(event.target.value)} inputMode="numeric" required />
          </label>
          <label>
            Reason code
            <select value={reasonCode} onChange={(event) => setReasonCode(event.target.value)}>
              <option value="refund">refund</option>
              <option value="chargeback">chargeback</option>
            </select>
          </label>
          <label>
            Refund reference (as your payment system knows it)
            <input value={reference} onChange={(event) => setReference(event.target.value)} required maxLength={128} />
          </label>
          <p className="muted">The order's credits are clawed back in proportion; what the customer burned already becomes debt.</p>
        </>
      )}
      <div className="actions">
        <button type="button" onClick={onDone}>
          Back
        </button>
        <button type="submit" className={kind === "pay" ? "primary" : "danger"} disabled={pending}>
          {kind === "pay" ? "Record payment" : kind === "cancel" ? "Cancel order" : "Refund"}
        </button>
      </div>
      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
      <ErrorNote error={confirm.error ?? cancel.error ?? refund.error} prefix="Not done" />
    </form>
  );
}

function NewTopUpForm({ customerId }: { customerId: string }) {
  const bundles = useQuery(BillingService.method.listBundles, {});
  const create = useChange(BillingService.method.createTopUp);
  const [bundleId, setBundleId] = useState("");
  const [requestId, setRequestId] = useState(newRequestId);
  const [done, setDone] = useState<string | null>(null);
  const list = bundles.data?.bundles ?? [];
  const chosen = bundleId || list[0]?.bundleId || "";
  if (list.length === 0) return <p className="muted">No bundles on sale: add one under Platform, Bundles.</p>;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    create.mutate(
      { customerId, item: { case: "bundleId", value: chosen }, requestId },
      {
        onSuccess: (response) => {
          setDone(`Opened order ${response.topUp?.orderId}: pending until paid.`);
          setRequestId(newRequestId());
        },
      },
    );
  };
  return (
    <form className="stack" aria-label="Open a top-up" onSubmit={submit}>
      <label>
        Bundle
        <select
          value={chosen}
          onChange={(event) => {
            setBundleId(event.target.value);
            setRequestId(newRequestId());
          }}
        >
          {list.map((bundle) => (
            <option key={bundle.bundleId} value={bundle.bundleId}>
              {bundle.displayName} ({formatPrice(bundle.priceMinor, bundle.currency)})
            </option>
          ))}
        </select>
      </label>
      <button type="submit" disabled={create.isPending}>
        Open a top-up
      </button>
      <ErrorNote error={create.error} prefix="Top-up not opened" />
      {done && <p role="status">{done}</p>}
    </form>
  );
}
