// GetBalanceForecast: when each of a customer's balances would run out at its recent burn
// rate, and what would expire unused meanwhile, for the customer's own view. Available
// now is GetBalance's; the rate is what GetUsageSummary counts (net of corrections) over
// the lookback; the simulation is the pure core's (ledger/forecast.ts).
import { notFound } from "../errors.js";
import { assert, availableOf } from "../ledger/balance-state.js";
import { forecastBalance } from "../ledger/forecast.js";
import { limits } from "../limits.js";
import { selectBalances, selectOpenLots } from "../store/balance-store.js";
import { customerExists } from "../store/catalog-store.js";
import { type Tx, withSnapshot } from "../store/database.js";
import { selectBurnBuckets } from "../store/usage-summary-store.js";
import { balanceStateAt } from "./balance-view.js";
import type { Deps } from "./context.js";

const dayMs = 86_400_000;

/** BalanceForecastView is one balance's outlook. */
export interface BalanceForecastView {
  creditTypeId: string;
  available: bigint;
  burnedInLookback: bigint;
  /** burnedInLookback over the lookback's days, rounded up. */
  dailyBurn: bigint;
  /** null when nothing burns, or it lasts beyond the horizon. */
  emptyAt: Date | null;
  /** whole days until emptyAt; -1 when it is null. */
  daysUntilEmpty: number;
  expiringUnused: bigint;
}

/** burnedSince sums what each credit type burned from startAt to endAt, net of corrections: one bucket of the usage summary. */
async function burnedSince(tx: Tx, input: { customerId: string; creditTypeId: string; startAt: Date; endAt: Date; days: number }): Promise<Map<string, bigint>> {
  const buckets = await selectBurnBuckets(tx, { customerId: input.customerId, creditTypeId: input.creditTypeId, startAt: input.startAt, endAt: input.endAt, bucketDays: input.days });
  const burned = new Map<string, bigint>();
  for (const bucket of buckets) burned.set(bucket.creditTypeId, (burned.get(bucket.creditTypeId) ?? 0n) + bucket.credits);
  return burned;
}

/** getBalanceForecast forecasts every balance of a customer (or one credit type) from one snapshot. */
export async function getBalanceForecast(
  deps: Deps,
  input: { customerId: string; creditTypeId: string; lookbackDays: number },
): Promise<{ forecasts: BalanceForecastView[]; lookbackDays: number; forecastAt: Date }> {
  assert(Number.isInteger(input.lookbackDays) && input.lookbackDays >= 1 && input.lookbackDays <= limits.forecastLookbackDaysMax, "the lookback is decoded");
  const forecastAt = deps.now();
  const nowMs = forecastAt.getTime();
  return withSnapshot(deps.pool, async (tx) => {
    const rows = await selectBalances(tx, input.customerId, input.creditTypeId);
    if (rows.length === 0 && !(await customerExists(tx, input.customerId))) throw notFound("CUSTOMER_NOT_FOUND", "customer id", input.customerId);
    const lots = await selectOpenLots(tx, input.customerId, input.creditTypeId);
    const startAt = new Date(nowMs - input.lookbackDays * dayMs);
    const burned = await burnedSince(tx, { ...input, startAt, endAt: forecastAt, days: input.lookbackDays });
    const forecasts = rows.map((row) => {
      const state = balanceStateAt(row, lots.filter((lot) => lot.creditTypeId === row.creditTypeId), nowMs);
      const burnedInLookback = burned.get(row.creditTypeId) ?? 0n;
      assert(burnedInLookback >= 0n, "refunds never exceed the burns they correct");
      const days = BigInt(input.lookbackDays);
      const dailyBurn = (burnedInLookback + days - 1n) / days;
      const forecast = forecastBalance(state, { dailyBurn, nowMs, horizonMs: limits.forecastHorizonDays * dayMs });
      const emptyAt = forecast.emptyAtMs === null ? null : new Date(Number(forecast.emptyAtMs));
      const daysUntilEmpty = forecast.emptyAtMs === null ? -1 : Number((forecast.emptyAtMs - BigInt(nowMs)) / BigInt(dayMs));
      return { creditTypeId: row.creditTypeId, available: availableOf(state, nowMs), burnedInLookback, dailyBurn, emptyAt, daysUntilEmpty, expiringUnused: forecast.expiringUnused };
    });
    return { forecasts, lookbackDays: input.lookbackDays, forecastAt };
  });
}
