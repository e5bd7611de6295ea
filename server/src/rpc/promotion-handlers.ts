// PromotionService handlers: decode, call one service, encode.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Duration, durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  CreatePromoCodeRequestSchema,
  DisablePromoCodeRequestSchema,
  type PromoCodeSchema,
  type PromotionService,
  RedeemPromoCodeRequestSchema,
} from "@burndown/sdk";
import type { ServiceImpl } from "@connectrpc/connect";
import { invalid } from "../errors.js";
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { createPromoCode, disablePromoCode, listPromoCodes } from "../service/promo-codes.js";
import { redeemPromoCode } from "../service/redeem-promo-code.js";
import type { PromoCodeRow } from "../store/promo-store.js";
import { optionalTime, requireCode, requireId, requirePageSize, requirePositive, requirePriority, requireText } from "./decode.js";
import { encodeBalance, encodeLot } from "./encode.js";
import { ownCustomer } from "./interceptors.js";
import { callerOf } from "./ledger-handlers.js";
import { idempotencyOf } from "./request-hash.js";

const promoCodePattern = new RegExp(`^[A-Za-z0-9_-]{${limits.promoCodeLengthMin},${limits.promoCodeLengthMax}}$`);

/** requirePromoCode checks a code as customers type it: 3-64 letters, digits, "-" and "_". */
export function requirePromoCode(value: string): string {
  const code = value.trim();
  if (code === "") throw invalid("MISSING_FIELD", "code", "is required");
  if (!promoCodePattern.test(code)) {
    throw invalid("INVALID_PROMO_CODE", "code", `must be ${limits.promoCodeLengthMin} to ${limits.promoCodeLengthMax} letters, digits, '-' and '_'`);
  }
  return code;
}

/** requireCreditExpiry checks that a code's credits expire one way: at a time, or a validity from redemption. */
function requireCreditExpiry(expireTime: Date | null, validity: Duration | undefined): { creditExpiresAt: Date | null; creditValiditySeconds: bigint | null } {
  if ((expireTime === null) === (validity === undefined)) {
    throw invalid("INVALID_PROMO_EXPIRY", "credit_expire_time", "set either credit_expire_time or credit_validity");
  }
  if (validity === undefined) return { creditExpiresAt: expireTime, creditValiditySeconds: null };
  if (validity.nanos !== 0 || validity.seconds < 1n || validity.seconds > limits.creditExpirySecondsMax) {
    throw invalid("INVALID_PROMO_EXPIRY", "credit_validity", "must be whole seconds from 1 second to 100 years");
  }
  return { creditExpiresAt: null, creditValiditySeconds: validity.seconds };
}

/** requireMaxRedemptions checks a code's limit: 0 for none, else positive. */
function requireMaxRedemptions(value: bigint): bigint | null {
  if (value < 0n) throw invalid("INVALID_MAX_REDEMPTIONS", "max_redemptions", "must be 0 (no limit) or positive");
  return value === 0n ? null : value;
}

/** encodePromoCode converts a code. */
export function encodePromoCode(row: PromoCodeRow): MessageInitShape<typeof PromoCodeSchema> {
  return {
    promoCodeId: row.promoCodeId,
    code: row.code,
    creditTypeId: row.creditTypeId,
    amount: row.amount,
    creditExpireTime: row.creditExpiresAt === null ? undefined : timestampFromDate(row.creditExpiresAt),
    creditValidity: row.creditValiditySeconds === null ? undefined : durationFromMs(Number(row.creditValiditySeconds) * 1000),
    priority: row.priority,
    validUntil: row.validUntil === null ? undefined : timestampFromDate(row.validUntil),
    maxRedemptions: row.maxRedemptions ?? 0n,
    redemptionCount: row.redemptionCount,
    description: row.description,
    createTime: timestampFromDate(row.createdAt),
    disableTime: row.disabledAt === null ? undefined : timestampFromDate(row.disabledAt),
  };
}

/** promotionHandlers implements PromotionService. */
export function promotionHandlers(deps: Deps): ServiceImpl<typeof PromotionService> {
  return {
    async createPromoCode(req, ctx) {
      const idempotency = idempotencyOf(CreatePromoCodeRequestSchema, "CreatePromoCode", req);
      const code = await createPromoCode(deps, callerOf(ctx), idempotency, {
        code: requirePromoCode(req.code),
        creditTypeId: requireCode("credit_type_id", req.creditTypeId),
        amount: requirePositive("amount", req.amount),
        ...requireCreditExpiry(optionalTime("credit_expire_time", req.creditExpireTime), req.creditValidity),
        priority: requirePriority(req.priority),
        validUntil: optionalTime("valid_until", req.validUntil),
        maxRedemptions: requireMaxRedemptions(req.maxRedemptions),
        description: requireText("description", req.description, limits.noteLengthMax),
      });
      return { promoCode: encodePromoCode(code) };
    },
    async listPromoCodes(req) {
      const page = await listPromoCodes(deps, {
        includeDisabled: req.includeDisabled,
        pageSize: requirePageSize(req.pageSize),
        pageToken: requireText("page_token", req.pageToken, limits.pageTokenLengthMax),
      });
      return { promoCodes: page.promoCodes.map(encodePromoCode), nextPageToken: page.nextPageToken };
    },
    async disablePromoCode(req, ctx) {
      const idempotency = idempotencyOf(DisablePromoCodeRequestSchema, "DisablePromoCode", req);
      return { promoCode: encodePromoCode(await disablePromoCode(deps, callerOf(ctx), idempotency, requirePromoCode(req.code))) };
    },
    async redeemPromoCode(req, ctx) {
      const caller = callerOf(ctx);
      const customerId = ownCustomer(caller, requireId("customer_id", req.customerId));
      const idempotency = idempotencyOf(RedeemPromoCodeRequestSchema, "RedeemPromoCode", req);
      const result = await redeemPromoCode(deps, caller, idempotency, { customerId, code: requirePromoCode(req.code) });
      return { lot: encodeLot(result.lot), balance: encodeBalance(result.balance), code: result.code };
    },
  };
}
