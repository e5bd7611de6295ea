// The bundle catalog: CreateBundle adds a bundle or its next version (versions never
// change, so orders keep the terms they were made on); ListBundles reads the catalog.
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { type BundleRow, insertBundleVersion, selectBundles } from "../store/billing-store.js";
import { selectCreditType } from "../store/catalog-store.js";
import { isUniqueViolation, mapDriverErrors } from "../store/database.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { runIdempotent } from "./run-idempotent.js";

/** BundleInput is a validated CreateBundle request. */
export type BundleInput = Omit<BundleRow, "version" | "createdAt">;

/** createBundle adds the next version of a bundle, audited. NotFound CREDIT_TYPE_NOT_FOUND for an unknown credit type. */
export async function createBundle(deps: Deps, caller: Caller, idempotency: Idempotency, input: BundleInput): Promise<BundleRow> {
  assert(input.credits > 0n && input.bonusCredits >= 0n && input.priceMinor > 0n, "a bundle's figures are decoded");
  try {
    return await runIdempotent(deps, caller, idempotency, async (tx) => {
      if ((await selectCreditType(tx, input.creditTypeId)) === null) throw notFound("CREDIT_TYPE_NOT_FOUND", "credit type id", input.creditTypeId);
      const created = await insertBundleVersion(tx, { ...input, createdBy: caller.keyId });
      await insertAuditRecord(tx, {
        actor: caller.keyId,
        requestId: caller.requestId,
        action: "create_bundle",
        target: `bundle:${input.bundleId}`,
        reason: "",
        details: { old: null, new: bundleJson(created) },
      });
      return created;
    });
  } catch (error) {
    // Two versions of one bundle created at once: the loser retries with its request id.
    if (isUniqueViolation(error, "bundles_pkey")) {
      throw new LedgerError("conflict", "CONCURRENT_UPDATE", "a concurrent CreateBundle made this version; retry with the same request id", {}, { cause: error });
    }
    throw error;
  }
}

function bundleJson(bundle: BundleRow) {
  return {
    version: bundle.version,
    display_name: bundle.displayName,
    credit_type_id: bundle.creditTypeId,
    credits: bundle.credits.toString(),
    bonus_credits: bundle.bonusCredits.toString(),
    currency: bundle.currency,
    price_minor: bundle.priceMinor.toString(),
    credit_expiry_seconds: bundle.creditExpirySeconds?.toString() ?? null,
  };
}

/** listBundles reads the latest version of each bundle, or every version. */
export async function listBundles(deps: Deps, input: { allVersions: boolean }): Promise<BundleRow[]> {
  return mapDriverErrors(() => selectBundles(deps.pool, { allVersions: input.allVersions, limit: limits.bundlesListedMax }));
}
