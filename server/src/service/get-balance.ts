// GetBalance: a customer's balances per credit type, with their lots and what is left per
// source (promotional apart from purchased), from one snapshot.
import { notFound } from "../errors.js";
import { selectBalances, selectOpenLots } from "../store/balance-store.js";
import { customerExists } from "../store/catalog-store.js";
import { withSnapshot } from "../store/database.js";
import { type BalanceView, sourcesOf, toBalanceView } from "./balance-view.js";
import type { Deps } from "./context.js";

/** getBalance reads every balance of a customer (or one credit type) as of now. */
export async function getBalance(deps: Deps, input: { customerId: string; creditTypeId: string }): Promise<BalanceView[]> {
  return withSnapshot(deps.pool, async (tx) => {
    const nowMs = deps.now().getTime();
    const rows = await selectBalances(tx, input.customerId, input.creditTypeId);
    if (rows.length === 0 && !(await customerExists(tx, input.customerId))) throw notFound("CUSTOMER_NOT_FOUND", "customer id", input.customerId);
    const lots = await selectOpenLots(tx, input.customerId, input.creditTypeId);
    return rows.map((row) => {
      const view = toBalanceView(row.creditTypeId, row, lots.filter((lot) => lot.creditTypeId === row.creditTypeId), nowMs);
      // Per source only here, where a screen reads the lots too: Check skips the work.
      return { ...view, sources: sourcesOf(view.lots, nowMs) };
    });
  });
}
