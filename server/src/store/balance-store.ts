// Balances and lots. Every change to a balance or its lots happens under the balance
// row's lock (lockBalance), taken first in every transaction that changes it; lots are
// never locked on their own. That single lock order makes deadlocks impossible between
// ledger operations and is what keeps available >= -overdraft under any concurrency.
import type { BalanceState, LotState } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import type { Db, Tx } from "./database.js";

/** BalanceKey names one balance. */
export interface BalanceKey {
  customerId: string;
  creditTypeId: string;
}

/** BalanceRow is the stored projection of a balance. */
export interface BalanceRow {
  granted: bigint;
  held: bigint;
  burned: bigint;
  expired: bigint;
  debt: bigint;
  overdraftHeld: bigint;
  overdraftLimit: bigint;
}

/** LotRow is a stored lot with the fields a response shows. */
export interface LotRow extends LotState {
  customerId: string;
  creditTypeId: string;
  source: string;
  amount: bigint;
  reasonCode: string;
  createdAt: Date;
}

const balanceColumns = "granted, held, burned, expired, debt, overdraft_held, overdraft_limit";
/** lotColumns are the columns toLotRow reads. */
export const lotColumns =
  "customer_id, credit_type_id, grant_id, source, amount, remaining, held, priority, effective_at, expires_at, seq, reason_code, created_at";

/** toBalanceRow converts a driver row (int8 as strings) to a BalanceRow. */
export function toBalanceRow(row: Record<string, string>): BalanceRow {
  return {
    granted: BigInt(row.granted),
    held: BigInt(row.held),
    burned: BigInt(row.burned),
    expired: BigInt(row.expired),
    debt: BigInt(row.debt),
    overdraftHeld: BigInt(row.overdraft_held),
    overdraftLimit: BigInt(row.overdraft_limit),
  };
}

/** toLotRow converts a driver row to a LotRow. */
export function toLotRow(row: Record<string, unknown>): LotRow {
  return {
    customerId: row.customer_id as string,
    creditTypeId: row.credit_type_id as string,
    grantId: row.grant_id as string,
    source: row.source as string,
    amount: BigInt(row.amount as string),
    remaining: BigInt(row.remaining as string),
    held: BigInt(row.held as string),
    priority: row.priority as number,
    effectiveAtMs: (row.effective_at as Date).getTime(),
    expiresAtMs: row.expires_at === null ? null : (row.expires_at as Date).getTime(),
    seq: BigInt(row.seq as string),
    reasonCode: row.reason_code as string,
    createdAt: row.created_at as Date,
  };
}

/** ensureBalance creates the balance row if missing. Needs the customer row; any transaction. */
export async function ensureBalance(tx: Tx, key: BalanceKey): Promise<void> {
  await tx.query({
    name: "ensure_balance",
    text: "insert into balances (customer_id, credit_type_id) values ($1, $2) on conflict do nothing",
    values: [key.customerId, key.creditTypeId],
  });
}

/** lockBalance reads a balance row FOR UPDATE, or null when it does not exist. Inside a transaction. */
export async function lockBalance(tx: Tx, key: BalanceKey): Promise<BalanceRow | null> {
  const result = await tx.query({
    name: "lock_balance",
    text: `select ${balanceColumns} from balances where customer_id = $1 and credit_type_id = $2 for update`,
    values: [key.customerId, key.creditTypeId],
  });
  return result.rows.length === 0 ? null : toBalanceRow(result.rows[0]);
}

/**
 * selectDecisionLots reads the lots a decision needs: every lot with free credits, plus
 * the pinned ones. Expects the balance row locked by this transaction.
 */
export async function selectDecisionLots(
  tx: Tx,
  key: BalanceKey,
  pinnedGrantIds: string[],
  reservationId: string | null,
): Promise<{ lots: LotRow[]; reservationStatus: string | null }> {
  // The reservation's status comes along in the same statement, read (like the lots)
  // after the balance lock was granted: one round trip for both.
  const result = await tx.query({
    name: "select_decision_lots",
    text: `select r.status as reservation_status, lots.*
           from (select $5::uuid as id) q
           left join reservations r on r.customer_id = $1 and r.reservation_id = q.id
           left join (
             (select ${lotColumns} from grants
               where customer_id = $1 and credit_type_id = $2 and remaining > held
               order by priority, expires_at, effective_at, seq limit $4)
             union
             (select ${lotColumns} from grants where customer_id = $1 and grant_id = any($3::uuid[]))
           ) lots on true`,
    values: [key.customerId, key.creditTypeId, pinnedGrantIds, limits.lotsPerDecisionMax + 1, reservationId],
  });
  return {
    lots: result.rows.filter((row) => row.grant_id !== null).map(toLotRow),
    reservationStatus: (result.rows[0]?.reservation_status as string | null) ?? null,
  };
}

