// Balances and lots. Every change to a balance or its lots happens under the balance
// row's lock (lockBalances, in one global key order), taken before any other row of it is
// read for a decision; lots are never locked on their own. That single lock order makes
// deadlocks impossible between ledger operations and is what keeps available >=
// -overdraft under any concurrency. Changes are written by balance-writer.ts.
import type { LotState } from "../ledger/balance-state.js";
import type { MemberLimit, MemberUsage, PoolPeriod } from "../ledger/pool-limit.js";
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
  /**
   * what one credit of the lot cost, in micro minor units; read by the statements that
   * show lots (lotViewColumns), not by the decisions of the write path, which never need it.
   */
  costBasisMicros?: bigint;
}

const balanceColumns = "granted, held, burned, expired, debt, overdraft_held, overdraft_limit";
/** lotColumns are the columns toLotRow reads. */
export const lotColumns =
  "customer_id, credit_type_id, grant_id, source, amount, remaining, held, expired, priority, effective_at, expires_at, seq, reason_code, created_at, voided_at";

/** lotViewColumns are lotColumns and the cost basis: what a lot shown to a caller needs. */
export const lotViewColumns = `${lotColumns}, cost_basis_micros`;

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
    expired: BigInt(row.expired as string),
    priority: row.priority as number,
    effectiveAtMs: (row.effective_at as Date).getTime(),
    expiresAtMs: row.expires_at === null ? null : (row.expires_at as Date).getTime(),
    seq: BigInt(row.seq as string),
    reasonCode: row.reason_code as string,
    createdAt: row.created_at as Date,
    voidedAtMs: row.voided_at === null ? null : (row.voided_at as Date).getTime(),
  };
}

/** toShownLotRow converts a driver row read with lotViewColumns: a LotRow with its cost basis. */
export function toShownLotRow(row: Record<string, unknown>): LotRow {
  return { ...toLotRow(row), costBasisMicros: BigInt(row.cost_basis_micros as string) };
}

/** keyArrays splits keys into the two arrays the multi-balance statements unnest. */
function keyArrays(keys: readonly BalanceKey[]): [string[], string[]] {
  return [keys.map((key) => key.customerId), keys.map((key) => key.creditTypeId)];
}

/** balanceKeyOf makes a map key for a balance. */
export function balanceKeyOf(customerId: string, creditTypeId: string): string {
  return `${customerId}\u0000${creditTypeId}`;
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
  /** whether the kill switch is on (no refusals for lack of credits). */
  killSwitch: boolean;
  /** the pool memberships of the customers asked about (DecisionRequest.poolMembers); absent: not a member. */
  pools: Map<string, PoolMembership>;
}

/** PoolMembership is a member's pool as a decision sees it: its owner, its limits and its counters, by credit type. */
export interface PoolMembership {
  parentCustomerId: string;
  limits: Map<string, MemberLimit>;
  usage: Map<string, MemberUsage>;
}

/** DecisionRequest names what decisions on a set of balances need read. */
export interface DecisionRequest {
  keys: readonly BalanceKey[];
  pinnedGrantIds: readonly string[];
  reservationIds: readonly string[];
  carries: readonly { customerId: string; featureKey: string }[];
  claims: readonly { principal: string; requestId: string }[];
  /** customers whose pool membership decisions need (every customer that spends). */
  poolMembers: readonly string[];
}

/**
 * decisionText is the statement that reads what decisions need, and with a lock mode first
 * locks the balances (in key order) and returns them with two versions each: the row as
 * locked, and the row as the statement's snapshot saw it. A transaction that committed a
 * change to a balance after the snapshot was taken (one the lock waited for, or one just
 * before it) shows as a difference, and only then is what else this statement read about
 * that balance (read from the snapshot) possibly out of date.
 */
