// A customer's top-up orders: what they bought (or were offered), in which state, paid by
// which payment and what was refunded and clawed back; and a form that opens a pending
// order from a bundle for the customer to pay. Payment confirms it (the vendor's backend
// or Stripe), never this screen.
import { useQuery } from "@connectrpc/connect-query";
import { BillingService } from "@burndown/sdk/gen/burndown/v1/billing_pb.js";
import { TopUpOrigin, TopUpState } from "@burndown/sdk/gen/burndown/v1/billing_pb.js";
import { type FormEvent, useState } from "react";
import { newRequestId } from "../api.js";
import { dateOf, formatAmount, formatTime } from "../format.js";
import { useChange } from "../mutations.js";
import { ErrorNote, Loading, Section, useScales } from "../ui.js";
import { formatPrice } from "./platform/BundlesPage.js";

const stateNames: Record<TopUpState, string> = {
  [TopUpState.UNSPECIFIED]: "unknown",
  [TopUpState.PENDING]: "pending",
  [TopUpState.PAID]: "paid",
  [TopUpState.CANCELLED]: "cancelled",
  [TopUpState.PARTIALLY_REFUNDED]: "partially refunded",
  [TopUpState.REFUNDED]: "refunded",
  [TopUpState.FAILED]: "failed",
};

/** TopUps lists a customer's orders, newest first, and opens new ones from bundles. */
export function TopUps({ customerId }: { customerId: string }) {
  const orders = useQuery(BillingService.method.listTopUps, { customerId, pageSize: 50 });
  const scaleOf = useScales();
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
              <th scope="col">Origin</th>
              <th scope="col">Failed payments</th>
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
                  <td>
                    {order.origin === TopUpOrigin.RECHARGE ? `auto-recharge, attempt ${order.attempt}` : ""}
                    {order.unpaidCredits > 0n ? `, ${formatAmount(order.unpaidCredits, scale)} credited unpaid` : ""}
                  </td>
                  <td>{failures(order.paymentFailures, order.failureReason, dateOf(order.retryTime))}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <NewTopUpForm customerId={customerId} />
    </Section>
  );
}

/** failures says how many payments failed, the last reason, and when the order is asked for again. */
function failures(count: number, reason: string, retryAt: Date | undefined): string {
  if (count === 0) return "";
  return `${count}: ${reason}${retryAt === undefined ? "" : `, retry ${formatTime(retryAt)}`}`;
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
