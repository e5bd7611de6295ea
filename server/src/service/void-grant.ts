// VoidGrant: take back the unused credits of a lot granted by mistake, with void entries
// (granted falls), audited. One op of the write path: the lot is pinned, so it is loaded
// even with nothing free, and the decision is the core's planVoid. A void of the whole lot
// voids its free part now and marks the lot voided (grants.voided_at, written by the op's
// own store step, so it runs alone in its group): the held part then waits for its
// reservations, voided by upkeep as they give it back, burned as they commit it. A void of
// an amount takes only that many free credits. Burned and expired credits are never voided.
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { planVoid } from "../ledger/plan.js";
import { selectLotsByIds, updateLotVoided } from "../store/correction-store.js";
import { selectTopUpIdOfLot } from "../store/billing-store.js";
import { mapDriverErrors } from "../store/database.js";
import type { EntryRow } from "../store/entry-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { loadedState, type WriteOp } from "./write-op.js";

/** VoidGrantInput is a validated VoidGrant request; amount null voids every free credit. */
export interface VoidGrantInput {
  customerId: string;
  grantId: string;
  amount: bigint | null;
  reasonCode: string;
  note: string;
}

/** VoidGrantResult is what the void took, what of the lot stays held and of that what is pending its void, and its entries. */
export interface VoidGrantResult {
  grantId: string;
  voided: bigint;
  held: bigint;
  pending: bigint;
  remaining: bigint;
  entries: EntryRow[];
}

/**
 * voidGrant voids a lot's free credits, and with no amount the lot itself (its held part
 * pending). NotFound GRANT_NOT_FOUND; FailedPrecondition
 * NOTHING_TO_VOID, VOID_EXCEEDS_UNUSED. Admin and support keys (support's own limits on
 * corrections are the caller's role check's to add).
 */
export async function voidGrant(deps: Deps, caller: Caller, idempotency: Idempotency, input: VoidGrantInput): Promise<VoidGrantResult> {
  assert(input.reasonCode.length > 0, "voids have a reason");
  if (caller.role !== "admin" && caller.role !== "support") {
    throw new LedgerError("forbidden", "ROLE_NOT_ALLOWED", `the ${caller.role} role may not void grants`, { role: caller.role, method: "VoidGrant" });
  }
  const [lot] = await mapDriverErrors(() => selectLotsByIds(deps.pool, input.customerId, [input.grantId]));
  if (lot === undefined) throw notFound("GRANT_NOT_FOUND", "grant id", input.grantId);
  // A top-up's credits go back with its money (BillingService.RefundTopUp), whose clawback
  // counts what the lot used: a void beside it would be taken a second time, as debt.
  const orderId = await mapDriverErrors(() => selectTopUpIdOfLot(deps.pool, input.customerId, input.grantId));
  if (orderId !== null) {
    throw new LedgerError("rejected", "LOT_OF_TOP_UP", `lot ${input.grantId} was bought with top-up ${orderId}: refund the top-up to take its credits back`, { order_id: orderId });
  }
  return deps.writes.submit(voidOp(caller, idempotency, input, lot.creditTypeId));
}

function voidOp(caller: Caller, idempotency: Idempotency, input: VoidGrantInput, creditTypeId: string): WriteOp<VoidGrantResult> {
  const key = { customerId: input.customerId, creditTypeId };
  // the lot's void time when the plan voided the whole lot; set by each plan run, read by store.
  let voidedAt: Date | null = null;
  return {
    lane: { customerId: input.customerId },
    weight: 1,
    claim: { caller, idempotency },
    request: () => {},
    prepare: () => ({ keys: [key], customerIds: [input.customerId], pinnedGrantIds: [input.grantId] }),
    // Nothing to read; having a load makes the op run alone, as its store step requires.
    load: async () => {},
    plan: (ctx) => {
      const planned = planVoid(loadedState(ctx.balance(key), key), input.grantId, input.amount, ctx.now.getTime());
      if (planned.kind !== "planned") throw refusal(planned, input.grantId);
      voidedAt = planned.lotVoided ? ctx.now : null;
      const cause = { reservationId: null, requestId: idempotency.requestId, actor: caller.keyId, reasonCode: input.reasonCode, effectiveAt: ctx.now };
      const entries = ctx.draft.change(key, planned, cause).filter((entry) => entry.kind === "void" && entry.actor === caller.keyId);
      assert(entries.length === (planned.voided > 0n ? 1 : 0), "a void writes one entry of what it took, none when all of the lot is held");
      assert(entries.every((entry) => entry.amount === planned.voided), "the void entry is what it took");
      ctx.draft.audit({
        actor: caller.keyId,
        requestId: caller.requestId,
        action: "void_grant",
        target: `customer:${input.customerId}`,
        reason: input.note === "" ? input.reasonCode : `${input.reasonCode}: ${input.note}`,
        details: {
          old: { grant_id: input.grantId, remaining: (planned.remaining + planned.voided).toString() },
          new: {
            grant_id: input.grantId,
            remaining: planned.remaining.toString(),
            voided: planned.voided.toString(),
            held: planned.held.toString(),
            void_pending: planned.pending.toString(),
          },
          reason_code: input.reasonCode,
        },
      });
      const result = { grantId: input.grantId, voided: planned.voided, held: planned.held, pending: planned.pending, remaining: planned.remaining };
      return { finish: (written) => ({ ...result, entries: entries.map(written.entryRowOf) }) };
    },
    store: async (tx) => {
      if (voidedAt === null) return;
      const marked = await updateLotVoided(tx, { customerId: input.customerId, grantId: input.grantId, voidedAt });
      assert(marked, "a lot is voided whole once: the plan refuses a lot already voided");
    },
  };
}

function refusal(refused: { kind: "nothing_to_void" | "exceeds_unused"; unused: bigint; held: bigint }, grantId: string): LedgerError {
  const details = { grant_id: grantId, unused: refused.unused.toString(), held: refused.held.toString() };
  if (refused.kind === "nothing_to_void") {
    return new LedgerError("rejected", "NOTHING_TO_VOID", `lot ${grantId} has no unused credits to void (${refused.held} held by reservations)`, details);
  }
  return new LedgerError("rejected", "VOID_EXCEEDS_UNUSED", `lot ${grantId} has ${refused.unused} unused credits (${refused.held} held by reservations)`, details);
}
