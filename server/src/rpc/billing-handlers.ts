// BillingService handlers: decode, call one service, encode.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Duration, durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type AutoRechargeSchema,
  type BillingService,
  type BundleSchema,
  CancelTopUpRequestSchema,
  ConfirmTopUpRequestSchema,
  CreateBundleRequestSchema,
  CreateTopUpRequestSchema,
  FailTopUpRequestSchema,
  RefundTopUpRequestSchema,
  SetAutoRechargeRequestSchema,
  TopUpOrigin,
  type TopUpSchema,
  TopUpState,
} from "@burndown/sdk";
import type { ServiceImpl } from "@connectrpc/connect";
import { invalid, LedgerError, notFound } from "../errors.js";
import { limits } from "../limits.js";
import { createBundle, listBundles } from "../service/bundles.js";
import { getAutoRecharge, listAutoRecharges, setAutoRecharge } from "../service/auto-recharge.js";
import { cancelTopUp } from "../service/cancel-top-up.js";
import { failTopUp } from "../service/fail-top-up.js";
import { confirmTopUp } from "../service/confirm-top-up.js";
import type { Deps } from "../service/context.js";
import { createTopUp, type TopUpItem } from "../service/create-top-up.js";
import { getTopUp, listTopUps } from "../service/get-top-ups.js";
import { refundTopUp } from "../service/refund-top-up.js";
import type { BundleRow, TopUpRow } from "../store/billing-store.js";
import { mapDriverErrors } from "../store/database.js";
import { selectOfferedBundleIds } from "../store/plan-store.js";
import type { RechargeSettingsRow } from "../store/recharge-store.js";
import { requireCode, requireId, requireNonNegative, requirePageSize, requirePositive, requireText, requireUuid } from "./decode.js";
import { encodeEntry } from "./encode.js";
import { ownCustomer } from "./interceptors.js";
import { callerOf } from "./ledger-handlers.js";
import { idempotencyOf } from "./request-hash.js";

/** requireCurrency checks an ISO 4217 code: three upper-case letters. */
export function requireCurrency(field: string, value: string): string {
  if (!/^[A-Z]{3}$/.test(value)) throw invalid("INVALID_CURRENCY", field, "must be an ISO 4217 code such as USD");
  return value;
}

/** requirePrice checks an amount of money in minor units is above zero. */
export function requirePrice(field: string, value: bigint): bigint {
  if (value <= 0n) throw invalid("INVALID_PRICE", field, "must be positive");
  return value;
}

/** optionalCreditExpiry checks a lot's lifetime: unset, or whole seconds within the bound. */
function optionalCreditExpiry(value: Duration | undefined): bigint | null {
  if (value === undefined) return null;
  if (value.nanos !== 0 || value.seconds < 1n || value.seconds > limits.creditExpirySecondsMax) {
    throw invalid("INVALID_CREDIT_EXPIRY", "credit_expiry", "must be whole seconds from 1 second to 100 years");
  }
  return value.seconds;
}

const states: Record<TopUpRow["state"], TopUpState> = {
  pending: TopUpState.PENDING,
  paid: TopUpState.PAID,
  cancelled: TopUpState.CANCELLED,
  partially_refunded: TopUpState.PARTIALLY_REFUNDED,
  refunded: TopUpState.REFUNDED,
  failed: TopUpState.FAILED,
};

const expiryOf = (seconds: bigint | null) => (seconds === null ? undefined : durationFromMs(Number(seconds) * 1000));

/** encodeBundle converts a bundle version. */
export function encodeBundle(bundle: BundleRow): MessageInitShape<typeof BundleSchema> {
  return {
    bundleId: bundle.bundleId,
    version: bundle.version,
    displayName: bundle.displayName,
    creditTypeId: bundle.creditTypeId,
    credits: bundle.credits,
    bonusCredits: bundle.bonusCredits,
    currency: bundle.currency,
    priceMinor: bundle.priceMinor,
    creditExpiry: expiryOf(bundle.creditExpirySeconds),
    createTime: timestampFromDate(bundle.createdAt),
  };
}

/** encodeTopUp converts an order. */
export function encodeTopUp(order: TopUpRow): MessageInitShape<typeof TopUpSchema> {
  return {
    orderId: order.orderId,
    customerId: order.customerId,
    state: states[order.state],
    bundleId: order.bundleId ?? "",
    bundleVersion: order.bundleVersion ?? 0,
    creditTypeId: order.creditTypeId,
    credits: order.credits,
    currency: order.currency,
    priceMinor: order.priceMinor,
    paymentReference: order.paymentReference ?? "",
    grantId: order.grantId ?? "",
    refundedMinor: order.refundedMinor,
    clawedBackCredits: order.clawedBackCredits,
    debtCredits: order.debtCredits,
    createTime: timestampFromDate(order.createdAt),
    paidTime: order.paidAt === null ? undefined : timestampFromDate(order.paidAt),
    creditExpiry: expiryOf(order.creditExpirySeconds),
    origin: order.origin === "recharge" ? TopUpOrigin.RECHARGE : TopUpOrigin.API,
    attempt: order.attempt,
    paymentFailures: order.paymentFailures,
    failureReason: order.failureReason,
    retryTime: order.retryAt === null ? undefined : timestampFromDate(order.retryAt),
    unpaidCredits: order.unpaidCredits,
  };
}