/** insertLot adds a lot with remaining = amount. Expects the balance row locked. */
export async function insertLot(
  tx: Tx,
  lot: {
    customerId: string;
    creditTypeId: string;
    grantId: string;
    source: string;
    amount: bigint;
    priority: number;
    effectiveAt: Date;
    expiresAt: Date | null;
    costBasisMicros: bigint;
    reasonCode: string;
    note: string;
    requestId: string;
    actor: string;
  },
): Promise<LotRow> {
  const result = await tx.query({
    name: "insert_lot",
    text: `insert into grants (customer_id, credit_type_id, grant_id, source, amount, remaining, priority,
             effective_at, expires_at, cost_basis_micros, reason_code, note, request_id, actor)
           values ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           returning ${lotColumns}`,
    values: [
      lot.customerId, lot.creditTypeId, lot.grantId, lot.source, lot.amount.toString(), lot.priority,
      lot.effectiveAt, lot.expiresAt, lot.costBasisMicros.toString(), lot.reasonCode, lot.note, lot.requestId, lot.actor,
    ],
  });
  return toLotRow(result.rows[0]);
}

/** keyArrays splits keys into the two arrays the multi-balance statements unnest. */
function keyArrays(keys: BalanceKey[]): [string[], string[]] {
  return [keys.map((key) => key.customerId), keys.map((key) => key.creditTypeId)];
}

/** ensureBalances creates missing balance rows for many keys in one statement. Needs the customers; any transaction. */
export async function ensureBalances(tx: Tx, keys: BalanceKey[]): Promise<void> {
  if (keys.length === 0) return;
  await tx.query({
    name: "ensure_balances",
    text: `insert into balances (customer_id, credit_type_id)
           select * from unnest($1::text[], $2::text[]) order by 1, 2 on conflict do nothing`,
    values: keyArrays(keys),
  });
}

/**
 * lockBalances reads many balance rows FOR UPDATE, locking them in (customer, credit
 * type) order so that two multi-balance transactions can never deadlock. Inside a transaction.
 */
export async function lockBalances(tx: Tx, keys: BalanceKey[]): Promise<Map<string, BalanceRow>> {
  const result = await tx.query({
    name: "lock_balances",
    text: `select b.customer_id, b.credit_type_id, ${balanceColumns.split(", ").map((c) => `b.${c}`).join(", ")}
           from balances b join unnest($1::text[], $2::text[]) as k(customer_id, credit_type_id) using (customer_id, credit_type_id)
           order by b.customer_id, b.credit_type_id for update of b`,
    values: keyArrays(keys),
  });
  return new Map(result.rows.map((row) => [balanceKeyOf(row.customer_id, row.credit_type_id), toBalanceRow(row)]));
}

/** balanceKeyOf makes a map key for a balance. */
export function balanceKeyOf(customerId: string, creditTypeId: string): string {
  return `${customerId}\u0000${creditTypeId}`;
}

/** selectFreeLotsOf reads the lots with free credits of many balances. Expects their rows locked. */
export async function selectFreeLotsOf(tx: Tx, keys: BalanceKey[]): Promise<LotRow[]> {
  const result = await tx.query({
    name: "select_free_lots_of",
    text: `select ${lotColumns.split(", ").map((c) => `g.${c}`).join(", ")}
           from grants g join unnest($1::text[], $2::text[]) as k(customer_id, credit_type_id) using (customer_id, credit_type_id)
           where g.remaining > g.held`,
    values: keyArrays(keys),
  });
  return result.rows.map(toLotRow);
}

/** updateBalances writes the new totals of many balances in one statement. Expects their rows locked. */
export async function updateBalances(tx: Tx, changes: { key: BalanceKey; state: BalanceState }[]): Promise<void> {
  if (changes.length === 0) return;
  const column = (pick: (state: BalanceState) => bigint) => changes.map((change) => pick(change.state).toString());
  const result = await tx.query({
    name: "update_balances",
    text: `update balances b set granted = v.granted, held = v.held, burned = v.burned, expired = v.expired, debt = v.debt,
             overdraft_held = v.overdraft_held, updated_at = now()
           from unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
             as v(customer_id, credit_type_id, granted, held, burned, expired, debt, overdraft_held)
           where b.customer_id = v.customer_id and b.credit_type_id = v.credit_type_id`,
    values: [
      ...keyArrays(changes.map((change) => change.key)),
      column((s) => s.granted), column((s) => s.held), column((s) => s.burned), column((s) => s.expired), column((s) => s.debt), column((s) => s.overdraftHeld),
    ],
  });
  if (result.rowCount !== changes.length) throw new Error("assertion failed: every locked balance row is updated");
}

