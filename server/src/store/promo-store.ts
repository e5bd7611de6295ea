// Promo codes and their redemptions. A code is matched by lower(code) (a unique index), so
// lookups ignore case. Amounts are bigint here and in SQL.
import type { Db, Tx } from "./database.js";

/** PromoCodeRow is a stored code. */
export interface PromoCodeRow {
  promoCodeId: string;
  code: string;
  creditTypeId: string;
  amount: bigint;
  creditExpiresAt: Date | null;
  creditValiditySeconds: bigint | null;
  priority: number;
  validUntil: Date | null;
  /** null: no limit. */
  maxRedemptions: bigint | null;
  redemptionCount: bigint;
  description: string;
  createdAt: Date;
  /** created_at in microseconds since the epoch: PostgreSQL's precision, for page tokens. */
  createdAtMicros: bigint;
  disabledAt: Date | null;
}

const columns =
  "promo_code_id, code, credit_type_id, amount, credit_expires_at, credit_validity_seconds, priority, valid_until, max_redemptions, redemption_count, description, created_at, disabled_at, (extract(epoch from created_at) * 1000000)::bigint as created_at_micros";

const bigintOrNull = (value: unknown): bigint | null => (value === null ? null : BigInt(value as string));

function toPromoCodeRow(row: Record<string, unknown>): PromoCodeRow {
  return {
    promoCodeId: row.promo_code_id as string,
    code: row.code as string,
    creditTypeId: row.credit_type_id as string,
    amount: BigInt(row.amount as string),
    creditExpiresAt: row.credit_expires_at as Date | null,
    creditValiditySeconds: bigintOrNull(row.credit_validity_seconds),
    priority: row.priority as number,
    validUntil: row.valid_until as Date | null,
    maxRedemptions: bigintOrNull(row.max_redemptions),
    redemptionCount: BigInt(row.redemption_count as string),
    description: row.description as string,
    createdAt: row.created_at as Date,
    createdAtMicros: BigInt(row.created_at_micros as string),
    disabledAt: row.disabled_at as Date | null,
  };
}

/** NewPromoCode is a code to insert. */
export type NewPromoCode = Omit<PromoCodeRow, "redemptionCount" | "createdAt" | "createdAtMicros" | "disabledAt"> & { createdBy: string };

/** insertPromoCode adds a code. A code equal in any case fails on promo_codes_code_key. */
export async function insertPromoCode(tx: Tx, code: NewPromoCode): Promise<PromoCodeRow> {
  const result = await tx.query({
    name: "insert_promo_code",
    text: `insert into promo_codes (promo_code_id, code, credit_type_id, amount, credit_expires_at, credit_validity_seconds, priority, valid_until, max_redemptions, description, created_by)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           returning ${columns}`,
    values: [
      code.promoCodeId,
      code.code,
      code.creditTypeId,
      code.amount.toString(),
      code.creditExpiresAt,
      code.creditValiditySeconds?.toString() ?? null,
      code.priority,
      code.validUntil,
      code.maxRedemptions?.toString() ?? null,
      code.description,
      code.createdBy,
    ],
  });
  return toPromoCodeRow(result.rows[0]);
}

/**
 * selectPromoCode reads a code by its letters in any case, or null. With "update" it takes
 * the code's row lock (what serialises redemptions of one code across customers).
 */
export async function selectPromoCode(db: Db, code: string, lock: "none" | "update"): Promise<PromoCodeRow | null> {
  const result = await db.query({
    name: lock === "update" ? "lock_promo_code" : "select_promo_code",
    text: `select ${columns} from promo_codes where lower(code) = lower($1)${lock === "update" ? " for update" : ""}`,
    values: [code],
  });
  return result.rows.length === 0 ? null : toPromoCodeRow(result.rows[0]);
}

/** selectPromoCodes reads a page of codes, newest first. No locks. */
export async function selectPromoCodes(db: Db, page: { includeDisabled: boolean; after: { createdAtMicros: bigint; promoCodeId: string } | null; limit: number }): Promise<PromoCodeRow[]> {
  const result = await db.query({
    name: "select_promo_codes",
    text: `select ${columns} from promo_codes
           where ($1 or disabled_at is null)
             and ($2::bigint is null or (created_at, promo_code_id) < (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::uuid))
           order by created_at desc, promo_code_id desc
           limit $4`,
    values: [page.includeDisabled, page.after?.createdAtMicros.toString() ?? null, page.after?.promoCodeId ?? null, page.limit],
  });
  return result.rows.map(toPromoCodeRow);
}

/** disablePromoCode marks an enabled code disabled. Expects the code's row lock. */
export async function disablePromoCode(tx: Tx, promoCodeId: string): Promise<PromoCodeRow> {
  const result = await tx.query({
    name: "disable_promo_code",
    text: `update promo_codes set disabled_at = now() where promo_code_id = $1 and disabled_at is null returning ${columns}`,
    values: [promoCodeId],
  });
  return toPromoCodeRow(result.rows[0]);
}

/** selectRedemptionGrantId reads the lot a customer's redemption of a code gave, or null. No locks. */
export async function selectRedemptionGrantId(db: Db, promoCodeId: string, customerId: string): Promise<string | null> {
  const result = await db.query<{ grant_id: string }>({
    name: "select_promo_redemption",
    text: "select grant_id from promo_redemptions where promo_code_id = $1 and customer_id = $2",
    values: [promoCodeId, customerId],
  });
  return result.rows[0]?.grant_id ?? null;
}

/**
 * insertRedemption records a customer's redemption and counts it on its code, in one
 * statement. Expects the code's row lock and the lot written in the same transaction. A
 * second redemption by the customer fails on promo_redemptions_pkey; a count past
 * max_redemptions fails the code's check. Returns the code's new count.
 */
export async function insertRedemption(tx: Tx, redemption: { promoCodeId: string; customerId: string; grantId: string; requestId: string; actor: string }): Promise<bigint> {
  const result = await tx.query<{ redemption_count: string }>({
    name: "insert_promo_redemption",
    text: `with r as (
             insert into promo_redemptions (promo_code_id, customer_id, grant_id, request_id, actor) values ($1, $2, $3, $4, $5)
             returning promo_code_id)
           update promo_codes c set redemption_count = c.redemption_count + 1 from r
           where c.promo_code_id = r.promo_code_id
           returning c.redemption_count`,
    values: [redemption.promoCodeId, redemption.customerId, redemption.grantId, redemption.requestId, redemption.actor],
  });
  return BigInt(result.rows[0].redemption_count);
}
