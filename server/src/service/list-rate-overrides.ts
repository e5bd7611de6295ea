// ListRateOverrides: a customer's own rates in force, for support to see why a customer
// pays what it pays.
import { notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { customerExists } from "../store/catalog-store.js";
import { withSnapshot } from "../store/database.js";
import { type RateOverrideRow, selectRateOverrides } from "../store/pricing-store.js";
import type { Deps } from "./context.js";

/**
 * listRateOverrides reads a customer's overrides in force, by feature key, from one
 * snapshot. A customer has at most one per feature, and features are listed at most
 * pageSizeMax at a time (ListFeatures), so that is the bound here too.
 */
export async function listRateOverrides(deps: Deps, customerId: string): Promise<RateOverrideRow[]> {
  return withSnapshot(deps.pool, async (tx) => {
    if (!(await customerExists(tx, customerId))) throw notFound("CUSTOMER_NOT_FOUND", "customer id", customerId);
    const overrides = await selectRateOverrides(tx, customerId, limits.pageSizeMax);
    assert(overrides.every((override) => override.credits >= 0n && override.perUnits > 0n), "stored overrides are valid rates");
    return overrides;
  });
}
