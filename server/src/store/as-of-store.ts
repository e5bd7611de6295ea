// A balance as of a past time, rebuilt from the ledger entries alone (not from the stored
// projections): what an entry did counts from its effective time, and only entries
// recorded by the record time count at all ("as we knew it then").
import { limits } from "../limits.js";
import type { BalanceRow, LotRow } from "./balance-store.js";
import type { Db } from "./database.js";

/** AsOfBalance is one balance rebuilt from its entries, with every lot granted by then. */
export interface AsOfBalance {
  creditTypeId: string;
  row: BalanceRow;
  lots: LotRow[];
  /** what was settled from each lot by then (settle entries), by grant id. */
  settled: Map<string, bigint>;
}

/**
 * asOfSql sums a customer's entries by kind per lot (grant_id null: the overdraft), counting
 * an entry recorded by $4 when it is effective by $3 (a record time counts to the end of its
 * millisecond: entries show record times to the millisecond, PostgreSQL keeps microseconds), and a lot's grant entry (grant,
 * rollover_in) also when the lot was granted by $3 but becomes effective later: that lot is
 * pending then, as in GetBalance now. Lot attributes that never change (source, priority,
 * times, seq) come from grants, and so does a whole lot's void time, when it was recorded
 * by $4 (it is both the void's effective and record time; the core counts the lot voided
 * only from then). The overdraft limit is that of the earlier of $3 and $4: a limit takes
 * effect when it is recorded, so it is the old limit of the first change recorded after
 * that time (its set_overdraft_limit audit record, written in the change's transaction,
 * with the same now() clock as entries), or today's when none came since.
 */
const asOfSql = `
with counted as (
  select credit_type_id, grant_id, kind, amount from ledger_entries
  where customer_id = $1 and ($2 = '' or credit_type_id = $2) and recorded_at < $4::timestamptz + interval '1 millisecond'
    and (effective_at <= $3 or (kind in ('grant', 'rollover_in') and recorded_at < $3::timestamptz + interval '1 millisecond'))
),
per_lot as (
  select credit_type_id, grant_id,
    coalesce(sum(amount) filter (where kind in ('grant', 'rollover_in')), 0) as granted_in,
    coalesce(sum(amount) filter (where kind in ('rollover_out', 'void')), 0) as granted_out,
    coalesce(sum(amount) filter (where kind = 'hold'), 0) - coalesce(sum(amount) filter (where kind = 'release'), 0) as held,
    coalesce(sum(amount) filter (where kind in ('burn', 'clawback')), 0) - coalesce(sum(amount) filter (where kind = 'refund'), 0) as burned,
    coalesce(sum(amount) filter (where kind = 'expire'), 0) - coalesce(sum(amount) filter (where kind = 'unexpire'), 0) as expired,
    coalesce(sum(amount) filter (where kind = 'settle'), 0) as settled
  from counted group by credit_type_id, grant_id
),
limit_then as (
  select t.credit_type_id,
    (select (a.details->>'old')::bigint from audit_log a
     where a.action = 'set_overdraft_limit' and a.target = 'customer:' || $1 and a.details->>'credit_type_id' = t.credit_type_id
       and a.created_at >= least($3::timestamptz, $4::timestamptz) + interval '1 millisecond'
     order by a.audit_id limit 1) as old_limit
  from (select distinct credit_type_id from per_lot) t
)
select l.credit_type_id, l.grant_id, l.granted_in, l.granted_out, l.held, l.burned, l.expired, l.settled,
  coalesce(o.old_limit, b.overdraft_limit) as overdraft_limit, g.source, g.priority, g.effective_at, g.expires_at, g.seq, g.reason_code, g.created_at, g.cost_basis_micros,
  case when g.voided_at < $4::timestamptz + interval '1 millisecond' then g.voided_at end as voided_at
from per_lot l
join balances b on b.customer_id = $1 and b.credit_type_id = l.credit_type_id
join limit_then o on o.credit_type_id = l.credit_type_id
left join grants g on g.customer_id = $1 and g.grant_id = l.grant_id
order by l.credit_type_id, g.seq nulls first
limit $5`;

type Sums = Record<"granted_in" | "granted_out" | "held" | "burned" | "expired" | "settled", string>;

function lotOf(customerId: string, row: Sums & Record<string, unknown>): LotRow {
  const amount = BigInt(row.granted_in);
  const used = BigInt(row.granted_out) + BigInt(row.burned) + BigInt(row.expired) + BigInt(row.settled);
  return {
    customerId,
    creditTypeId: row.credit_type_id as string,
    grantId: row.grant_id as string,
    source: row.source as string,
    amount,
    remaining: amount - used,
    held: BigInt(row.held),
    expired: BigInt(row.expired),
    priority: row.priority as number,
    effectiveAtMs: (row.effective_at as Date).getTime(),
    expiresAtMs: row.expires_at === null ? null : (row.expires_at as Date).getTime(),
    seq: BigInt(row.seq as string),
    reasonCode: row.reason_code as string,
    createdAt: row.created_at as Date,
    voidedAtMs: row.voided_at === null ? null : (row.voided_at as Date).getTime(),
    costBasisMicros: row.cost_basis_micros === null ? 0n : BigInt(row.cost_basis_micros as string),
  };
}

/**
 * selectBalancesAsOf rebuilds a customer's balances (one credit type, or all with '') as of
 * an effective time, from the entries recorded by a record time. One statement; no locks.
 * Balances with no entry counted then are left out. Returns null past limits.asOfLotsMax lots.
 */
export async function selectBalancesAsOf(tx: Db, query: { customerId: string; creditTypeId: string; asOf: Date; asRecorded: Date }): Promise<AsOfBalance[] | null> {
  const result = await tx.query({
    name: "select_balances_as_of",
    text: asOfSql,
    values: [query.customerId, query.creditTypeId, query.asOf, query.asRecorded, limits.asOfLotsMax + 1],
  });
  if (result.rows.length > limits.asOfLotsMax) return null;
  const balances = new Map<string, AsOfBalance>();
  for (const row of result.rows as (Sums & Record<string, unknown>)[]) {
    const creditTypeId = row.credit_type_id as string;
    let balance = balances.get(creditTypeId);
    if (!balance) {
      const zero = { granted: 0n, held: 0n, burned: 0n, expired: 0n, debt: 0n, overdraftHeld: 0n, overdraftLimit: BigInt(row.overdraft_limit as string) };
      balance = { creditTypeId, row: zero, lots: [], settled: new Map() };
      balances.set(creditTypeId, balance);
    }
    const sums = balance.row;
    sums.granted += BigInt(row.granted_in) - BigInt(row.granted_out);
    sums.held += BigInt(row.held);
    sums.burned += BigInt(row.burned);
    sums.expired += BigInt(row.expired);
    sums.debt -= BigInt(row.settled);
    if (row.grant_id === null) {
      sums.debt += BigInt(row.burned);
      sums.overdraftHeld += BigInt(row.held);
    } else if (BigInt(row.granted_in) > 0n) {
      balance.lots.push(lotOf(query.customerId, row));
      if (BigInt(row.settled) > 0n) balance.settled.set(row.grant_id as string, BigInt(row.settled));
    }
  }
  return [...balances.values()];
}
