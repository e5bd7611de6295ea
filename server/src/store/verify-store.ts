// Verification of the stored projections (balances, grants, reservations) against the
// append-only ledger entries, in one set-based statement: the entries are read once,
// summed by kind per lot and reservation, and every projection column is compared with its rebuilt value.
// The formulas are the effect of each entry kind (ledger/balance-state.ts applyEntry,
// EntryKind in types.proto), so an entry counts by its kind and its lot, whatever caused it.
import type { Db } from "./database.js";

/** LedgerDifference is one stored value that differs from the value the entries give. */
export interface LedgerDifference {
  table: "balances" | "grants" | "reservations";
  row: string;
  column: string;
  stored: string;
  rebuilt: string;
}

/** VerifyCounts are what one verification compared. */
export interface VerifyCounts {
  balances: bigint;
  lots: bigint;
  reservations: bigint;
  entries: bigint;
  differences: bigint;
}

/**
 * verifySql rebuilds per lot (grant_id null: the balance's overdraft) the sums of every
 * entry kind, then per balance and per reservation, and lists each differing column.
 * $1: a customer id or '' for all; $2: the most differences listed.
 */
const verifySql = `
with per_group as materialized (
  select customer_id, credit_type_id, grant_id, reservation_id, count(*) as entries,
    coalesce(sum(amount) filter (where kind in ('grant', 'rollover_in')), 0) as granted_in,
    coalesce(sum(amount) filter (where kind in ('rollover_out', 'void')), 0) as granted_out,
    coalesce(sum(amount) filter (where kind = 'hold'), 0) as hold_in,
    coalesce(sum(amount) filter (where kind = 'release'), 0) as released,
    coalesce(sum(amount) filter (where kind in ('burn', 'clawback')), 0) - coalesce(sum(amount) filter (where kind = 'refund'), 0) as burned,
    coalesce(sum(amount) filter (where kind = 'expire'), 0) - coalesce(sum(amount) filter (where kind = 'unexpire'), 0) as expired,
    coalesce(sum(amount) filter (where kind = 'settle'), 0) as settled
  from ledger_entries where ($1 = '' or customer_id = $1)
  group by customer_id, credit_type_id, grant_id, reservation_id
),
per_lot as materialized (
  select customer_id, credit_type_id, grant_id, sum(entries) as entries, sum(granted_in) as granted_in, sum(granted_out) as granted_out,
    sum(hold_in - released) as held, sum(burned) as burned, sum(expired) as expired, sum(settled) as settled
  from per_group group by customer_id, credit_type_id, grant_id
),
rebuilt_balances as (
  select customer_id, credit_type_id,
    sum(granted_in - granted_out) as granted, sum(held) as held, sum(burned) as burned, sum(expired) as expired,
    coalesce(sum(burned) filter (where grant_id is null), 0) - sum(settled) as debt,
    coalesce(sum(held) filter (where grant_id is null), 0) as overdraft_held
  from per_lot group by customer_id, credit_type_id
),
balance_pairs as (
  select coalesce(b.customer_id, r.customer_id) as customer_id, coalesce(b.credit_type_id, r.credit_type_id) as credit_type_id,
    b.customer_id is not null as stored, r.customer_id is not null as rebuilt,
    array[b.granted, b.held, b.burned, b.expired, b.debt, b.overdraft_held] as stored_values,
    array[coalesce(r.granted, 0), coalesce(r.held, 0), coalesce(r.burned, 0), coalesce(r.expired, 0), coalesce(r.debt, 0), coalesce(r.overdraft_held, 0)] as rebuilt_values
  from (select * from balances where $1 = '' or customer_id = $1) b
  full join rebuilt_balances r using (customer_id, credit_type_id)
),
lot_pairs as (
  select coalesce(g.customer_id, l.customer_id) as customer_id, coalesce(g.grant_id, l.grant_id) as grant_id,
    g.grant_id is not null as stored,
    array[g.amount, g.remaining, g.held, g.expired] as stored_values,
    array[coalesce(l.granted_in, 0), coalesce(l.granted_in - l.granted_out - l.burned - l.expired - l.settled, 0), coalesce(l.held, 0), coalesce(l.expired, 0)]
      as rebuilt_values
  from (select * from grants where $1 = '' or customer_id = $1) g
  full join (select * from per_lot where grant_id is not null) l using (customer_id, grant_id)
),
reservation_entries as (
  select customer_id, reservation_id, sum(hold_in) as held_in, sum(released) as released
  from per_group where reservation_id is not null group by customer_id, reservation_id
),
reservation_lot_holds as (
  select customer_id, reservation_id, string_agg(coalesce(grant_id::text, 'overdraft') || '=' || hold_in, ',' order by coalesce(grant_id::text, 'overdraft')) as holds
  from per_group where reservation_id is not null and hold_in > 0
  group by customer_id, reservation_id
),
stored_lot_holds as (
  select r.customer_id, r.reservation_id,
    (select string_agg(lot || '=' || amount, ',' order by lot)
     from (select coalesce(h->>'grantId', 'overdraft') as lot, sum((h->>'amount')::bigint) as amount
           from jsonb_array_elements(r.holds) h group by 1 having sum((h->>'amount')::bigint) > 0) s) as holds
  from reservations r where r.mode = 'enforce' and ($1 = '' or r.customer_id = $1)
),
reservation_pairs as (
  select r.customer_id, r.reservation_id,
    array[case when r.mode = 'enforce' then r.amount else 0 end,
          case when r.mode = 'enforce' and r.status = 'held' then r.amount else 0 end]::bigint[] as stored_values,
    array[coalesce(e.held_in, 0), coalesce(e.held_in - e.released, 0)]::bigint[] as rebuilt_values,
    coalesce(s.holds, '') as stored_holds, coalesce(h.holds, '') as rebuilt_holds, r.mode = 'enforce' as holds_lots
  from (select * from reservations where $1 = '' or customer_id = $1) r
  left join reservation_entries e using (customer_id, reservation_id)
  left join stored_lot_holds s using (customer_id, reservation_id)
  left join reservation_lot_holds h using (customer_id, reservation_id)
),
differences as (
  select 'balances' as tbl, p.customer_id || '/' || p.credit_type_id as row_name, c.name as col, c.stored::text as stored, c.rebuilt::text as rebuilt
  from balance_pairs p
  cross join lateral unnest(array['granted', 'held', 'burned', 'expired', 'debt', 'overdraft_held'], p.stored_values, p.rebuilt_values) as c(name, stored, rebuilt)
  where p.stored and c.stored is distinct from c.rebuilt
  union all
  select 'balances', customer_id || '/' || credit_type_id, 'row', 'missing', 'present' from balance_pairs where not stored
  union all
  select 'grants', p.customer_id || '/' || p.grant_id, c.name, c.stored::text, c.rebuilt::text
  from lot_pairs p
  cross join lateral unnest(array['amount', 'remaining', 'held', 'expired'], p.stored_values, p.rebuilt_values) as c(name, stored, rebuilt)
  where p.stored and c.stored is distinct from c.rebuilt
  union all
  select 'grants', customer_id || '/' || grant_id, 'row', 'missing', 'present' from lot_pairs where not stored
  union all
  select 'reservations', p.customer_id || '/' || p.reservation_id, c.name, c.stored::text, c.rebuilt::text
  from reservation_pairs p
  cross join lateral unnest(array['amount held', 'held'], p.stored_values, p.rebuilt_values) as c(name, stored, rebuilt)
  where c.stored is distinct from c.rebuilt
  union all
  select 'reservations', customer_id || '/' || reservation_id, 'holds', stored_holds, rebuilt_holds
  from reservation_pairs where holds_lots and stored_holds <> rebuilt_holds
)
select
  (select count(*) from balance_pairs where stored) as balances,
  (select count(*) from lot_pairs where stored) as lots,
  (select count(*) from reservation_pairs) as reservations,
  (select coalesce(sum(entries), 0) from per_lot) as entries,
  (select count(*) from differences) as differences,
  (select coalesce(json_agg(d), '[]') from (select tbl, row_name, col, stored, rebuilt from differences order by tbl, row_name, col limit $2) d) as listed`;

