// Burn: check and deduct in one call, for callers that need no hold. One op of the write
// path (write-op.ts); its answer lists the burn entries, so it is finished once the
// database has numbered them.
import { planBurn } from "../ledger/plan.js";
import type { EntryRow } from "../store/entry-store.js";
import { assert } from "../ledger/balance-state.js";
import type { Mode } from "../ledger/enforcement.js";
import { type BalanceView, emptyView, totalsView } from "./balance-view.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { insufficientCredits } from "./missing-balance.js";
import { spendAsMember } from "./pool-spend.js";
import { type Cost, costOp } from "./resolve-cost.js";
import type { WriteOp } from "./write-op.js";

/** BurnInput is a validated Burn request. */
export interface BurnInput {
  customerId: string;
  cost: Cost;
}

/** BurnResult is what was burned, the entries, the balance after, and how enforcement applied. */
export interface BurnResult {
  creditTypeId: string;
  amount: bigint;
  entries: EntryRow[];
  balance: BalanceView;
  mode: Mode;
  /** burned past the overdraft limit, under the kill switch. */
  overLimit: boolean;
}

/**
 * burnOp is one Burn as the write path runs it. Enforced, it burns or is refused; under the
 * kill switch it burns all the same, past the overdraft limit if it must (flagged). In
 * observe mode the burn is recorded in the shadow ledger, in off mode recorded as not
 * billed: the balance is not touched either way. A pool member burns from its pool
 * owner's balance, within its limit this period (CHILD_LIMIT_EXCEEDED past it), and its
 * entries name it.
 */
export function burnOp(caller: Caller, idempotency: Idempotency, input: BurnInput): WriteOp<BurnResult> {
  return costOp<BurnResult>({ caller, idempotency }, input.customerId, input.cost, (ctx, key, before, cost, pool) => {
    const nowMs = ctx.now.getTime();
    if (cost.mode !== "enforce") {
      ctx.draft.shadow({
        ...key, mode: cost.mode, featureKey: cost.featureKey ?? "", credits: cost.amount, effectiveAt: ctx.now,
        usageId: null, usageIndex: null, reservationId: null, requestId: idempotency.requestId,
      });
      const balance = before === null ? emptyView(key.creditTypeId) : totalsView(key.creditTypeId, before, nowMs);
      return { value: { creditTypeId: key.creditTypeId, amount: cost.amount, entries: [], balance, mode: cost.mode, overLimit: false } };
    }
    assert(before !== null, "an enforced burn has its balance");
    if (pool !== null) spendAsMember(ctx, pool, key, cost.amount, { enforce: true });
    const planned = planBurn(before, cost.amount, nowMs, { force: ctx.killSwitch });
    if (planned.kind === "insufficient") throw insufficientCredits(key.customerId, key.creditTypeId, planned.available, planned.required);
    const cause = { reservationId: null, requestId: idempotency.requestId, actor: caller.keyId, reasonCode: cost.featureKey ?? "burn", effectiveAt: ctx.now,
      memberCustomerId: pool?.memberCustomerId ?? null };
    const burns = ctx.draft.change(key, planned, cause).filter((entry) => entry.kind === "burn");
    const balance = totalsView(key.creditTypeId, planned.state, nowMs);
    const { overLimit } = planned;
    return { finish: (written) => ({ creditTypeId: key.creditTypeId, amount: cost.amount, entries: burns.map(written.entryRowOf), balance, mode: cost.mode, overLimit }) };
  });
}

/** burn deducts credits now, lots first in burn order, then the overdraft. */
export async function burn(deps: Deps, caller: Caller, idempotency: Idempotency, input: BurnInput): Promise<BurnResult> {
  return deps.writes.submit(burnOp(caller, idempotency, input));
}
