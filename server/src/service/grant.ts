// Grant: add credits to a customer as one lot, creating the customer on first use.
import { randomUUID } from "node:crypto";
import { invalid, LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { planGrant } from "../ledger/plan.js";
import { ensureBalance, insertLot } from "../store/balance-store.js";
import { insertCustomer, selectCreditType } from "../store/catalog-store.js";
import { loadBalance, totalsView, writeChange } from "./balance-change.js";
import { type BalanceView, type LotView, toLotView } from "./balance-view.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { runIdempotent } from "./run-idempotent.js";

/** GrantInput is a validated Grant request. */
export interface GrantInput {
  customerId: string;
  creditTypeId: string;
  amount: bigint;
  source: string;
  reasonCode: string;
  note: string;
  priority: number;
  effectiveAt: Date | null;
  expiresAt: Date | null;
  costBasisMicros: bigint;
}

/** GrantResult is the new lot and the balance after it. */
export interface GrantResult {
  lot: LotView;
  balance: BalanceView;
}

/** grant adds a lot. Support keys may grant at most their grant limit per call. */
export async function grant(deps: Deps, caller: Caller, idempotency: Idempotency, input: GrantInput): Promise<GrantResult> {
  if (caller.role === "support" && input.amount > caller.grantLimit) {
    throw new LedgerError("forbidden", "GRANT_LIMIT_EXCEEDED", `support keys may grant at most ${caller.grantLimit} per call`, {
      grant_limit: caller.grantLimit.toString(),
    });
  }
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    if ((await selectCreditType(tx, input.creditTypeId)) === null) throw notFound("CREDIT_TYPE_NOT_FOUND", "credit type id", input.creditTypeId);
    const key = { customerId: input.customerId, creditTypeId: input.creditTypeId };
    await insertCustomer(tx, { customerId: input.customerId, displayName: "" });
    await ensureBalance(tx, key);
    const loaded = await loadBalance(tx, key, deps.now);
    assert(loaded !== null, "the balance was just ensured");
    const { state: before, now } = loaded;
    const effectiveAt = input.effectiveAt ?? now;
    if (input.expiresAt !== null && (input.expiresAt <= effectiveAt || input.expiresAt <= now)) {
      throw invalid("INVALID_EXPIRE_TIME", "expire_time", "must be in the future and after the effective time");
    }
    const grantId = randomUUID();
    const lot = await insertLot(tx, { ...input, ...key, grantId, effectiveAt, requestId: idempotency.requestId, actor: caller.keyId });
    const withLot = { ...before, lots: [...before.lots, lot] };
    const planned = planGrant(withLot, grantId, now.getTime());
    await writeChange(tx, key, withLot, planned, {
      reservationId: null,
      requestId: idempotency.requestId,
      actor: caller.keyId,
      reasonCode: input.reasonCode,
      effectiveAt: now,
    });
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      action: "grant",
      target: `customer:${input.customerId}`,
      reason: input.note === "" ? input.reasonCode : `${input.reasonCode}: ${input.note}`,
      details: {
        old: null,
        new: {
          grant_id: grantId,
          credit_type_id: input.creditTypeId,
          amount: input.amount.toString(),
          source: input.source,
          priority: input.priority,
          effective_time: effectiveAt.toISOString(),
          expire_time: input.expiresAt?.toISOString() ?? null,
          cost_basis_micros: input.costBasisMicros.toString(),
        },
        reason_code: input.reasonCode,
      },
    });
    const lotAfter = planned.state.lots.find((candidate) => candidate.grantId === grantId);
    assert(lotAfter !== undefined, "the new lot is in the plan");
    return { lot: toLotView({ ...lot, ...lotAfter }, now.getTime()), balance: totalsView(input.creditTypeId, planned.state, now.getTime()) };
  });
}
