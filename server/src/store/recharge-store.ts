// Auto-recharge in PostgreSQL: each customer's settings per credit type, the thresholds
// copied onto the balance row (read by the write path's lock statement), the flags the
// write path leaves when a balance falls below its recharge threshold (recharge_due), and
// recharge orders (top-up orders with origin 'recharge'). The unique partial index
// topup_orders_one_open_recharge is what keeps one open recharge order per balance.
import type { BalanceKey } from "./balance-store.js";
import { orderColumns, type TopUpRow, toTopUpRow } from "./billing-store.js";
import type { Db, Tx } from "./database.js";

/** RechargeSettingsRow is a customer's auto-recharge and balance-low alert for one credit type. */
export interface RechargeSettingsRow {
  customerId: string;
  creditTypeId: string;
  enabled: boolean;
  /** null: none set. */
  threshold: bigint | null;
  bundleId: string | null;
  /** null: the latest version at each recharge. */
  bundleVersion: number | null;
  /** a plain amount: credits, currency and price all set, or all null. */
  credits: bigint | null;
  currency: string | null;
  priceMinor: bigint | null;
  /** 0: no cap. */
  monthlyRechargesMax: number;
  /** null: no balance-low alert. */
  lowThreshold: bigint | null;
  /** credit a recharge order's lot when it opens. */
  creditOnCreation: boolean;
  disabledReason: string;
  /** the first day (UTC) of the month whose cap was reported, or null. */
  capReportedMonth: string | null;
  updatedAt: Date;
  /** recharge orders opened in the current calendar month (UTC). */
  rechargesThisMonth: number;
}

/** RechargeSettingsWrite is what SetAutoRecharge stores. */
export type RechargeSettingsWrite = Omit<RechargeSettingsRow, "disabledReason" | "capReportedMonth" | "updatedAt" | "rechargesThisMonth"> & { updatedBy: string };

const bigintOrNull = (value: unknown): bigint | null => (value === null ? null : BigInt(value as string));
const textOrNull = (value: bigint | null) => (value === null ? null : value.toString());

/** monthStart is the SQL for the first instant of the calendar month (UTC) of a timestamptz. */
const monthStart = (at: string) => `(date_trunc('month', ${at} at time zone 'UTC') at time zone 'UTC')`;

const settingsColumns = `s.customer_id, s.credit_type_id, s.enabled, s.threshold, s.bundle_id, s.bundle_version, s.credits, s.currency, s.price_minor,
  s.monthly_recharges_max, s.low_threshold, s.credit_on_creation, s.disabled_reason, s.cap_reported_month::text, s.updated_at,
  (select count(*)::int from topup_orders o where o.customer_id = s.customer_id and o.credit_type_id = s.credit_type_id and o.origin = 'recharge'
     and o.created_at >= ${monthStart("$now::timestamptz")}) as recharges_this_month`;

function settingsSelect(now: string): string {
  return settingsColumns.replace("$now", now);
}

function toSettingsRow(row: Record<string, unknown>): RechargeSettingsRow {
  return {
    customerId: row.customer_id as string,
    creditTypeId: row.credit_type_id as string,
    enabled: row.enabled as boolean,
    threshold: bigintOrNull(row.threshold),
    bundleId: row.bundle_id as string | null,
    bundleVersion: row.bundle_version as number | null,
    credits: bigintOrNull(row.credits),
    currency: row.currency as string | null,
    priceMinor: bigintOrNull(row.price_minor),
    monthlyRechargesMax: row.monthly_recharges_max as number,
    lowThreshold: bigintOrNull(row.low_threshold),
    creditOnCreation: row.credit_on_creation as boolean,
    disabledReason: row.disabled_reason as string,
    capReportedMonth: row.cap_reported_month as string | null,
    updatedAt: row.updated_at as Date,
    rechargesThisMonth: row.recharges_this_month as number,
  };
}

/**
 * copyThresholds creates the customer and the balance if missing and copies the
 * thresholds onto the balance row (taking its lock): the write path compares available
 * with them under that same lock. Call it first in its transaction (the balance lock is
 * the first lock of every writer of a balance).
 */
