// The customer's purchase flow: the bundles on sale, and "Buy" opens an order for the
// customer's own account (CreateTopUp, the latest version of the bundle) and hands it to
// the vendor's checkout page, which takes the payment and tells Burndown (its backend's
// ConfirmTopUp, or Stripe's webhook with the order id in metadata.burndown_order_id).
// The view then shows the order pending until the payment arrives, and the credits as
// soon as it does. Burndown never sees the card.
import { useQuery } from "@connectrpc/connect-query";
import { BillingService, type Bundle, type TopUp, TopUpState } from "@burndown/sdk/gen/burndown/v1/billing_pb.js";
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { newRequestId } from "../api.js";
import { dateOf, formatAmount, formatPrice, formatTime } from "../format.js";
import { useChange } from "../mutations.js";
import { ErrorNote, Section, useScales } from "../ui.js";

/** checkoutLink puts an order into the vendor's checkout URL template ({order_id}, {customer_id}). */
export function checkoutLink(template: string, order: TopUp): string {
  return template.replaceAll("{order_id}", encodeURIComponent(order.orderId)).replaceAll("{customer_id}", encodeURIComponent(order.customerId));
}

const stateWords: Record<TopUpState, string> = {
  [TopUpState.UNSPECIFIED]: "unknown",
  [TopUpState.PENDING]: "waiting for payment",
  [TopUpState.PAID]: "paid",
  [TopUpState.CANCELLED]: "cancelled",
  [TopUpState.PARTIALLY_REFUNDED]: "partly refunded",
  [TopUpState.REFUNDED]: "refunded",
  [TopUpState.FAILED]: "payment failed",
};

/** BuyCredits lists the bundles on sale; buying one opens an order and links to the checkout. */
export function BuyCredits({ customerId, checkoutUrl }: { customerId: string; checkoutUrl: string }) {
  // What the customer's plan offers (the whole catalog when it offers nothing in particular).
  const bundles = useQuery(BillingService.method.listBundles, { customerId });
  const create = useChange(BillingService.method.createTopUp);
  const scaleOf = useScales();
  const [opened, setOpened] = useState<TopUp | null>(null);
  const buy = (bundle: Bundle) => {
    setOpened(null);
    create.mutate({ customerId, item: { case: "bundleId", value: bundle.bundleId }, requestId: newRequestId() }, { onSuccess: (response) => setOpened(response.topUp ?? null) });
  };
  const list = bundles.data?.bundles ?? [];
  if (bundles.error) return <ErrorNote error={bundles.error} prefix="Could not show what is on sale" />;
  if (list.length === 0) return null;
  return (
    <div className="buy-credits">
      <h3>Buy credits</h3>
      <ul className="bundle-offers" aria-label="Credits on sale">
        {list.map((bundle) => {
          const scale = scaleOf(bundle.creditTypeId);
          return (
            <li key={bundle.bundleId} data-bundle={bundle.bundleId}>
              <strong>{bundle.displayName}</strong>{" "}
              <span>
                {formatAmount(bundle.credits, scale)} {bundle.creditTypeId}
                {bundle.bonusCredits > 0n ? ` + ${formatAmount(bundle.bonusCredits, scale)} bonus` : ""}
              </span>{" "}
              <span className="price">{formatPrice(bundle.priceMinor, bundle.currency)}</span>{" "}
              <button type="button" disabled={create.isPending} onClick={() => buy(bundle)} aria-label={`Buy ${bundle.displayName}`}>
                Buy
              </button>
            </li>
          );
        })}
      </ul>
      <ErrorNote error={create.error} prefix="Could not start the purchase" />
      {opened && (
        <p role="status" className="checkout">
          Your order for {formatAmount(opened.credits, scaleOf(opened.creditTypeId))} {opened.creditTypeId} is ready.{" "}
          <a href={checkoutLink(checkoutUrl, opened)} target="_blank" rel="noopener noreferrer">
            Pay {formatPrice(opened.priceMinor, opened.currency)}
          </a>{" "}
          — your credits appear here as soon as the payment is confirmed.
        </p>
      )}
    </div>
  );
}

/** Purchases lists the customer's own orders, refreshed every few seconds while one waits for its payment. */
export function Purchases({ customerId }: { customerId: string }) {
  const orders = useQuery(
    BillingService.method.listTopUps,
    { customerId, pageSize: 10 },
    { refetchInterval: (query) => (query.state.data?.topUps.some((order) => order.state === TopUpState.PENDING) ? 3_000 : false) },
  );
  const scaleOf = useScales();
  const list = orders.data?.topUps ?? [];
  // An order that stops waiting has credited (or will never credit) the balance: show it now.
  const queryClient = useQueryClient();
  const pending = list.filter((order) => order.state === TopUpState.PENDING).length;
  const pendingBefore = useRef(pending);
  useEffect(() => {
    if (pending < pendingBefore.current) void queryClient.invalidateQueries();
    pendingBefore.current = pending;
  }, [pending, queryClient]);
  if (orders.error) return <ErrorNote error={orders.error} prefix="Could not list your purchases" />;
  if (list.length === 0) return null;
  return (
    <Section title="Your purchases">
      <table aria-label="Your purchases">
        <thead>
          <tr>
            <th scope="col">Ordered</th>
            <th scope="col" className="num">Credits</th>
            <th scope="col" className="num">Price</th>
            <th scope="col">State</th>
          </tr>
        </thead>
        <tbody>
          {list.map((order) => (
            <tr key={order.orderId} data-order={order.orderId}>
              <td>{formatTime(dateOf(order.createTime))}</td>
              <td className="num">
                {formatAmount(order.credits, scaleOf(order.creditTypeId))} {order.creditTypeId}
              </td>
              <td className="num">{formatPrice(order.priceMinor, order.currency)}</td>
              <td>{stateWords[order.state]}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}
