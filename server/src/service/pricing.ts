// Pricing versions and who is on them: publishing an immutable set of rates, choosing
// the default for new customers, re-pinning a cohort, and per-customer rate overrides.
// Every change of what a customer pays is audited in the transaction that makes it.
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { type AuditDetails, insertAuditRecord } from "../store/audit-store.js";
import { customerExists, selectFeature } from "../store/catalog-store.js";
import { type Db, type Tx, withSnapshot } from "../store/database.js";
import {
  deleteRateOverride,
  insertOverrideChange,
  insertPricingRates,
  insertPricingVersion,
  moveCustomers,
  type PricingVersionRow,
  type RateValue,
  selectMissingFeatureKeys,
  selectPricingVersion,
  selectPricingVersions,
  upsertRateOverride,
  upsertSetting,
} from "../store/pricing-store.js";
import { selectSetting } from "../store/rate-store.js";
import { enqueueWebhookEvents } from "../store/webhook-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { runIdempotent } from "./run-idempotent.js";

const pricingVersionsListedMax = limits.pageSizeMax;

/** rateJson is a rate as audit details hold it: JSON has no int64, so decimal strings. */
function rateJson(rate: RateValue | null): { credits: string; per_units: string } | null {
  return rate === null ? null : { credits: rate.credits.toString(), per_units: rate.perUnits.toString() };
}

async function requirePricingVersion(db: Db, pricingVersionId: string): Promise<PricingVersionRow> {
  const version = await selectPricingVersion(db, pricingVersionId);
  if (version === null) throw notFound("PRICING_VERSION_NOT_FOUND", "pricing version id", pricingVersionId);
  return version;
}

/** setDefault makes a version the default for new customers and audits it; the version must exist. */
async function setDefault(tx: Tx, caller: Caller, input: { pricingVersionId: string; reason: string; via: string }): Promise<void> {
  const { previous } = await upsertSetting(tx, "default_pricing_version_id", input.pricingVersionId);
  const details: AuditDetails = { old: previous, new: input.pricingVersionId, via: input.via };
  await insertAuditRecord(tx, {
    actor: caller.keyId,
    requestId: caller.requestId,
    action: "set_default_pricing_version",
    target: `pricing_version:${input.pricingVersionId}`,
    reason: input.reason,
    details,
  });
}

/** CreatePricingVersionInput is a validated CreatePricingVersion request. */
export interface CreatePricingVersionInput {
  pricingVersionId: string;
  displayName: string;
  /** each feature at most once; perUnits already positive. */
  rates: ({ featureKey: string } & RateValue)[];
  makeDefault: boolean;
}

/**
 * createPricingVersion publishes a version and its rates in one transaction, optionally
 * as the new default (audited, with no reason: the request has none). AlreadyExists when
 * the id is taken, NotFound when a rate names no feature.
 */
export async function createPricingVersion(deps: Deps, caller: Caller, idempotency: Idempotency, input: CreatePricingVersionInput): Promise<PricingVersionRow> {
  assert(new Set(input.rates.map((rate) => rate.featureKey)).size === input.rates.length, "each feature is rated once");
  assert(input.rates.every((rate) => rate.credits >= 0n && rate.perUnits > 0n), "rates are decoded");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const created = await insertPricingVersion(tx, { pricingVersionId: input.pricingVersionId, displayName: input.displayName, createdBy: caller.keyId });
    if (created === null) {
      throw new LedgerError("exists", "PRICING_VERSION_EXISTS", `pricing version ${JSON.stringify(input.pricingVersionId)} exists`, {
        pricing_version_id: input.pricingVersionId,
      });
    }
    const missing = await selectMissingFeatureKeys(tx, input.rates.map((rate) => rate.featureKey));
    if (missing.length > 0) throw notFound("FEATURE_NOT_FOUND", "feature key", missing[0]);
    const inserted = await insertPricingRates(tx, input.pricingVersionId, input.rates);
    assert(inserted === input.rates.length, "every rate was inserted");
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "create_pricing_version",
      target: `pricing_version:${input.pricingVersionId}`,
      reason: "",
      details: {
        old: null,
        new: {
          display_name: input.displayName,
          rates: Object.fromEntries(input.rates.map((rate) => [rate.featureKey, rateJson(rate)])),
          make_default: input.makeDefault,
        },
      },
    });
    if (input.makeDefault) await setDefault(tx, caller, { pricingVersionId: input.pricingVersionId, reason: "", via: "create_pricing_version" });
    return requirePricingVersion(tx, input.pricingVersionId);
  });
}

