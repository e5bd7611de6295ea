// Which enforcement mode applies to one customer's use of one feature: the feature's own
// mode, unless its rollout's cohort holds the customer (listed by id, or in a stable
// percentage). The kill switch does not change the mode: it stops refusals for lack of
// credits in every mode, while metering goes on.

/** Mode is what enforcement does: burn and refuse, shadow only, or record without billing. */
export type Mode = "enforce" | "observe" | "off";

/** Rule names what chose a mode. */
export type Rule = "feature_default" | "customer_list" | "percentage" | "no_feature";

/** Rollout is another mode for a cohort of a feature's customers. */
export interface Rollout {
  mode: Mode;
  customerIds: readonly string[];
  /** 0 to 100. */
  percent: number;
}

/** cohortBucket places a customer of a feature in one of 100 buckets, stably: FNV-1a of "feature\0customer" mod 100. */
export function cohortBucket(featureKey: string, customerId: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(`${featureKey}\u0000${customerId}`)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % 100;
}

/** enforcementOf decides the mode for a customer's use of a feature, and the rule that decided it. */
export function enforcementOf(input: { featureKey: string; customerId: string; featureMode: Mode; rollout: Rollout | null }): { mode: Mode; rule: Rule } {
  const { rollout } = input;
  if (rollout !== null) {
    if (!(rollout.percent >= 0 && rollout.percent <= 100)) throw new Error("assertion failed: a rollout's percent is 0 to 100");
    if (rollout.customerIds.includes(input.customerId)) return { mode: rollout.mode, rule: "customer_list" };
    if (cohortBucket(input.featureKey, input.customerId) < rollout.percent) return { mode: rollout.mode, rule: "percentage" };
  }
  return { mode: input.featureMode, rule: "feature_default" };
}
