// FailTopUp: the payment of a pending order failed. A plain order fails. A recharge order
// stays open and is asked for again after the next retry delay (the recharge job's
// askRetry); when a payment fails after the last delay, the order fails and its customer's
// auto-recharge is turned off, with an audit record and recharge.failed (disabled true).
// Changes no balance: it takes the order's row lock, then the settings' (no writer takes
// them the other way round).
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { selectTopUp, type TopUpRow } from "../store/billing-store.js";
import type { Tx } from "../store/database.js";
import { disableRecharge, selectRechargeSettings, updateTopUpPaymentFailed } from "../store/recharge-store.js";
import { enqueueWebhookEvents } from "../store/webhook-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { runIdempotent } from "./run-idempotent.js";

/** failTopUp records a failed payment, audited. NotFound TOPUP_NOT_FOUND; FailedPrecondition TOPUP_NOT_PENDING. */
export async function failTopUp(deps: Deps, caller: Caller, idempotency: Idempotency, input: { orderId: string; reason: string }): Promise<TopUpRow> {
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const order = await selectTopUp(tx, input.orderId, "update");
    if (order === null) throw notFound("TOPUP_NOT_FOUND", "order id", input.orderId);
    if (order.state !== "pending") {
      throw new LedgerError("rejected", "TOPUP_NOT_PENDING", `order ${order.orderId} is ${order.state}`, { order_id: order.orderId, state: order.state });
    }
    const delaysMs = deps.recharge?.retryDelaysMs ?? limits.rechargeRetryDelaysMsDefault;
    const delayMs = order.origin === "recharge" ? delaysMs[order.paymentFailures] : undefined;
    const retryAt = delayMs === undefined ? null : new Date(deps.now().getTime() + delayMs);
    const failed = await updateTopUpPaymentFailed(tx, { orderId: order.orderId, reason: input.reason, retryAt });
    assert(failed.paymentFailures === order.paymentFailures + 1, "a failed payment is counted once");
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      action: "fail_top_up",
      target: `customer:${order.customerId}`,
      reason: input.reason,
      details: { old: { order_id: order.orderId, state: order.state }, new: { state: failed.state, payment_failures: failed.paymentFailures, retry_at: retryAt?.toISOString() ?? null } },
    });
    if (order.origin === "recharge") await reportRechargeFailure(tx, failed, input.reason);
    return failed;
  });
}

/** reportRechargeFailure queues recharge.failed and, after the last retry, turns auto-recharge off. Hold the order's lock. */
async function reportRechargeFailure(tx: Tx, order: TopUpRow, reason: string): Promise<void> {
  const disabled = order.state === "failed";
  const key = { customerId: order.customerId, creditTypeId: order.creditTypeId };
  await enqueueWebhookEvents(tx, "recharge.failed", [
    {
      customerId: order.customerId,
      payload: {
        ...key,
        orderId: order.orderId,
        attempt: order.attempt,
        reason,
        disabled,
        retryTime: order.retryAt?.toISOString() ?? null,
      },
    },
  ]);
  if (!disabled) return;
  const settings = await selectRechargeSettings(tx, key, order.createdAt, "update");
  if (settings === null || !settings.enabled) return;
  const disabledReason = `${order.paymentFailures} failed payments of order ${order.orderId}; last: ${reason}`.slice(0, limits.noteLengthMax);
  await disableRecharge(tx, key, disabledReason);
  await insertAuditRecord(tx, {
    actor: "auto-recharge",
    action: "disable_auto_recharge",
    target: `customer:${order.customerId}`,
    reason: "payment_failed",
    details: { old: { enabled: true }, new: { enabled: false, disabled_reason: disabledReason }, credit_type_id: order.creditTypeId, order_id: order.orderId },
  });
}
