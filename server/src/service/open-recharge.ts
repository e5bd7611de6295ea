// Opening recharge orders: the recharge job's two steps, each one transaction.
// - openDueRecharge takes one balance flagged by the write path (recharge_due, claimed with
//   SKIP LOCKED so replicas take different ones) and, under its settings' lock, opens a
//   recharge order with its recharge.requested event, or reports the monthly cap once, or
//   does nothing (disabled, or an order already open); the flag goes in the same commit.
// - askRetry takes one recharge order whose retry time came and asks for its payment again
//   (recharge.requested with the next attempt).
// A crash before the commit leaves the flag (or the retry) for the next pass; after it, the
// flag is gone and the order exists: never lost, never doubled.
import { randomUUID } from "node:crypto";
import { assert } from "../ledger/balance-state.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { selectBundle, type TopUpRow } from "../store/billing-store.js";
import { type Tx, withTransaction } from "../store/database.js";
import {
  claimDueRetry,
  claimRechargeDue,
  deleteRechargeDue,
  insertRechargeOrder,
  type RechargeSettingsRow,
  selectRechargeSettings,
  updateCapReported,
  updateRetryAsked,
} from "../store/recharge-store.js";
import { enqueueWebhookEvents } from "../store/webhook-store.js";
import type { Deps } from "./context.js";

/** rechargeActor is the actor of what the recharge job does, in orders and audit records. */
export const rechargeActor = "auto-recharge";

/** DueOutcome is what one flag came to. */
export type DueOutcome = "none_due" | "opened" | "already_open" | "cap_reached" | "not_enabled";

/** requestedPayload is recharge.requested's payload. */
export function requestedPayload(order: TopUpRow): Record<string, unknown> {
  return {
    orderId: order.orderId,
    customerId: order.customerId,
    creditTypeId: order.creditTypeId,
    bundleId: order.bundleId ?? "",
    bundleVersion: order.bundleVersion ?? 0,
    credits: order.credits.toString(),
    currency: order.currency,
    priceMinor: order.priceMinor.toString(),
    attempt: order.attempt,
  };
}

/** openDueRecharge handles the oldest flagged balance no other transaction holds. */
export async function openDueRecharge(deps: Deps): Promise<DueOutcome> {
  return withTransaction(deps.pool, async (tx) => {
    const due = await claimRechargeDue(tx);
    if (due === null) return "none_due";
    const key = { customerId: due.customerId, creditTypeId: due.creditTypeId };
    await deleteRechargeDue(tx, key);
    const now = deps.now();
    // The settings' lock orders this with SetAutoRecharge and FailTopUp of the same balance.
    const settings = await selectRechargeSettings(tx, key, now, "update");
    if (settings === null || !settings.enabled) return "not_enabled";
    if (settings.monthlyRechargesMax > 0 && settings.rechargesThisMonth >= settings.monthlyRechargesMax) {
      if (await updateCapReported(tx, key, now)) await reportCap(tx, settings, due.available);
      return "cap_reached";
    }
    const order = await insertRechargeOrder(tx, { orderId: randomUUID(), ...key, ...(await termsOf(tx, settings)), createdAt: now, creditOnCreation: settings.creditOnCreation });
    if (order === null) return "already_open";
    assert(order.origin === "recharge" && order.state === "pending" && order.attempt === 1, "a recharge order opens pending, at its first attempt");
    await enqueueWebhookEvents(tx, "recharge.requested", [{ customerId: order.customerId, payload: requestedPayload(order) }]);
    await insertAuditRecord(tx, {
      actor: rechargeActor,
      requestId: null, // the recharge job's: no call
      action: "open_recharge",
      target: `customer:${order.customerId}`,
      reason: "below_threshold",
      details: { old: null, new: { order_id: order.orderId, credits: order.credits.toString(), price_minor: order.priceMinor.toString(), currency: order.currency }, available: due.available.toString(), threshold: settings.threshold?.toString() ?? null },
    });
    return "opened";
  });
}

/** termsOf is what a recharge buys now: the bundle's version (the latest when not pinned), or the plain amount. */
async function termsOf(tx: Tx, settings: RechargeSettingsRow) {
  if (settings.bundleId !== null) {
    const bundle = await selectBundle(tx, settings.bundleId, settings.bundleVersion);
    // Bundles are append-only: one checked when the settings were stored still exists.
    assert(bundle !== null, "a recharge's bundle exists");
    return {
      bundleId: bundle.bundleId,
      bundleVersion: bundle.version,
      credits: bundle.credits + bundle.bonusCredits,
      currency: bundle.currency,
      priceMinor: bundle.priceMinor,
      creditExpirySeconds: bundle.creditExpirySeconds,
    };
  }
  assert(settings.credits !== null && settings.currency !== null && settings.priceMinor !== null, "enabled settings buy a bundle or an amount");
  return { bundleId: null, bundleVersion: null, credits: settings.credits, currency: settings.currency, priceMinor: settings.priceMinor, creditExpirySeconds: null };
}

/** reportCap records, once a month, that the cap stopped a recharge: an audit record and recharge.failed. */
async function reportCap(tx: Tx, settings: RechargeSettingsRow, available: bigint): Promise<void> {
  const payload = {
    customerId: settings.customerId,
    creditTypeId: settings.creditTypeId,
    reason: "monthly_cap_reached",
    disabled: false,
    monthlyRechargesMax: settings.monthlyRechargesMax,
    available: available.toString(),
  };
  await enqueueWebhookEvents(tx, "recharge.failed", [{ customerId: settings.customerId, payload }]);
  await insertAuditRecord(tx, {
    actor: rechargeActor,
    requestId: null, // the recharge job's: no call
    action: "recharge_cap_reached",
    target: `customer:${settings.customerId}`,
    reason: "monthly_cap_reached",
    details: { old: null, new: null, credit_type_id: settings.creditTypeId, monthly_recharges_max: settings.monthlyRechargesMax, available: available.toString() },
  });
}

/** askRetry asks again for the payment of the recharge order whose retry is due first; false when none is. */
export async function askRetry(deps: Deps): Promise<boolean> {
  return withTransaction(deps.pool, async (tx) => {
    const due = await claimDueRetry(tx, deps.now());
    if (due === null) return false;
    const order = await updateRetryAsked(tx, due.orderId);
    assert(order.attempt === due.attempt + 1 && order.retryAt === null, "a retry asks for the next attempt once");
    await enqueueWebhookEvents(tx, "recharge.requested", [{ customerId: order.customerId, payload: requestedPayload(order) }]);
    return true;
  });
}
