// Which transactions wrote the ledger, read from PostgreSQL itself: rows one transaction
// inserted share its xmin. Tests of faults use it to show that the traffic they broke was
// group-committed (transactions holding several customers' entries), not one call at a time.
import type pg from "pg";

/** sharedTransactions counts transactions whose ledger entries belong to more than one customer. */
export async function sharedTransactions(pool: pg.Pool): Promise<number> {
  const result = await pool.query(
    "select count(*)::int as n from (select xmin::text from ledger_entries group by 1 having count(distinct customer_id) > 1) shared",
  );
  return result.rows[0].n as number;
}