export async function copyThresholds(tx: Tx, key: BalanceKey, thresholds: { recharge: bigint | null; low: bigint | null }): Promise<void> {
  await tx.query({
    name: "copy_recharge_thresholds",
    text: `with c as (
             insert into customers (customer_id, display_name, pricing_version_id)
             values ($1, '', (select value from settings where key = 'default_pricing_version_id'))
             on conflict do nothing returning 1)
           insert into balances (customer_id, credit_type_id, recharge_threshold, low_threshold) values ($1, $2, $3, $4)
           on conflict (customer_id, credit_type_id) do update
             set recharge_threshold = excluded.recharge_threshold, low_threshold = excluded.low_threshold`,
    values: [key.customerId, key.creditTypeId, textOrNull(thresholds.recharge), textOrNull(thresholds.low)],
  });
}

/** selectStoredAvailable reads a balance's available as stored (lots not yet effective counted in). Read under the balance's lock. */
export async function selectStoredAvailable(tx: Tx, key: BalanceKey): Promise<bigint> {
  const result = await tx.query({
    name: "select_stored_available",
    text: "select (granted - burned - held - expired)::text as available from balances where customer_id = $1 and credit_type_id = $2",
    values: [key.customerId, key.creditTypeId],
  });
  return result.rows.length === 0 ? 0n : BigInt(result.rows[0].available as string);
}

/** upsertRechargeSettings stores a customer's settings, clearing a server-set disabled reason. Takes the settings row's lock. */
export async function upsertRechargeSettings(tx: Tx, row: RechargeSettingsWrite, now: Date): Promise<RechargeSettingsRow> {
  const result = await tx.query({
    name: "upsert_recharge_settings",
    text: `with s as (
             insert into recharge_settings as t (customer_id, credit_type_id, enabled, threshold, bundle_id, bundle_version, credits, currency, price_minor,
               monthly_recharges_max, low_threshold, updated_by, credit_on_creation)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $14)
             on conflict (customer_id, credit_type_id) do update set enabled = excluded.enabled, threshold = excluded.threshold,
               bundle_id = excluded.bundle_id, bundle_version = excluded.bundle_version, credits = excluded.credits, currency = excluded.currency,
               price_minor = excluded.price_minor, monthly_recharges_max = excluded.monthly_recharges_max, low_threshold = excluded.low_threshold,
               credit_on_creation = excluded.credit_on_creation, disabled_reason = '', updated_by = excluded.updated_by, updated_at = now()
             returning *)
           select ${settingsSelect("$13")} from s`,
    values: [
      row.customerId,
      row.creditTypeId,
      row.enabled,
      textOrNull(row.threshold),
      row.bundleId,
      row.bundleVersion,
      textOrNull(row.credits),
      row.currency,
      textOrNull(row.priceMinor),
      row.monthlyRechargesMax,
      textOrNull(row.lowThreshold),
      row.updatedBy,
      now,
      row.creditOnCreation,
    ],
  });
  return toSettingsRow(result.rows[0]);
}

/** selectRechargeSettings reads one customer's settings for a credit type, or null; "update" takes the row's lock. */
export async function selectRechargeSettings(db: Db, key: BalanceKey, now: Date, lock: "none" | "update"): Promise<RechargeSettingsRow | null> {
  const result = await db.query({
    name: lock === "update" ? "select_recharge_settings_for_update" : "select_recharge_settings",
    text: `select ${settingsSelect("$3")} from recharge_settings s where s.customer_id = $1 and s.credit_type_id = $2 ${lock === "update" ? "for update of s" : ""}`,
    values: [key.customerId, key.creditTypeId, now],
  });
  return result.rows.length === 0 ? null : toSettingsRow(result.rows[0]);
}

/** selectRechargeSettingsOf reads a customer's settings, by credit type. No locks. */
export async function selectRechargeSettingsOf(db: Db, customerId: string, now: Date, limit: number): Promise<RechargeSettingsRow[]> {
  const result = await db.query({
    name: "select_recharge_settings_of",
    text: `select ${settingsSelect("$2")} from recharge_settings s where s.customer_id = $1 order by s.credit_type_id limit $3`,
    values: [customerId, now, limit],
  });
  return result.rows.map(toSettingsRow);
}

