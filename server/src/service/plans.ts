// The plan catalog: CreatePlan adds a plan or its next version (versions never change,
// so subscribers keep the terms they subscribed on until moved); ListPlans and GetPlan
// read it.
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { selectCreditType } from "../store/catalog-store.js";
import { isUniqueViolation, mapDriverErrors, type Tx } from "../store/database.js";
import { allotmentJson, insertPlanVersion, type PlanRow, selectMissingBundleIds, selectPlan, selectPlans } from "../store/plan-store.js";
import { selectMissingPricingVersionIds } from "../store/pricing-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { runIdempotent } from "./run-idempotent.js";

/** PlanInput is a validated CreatePlan request. */
export type PlanInput = Omit<PlanRow, "version" | "createdAt">;

/** createPlan adds the next version of a plan, audited. NotFound for an unknown credit type, bundle or pricing version. */
export async function createPlan(deps: Deps, caller: Caller, idempotency: Idempotency, input: PlanInput): Promise<PlanRow> {
  assert(input.allotments.length > 0 && input.allotments.every((allotment) => allotment.amount > 0n), "a plan's allotments are decoded");
  try {
    return await runIdempotent(deps, caller, idempotency, async (tx) => {
      await requireReferences(tx, input);
      const created = await insertPlanVersion(tx, { ...input, createdBy: caller.keyId });
      await insertAuditRecord(tx, { actor: caller.keyId, requestId: caller.requestId, action: "create_plan", target: `plan:${input.planId}`, reason: "", details: { old: null, new: planJson(created) } });
      return created;
    });
  } catch (error) {
    // Two versions of one plan created at once: the loser retries with its request id.
    if (isUniqueViolation(error, "plans_pkey")) {
      throw new LedgerError("conflict", "CONCURRENT_UPDATE", "a concurrent CreatePlan made this version; retry with the same request id", {}, { cause: error });
    }
    throw error;
  }
}

/** requireReferences checks that what a plan names exists: its credit types, bundles and pricing version. */
async function requireReferences(tx: Tx, input: PlanInput): Promise<void> {
  const creditTypeIds = [...new Set(input.allotments.map((allotment) => allotment.creditTypeId))];
  for (const creditTypeId of creditTypeIds) {
    if ((await selectCreditType(tx, creditTypeId)) === null) throw notFound("CREDIT_TYPE_NOT_FOUND", "credit type id", creditTypeId);
  }
  const missingBundles = await selectMissingBundleIds(tx, input.bundleIds);
  if (missingBundles.length > 0) throw notFound("BUNDLE_NOT_FOUND", "bundle id", missingBundles[0]);
  if (input.pricingVersionId !== null && (await selectMissingPricingVersionIds(tx, [input.pricingVersionId])).length > 0) {
    throw notFound("PRICING_VERSION_NOT_FOUND", "pricing version id", input.pricingVersionId);
  }
}

/** planJson is a plan version as the audit log keeps it. */
export function planJson(plan: PlanRow) {
  return {
    version: plan.version,
    display_name: plan.displayName,
    allotments: plan.allotments.map(allotmentJson),
    bundle_ids: plan.bundleIds,
    pricing_version_id: plan.pricingVersionId,
  };
}

/** listPlans reads the latest version of each plan, or every version. */
export async function listPlans(deps: Deps, input: { allVersions: boolean }): Promise<PlanRow[]> {
  return mapDriverErrors(() => selectPlans(deps.pool, { allVersions: input.allVersions, limit: limits.plansListedMax }));
}

/** getPlan reads one version of a plan (the latest when version is null). NotFound PLAN_NOT_FOUND. */
export async function getPlan(deps: Deps, input: { planId: string; version: number | null }): Promise<PlanRow> {
  const plan = await mapDriverErrors(() => selectPlan(deps.pool, input.planId, input.version));
  if (plan === null) throw notFound("PLAN_NOT_FOUND", "plan id", input.version === null ? input.planId : `${input.planId} version ${input.version}`);
  return plan;
}
