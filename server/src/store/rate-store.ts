// Reading what rating needs: each customer's rate for a feature (override, pinned
// pricing version, or the feature's base rate), the carried remainders, and settings.
import type { Db, Tx } from "./database.js";
import type { EnforcementMode } from "./catalog-store.js";

/** RateRow is a customer's effective rate for a feature, with where it came from. */
export interface RateRow {
  customerId: string;
  featureKey: string;
  creditTypeId: string;
  enforcementMode: EnforcementMode;
  credits: bigint;
  perUnits: bigint;
  /** null: the feature's base rate. */
  pricingVersionId: string | null;
  override: boolean;
}

/**
 * selectRates reads the effective rate of each (customer, feature) pair that exists;
 * pairs whose customer or feature does not exist are absent. No locks.
 */
export async function selectRates(db: Db, pairs: { customerId: string; featureKey: string }[]): Promise<RateRow[]> {
  if (pairs.length === 0) return [];
  const result = await db.query({
    name: "select_rates",
    text: `select p.customer_id, p.feature_key, f.credit_type_id, f.enforcement_mode, c.pricing_version_id,
             o.credits as o_credits, o.per_units as o_per_units,
             r.credits as r_credits, r.per_units as r_per_units, f.burn_rate
           from unnest($1::text[], $2::text[]) as p(customer_id, feature_key)
           join customers c on c.customer_id = p.customer_id
           join features f on f.feature_key = p.feature_key
           left join rate_overrides o on o.customer_id = p.customer_id and o.feature_key = p.feature_key
           left join pricing_rates r on r.pricing_version_id = c.pricing_version_id and r.feature_key = p.feature_key`,
    values: [pairs.map((pair) => pair.customerId), pairs.map((pair) => pair.featureKey)],
  });
  return result.rows.map((row) => {
    const override = row.o_credits !== null;
    const versioned = !override && row.r_credits !== null;
    return {
      customerId: row.customer_id,
      featureKey: row.feature_key,
      creditTypeId: row.credit_type_id,
      enforcementMode: row.enforcement_mode,
      credits: BigInt(override ? row.o_credits : versioned ? row.r_credits : row.burn_rate),
      perUnits: BigInt(override ? row.o_per_units : versioned ? row.r_per_units : 1),
      pricingVersionId: versioned ? row.pricing_version_id : null,
      override,
    };
  });
}

/** CarryRow is the remainder carried for a customer and feature, in 1/perUnits credits. */
export interface CarryRow {
  featureKey: string;
  perUnits: bigint;
  carry: bigint;
}

/** selectCarries reads the carries of many customers' features. Expects their balance rows locked. */
export async function selectCarries(tx: Tx, pairs: { customerId: string; featureKey: string }[]): Promise<(CarryRow & { customerId: string })[]> {
  if (pairs.length === 0) return [];
  const result = await tx.query({
    name: "select_carries",
    text: `select c.customer_id, c.feature_key, c.per_units, c.carry from usage_carries c
           join unnest($1::text[], $2::text[]) as p(customer_id, feature_key) using (customer_id, feature_key)`,
    values: [pairs.map((pair) => pair.customerId), pairs.map((pair) => pair.featureKey)],
  });
  return result.rows.map((row) => ({ customerId: row.customer_id, featureKey: row.feature_key, perUnits: BigInt(row.per_units), carry: BigInt(row.carry) }));
}

/** upsertCarries writes carries of many customers in one statement. Expects their balance rows locked. */
export async function upsertCarries(tx: Tx, carries: (CarryRow & { customerId: string })[]): Promise<void> {
  if (carries.length === 0) return;
  await tx.query({
    name: "upsert_carries",
    text: `insert into usage_carries (customer_id, feature_key, per_units, carry)
           select * from unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
           on conflict (customer_id, feature_key) do update set per_units = excluded.per_units, carry = excluded.carry`,
    values: [carries.map((c) => c.customerId), carries.map((c) => c.featureKey), carries.map((c) => c.perUnits.toString()), carries.map((c) => c.carry.toString())],
  });
}

/** selectSetting reads one deployment setting, or null. No locks. */
export async function selectSetting(db: Db, key: "default_pricing_version_id" | "kill_switch"): Promise<string | null> {
  const result = await db.query({ name: "select_setting", text: "select value from settings where key = $1", values: [key] });
  return result.rows.length === 0 ? null : (result.rows[0].value as string);
}
