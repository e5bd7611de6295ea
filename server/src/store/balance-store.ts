// Balances and lots. Every change to a balance or its lots happens under the balance
// row's lock (lockBalances, in one global key order), taken before any other row of it is
// read for a decision; lots are never locked on their own. That single lock order makes
// deadlocks impossible between ledger operations and is what keeps available >=
// -overdraft under any concurrency. Changes are written by balance-writer.ts.
import type { LotState } from "../ledger/balance-state.js";
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

/** keyArrays splits keys into the two arrays the multi-balance statements unnest. */
function keyArrays(keys: readonly BalanceKey[]): [string[], string[]] {
  return [keys.map((key) => key.customerId), keys.map((key) => key.creditTypeId)];
}

/** balanceKeyOf makes a map key for a balance. */
export function balanceKeyOf(customerId: string, creditTypeId: string): string {
  return `${customerId}\u0000${creditTypeId}`;
}

/**
 * lockBalances reads many balance rows FOR UPDATE, in (customer, credit type) order: every
 * transaction that changes balances takes their locks here, in this one order, so two of
 * them (on one replica or several) never deadlock. Keys without a row are absent from the
 * answer; with skipLocked (background jobs), so are rows another transaction holds.
 * Inside a transaction.
 */
export async function lockBalances(tx: Tx, keys: readonly BalanceKey[], options: { skipLocked: boolean }): Promise<Map<string, BalanceRow>> {
  if (keys.length === 0) return new Map();
  const result = await tx.query({
    name: options.skipLocked ? "lock_balances_skip_locked" : "lock_balances",
    text: `select b.customer_id, b.credit_type_id, ${balanceColumns.split(", ").map((c) => `b.${c}`).join(", ")}
           from balances b join unnest($1::text[], $2::text[]) as k(customer_id, credit_type_id) using (customer_id, credit_type_id)
           order by b.customer_id, b.credit_type_id for update of b${options.skipLocked ? " skip locked" : ""}`,
    values: keyArrays(keys),
  });
  return new Map(result.rows.map((row) => [balanceKeyOf(row.customer_id, row.credit_type_id), toBalanceRow(row)]));
}

/** StoredClaim is a request id's claim as stored: what was asked and the answer to replay. */
export interface StoredClaim {
  principal: string;
  requestId: string;
  method: string;
  payloadHash: Buffer;
  response: Buffer;
}

/** DecisionInputs are what decisions on locked balances read after the locks. */
export interface DecisionInputs {
  /** per balance: its lots with free credits (up to lotsPerDecisionMax + 1, in burn order), and the pinned lots. */
  lots: Map<string, LotRow[]>;
  /** the current status of each reservation asked about. */
  reservationStatuses: Map<string, string>;
  /** carried remainders, keyed by balanceKeyOf(customer id, feature key). */
  carries: Map<string, { perUnits: bigint; carry: bigint }>;
  /** claims already stored, keyed by balanceKeyOf(principal, request id). */
  claims: Map<string, StoredClaim>;
  /** now() of the transaction: what PostgreSQL records as recorded_at and created_at. */
  transactionTime: Date;
}

/**
 * selectDecisionInputs reads in one statement, after lockBalances, everything decisions on
 * those balances need that only a locked balance makes settled: the lots of each balance
 * (free ones, in burn order, one more than the decision limit so an excess shows), the
 * lots reservations pin, the status of reservations, carried remainders and stored claims
 * on request ids. Expects the balance rows locked by this transaction.
 */
export async function selectDecisionInputs(
  tx: Tx,
  request: {
    keys: readonly BalanceKey[];
    pinnedGrantIds: readonly string[];
    reservationIds: readonly string[];
    carries: readonly { customerId: string; featureKey: string }[];
    claims: readonly { principal: string; requestId: string }[];
  },
): Promise<DecisionInputs> {
  const result = await tx.query({
    name: "select_decision_inputs",
    text: `(select 'lot' as part, ${lotColumns.split(", ").map((c) => `l.${c}`).join(", ")}, null::jsonb as extra, null::timestamptz as tx_now
             from unnest($1::text[], $2::text[]) as k(customer_id, credit_type_id)
             cross join lateral (
               select ${lotColumns} from grants g
               where g.customer_id = k.customer_id and g.credit_type_id = k.credit_type_id and not g.exhausted and g.remaining > g.held
               order by g.priority, g.expires_at, g.effective_at, g.seq limit $3) l
           union
           select 'lot', ${lotColumns}, null, null from grants where grant_id = any($4::uuid[]))
           union all
           select 'extra', ${lotColumns.split(", ").map(() => "null").join(", ")}, jsonb_build_object(
             'statuses', (select coalesce(jsonb_object_agg(reservation_id, status), '{}') from reservations where reservation_id = any($5::uuid[])),
             'carries', (select coalesce(jsonb_agg(jsonb_build_array(c.customer_id, c.feature_key, c.per_units::text, c.carry::text)), '[]')
               from usage_carries c join unnest($6::text[], $7::text[]) as p(customer_id, feature_key) using (customer_id, feature_key)),
             'claims', (select coalesce(jsonb_agg(jsonb_build_array(i.principal, i.request_id, i.method, encode(i.payload_hash, 'base64'),
                 encode(i.response, 'base64'))), '[]')
               from idempotency_keys i join unnest($8::text[], $9::text[]) as r(principal, request_id) using (principal, request_id))), now()`,
    values: [
      ...keyArrays(request.keys),
      limits.lotsPerDecisionMax + 1,
      request.pinnedGrantIds,
      request.reservationIds,
      request.carries.map((pair) => pair.customerId),
      request.carries.map((pair) => pair.featureKey),
      request.claims.map((claim) => claim.principal),
      request.claims.map((claim) => claim.requestId),
    ],
  });
  const lots = new Map<string, LotRow[]>();
  let transactionTime: Date | undefined;
  let extra: { statuses: Record<string, string>; carries: [string, string, string, string][]; claims: [string, string, string, string, string][] } | undefined;
  for (const row of result.rows) {
    if (row.part === "extra") {
      extra = row.extra;
      transactionTime = row.tx_now;
      continue;
    }
    const lot = toLotRow(row);
    const key = balanceKeyOf(lot.customerId, lot.creditTypeId);
    const list = lots.get(key);
    if (list === undefined) lots.set(key, [lot]);
    else list.push(lot);
  }
  if (extra === undefined || transactionTime === undefined) throw new Error("assertion failed: selectDecisionInputs returns its extra row");
  return {
    lots,
    reservationStatuses: new Map(Object.entries(extra.statuses)),
    carries: new Map(extra.carries.map(([customerId, featureKey, perUnits, carry]) => [balanceKeyOf(customerId, featureKey), { perUnits: BigInt(perUnits), carry: BigInt(carry) }])),
    claims: new Map(
      extra.claims.map(([principal, requestId, method, payloadHash, response]) => [
        balanceKeyOf(principal, requestId),
        { principal, requestId, method, payloadHash: Buffer.from(payloadHash, "base64"), response: Buffer.from(response, "base64") },
      ]),
    ),
    transactionTime,
  };
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
           where customer_id = $1 and ($2 = '' or credit_type_id = $2) and not exhausted
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
                 where not exhausted and expires_at is not null and expires_at <= $1 and remaining > held
                 order by expires_at limit $2) due
               group by customer_id, credit_type_id) balances_due
           order by due_at`,
    values: [now, limit],
  });
  return result.rows.map((row) => ({ customerId: row.customer_id, creditTypeId: row.credit_type_id }));
}
