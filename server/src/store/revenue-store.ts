// The revenue roll-forward's one statement: every entry that changes what is left of a lot
// (or burns beyond every lot), classified into the report's lines by its kind and its lot,
// summed per credit type and period, in credits and in currency (credits times the lot's
// cost basis, as numeric, so no product or sum overflows or rounds).
import type { Db } from "./database.js";

/** RevenueLineName is a line of the roll-forward (finance.proto, RollForwardLines). */
export type RevenueLineName = "purchased" | "granted_free" | "recognized" | "burn_refunded" | "breakage" | "clawed_back" | "adjusted";

/** revenueLineNames lists the lines, in the report's order. */
export const revenueLineNames: readonly RevenueLineName[] = ["purchased", "granted_free", "recognized", "burn_refunded", "breakage", "clawed_back", "adjusted"];

/** RevenueAmounts are one period's lines in one unit; the reducing lines are positive when they reduce. */
export type RevenueAmounts = Record<RevenueLineName, bigint> & { opening: bigint; net: bigint };

/** RevenuePeriodRow is one credit type's period as the statement sums it. */
export interface RevenuePeriodRow {
  creditTypeId: string;
  periodStart: Date;
  periodEnd: Date;
  credits: RevenueAmounts;
  currencyMicros: RevenueAmounts;
  overdraftBurnedCredits: bigint;
  clawedBackAsDebtCredits: bigint;
  /** entries of a kind the statement does not know; always 0 unless a new kind was added without a line. */
  unclassified: bigint;
}

/**
 * classified is every entry with its report line. Its effect on what is left of lots
 * (direction) is + for grant,
 * rollover_in, refund and unexpire, - for burn, settle, expire, clawback, rollover_out
 * and void; hold and release move nothing of it (remaining includes the held part).
 */
const classified = `
  select e.credit_type_id, e.effective_at, e.amount::numeric as amount, coalesce(g.cost_basis_micros, 0)::numeric as cost,
    case when e.kind in ('grant', 'rollover_in', 'refund', 'unexpire') then 1 else -1 end as direction,
    case
      when e.kind = 'grant' and g.source = 'adjustment' and (g.reason_code = 'refund' or e.reason_code = 'refund') then 'burn_refunded'
      when e.kind = 'grant' and g.source = 'adjustment' then 'adjusted'
      when e.kind = 'grant' and (g.source in ('purchase', 'recharge') or g.cost_basis_micros > 0) then 'purchased'
      when e.kind = 'grant' then 'granted_free'
      when e.grant_id is null and e.kind in ('burn', 'refund') then 'overdraft_burned'
      when e.grant_id is null and e.kind = 'clawback' then 'clawed_back_as_debt'
      when e.grant_id is null then 'unclassified'
      when e.kind in ('burn', 'settle') then 'recognized'
      when e.kind = 'refund' then 'burn_refunded'
      when e.kind in ('expire', 'unexpire') then 'breakage'
      when e.kind = 'clawback' then 'clawed_back'
      when e.kind in ('rollover_in', 'rollover_out', 'void') then 'adjusted'
      else 'unclassified'
    end as line
  from ledger_entries e
  left join grants g on g.customer_id = e.customer_id and g.grant_id = e.grant_id
  where e.kind not in ('hold', 'release') and e.effective_at < $2
    and ($4 = '' or e.credit_type_id = $4) and ($5::timestamptz is null or e.recorded_at <= $5)`;

/** lotLines are the lines that change what is left of lots: the deferred balance. */
const lotLines = `(${revenueLineNames.map((line) => `'${line}'`).join(", ")})`;

/** sums are what each bucket sums: each line twice (credits, then currency) signed as its effect on deferred revenue, the net, the memo lines. */
const sums = [
  ...revenueLineNames.flatMap((line) => [
    [`${line}_credits`, `sum(direction * amount) filter (where line = '${line}')`],
    [`${line}_micros`, `sum(direction * amount * cost) filter (where line = '${line}')`],
  ]),
  ["net_credits", `sum(direction * amount) filter (where line in ${lotLines})`],
  ["net_micros", `sum(direction * amount * cost) filter (where line in ${lotLines})`],
  ["overdraft_burned_credits", "-sum(direction * amount) filter (where line = 'overdraft_burned')"],
  ["clawed_back_as_debt_credits", "-sum(direction * amount) filter (where line = 'clawed_back_as_debt')"],
  ["unclassified", "count(*) filter (where line = 'unclassified')"],
];

