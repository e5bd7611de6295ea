// Burn: check and deduct in one call, for callers that need no hold. One op of the write
// path (write-op.ts); its answer lists the burn entries, so it is finished once the
// database has numbered them.
import { planBurn } from "../ledger/plan.js";
import type { EntryRow } from "../store/entry-store.js";
import { type BalanceView, totalsView } from "./balance-view.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { insufficientCredits } from "./missing-balance.js";
import { type Cost, costOp } from "./resolve-cost.js";
import type { WriteOp } from "./write-op.js";

/** BurnInput is a validated Burn request. */
export interface BurnInput {
  customerId: string;
  cost: Cost;
}

/** BurnResult is what was burned, the entries, and the balance after. */
export interface BurnResult {
  creditTypeId: string;
  amount: bigint;
  entries: EntryRow[];
  balance: BalanceView;
}

/** burnOp is one Burn as the write path runs it. */
export function burnOp(caller: Caller, idempotency: Idempotency, input: BurnInput): WriteOp<BurnResult> {
  return costOp({ caller, idempotency }, input.customerId, input.cost, (ctx, key, before, cost) => {
    const nowMs = ctx.now.getTime();
    const planned = planBurn(before, cost.amount, nowMs);
    if (planned.kind === "insufficient") throw insufficientCredits(key.customerId, key.creditTypeId, planned.available, planned.required);
    const cause = { reservationId: null, requestId: idempotency.requestId, actor: caller.keyId, reasonCode: cost.featureKey ?? "burn", effectiveAt: ctx.now };
    const burns = ctx.draft.change(key, planned, cause).filter((entry) => entry.kind === "burn");
    const balance = totalsView(key.creditTypeId, planned.state, nowMs);
    return { finish: (written) => ({ creditTypeId: key.creditTypeId, amount: cost.amount, entries: burns.map(written.entryRowOf), balance }) };
  });
}

/** burn deducts credits now, lots first in burn order, then the overdraft. */
export async function burn(deps: Deps, caller: Caller, idempotency: Idempotency, input: BurnInput): Promise<BurnResult> {
  return deps.writes.submit(burnOp(caller, idempotency, input));
}
