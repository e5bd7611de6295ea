// Bundles and top-up orders: the catalog's versioned bundles, orders and their refunds.
// Money is in minor units of a currency, credits in a credit type's smallest unit: both
// bigint here and in SQL.
import type { Db, Tx } from "./database.js";

/** BundleRow is one version of a bundle. */
export interface BundleRow {
  bundleId: string;
  version: number;
  displayName: string;
  creditTypeId: string;
  credits: bigint;
  bonusCredits: bigint;
  currency: string;
  priceMinor: bigint;
  creditExpirySeconds: bigint | null;
  createdAt: Date;
}

/** TopUpState is where an order is in its life. */
export type TopUpState = "pending" | "paid" | "cancelled" | "partially_refunded" | "refunded" | "failed";

/** TopUpRow is a stored order. */
export interface TopUpRow {
  orderId: string;
  customerId: string;
  state: TopUpState;
  bundleId: string | null;
  bundleVersion: number | null;
  creditTypeId: string;
  /** bonus included: the lot's amount once paid. */
  credits: bigint;
  currency: string;
  priceMinor: bigint;
  creditExpirySeconds: bigint | null;
  paymentReference: string | null;
  grantId: string | null;
  refundedMinor: bigint;
  clawedBackCredits: bigint;
  debtCredits: bigint;
  createdAt: Date;
  /** created_at in microseconds since the epoch: PostgreSQL's precision, for page tokens. */
  createdAtMicros: bigint;
  paidAt: Date | null;
  /** who opened it: CreateTopUp ("api") or auto-recharge ("recharge"). */
  origin: "api" | "recharge";
  /** the payment attempt last asked for, from 1. */
  attempt: number;
  paymentFailures: number;
  failureReason: string;
  /** when a failed recharge is asked for again; null: no retry scheduled. */
  retryAt: Date | null;
  /** its lot is credited when it opens, before its payment. */
  creditOnCreation: boolean;
  /** credited on creation and not paid for yet. */
  unpaidCredits: bigint;
}

const bundleColumns = "bundle_id, version, display_name, credit_type_id, credits, bonus_credits, currency, price_minor, credit_expiry_seconds, created_at";
/** orderColumns are the columns toTopUpRow reads. */
export const orderColumns =
  "order_id, customer_id, state, bundle_id, bundle_version, credit_type_id, credits, currency, price_minor, credit_expiry_seconds, payment_reference, grant_id, refunded_minor, clawed_back_credits, debt_credits, created_at, paid_at, origin, attempt, payment_failures, failure_reason, retry_at, credit_on_creation, unpaid_credits, (extract(epoch from created_at) * 1000000)::bigint as created_at_micros";

const bigintOrNull = (value: unknown): bigint | null => (value === null ? null : BigInt(value as string));

function toBundleRow(row: Record<string, unknown>): BundleRow {
  return {
    bundleId: row.bundle_id as string,
    version: row.version as number,
    displayName: row.display_name as string,
    creditTypeId: row.credit_type_id as string,
    credits: BigInt(row.credits as string),
    bonusCredits: BigInt(row.bonus_credits as string),
    currency: row.currency as string,
    priceMinor: BigInt(row.price_minor as string),
    creditExpirySeconds: bigintOrNull(row.credit_expiry_seconds),
    createdAt: row.created_at as Date,
  };
}

/** toTopUpRow converts a driver row of orderColumns to a TopUpRow. */
export function toTopUpRow(row: Record<string, unknown>): TopUpRow {
  return {
    orderId: row.order_id as string,
    customerId: row.customer_id as string,
    state: row.state as TopUpState,
    bundleId: row.bundle_id as string | null,
    bundleVersion: row.bundle_version as number | null,
    creditTypeId: row.credit_type_id as string,
    credits: BigInt(row.credits as string),
    currency: row.currency as string,
    priceMinor: BigInt(row.price_minor as string),
    creditExpirySeconds: bigintOrNull(row.credit_expiry_seconds),
    paymentReference: row.payment_reference as string | null,
    grantId: row.grant_id as string | null,
    refundedMinor: BigInt(row.refunded_minor as string),
    clawedBackCredits: BigInt(row.clawed_back_credits as string),
    debtCredits: BigInt(row.debt_credits as string),
    createdAt: row.created_at as Date,
    createdAtMicros: BigInt(row.created_at_micros as string),
    paidAt: row.paid_at as Date | null,
    origin: row.origin as "api" | "recharge",
    attempt: row.attempt as number,
    paymentFailures: row.payment_failures as number,
    failureReason: row.failure_reason as string,
    retryAt: row.retry_at as Date | null,
    creditOnCreation: row.credit_on_creation as boolean,
    unpaidCredits: BigInt(row.unpaid_credits as string),
  };
}

