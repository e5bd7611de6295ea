// ConfirmTopUp: record an order's payment and credit its lot, exactly once. One op of the
// write path that runs alone: under the customer's balance lock it locks the order row,
// decides, and the lot, its grant entry, the order marked paid and the audit record
// commit in one transaction. A confirmation with the order's own payment reference
// after it was paid answers the paid order and credits nothing more.
import { randomUUID } from "node:crypto";
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { planGrant } from "../ledger/plan.js";
import { limits } from "../limits.js";
import { selectTopUp, selectTopUpByPaymentReference, type TopUpRow, updateTopUpPaid } from "../store/billing-store.js";
import { isUniqueViolation, mapDriverErrors } from "../store/database.js";
import { enqueueWebhookEvents } from "../store/webhook-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { loadedState, lotOf, type PlanContext, type WriteOp } from "./write-op.js";

/** ConfirmTopUpInput is a validated ConfirmTopUp request. */
export interface ConfirmTopUpInput {
  orderId: string;
  paymentReference: string;
  amountMinor: bigint;
  currency: string;
}

/** topUpReasonCode is the reason code of a paid order's lot and grant entry. */
export const topUpReasonCode = "topup";

/**
 * costBasisMicrosOf is what one credit cost, in minor units per credit scaled by 10^6
 * (Grant's cost_basis_micros), rounded down: price_minor * 10^6 / credits.
 */
export function costBasisMicrosOf(priceMinor: bigint, credits: bigint): bigint {
  assert(priceMinor > 0n && credits > 0n, "a cost basis has a price and credits");
  return (priceMinor * 1_000_000n) / credits;
}

/** confirmTopUp marks an order paid and credits it. NotFound TOPUP_NOT_FOUND; see confirmOp for the refusals. */
export async function confirmTopUp(deps: Deps, caller: Caller, idempotency: Idempotency, input: ConfirmTopUpInput): Promise<TopUpRow> {
  // An order's customer and credit type never change: they may be read before the locks.
  const order = await mapDriverErrors(() => selectTopUp(deps.pool, input.orderId, "none"));
  if (order === null) throw notFound("TOPUP_NOT_FOUND", "order id", input.orderId);
  return deps.writes.submit(confirmOp(caller, idempotency, input, order));
}

/** confirmOp is one confirmation as the write path runs it. */
function confirmOp(caller: Caller, idempotency: Idempotency, input: ConfirmTopUpInput, order: TopUpRow): WriteOp<TopUpRow> {
  const key = { customerId: order.customerId, creditTypeId: order.creditTypeId };
  let locked: TopUpRow | null = null;
  let paidElsewhere: TopUpRow | null = null;
  let paid: { orderId: string; paymentReference: string; grantId: string } | null = null;
  return {
    lane: { customerId: order.customerId },
    weight: 1,
    claim: { caller, idempotency },
    request: (reads) => void reads.creditTypeIds.push(order.creditTypeId),
    prepare: () => ({ keys: [key], customerIds: [key.customerId], createCustomers: [key.customerId], createBalances: [key] }),
    load: async (tx) => {
      paid = null;
      // After the balance lock, as every change of a top-up's balance takes them.
      locked = await selectTopUp(tx, input.orderId, "update");
      paidElsewhere = await selectTopUpByPaymentReference(tx, input.paymentReference);
    },
    plan: (ctx) => {
      assert(locked !== null, "an order is never deleted");
      const current: TopUpRow = locked;
      if (current.state !== "pending") return { value: alreadyDecided(current, input) };
      if (current.currency !== input.currency || current.priceMinor !== input.amountMinor) throw mismatch(current, input.amountMinor, input.currency);
      if (paidElsewhere !== null && paidElsewhere.orderId !== current.orderId) {
        throw new LedgerError("rejected", "PAYMENT_REFERENCE_USED", `payment reference ${JSON.stringify(input.paymentReference)} paid another order`, {
          payment_reference: input.paymentReference,
        });
      }
      // An order credited when it opened is paid without a second lot.
      const grantId = current.grantId ?? creditLot(ctx, { actor: caller.keyId, requestId: idempotency.requestId, callRequestId: caller.requestId, order: current, action: "confirm_top_up" });
      if (current.grantId !== null) auditPaidOnCreation(ctx, caller, current);
      paid = { orderId: current.orderId, paymentReference: input.paymentReference, grantId };
      return { value: { ...current, state: "paid", paymentReference: input.paymentReference, grantId, paidAt: ctx.recordedAt, unpaidCredits: 0n } };
    },
    store: async (tx) => {
      // A confirmation of an order paid already (same reference) writes nothing.
      if (paid === null) return;
      const row = await updateTopUpPaid(tx, paid).catch((error: unknown) => {
        // Another customer's order took this payment reference meanwhile (its balance lock
        // is not ours): run again, and the reference is then seen as used.
        if (isUniqueViolation(error, "topup_orders_payment_reference_key")) {
          throw new LedgerError("conflict", "CONCURRENT_UPDATE", "a concurrent confirmation used this payment reference; retry with the same request id", {}, { cause: error });
        }
        throw error;
      });
      assert(row.grantId === paid.grantId, "the order names its lot");
      await enqueueWebhookEvents(tx, "topup.paid", [{ customerId: row.customerId, payload: topUpEventData(row) }]);
    },
  };
}