/** encodeAutoRecharge converts a customer's settings. */
export function encodeAutoRecharge(row: RechargeSettingsRow): MessageInitShape<typeof AutoRechargeSchema> {
  const item =
    row.bundleId !== null
      ? { case: "bundleId" as const, value: row.bundleId }
      : row.credits !== null && row.currency !== null && row.priceMinor !== null
        ? { case: "amount" as const, value: { creditTypeId: row.creditTypeId, credits: row.credits, currency: row.currency, priceMinor: row.priceMinor } }
        : { case: undefined };
  return {
    customerId: row.customerId,
    creditTypeId: row.creditTypeId,
    enabled: row.enabled,
    threshold: row.threshold ?? 0n,
    item,
    bundleVersion: row.bundleVersion ?? 0,
    monthlyRechargesMax: row.monthlyRechargesMax,
    balanceLowThreshold: row.lowThreshold ?? 0n,
    disabledReason: row.disabledReason,
    rechargesThisMonth: row.rechargesThisMonth,
    creditOnCreation: row.creditOnCreation,
    updateTime: timestampFromDate(row.updatedAt),
  };
}

/** optionalThreshold checks a threshold: 0 for none, else positive. */
function optionalThreshold(field: string, value: bigint): bigint | null {
  if (value < 0n) throw invalid("INVALID_THRESHOLD", field, "must be positive, or 0 for none");
  return value === 0n ? null : value;
}

function requireItem(req: { item: { case: "bundleId"; value: string } | { case: "amount"; value: { creditTypeId: string; credits: bigint; currency: string; priceMinor: bigint } } | { case: undefined; value?: undefined }; bundleVersion: number }): TopUpItem {
  if (req.bundleVersion < 0 || (req.bundleVersion !== 0 && req.item.case !== "bundleId")) {
    throw invalid("INVALID_BUNDLE_VERSION", "bundle_version", "must be 0 (the latest) or a version, and only with bundle_id");
  }
  if (req.item.case === "bundleId") return { kind: "bundle", bundleId: requireCode("bundle_id", req.item.value), version: req.bundleVersion === 0 ? null : req.bundleVersion };
  if (req.item.case === "amount") {
    const amount = req.item.value;
    return {
      kind: "amount",
      creditTypeId: requireCode("amount.credit_type_id", amount.creditTypeId),
      credits: requirePositive("amount.credits", amount.credits),
      currency: requireCurrency("amount.currency", amount.currency),
      priceMinor: requirePrice("amount.price_minor", amount.priceMinor),
    };
  }
  throw invalid("MISSING_FIELD", "item", "is required: bundle_id or amount");
}

/** offeredBundleIds is what a customer's plans offer, or null for the whole catalog (store/plan-store.ts). */
async function offeredBundleIds(deps: Deps, customerId: string): Promise<string[] | null> {
  return mapDriverErrors(() => selectOfferedBundleIds(deps.pool, customerId));
}

