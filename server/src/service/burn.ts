// Burn: check and deduct in one transaction, for callers that need no hold.
import { planBurn } from "../ledger/plan.js";
import type { EntryRow } from "../store/entry-store.js";
import { loadBalance, totalsView, writeChange } from "./balance-change.js";
import type { BalanceView } from "./balance-view.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { explainMissingBalance, insufficientCredits } from "./missing-balance.js";
import { type Cost, resolveCost } from "./resolve-cost.js";
import { runIdempotent } from "./run-idempotent.js";

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

/** burn deducts credits now, lots first in burn order, then the overdraft. */
export async function burn(deps: Deps, caller: Caller, idempotency: Idempotency, input: BurnInput): Promise<BurnResult> {
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const cost = await resolveCost(tx, input.customerId, input.cost);
    const key = { customerId: input.customerId, creditTypeId: cost.creditTypeId };
    const loaded = await loadBalance(tx, key, deps.now);
    if (loaded === null) return explainMissingBalance(tx, key.customerId, key.creditTypeId, cost.amount);
    const { state: before, now } = loaded;
    const planned = planBurn(before, cost.amount, now.getTime());
    if (planned.kind === "insufficient") throw insufficientCredits(key.customerId, key.creditTypeId, planned.available, planned.required);
    const written = await writeChange(tx, key, before, planned, {
      reservationId: null,
      requestId: idempotency.requestId,
      actor: caller.keyId,
      reasonCode: cost.featureKey ?? "burn",
      effectiveAt: now,
    });
    const entries = written.entries.filter((entry) => entry.kind === "burn");
    return { creditTypeId: key.creditTypeId, amount: cost.amount, entries, balance: totalsView(key.creditTypeId, planned.state, now.getTime()) };
  });
}
