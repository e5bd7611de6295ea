// Turning "credits" or "feature usage" into a credit type and an amount.
import { invalid, notFound } from "../errors.js";
import { limits } from "../limits.js";
import type { Db } from "../store/database.js";
import { selectFeature } from "../store/catalog-store.js";

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

/** resolveCost prices a cost: credits as given, usage at the feature's burn rate. */
export async function resolveCost(db: Db, cost: Cost): Promise<ResolvedCost> {
  if (cost.kind === "credits") return { creditTypeId: cost.creditTypeId, amount: cost.amount, featureKey: null };
  const feature = await selectFeature(db, cost.featureKey);
  if (feature === null) throw notFound("FEATURE_NOT_FOUND", "feature key", cost.featureKey);
  const amount = cost.quantity * feature.burnRate;
  if (amount > limits.amountMax) throw invalid("AMOUNT_OUT_OF_RANGE", "usage.quantity", "quantity times the burn rate exceeds the int64 range");
  return { creditTypeId: feature.creditTypeId, amount, featureKey: feature.featureKey };
}
