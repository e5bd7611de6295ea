// Credit types, features and customers: the catalog a balance refers to.
import type { Rollout } from "../ledger/enforcement.js";
import type { Db } from "./database.js";

/** CreditTypeRow is a stored credit type. */
export interface CreditTypeRow {
  creditTypeId: string;
  displayName: string;
  scale: number;
  createdAt: Date;
}

/** EnforcementMode is what a feature's balance check does. */
export type EnforcementMode = "enforce" | "observe" | "off";

/** FailurePolicy is what SDKs do for a feature while the ledger is unreachable. */
export type FailurePolicy = "fail_open" | "fail_closed";

/** FailurePolicyRow is a feature's failure policy; 0 budgets do not apply. */
export interface FailurePolicyRow {
  failurePolicy: FailurePolicy;
  offlineCreditsMax: bigint;
  offlineMsMax: bigint;
}

/** FeatureRow is a stored feature. */
export interface FeatureRow extends FailurePolicyRow {
  featureKey: string;
  displayName: string;
  creditTypeId: string;
  burnRate: bigint;
  enforcementMode: EnforcementMode;
  createdAt: Date;
  /** another mode for a cohort of the feature's customers, if any. */
  rollout: Rollout | null;
}

/** CustomerRow is a stored customer with its overdraft limits. */
export interface CustomerRow {
  customerId: string;
  displayName: string;
  createdAt: Date;
  overdraftLimits: { creditTypeId: string; limit: bigint }[];
  /** null: the features' base rates. */
  pricingVersionId: string | null;
}

function toCreditType(row: Record<string, unknown>): CreditTypeRow {
  return { creditTypeId: row.credit_type_id as string, displayName: row.display_name as string, scale: row.scale as number, createdAt: row.created_at as Date };
}

/** toFeature converts a driver row read with featureColumns. */
export function toFeature(row: Record<string, unknown>): FeatureRow {
  return {
    featureKey: row.feature_key as string,
    displayName: row.display_name as string,
    creditTypeId: row.credit_type_id as string,
    burnRate: BigInt(row.burn_rate as string),
    enforcementMode: row.enforcement_mode as EnforcementMode,
    createdAt: row.created_at as Date,
    failurePolicy: row.failure_policy as FailurePolicy,
    offlineCreditsMax: BigInt(row.offline_credits_max as string),
    offlineMsMax: BigInt(row.offline_ms_max as string),
    rollout: rolloutFromJson(row.rollout),
  };
}

/** rolloutFromJson reads the rollout that rolloutColumn returns. */
function rolloutFromJson(json: unknown): Rollout | null {
  if (json === null || json === undefined) return null;
  const { mode, customer_ids: customerIds, percent } = json as { mode: Rollout["mode"]; customer_ids: string[]; percent: number };
  return { mode, customerIds, percent };
}

/** rolloutColumn selects the rollout (as JSON, null when none) of the feature row aliased alias, as column "rollout" for toFeature. */
export function rolloutColumn(alias: string): string {
  return `(select jsonb_build_object('mode', ro.mode, 'customer_ids', ro.customer_ids, 'percent', ro.percent)
             from feature_rollouts ro where ro.feature_key = ${alias}.feature_key) as rollout`;
}

/** featureColumns are the columns toFeature reads. */
export const featureColumns =
  "feature_key, display_name, credit_type_id, burn_rate, enforcement_mode, created_at, failure_policy, offline_credits_max, offline_ms_max";

/**
 * updateFailurePolicy sets a feature's failure policy, returning the feature and the
 * policy it replaced; null when the feature does not exist. Locks the feature row.
 */
export async function updateFailurePolicy(db: Db, featureKey: string, policy: FailurePolicyRow): Promise<{ feature: FeatureRow; previous: FailurePolicyRow } | null> {
  const result = await db.query({
    name: "update_failure_policy",
    text: `update features f set failure_policy = $2, offline_credits_max = $3, offline_ms_max = $4
           from (select feature_key, failure_policy, offline_credits_max, offline_ms_max from features where feature_key = $1 for update) as previous
           where f.feature_key = previous.feature_key
           returning ${featureColumns.split(", ").map((c) => `f.${c}`).join(", ")}, ${rolloutColumn("f")},
             previous.failure_policy as previous_policy, previous.offline_credits_max as previous_credits, previous.offline_ms_max as previous_ms`,
    values: [featureKey, policy.failurePolicy, policy.offlineCreditsMax.toString(), policy.offlineMsMax.toString()],
  });
  if (result.rows.length === 0) return null;
  const row = result.rows[0];
  return {
    feature: toFeature(row),
    previous: { failurePolicy: row.previous_policy, offlineCreditsMax: BigInt(row.previous_credits), offlineMsMax: BigInt(row.previous_ms) },
  };
}

/** insertCreditType adds a credit type; false when the id exists. Any transaction. */
export async function insertCreditType(db: Db, type: Omit<CreditTypeRow, "createdAt">): Promise<CreditTypeRow | null> {
  const result = await db.query({
    name: "insert_credit_type",
    text: `insert into credit_types (credit_type_id, display_name, scale) values ($1, $2, $3)
           on conflict do nothing returning credit_type_id, display_name, scale, created_at`,
    values: [type.creditTypeId, type.displayName, type.scale],
  });
  return result.rows.length === 0 ? null : toCreditType(result.rows[0]);
}

/** selectCreditType reads a credit type, or null. No locks. */
export async function selectCreditType(db: Db, creditTypeId: string): Promise<CreditTypeRow | null> {
  const result = await db.query({
    name: "select_credit_type",
    text: "select credit_type_id, display_name, scale, created_at from credit_types where credit_type_id = $1",
    values: [creditTypeId],
  });
  return result.rows.length === 0 ? null : toCreditType(result.rows[0]);
}