/** billingHandlers implements BillingService. */
export function billingHandlers(deps: Deps): ServiceImpl<typeof BillingService> {
  return {
    async createBundle(req, ctx) {
      const idempotency = idempotencyOf(CreateBundleRequestSchema, "CreateBundle", req);
      const bundle = await createBundle(deps, callerOf(ctx), idempotency, {
        bundleId: requireCode("bundle_id", req.bundleId),
        displayName: requireText("display_name", req.displayName, limits.displayNameLengthMax, true),
        creditTypeId: requireCode("credit_type_id", req.creditTypeId),
        credits: requirePositive("credits", req.credits),
        bonusCredits: requireNonNegative("bonus_credits", req.bonusCredits),
        currency: requireCurrency("currency", req.currency),
        priceMinor: requirePrice("price_minor", req.priceMinor),
        creditExpirySeconds: optionalCreditExpiry(req.creditExpiry),
      });
      return { bundle: encodeBundle(bundle) };
    },
    async listBundles(req, ctx) {
      const bundles = await listBundles(deps, { allVersions: req.allVersions });
      if (req.customerId === "") return { bundles: bundles.map(encodeBundle) };
      const offered = await offeredBundleIds(deps, ownCustomer(callerOf(ctx), requireId("customer_id", req.customerId)));
      return { bundles: bundles.filter((bundle) => offered === null || offered.includes(bundle.bundleId)).map(encodeBundle) };
    },
    async createTopUp(req, ctx) {
      const idempotency = idempotencyOf(CreateTopUpRequestSchema, "CreateTopUp", req);
      const caller = callerOf(ctx);
      const customerId = ownCustomer(caller, requireId("customer_id", req.customerId));
      const item = requireItem(req);
      // A customer buys what the catalog sells, at its current terms: never a price of its own choosing.
      if (caller.role === "customer" && (item.kind !== "bundle" || item.version !== null)) {
        throw new LedgerError("forbidden", "CUSTOMER_BUYS_BUNDLES_ONLY", "a customer key may order the latest version of a bundle only, not an amount or an older version", {});
      }
      if (caller.role === "customer" && item.kind === "bundle") {
        const offered = await offeredBundleIds(deps, customerId);
        if (offered !== null && !offered.includes(item.bundleId)) {
          throw new LedgerError("rejected", "BUNDLE_NOT_OFFERED", `bundle ${JSON.stringify(item.bundleId)} is not on offer to this customer's plan`, { bundle_id: item.bundleId });
        }
      }
      const order = await createTopUp(deps, caller, idempotency, { customerId, item });
      return { topUp: encodeTopUp(order) };
    },
    async confirmTopUp(req, ctx) {
      const idempotency = idempotencyOf(ConfirmTopUpRequestSchema, "ConfirmTopUp", req);
      const order = await confirmTopUp(deps, callerOf(ctx), idempotency, {
        orderId: requireUuid("order_id", req.orderId),
        paymentReference: requireId("payment_reference", req.paymentReference),
        amountMinor: requirePrice("amount_minor", req.amountMinor),
        currency: requireCurrency("currency", req.currency),
      });
      return { topUp: encodeTopUp(order) };
    },
    async cancelTopUp(req, ctx) {
      const idempotency = idempotencyOf(CancelTopUpRequestSchema, "CancelTopUp", req);
      const order = await cancelTopUp(deps, callerOf(ctx), idempotency, { orderId: requireUuid("order_id", req.orderId), note: requireText("note", req.note, limits.noteLengthMax) });
      return { topUp: encodeTopUp(order) };
    },
    async refundTopUp(req, ctx) {
      const idempotency = idempotencyOf(RefundTopUpRequestSchema, "RefundTopUp", req);
      const result = await refundTopUp(deps, callerOf(ctx), idempotency, {
        orderId: requireUuid("order_id", req.orderId),
        amount: { kind: "more", minor: requirePrice("amount_minor", req.amountMinor) },
        currency: requireCurrency("currency", req.currency),
        reasonCode: requireCode("reason_code", req.reasonCode),
        paymentReference: requireId("payment_reference", req.paymentReference),
      });
      return { topUp: encodeTopUp(result.topUp), entries: result.entries.map(encodeEntry) };
    },
    async getTopUp(req, ctx) {
      const caller = callerOf(ctx);
      const orderId = requireUuid("order_id", req.orderId);
      const order = await getTopUp(deps, orderId);
      // Another customer's order is answered as one that does not exist.
      if (caller.role === "customer" && order.customerId !== caller.customerId) throw notFound("TOPUP_NOT_FOUND", "order id", orderId);
      return { topUp: encodeTopUp(order) };
    },
    async failTopUp(req, ctx) {
      const idempotency = idempotencyOf(FailTopUpRequestSchema, "FailTopUp", req);
      const order = await failTopUp(deps, callerOf(ctx), idempotency, { orderId: requireUuid("order_id", req.orderId), reason: requireText("reason", req.reason, limits.noteLengthMax, true) });
      return { topUp: encodeTopUp(order) };
    },
    async setAutoRecharge(req, ctx) {
      const idempotency = idempotencyOf(SetAutoRechargeRequestSchema, "SetAutoRecharge", req);
      if (req.monthlyRechargesMax < 0 || req.monthlyRechargesMax > limits.monthlyRechargesMax) {
        throw invalid("INVALID_MONTHLY_LIMIT", "monthly_recharges_max", `must be 0 (no cap) to ${limits.monthlyRechargesMax}`);
      }
      const settings = await setAutoRecharge(deps, callerOf(ctx), idempotency, {
        customerId: requireId("customer_id", req.customerId),
        creditTypeId: requireCode("credit_type_id", req.creditTypeId),
        enabled: req.enabled,
        threshold: optionalThreshold("threshold", req.threshold),
        item: req.item.case === undefined && req.bundleVersion === 0 ? null : requireItem(req),
        monthlyRechargesMax: req.monthlyRechargesMax,
        lowThreshold: optionalThreshold("balance_low_threshold", req.balanceLowThreshold),
        creditOnCreation: req.creditOnCreation,
      });
      return { autoRecharge: encodeAutoRecharge(settings) };
    },
    async getAutoRecharge(req, ctx) {
      const customerId = ownCustomer(callerOf(ctx), requireId("customer_id", req.customerId));
      return { autoRecharge: encodeAutoRecharge(await getAutoRecharge(deps, { customerId, creditTypeId: requireCode("credit_type_id", req.creditTypeId) })) };
    },
    async listAutoRecharges(req, ctx) {
      const customerId = ownCustomer(callerOf(ctx), requireId("customer_id", req.customerId));
      return { autoRecharges: (await listAutoRecharges(deps, customerId)).map(encodeAutoRecharge) };
    },
    async listTopUps(req, ctx) {
      const customerId = ownCustomer(callerOf(ctx), requireId("customer_id", req.customerId));
      const page = await listTopUps(deps, { customerId, pageSize: requirePageSize(req.pageSize), pageToken: req.pageToken });
      return { topUps: page.topUps.map(encodeTopUp), nextPageToken: page.nextPageToken };
    },
  };
}
