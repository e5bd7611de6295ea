// The ledger's invariants, checked from the database alone. Each query returns the rows
// that break one invariant; a healthy ledger returns none.
import type pg from "pg";

const checks: Record<string, string> = {
  "an unexpire takes back part of its lot's expiry for a usage event that burned it from that lot, dated at the expiry": `
    select u.entry_id from ledger_entries u
    join grants g on g.customer_id = u.customer_id and g.grant_id = u.grant_id
    where u.kind = 'unexpire' and u.reason_code <> 'rollover' and (u.usage_id is null or u.effective_at is distinct from g.expires_at or u.amount > (
      select coalesce(sum(b.amount), 0) from ledger_entries b
      where b.customer_id = u.customer_id and b.kind = 'burn' and b.usage_id = u.usage_id and b.grant_id = u.grant_id))`,
  "a stored balance equals the sum of its entries": `
    select b.customer_id, b.credit_type_id from balances b
    left join (
      select customer_id, credit_type_id,
        coalesce(sum(amount) filter (where kind in ('grant', 'rollover_in')), 0) - coalesce(sum(amount) filter (where kind in ('rollover_out', 'void')), 0) as granted,
        coalesce(sum(amount) filter (where kind = 'hold'), 0) - coalesce(sum(amount) filter (where kind = 'release'), 0) as held,
        coalesce(sum(amount) filter (where kind in ('burn', 'clawback')), 0) - coalesce(sum(amount) filter (where kind = 'refund'), 0) as burned,
        coalesce(sum(amount) filter (where kind = 'expire'), 0) - coalesce(sum(amount) filter (where kind = 'unexpire'), 0) as expired,
        coalesce(sum(amount) filter (where kind in ('burn', 'clawback') and grant_id is null), 0) - coalesce(sum(amount) filter (where kind = 'settle'), 0)
          - coalesce(sum(amount) filter (where kind = 'refund' and grant_id is null), 0) as debt,
        coalesce(sum(amount) filter (where kind = 'hold' and grant_id is null), 0)
          - coalesce(sum(amount) filter (where kind = 'release' and grant_id is null), 0) as overdraft_held
      from ledger_entries group by customer_id, credit_type_id
    ) e using (customer_id, credit_type_id)
    where (b.granted, b.held, b.burned, b.expired, b.debt, b.overdraft_held)
      is distinct from (coalesce(e.granted, 0), coalesce(e.held, 0), coalesce(e.burned, 0), coalesce(e.expired, 0), coalesce(e.debt, 0), coalesce(e.overdraft_held, 0))`,
  "a lot's remaining and held equal its amount less its entries": `
    select g.grant_id from grants g
    left join (
      select customer_id, grant_id,
        coalesce(sum(amount) filter (where kind in ('burn', 'expire', 'settle', 'clawback', 'rollover_out', 'void')), 0)
          - coalesce(sum(amount) filter (where kind in ('refund', 'unexpire')), 0) as used,
        coalesce(sum(amount) filter (where kind = 'expire'), 0) - coalesce(sum(amount) filter (where kind = 'unexpire'), 0) as expired,
        coalesce(sum(amount) filter (where kind = 'hold'), 0) - coalesce(sum(amount) filter (where kind = 'release'), 0) as held,
        coalesce(sum(amount) filter (where kind in ('grant', 'rollover_in')), 0) as granted
      from ledger_entries where grant_id is not null group by customer_id, grant_id
    ) e using (customer_id, grant_id)
    where g.remaining <> g.amount - coalesce(e.used, 0) or g.held <> coalesce(e.held, 0) or coalesce(e.granted, 0) <> g.amount
      or g.expired <> coalesce(e.expired, 0)`,
  // available = free credits of live lots - (debt + overdraft_held), so this bound keeps
  // available >= -overdraft_limit whatever expires later; the stored totals alone would
  // also count pending and lapsed lots.
  // Usage events may take a balance past its limit (asynchronous enforcement records
  // what happened), and so may burns under the kill switch; such balances are flagged, on
  // the event or on the entry, and exempt here.
  "the overdraft in use never exceeds the limit, unless usage or an entry was flagged over it": `
    select b.customer_id, b.credit_type_id from balances b
    where (b.debt + b.overdraft_held > b.overdraft_limit or b.granted - b.burned - b.held - b.expired < -b.overdraft_limit)
      and not exists (select 1 from usage_events u where u.customer_id = b.customer_id and u.credit_type_id = b.credit_type_id and u.over_limit)
      and not exists (select 1 from ledger_entries e where e.customer_id = b.customer_id and e.credit_type_id = b.credit_type_id and e.over_limit)`,
  // The database no longer checks this per row (migration 5): the write path writes a
  // balance's entries and reservations only under its row lock.
  // Reservations made in observe or off mode hold nothing, and need no balance.
  // A rollover moves credits out of one lot into a new one, once per period, both entries
  // in one transaction: what left equals what arrived, and the link is recorded.
  "a rollover's out and in entries carry the amount its record says": `
    select r.schedule_id, r.period_index from schedule_rollovers r
    where r.amount <> coalesce((select sum(amount) from ledger_entries e where e.customer_id = r.customer_id and e.grant_id = r.from_grant_id and e.kind = 'rollover_out'), 0)
       or r.amount <> coalesce((select sum(amount) from ledger_entries e where e.customer_id = r.customer_id and e.grant_id = r.to_grant_id and e.kind = 'rollover_in'), 0)`,
  // The refunds of one charge add up, one after another, to at most what it burned.
  "a charge's refunds never give back more than it burned, and each counts the ones before": `
    select r.customer_id, r.charge_kind, r.charge_ref from charge_refunds r
    group by r.customer_id, r.charge_kind, r.charge_ref
    having sum(r.amount) <> max(r.refunded_total) or max(r.refunded_total) > min(r.charged) or sum(r.amount) > (
      select coalesce(sum(b.amount), 0) from ledger_entries b
      where b.customer_id = r.customer_id and b.kind = 'burn' and case r.charge_kind
        when 'burn' then b.request_id = r.charge_ref and b.reservation_id is null and b.usage_id is null
        when 'commit' then b.reservation_id::text = r.charge_ref
        else b.usage_id::text = r.charge_ref end)`,
  "every entry and reservation belongs to a balance": `
    select customer_id, credit_type_id from (
      select customer_id, credit_type_id from ledger_entries
      union select customer_id, credit_type_id from reservations where mode in ('enforce', 'forced')
    ) owned where not exists (select 1 from balances b where b.customer_id = owned.customer_id and b.credit_type_id = owned.credit_type_id)`,
  // Only an enforced reservation holds; one made in observe or off mode, or forced by the
  // kill switch, holds (and releases) nothing.
  "a reservation holds its amount and is released exactly once when resolved": `
    select r.reservation_id from reservations r
    left join (
      select reservation_id,
        coalesce(sum(amount) filter (where kind = 'hold'), 0) as held,
        coalesce(sum(amount) filter (where kind = 'release'), 0) as released
      from ledger_entries where reservation_id is not null group by reservation_id
    ) e using (reservation_id)
    where coalesce(e.held, 0) <> case when r.mode = 'enforce' then r.amount else 0 end
       or coalesce(e.released, 0) <> case when r.status = 'held' or r.mode <> 'enforce' then 0 else r.amount end
       or (r.status <> 'committed' and r.committed_amount <> 0)`,
};

/** invariantViolations lists every broken invariant with a sample of offending rows. */
export async function invariantViolations(pool: pg.Pool): Promise<string[]> {
  const violations: string[] = [];
  for (const [name, sql] of Object.entries(checks)) {
    const result = await pool.query(`${sql} limit 5`);
    if (result.rows.length > 0) violations.push(`${name}: ${JSON.stringify(result.rows)}`);
  }
  return violations;
}