/**
 * selectLedgerDifferences compares every projection (or one customer's) with the entries.
 * One statement; run it in one snapshot (REPEATABLE READ) so that entries and projections
 * are read as of the same moment. No locks: writers carry on.
 */
export async function selectLedgerDifferences(
  tx: Db,
  filter: { customerId: string; listedMax: number; timeoutMs: number },
): Promise<{ counts: VerifyCounts; differences: LedgerDifference[] }> {
  // A whole ledger takes longer than a request's statement: the caller raised the
  // statement timeout for its transaction (setStatementLimits in database.ts); the driver waits as long.
  const query = { name: "select_ledger_differences", text: verifySql, values: [filter.customerId, filter.listedMax], query_timeout: filter.timeoutMs + 1_000 };
  const result = await tx.query(query);
  const row = result.rows[0] as Record<string, string> & { listed: { tbl: LedgerDifference["table"]; row_name: string; col: string; stored: string | null; rebuilt: string | null }[] };
  const differences = row.listed.map((d) => ({ table: d.tbl, row: d.row_name, column: d.col, stored: d.stored ?? "null", rebuilt: d.rebuilt ?? "null" }));
  return {
    counts: {
      balances: BigInt(row.balances),
      lots: BigInt(row.lots),
      reservations: BigInt(row.reservations),
      entries: BigInt(row.entries),
      differences: BigInt(row.differences),
    },
    differences,
  };
}
