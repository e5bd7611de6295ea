// Pricing versions and their rates, per-customer rate overrides, cohort moves,
// deployment settings and feature enforcement modes: what the pricing and enforcement
// admin actions write. Pricing versions are immutable: the database refuses UPDATE and
// DELETE of pricing_versions and pricing_rates, so this file only inserts and reads them.
import type { Rollout } from "../ledger/enforcement.js";
import type { Db, Tx } from "./database.js";
import { type EnforcementMode, featureColumns, type FeatureRow, rolloutColumn, toFeature } from "./catalog-store.js";

/** RateValue is a burn rate: credits (smallest unit) per perUnits units of quantity. */
export interface RateValue {
  credits: bigint;
  perUnits: bigint;
}

/** PricingVersionRow is a stored pricing version with its rates, by feature key. */
export interface PricingVersionRow {
  pricingVersionId: string;
  displayName: string;
  createdBy: string;
  createdAt: Date;
  rates: ({ featureKey: string } & RateValue)[];
}

/** SettingKey names a deployment-wide setting. */
export type SettingKey = "default_pricing_version_id" | "kill_switch";

/**
 * insertPricingVersion adds a version without rates; null when the id exists. Run it in
 * the transaction that then inserts the rates, so a version is never seen half-made.
 */
export async function insertPricingVersion(
  tx: Tx,
  version: { pricingVersionId: string; displayName: string; createdBy: string },
): Promise<{ createdAt: Date } | null> {
  const result = await tx.query({
    name: "insert_pricing_version",
    text: `insert into pricing_versions (pricing_version_id, display_name, created_by) values ($1, $2, $3)
           on conflict do nothing returning created_at`,
    values: [version.pricingVersionId, version.displayName, version.createdBy],
  });
  return result.rows.length === 0 ? null : { createdAt: result.rows[0].created_at as Date };
}

/**
 * insertPricingRates adds a version's rates in one statement. Expects the version
 * inserted in the same transaction and every feature key to exist (a foreign key
 * refuses others) and to appear once (the primary key refuses repeats).
 */
export async function insertPricingRates(tx: Tx, pricingVersionId: string, rates: ({ featureKey: string } & RateValue)[]): Promise<number> {
  if (rates.length === 0) return 0;
  const result = await tx.query({
    name: "insert_pricing_rates",
    text: `insert into pricing_rates (pricing_version_id, feature_key, credits, per_units)
           select $1, * from unnest($2::text[], $3::bigint[], $4::bigint[])`,
    values: [pricingVersionId, rates.map((rate) => rate.featureKey), rates.map((rate) => rate.credits.toString()), rates.map((rate) => rate.perUnits.toString())],
  });
  return result.rowCount ?? 0;
}

/** selectMissingFeatureKeys returns the keys, of those given, that name no feature. No locks. */
export async function selectMissingFeatureKeys(db: Db, featureKeys: string[]): Promise<string[]> {
  if (featureKeys.length === 0) return [];
  const result = await db.query({
    name: "select_missing_feature_keys",
    text: `select k.feature_key from unnest($1::text[]) with ordinality as k(feature_key, position)
           where not exists (select 1 from features f where f.feature_key = k.feature_key)
           order by k.position`,
    values: [featureKeys],
  });
  return result.rows.map((row) => row.feature_key as string);
}

/** selectMissingPricingVersionIds returns the ids, of those given, that name no pricing version, in the order given. No locks. */
export async function selectMissingPricingVersionIds(db: Db, pricingVersionIds: string[]): Promise<string[]> {
  if (pricingVersionIds.length === 0) return [];
  const result = await db.query({
    name: "select_missing_pricing_version_ids",
    text: `select k.pricing_version_id from unnest($1::text[]) with ordinality as k(pricing_version_id, position)
           where not exists (select 1 from pricing_versions v where v.pricing_version_id = k.pricing_version_id)
           order by k.position`,
    values: [pricingVersionIds],
  });
  return result.rows.map((row) => row.pricing_version_id as string);
}

const versionColumns = `v.pricing_version_id, v.display_name, v.created_by, v.created_at,
  coalesce((select json_agg(json_build_object('featureKey', r.feature_key, 'credits', r.credits::text, 'perUnits', r.per_units::text)
              order by r.feature_key)
            from pricing_rates r where r.pricing_version_id = v.pricing_version_id), '[]') as rates`;

function toPricingVersion(row: Record<string, unknown>): PricingVersionRow {
  return {
    pricingVersionId: row.pricing_version_id as string,
    displayName: row.display_name as string,
    createdBy: row.created_by as string,
    createdAt: row.created_at as Date,
    rates: (row.rates as { featureKey: string; credits: string; perUnits: string }[]).map((rate) => ({
      featureKey: rate.featureKey,
      credits: BigInt(rate.credits),
      perUnits: BigInt(rate.perUnits),
    })),
  };
}

