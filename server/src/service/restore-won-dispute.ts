// A chargeback the vendor won (Stripe's charge.dispute.closed with status won): the credits
// its clawback took back (from the order's lot, and as debt) come back as a new lot, source
// adjustment, reason code "chargeback_won", at the cost basis of the order's lot. Its debt
// part is then settled from the new lot like any debt. Once per dispute: the request id is
// the dispute's, so another event about it is answered with the first lot. The order keeps
// its refunded totals: the chargeback happened; the restored lot is what reverses it.
import { createHash } from "node:crypto";
import { notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { selectTopUp, selectTopUpRefundCredits } from "../store/billing-store.js";
import { selectCostBases } from "../store/charge-refund-store.js";
import { mapDriverErrors } from "../store/database.js";
import type { Caller, Deps } from "./context.js";
import { grantOp } from "./grant.js";

/** restoreWonDispute gives back a won dispute's clawed-back credits; null when its clawback took nothing (or there was none). */
export async function restoreWonDispute(deps: Deps, caller: Caller, input: { orderId: string; disputeReference: string }): Promise<{ grantId: string; credits: bigint } | null> {
  assert(input.disputeReference.length > 0, "a dispute has a reference");
  const order = await mapDriverErrors(() => selectTopUp(deps.pool, input.orderId, "none"));
  if (order === null) throw notFound("TOPUP_NOT_FOUND", "order id", input.orderId);
  const clawed = await mapDriverErrors(() => selectTopUpRefundCredits(deps.pool, input.orderId, input.disputeReference));
  if (clawed === null || clawed.fromLot + clawed.asDebt === 0n) return null;
  assert(order.grantId !== null, "a refunded order was paid");
  const credits = clawed.fromLot + clawed.asDebt;
  const costBasisMicros = (await mapDriverErrors(() => selectCostBases(deps.pool, order.customerId, [order.grantId!]))).get(order.grantId) ?? 0n;
  const requestId = `stripe:dispute-won:${input.disputeReference}`.slice(0, limits.idLengthMax);
  const idempotency = { requestId, method: "stripe:charge.dispute.closed", payloadHash: createHash("sha256").update(`${input.orderId}:${input.disputeReference}:${credits}`).digest() };
  const result = await deps.writes.submit(
    grantOp(caller, idempotency, {
      customerId: order.customerId, creditTypeId: order.creditTypeId, amount: credits, source: "adjustment", reasonCode: "chargeback_won",
      note: `dispute ${input.disputeReference} won: credits clawed back for order ${order.orderId} restored`, priority: limits.purchasedLotPriority,
      effectiveAt: null, expiresAt: null, costBasisMicros, ticketUrl: "",
    }),
  );
  return { grantId: result.lot.grantId, credits };
}