function decisionText(lock: "none" | "wait" | "skip locked"): string {
  const lotSelect = lotColumns.split(", ").map((c) => `l.${c}`).join(", ");
  const nulls = lotColumns.split(", ").map(() => "null").join(", ");
  const locked =
    lock === "none"
      ? ""
      : `with locked as (
           select b.customer_id, b.credit_type_id, ${balanceColumns.split(", ").map((c) => `b.${c}`).join(", ")}, b.xmin::text as version,
             b.recharge_threshold, b.low_threshold
           from balances b join unnest($1::text[], $2::text[]) as k(customer_id, credit_type_id) using (customer_id, credit_type_id)
           order by b.customer_id, b.credit_type_id for update of b${lock === "skip locked" ? " skip locked" : ""})
         `;
  const balances =
    lock === "none"
      ? ""
      : `'balances', (select coalesce(jsonb_agg(jsonb_build_array(l.customer_id, l.credit_type_id, l.granted::text, l.held::text, l.burned::text,
             l.expired::text, l.debt::text, l.overdraft_held::text, l.overdraft_limit::text, l.version,
             (select s.xmin::text from balances s where s.customer_id = l.customer_id and s.credit_type_id = l.credit_type_id),
             l.recharge_threshold::text, l.low_threshold::text)), '[]') from locked l),
         `;
  return `${locked}(select 'lot' as part, ${lotSelect}, null::jsonb as extra, null::timestamptz as tx_now
             from unnest($1::text[], $2::text[]) as k(customer_id, credit_type_id)
             cross join lateral (
               select ${lotColumns} from grants g
               where g.customer_id = k.customer_id and g.credit_type_id = k.credit_type_id and not g.exhausted and g.remaining > g.held
               order by g.priority, g.expires_at, g.effective_at, g.seq limit $3) l
           union
           select 'lot', ${lotColumns}, null, null from grants where grant_id = any($4::uuid[]))
           union all
           select 'extra', ${nulls}, jsonb_build_object(
             ${balances}'statuses', (select coalesce(jsonb_object_agg(reservation_id, status), '{}') from reservations where reservation_id = any($5::uuid[])),
             'carries', (select coalesce(jsonb_agg(jsonb_build_array(c.customer_id, c.feature_key, c.per_units::text, c.carry::text)), '[]')
               from usage_carries c join unnest($6::text[], $7::text[]) as p(customer_id, feature_key) using (customer_id, feature_key)),
             'claims', (select coalesce(jsonb_agg(jsonb_build_array(i.principal, i.request_id, i.method, encode(i.payload_hash, 'base64'),
                 encode(i.response, 'base64'))), '[]')
               from idempotency_keys i join unnest($8::text[], $9::text[]) as r(principal, request_id) using (principal, request_id)),
             'pools', (select coalesce(jsonb_agg(jsonb_build_array(m.member_customer_id, m.parent_customer_id,
                 (select coalesce(jsonb_agg(jsonb_build_array(pl.credit_type_id, pl.limit_amount::text, pl.period)), '[]')
                  from pool_member_limits pl where pl.member_customer_id = m.member_customer_id),
                 (select coalesce(jsonb_agg(jsonb_build_array(pu.credit_type_id, (extract(epoch from pu.period_start) * 1000)::bigint::text, pu.used::text)), '[]')
                  from pool_usage pu where pu.parent_customer_id = m.parent_customer_id and pu.member_customer_id = m.member_customer_id))), '[]')
               from pool_members m where m.member_customer_id = any($10::text[])),
             'kill_switch', (select value = 'on' from settings where key = 'kill_switch')), now()`;
}

const decisionTexts = { none: decisionText("none"), wait: decisionText("wait"), "skip locked": decisionText("skip locked") };

function decisionValues(request: DecisionRequest): unknown[] {
  return [
    ...keyArrays(request.keys),
    limits.lotsPerDecisionMax + 1,
    request.pinnedGrantIds,
    request.reservationIds,
    request.carries.map((pair) => pair.customerId),
    request.carries.map((pair) => pair.featureKey),
    request.claims.map((claim) => claim.principal),
    request.claims.map((claim) => claim.requestId),
    request.poolMembers,
  ];
}

type BalanceJson = [string, string, string, string, string, string, string, string, string, string, string | null, string | null, string | null];

/**
 * Thresholds are a balance's auto-recharge and balance-low thresholds, copied onto its row
 * from its settings (recharge-store.ts); null when not set.
 */
export interface Thresholds {
  recharge: bigint | null;
  low: bigint | null;
}

interface DecisionExtra {
  kill_switch: boolean | null;
  balances?: BalanceJson[];
  statuses: Record<string, string>;
  carries: [string, string, string, string][];
  claims: [string, string, string, string, string][];
  pools: [string, string, [string, string, string][], [string, string, string][]][];
}

function toDecisionInputs(rows: Record<string, unknown>[]): { inputs: DecisionInputs; extra: DecisionExtra } {
  const lots = new Map<string, LotRow[]>();
  let transactionTime: Date | undefined;
  let extra: DecisionExtra | undefined;
  for (const row of rows) {
    if (row.part === "extra") {
      extra = row.extra as DecisionExtra;
      transactionTime = row.tx_now as Date;
      continue;
    }
    const lot = toLotRow(row);
    const key = balanceKeyOf(lot.customerId, lot.creditTypeId);
    const list = lots.get(key);
    if (list === undefined) lots.set(key, [lot]);
    else list.push(lot);
  }
  if (extra === undefined || transactionTime === undefined) throw new Error("assertion failed: the decision statement returns its extra row");
  const inputs: DecisionInputs = {
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
    killSwitch: extra.kill_switch === true,
    pools: new Map(
      extra.pools.map(([member, parentCustomerId, limits, usage]) => [
        member,
        {
          parentCustomerId,
          limits: new Map(limits.map(([creditTypeId, amount, period]) => [creditTypeId, { amount: BigInt(amount), period: period as PoolPeriod }])),
          usage: new Map(usage.map(([creditTypeId, startMs, used]) => [creditTypeId, { periodStartMs: Number(startMs), used: BigInt(used) }])),
        },
      ]),
    ),
  };
  return { inputs, extra };
}

