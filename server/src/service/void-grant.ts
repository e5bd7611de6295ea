// VoidGrant: take back the unused credits of a lot granted by mistake, with void entries
// (granted falls), audited. One op of the write path: the lot is pinned, so it is loaded
// even with nothing free, and the decision is the core's planVoid. Only the free part is
// voided: credits held by open reservations stay with them (the result says how many),
// burned and expired credits are never voided.
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { planVoid } from "../ledger/plan.js";
import { selectLotsByIds } from "../store/correction-store.js";
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

/** VoidGrantResult is what the void took, what of the lot stays held, and its entries. */
export interface VoidGrantResult {
  grantId: string;
  voided: bigint;
  held: bigint;
  remaining: bigint;
  entries: EntryRow[];
}

/**
 * voidGrant voids a lot's free credits. NotFound GRANT_NOT_FOUND; FailedPrecondition
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
  return deps.writes.submit(voidOp(caller, idempotency, input, lot.creditTypeId));
}

function voidOp(caller: Caller, idempotency: Idempotency, input: VoidGrantInput, creditTypeId: string): WriteOp<VoidGrantResult> {
  const key = { customerId: input.customerId, creditTypeId };
  return {
    lane: { customerId: input.customerId },
    weight: 1,
    claim: { caller, idempotency },
    request: () => {},
    prepare: () => ({ keys: [key], customerIds: [input.customerId], pinnedGrantIds: [input.grantId] }),
    plan: (ctx) => {
      const planned = planVoid(loadedState(ctx.balance(key), key), input.grantId, input.amount, ctx.now.getTime());
      if (planned.kind !== "planned") throw refusal(planned, input.grantId);
      const cause = { reservationId: null, requestId: idempotency.requestId, actor: caller.keyId, reasonCode: input.reasonCode, effectiveAt: ctx.now };
      const entries = ctx.draft.change(key, planned, cause).filter((entry) => entry.kind === "void");
      assert(entries.length === 1 && entries[0].amount === planned.voided, "a void writes one entry of what it took");
      ctx.draft.audit({
        actor: caller.keyId,
        action: "void_grant",
        target: `customer:${input.customerId}`,
        reason: input.note === "" ? input.reasonCode : `${input.reasonCode}: ${input.note}`,
        details: {
          old: { grant_id: input.grantId, remaining: (planned.remaining + planned.voided).toString() },
          new: { grant_id: input.grantId, remaining: planned.remaining.toString(), voided: planned.voided.toString(), held_not_voided: planned.held.toString() },
          reason_code: input.reasonCode,
        },
      });
      return {
        finish: (written) => ({ grantId: input.grantId, voided: planned.voided, held: planned.held, remaining: planned.remaining, entries: entries.map(written.entryRowOf) }),
      };
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