/** selectPricingVersion reads one version with its rates, or null. No locks. */
export async function selectPricingVersion(db: Db, pricingVersionId: string): Promise<PricingVersionRow | null> {
  const result = await db.query({
    name: "select_pricing_version",
    text: `select ${versionColumns} from pricing_versions v where v.pricing_version_id = $1`,
    values: [pricingVersionId],
  });
  return result.rows.length === 0 ? null : toPricingVersion(result.rows[0]);
}

/** selectPricingVersions reads versions with their rates in creation order. No locks. */
export async function selectPricingVersions(db: Db, limit: number): Promise<PricingVersionRow[]> {
  const result = await db.query({
    name: "select_pricing_versions",
    text: `select ${versionColumns} from pricing_versions v order by v.seq limit $1`,
    values: [limit],
  });
  return result.rows.map(toPricingVersion);
}

/**
 * upsertSetting sets a deployment setting and returns its previous value (null when it
 * was never set). Locks the setting's row until the transaction ends, so concurrent
 * setters queue and each sees the value the one before it wrote. Only the very first
 * write of a key has no row to lock: two racing first writers may both see null.
 */
export async function upsertSetting(tx: Tx, key: SettingKey, value: string): Promise<{ previous: string | null }> {
  const result = await tx.query({
    name: "upsert_setting",
    // The insert reads `previous` (through `locked`) so that the lock is taken, and the
    // old value read, before the upsert; a CTE only referenced in RETURNING would run
    // after it and see nothing.
    text: `with previous as materialized (select value from settings where key = $1 for update)
           insert into settings (key, value) select $1::text, $2::text from (select count(*) from previous) as locked
           on conflict (key) do update set value = excluded.value, updated_at = now()
           returning (select value from previous) as previous`,
    values: [key, value],
  });
  return { previous: (result.rows[0].previous as string | null) ?? null };
}

/**
 * moveCustomers re-pins the customers pinned to `from` (null: to no version), or only
 * those of them named in customerIds when it is not empty, to `to`, as of `at`, in one
 * statement that also records each change in the customers' pricing history; returns the
 * ids of those that moved. Locks the moved customer rows. Any transaction.
 */
export async function moveCustomers(tx: Tx, move: { from: string | null; to: string; customerIds: string[]; at: Date }): Promise<string[]> {
  const result = await tx.query({
    name: "move_customers",
    text: `with moved as (
             update customers set pricing_version_id = $2, pricing_changed_at = greatest(pricing_changed_at, $4)
             where pricing_version_id is not distinct from $1
               and (cardinality($3::text[]) = 0 or customer_id = any($3::text[]))
             returning customer_id),
           history as (
             insert into customer_pricing_changes (customer_id, from_pricing_version_id, to_pricing_version_id, effective_at)
             select customer_id, $1, $2, $4 from moved order by customer_id
             returning 1)
           select (select coalesce(array_agg(customer_id order by customer_id), '{}') from moved) as moved, (select count(*) from history)::int as recorded`,
    values: [move.from, move.to, move.customerIds, move.at],
  });
  return result.rows[0].moved as string[];
}

/**
 * insertOverrideChange records a change of a customer's rate override in its pricing
 * history, as of `at` (from and to null: none). Any transaction; the caller holds the
 * override's lock (upsertRateOverride, deleteRateOverride).
 */
export async function insertOverrideChange(
  tx: Tx,
  change: { customerId: string; featureKey: string; from: RateValue | null; to: RateValue | null; at: Date },
): Promise<void> {
  const text = (value: bigint | undefined) => (value === undefined ? null : value.toString());
  await tx.query({
    name: "insert_override_change",
    text: `with history as (
             insert into rate_override_changes (customer_id, feature_key, from_credits, from_per_units, to_credits, to_per_units, effective_at)
             values ($1, $2, $3, $4, $5, $6, $7) returning 1)
           update customers set pricing_changed_at = greatest(pricing_changed_at, $7) where customer_id = $1`,
    values: [
      change.customerId, change.featureKey, text(change.from?.credits), text(change.from?.perUnits), text(change.to?.credits), text(change.to?.perUnits), change.at,
    ],
  });
}

/**
 * upsertRateOverride sets a customer's own rate for a feature and returns the rate it
 * replaced, or null. Locks the override row until the transaction ends. Expects the
 * customer and the feature to exist (foreign keys refuse others).
 */
export async function upsertRateOverride(
  tx: Tx,
  override: { customerId: string; featureKey: string } & RateValue,
): Promise<{ previous: RateValue | null }> {
  const result = await tx.query({
    name: "upsert_rate_override",
    // As in upsertSetting, the insert reads `previous` so the lock comes first.
    text: `with previous as materialized (
             select credits, per_units from rate_overrides where customer_id = $1 and feature_key = $2 for update)
           insert into rate_overrides (customer_id, feature_key, credits, per_units)
           select $1::text, $2::text, $3::bigint, $4::bigint from (select count(*) from previous) as locked
           on conflict (customer_id, feature_key) do update set credits = excluded.credits, per_units = excluded.per_units
           returning (select credits from previous) as previous_credits, (select per_units from previous) as previous_per_units`,
    values: [override.customerId, override.featureKey, override.credits.toString(), override.perUnits.toString()],
  });
  const row = result.rows[0];
  return { previous: row.previous_credits === null ? null : { credits: BigInt(row.previous_credits), perUnits: BigInt(row.previous_per_units) } };
}