/** selectCreditTypes reads every credit type by id. No locks. */
export async function selectCreditTypes(db: Db, limit: number): Promise<CreditTypeRow[]> {
  const result = await db.query({
    name: "select_credit_types",
    text: "select credit_type_id, display_name, scale, created_at from credit_types order by credit_type_id limit $1",
    values: [limit],
  });
  return result.rows.map(toCreditType);
}

/** insertFeature adds a feature; null when the key exists. Any transaction. */
export async function insertFeature(db: Db, feature: Omit<FeatureRow, "createdAt" | "rollout" | keyof FailurePolicyRow>): Promise<FeatureRow | null> {
  const result = await db.query({
    name: "insert_feature",
    text: `insert into features (feature_key, display_name, credit_type_id, burn_rate, enforcement_mode) values ($1, $2, $3, $4, $5)
           on conflict do nothing returning ${featureColumns}, null::jsonb as rollout`,
    values: [feature.featureKey, feature.displayName, feature.creditTypeId, feature.burnRate.toString(), feature.enforcementMode],
  });
  return result.rows.length === 0 ? null : toFeature(result.rows[0]);
}

/** selectFeature reads a feature, or null. No locks. */
export async function selectFeature(db: Db, featureKey: string): Promise<FeatureRow | null> {
  const result = await db.query({
    name: "select_feature",
    text: `select ${featureColumns}, ${rolloutColumn("features")} from features where feature_key = $1`,
    values: [featureKey],
  });
  return result.rows.length === 0 ? null : toFeature(result.rows[0]);
}

/** selectFeatures reads every feature by key. No locks. */
export async function selectFeatures(db: Db, limit: number): Promise<FeatureRow[]> {
  const result = await db.query({
    name: "select_features",
    text: `select ${featureColumns}, ${rolloutColumn("features")} from features order by feature_key limit $1`,
    values: [limit],
  });
  return result.rows.map(toFeature);
}

/**
 * insertCustomer adds a customer pinned to the default pricing version (none when no
 * default is set); false when the id exists. Any transaction.
 */
export async function insertCustomer(db: Db, customer: { customerId: string; displayName: string }): Promise<boolean> {
  const result = await db.query({
    name: "insert_customer",
    text: `insert into customers (customer_id, display_name, pricing_version_id)
           values ($1, $2, (select value from settings where key = 'default_pricing_version_id'))
           on conflict do nothing`,
    values: [customer.customerId, customer.displayName],
  });
  return result.rowCount === 1;
}

/** toCustomerRow converts a row with the columns of selectCustomer. */
function toCustomerRow(row: Record<string, unknown>): CustomerRow {
  return {
    customerId: row.customer_id as string,
    displayName: row.display_name as string,
    createdAt: row.created_at as Date,
    pricingVersionId: row.pricing_version_id as string | null,
    overdraftLimits: (row.limits as { creditTypeId: string; limit: string }[]).map((limit) => ({ creditTypeId: limit.creditTypeId, limit: BigInt(limit.limit) })),
  };
}

/** selectCustomer reads a customer and its overdraft limits, or null. No locks. */
export async function selectCustomer(db: Db, customerId: string): Promise<CustomerRow | null> {
  const result = await db.query({
    name: "select_customer",
    text: `select c.customer_id, c.display_name, c.created_at, c.pricing_version_id,
             coalesce(json_agg(json_build_object('creditTypeId', b.credit_type_id, 'limit', b.overdraft_limit::text)
               order by b.credit_type_id) filter (where b.overdraft_limit > 0), '[]') as limits
           from customers c left join balances b on b.customer_id = c.customer_id
           where c.customer_id = $1 group by c.customer_id`,
    values: [customerId],
  });
  return result.rows.length === 0 ? null : toCustomerRow(result.rows[0]);
}

/**
 * selectCustomerMatches finds customers whose id is query, or starts with it (bytewise,
 * case-sensitive), or whose display name matches namePattern (ILIKE, escaped by the
 * caller): the exact id first, then id prefixes, then name matches, each group by id
 * (bytewise), each customer once, at most limit. The name part reads every customer (a
 * substring match has no B-tree index); no locks.
 */
export async function selectCustomerMatches(db: Db, search: { query: string; namePattern: string; limit: number }): Promise<CustomerRow[]> {
  const result = await db.query({
    name: "select_customer_matches",
    text: `select c.customer_id, c.display_name, c.created_at, c.pricing_version_id,
             coalesce(json_agg(json_build_object('creditTypeId', b.credit_type_id, 'limit', b.overdraft_limit::text)
               order by b.credit_type_id) filter (where b.overdraft_limit > 0), '[]') as limits
           from (
             select customer_id, case when customer_id = $1 then 0 when starts_with(customer_id, $1) then 1 else 2 end as rank
             from customers
             where customer_id = $1 or starts_with(customer_id, $1) or display_name ilike $2
             order by rank, customer_id collate "C"
             limit $3) m
           join customers c on c.customer_id = m.customer_id
           left join balances b on b.customer_id = c.customer_id
           group by c.customer_id, m.rank
           order by m.rank, c.customer_id collate "C"`,
    values: [search.query, search.namePattern, search.limit],
  });
  return result.rows.map(toCustomerRow);
}

/** customerExists says whether a customer exists. No locks. */
export async function customerExists(db: Db, customerId: string): Promise<boolean> {
  const result = await db.query({ name: "customer_exists", text: "select 1 from customers where customer_id = $1", values: [customerId] });
  return result.rows.length === 1;
}
