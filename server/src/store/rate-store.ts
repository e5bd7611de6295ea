// Reading what rating needs: each customer's rate for a feature (override, pinned
// pricing version, or the feature's base rate), the carried remainders, and settings.
import type { Db } from "./database.js";
import type { Rollout } from "../ledger/enforcement.js";
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
  /** another mode for a cohort of the feature's customers, if any. */
  rollout: Rollout | null;
  /** when the customer's pin or an override last changed (epoch ms); null: never. Rates at earlier times may differ. */
  changedAtMs: number | null;
}

/**
 * rateQuery is the SQL that resolves the rate of each (customer, feature) pair given as
 * two text[] parameters: the override, else the customer's pinned pricing version, else
 * the feature's base rate. With a third, timestamptz[] parameter, each pair's rate is the
 * one in force at its time: the pin and override a later change replaced, if any (see
 * customer_pricing_changes); rows then carry n, the pair's position from 1. Pairs whose
 * customer or feature does not exist are absent. Int8 columns come as text, so that the
 * rows read the same as JSON. Enforcement (mode, rollout) is always the current one.
 */
export function rateQuery(customerIds: string, featureKeys: string, ats?: string): string {
  const version = ats === undefined ? "c.pricing_version_id" : "(case when pc.change_id is null then c.pricing_version_id else pc.from_pricing_version_id end)";
  const override = (column: string) => (ats === undefined ? `o.${column}` : `(case when oc.change_id is null then o.${column} else oc.from_${column} end)`);
  const history =
    ats === undefined
      ? ""
      : `left join lateral (
             select change_id, from_pricing_version_id from customer_pricing_changes x
             where x.customer_id = p.customer_id and x.effective_at > p.at order by x.effective_at, x.change_id limit 1) pc on true
           left join lateral (
             select change_id, from_credits, from_per_units from rate_override_changes x
             where x.customer_id = p.customer_id and x.feature_key = p.feature_key and x.effective_at > p.at
             order by x.effective_at, x.change_id limit 1) oc on true`;
  return `select p.customer_id, p.feature_key, f.credit_type_id, f.enforcement_mode, ${version} as pricing_version_id,
             ${override("credits")}::text as o_credits, ${override("per_units")}::text as o_per_units,
             r.credits::text as r_credits, r.per_units::text as r_per_units, f.burn_rate::text as burn_rate,
             ro.mode as rollout_mode, ro.customer_ids as rollout_customer_ids, ro.percent as rollout_percent,
             (extract(epoch from c.pricing_changed_at) * 1000)::bigint::text as changed_at_ms${ats === undefined ? "" : ", p.n"}
           from unnest(${customerIds}::text[], ${featureKeys}::text[]${ats === undefined ? "" : `, ${ats}::timestamptz[]`})
             ${ats === undefined ? "as p(customer_id, feature_key)" : "with ordinality as p(customer_id, feature_key, at, n)"}
           join customers c on c.customer_id = p.customer_id
           join features f on f.feature_key = p.feature_key
           left join rate_overrides o on o.customer_id = p.customer_id and o.feature_key = p.feature_key
           ${history}
           left join pricing_rates r on r.pricing_version_id = ${version} and r.feature_key = p.feature_key
           left join feature_rollouts ro on ro.feature_key = p.feature_key`;
}

/** toRateRow reads a row of rateQuery (as the driver returns it, or as JSON). */
export function toRateRow(row: Record<string, unknown>): RateRow {
  const override = row.o_credits !== null;
  const versioned = !override && row.r_credits !== null;
  return {
    customerId: row.customer_id as string,
    featureKey: row.feature_key as string,
    creditTypeId: row.credit_type_id as string,
    enforcementMode: row.enforcement_mode as EnforcementMode,
    credits: BigInt((override ? row.o_credits : versioned ? row.r_credits : row.burn_rate) as string),
    perUnits: BigInt((override ? row.o_per_units : versioned ? row.r_per_units : "1") as string),
    pricingVersionId: versioned ? (row.pricing_version_id as string) : null,
    override,
    rollout:
      row.rollout_mode === null || row.rollout_mode === undefined
        ? null
        : { mode: row.rollout_mode as Rollout["mode"], customerIds: row.rollout_customer_ids as string[], percent: Number(row.rollout_percent) },
    changedAtMs: row.changed_at_ms === null || row.changed_at_ms === undefined ? null : Number(row.changed_at_ms),
  };
}

/**
 * selectRates reads the effective rate of each (customer, feature) pair that exists;
 * pairs whose customer or feature does not exist are absent. No locks.
 */
export async function selectRates(db: Db, pairs: { customerId: string; featureKey: string }[]): Promise<RateRow[]> {
  if (pairs.length === 0) return [];
  const result = await db.query({
    name: "select_rates",
    text: rateQuery("$1", "$2"),
    values: [pairs.map((pair) => pair.customerId), pairs.map((pair) => pair.featureKey)],
  });
  return result.rows.map(toRateRow);
}

/** selectSetting reads one deployment setting, or null. No locks. */
export async function selectSetting(db: Db, key: "default_pricing_version_id" | "kill_switch"): Promise<string | null> {
  const result = await db.query({ name: "select_setting", text: "select value from settings where key = $1", values: [key] });
  return result.rows.length === 0 ? null : (result.rows[0].value as string);
}
