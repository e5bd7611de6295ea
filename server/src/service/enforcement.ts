// Enforcement switches: a feature's enforcement mode, its rollout to a cohort, and the
// deployment-wide kill switch. Each changes whether customers are stopped, so each is
// audited in the transaction that makes the change.
import { notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { insertAuditRecord } from "../store/audit-store.js";
import type { Rollout } from "../ledger/enforcement.js";
import { type EnforcementMode, type FailurePolicyRow, type FeatureRow, selectFeature, updateFailurePolicy } from "../store/catalog-store.js";
import { replaceRollout, updateEnforcementMode, upsertSetting } from "../store/pricing-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { runIdempotent } from "./run-idempotent.js";

/** setEnforcementMode changes a feature's mode and audits the old and new modes; NotFound when the feature does not exist. */
export async function setEnforcementMode(
  deps: Deps,
  caller: Caller,
  idempotency: Idempotency,
  input: { featureKey: string; mode: EnforcementMode; reason: string },
): Promise<FeatureRow> {
  assert(input.reason.length > 0, "audited actions have a reason");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const changed = await updateEnforcementMode(tx, input.featureKey, input.mode);
    if (changed === null) throw notFound("FEATURE_NOT_FOUND", "feature key", input.featureKey);
    assert(changed.feature.enforcementMode === input.mode, "the mode was set");
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "set_enforcement_mode",
      target: `feature:${input.featureKey}`,
      reason: input.reason,
      details: { old: changed.previous, new: input.mode },
    });
    return changed.feature;
  });
}

/**
 * setEnforcementRollout gives a cohort of a feature's customers (listed, and a stable
 * percentage of the rest) another mode, or with null clears it, and audits the old and
 * new rollouts; NotFound when the feature does not exist.
 */
export async function setEnforcementRollout(
  deps: Deps,
  caller: Caller,
  idempotency: Idempotency,
  input: { featureKey: string; rollout: Rollout | null; reason: string },
): Promise<FeatureRow> {
  assert(input.reason.length > 0, "audited actions have a reason");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const replaced = await replaceRollout(tx, input.featureKey, input.rollout);
    if (replaced === undefined) throw notFound("FEATURE_NOT_FOUND", "feature key", input.featureKey);
    const show = (rollout: Rollout | null) => (rollout === null ? null : { mode: rollout.mode, customer_ids: [...rollout.customerIds], percent: rollout.percent });
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "set_enforcement_rollout",
      target: `feature:${input.featureKey}`,
      reason: input.reason,
      details: { old: show(replaced.previous), new: show(input.rollout) },
    });
    const feature = await selectFeature(tx, input.featureKey);
    assert(feature !== null, "a feature whose rollout was just set exists");
    return feature;
  });
}

/**
 * setKillSwitch turns enforcement off everywhere (enabled) or back on, without stopping
 * metering, and audits the old and new states. A switch never set counts as off.
 */
export async function setKillSwitch(deps: Deps, caller: Caller, idempotency: Idempotency, input: { enabled: boolean; reason: string }): Promise<{ enabled: boolean }> {
  assert(input.reason.length > 0, "audited actions have a reason");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const { previous } = await upsertSetting(tx, "kill_switch", input.enabled ? "on" : "off");
    assert(previous === null || previous === "on" || previous === "off", "the kill switch is on or off");
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "set_kill_switch",
      target: "kill_switch",
      reason: input.reason,
      details: { old: previous === "on", new: input.enabled },
    });
    return { enabled: input.enabled };
  });
}

/**
 * setFailurePolicy sets what SDKs do for a feature while the ledger is unreachable and
 * audits the old and new policies; NotFound when the feature does not exist. A
 * fail-closed policy keeps no offline budget.
 */
export async function setFailurePolicy(
  deps: Deps,
  caller: Caller,
  idempotency: Idempotency,
  input: { featureKey: string; policy: FailurePolicyRow; reason: string },
): Promise<FeatureRow> {
  assert(input.reason.length > 0, "audited actions have a reason");
  const policy = input.policy.failurePolicy === "fail_closed" ? { failurePolicy: "fail_closed" as const, offlineCreditsMax: 0n, offlineMsMax: 0n } : input.policy;
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const changed = await updateFailurePolicy(tx, input.featureKey, policy);
    if (changed === null) throw notFound("FEATURE_NOT_FOUND", "feature key", input.featureKey);
    const show = (p: FailurePolicyRow) => ({ policy: p.failurePolicy, offline_credits_max: p.offlineCreditsMax.toString(), offline_ms_max: p.offlineMsMax.toString() });
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "set_failure_policy",
      target: `feature:${input.featureKey}`,
      reason: input.reason,
      details: { old: show(changed.previous), new: show(policy) },
    });
    return changed.feature;
  });
}
