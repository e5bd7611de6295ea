// RefundTopUp: a refund or chargeback of a paid order claws back the credits it paid
// for, in proportion to the money refunded: first what is left of the order's lot, then,
// as overdraft debt, what of it was burned already (flagged past the overdraft limit).
// One op of the write path that runs alone: under the balance lock it locks the order,
// and the clawback entries, the refund record and the order's totals commit together.
// A refund reference is recorded once per order: the same refund again changes nothing.
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { planClawback } from "../ledger/plan.js";
import { insertTopUpRefund, selectTopUp, selectTopUpRefundExists, type TopUpRow, type TopUpState } from "../store/billing-store.js";
import { mapDriverErrors } from "../store/database.js";
import type { EntryRow } from "../store/entry-store.js";
import { enqueueWebhookEvents } from "../store/webhook-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { mismatch, topUpEventData } from "./confirm-top-up.js";
import type { PlanContext, WriteOp } from "./write-op.js";

/**
 * RefundAmount is how much a refund is: this much more (RefundTopUp), or up to this much
 * more, clamped to what is left to refund (a chargeback, which may follow a refund), or a
 * refunded total (Stripe's charge.refunded), the difference from what was refunded
 * decided under the order's lock, so that two deliveries never count one refund twice.
 */
export type RefundAmount = { kind: "more" | "at_most" | "total"; minor: bigint };

/** RefundTopUpInput is a validated RefundTopUp request. */
export interface RefundTopUpInput {
  orderId: string;
  amount: RefundAmount;
  currency: string;
  reasonCode: string;
  paymentReference: string;
}

/** RefundTopUpResult is the order after the refund and the clawback entries written. */
export interface RefundTopUpResult {
  topUp: TopUpRow;
  entries: EntryRow[];
}

/** refundTopUp records a refund and claws back its credits. NotFound TOPUP_NOT_FOUND; see refundOp for the refusals. */
export async function refundTopUp(deps: Deps, caller: Caller, idempotency: Idempotency, input: RefundTopUpInput): Promise<RefundTopUpResult> {
  assert(input.amount.minor > 0n, "a refund is decoded");
  const order = await mapDriverErrors(() => selectTopUp(deps.pool, input.orderId, "none"));
  if (order === null) throw notFound("TOPUP_NOT_FOUND", "order id", input.orderId);
  // A paid order's lot never changes: an order not paid when read is refused (a refund that races its confirmation may be retried).
  if (order.grantId === null) throw notPaid(order);
  return deps.writes.submit(refundOp(caller, idempotency, input, order, order.grantId));
}

function notPaid(order: TopUpRow): LedgerError {
  return new LedgerError("rejected", "TOPUP_NOT_PAID", `order ${order.orderId} is ${order.state}, not paid`, { order_id: order.orderId, state: order.state });
}

