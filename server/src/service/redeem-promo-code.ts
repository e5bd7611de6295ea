// RedeemPromoCode: give a customer a code's promotional credits, once. One op of the write
// path that runs alone: under the customer's balance lock it locks the code's row (so the
// redemptions of one code, by any customers on any replicas, are counted one after the
// other), decides, and the lot, its grant entry, the redemption record, the code's count
// and the audit record commit in one transaction. The redemption's primary key (code,
// customer) is the guard against a second redemption; the code's check on its count is the
// guard against one past max_redemptions.
import { randomUUID } from "node:crypto";
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { planGrant } from "../ledger/plan.js";
import { isUniqueViolation, mapDriverErrors } from "../store/database.js";
import { selectIdempotencyKey } from "../store/idempotency-store.js";
import { insertRedemption, type PromoCodeRow, selectPromoCode, selectRedemptionGrantId } from "../store/promo-store.js";
import { type LotView, totalsView } from "./balance-view.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import type { GrantResult } from "./grant.js";
import { decodeResult } from "./result-codec.js";
import { loadedState, lotOf, type PlanContext, type WriteOp } from "./write-op.js";

/** promoCodeReasonCode is the reason code of a redemption's lot and grant entry. */
export const promoCodeReasonCode = "promo_code";

/** RedeemResult is the lot a code gave, the balance after it, and the code as created. */
export interface RedeemResult extends GrantResult {
  code: string;
}

/**
 * redeemPromoCode credits a customer with a code's credits. NotFound PROMO_CODE_NOT_FOUND;
 * FailedPrecondition PROMO_CODE_ALREADY_REDEEMED, PROMO_CODE_DISABLED, PROMO_CODE_EXPIRED,
 * PROMO_CODE_EXHAUSTED. A refusal changes nothing; a replay of a redemption answers it again.
 */
export async function redeemPromoCode(deps: Deps, caller: Caller, idempotency: Idempotency, input: { customerId: string; code: string }): Promise<RedeemResult> {
  // A code's credit type never changes: read it before the locks. The refusals checked
  // here too (without locks) spare a refused request the rows the write path creates.
  const code = await mapDriverErrors(() => selectPromoCode(deps.pool, input.code, "none"));
  try {
    if (code === null) throw notFound("PROMO_CODE_NOT_FOUND", "promo code", input.code);
    const redeemed = await mapDriverErrors(() => selectRedemptionGrantId(deps.pool, code.promoCodeId, input.customerId));
    refusalOf(code, redeemed, deps.now());
  } catch (error) {
    return replayOr(deps, caller, idempotency, error);
  }
  return deps.writes.submit(redeemOp(caller, idempotency, input.customerId, code));
}

/** replayOr answers a refused request that was already answered under its id (a replay), or throws its refusal. */
async function replayOr(deps: Deps, caller: Caller, idempotency: Idempotency, error: unknown): Promise<RedeemResult> {
  if (!(error instanceof LedgerError)) throw error;
  const stored = await mapDriverErrors(() => selectIdempotencyKey(deps.pool, caller.keyId, idempotency.requestId));
  if (stored === null) throw error;
  if (stored.method !== idempotency.method || !stored.payloadHash.equals(idempotency.payloadHash)) {
    throw new LedgerError("rejected", "REQUEST_ID_REUSED", `request id ${JSON.stringify(idempotency.requestId)} was used for a different request`, {
      request_id: idempotency.requestId,
      first_method: stored.method,
    });
  }
  return decodeResult<RedeemResult>(stored.response);
}

/** refusalOf throws why a customer may not redeem a code now; redeemedGrantId is the lot of the customer's earlier redemption. */
function refusalOf(code: PromoCodeRow, redeemedGrantId: string | null, now: Date): void {
  const details = { code: code.code };
  if (redeemedGrantId !== null) {
    throw new LedgerError("rejected", "PROMO_CODE_ALREADY_REDEEMED", `promo code ${code.code} was already redeemed by this customer`, { ...details, grant_id: redeemedGrantId });
  }
  if (code.disabledAt !== null) throw new LedgerError("rejected", "PROMO_CODE_DISABLED", `promo code ${code.code} is disabled`, details);
  const over = (time: Date | null) => time !== null && time.getTime() <= now.getTime();
  if (over(code.validUntil) || over(code.creditExpiresAt)) throw new LedgerError("rejected", "PROMO_CODE_EXPIRED", `promo code ${code.code} has expired`, details);
  if (code.maxRedemptions !== null && code.redemptionCount >= code.maxRedemptions) {
    throw new LedgerError("rejected", "PROMO_CODE_EXHAUSTED", `promo code ${code.code} was redeemed as often as it may be`, {
      ...details,
      max_redemptions: code.maxRedemptions.toString(),
    });
  }
}