/**
 * lockAndSelectDecisionInputs locks many balance rows FOR UPDATE in (customer, credit type)
 * order, and in the same statement reads what decisions on them need (see
 * selectDecisionInputs). Every transaction that changes balances takes their locks here,
 * in this one order, so two of them (on one replica or several) never deadlock. Keys
 * without a row are absent from locked; with skipLocked (background jobs), so are rows
 * another transaction holds. stale says that a locked balance changed after the
 * statement's snapshot: inputs may then be out of date, and the caller reads them again
 * with selectDecisionInputs, under the locks it now holds. thresholds lists the locked
 * balances that have an auto-recharge or balance-low threshold. Inside a transaction.
 */
export async function lockAndSelectDecisionInputs(
  tx: Tx,
  request: DecisionRequest,
  options: { skipLocked: boolean },
): Promise<{ locked: Map<string, BalanceRow>; inputs: DecisionInputs; stale: boolean; thresholds: Map<string, Thresholds> }> {
  const result = await tx.query({
    name: options.skipLocked ? "lock_and_select_decision_inputs_skip_locked" : "lock_and_select_decision_inputs",
    text: options.skipLocked ? decisionTexts["skip locked"] : decisionTexts.wait,
    values: decisionValues(request),
  });
  const { inputs, extra } = toDecisionInputs(result.rows);
  const locked = new Map<string, BalanceRow>();
  // Only balances with a threshold are listed: nearly always none.
  const thresholds = new Map<string, Thresholds>();
  let stale = false;
  for (const [customerId, creditTypeId, granted, held, burned, expired, debt, overdraftHeld, overdraftLimit, version, seenVersion, recharge, low] of extra.balances ?? []) {
    if (recharge !== null || low !== null) {
      thresholds.set(balanceKeyOf(customerId, creditTypeId), { recharge: recharge === null ? null : BigInt(recharge), low: low === null ? null : BigInt(low) });
    }
    locked.set(balanceKeyOf(customerId, creditTypeId), {
      granted: BigInt(granted),
      held: BigInt(held),
      burned: BigInt(burned),
      expired: BigInt(expired),
      debt: BigInt(debt),
      overdraftHeld: BigInt(overdraftHeld),
      overdraftLimit: BigInt(overdraftLimit),
    });
    if (version !== seenVersion) stale = true;
  }
  return { locked, inputs, stale, thresholds };
}

/**
 * selectDecisionInputs reads in one statement everything decisions on locked balances need
 * that only the lock makes settled: the lots of each balance (free ones, in burn order, one
 * more than the decision limit so an excess shows), the lots reservations pin, the status
 * of reservations, carried remainders, and stored claims on request ids. Every writer of a
 * balance's lots, reservations or carries also writes the balance row, which is what makes
 * a version check of that row enough (lockAndSelectDecisionInputs). Expects the balance
 * rows locked by this transaction.
 */
export async function selectDecisionInputs(tx: Tx, request: DecisionRequest): Promise<DecisionInputs> {
  const result = await tx.query({ name: "select_decision_inputs", text: decisionTexts.none, values: decisionValues(request) });
  return toDecisionInputs(result.rows).inputs;
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
    text: `select ${lotViewColumns} from grants
           where customer_id = $1 and ($2 = '' or credit_type_id = $2) and not exhausted
           order by credit_type_id, priority, expires_at, effective_at, seq limit $3`,
    values: [customerId, creditTypeId, limits.lotsPerDecisionMax],
  });
  return result.rows.map(toShownLotRow);
}

/** DueBalance is a balance the expiry job must visit, and the lots that became effective since it last did. */
export interface DueBalance {
  key: BalanceKey;
  activatedGrantIds: string[];
}

/**
 * selectDueBalances finds balances with lots whose free part is due to expire or that
 * became effective since the job last saw them (activation_due), oldest due first. No locks.
 */
export async function selectDueBalances(tx: Db, now: Date, limit: number): Promise<DueBalance[]> {
  const result = await tx.query({
    name: "select_due_balances",
    text: `select customer_id, credit_type_id, coalesce(array_agg(grant_id) filter (where activated), '{}') as activated from (
             (select customer_id, credit_type_id, expires_at as due_at, grant_id, false as activated from grants
               where not exhausted and expires_at is not null and expires_at <= $1 and remaining > held
               order by expires_at limit $2)
             union all
             (select customer_id, credit_type_id, effective_at, grant_id, true from grants
               where activation_due and effective_at <= $1
               order by effective_at limit $2)) due
           group by customer_id, credit_type_id
           order by min(due_at) limit $2`,
    values: [now, limit],
  });
  return result.rows.map((row) => ({ key: { customerId: row.customer_id, creditTypeId: row.credit_type_id }, activatedGrantIds: row.activated as string[] }));
}
