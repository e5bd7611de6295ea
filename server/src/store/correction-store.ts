// Usage corrections: the record of a refunded usage event, and the reads a correction and
// an explanation need (any lot by id; the debt each lot repaid that no correction has
// given back yet); and the mark of a lot voided whole.
import { type BalanceKey, type LotRow, lotViewColumns, toShownLotRow } from "./balance-store.js";
import type { Db, Tx } from "./database.js";

/** CorrectionRow is a stored correction of one usage event. */
export interface CorrectionRow {
  usageId: string;
  actor: string;
  reasonCode: string;
  note: string;
  /** the credits given back: the event's burned credits. */
  credits: bigint;
  requestId: string;
  createdAt: Date;
}

/** UnreturnedSettle is the debt one lot repaid (settle entries) less what corrections gave back to it. */
export interface UnreturnedSettle {
  grantId: string;
  unreturned: bigint;
}

const correctionColumns = "usage_id, actor, reason_code, note, credits, request_id, created_at";

function toCorrectionRow(row: Record<string, unknown>): CorrectionRow {
  return {
    usageId: String(row.usage_id),
    actor: row.actor as string,
    reasonCode: row.reason_code as string,
    note: row.note as string,
    credits: BigInt(row.credits as string),
    requestId: row.request_id as string,
    createdAt: row.created_at as Date,
  };
}

/** selectCorrection reads the correction of a usage event, or null. No locks. */
export async function selectCorrection(db: Db, usageId: string): Promise<CorrectionRow | null> {
  const result = await db.query({
    name: "select_usage_correction",
    text: `select ${correctionColumns} from usage_corrections where usage_id = $1`,
    values: [usageId],
  });
  return result.rows.length === 0 ? null : toCorrectionRow(result.rows[0]);
}

/**
 * selectLotsByIds reads a customer's lots by id, whatever their state (spent, expired),
 * oldest first. No locks; a caller that changes them holds the balance row lock.
 */
export async function selectLotsByIds(db: Db, customerId: string, grantIds: string[]): Promise<LotRow[]> {
  if (grantIds.length === 0) return [];
  const result = await db.query({
    name: "select_lots_by_ids",
    text: `select ${lotViewColumns} from grants where customer_id = $1 and grant_id = any($2::uuid[]) order by seq`,
    values: [customerId, grantIds],
  });
  return result.rows.map(toShownLotRow);
}

/**
 * updateLotVoided marks a whole lot voided at voidedAt (the void's decision time), once;
 * returns whether it did. Expects its balance row locked in the transaction that writes
 * the void (the write path's solo op), so that no change to the lot decides meanwhile.
 */
export async function updateLotVoided(tx: Tx, lot: { customerId: string; grantId: string; voidedAt: Date }): Promise<boolean> {
  const result = await tx.query({
    name: "update_lot_voided",
    text: "update grants set voided_at = $3 where customer_id = $1 and grant_id = $2 and voided_at is null",
    values: [lot.customerId, lot.grantId, lot.voidedAt],
  });
  return result.rowCount === 1;
}

/**
 * selectUnreturnedSettles reads, per lot of a balance, the debt it repaid (settle entries)
 * less what earlier corrections gave back to it beyond the event's own burns from it,
 * lots with something unreturned only, the lot that settled last first. A correction's
 * refund to a lot is its burns from that lot plus any such give-back, so the excess of
 * refunds over burns per (usage, lot) is exactly what was given back for settling.
 * Expects the balance row locked, so that no settle or correction lands meanwhile.
 */
export async function selectUnreturnedSettles(tx: Tx, key: BalanceKey, limit: number): Promise<UnreturnedSettle[]> {
  const result = await tx.query({
    name: "select_unreturned_settles",
    text: `with settled as (
             select grant_id, sum(amount) as settled, max(entry_id) as last_entry_id from ledger_entries
             where customer_id = $1 and credit_type_id = $2 and kind = 'settle'
             group by grant_id
           ), given_back as (
             select grant_id, sum(excess) as given_back from (
               select grant_id,
                 sum(amount) filter (where kind = 'refund') - coalesce(sum(amount) filter (where kind = 'burn'), 0) as excess
               from ledger_entries
               where customer_id = $1 and credit_type_id = $2 and kind in ('burn', 'refund') and grant_id is not null
                 and usage_id in (select usage_id from ledger_entries
                                  where customer_id = $1 and credit_type_id = $2 and kind = 'refund' and usage_id is not null)
               group by usage_id, grant_id
             ) per_usage where excess > 0
             group by grant_id
           )
           select s.grant_id, (s.settled - coalesce(g.given_back, 0))::text as unreturned
           from settled s left join given_back g using (grant_id)
           where s.settled > coalesce(g.given_back, 0)
           order by s.last_entry_id desc
           limit $3`,
    values: [key.customerId, key.creditTypeId, limit],
  });
  return result.rows.map((row) => ({ grantId: row.grant_id as string, unreturned: BigInt(row.unreturned as string) }));
}
