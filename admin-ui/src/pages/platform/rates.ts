// Rates as people read and type them: credits at the feature's credit type scale per a
// whole number of units of the feature.
import { useQuery } from "@connectrpc/connect-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import type { Rate } from "@burndown/sdk/gen/burndown/v1/usage_pb.js";
import { formatAmount, parseAmount } from "../../format.js";
import { useScales } from "../../ui.js";
import { parseWhole } from "./forms.js";

/** useFeatureScale gives a feature's credit type scale, for showing its rates. */
export function useFeatureScale(): (featureKey: string) => number {
  const features = useQuery(AdminService.method.listFeatures, {});
  const scaleOf = useScales();
  return (featureKey) => scaleOf(features.data?.features.find((feature) => feature.featureKey === featureKey)?.creditTypeId ?? "");
}

/** rateText is a rate in words: "1.50 credits per 10 units". */
export function rateText(rate: Pick<Rate, "credits" | "perUnits"> | undefined, scale: number): string {
  if (rate === undefined) return "—";
  const perUnits = rate.perUnits === 0n ? 1n : rate.perUnits;
  return `${formatAmount(rate.credits, scale)} credits per ${perUnits === 1n ? "unit" : `${formatAmount(perUnits)} units`}`;
}

/** parseRate reads credits (at the credit type's scale) per a whole number of units; empty per units means 1. */
export function parseRate(credits: string, perUnits: string, scale: number): { credits: bigint; perUnits: bigint } {
  const rate = { credits: parseAmount(credits, scale), perUnits: perUnits.trim() === "" ? 1n : parseWhole(perUnits, "Per units") };
  if (rate.credits < 0n) throw new Error("The credits must be 0 or more.");
  if (rate.perUnits === 0n) throw new Error("Per units must be 1 or more.");
  return rate;
}
