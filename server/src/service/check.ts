// Check: may this customer use this feature for this quantity now? Reads only. Enforced
// features soft-block: denied once available is below zero, or when the use would take
// it below minus the overdraft limit. Observe and off modes, and the kill switch, allow.
// The mode is the customer's: the feature's own, or its rollout's for a customer in the
// cohort, and the answer says which rule chose it. A pool member is answered on its pool
// owner's balance, and denied past its limit this period.
import { selectBalances, selectOpenLots } from "../store/balance-store.js";
import { withSnapshot } from "../store/database.js";
import type { EnforcementMode } from "../store/catalog-store.js";
import { selectSetting } from "../store/rate-store.js";
import { type BalanceView, toBalanceView } from "./balance-view.js";
import type { Deps } from "./context.js";
import { enforcementOf, type Rule } from "../ledger/enforcement.js";
import { customerRate, pricedAmount } from "./resolve-cost.js";
import { selectPoolMember } from "../store/pool-store.js";
import { usedNow } from "../ledger/pool-limit.js";

/** CheckReason explains a Check answer. */
export type CheckReason = "sufficient_credits" | "insufficient_credits" | "observe_only" | "enforcement_off" | "kill_switch" | "child_limit_exceeded";

/** CheckResult is the answer to Check. */
export interface CheckResult {
  allowed: boolean;
  reason: CheckReason;
  wouldAllow: boolean;
  credits: bigint;
  /** the mode that applies to this customer: the feature's, or its rollout's. */
  mode: EnforcementMode;
  /** which rule chose mode. */
  rule: Rule;
  balance: BalanceView;
  /** for a pool member: its pool owner, whose balance balance is; "" otherwise. */
  poolCustomerId: string;
  /** for a pool member: whether it has a limit on the credit type, and what it may still use this period. */
  memberLimited: boolean;
  memberLimitRemaining: bigint;
}

const maxOf = (a: bigint, b: bigint) => (a > b ? a : b);

/** check answers without deducting anything. */
export async function check(deps: Deps, input: { customerId: string; featureKey: string; quantity: bigint }): Promise<CheckResult> {
  return withSnapshot(deps.pool, async (tx) => {
    const nowMs = deps.now().getTime();
    const rate = await customerRate(tx, input.customerId, input.featureKey);
    const credits = pricedAmount(input.quantity, rate);
    const member = await selectPoolMember(tx, input.customerId);
    const spender = member?.parentCustomerId ?? input.customerId;
    const limit = member?.limits.get(rate.creditTypeId) ?? null;
    const memberLimitRemaining =
      member === null || limit === null ? undefined : maxOf(0n, limit.amount - usedNow(member.usage.get(rate.creditTypeId) ?? null, limit, nowMs).used);
    const [row] = await selectBalances(tx, spender, rate.creditTypeId);
    const empty = { granted: 0n, held: 0n, burned: 0n, expired: 0n, debt: 0n, overdraftHeld: 0n, overdraftLimit: 0n };
    const lots = row === undefined ? [] : await selectOpenLots(tx, spender, rate.creditTypeId);
    const balance = { ...toBalanceView(rate.creditTypeId, row ?? empty, lots, nowMs), lots: [] };
    const withinLimit = memberLimitRemaining === undefined || credits <= memberLimitRemaining;
    const wouldAllow = withinLimit && balance.available >= 0n && balance.available - credits >= -balance.overdraftLimit;
    const killSwitch = (await selectSetting(tx, "kill_switch")) === "on";
    const { mode, rule } = enforcementOf({ featureKey: rate.featureKey, customerId: input.customerId, featureMode: rate.enforcementMode, rollout: rate.rollout });
    const answer = (allowed: boolean, reason: CheckReason): CheckResult => ({
      allowed, reason, wouldAllow, credits, mode, rule, balance, poolCustomerId: member?.parentCustomerId ?? "",
      memberLimited: memberLimitRemaining !== undefined, memberLimitRemaining: memberLimitRemaining ?? 0n,
    });
    if (killSwitch) return answer(true, "kill_switch");
    if (mode === "observe") return answer(true, "observe_only");
    if (mode === "off") return answer(true, "enforcement_off");
    if (!withinLimit) return answer(false, "child_limit_exceeded");
    return answer(wouldAllow, wouldAllow ? "sufficient_credits" : "insufficient_credits");
  });
}
