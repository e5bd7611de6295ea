// SetAutoRecharge, GetAutoRecharge and ListAutoRecharges: a customer's auto-recharge and
// balance-low alert per credit type. Setting them copies the thresholds onto the balance
// row under its lock, so that the write path's next change of that balance compares
// available with them (write-group.ts); a balance without thresholds costs it nothing.
import { LedgerError, invalid, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { selectBundle } from "../store/billing-store.js";
import { selectCreditType } from "../store/catalog-store.js";
import { mapDriverErrors, type Tx } from "../store/database.js";
import {
  copyThresholds,
  flagRechargeDue,
  type RechargeSettingsRow,
  selectRechargeSettings,
  selectRechargeSettingsOf,
  selectStoredAvailable,
  upsertRechargeSettings,
} from "../store/recharge-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import type { TopUpItem } from "./create-top-up.js";
import { runIdempotent } from "./run-idempotent.js";

/** AutoRechargeInput is a validated SetAutoRecharge request. */
export interface AutoRechargeInput {
  customerId: string;
  creditTypeId: string;
  enabled: boolean;
  /** null: none. */
  threshold: bigint | null;
  /** null: none. */
  item: TopUpItem | null;
  monthlyRechargesMax: number;
  /** null: no alert. */
  lowThreshold: bigint | null;
  /** credit each recharge order when it opens. */
  creditOnCreation: boolean;
}

/**
 * setAutoRecharge stores a customer's settings for a credit type, audited. Enabling it on
 * a balance already below the threshold flags the balance for the recharge job at once.
 * NotFound CREDIT_TYPE_NOT_FOUND or BUNDLE_NOT_FOUND; InvalidArgument CREDIT_TYPE_MISMATCH,
 * RECHARGE_ITEM_MISSING, INVALID_THRESHOLD.
 */
export async function setAutoRecharge(deps: Deps, caller: Caller, idempotency: Idempotency, input: AutoRechargeInput): Promise<RechargeSettingsRow> {
  if (input.enabled && input.threshold === null) throw invalid("INVALID_THRESHOLD", "threshold", "must be positive when auto-recharge is enabled");
  if (input.enabled && input.item === null) throw invalid("RECHARGE_ITEM_MISSING", "item", "auto-recharge needs a bundle_id or an amount to buy");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    if ((await selectCreditType(tx, input.creditTypeId)) === null) throw notFound("CREDIT_TYPE_NOT_FOUND", "credit type id", input.creditTypeId);
    await checkItem(tx, input);
    const key = { customerId: input.customerId, creditTypeId: input.creditTypeId };
    // The balance's lock first, as every writer of a balance takes it.
    await copyThresholds(tx, key, { recharge: input.enabled ? input.threshold : null, low: input.lowThreshold });
    const now = deps.now();
    const before = await selectRechargeSettings(tx, key, now, "update");
    const after = await upsertRechargeSettings(tx, { ...key, ...itemColumns(input.item), enabled: input.enabled, threshold: input.threshold, monthlyRechargesMax: input.monthlyRechargesMax, lowThreshold: input.lowThreshold, creditOnCreation: input.creditOnCreation, updatedBy: caller.keyId }, now);
    assert(after.enabled === input.enabled && after.threshold === input.threshold, "the settings are stored as asked");
    if (after.enabled && after.threshold !== null) {
      const available = await selectStoredAvailable(tx, key);
      if (available < after.threshold) await flagRechargeDue(tx, key, available);
    }
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "set_auto_recharge",
      target: `customer:${input.customerId}`,
      reason: "",
      details: { old: before === null ? null : auditView(before), new: auditView(after), credit_type_id: input.creditTypeId },
    });
    return after;
  });
}

/** checkItem refuses a bundle that does not exist or credits another credit type, and an amount of another credit type. */
async function checkItem(tx: Tx, input: AutoRechargeInput): Promise<void> {
  const item = input.item;
  if (item === null) return;
  const mismatch = (field: string, creditTypeId: string) =>
    new LedgerError("invalid", "CREDIT_TYPE_MISMATCH", `${field}: credits ${creditTypeId}, not ${input.creditTypeId}`, { field, credit_type_id: creditTypeId });
  if (item.kind === "amount") {
    if (item.creditTypeId !== input.creditTypeId) throw mismatch("amount.credit_type_id", item.creditTypeId);
    return;
  }
  const bundle = await selectBundle(tx, item.bundleId, item.version);
  if (bundle === null) throw notFound("BUNDLE_NOT_FOUND", "bundle id", item.version === null ? item.bundleId : `${item.bundleId}@${item.version}`);
  if (bundle.creditTypeId !== input.creditTypeId) throw mismatch("bundle_id", bundle.creditTypeId);
}

function itemColumns(item: TopUpItem | null) {
  if (item?.kind === "bundle") return { bundleId: item.bundleId, bundleVersion: item.version, credits: null, currency: null, priceMinor: null };
  if (item?.kind === "amount") return { bundleId: null, bundleVersion: null, credits: item.credits, currency: item.currency, priceMinor: item.priceMinor };
  return { bundleId: null, bundleVersion: null, credits: null, currency: null, priceMinor: null };
}

function auditView(row: RechargeSettingsRow): Record<string, unknown> {
  return {
    enabled: row.enabled,
    threshold: row.threshold?.toString() ?? null,
    bundle_id: row.bundleId,
    bundle_version: row.bundleVersion,
    credits: row.credits?.toString() ?? null,
    currency: row.currency,
    price_minor: row.priceMinor?.toString() ?? null,
    monthly_recharges_max: row.monthlyRechargesMax,
    low_threshold: row.lowThreshold?.toString() ?? null,
    credit_on_creation: row.creditOnCreation,
  };
}

/** getAutoRecharge reads a customer's settings for a credit type. NotFound AUTO_RECHARGE_NOT_FOUND. */
export async function getAutoRecharge(deps: Deps, key: { customerId: string; creditTypeId: string }): Promise<RechargeSettingsRow> {
  const row = await mapDriverErrors(() => selectRechargeSettings(deps.pool, key, deps.now(), "none"));
  if (row === null) throw notFound("AUTO_RECHARGE_NOT_FOUND", "customer id", `${key.customerId}/${key.creditTypeId}`);
  return row;
}

/** listAutoRecharges reads a customer's settings, by credit type (a customer has one per credit type at most). */
export async function listAutoRecharges(deps: Deps, customerId: string): Promise<RechargeSettingsRow[]> {
  return mapDriverErrors(() => selectRechargeSettingsOf(deps.pool, customerId, deps.now(), limits.pageSizeMax));
}