/** topUpEventData is an order as the topup.* webhook events carry it: amounts as decimal strings. */
export function topUpEventData(order: TopUpRow): Record<string, unknown> {
  return {
    orderId: order.orderId,
    creditTypeId: order.creditTypeId,
    credits: order.credits.toString(),
    currency: order.currency,
    priceMinor: order.priceMinor.toString(),
    bundleId: order.bundleId ?? "",
    bundleVersion: order.bundleVersion ?? 0,
    paymentReference: order.paymentReference ?? "",
    grantId: order.grantId ?? "",
    state: order.state,
    refundedMinor: order.refundedMinor.toString(),
    clawedBackCredits: order.clawedBackCredits.toString(),
    debtCredits: order.debtCredits.toString(),
  };
}

/** alreadyDecided answers a confirmation of an order that is no longer pending. */
function alreadyDecided(order: TopUpRow, input: ConfirmTopUpInput): TopUpRow {
  if (order.paymentReference === input.paymentReference) return order;
  if (order.paymentReference !== null) {
    throw new LedgerError("rejected", "TOPUP_ALREADY_PAID", `order ${order.orderId} was paid with another payment reference`, { order_id: order.orderId });
  }
  throw new LedgerError("rejected", "TOPUP_NOT_PENDING", `order ${order.orderId} is ${order.state}`, { order_id: order.orderId, state: order.state });
}

/** mismatch is the refusal of a payment (or refund) whose amount or currency is not the order's. */
export function mismatch(order: TopUpRow, amountMinor: bigint, currency: string): LedgerError {
  return new LedgerError("rejected", "PAYMENT_MISMATCH", `order ${order.orderId} costs ${order.priceMinor} ${order.currency}, not ${amountMinor} ${currency}`, {
    order_id: order.orderId,
    price_minor: order.priceMinor.toString(),
    currency: order.currency,
  });
}

/** auditPaidOnCreation records the payment of an order whose lot was credited when it opened. */
function auditPaidOnCreation(ctx: PlanContext, caller: Caller, order: TopUpRow): void {
  ctx.draft.audit({
    actor: caller.keyId,
    requestId: caller.requestId,
    action: "confirm_top_up",
    target: `customer:${order.customerId}`,
    reason: topUpReasonCode,
    details: { old: { order_id: order.orderId, state: order.state, unpaid_credits: order.unpaidCredits.toString() }, new: { state: "paid", grant_id: order.grantId, unpaid_credits: "0" } },
  });
}

/**
 * creditLot plans an order's lot: source purchase, the price as its cost basis, lasting
 * the bundle's expiry from now, with its audit record (action). requestId is the lot's
 * idempotency request id; callRequestId the request id of the call it is credited in (the
 * audit record's), null when a job credits it. Returns the lot's id.
 */
export function creditLot(ctx: PlanContext, credit: { actor: string; requestId: string; callRequestId: string | null; order: TopUpRow; action: string }): string {
  const { order } = credit;
  const caller = { keyId: credit.actor, requestId: credit.callRequestId };
  const idempotency = { requestId: credit.requestId };
  const key = { customerId: order.customerId, creditTypeId: order.creditTypeId };
  const before = loadedState(ctx.balance(key), key);
  const grantId = randomUUID();
  const expiresAt = order.creditExpirySeconds === null ? null : new Date(ctx.now.getTime() + Number(order.creditExpirySeconds) * 1000);
  const lot = lotOf({ grantId, amount: order.credits, priority: limits.purchasedLotPriority, effectiveAt: ctx.now, expiresAt }, ctx.nextLotSeq());
  const planned = planGrant({ ...before, lots: [...before.lots, lot] }, grantId, ctx.now.getTime());
  const costBasisMicros = costBasisMicrosOf(order.priceMinor, order.credits);
  ctx.draft.newLot({
    ...key,
    grantId,
    source: "purchase",
    amount: order.credits,
    remaining: order.credits,
    held: 0n,
    priority: limits.purchasedLotPriority,
    effectiveAt: ctx.now,
    expiresAt,
    costBasisMicros,
    reasonCode: topUpReasonCode,
    note: `top-up ${order.orderId}`,
    requestId: idempotency.requestId,
    actor: caller.keyId,
    activationDue: false,
  });
  ctx.draft.change(key, planned, { reservationId: null, requestId: idempotency.requestId, actor: caller.keyId, reasonCode: topUpReasonCode, effectiveAt: ctx.now });
  ctx.draft.audit({
    actor: caller.keyId,
    requestId: caller.requestId,
    action: credit.action,
    target: `customer:${order.customerId}`,
    reason: topUpReasonCode,
    details: {
      old: { order_id: order.orderId, state: order.state },
      new: { state: credit.action === "confirm_top_up" ? "paid" : order.state, grant_id: grantId, credits: order.credits.toString(), cost_basis_micros: costBasisMicrosOf(order.priceMinor, order.credits).toString() },
      price_minor: order.priceMinor.toString(),
      currency: order.currency,
    },
  });
  return grantId;
}
