// CancelTopUp: a pending order is cancelled and can no longer be paid. It changes no
// balance, so it takes the order's row lock only (a confirmation takes the balance lock,
// then the order's: one order of locks, no deadlock).
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { selectTopUp, type TopUpRow, updateTopUpCancelled } from "../store/billing-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { runIdempotent } from "./run-idempotent.js";

/** cancelTopUp cancels a pending order, audited. NotFound TOPUP_NOT_FOUND; FailedPrecondition TOPUP_NOT_PENDING. */
export async function cancelTopUp(deps: Deps, caller: Caller, idempotency: Idempotency, input: { orderId: string; note: string }): Promise<TopUpRow> {
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const order = await selectTopUp(tx, input.orderId, "update");
    if (order === null) throw notFound("TOPUP_NOT_FOUND", "order id", input.orderId);
    if (order.state !== "pending") {
      throw new LedgerError("rejected", "TOPUP_NOT_PENDING", `order ${order.orderId} is ${order.state}`, { order_id: order.orderId, state: order.state });
    }
    const cancelled = await updateTopUpCancelled(tx, order.orderId);
    assert(cancelled.state === "cancelled" && cancelled.grantId === null, "a cancelled order credited nothing");
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      action: "cancel_top_up",
      target: `customer:${order.customerId}`,
      reason: input.note,
      details: { old: { order_id: order.orderId, state: order.state }, new: { state: "cancelled" } },
    });
    return cancelled;
  });
}
