// What a customer burned, per bucket of time, credit type and feature: one set-based
// statement over the customer's ledger entries, for GetUsageSummary and the burn rate of
// GetBalanceForecast.
import type { Db } from "./database.js";

/** BurnBucketRow is what one feature burned in one bucket, of one credit type, net of refunds. */
export interface BurnBucketRow {
  startAt: Date;
  creditTypeId: string;
  /** "" for burns that named no feature (a Burn of plain credits, a Reserve of plain credits). */
  featureKey: string;
  credits: bigint;
  /** distinct burns: usage events, reservations committed, Burn calls. */
  count: bigint;
  /** the pool member whose burns these are ("" for the customer's own, and when not asked by member). */
  memberCustomerId: string;
}

/** BurnBucketFilter names a customer, optionally one credit type, and buckets of bucketDays from startAt (the first bucket's start) to endAt (exclusive). */
export interface BurnBucketFilter {
  customerId: string;
  /** "" for every credit type. */
  creditTypeId: string;
  startAt: Date;
  endAt: Date;
  bucketDays: number;
  /** one bucket per pool member too. */
  byMember?: boolean;
}

/**
 * selectBurnBuckets sums a customer's burn entries per bucket (by effective time, the time
 * of the usage or call that burned), credit type and feature, less the refunds that
 * corrections linked to usage events, which count in the bucket of the event's burn
 * whenever they were made. A burn's feature is its usage event's, or its reservation's,
 * or, for a Burn call, its reason code (the feature key, or "burn" for plain credits,
 * shown as no feature). Reads the customer's entries through the primary key's
 * customer_id prefix (and a refunded event's burns through ledger_entries_usage); no locks.
 */
export async function selectBurnBuckets(db: Db, filter: BurnBucketFilter): Promise<BurnBucketRow[]> {
  const result = await db.query({
    name: "select_burn_buckets",
    text: `with entries as (
             select e.credit_type_id, e.kind, e.amount, e.effective_at, e.usage_id, e.reservation_id, e.actor, e.request_id, e.reason_code,
               case when $6 then coalesce(e.member_customer_id, '') else '' end as member_customer_id
             from ledger_entries e
             where e.customer_id = $1 and ($2 = '' or e.credit_type_id = $2)
               and ((e.kind = 'burn' and e.effective_at >= $3 and e.effective_at < $4)
                 or (e.kind = 'refund' and e.usage_id is not null and e.effective_at >= $3))
           ), attributed as (
             select e.credit_type_id, e.member_customer_id,
               case when e.kind = 'burn' then e.amount else -e.amount end as credits,
               case when e.kind = 'burn' then e.effective_at
                 else (select min(b.effective_at) from ledger_entries b where b.customer_id = $1 and b.usage_id = e.usage_id and b.kind = 'burn') end as burned_at,
               coalesce(u.feature_key, r.feature_key,
                 case when e.usage_id is null and e.reservation_id is null and e.reason_code <> 'burn' then e.reason_code end, '') as feature_key,
               case when e.kind = 'refund' then null
                 when e.usage_id is not null then 'u' || e.usage_id
                 when e.reservation_id is not null then 'r' || e.reservation_id
                 else 'b' || e.actor || ':' || coalesce(e.request_id, '') end as burn_key
             from entries e
             left join usage_events u on u.usage_id = e.usage_id
             left join reservations r on r.customer_id = $1 and r.reservation_id = e.reservation_id
           )
           select date_bin(make_interval(days => $5), burned_at, $3) as start_at, credit_type_id, feature_key, member_customer_id,
             sum(credits)::text as credits, count(distinct burn_key)::text as count
           from attributed
           where burned_at >= $3 and burned_at < $4
           group by 1, 2, 3, 4
           order by start_at, credit_type_id collate "C", feature_key collate "C", member_customer_id collate "C"`,
    values: [filter.customerId, filter.creditTypeId, filter.startAt, filter.endAt, filter.bucketDays, filter.byMember === true],
  });
  return result.rows.map((row) => ({
    startAt: row.start_at as Date,
    creditTypeId: row.credit_type_id as string,
    featureKey: row.feature_key as string,
    credits: BigInt(row.credits as string),
    count: BigInt(row.count as string),
    memberCustomerId: row.member_customer_id as string,
  }));
}
