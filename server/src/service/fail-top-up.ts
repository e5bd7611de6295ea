// FailTopUp: the payment of a pending order failed. A plain order fails. A recharge order
// stays open and is asked for again after the next retry delay (the recharge job's
// askRetry); when a payment fails after the last delay, the order fails and its customer's
// auto-recharge is turned off, with an audit record and recharge.failed (disabled true).
// Changes no balance: it takes the settings' row lock (of a recharge order), then the
// order's: the order every writer takes them in (balance, settings, order). The last failure of an order credited on creation does: it
// claws the credits back through the write path (credit-recharge.ts).
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { selectTopUp, type TopUpRow } from "../store/billing-store.js";
import { mapDriverErrors, type Tx } from "../store/database.js";
import { disableRecharge, selectRechargeSettings, updateTopUpPaymentFailed } from "../store/recharge-store.js";
import { enqueueWebhookEvents } from "../store/webhook-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { unwindOp } from "./credit-recharge.js";
import { runIdempotent } from "./run-idempotent.js";

/** failTopUp records a failed payment, audited. NotFound TOPUP_NOT_FOUND; FailedPrecondition TOPUP_NOT_PENDING. */
export async function failTopUp(deps: Deps, caller: Caller, idempotency: Idempotency, input: { orderId: string; reason: string }): Promise<TopUpRow> {
  const read = await mapDriverErrors(() => selectTopUp(deps.pool, input.orderId, "none"));
  if (read === null) throw notFound("TOPUP_NOT_FOUND", "order id", input.orderId);
  // The last failure of an order credited on creation claws its credits back: the write path's job.
  if (read.state === "pending" && read.grantId !== null && retryDelayMs(deps, read) === undefined) {
    const after = (tx: Tx, row: TopUpRow) => reportRechargeFailure(tx, row, input.reason, caller.requestId);
    return deps.writes.submit(unwindOp(caller, idempotency, read, { state: "failed", reason: input.reason, after }));
  }
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    // The settings' lock before the order's, as the recharge job takes them (it opens orders under the settings' lock).
    if (read.origin === "recharge") await selectRechargeSettings(tx, { customerId: read.customerId, creditTypeId: read.creditTypeId }, read.createdAt, "update");
    const order = await selectTopUp(tx, input.orderId, "update");
    if (order === null) throw notFound("TOPUP_NOT_FOUND", "order id", input.orderId);
    if (order.state !== "pending") {
      throw new LedgerError("rejected", "TOPUP_NOT_PENDING", `order ${order.orderId} is ${order.state}`, { order_id: order.orderId, state: order.state });
    }
    const delayMs = retryDelayMs(deps, order);
    if (order.grantId !== null && delayMs === undefined) {
      // A failure reported meanwhile made this one the last: run again, to claw back.
      throw new LedgerError("conflict", "CONCURRENT_UPDATE", "a concurrent failure report changed the order; retry with the same request id", {});
    }
    const retryAt = delayMs === undefined ? null : new Date(deps.now().getTime() + delayMs);
    const failed = await updateTopUpPaymentFailed(tx, { orderId: order.orderId, reason: input.reason, retryAt });
    assert(failed.paymentFailures === order.paymentFailures + 1, "a failed payment is counted once");
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "fail_top_up",
      target: `customer:${order.customerId}`,
      reason: input.reason,
      details: { old: { order_id: order.orderId, state: order.state }, new: { state: failed.state, payment_failures: failed.paymentFailures, retry_at: retryAt?.toISOString() ?? null } },
    });
    if (order.origin === "recharge") await reportRechargeFailure(tx, failed, input.reason, caller.requestId);
    return failed;
  });
}

/** retryDelayMs is how long after this failure a recharge order is asked for again; undefined: never (it fails). */
function retryDelayMs(deps: Deps, order: TopUpRow): number | undefined {
  const delaysMs = deps.recharge?.retryDelaysMs ?? limits.rechargeRetryDelaysMsDefault;
  return order.origin === "recharge" ? delaysMs[order.paymentFailures] : undefined;
}

/**
 * reportRechargeFailure queues recharge.failed and, after the last retry, turns auto-recharge
 * off, audited as auto-recharge's act within the call that reported the failure (requestId:
 * that call's). Hold the order's lock.
 */
async function reportRechargeFailure(tx: Tx, order: TopUpRow, reason: string, requestId: string | null): Promise<void> {
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
    requestId,
    action: "disable_auto_recharge",
    target: `customer:${order.customerId}`,
    reason: "payment_failed",
    details: { old: { enabled: true }, new: { enabled: false, disabled_reason: disabledReason }, credit_type_id: order.creditTypeId, order_id: order.orderId },
  });
}
