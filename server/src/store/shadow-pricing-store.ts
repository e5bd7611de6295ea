// The shadow pricing report's one read: a period's rated usage events summed per customer
// and feature as the real pricing rated them, beside a candidate pricing version's rating
// of the same events. Computed from usage_events when asked (nothing is kept at ingestion);
// the BRIN index on event_at (migration 9) keeps the scan to the period's pages. Sums are
// PostgreSQL numeric, since bigint times bigint overflows, and leave as decimal text.
import type { Db } from "./database.js";

/** ShadowPricingFilter says which events and rows a report covers. */
export interface ShadowPricingFilter {
  candidatePricingVersionId: string;
  /** event_at in [startAt, endAt). */
  startAt: Date;
  endAt: Date;
  /** empty: every customer. */
  customerIds: string[];
  /** empty: every feature. */
  featureKeys: string[];
  /** null: customers pinned to any version or none. */
  currentPricingVersionId: string | null;
}

/** ShadowPricingFigures are the sums a row and a total share, as decimal text: they may exceed int64. */
export interface ShadowPricingFigures {
  events: string;
  burned: string;
  shadowed: string;
  notBilled: string;
  current: string;
  candidate: string;
}

/** ShadowPricingRowText is one customer and feature of a report, as read. */
export interface ShadowPricingRowText extends ShadowPricingFigures {
  customerId: string;
  featureKey: string;
  creditTypeId: string;
  quantity: string;
}

/** ShadowPricingTotalText is one credit type's sums over every row of a report, as read. */
export interface ShadowPricingTotalText extends ShadowPricingFigures {
  creditTypeId: string;
}

/** ShadowPricingPageText is a page of rows, the totals of all rows, and the largest quantity of any row. */
export interface ShadowPricingPageText {
  rows: ShadowPricingRowText[];
  totals: ShadowPricingTotalText[];
  /** "0" when no row matches. */
  quantityMax: string;
}

const figures = `'events', events::text, 'burned', burned::text, 'shadowed', shadowed::text, 'notBilled', not_billed::text,
  'current', (burned + shadowed + not_billed)::text, 'candidate', candidate::text`;

/**
 * selectShadowPricingPage reads up to `limit` rows after the (customer, feature) `after`
 * in byte order, and the totals per credit type of every row the filter matches, in one
 * statement. Per customer, feature and recorded rate: burned and shadowed are the events'
 * recorded credits; not billed is floor(sum(quantity) * credits / per_units) of the off
 * events; the candidate keeps an override's rate, floor per override rate, and rates every
 * other event at the candidate's rate for the feature (else its base burn_rate per unit),
 * floor per customer and feature. div() is numeric's exact integer division (these are
 * never negative); numeric "/" rounds to a scale and could round a floor up. No locks.
 */
export async function selectShadowPricingPage(
  db: Db,
  filter: ShadowPricingFilter,
  page: { after: { customerId: string; featureKey: string } | null; limit: number },
): Promise<ShadowPricingPageText> {
  const result = await db.query({
    name: "select_shadow_pricing_page",
    text: `with by_rate as (
             select e.customer_id, e.feature_key, e.rate_credits, e.rate_per_units,
               count(*) as events, sum(e.quantity) as quantity,
               coalesce(sum(e.credits) filter (where e.status = 'burned'), 0) as burned,
               coalesce(sum(e.credits) filter (where e.status = 'shadowed'), 0) as shadowed,
               coalesce(sum(e.quantity) filter (where e.status = 'not_billed'), 0) as not_billed_quantity,
               coalesce(sum(e.quantity) filter (where e.rate_override), 0) as overridden_quantity
             from usage_events e
             where e.event_at >= $1 and e.event_at < $2 and e.status <> 'unrated'
               and (cardinality($3::text[]) = 0 or e.customer_id = any($3::text[]))
               and (cardinality($4::text[]) = 0 or e.feature_key = any($4::text[]))
               and ($5::text is null or exists (
                 select 1 from customers c where c.customer_id = e.customer_id and c.pricing_version_id = $5))
             group by e.customer_id, e.feature_key, e.rate_credits, e.rate_per_units),
           by_feature as (
             select customer_id, feature_key, sum(events) as events, sum(quantity) as quantity,
               sum(burned) as burned, sum(shadowed) as shadowed,
               sum(div(not_billed_quantity * rate_credits, rate_per_units)) as not_billed,
               sum(div(overridden_quantity * rate_credits, rate_per_units)) as candidate_kept,
               sum(quantity - overridden_quantity) as candidate_quantity
             from by_rate group by customer_id, feature_key),
           report as materialized (
             select b.customer_id, b.feature_key, f.credit_type_id, b.events, b.quantity, b.burned, b.shadowed, b.not_billed,
               b.candidate_kept + div(b.candidate_quantity * coalesce(r.credits, f.burn_rate), coalesce(r.per_units, 1)) as candidate
             from by_feature b
             join features f on f.feature_key = b.feature_key
             left join pricing_rates r on r.pricing_version_id = $6 and r.feature_key = b.feature_key),
           page as (
             select * from report
             where $7::text is null or customer_id collate "C" > $7 or (customer_id = $7 and feature_key collate "C" > $8)
             order by customer_id collate "C", feature_key collate "C" limit $9),
           totals as (
             select credit_type_id, sum(events) as events, sum(burned) as burned, sum(shadowed) as shadowed,
               sum(not_billed) as not_billed, sum(candidate) as candidate
             from report group by credit_type_id)
           select
             (select coalesce(json_agg(json_build_object('customerId', customer_id, 'featureKey', feature_key, 'creditTypeId', credit_type_id,
                'quantity', quantity::text, ${figures}) order by customer_id collate "C", feature_key collate "C"), '[]') from page) as rows,
             (select coalesce(json_agg(json_build_object('creditTypeId', credit_type_id, ${figures}) order by credit_type_id collate "C"), '[]')
              from totals) as totals,
             (select coalesce(max(quantity), 0)::text from report) as quantity_max`,
    values: [
      filter.startAt,
      filter.endAt,
      filter.customerIds,
      filter.featureKeys,
      filter.currentPricingVersionId,
      filter.candidatePricingVersionId,
      page.after?.customerId ?? null,
      page.after?.featureKey ?? null,
      page.limit,
    ],
  });
  const row = result.rows[0];
  return { rows: row.rows as ShadowPricingRowText[], totals: row.totals as ShadowPricingTotalText[], quantityMax: row.quantity_max as string };
}
