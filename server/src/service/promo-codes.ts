// Promo codes: create, list (newest first, in pages, AIP-158) and disable. Each mutation is
// idempotent (runIdempotent) and audited. Redemption is redeem-promo-code.ts.
import { randomUUID } from "node:crypto";
import { invalid, LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { selectCreditType } from "../store/catalog-store.js";
import { isUniqueViolation, mapDriverErrors } from "../store/database.js";
import { disablePromoCode as disableCodeRow, insertPromoCode, type PromoCodeRow, selectPromoCode, selectPromoCodes } from "../store/promo-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { runIdempotent } from "./run-idempotent.js";

/** PromoCodeInput is a validated CreatePromoCode request: exactly one of creditExpiresAt and creditValiditySeconds. */
export interface PromoCodeInput {
  code: string;
  creditTypeId: string;
  amount: bigint;
  creditExpiresAt: Date | null;
  creditValiditySeconds: bigint | null;
  priority: number;
  validUntil: Date | null;
  maxRedemptions: bigint | null;
  description: string;
}

/** createPromoCode adds a code, audited. AlreadyExists PROMO_CODE_EXISTS; NotFound CREDIT_TYPE_NOT_FOUND. */
export async function createPromoCode(deps: Deps, caller: Caller, idempotency: Idempotency, input: PromoCodeInput): Promise<PromoCodeRow> {
  assert((input.creditExpiresAt === null) !== (input.creditValiditySeconds === null), "a code's credits expire one way");
  const now = deps.now();
  if (input.creditExpiresAt !== null && input.creditExpiresAt <= now) throw invalid("INVALID_PROMO_EXPIRY", "credit_expire_time", "must be in the future");
  if (input.validUntil !== null && input.validUntil <= now) throw invalid("INVALID_VALID_UNTIL", "valid_until", "must be in the future");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    if ((await selectCreditType(tx, input.creditTypeId)) === null) throw notFound("CREDIT_TYPE_NOT_FOUND", "credit type id", input.creditTypeId);
    const code = await insertPromoCode(tx, { promoCodeId: randomUUID(), ...input, createdBy: caller.keyId }).catch((error: unknown) => {
      if (isUniqueViolation(error, "promo_codes_code_key")) {
        throw new LedgerError("exists", "PROMO_CODE_EXISTS", `promo code ${input.code} exists already (codes match in any case)`, { code: input.code });
      }
      throw error;
    });
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "create_promo_code",
      target: `promo_code:${code.promoCodeId}`,
      reason: input.description === "" ? `promo code ${code.code}` : input.description,
      details: {
        old: null,
        new: {
          code: code.code,
          credit_type_id: code.creditTypeId,
          amount: code.amount.toString(),
          credit_expire_time: code.creditExpiresAt?.toISOString() ?? null,
          credit_validity_seconds: code.creditValiditySeconds?.toString() ?? null,
          priority: code.priority,
          valid_until: code.validUntil?.toISOString() ?? null,
          max_redemptions: code.maxRedemptions?.toString() ?? null,
        },
      },
    });
    return code;
  });
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function decodeToken(pageToken: string): { createdAtMicros: bigint; promoCodeId: string } | null {
  if (pageToken === "") return null;
  const [version, micros, promoCodeId] = Buffer.from(pageToken, "base64url").toString("utf8").split(":");
  if (version !== "promo1" || !/^[0-9]{1,18}$/.test(micros ?? "") || !uuidPattern.test(promoCodeId ?? "")) {
    throw invalid("INVALID_PAGE_TOKEN", "page_token", "not a token from a previous page of promo codes");
  }
  return { createdAtMicros: BigInt(micros), promoCodeId };
}

/** listPromoCodes reads one page of codes, newest first, and the token for the next. */
export async function listPromoCodes(
  deps: Deps,
  input: { includeDisabled: boolean; pageSize: number; pageToken: string },
): Promise<{ promoCodes: PromoCodeRow[]; nextPageToken: string }> {
  const after = decodeToken(input.pageToken);
  const rows = await mapDriverErrors(() => selectPromoCodes(deps.pool, { includeDisabled: input.includeDisabled, after, limit: input.pageSize + 1 }));
  const promoCodes = rows.slice(0, input.pageSize);
  const last = promoCodes.at(-1);
  const nextPageToken = rows.length > input.pageSize && last ? Buffer.from(`promo1:${last.createdAtMicros}:${last.promoCodeId}`).toString("base64url") : "";
  return { promoCodes, nextPageToken };
}

/** disablePromoCode stops a code for good, audited; a disabled code is returned as it is. NotFound PROMO_CODE_NOT_FOUND. */
export async function disablePromoCode(deps: Deps, caller: Caller, idempotency: Idempotency, code: string): Promise<PromoCodeRow> {
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const current = await selectPromoCode(tx, code, "update");
    if (current === null) throw notFound("PROMO_CODE_NOT_FOUND", "promo code", code);
    if (current.disabledAt !== null) return current;
    const disabled = await disableCodeRow(tx, current.promoCodeId);
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "disable_promo_code",
      target: `promo_code:${current.promoCodeId}`,
      reason: `promo code ${current.code}`,
      details: { old: { enabled: true }, new: { enabled: false }, redemption_count: current.redemptionCount.toString() },
    });
    return disabled;
  });
}