/** RateOverrideRow is a customer's own rate for a feature, in force now. */
export interface RateOverrideRow extends RateValue {
  featureKey: string;
  /** when the change that set it took effect; null for an override set before changes were kept (migration 10). */
  effectiveAt: Date | null;
}

/**
 * selectRateOverrides reads a customer's overrides in force, by feature key, each with the
 * time of the last change of it (the one that set it: a removal deletes the override).
 * Reads rate_overrides by its primary key and the history by rate_override_changes_by_time;
 * no locks.
 */
export async function selectRateOverrides(db: Db, customerId: string, limit: number): Promise<RateOverrideRow[]> {
  const result = await db.query({
    name: "select_rate_overrides",
    text: `select o.feature_key, o.credits::text, o.per_units::text, c.effective_at
           from rate_overrides o
           left join lateral (
             select x.effective_at from rate_override_changes x
             where x.customer_id = o.customer_id and x.feature_key = o.feature_key
             order by x.effective_at desc, x.change_id desc limit 1) c on true
           where o.customer_id = $1
           order by o.feature_key collate "C"
           limit $2`,
    values: [customerId, limit],
  });
  return result.rows.map((row) => ({
    featureKey: row.feature_key as string,
    credits: BigInt(row.credits as string),
    perUnits: BigInt(row.per_units as string),
    effectiveAt: (row.effective_at as Date | null) ?? null,
  }));
}

/** deleteRateOverride clears a customer's own rate for a feature and returns it, or null when there was none. Any transaction. */
export async function deleteRateOverride(tx: Tx, override: { customerId: string; featureKey: string }): Promise<{ previous: RateValue | null }> {
  const result = await tx.query({
    name: "delete_rate_override",
    text: "delete from rate_overrides where customer_id = $1 and feature_key = $2 returning credits, per_units",
    values: [override.customerId, override.featureKey],
  });
  if (result.rows.length === 0) return { previous: null };
  return { previous: { credits: BigInt(result.rows[0].credits), perUnits: BigInt(result.rows[0].per_units) } };
}

/**
 * updateEnforcementMode sets a feature's enforcement mode and returns the feature after
 * the change with the mode it had before, or null when the feature does not exist. Locks
 * the feature row first, so the previous mode is the one this change replaced.
 */
export async function updateEnforcementMode(
  tx: Tx,
  featureKey: string,
  mode: EnforcementMode,
): Promise<{ feature: FeatureRow; previous: EnforcementMode } | null> {
  const result = await tx.query({
    name: "update_enforcement_mode",
    text: `update features f set enforcement_mode = $2
           from (select feature_key, enforcement_mode from features where feature_key = $1 for update) as previous
           where f.feature_key = previous.feature_key
           returning ${featureColumns.split(", ").map((c) => `f.${c}`).join(", ")}, ${rolloutColumn("f")}, previous.enforcement_mode as previous_mode`,
    values: [featureKey, mode],
  });
  if (result.rows.length === 0) return null;
  return { feature: toFeature(result.rows[0]), previous: result.rows[0].previous_mode };
}

/**
 * replaceRollout sets a feature's rollout, or with null clears it, and returns the rollout
 * it replaced; undefined when the feature does not exist. Locks the feature row (changes
 * of one feature's enforcement serialize).
 */
export async function replaceRollout(tx: Tx, featureKey: string, rollout: Rollout | null): Promise<{ previous: Rollout | null } | undefined> {
  const result = await tx.query({
    name: "replace_rollout",
    text: `with f as (select feature_key from features where feature_key = $1 for update),
           previous as (select jsonb_build_object('mode', mode, 'customer_ids', customer_ids, 'percent', percent) as rollout
                        from feature_rollouts where feature_key = $1),
           cleared as (delete from feature_rollouts where feature_key = $1 and $2::text is null and exists (select 1 from f) returning 1),
           set as (insert into feature_rollouts (feature_key, mode, customer_ids, percent)
                   select f.feature_key, $2, $3::text[], $4 from f where $2::text is not null
                   on conflict (feature_key) do update set mode = excluded.mode, customer_ids = excluded.customer_ids, percent = excluded.percent, updated_at = now()
                   returning 1)
           select (select count(*) from f)::int as found, (select rollout from previous) as previous,
             (select count(*) from cleared)::int + (select count(*) from set)::int as changed`,
    values: [featureKey, rollout?.mode ?? null, rollout?.customerIds ?? [], rollout?.percent ?? 0],
  });
  const row = result.rows[0];
  if (row.found === 0) return undefined;
  const previous = row.previous as { mode: Rollout["mode"]; customer_ids: string[]; percent: number } | null;
  return { previous: previous === null ? null : { mode: previous.mode, customerIds: previous.customer_ids, percent: previous.percent } };
}
