// Turning "credits" or "feature usage" into a credit type and an amount. Usage is priced
// at the customer's effective rate (override, pinned pricing version, or the feature's
// base rate), rounded up: a hold must cover the usage.
import { invalid, notFound } from "../errors.js";
import { holdAmount } from "../ledger/rate-usage.js";
import { limits } from "../limits.js";
import type { Db } from "../store/database.js";
import { balanceKeyOf } from "../store/balance-store.js";
import { type RateRow, selectRates } from "../store/rate-store.js";
import type { WriteInputs } from "../store/write-inputs-store.js";
import { explainUnrated } from "./unrated-reason.js";
import type { BalanceState } from "../ledger/balance-state.js";
import type { BalanceKey } from "../store/balance-store.js";
import type { Caller, Idempotency } from "./context.js";
import { missingBalanceError } from "./missing-balance.js";
import { loadedState, type PlanContext, type PlanResult, type ReadRequest, type WriteOp } from "./write-op.js";

/** Cost is what a Reserve or Burn asks for. */
export type Cost =
  | { kind: "credits"; creditTypeId: string; amount: bigint }
  | { kind: "usage"; featureKey: string; quantity: bigint };

/** ResolvedCost is a cost priced in credits. */
export interface ResolvedCost {
  creditTypeId: string;
  amount: bigint;
  featureKey: string | null;
}

/** customerRate reads a customer's effective rate for a feature, or throws NotFound for the missing one. */
export async function customerRate(db: Db, customerId: string, featureKey: string): Promise<RateRow> {
  const [rate] = await selectRates(db, [{ customerId, featureKey }]);
  if (rate !== undefined) return rate;
  const reason = (await explainUnrated(db, [{ eventId: "", customerId, featureKey }])).get("");
  if (reason === "CUSTOMER_NOT_FOUND") throw notFound("CUSTOMER_NOT_FOUND", "customer id", customerId);
  throw notFound("FEATURE_NOT_FOUND", "feature key", featureKey);
}

/** pricedAmount is the credits a quantity costs at a rate, rounded up, within int64. */
export function pricedAmount(quantity: bigint, rate: RateRow): bigint {
  const amount = holdAmount(quantity, { credits: rate.credits, perUnits: rate.perUnits });
  if (amount > limits.amountMax) throw invalid("AMOUNT_OUT_OF_RANGE", "usage.quantity", "quantity times the rate exceeds the int64 range");
  return amount;
}

/** requestCost asks a group's read for what pricing a cost needs: the customer's rate and, to explain its absence, what exists. */
export function requestCost(reads: ReadRequest, customerId: string, cost: Cost): void {
  if (cost.kind === "credits") return;
  reads.rates.push({ customerId, featureKey: cost.featureKey });
  reads.customerIds.push(customerId);
  reads.featureKeys.push(cost.featureKey);
}

/** priceCost prices a cost from a group's read: credits as given, usage at the customer's rate, rounded up. */
export function priceCost(inputs: WriteInputs, customerId: string, cost: Cost): ResolvedCost {
  if (cost.kind === "credits") return { creditTypeId: cost.creditTypeId, amount: cost.amount, featureKey: null };
  const rate = inputs.rates.get(balanceKeyOf(customerId, cost.featureKey));
  if (rate === undefined) {
    if (!inputs.customers.has(customerId)) throw notFound("CUSTOMER_NOT_FOUND", "customer id", customerId);
    throw notFound("FEATURE_NOT_FOUND", "feature key", cost.featureKey);
  }
  const amount = pricedAmount(cost.quantity, rate);
  if (amount === 0n) throw invalid("ZERO_COST", "usage", "the feature costs nothing at this customer's rate; no credits to hold or burn");
  return { creditTypeId: rate.creditTypeId, amount, featureKey: rate.featureKey };
}

/**
 * costOp is the op of a request that spends a cost from one customer's balance (Reserve,
 * Burn): it prices the cost from the group's read, and plans on the balance of the cost's
 * credit type once it is locked; a balance that does not exist is refused as
 * missingBalanceError says.
 */
export function costOp<T>(
  claim: { caller: Caller; idempotency: Idempotency },
  customerId: string,
  cost: Cost,
  plan: (ctx: PlanContext, key: BalanceKey, before: BalanceState, cost: ResolvedCost) => PlanResult<T>,
): WriteOp<T> {
  let resolved: ResolvedCost;
  return {
    lane: { customerId },
    weight: 1,
    claim,
    request: (reads) => requestCost(reads, customerId, cost),
    prepare: (inputs) => {
      resolved = priceCost(inputs, customerId, cost);
      return { keys: [{ customerId, creditTypeId: resolved.creditTypeId }], customerIds: [customerId] };
    },
    plan: (ctx) => {
      const key = { customerId, creditTypeId: resolved.creditTypeId };
      const slot = ctx.balance(key);
      if (slot.kind === "missing") throw missingBalanceError(ctx.inputs, key, resolved.amount);
      return plan(ctx, key, loadedState(slot, key), resolved);
    },
  };
}