/** flagRechargeDue flags a balance for the recharge job (SetAutoRecharge on a balance already below its threshold). */
export async function flagRechargeDue(tx: Tx, key: BalanceKey, available: bigint): Promise<void> {
  await tx.query({
    name: "flag_recharge_due",
    text: "insert into recharge_due (customer_id, credit_type_id, available) values ($1, $2, $3) on conflict do nothing",
    values: [key.customerId, key.creditTypeId, available.toString()],
  });
}

/**
 * claimRechargeDue locks the oldest flag no other transaction holds (SKIP LOCKED), or
 * null: the flag is the job's lease, held until its transaction ends, in which it deletes
 * the flag with deleteRechargeDue.
 */
export async function claimRechargeDue(tx: Tx): Promise<(BalanceKey & { available: bigint }) | null> {
  const result = await tx.query({
    name: "claim_recharge_due",
    text: `select customer_id, credit_type_id, available::text from recharge_due order by flagged_at, customer_id, credit_type_id
           limit 1 for update skip locked`,
  });
  if (result.rows.length === 0) return null;
  const row = result.rows[0];
  return { customerId: row.customer_id, creditTypeId: row.credit_type_id, available: BigInt(row.available) };
}

/** deleteRechargeDue deletes a claimed flag. Hold it (claimRechargeDue). */
export async function deleteRechargeDue(tx: Tx, key: BalanceKey): Promise<void> {
  await tx.query({
    name: "delete_recharge_due",
    text: "delete from recharge_due where customer_id = $1 and credit_type_id = $2",
    values: [key.customerId, key.creditTypeId],
  });
}

/**
 * insertRechargeOrder opens a recharge order unless the balance has an open one (the
 * unique partial index decides, also against a concurrent insert, which waits for the
 * other transaction): null then. Its creation time is the server's clock, the one the
 * monthly cap counts by.
 */
export async function insertRechargeOrder(
  tx: Tx,
  order: Pick<TopUpRow, "orderId" | "customerId" | "bundleId" | "bundleVersion" | "creditTypeId" | "credits" | "currency" | "priceMinor" | "creditExpirySeconds" | "createdAt" | "creditOnCreation">,
): Promise<TopUpRow | null> {
  const result = await tx.query({
    name: "insert_recharge_order",
    text: `insert into topup_orders (order_id, customer_id, state, bundle_id, bundle_version, credit_type_id, credits, currency, price_minor,
             credit_expiry_seconds, created_by, origin, created_at, credit_on_creation)
           values ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, 'auto-recharge', 'recharge', $10, $11)
           on conflict (customer_id, credit_type_id) where origin = 'recharge' and state = 'pending' do nothing
           returning ${orderColumns}`,
    values: [
      order.orderId,
      order.customerId,
      order.bundleId,
      order.bundleVersion,
      order.creditTypeId,
      order.credits.toString(),
      order.currency,
      order.priceMinor.toString(),
      order.creditExpirySeconds?.toString() ?? null,
      order.createdAt,
      order.creditOnCreation,
    ],
  });
  return result.rows.length === 0 ? null : toTopUpRow(result.rows[0]);
}

/** updateCapReported records that this month's cap was reported, unless it was: true when this call recorded it. Hold the settings' lock. */
export async function updateCapReported(tx: Tx, key: BalanceKey, now: Date): Promise<boolean> {
  const result = await tx.query({
    name: "update_recharge_cap_reported",
    text: `update recharge_settings set cap_reported_month = ${monthStart("$3::timestamptz")}::date
           where customer_id = $1 and credit_type_id = $2 and cap_reported_month is distinct from ${monthStart("$3::timestamptz")}::date
           returning 1`,
    values: [key.customerId, key.creditTypeId, now],
  });
  return result.rows.length === 1;
}

/** claimDueRetry locks the recharge order whose retry is due first, skipping orders another transaction holds, or null. */
export async function claimDueRetry(tx: Tx, now: Date): Promise<TopUpRow | null> {
  const result = await tx.query({
    name: "claim_due_recharge_retry",
    text: `select ${orderColumns} from topup_orders where retry_at is not null and retry_at <= $1 and state = 'pending'
           order by retry_at, order_id limit 1 for update skip locked`,
    values: [now],
  });
  return result.rows.length === 0 ? null : toTopUpRow(result.rows[0]);
}