/**
 * insertBundleVersion adds the next version of a bundle (1 for a new one). Two concurrent
 * inserts of one bundle compute the same version: the loser fails on the primary key
 * (a conflict, retried with the same request id).
 */
export async function insertBundleVersion(tx: Tx, bundle: Omit<BundleRow, "version" | "createdAt"> & { createdBy: string }): Promise<BundleRow> {
  const result = await tx.query({
    name: "insert_bundle_version",
    text: `insert into bundles (bundle_id, version, display_name, credit_type_id, credits, bonus_credits, currency, price_minor, credit_expiry_seconds, created_by)
           select $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9 from bundles where bundle_id = $1
           returning ${bundleColumns}`,
    values: [
      bundle.bundleId,
      bundle.displayName,
      bundle.creditTypeId,
      bundle.credits.toString(),
      bundle.bonusCredits.toString(),
      bundle.currency,
      bundle.priceMinor.toString(),
      bundle.creditExpirySeconds?.toString() ?? null,
      bundle.createdBy,
    ],
  });
  return toBundleRow(result.rows[0]);
}

/** selectBundles reads the latest version of each bundle, or every version, by id then version. No locks. */
export async function selectBundles(db: Db, options: { allVersions: boolean; limit: number }): Promise<BundleRow[]> {
  const result = await db.query({
    name: "select_bundles",
    text: `select ${bundleColumns} from bundles b
           where $1 or b.version = (select max(version) from bundles l where l.bundle_id = b.bundle_id)
           order by bundle_id, version
           limit $2`,
    values: [options.allVersions, options.limit],
  });
  return result.rows.map(toBundleRow);
}

/** selectBundle reads one version of a bundle (the latest when version is null), or null. No locks: versions never change. */
export async function selectBundle(db: Db, bundleId: string, version: number | null): Promise<BundleRow | null> {
  const result = await db.query({
    name: "select_bundle",
    text: `select ${bundleColumns} from bundles where bundle_id = $1 and ($2::int is null or version = $2)
           order by version desc limit 1`,
    values: [bundleId, version],
  });
  return result.rows.length === 0 ? null : toBundleRow(result.rows[0]);
}

