// Refunds of charges: the burns a charge made, the refunds it had, and a new refund's
// record. A charge is a direct Burn (its request id), a committed reservation or a usage
// event; its refunds are written only under its balance's row lock.
import type { Db, Tx } from "./database.js";
import { entryColumns, type EntryRow, toEntryRow } from "./entry-store.js";

/** ChargeKind is what burned a charge's credits. */
export type ChargeKind = "burn" | "commit" | "usage";

/** Charge names a charge of a customer. */
export interface Charge {
  customerId: string;
  kind: ChargeKind;
  /** the Burn's request id, the reservation id or the usage id. */
  ref: string;
}

/** RefundPart is where one part of a refund went: from the lot it burned from (null: overdraft) to that lot, a new lot, or null (off the debt). */
export interface RefundPart {
  fromGrantId: string | null;
  toGrantId: string | null;
  amount: bigint;
}

/** ChargeRefundRow is a stored refund of a charge. */
export interface ChargeRefundRow {
  refundId: string;
  customerId: string;
  creditTypeId: string;
  chargeKind: ChargeKind;
  chargeRef: string;
  amount: bigint;
  charged: bigint;
  refundedTotal: bigint;
  parts: RefundPart[];
  reasonCode: string;
  note: string;
  actor: string;
  requestId: string;
  disputeId: string | null;
  createdAt: Date;
}

const refundColumns =
  "refund_id, customer_id, credit_type_id, charge_kind, charge_ref, amount, charged, refunded_total, parts, reason_code, note, actor, request_id, dispute_id, created_at";

function toRefundRow(row: Record<string, unknown>): ChargeRefundRow {
  const parts = row.parts as { fromGrantId: string | null; toGrantId: string | null; amount: string }[];
  return {
    refundId: row.refund_id as string,
    customerId: row.customer_id as string,
    creditTypeId: row.credit_type_id as string,
    chargeKind: row.charge_kind as ChargeKind,
    chargeRef: row.charge_ref as string,
    amount: BigInt(row.amount as string),
    charged: BigInt(row.charged as string),
    refundedTotal: BigInt(row.refunded_total as string),
    parts: parts.map((part) => ({ ...part, amount: BigInt(part.amount) })),
    reasonCode: row.reason_code as string,
    note: row.note as string,
    actor: row.actor as string,
    requestId: row.request_id as string,
    disputeId: (row.dispute_id as string | null) ?? null,
    createdAt: row.created_at as Date,
  };
}

/** selectBurnEntry reads one burn entry of a customer, or null. No locks. */
export async function selectBurnEntry(db: Db, customerId: string, entryId: string): Promise<EntryRow | null> {
  const result = await db.query({
    name: "select_burn_entry",
    text: `select ${entryColumns} from ledger_entries where customer_id = $1 and entry_id = $2 and kind = 'burn'`,
    values: [customerId, entryId],
  });
  return result.rows.length === 0 ? null : toEntryRow(result.rows[0]);
}

const chargeFilters: Record<ChargeKind, string> = {
  burn: "request_id = $2 and reservation_id is null and usage_id is null",
  commit: "reservation_id = $2::uuid",
  usage: "usage_id = $2::bigint",
};

/**
 * selectChargeBurns reads a charge's burn entries, oldest first. No locks: entries never
 * change. A usage event's are found by the usage index; a Burn's and a commit's among the
 * customer's entries (no index on request or reservation ids, which would cost every write
 * on the hot path for the sake of an occasional refund).
 */
export async function selectChargeBurns(db: Db, charge: Charge, limit: number): Promise<EntryRow[]> {
  const result = await db.query({
    name: `select_charge_burns_${charge.kind}`,
    text: `select ${entryColumns} from ledger_entries
           where customer_id = $1 and kind = 'burn' and ${chargeFilters[charge.kind]}
           order by entry_id limit $3`,
    values: [charge.customerId, charge.ref, limit],
  });
  return result.rows.map(toEntryRow);
}

/** selectChargeRefunds reads a charge's refunds, oldest first. Expects the charge's balance row locked, so that none lands meanwhile. */
export async function selectChargeRefunds(db: Db, charge: Charge): Promise<ChargeRefundRow[]> {
  const result = await db.query({
    name: "select_charge_refunds",
    text: `select ${refundColumns} from charge_refunds where customer_id = $1 and charge_kind = $2 and charge_ref = $3 order by refunded_total`,
    values: [charge.customerId, charge.kind, charge.ref],
  });
  return result.rows.map(toRefundRow);
}

/** selectRefundsOfDispute reads the refunds that resolved a dispute. No locks. */
export async function selectRefundsOfDispute(db: Db, customerId: string, disputeId: string): Promise<ChargeRefundRow[]> {
  const result = await db.query({
    name: "select_refunds_of_dispute",
    text: `select ${refundColumns} from charge_refunds where customer_id = $1 and dispute_id = $2 order by created_at`,
    values: [customerId, disputeId],
  });
  return result.rows.map(toRefundRow);
}

/** selectCostBases reads the cost basis of a customer's lots by id. No locks: it never changes. */
export async function selectCostBases(db: Db, customerId: string, grantIds: string[]): Promise<Map<string, bigint>> {
  if (grantIds.length === 0) return new Map();
  const result = await db.query({
    name: "select_cost_bases",
    text: "select grant_id, cost_basis_micros from grants where customer_id = $1 and grant_id = any($2::uuid[])",
    values: [customerId, grantIds],
  });
  return new Map(result.rows.map((row) => [row.grant_id as string, BigInt(row.cost_basis_micros as string)]));
}

/** insertChargeRefund records a refund. Expects the charge's balance row locked by this transaction. */
export async function insertChargeRefund(tx: Tx, row: Omit<ChargeRefundRow, "createdAt">): Promise<ChargeRefundRow> {
  const parts = row.parts.map((part) => ({ ...part, amount: part.amount.toString() }));
  const result = await tx.query({
    name: "insert_charge_refund",
    text: `insert into charge_refunds (refund_id, customer_id, credit_type_id, charge_kind, charge_ref, amount, charged, refunded_total, parts, reason_code, note, actor, request_id, dispute_id)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) returning ${refundColumns}`,
    values: [
      row.refundId, row.customerId, row.creditTypeId, row.chargeKind, row.chargeRef, row.amount.toString(), row.charged.toString(),
      row.refundedTotal.toString(), JSON.stringify(parts), row.reasonCode, row.note, row.actor, row.requestId, row.disputeId,
    ],
  });
  return toRefundRow(result.rows[0]);
}