/** updateLots writes new remaining/held for changed lots, of any balances. Expects their balance rows locked. */
export async function updateLots(tx: Tx, lots: (LotState & { customerId: string })[]): Promise<void> {
  if (lots.length === 0) return;
  const result = await tx.query({
    name: "update_lots",
    text: `update grants g set remaining = v.remaining, held = v.held
           from unnest($1::text[], $2::uuid[], $3::bigint[], $4::bigint[]) as v(customer_id, grant_id, remaining, held)
           where g.customer_id = v.customer_id and g.grant_id = v.grant_id`,
    values: [lots.map((lot) => lot.customerId), lots.map((lot) => lot.grantId), lots.map((lot) => lot.remaining.toString()), lots.map((lot) => lot.held.toString())],
  });
  if (result.rowCount !== lots.length) throw new Error("assertion failed: every changed lot is updated");
}

/**
 * setOverdraftLimit changes a limit unless the overdraft in use (debt plus unbacked holds)
 * exceeds it; returns false then. Any transaction; the upsert takes the row lock.
 */
export async function setOverdraftLimit(tx: Tx, key: BalanceKey, limit: bigint): Promise<boolean> {
  const result = await tx.query({
    name: "set_overdraft_limit",
    text: `insert into balances (customer_id, credit_type_id, overdraft_limit) values ($1, $2, $3)
           on conflict (customer_id, credit_type_id) do update set overdraft_limit = excluded.overdraft_limit, updated_at = now()
           where balances.debt + balances.overdraft_held <= excluded.overdraft_limit`,
    values: [key.customerId, key.creditTypeId, limit.toString()],
  });
  return result.rowCount === 1;
}

/** selectBalances reads a customer's balances, optionally one credit type. No locks. */
export async function selectBalances(tx: Db, customerId: string, creditTypeId: string): Promise<(BalanceRow & { creditTypeId: string })[]> {
  const result = await tx.query({
    name: "select_balances",
    text: `select credit_type_id, ${balanceColumns} from balances
           where customer_id = $1 and ($2 = '' or credit_type_id = $2) order by credit_type_id`,
    values: [customerId, creditTypeId],
  });
  return result.rows.map((row) => ({ creditTypeId: row.credit_type_id, ...toBalanceRow(row) }));
}

/** selectOpenLots reads a customer's lots with credits left, in burn order. No locks. */
export async function selectOpenLots(tx: Db, customerId: string, creditTypeId: string): Promise<LotRow[]> {
  const result = await tx.query({
    name: "select_open_lots",
    text: `select ${lotColumns} from grants
           where customer_id = $1 and ($2 = '' or credit_type_id = $2) and remaining > 0
           order by credit_type_id, priority, expires_at, effective_at, seq limit $3`,
    values: [customerId, creditTypeId, limits.lotsPerDecisionMax],
  });
  return result.rows.map(toLotRow);
}

/** selectDueBalances finds balances with lots whose free part is due to expire. No locks. */
export async function selectDueBalances(tx: Db, now: Date, limit: number): Promise<BalanceKey[]> {
  const result = await tx.query({
    name: "select_due_balances",
    text: `select customer_id, credit_type_id from
             (select customer_id, credit_type_id, min(expires_at) as due_at from
               (select customer_id, credit_type_id, expires_at from grants
                 where remaining > held and expires_at is not null and expires_at <= $1
                 order by expires_at limit $2) due
               group by customer_id, credit_type_id) balances_due
           order by due_at`,
    values: [now, limit],
  });
  return result.rows.map((row) => ({ customerId: row.customer_id, creditTypeId: row.credit_type_id }));
}

/** tryLockBalance locks a balance row FOR UPDATE SKIP LOCKED: null when another holds it. */
export async function tryLockBalance(tx: Tx, key: BalanceKey): Promise<BalanceRow | null> {
  const result = await tx.query({
    name: "try_lock_balance",
    text: `select ${balanceColumns} from balances where customer_id = $1 and credit_type_id = $2 for update skip locked`,
    values: [key.customerId, key.creditTypeId],
  });
  return result.rows.length === 0 ? null : toBalanceRow(result.rows[0]);
}
