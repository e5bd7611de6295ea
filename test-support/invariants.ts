// The ledger's invariants, checked from the database alone. Each query returns the rows
// that break one invariant; a healthy ledger returns none. That every stored balance, lot
// and reservation equals what its entries give is the server's own verification
// (AdminService.VerifyLedger, `npm run verify`), run here with the other checks.
import type pg from "pg";
import { verifyLedgerIn } from "../server/src/service/verify-ledger.js";

const checks: Record<string, string> = {
  "an unexpire takes back part of its lot's expiry for a usage event that burned it from that lot, dated at the expiry": `
    select u.entry_id from ledger_entries u
    join grants g on g.customer_id = u.customer_id and g.grant_id = u.grant_id
    where u.kind = 'unexpire' and u.reason_code <> 'rollover' and (u.usage_id is null or u.effective_at is distinct from g.expires_at or u.amount > (
      select coalesce(sum(b.amount), 0) from ledger_entries b
      where b.customer_id = u.customer_id and b.kind = 'burn' and b.usage_id = u.usage_id and b.grant_id = u.grant_id))`,
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
  // A void of a whole lot voids its free part, and upkeep voids (never expires) whatever
  // comes back to it in the change that gives it back: between changes it has only what
  // reservations hold. A lot past its expiry is never voided whole, so none has expired.
  "a lot voided whole keeps no free credits, and never expires any": `
    select g.grant_id from grants g
    where g.voided_at is not null and (g.remaining > g.held or exists (
      select 1 from ledger_entries e where e.customer_id = g.customer_id and e.grant_id = g.grant_id and e.kind = 'expire'))`,
  "every entry and reservation belongs to a balance": `
    select customer_id, credit_type_id from (
      select customer_id, credit_type_id from ledger_entries
      union select customer_id, credit_type_id from reservations where mode in ('enforce', 'forced')
    ) owned where not exists (select 1 from balances b where b.customer_id = owned.customer_id and b.credit_type_id = owned.credit_type_id)`,
  // What each reservation holds, per lot, is checked with the balances and lots by the
  // server's own verification (verifyLedger, below); this is the rest of its life.
  "only a committed reservation has a committed amount": `
    select r.reservation_id from reservations r where r.status <> 'committed' and r.committed_amount <> 0`,
};

/** invariantViolations lists every broken invariant with a sample of offending rows. */
export async function invariantViolations(pool: pg.Pool): Promise<string[]> {
  const violations: string[] = [];
  for (const [name, sql] of Object.entries(checks)) {
    const result = await pool.query(`${sql} limit 5`);
    if (result.rows.length > 0) violations.push(`${name}: ${JSON.stringify(result.rows)}`);
  }
  const verification = await verifyLedgerIn(pool, { customerId: "" });
  if (verification.counts.differences > 0n) {
    violations.push(`every balance, lot and reservation equals its entries (VerifyLedger): ${JSON.stringify(verification.differences.slice(0, 5))}`);
  }
  return violations;
}