/** redeemOp is one redemption as the write path runs it. */
function redeemOp(caller: Caller, idempotency: Idempotency, customerId: string, code: PromoCodeRow): WriteOp<RedeemResult> {
  const key = { customerId, creditTypeId: code.creditTypeId };
  let locked: PromoCodeRow | null = null;
  let redeemedGrantId: string | null = null;
  let granted: string | null = null;
  return {
    lane: { customerId },
    weight: 1,
    claim: { caller, idempotency },
    request: (reads) => void reads.creditTypeIds.push(code.creditTypeId),
    prepare: () => ({ keys: [key], customerIds: [customerId], createCustomers: [customerId], createBalances: [key] }),
    load: async (tx) => {
      granted = null;
      // After the balance lock, as every redemption takes them: no lock cycle.
      locked = await selectPromoCode(tx, code.code, "update");
      redeemedGrantId = locked === null ? null : await selectRedemptionGrantId(tx, locked.promoCodeId, customerId);
    },
    plan: (ctx) => {
      assert(locked !== null && locked.promoCodeId === code.promoCodeId, "a code is never deleted");
      refusalOf(locked, redeemedGrantId, ctx.now);
      const result = credit(ctx, caller, idempotency, customerId, locked);
      granted = result.lot.grantId;
      return { value: result };
    },
    store: async (tx) => {
      assert(granted !== null && locked !== null, "store runs after a successful plan");
      const count = await insertRedemption(tx, { promoCodeId: locked.promoCodeId, customerId, grantId: granted, requestId: idempotency.requestId, actor: caller.keyId }).catch(
        (error: unknown) => {
          // The balance lock serialises one customer's redemptions, so this is a race lost
          // to a change outside it: run again, and the redemption is then seen.
          if (isUniqueViolation(error, "promo_redemptions_pkey")) {
            throw new LedgerError("conflict", "CONCURRENT_UPDATE", "a concurrent redemption of this code; retry with the same request id", {}, { cause: error });
          }
          throw error;
        },
      );
      assert(count === locked.redemptionCount + 1n, "the count rises by one under the code's lock");
    },
  };
}

/** credit plans the code's lot for the customer: source promotion, its priority, its expiry (fixed, or its validity from now). */
function credit(ctx: PlanContext, caller: Caller, idempotency: Idempotency, customerId: string, code: PromoCodeRow): RedeemResult {
  const key = { customerId, creditTypeId: code.creditTypeId };
  const before = loadedState(ctx.balance(key), key);
  const grantId = randomUUID();
  const expiresAt = code.creditExpiresAt ?? new Date(ctx.now.getTime() + Number(code.creditValiditySeconds) * 1000);
  assert(expiresAt > ctx.now, "a code whose credits expired is refused before");
  const lot = lotOf({ grantId, amount: code.amount, priority: code.priority, effectiveAt: ctx.now, expiresAt }, ctx.nextLotSeq());
  const planned = planGrant({ ...before, lots: [...before.lots, lot] }, grantId, ctx.now.getTime());
  const note = `promo code ${code.code}`;
  ctx.draft.newLot({
    ...key,
    grantId,
    source: "promotion",
    amount: code.amount,
    remaining: code.amount,
    held: 0n,
    priority: code.priority,
    effectiveAt: ctx.now,
    expiresAt,
    costBasisMicros: 0n,
    reasonCode: promoCodeReasonCode,
    note,
    requestId: idempotency.requestId,
    actor: caller.keyId,
    activationDue: false,
  });
  ctx.draft.change(key, planned, { reservationId: null, requestId: idempotency.requestId, actor: caller.keyId, reasonCode: promoCodeReasonCode, effectiveAt: ctx.now });
  ctx.draft.audit({
    actor: caller.keyId,
    requestId: caller.requestId,
    action: "redeem_promo_code",
    target: `customer:${customerId}`,
    reason: note,
    details: {
      old: { redemption_count: code.redemptionCount.toString() },
      new: { promo_code_id: code.promoCodeId, code: code.code, grant_id: grantId, credit_type_id: code.creditTypeId, amount: code.amount.toString(), expire_time: expiresAt.toISOString() },
    },
  });
  const after = planned.state.lots.find((candidate) => candidate.grantId === grantId);
  assert(after !== undefined, "the new lot is in the plan");
  const lotView: LotView = {
    grantId,
    source: "promotion",
    amount: code.amount,
    remaining: after.remaining,
    held: after.held,
    priority: code.priority,
    effectiveAt: ctx.now,
    expiresAt,
    createdAt: ctx.recordedAt,
    reasonCode: promoCodeReasonCode,
    costBasisMicros: 0n,
    voidPending: 0n,
    voidedAt: null,
  };
  return { lot: lotView, balance: totalsView(code.creditTypeId, planned.state, ctx.now.getTime()), code: code.code };
}
