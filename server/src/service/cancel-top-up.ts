// CancelTopUp: a pending order is cancelled and can no longer be paid. It changes no
// balance, so it takes the order's row lock only (a confirmation takes the balance lock,
// then the order's: one order of locks, no deadlock). An order credited on creation is
// cancelled through the write path, which claws its credits back (credit-recharge.ts).
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { selectTopUp, type TopUpRow, updateTopUpCancelled } from "../store/billing-store.js";
import { mapDriverErrors } from "../store/database.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { unwindOp } from "./credit-recharge.js";
import { runIdempotent } from "./run-idempotent.js";

/** cancelTopUp cancels a pending order, audited. NotFound TOPUP_NOT_FOUND; FailedPrecondition TOPUP_NOT_PENDING. */
export async function cancelTopUp(deps: Deps, caller: Caller, idempotency: Idempotency, input: { orderId: string; note: string }): Promise<TopUpRow> {
  const read = await mapDriverErrors(() => selectTopUp(deps.pool, input.orderId, "none"));
  // An order credited on creation claws its credits back: the write path's job.
  if (read !== null && read.state === "pending" && read.grantId !== null) {
    return deps.writes.submit(unwindOp(caller, idempotency, read, { state: "cancelled", reason: input.note }));
  }
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const order = await selectTopUp(tx, input.orderId, "update");
    if (order === null) throw notFound("TOPUP_NOT_FOUND", "order id", input.orderId);
    if (order.state !== "pending") {
      throw new LedgerError("rejected", "TOPUP_NOT_PENDING", `order ${order.orderId} is ${order.state}`, { order_id: order.orderId, state: order.state });
    }
    if (order.grantId !== null) {
      // Credited on creation meanwhile: run again, to claw back.
      throw new LedgerError("conflict", "CONCURRENT_UPDATE", "the order was credited meanwhile; retry with the same request id", {});
    }
    const cancelled = await updateTopUpCancelled(tx, order.orderId);
    assert(cancelled.state === "cancelled" && cancelled.grantId === null, "a cancelled order credited nothing");
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "cancel_top_up",
      target: `customer:${order.customerId}`,
      reason: input.note,
      details: { old: { order_id: order.orderId, state: order.state }, new: { state: "cancelled" } },
    });
    return cancelled;
  });
}