/** listPricingVersions reads every version in creation order and the default, from one snapshot. */
export async function listPricingVersions(deps: Deps): Promise<{ versions: PricingVersionRow[]; defaultPricingVersionId: string | null }> {
  return withSnapshot(deps.pool, async (tx) => {
    const versions = await selectPricingVersions(tx, pricingVersionsListedMax);
    const defaultPricingVersionId = await selectSetting(tx, "default_pricing_version_id");
    return { versions, defaultPricingVersionId };
  });
}

/** setDefaultPricingVersion sets the version new customers are pinned to; customers already pinned keep theirs. */
export async function setDefaultPricingVersion(
  deps: Deps,
  caller: Caller,
  idempotency: Idempotency,
  input: { pricingVersionId: string; reason: string },
): Promise<{ pricingVersionId: string }> {
  assert(input.reason.length > 0, "audited actions have a reason");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    await requirePricingVersion(tx, input.pricingVersionId);
    await setDefault(tx, caller, { ...input, via: "set_default_pricing_version" });
    return { pricingVersionId: input.pricingVersionId };
  });
}

/** MoveCustomersInput is a validated MoveCustomersToPricingVersion request. */
export interface MoveCustomersInput {
  /** null: the customers pinned to no version. */
  fromPricingVersionId: string | null;
  toPricingVersionId: string;
  /** empty: the whole cohort. */
  customerIds: string[];
  reason: string;
}

/** moveCustomersToPricingVersion re-pins a cohort (or part of it) in one statement and audits the move. */
export async function moveCustomersToPricingVersion(deps: Deps, caller: Caller, idempotency: Idempotency, input: MoveCustomersInput): Promise<{ movedCount: bigint }> {
  assert(input.fromPricingVersionId !== input.toPricingVersionId, "a move changes the version");
  assert(input.reason.length > 0, "audited actions have a reason");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    if (input.fromPricingVersionId !== null) await requirePricingVersion(tx, input.fromPricingVersionId);
    await requirePricingVersion(tx, input.toPricingVersionId);
    const moved = await moveCustomers(tx, { from: input.fromPricingVersionId, to: input.toPricingVersionId, customerIds: input.customerIds, at: deps.now() });
    const movedCount = BigInt(moved.length);
    // In the move's transaction: an event per customer moved, exactly when the move commits.
    const data = { fromPricingVersionId: input.fromPricingVersionId ?? "", toPricingVersionId: input.toPricingVersionId, reason: input.reason };
    await enqueueWebhookEvents(tx, "pricing_version.moved", moved.map((customerId) => ({ customerId, payload: data })));
    assert(input.customerIds.length === 0 || movedCount <= BigInt(input.customerIds.length), "only named customers move");
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "move_customers_to_pricing_version",
      target: `pricing_version:${input.toPricingVersionId}`,
      reason: input.reason,
      details: { old: input.fromPricingVersionId, new: input.toPricingVersionId, customer_ids: input.customerIds, moved_count: movedCount.toString() },
    });
    return { movedCount };
  });
}

/** SetRateOverrideInput is a validated SetRateOverride request. */
export interface SetRateOverrideInput {
  customerId: string;
  featureKey: string;
  /** null clears the override. */
  rate: RateValue | null;
  reason: string;
}

/** setRateOverride sets or clears a customer's own rate for a feature and audits it; returns the override now in force. */
export async function setRateOverride(deps: Deps, caller: Caller, idempotency: Idempotency, input: SetRateOverrideInput): Promise<{ rate: RateValue | null }> {
  assert(input.rate === null || (input.rate.credits >= 0n && input.rate.perUnits > 0n), "rates are decoded");
  assert(input.reason.length > 0, "audited actions have a reason");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    if (!(await customerExists(tx, input.customerId))) throw notFound("CUSTOMER_NOT_FOUND", "customer id", input.customerId);
    if ((await selectFeature(tx, input.featureKey)) === null) throw notFound("FEATURE_NOT_FOUND", "feature key", input.featureKey);
    const key = { customerId: input.customerId, featureKey: input.featureKey };
    const { previous } = input.rate === null ? await deleteRateOverride(tx, key) : await upsertRateOverride(tx, { ...key, ...input.rate });
    // Events before now keep the rate they had: the change is kept with what it replaced.
    if (previous !== null || input.rate !== null) await insertOverrideChange(tx, { ...key, from: previous, to: input.rate, at: deps.now() });
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "set_rate_override",
      target: `customer:${input.customerId}`,
      reason: input.reason,
      details: { feature_key: input.featureKey, old: rateJson(previous), new: rateJson(input.rate) },
    });
    return { rate: input.rate };
  });
}