/** refundOp is one refund as the write path runs it. */
function refundOp(caller: Caller, idempotency: Idempotency, input: RefundTopUpInput, order: TopUpRow, grantId: string): WriteOp<RefundTopUpResult> {
  const key = { customerId: order.customerId, creditTypeId: order.creditTypeId };
  let locked: TopUpRow | null = null;
  let recorded = false;
  let refund: Parameters<typeof insertTopUpRefund>[1] | null = null;
  return {
    lane: { customerId: order.customerId },
    weight: 1,
    claim: { caller, idempotency },
    request: () => {},
    prepare: () => ({ keys: [key], customerIds: [key.customerId], pinnedGrantIds: [grantId] }),
    load: async (tx) => {
      refund = null;
      locked = await selectTopUp(tx, input.orderId, "update");
      recorded = await selectTopUpRefundExists(tx, input.orderId, input.paymentReference);
    },
    plan: (ctx) => {
      assert(locked !== null, "an order is never deleted");
      const current: TopUpRow = locked;
      if (recorded) return { value: { topUp: current, entries: [] } };
      if (current.currency !== input.currency) throw mismatch(current, input.amount.minor, input.currency);
      const amountMinor = amountOf(input.amount, current);
      if (amountMinor <= 0n) return { value: { topUp: current, entries: [] } };
      const refundedMinor = current.refundedMinor + amountMinor;
      if (refundedMinor > current.priceMinor) {
        throw new LedgerError("rejected", "REFUND_EXCEEDS_PAYMENT", `order ${current.orderId} was paid ${current.priceMinor}, of which ${current.refundedMinor} refunded already`, {
          order_id: current.orderId,
          refundable_minor: (current.priceMinor - current.refundedMinor).toString(),
        });
      }
      const { fromLot, asDebt, entries } = clawBack(ctx, caller, idempotency, input, current, refundedMinor);
      refund = { ...input, amountMinor, creditsFromLot: fromLot, creditsAsDebt: asDebt, actor: caller.keyId };
      const state: TopUpState = refundedMinor === current.priceMinor ? "refunded" : "partially_refunded";
      const topUp = { ...current, state, refundedMinor, clawedBackCredits: current.clawedBackCredits + fromLot, debtCredits: current.debtCredits + asDebt };
      return { finish: (written) => ({ topUp, entries: entries.map(written.entryRowOf) }) };
    },
    store: async (tx) => {
      // A refund recorded already writes nothing.
      if (refund === null) return;
      const row = await insertTopUpRefund(tx, refund);
      assert(row.refundedMinor <= row.priceMinor, "refunds never exceed the payment");
      await enqueueWebhookEvents(tx, "topup.refunded", [
        {
          customerId: row.customerId,
          payload: {
            ...topUpEventData(row),
            refund: {
              paymentReference: refund.paymentReference,
              amountMinor: refund.amountMinor.toString(),
              reasonCode: refund.reasonCode,
              creditsFromLot: refund.creditsFromLot.toString(),
              creditsAsDebt: refund.creditsAsDebt.toString(),
            },
          },
        },
      ]);
    },
  };
}

/** amountOf is what a refund adds to the order's refunded total, given the order as locked; 0 or less: nothing. */
function amountOf(amount: RefundAmount, order: TopUpRow): bigint {
  if (amount.kind === "more") return amount.minor;
  if (amount.kind === "total") return amount.minor - order.refundedMinor;
  const left = order.priceMinor - order.refundedMinor;
  return amount.minor < left ? amount.minor : left;
}

/**
 * clawBack plans the credits a refund takes back: the order's credits times the refunded
 * total over the price, rounded down, less what earlier refunds took (so a full refund
 * takes them all), within what the lot has left or had used.
 */
function clawBack(ctx: PlanContext, caller: Caller, idempotency: Idempotency, input: RefundTopUpInput, order: TopUpRow, refundedMinor: bigint) {
  assert(order.grantId !== null && order.state !== "pending" && order.state !== "cancelled", "a clawback is of a paid order");
  const key = { customerId: order.customerId, creditTypeId: order.creditTypeId };
  const target = (order.credits * refundedMinor) / order.priceMinor;
  const credits = target - order.clawedBackCredits - order.debtCredits;
  const slot = ctx.balance(key);
  assert(slot.kind === "loaded", "a paid order's balance exists");
  if (credits <= 0n) return { fromLot: 0n, asDebt: 0n, entries: [] };
  const planned = planClawback(
    slot.state,
    { grantId: order.grantId, lotAmount: order.credits, credits, fromLotBefore: order.clawedBackCredits, asDebtBefore: order.debtCredits },
    ctx.now.getTime(),
  );
  const cause = { reservationId: null, requestId: idempotency.requestId, actor: caller.keyId, reasonCode: input.reasonCode, effectiveAt: ctx.now };
  const entries = ctx.draft.change(key, planned, cause).filter((entry) => entry.kind === "clawback");
  ctx.draft.audit({
    actor: caller.keyId,
    requestId: caller.requestId,
    action: "refund_top_up",
    target: `customer:${order.customerId}`,
    reason: input.reasonCode,
    details: {
      old: { order_id: order.orderId, state: order.state, refunded_minor: order.refundedMinor.toString() },
      new: { refunded_minor: refundedMinor.toString(), credits_from_lot: planned.fromLot.toString(), credits_as_debt: planned.asDebt.toString() },
      payment_reference: input.paymentReference,
      over_limit: planned.overLimit,
    },
  });
  return { fromLot: planned.fromLot, asDebt: planned.asDebt, entries };
}