/** insertTopUp records a pending order. */
export async function insertTopUp(
  tx: Tx,
  order: Pick<TopUpRow, "orderId" | "customerId" | "bundleId" | "bundleVersion" | "creditTypeId" | "credits" | "currency" | "priceMinor" | "creditExpirySeconds"> & { createdBy: string },
): Promise<TopUpRow> {
  const result = await tx.query({
    name: "insert_topup",
    text: `insert into topup_orders (order_id, customer_id, state, bundle_id, bundle_version, credit_type_id, credits, currency, price_minor, credit_expiry_seconds, created_by)
           values ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, $10)
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
      order.createdBy,
    ],
  });
  return toTopUpRow(result.rows[0]);
}

/**
 * selectTopUpIdOfLot names the top-up order a lot was bought with, or null for a lot no
 * order paid for. No lock: an order's lot is set once, with the lot, and never changes.
 */
export async function selectTopUpIdOfLot(db: Db, customerId: string, grantId: string): Promise<string | null> {
  const result = await db.query({
    name: "select_topup_id_of_lot",
    text: "select order_id from topup_orders where customer_id = $1 and grant_id = $2",
    values: [customerId, grantId],
  });
  return result.rows.length === 0 ? null : (result.rows[0].order_id as string);
}

/**
 * selectTopUp reads an order, or null; with lock "update" it takes the order's row lock
 * (FOR UPDATE), which its state changes hold until they commit. A change that also
 * changes a balance takes the balance's lock first (the write path's order).
 */
export async function selectTopUp(db: Db, orderId: string, lock: "none" | "update"): Promise<TopUpRow | null> {
  const result = await db.query({
    name: lock === "update" ? "select_topup_for_update" : "select_topup",
    text: `select ${orderColumns} from topup_orders where order_id = $1 ${lock === "update" ? "for update" : ""}`,
    values: [orderId],
  });
  return result.rows.length === 0 ? null : toTopUpRow(result.rows[0]);
}

/** selectTopUpByPaymentReference reads the order a payment reference paid, or null. No locks (the unique index guards). */
export async function selectTopUpByPaymentReference(db: Db, paymentReference: string): Promise<TopUpRow | null> {
  const result = await db.query({
    name: "select_topup_by_payment_reference",
    text: `select ${orderColumns} from topup_orders where payment_reference = $1`,
    values: [paymentReference],
  });
  return result.rows.length === 0 ? null : toTopUpRow(result.rows[0]);
}

/** selectTopUps reads a customer's orders newest first, after a page cursor. No locks. */
export async function selectTopUps(db: Db, page: { customerId: string; after: { createdAtMicros: bigint; orderId: string } | null; limit: number }): Promise<TopUpRow[]> {
  const result = await db.query({
    name: "select_topups",
    text: `select ${orderColumns} from topup_orders
           where customer_id = $1
             and ($2::bigint is null or (created_at, order_id) < (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::uuid))
           order by created_at desc, order_id desc
           limit $4`,
    values: [page.customerId, page.after?.createdAtMicros.toString() ?? null, page.after?.orderId ?? null, page.limit],
  });
  return result.rows.map(toTopUpRow);
}

/** updateTopUpPaid marks a pending order paid with its lot. Expects the order's row lock. */
export async function updateTopUpPaid(tx: Tx, paid: { orderId: string; paymentReference: string; grantId: string }): Promise<TopUpRow> {
  const result = await tx.query({
    name: "update_topup_paid",
    text: `update topup_orders set state = 'paid', payment_reference = $2, grant_id = $3, paid_at = now(), unpaid_credits = 0
           where order_id = $1 and state = 'pending'
           returning ${orderColumns}`,
    values: [paid.orderId, paid.paymentReference, paid.grantId],
  });
  if (result.rows.length !== 1) throw new Error("assertion failed: a pending order is marked paid");
  return toTopUpRow(result.rows[0]);
}

/** updateTopUpCancelled cancels a pending order. Expects the order's row lock. */
export async function updateTopUpCancelled(tx: Tx, orderId: string): Promise<TopUpRow> {
  const result = await tx.query({
    name: "update_topup_cancelled",
    text: `update topup_orders set state = 'cancelled' where order_id = $1 and state = 'pending' returning ${orderColumns}`,
    values: [orderId],
  });
  if (result.rows.length !== 1) throw new Error("assertion failed: a pending order is cancelled");
  return toTopUpRow(result.rows[0]);
}

/**
 * insertTopUpRefund records one refund of an order and adds it to the order's totals, in
 * one statement. Expects the order's row lock; the refund's primary key (order, reference)
 * stops the same refund twice.
 */
export async function insertTopUpRefund(
  tx: Tx,
  refund: { orderId: string; paymentReference: string; amountMinor: bigint; reasonCode: string; creditsFromLot: bigint; creditsAsDebt: bigint; actor: string },
): Promise<TopUpRow> {
  const result = await tx.query({
    name: "insert_topup_refund",
    text: `with refund as (
             insert into topup_refunds (order_id, payment_reference, amount_minor, reason_code, credits_from_lot, credits_as_debt, actor)
             values ($1, $2, $3, $4, $5, $6, $7)
             returning order_id
           )
           update topup_orders o set
             refunded_minor = o.refunded_minor + $3,
             clawed_back_credits = o.clawed_back_credits + $5,
             debt_credits = o.debt_credits + $6,
             state = case when o.refunded_minor + $3 = o.price_minor then 'refunded' else 'partially_refunded' end
           from refund where o.order_id = refund.order_id
           returning ${orderColumns.replace(/^order_id/, "o.order_id")}`,
    values: [
      refund.orderId,
      refund.paymentReference,
      refund.amountMinor.toString(),
      refund.reasonCode,
      refund.creditsFromLot.toString(),
      refund.creditsAsDebt.toString(),
      refund.actor,
    ],
  });
  if (result.rows.length !== 1) throw new Error("assertion failed: a refund updates its order");
  return toTopUpRow(result.rows[0]);
}

/** selectTopUpRefundExists says whether a refund reference was recorded for an order. No locks; read under the order's lock. */
export async function selectTopUpRefundExists(db: Db, orderId: string, paymentReference: string): Promise<boolean> {
  const result = await db.query({
    name: "select_topup_refund_exists",
    text: "select 1 from topup_refunds where order_id = $1 and payment_reference = $2",
    values: [orderId, paymentReference],
  });
  return result.rows.length > 0;
}

/** selectTopUpRefundCredits reads what one refund of an order clawed back (from its lot, as debt), or null. No locks: a refund record never changes. */
export async function selectTopUpRefundCredits(db: Db, orderId: string, paymentReference: string): Promise<{ fromLot: bigint; asDebt: bigint } | null> {
  const result = await db.query({
    name: "select_topup_refund_credits",
    text: "select credits_from_lot::text, credits_as_debt::text from topup_refunds where order_id = $1 and payment_reference = $2",
    values: [orderId, paymentReference],
  });
  if (result.rows.length === 0) return null;
  return { fromLot: BigInt(result.rows[0].credits_from_lot as string), asDebt: BigInt(result.rows[0].credits_as_debt as string) };
}
