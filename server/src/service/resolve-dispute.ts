// ResolveDispute: close a dispute with a refund of one of its charges, or a rejection with
// a reason. A refund's dispute update is written by the refund's op, in its transaction
// (refund-charge.ts), so a dispute is never resolved by a refund that did not commit, nor
// a refund made twice for one resolution (the request id guards both).
import { LedgerError } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { mapDriverErrors } from "../store/database.js";
import { selectDispute, updateDispute } from "../store/dispute-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { audit, disputeClosed, disputeNotFound, type DisputeView, getDispute, lockOpenDispute } from "./disputes.js";
import { refundCharge } from "./refund-charge.js";
import { runIdempotent } from "./run-idempotent.js";

/** Resolution is how a dispute ends. */
export type Resolution = { kind: "refund"; entryId: string; amount: bigint | null; reasonCode: string } | { kind: "reject"; reason: string };

/**
 * resolveDispute closes a dispute. NotFound DISPUTE_NOT_FOUND; FailedPrecondition
 * DISPUTE_CLOSED; InvalidArgument INVALID_RESOLUTION for a refund of an entry the dispute
 * does not name; a refund's own refusals (refund-charge.ts).
 */
export async function resolveDispute(deps: Deps, caller: Caller, idempotency: Idempotency, input: { disputeId: string; resolution: Resolution }): Promise<DisputeView> {
  const { resolution } = input;
  if (resolution.kind === "reject") {
    assert(resolution.reason.length > 0, "a rejection has a reason");
    await runIdempotent(deps, caller, idempotency, async (tx) => {
      const before = await lockOpenDispute(tx, input.disputeId);
      const after = await updateDispute(tx, input.disputeId, {
        status: "rejected", owner: before.owner ?? caller.keyId, respondedAt: deps.now(), resolvedAt: deps.now(), resolvedBy: caller.keyId, rejectReason: resolution.reason,
      });
      assert(after !== null, "a locked open dispute updates");
      await audit(tx, caller, after, "resolve_dispute", { old: { status: before.status }, new: { status: after.status } }, resolution.reason);
      return after.disputeId;
    });
    return getDispute(deps, caller, input.disputeId);
  }
  const dispute = await mapDriverErrors(() => selectDispute(deps.pool, input.disputeId, "none"));
  if (dispute === null) throw disputeNotFound(input.disputeId);
  if (!dispute.entryIds.includes(resolution.entryId)) {
    throw new LedgerError("invalid", "INVALID_RESOLUTION", `refund.entry_id: entry ${resolution.entryId} is not one of the dispute's`, { field: "refund.entry_id" });
  }
  await refundCharge(deps, caller, idempotency, {
    customerId: dispute.customerId,
    charge: { kind: "entry", entryId: resolution.entryId },
    amount: resolution.amount,
    reasonCode: resolution.reasonCode,
    note: `dispute ${dispute.disputeId}`,
    dispute: {
      disputeId: dispute.disputeId,
      store: async (tx, refund) => {
        const before = await selectDispute(tx, dispute.disputeId, "update");
        assert(before !== null, "disputes are never deleted");
        if (before.resolvedAt !== null) throw disputeClosed(before);
        const after = await updateDispute(tx, dispute.disputeId, {
          status: "resolved_refunded", owner: before.owner ?? caller.keyId, respondedAt: deps.now(), resolvedAt: deps.now(), resolvedBy: caller.keyId, rejectReason: "",
        });
        assert(after !== null, "a locked open dispute updates");
        await audit(tx, caller, after, "resolve_dispute", { old: { status: before.status }, new: { status: after.status, refund_id: refund.refundId } }, resolution.reasonCode);
      },
    },
  });
  return getDispute(deps, caller, input.disputeId);
}
