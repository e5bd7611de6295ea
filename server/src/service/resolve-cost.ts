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
import { type Mode, type Rule, enforcementOf } from "../ledger/enforcement.js";
import type { PoolSpend } from "./pool-spend.js";
import { BalanceNeeded, loadedState, type PlanContext, type PlanResult, type ReadRequest, spenderOf, type WriteOp } from "./write-op.js";

/** Cost is what a Reserve or Burn asks for. */
export type Cost =
  | { kind: "credits"; creditTypeId: string; amount: bigint }
  | { kind: "usage"; featureKey: string; quantity: bigint };

/** ResolvedCost is a cost priced in credits, and the enforcement that applies to it. */
export interface ResolvedCost {
  creditTypeId: string;
  amount: bigint;
  featureKey: string | null;
  /** the feature's mode for this customer (its rollout's, for a customer in the cohort); credits asked for directly are enforced. */
  mode: Mode;
  rule: Rule;
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
  if (cost.kind === "credits") return { creditTypeId: cost.creditTypeId, amount: cost.amount, featureKey: null, mode: "enforce", rule: "no_feature" };
  const rate = inputs.rates.get(balanceKeyOf(customerId, cost.featureKey));
  if (rate === undefined) {
    if (!inputs.customers.has(customerId)) throw notFound("CUSTOMER_NOT_FOUND", "customer id", customerId);
    throw notFound("FEATURE_NOT_FOUND", "feature key", cost.featureKey);
  }
  const amount = pricedAmount(cost.quantity, rate);
  if (amount === 0n) throw invalid("ZERO_COST", "usage", "the feature costs nothing at this customer's rate; no credits to hold or burn");
  const { mode, rule } = enforcementOf({ featureKey: rate.featureKey, customerId, featureMode: rate.enforcementMode, rollout: rate.rollout });
  return { creditTypeId: rate.creditTypeId, amount, featureKey: rate.featureKey, mode, rule };
}

/**
 * costOp is the op of a request that spends a cost from one customer's balance (Reserve,
 * Burn): it prices the cost from the group's read, with the enforcement mode that applies,
 * and plans on the balance of the cost's credit type once it is locked. A pool member
 * spends its pool owner's balance (pool names the member): prepare locks the balance of
 * the owner this process guesses, and plan checks the guess against the membership read
 * under the locks (spenderOf: a wrong guess runs again in the next group). A balance that
 * does not exist is refused as missingBalanceError says; in observe and off modes no
 * balance is touched (before is null); under the kill switch a customer who never had
 * credits of the type gets the balance created, to go into debt.
 */
export function costOp<T>(
  claim: { caller: Caller; idempotency: Idempotency },
  customerId: string,
  cost: Cost,
  plan: (ctx: PlanContext, key: BalanceKey, before: BalanceState | null, cost: ResolvedCost, pool: PoolSpend | null) => PlanResult<T>,
): WriteOp<T> {
  let resolved: ResolvedCost;
  let guessed = customerId;
  let createBalance = false;
  return {
    lane: { customerId },
    weight: 1,
    claim,
    request: (reads) => requestCost(reads, customerId, cost),
    prepare: (inputs) => {
      resolved = priceCost(inputs, customerId, cost);
      guessed = inputs.poolParents.parentOf(customerId) ?? customerId;
      const key = { customerId: guessed, creditTypeId: resolved.creditTypeId };
      return { keys: [key], customerIds: [customerId], createBalances: createBalance ? [key] : undefined, poolMembers: [customerId] };
    },
    plan: (ctx) => {
      const { spender, membership } = spenderOf(ctx, customerId, guessed);
      const pool = membership === null ? null : { memberCustomerId: customerId, membership };
      const key = { customerId: spender, creditTypeId: resolved.creditTypeId };
      const slot = ctx.balance(key);
      if (slot.kind !== "missing") return plan(ctx, key, resolved.mode === "enforce" ? loadedState(slot, key) : (slot.kind === "loaded" ? slot.state : null), resolved, pool);
      if (resolved.mode !== "enforce") return plan(ctx, key, null, resolved, pool);
      if (ctx.killSwitch && ctx.inputs.customers.has(spender) && ctx.inputs.creditTypes.has(key.creditTypeId) && !createBalance) {
        createBalance = true;
        throw new BalanceNeeded(key);
      }
      throw missingBalanceError(ctx.inputs, key, resolved.amount);
    },
  };
}
