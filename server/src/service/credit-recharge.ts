// Credit on creation: a recharge order whose settings say so is credited when it opens,
// before its payment, and tracks what it credited and is not paid for (unpaid_credits).
// - creditOnCreationOp writes the lot: one op of the write path that runs alone; under the
//   balance lock it locks the order and credits it unless it was credited (or decided)
//   already, so the recharge job may run it any number of times, on any replica.
// - unwindOp ends such an order that will not be paid (its final failed payment, or its
//   cancellation): what is left of its unpaid credits is clawed back from the lot, and
//   what was burned of them becomes debt (flagged past the overdraft limit), as a refund
//   does (refund-top-up.ts).
import { LedgerError } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { planClawback } from "../ledger/plan.js";
import { selectTopUp, type TopUpRow } from "../store/billing-store.js";
import { selectRechargeSettings, updateTopUpCreditedOnCreation, updateTopUpUnwound } from "../store/recharge-store.js";
import type { Tx } from "../store/database.js";
import type { Caller, Idempotency } from "./context.js";
import { creditLot } from "./confirm-top-up.js";
import { rechargeActor } from "./open-recharge.js";
import type { PlanContext, WriteOp } from "./write-op.js";

/** creditOnCreationOp credits an order to credit on creation, once; true when this run credited it. */
export function creditOnCreationOp(order: TopUpRow): WriteOp<boolean> {
  const key = { customerId: order.customerId, creditTypeId: order.creditTypeId };
  let locked: TopUpRow | null = null;
  let grantId: string | null = null;
  return {
    lane: { customerId: order.customerId },
    weight: 1,
    request: (reads) => void reads.creditTypeIds.push(order.creditTypeId),
    prepare: () => ({ keys: [key], customerIds: [key.customerId], createCustomers: [key.customerId], createBalances: [key] }),
    load: async (tx) => {
      grantId = null;
      locked = await selectTopUp(tx, order.orderId, "update");
    },
    plan: (ctx) => {
      assert(locked !== null && locked.creditOnCreation, "an order to credit on creation is never deleted");
      if (locked.state !== "pending" || locked.grantId !== null) return { value: false };
      grantId = creditLot(ctx, { actor: rechargeActor, requestId: `recharge:${locked.orderId}`, callRequestId: null, order: locked, action: "credit_on_creation" });
      return { value: true };
    },
    store: async (tx) => {
      if (grantId === null) return;
      const row = await updateTopUpCreditedOnCreation(tx, { orderId: order.orderId, grantId });
      assert(row.unpaidCredits === row.credits, "a credited order owes all its credits");
    },
  };
}

/** Unwinding is why an order credited on creation ends unpaid. */
export interface Unwinding {
  state: "failed" | "cancelled";
  /** the failed payment's reason, or the cancellation's note. */
  reason: string;
  /** after it is stored, under the order's lock (the failure's events, turning auto-recharge off). */
  after?: (tx: Tx, order: TopUpRow) => Promise<void>;
}

/** unwindOp fails or cancels a pending order credited on creation and claws its unpaid credits back. FailedPrecondition TOPUP_NOT_PENDING. */
export function unwindOp(caller: Caller, idempotency: Idempotency, order: TopUpRow, unwinding: Unwinding): WriteOp<TopUpRow> {
  assert(order.grantId !== null, "an order unwound was credited on creation");
  const grantId = order.grantId;
  const key = { customerId: order.customerId, creditTypeId: order.creditTypeId };
  let locked: TopUpRow | null = null;
  let clawed: { fromLot: bigint; asDebt: bigint } | null = null;
  return {
    lane: { customerId: order.customerId },
    weight: 1,
    claim: { caller, idempotency },
    request: () => {},
    prepare: () => ({ keys: [key], customerIds: [key.customerId], pinnedGrantIds: [grantId] }),
    load: async (tx) => {
      clawed = null;
      // Balance, settings, order: the order every writer takes these locks in.
      if (order.origin === "recharge") await selectRechargeSettings(tx, key, order.createdAt, "update");
      locked = await selectTopUp(tx, order.orderId, "update");
    },
    plan: (ctx) => {
      assert(locked !== null, "an order is never deleted");
      const current: TopUpRow = locked;
      if (current.state !== "pending") {
        throw new LedgerError("rejected", "TOPUP_NOT_PENDING", `order ${current.orderId} is ${current.state}`, { order_id: current.orderId, state: current.state });
      }
      clawed = clawBackUnpaid(ctx, caller, idempotency, current, unwinding);
      const failed = unwinding.state === "failed";
      const topUp: TopUpRow = {
        ...current,
        state: unwinding.state,
        failureReason: failed ? unwinding.reason : current.failureReason,
        paymentFailures: current.paymentFailures + (failed ? 1 : 0),
        retryAt: null,
        clawedBackCredits: current.clawedBackCredits + clawed.fromLot,
        debtCredits: current.debtCredits + clawed.asDebt,
        unpaidCredits: 0n,
      };
      return { value: topUp };
    },
    store: async (tx) => {
      assert(clawed !== null, "an unwound order was planned");
      const row = await updateTopUpUnwound(tx, {
        orderId: order.orderId,
        state: unwinding.state,
        reason: unwinding.reason,
        creditsFromLot: clawed.fromLot,
        creditsAsDebt: clawed.asDebt,
        failed: unwinding.state === "failed",
      });
      assert(row.unpaidCredits === 0n && row.state === unwinding.state, "an unwound order owes nothing");
      await unwinding.after?.(tx, row);
    },
  };
}

/** clawBackUnpaid plans the clawback of an order's unpaid credits: from its lot what is left, the rest as debt. */
function clawBackUnpaid(ctx: PlanContext, caller: Caller, idempotency: Idempotency, order: TopUpRow, unwinding: Unwinding) {
  assert(order.grantId !== null, "an unwound order has its lot");
  const credits = order.unpaidCredits;
  const slot = ctx.balance({ customerId: order.customerId, creditTypeId: order.creditTypeId });
  assert(slot.kind === "loaded", "a credited order's balance exists");
  const key = { customerId: order.customerId, creditTypeId: order.creditTypeId };
  const reasonCode = unwinding.state === "failed" ? "payment_failed" : "cancelled";
  let fromLot = 0n;
  let asDebt = 0n;
  let overLimit = false;
  if (credits > 0n) {
    const planned = planClawback(
      slot.state,
      { grantId: order.grantId, lotAmount: order.credits, credits, fromLotBefore: order.clawedBackCredits, asDebtBefore: order.debtCredits },
      ctx.now.getTime(),
    );
    ctx.draft.change(key, planned, { reservationId: null, requestId: idempotency.requestId, actor: caller.keyId, reasonCode, effectiveAt: ctx.now });
    ({ fromLot, asDebt, overLimit } = planned);
  }
  ctx.draft.audit({
    actor: caller.keyId,
    requestId: caller.requestId,
    action: unwinding.state === "failed" ? "fail_top_up" : "cancel_top_up",
    target: `customer:${order.customerId}`,
    reason: unwinding.reason,
    details: {
      old: { order_id: order.orderId, state: order.state, unpaid_credits: order.unpaidCredits.toString() },
      new: { state: unwinding.state, credits_from_lot: fromLot.toString(), credits_as_debt: asDebt.toString() },
      over_limit: overLimit,
    },
  });
  return { fromLot, asDebt };
}