/**
 * rollForwardText buckets the entries by credit type and period (a hash join on the
 * period's start, whatever the number of periods; entries before the range make the
 * opening bucket), lists every period of every credit type, and opens each period with
 * the opening bucket plus the nets of the periods before it.
 */
const rollForwardText = `
with classified as (${classified}),
periods as (
  select (p at time zone 'UTC') as period_start, ((p + $3::interval) at time zone 'UTC') as period_end, row_number() over (order by p) as period_index
  from generate_series($1::timestamptz at time zone 'UTC', ($2::timestamptz at time zone 'UTC') - $3::interval, $3::interval) p
),
types as (select credit_type_id from credit_types where $4 = '' or credit_type_id = $4 order by credit_type_id limit $6),
buckets as (
  select credit_type_id,
    case when effective_at < $1 then null else date_trunc($7, effective_at at time zone 'UTC') at time zone 'UTC' end as period_start,
    ${sums.map(([name, sum]) => `${sum} as ${name}`).join(",\n    ")}
  from classified group by 1, 2
),
per_period as (
  select t.credit_type_id, p.period_index, p.period_start, p.period_end,
    ${sums.map(([name]) => `coalesce(b.${name}, 0) as ${name}`).join(",\n    ")}
  from types t cross join periods p
  left join buckets b on b.credit_type_id = t.credit_type_id and b.period_start = p.period_start
)
select pp.*,
  coalesce(o.net_credits, 0) + coalesce(sum(pp.net_credits) over earlier, 0) as opening_credits,
  coalesce(o.net_micros, 0) + coalesce(sum(pp.net_micros) over earlier, 0) as opening_micros,
  pp.unclassified + case when pp.period_index = 1 then coalesce(o.unclassified, 0) else 0 end as unclassified_total
from per_period pp left join buckets o on o.credit_type_id = pp.credit_type_id and o.period_start is null
window earlier as (partition by pp.credit_type_id order by pp.period_index rows between unbounded preceding and 1 preceding)
order by pp.credit_type_id, pp.period_index`;

/** RevenueQuery is what one roll-forward reads. */
export interface RevenueQuery {
  startAt: Date;
  endAt: Date;
  granularity: "day" | "month";
  /** "" for every credit type. */
  creditTypeId: string;
  /** only entries recorded at or before this time; null for every entry. */
  recordedBy: Date | null;
  /** the most credit types read; the caller refuses a report that reaches it. */
  creditTypesMax: number;
}

function amountsOf(row: Record<string, string>, unit: "credits" | "micros"): RevenueAmounts {
  // The reducing lines are reported positive: their entries reduce deferred revenue.
  const reducing = new Set(["recognized", "breakage", "clawed_back"]);
  const lines = Object.fromEntries(revenueLineNames.map((line) => [line, (reducing.has(line) ? -1n : 1n) * BigInt(row[`${line}_${unit}`])]));
  return { ...(lines as Record<RevenueLineName, bigint>), opening: BigInt(row[`opening_${unit}`]), net: BigInt(row[`net_${unit}`]) };
}

/**
 * selectRevenueRollForward sums the roll-forward of every period of every credit type (or
 * one) in one statement, so all of it reads one snapshot. No locks. Numbers come back as
 * exact numeric text; currency sums may exceed int64, which the caller checks.
 */
export async function selectRevenueRollForward(db: Db, query: RevenueQuery): Promise<RevenuePeriodRow[]> {
  const result = await db.query({
    name: "select_revenue_roll_forward",
    text: rollForwardText,
    values: [query.startAt, query.endAt, `1 ${query.granularity}`, query.creditTypeId, query.recordedBy, query.creditTypesMax, query.granularity],
  });
  return result.rows.map((row) => ({
    creditTypeId: row.credit_type_id,
    periodStart: row.period_start,
    periodEnd: row.period_end,
    credits: amountsOf(row, "credits"),
    currencyMicros: amountsOf(row, "micros"),
    overdraftBurnedCredits: BigInt(row.overdraft_burned_credits),
    clawedBackAsDebtCredits: BigInt(row.clawed_back_as_debt_credits),
    unclassified: BigInt(row.unclassified_total),
  }));
}
