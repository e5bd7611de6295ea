// CreateTopUp: open a pending order for a customer, from a bundle version or a plain
// amount at a price. Nothing is credited until the order's payment is confirmed.
import { randomUUID } from "node:crypto";
import { notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { insertTopUp, selectBundle, type TopUpRow } from "../store/billing-store.js";
import { selectCreditType } from "../store/catalog-store.js";
import type { Tx } from "../store/database.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { runIdempotent } from "./run-idempotent.js";

/** TopUpItem is what an order sells: a bundle (latest version when version is null) or a plain amount. */
export type TopUpItem =
  | { kind: "bundle"; bundleId: string; version: number | null }
  | { kind: "amount"; creditTypeId: string; credits: bigint; currency: string; priceMinor: bigint };

/** createTopUp opens a pending order, audited. NotFound BUNDLE_NOT_FOUND or CREDIT_TYPE_NOT_FOUND. */
export async function createTopUp(deps: Deps, caller: Caller, idempotency: Idempotency, input: { customerId: string; item: TopUpItem }): Promise<TopUpRow> {
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const terms = await termsOf(tx, input.item);
    const order = await insertTopUp(tx, { orderId: randomUUID(), customerId: input.customerId, ...terms, createdBy: caller.keyId });
    assert(order.state === "pending" && order.credits > 0n, "an order is created pending");
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "create_top_up",
      target: `customer:${input.customerId}`,
      reason: "",
      details: {
        old: null,
        new: {
          order_id: order.orderId,
          bundle_id: order.bundleId,
          bundle_version: order.bundleVersion,
          credit_type_id: order.creditTypeId,
          credits: order.credits.toString(),
          currency: order.currency,
          price_minor: order.priceMinor.toString(),
        },
      },
    });
    return order;
  });
}

/** termsOf resolves what an order sells into its figures: a bundle's credits include its bonus. */
async function termsOf(tx: Tx, item: TopUpItem) {
  if (item.kind === "bundle") {
    const bundle = await selectBundle(tx, item.bundleId, item.version);
    if (bundle === null) throw notFound("BUNDLE_NOT_FOUND", "bundle id", item.version === null ? item.bundleId : `${item.bundleId}@${item.version}`);
    return {
      bundleId: bundle.bundleId,
      bundleVersion: bundle.version,
      creditTypeId: bundle.creditTypeId,
      credits: bundle.credits + bundle.bonusCredits,
      currency: bundle.currency,
      priceMinor: bundle.priceMinor,
      creditExpirySeconds: bundle.creditExpirySeconds,
    };
  }
  if ((await selectCreditType(tx, item.creditTypeId)) === null) throw notFound("CREDIT_TYPE_NOT_FOUND", "credit type id", item.creditTypeId);
  return { bundleId: null, bundleVersion: null, creditTypeId: item.creditTypeId, credits: item.credits, currency: item.currency, priceMinor: item.priceMinor, creditExpirySeconds: null };
}