/** updateRetryAsked counts the next payment attempt of a recharge order whose retry came. Hold the order's lock. */
export async function updateRetryAsked(tx: Tx, orderId: string): Promise<TopUpRow> {
  const result = await tx.query({
    name: "update_recharge_retry_asked",
    text: `update topup_orders set attempt = attempt + 1, retry_at = null where order_id = $1 and state = 'pending' and retry_at is not null
           returning ${orderColumns}`,
    values: [orderId],
  });
  if (result.rows.length !== 1) throw new Error("assertion failed: a claimed retry is asked for");
  return toTopUpRow(result.rows[0]);
}

/**
 * updateTopUpPaymentFailed records a failed payment of a pending order: with retryAt, it
 * stays pending until then; without, it fails. Hold the order's lock.
 */
export async function updateTopUpPaymentFailed(tx: Tx, failure: { orderId: string; reason: string; retryAt: Date | null }): Promise<TopUpRow> {
  const result = await tx.query({
    name: "update_topup_payment_failed",
    text: `update topup_orders set payment_failures = payment_failures + 1, failure_reason = $2, retry_at = $3,
             state = case when $3::timestamptz is null then 'failed' else state end
           where order_id = $1 and state = 'pending'
           returning ${orderColumns}`,
    values: [failure.orderId, failure.reason, failure.retryAt],
  });
  if (result.rows.length !== 1) throw new Error("assertion failed: a pending order records its failed payment");
  return toTopUpRow(result.rows[0]);
}

/** disableRecharge turns a customer's auto-recharge off with the server's reason. Hold the settings' lock. */
export async function disableRecharge(tx: Tx, key: BalanceKey, reason: string): Promise<void> {
  await tx.query({
    name: "disable_recharge",
    text: "update recharge_settings set enabled = false, disabled_reason = $3, updated_at = now() where customer_id = $1 and credit_type_id = $2",
    values: [key.customerId, key.creditTypeId, reason],
  });
}

/** selectUncreditedRecharges reads pending orders to credit on creation whose lot is not written yet (the job credits them). No locks. */
export async function selectUncreditedRecharges(db: Db, limit: number): Promise<TopUpRow[]> {
  const result = await db.query({
    name: "select_uncredited_recharges",
    text: `select ${orderColumns} from topup_orders where credit_on_creation and grant_id is null and state = 'pending' order by created_at limit $1`,
    values: [limit],
  });
  return result.rows.map(toTopUpRow);
}

/** updateTopUpCreditedOnCreation records the lot of an order credited when it opened. Hold the order's lock. */
export async function updateTopUpCreditedOnCreation(tx: Tx, credited: { orderId: string; grantId: string }): Promise<TopUpRow> {
  const result = await tx.query({
    name: "update_topup_credited_on_creation",
    text: `update topup_orders set grant_id = $2, unpaid_credits = credits
           where order_id = $1 and state = 'pending' and credit_on_creation and grant_id is null
           returning ${orderColumns}`,
    values: [credited.orderId, credited.grantId],
  });
  if (result.rows.length !== 1) throw new Error("assertion failed: an order to credit on creation is credited once");
  return toTopUpRow(result.rows[0]);
}

/**
 * updateTopUpUnwound ends an order credited on creation that will not be paid (its final
 * failure, or its cancellation): what was clawed back from its lot and charged as debt.
 * Hold the order's lock.
 */
export async function updateTopUpUnwound(
  tx: Tx,
  unwound: { orderId: string; state: "failed" | "cancelled"; reason: string; creditsFromLot: bigint; creditsAsDebt: bigint; failed: boolean },
): Promise<TopUpRow> {
  const result = await tx.query({
    name: "update_topup_unwound",
    text: `update topup_orders set state = $2, failure_reason = case when $6 then $3 else failure_reason end,
             payment_failures = payment_failures + case when $6 then 1 else 0 end, retry_at = null,
             clawed_back_credits = clawed_back_credits + $4, debt_credits = debt_credits + $5, unpaid_credits = 0
           where order_id = $1 and state = 'pending'
           returning ${orderColumns}`,
    values: [unwound.orderId, unwound.state, unwound.reason, unwound.creditsFromLot.toString(), unwound.creditsAsDebt.toString(), unwound.failed],
  });
  if (result.rows.length !== 1) throw new Error("assertion failed: a pending order is unwound once");
  return toTopUpRow(result.rows[0]);
}
