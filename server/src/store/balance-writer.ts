// The one writer of balance changes. Whatever a group of decisions changed (balance totals,
// lots, new lots, ledger entries, reservations made and resolved, request-id claims, usage
// events and their rating, shadow entries, carried remainders, usage corrections, audit
// records, released usage event ids, usage events refused for a reused id) is written by
// one statement of data-modifying CTEs over arrays, however many items, balances and
// customers the group holds: the statement count per transaction is fixed, and so is the
// number of round trips. Expects every balance it changes locked by this transaction
// (lockBalances), and runs inside that transaction.
import type { Hold } from "../ledger/plan.js";
import type { AuditRecordWrite } from "./audit-store.js";
import type { BalanceKey, BalanceRow } from "./balance-store.js";
import type { CorrectionRow } from "./correction-store.js";
import type { EntryRow } from "./entry-store.js";
import type { Tx } from "./database.js";
import { type ClaimRow, claimRows, claimValues } from "./idempotency-store.js";
import type { UsageConflict, UsageRow } from "./usage-store.js";

/** BalanceTotalsWrite is a balance's stored totals after the group (its overdraft limit is not the writer's). */
export type BalanceTotalsWrite = { key: BalanceKey } & Omit<BalanceRow, "overdraftLimit">;

/** LotWrite is an existing lot's remaining, held and expired after the group. */
export interface LotWrite {
  customerId: string;
  grantId: string;
  remaining: bigint;
  held: bigint;
  expired: bigint;
}

/** NewLotWrite is a lot granted by the group, with its remaining and held after the group. */
export interface NewLotWrite {
  customerId: string;
  creditTypeId: string;
  grantId: string;
  source: string;
  amount: bigint;
  remaining: bigint;
  held: bigint;
  priority: number;
  effectiveAt: Date;
  expiresAt: Date | null;
  costBasisMicros: bigint;
  reasonCode: string;
  note: string;
  requestId: string;
  actor: string;
  /** it takes effect after the decision: the expiry job visits its balance when it does. */
  activationDue: boolean;
}

/**
 * EntryWrite is one ledger entry as written; the database numbers it and records its time.
 * Its usage event is usageId (stored already) or usageIndex (the position of a usage event
 * this group inserts), or neither.
 */
export type EntryWrite = Omit<EntryRow, "entryId" | "recordedAt"> & { usageIndex: number | null };

/** ReservationInsert is a reservation placed by the group, held. */
export interface ReservationInsert {
  mode: "enforce" | "observe" | "off" | "forced";
  customerId: string;
  creditTypeId: string;
  reservationId: string;
  featureKey: string | null;
  amount: bigint;
  holds: Hold[];
  expiresAt: Date;
  requestId: string;
  actor: string;
  /** the pool member that placed it on its pool owner's balance; null for the customer's own. */
  memberCustomerId?: string | null;
}

/** PoolUsageWrite is a pool member's counter on one credit type after the group (pool-limit.ts). */
export interface PoolUsageWrite {
  parentCustomerId: string;
  memberCustomerId: string;
  creditTypeId: string;
  periodStart: Date;
  used: bigint;
}

/** ReservationResolve moves a reservation that must still be held to its final status. */
export interface ReservationResolve {
  customerId: string;
  reservationId: string;
  status: "committed" | "released" | "expired";
  committedAmount: bigint;
}

/** ClaimWrite is the claim on a request id, with the response a replay returns. */
export type ClaimWrite = ClaimRow;

/** UsageRatingWrite rates a stored, still unrated usage event (a replay of a dead letter). */
export interface UsageRatingWrite {
  usageId: string;
  row: UsageRow;
}

/**
 * ShadowWrite records, outside the balances, what a feature in observe mode would have
 * burned (mode "observe") or what one in off mode used, not billed (mode "off"). Its cause
 * is a usage event (as in EntryWrite) or a request (a Burn, or a reservation's commit).
 */
export interface ShadowWrite {
  mode: "observe" | "off";
  reservationId: string | null;
  requestId: string | null;
  customerId: string;
  creditTypeId: string;
  featureKey: string;
  usageId: string | null;
  usageIndex: number | null;
  credits: bigint;
  effectiveAt: Date;
}

/** CarryWrite is a customer's carried remainder for a feature after the group. */
export interface CarryWrite {
  customerId: string;
  featureKey: string;
  perUnits: bigint;
  carry: bigint;
}

/** CorrectionWrite records the correction of a usage event (its refund entries are entries of the same set). */
export type CorrectionWrite = Omit<CorrectionRow, "createdAt">;

/** UsageConflictWrite is a usage event refused because its id was taken by another event, as received. */
export type UsageConflictWrite = UsageConflict;

/**
 * AuditWrite is an administrative action's record, written with the change it describes.
 * Its requestId is the one of the call whose op drafted it (that op's Caller.requestId), never
 * that of the call whose group runs it: a group carries the ops of many calls.
 */
export type AuditWrite = AuditRecordWrite;

/** WriteSet is everything a group of decisions writes, each part in the order it is to be written. */
export interface WriteSet {
  balances: BalanceTotalsWrite[];
  lots: LotWrite[];
  newLots: NewLotWrite[];
  entries: EntryWrite[];
  reservationInserts: ReservationInsert[];
  reservationResolves: ReservationResolve[];
  claims: ClaimWrite[];
  usageInserts: UsageRow[];
  usageRatings: UsageRatingWrite[];
  shadows: ShadowWrite[];
  carries: CarryWrite[];
  /** pool members' counters, written under the lock of their pool owner's balance. */
  poolUsage: PoolUsageWrite[];
  corrections: CorrectionWrite[];
  audits: AuditWrite[];
  /** usage event ids claimed before the locks whose events were rejected: claimable again. */
  releasedEventIds: { principal: string; eventId: string }[];
  usageConflicts: UsageConflictWrite[];
  /** lots the expiry job saw become effective: off its list (another replica's job may have taken them off first). */
  activatedLots: { customerId: string; grantId: string }[];
  /** balances an op took from available >= 0 to below 0: each a balance.negative webhook event (if an endpoint subscribes). */
  balancesNegative: { customerId: string; creditTypeId: string; available: bigint }[];
  /**
   * balances an op took from available >= a threshold to below it: recharge flags the
   * balance for the recharge job (recharge_due), low queues a balance.low webhook event.
   */
  balancesLow: BalanceLowWrite[];
}

/** BalanceLowWrite is a balance whose available fell below its recharge or balance-low threshold (or both). */
export interface BalanceLowWrite {
  customerId: string;
  creditTypeId: string;
  available: bigint;
  /** the recharge threshold crossed; null: not crossed. */
  recharge: bigint | null;
  /** the balance-low threshold crossed; null: not crossed. */
  low: bigint | null;
}

/** emptyWriteSet is a write set with nothing in it. */
export function emptyWriteSet(): WriteSet {
  return {
    balances: [], lots: [], newLots: [], entries: [], reservationInserts: [], reservationResolves: [], claims: [],
    usageInserts: [], usageRatings: [], shadows: [], carries: [], poolUsage: [], corrections: [], audits: [], releasedEventIds: [], usageConflicts: [], activatedLots: [],
    balancesNegative: [], balancesLow: [],
  };
}

/** WrittenSet is what the database assigned: entry ids and usage ids in write order, and the transaction's time. */
export interface WrittenSet {
  entryIds: bigint[];
  usageIds: string[];
  /** now() of the transaction: recorded_at of the entries, created_at of new lots. */
  recordedAt: Date;
}

/**
 * ClaimTakenError says that a request id this group meant to claim was claimed by another
 * transaction that committed first: the group must roll back, and its items run again
 * (the taken ones then replay, or are refused as REQUEST_ID_REUSED).
 */
export class ClaimTakenError extends Error {
  constructor(readonly claimsTaken: number) {
    super(`${claimsTaken} request id(s) were claimed by a concurrent transaction`);
  }
}

const s = (value: bigint | null) => (value === null ? null : value.toString());

const rfc3339 = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * webhookEvents queues the group's webhook events in the outbox (store/webhook-store.ts),
 * with their deliveries, in the group's statement and so in its transaction: an event
 * exists exactly when its change committed. grant.created per new lot, balance.negative
 * per balance an op took below zero, balance.low per balance an op took below its
 * balance-low threshold. Only for types an enabled endpoint subscribes to: a
 * deployment without webhooks writes nothing more.
 */
const webhookEvents = /* sql */ `
wg as (
  insert into webhook_events (type, customer_id, payload)
  select x.type, x.customer_id, x.payload from (
    select 'grant.created' as type, g.customer_id, jsonb_build_object('grantId', g.grant_id, 'creditTypeId', g.credit_type_id, 'amount', g.amount::text,
        'source', g.source, 'reasonCode', g.reason_code, 'effectiveTime', ${rfc3339("g.effective_at")},
        'expireTime', case when g.expires_at is null then null else ${rfc3339("g.expires_at")} end) as payload, 1 as part, g.seq as position
      from g
    union all
    select 'balance.negative', v.customer_id, jsonb_build_object('creditTypeId', v.credit_type_id, 'available', v.available::text), 2, v.position
      from unnest($135::text[], $136::text[], $137::bigint[]) with ordinality as v(customer_id, credit_type_id, available, position)
    union all
    select 'balance.low', v.customer_id, jsonb_build_object('creditTypeId', v.credit_type_id, 'available', v.available::text, 'threshold', v.low::text), 3, v.position
      from unnest($138::text[], $139::text[], $140::bigint[], $142::bigint[]) with ordinality as v(customer_id, credit_type_id, available, low, position)
      where v.low is not null) x
  where exists (select 1 from webhook_endpoints ep where ep.disabled_at is null and (cardinality(ep.event_types) = 0 or x.type = any(ep.event_types)))
  order by x.part, x.position
  returning event_id, type),
wgd as (
  insert into webhook_deliveries (event_id, endpoint_id)
  select wg.event_id, ep.endpoint_id from wg
  join webhook_endpoints ep on ep.disabled_at is null and (cardinality(ep.event_types) = 0 or wg.type = any(ep.event_types))
  returning 1)`;

/**
 * writeText is the statement. Every part is an unnest of arrays, so an empty part writes
 * nothing; rows are written in array order (identity columns follow it). Claims are
 * inserted in (principal, request id) order, so that two groups sharing request ids wait
 * for each other in one order and never deadlock; a claim already taken is skipped and
 * counted, and the caller rolls back.
 */
const writeText = /* sql */ `
with b as (
  update balances t set granted = v.granted, held = v.held, burned = v.burned, expired = v.expired, debt = v.debt,
    overdraft_held = v.overdraft_held, updated_at = now()
  from unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
    as v(customer_id, credit_type_id, granted, held, burned, expired, debt, overdraft_held)
  where t.customer_id = v.customer_id and t.credit_type_id = v.credit_type_id
  returning 1),
l as (
  update grants t set remaining = v.remaining, held = v.held, expired = v.expired
  from unnest($9::text[], $10::uuid[], $11::bigint[], $12::bigint[], $134::bigint[]) as v(customer_id, grant_id, remaining, held, expired)
  where t.customer_id = v.customer_id and t.grant_id = v.grant_id
  returning 1),
g as (
  insert into grants (customer_id, credit_type_id, grant_id, source, amount, remaining, held, priority, effective_at, expires_at,
    cost_basis_micros, reason_code, note, request_id, actor, activation_due)
  select v.customer_id, v.credit_type_id, v.grant_id, v.source, v.amount, v.remaining, v.held, v.priority, v.effective_at, v.expires_at,
    v.cost_basis_micros, v.reason_code, v.note, v.request_id, v.actor, v.activation_due
  from unnest($13::text[], $14::text[], $15::uuid[], $16::text[], $17::bigint[], $18::bigint[], $19::bigint[], $20::int[],
    $21::timestamptz[], $22::timestamptz[], $23::bigint[], $24::text[], $25::text[], $26::text[], $27::text[], $133::boolean[])
    with ordinality as v(customer_id, credit_type_id, grant_id, source, amount, remaining, held, priority, effective_at, expires_at,
      cost_basis_micros, reason_code, note, request_id, actor, activation_due, position)
  order by v.position
  returning customer_id, credit_type_id, grant_id, source, amount, reason_code, effective_at, expires_at, seq),
${webhookEvents},
u as (
  insert into usage_events (principal, event_id, customer_id, feature_key, quantity, event_at, properties, status, reason,
    credit_type_id, pricing_version_id, rate_override, rate_credits, rate_per_units, carry_before, carry_after, credits, over_limit, rated_at, offline)
  select v.principal, v.event_id, v.customer_id, v.feature_key, v.quantity, v.event_at, v.properties, v.status, v.reason,
    v.credit_type_id, v.pricing_version_id, v.rate_override, v.rate_credits, v.rate_per_units, v.carry_before, v.carry_after,
    v.credits, v.over_limit, case when v.status = 'unrated' then null else now() end, v.offline
  from unnest($28::text[], $29::text[], $30::text[], $31::text[], $32::bigint[], $33::timestamptz[], $34::jsonb[], $35::text[], $36::text[],
    $37::text[], $38::text[], $39::boolean[], $40::bigint[], $41::bigint[], $42::bigint[], $43::bigint[], $44::bigint[], $45::boolean[], $46::boolean[])
    with ordinality as v(principal, event_id, customer_id, feature_key, quantity, event_at, properties, status, reason,
      credit_type_id, pricing_version_id, rate_override, rate_credits, rate_per_units, carry_before, carry_after, credits, over_limit, offline, position)
  order by v.position
  returning usage_id),
un as (select usage_id, row_number() over (order by usage_id) as position from u),
ur as (
  update usage_events t set status = v.status, reason = v.reason, credit_type_id = v.credit_type_id, pricing_version_id = v.pricing_version_id,
    rate_override = v.rate_override, rate_credits = v.rate_credits, rate_per_units = v.rate_per_units, carry_before = v.carry_before,
    carry_after = v.carry_after, credits = v.credits, over_limit = v.over_limit, rated_at = now()
  from unnest($47::bigint[], $48::text[], $49::text[], $50::text[], $51::text[], $52::boolean[], $53::bigint[], $54::bigint[], $55::bigint[],
    $56::bigint[], $57::bigint[], $58::boolean[])
    as v(usage_id, status, reason, credit_type_id, pricing_version_id, rate_override, rate_credits, rate_per_units, carry_before, carry_after,
      credits, over_limit)
  where t.usage_id = v.usage_id and t.status = 'unrated'
  returning 1),
e as (
  insert into ledger_entries (customer_id, credit_type_id, kind, amount, grant_id, reservation_id, request_id, actor, reason_code, effective_at, usage_id,
    over_limit, member_customer_id)
  select v.customer_id, v.credit_type_id, v.kind, v.amount, v.grant_id, v.reservation_id, v.request_id, v.actor, v.reason_code, v.effective_at,
    coalesce(v.usage_id, un.usage_id), v.over_limit, v.member_customer_id
  from unnest($59::text[], $60::text[], $61::text[], $62::bigint[], $63::uuid[], $64::uuid[], $65::text[], $66::text[], $67::text[],
    $68::timestamptz[], $69::bigint[], $70::int[], $115::boolean[], $143::text[])
    with ordinality as v(customer_id, credit_type_id, kind, amount, grant_id, reservation_id, request_id, actor, reason_code, effective_at,
      usage_id, usage_index, over_limit, member_customer_id, position)
  left join un on un.position = v.usage_index + 1
  order by v.position
  returning entry_id),
sh as (
  insert into shadow_entries (customer_id, credit_type_id, feature_key, usage_id, credits, effective_at, mode, reservation_id, request_id)
  select v.customer_id, v.credit_type_id, v.feature_key, coalesce(v.usage_id, un.usage_id), v.credits, v.effective_at, v.mode, v.reservation_id, v.request_id
  from unnest($71::text[], $72::text[], $73::text[], $74::bigint[], $75::int[], $76::bigint[], $77::timestamptz[], $116::text[], $117::uuid[], $118::text[])
    as v(customer_id, credit_type_id, feature_key, usage_id, usage_index, credits, effective_at, mode, reservation_id, request_id)
  left join un on un.position = v.usage_index + 1
  returning 1),
c as (
  insert into usage_carries (customer_id, feature_key, per_units, carry)
  select * from unnest($78::text[], $79::text[], $80::bigint[], $81::bigint[])
  on conflict (customer_id, feature_key) do update set per_units = excluded.per_units, carry = excluded.carry
  returning 1),
pu as (
  insert into pool_usage (parent_customer_id, member_customer_id, credit_type_id, period_start, used)
  select * from unnest($144::text[], $145::text[], $146::text[], $147::timestamptz[], $148::bigint[])
  on conflict (parent_customer_id, member_customer_id, credit_type_id) do update set period_start = excluded.period_start, used = excluded.used
  returning 1),
ri as (
  insert into reservations (customer_id, reservation_id, credit_type_id, feature_key, amount, holds, status, expires_at, request_id, actor, mode,
    member_customer_id)
  select v.customer_id, v.reservation_id, v.credit_type_id, v.feature_key, v.amount, v.holds, 'held', v.expires_at, v.request_id, v.actor, v.mode,
    v.member_customer_id
  from unnest($82::text[], $83::uuid[], $84::text[], $85::text[], $86::bigint[], $87::jsonb[], $88::timestamptz[], $89::text[], $90::text[], $119::text[],
    $149::text[])
    with ordinality as v(customer_id, reservation_id, credit_type_id, feature_key, amount, holds, expires_at, request_id, actor, mode, member_customer_id,
      position)
  order by v.position
  returning 1),
rr as (
  update reservations t set status = v.status, committed_amount = v.committed_amount, resolved_at = now()
  from unnest($91::text[], $92::uuid[], $93::text[], $94::bigint[]) as v(customer_id, reservation_id, status, committed_amount)
  where t.customer_id = v.customer_id and t.reservation_id = v.reservation_id and t.status = 'held'
  returning 1),
k as (
  insert into idempotency_keys (principal, request_id, method, payload_hash, response)
  ${claimRows("$95", "$96", "$97", "$98", "$99", "$100", "$101", "$102", "$103")}
  on conflict do nothing
  returning 1),
uc as (
  insert into usage_corrections (usage_id, actor, reason_code, note, credits, request_id)
  select * from unnest($109::bigint[], $110::text[], $111::text[], $112::text[], $113::bigint[], $114::text[])
  returning 1),
a as (
  insert into audit_log (actor, action, target, reason, details, request_id)
  select v.actor, v.action, v.target, v.reason, v.details, v.request_id
  from unnest($104::text[], $105::text[], $106::text[], $107::text[], $108::jsonb[], $150::text[]) with ordinality
    as v(actor, action, target, reason, details, request_id, position)
  order by v.position
  returning 1),
x as (
  delete from usage_event_ids t using unnest($120::text[], $121::text[]) as v(principal, event_id)
  where t.principal = v.principal and t.event_id = v.event_id
  returning 1),
y as (
  insert into usage_event_conflicts (principal, event_id, customer_id, feature_key, quantity, event_at, properties, offline, received_at)
  select * from unnest($122::text[], $123::text[], $124::text[], $125::text[], $126::bigint[], $127::timestamptz[], $128::jsonb[], $129::boolean[],
    $130::timestamptz[])
  returning 1),
z as (
  update grants t set activation_due = false from unnest($131::text[], $132::uuid[]) as v(customer_id, grant_id)
  where t.customer_id = v.customer_id and t.grant_id = v.grant_id and t.activation_due
  returning 1),
rd as (
  -- Flags for the recharge job (jobs/recharge-jobs.ts); one per balance (deduplicated by the caller).
  insert into recharge_due (customer_id, credit_type_id, available)
  select v.customer_id, v.credit_type_id, v.available from unnest($138::text[], $139::text[], $140::bigint[], $141::bigint[])
    as v(customer_id, credit_type_id, available, recharge)
  where v.recharge is not null
  on conflict (customer_id, credit_type_id) do nothing
  returning 1)
select (select count(*) from b)::int as balances, (select count(*) from l)::int as lots, (select count(*) from g)::int as new_lots,
  (select count(*) from ur)::int as usage_ratings, (select count(*) from sh)::int as shadows, (select count(*) from c)::int as carries,
  (select count(*) from pu)::int as pool_usage,
  (select count(*) from ri)::int as reservation_inserts, (select count(*) from rr)::int as reservation_resolves,
  (select count(*) from k)::int as claims, (select count(*) from uc)::int as corrections, (select count(*) from a)::int as audits,
  (select count(*) from x)::int as released_event_ids, (select count(*) from y)::int as usage_conflicts,
  (select coalesce(array_agg(entry_id order by entry_id), '{}') from e)::text[] as entry_ids,
  (select coalesce(array_agg(usage_id order by usage_id), '{}') from u)::text[] as usage_ids,
  now() as recorded_at`;

function usageConflictValues(y: UsageConflictWrite[]): unknown[] {
  return [
    y.map((x) => x.principal), y.map((x) => x.eventId), y.map((x) => x.customerId), y.map((x) => x.featureKey), y.map((x) => s(x.quantity)),
    y.map((x) => x.eventAt), y.map((x) => JSON.stringify(x.properties)), y.map((x) => x.offline), y.map((x) => x.receivedAt),
  ];
}

function poolUsageValues(pu: PoolUsageWrite[]): unknown[] {
  return [pu.map((x) => x.parentCustomerId), pu.map((x) => x.memberCustomerId), pu.map((x) => x.creditTypeId), pu.map((x) => x.periodStart), pu.map((x) => s(x.used))];
}

function writeValues(set: WriteSet): unknown[] {
  const { balances: b, lots: l, newLots: g, usageInserts: u, usageRatings: ur, entries: e, shadows: sh, carries: c } = set;
  const { reservationInserts: ri, reservationResolves: rr, claims: k, audits: a, corrections: uc } = set;
  return [
    b.map((x) => x.key.customerId), b.map((x) => x.key.creditTypeId), b.map((x) => s(x.granted)), b.map((x) => s(x.held)),
    b.map((x) => s(x.burned)), b.map((x) => s(x.expired)), b.map((x) => s(x.debt)), b.map((x) => s(x.overdraftHeld)),
    l.map((x) => x.customerId), l.map((x) => x.grantId), l.map((x) => s(x.remaining)), l.map((x) => s(x.held)),
    g.map((x) => x.customerId), g.map((x) => x.creditTypeId), g.map((x) => x.grantId), g.map((x) => x.source), g.map((x) => s(x.amount)),
    g.map((x) => s(x.remaining)), g.map((x) => s(x.held)), g.map((x) => x.priority), g.map((x) => x.effectiveAt), g.map((x) => x.expiresAt),
    g.map((x) => s(x.costBasisMicros)), g.map((x) => x.reasonCode), g.map((x) => x.note), g.map((x) => x.requestId), g.map((x) => x.actor),
    u.map((x) => x.principal), u.map((x) => x.eventId), u.map((x) => x.customerId), u.map((x) => x.featureKey), u.map((x) => s(x.quantity)),
    u.map((x) => x.eventAt), u.map((x) => JSON.stringify(x.properties)), u.map((x) => x.status), u.map((x) => x.reason),
    u.map((x) => x.creditTypeId), u.map((x) => x.pricingVersionId), u.map((x) => x.rateOverride), u.map((x) => s(x.rateCredits)),
    u.map((x) => s(x.ratePerUnits)), u.map((x) => s(x.carryBefore)), u.map((x) => s(x.carryAfter)), u.map((x) => s(x.credits)),
    u.map((x) => x.overLimit), u.map((x) => x.offline),
    ur.map((x) => x.usageId), ur.map((x) => x.row.status), ur.map((x) => x.row.reason), ur.map((x) => x.row.creditTypeId),
    ur.map((x) => x.row.pricingVersionId), ur.map((x) => x.row.rateOverride), ur.map((x) => s(x.row.rateCredits)),
    ur.map((x) => s(x.row.ratePerUnits)), ur.map((x) => s(x.row.carryBefore)), ur.map((x) => s(x.row.carryAfter)),
    ur.map((x) => s(x.row.credits)), ur.map((x) => x.row.overLimit),
    e.map((x) => x.customerId), e.map((x) => x.creditTypeId), e.map((x) => x.kind), e.map((x) => s(x.amount)), e.map((x) => x.grantId),
    e.map((x) => x.reservationId), e.map((x) => x.requestId), e.map((x) => x.actor), e.map((x) => x.reasonCode), e.map((x) => x.effectiveAt),
    e.map((x) => x.usageId), e.map((x) => x.usageIndex),
    sh.map((x) => x.customerId), sh.map((x) => x.creditTypeId), sh.map((x) => x.featureKey), sh.map((x) => x.usageId), sh.map((x) => x.usageIndex),
    sh.map((x) => s(x.credits)), sh.map((x) => x.effectiveAt),
    c.map((x) => x.customerId), c.map((x) => x.featureKey), c.map((x) => s(x.perUnits)), c.map((x) => s(x.carry)),
    ri.map((x) => x.customerId), ri.map((x) => x.reservationId), ri.map((x) => x.creditTypeId), ri.map((x) => x.featureKey), ri.map((x) => s(x.amount)),
    ri.map((x) => JSON.stringify(x.holds.map((hold) => ({ grantId: hold.grantId, amount: hold.amount.toString() })))),
    ri.map((x) => x.expiresAt), ri.map((x) => x.requestId), ri.map((x) => x.actor),
    rr.map((x) => x.customerId), rr.map((x) => x.reservationId), rr.map((x) => x.status), rr.map((x) => s(x.committedAmount)),
    ...claimValues(k),
    a.map((x) => x.actor), a.map((x) => x.action), a.map((x) => x.target), a.map((x) => x.reason), a.map((x) => JSON.stringify(x.details)),
    uc.map((x) => x.usageId), uc.map((x) => x.actor), uc.map((x) => x.reasonCode), uc.map((x) => x.note), uc.map((x) => s(x.credits)),
    uc.map((x) => x.requestId),
    e.map((x) => x.overLimit),
    sh.map((x) => x.mode), sh.map((x) => x.reservationId), sh.map((x) => x.requestId),
    ri.map((x) => x.mode),
    set.releasedEventIds.map((x) => x.principal), set.releasedEventIds.map((x) => x.eventId),
    ...usageConflictValues(set.usageConflicts),
    set.activatedLots.map((x) => x.customerId), set.activatedLots.map((x) => x.grantId),
    g.map((x) => x.activationDue),
    l.map((x) => s(x.expired)),
    set.balancesNegative.map((x) => x.customerId), set.balancesNegative.map((x) => x.creditTypeId), set.balancesNegative.map((x) => s(x.available)),
    set.balancesLow.map((x) => x.customerId), set.balancesLow.map((x) => x.creditTypeId), set.balancesLow.map((x) => s(x.available)),
    set.balancesLow.map((x) => s(x.recharge)), set.balancesLow.map((x) => s(x.low)),
    e.map((x) => x.memberCustomerId),
    ...poolUsageValues(set.poolUsage),
    ri.map((x) => x.memberCustomerId ?? null),
    a.map((x) => x.requestId),
  ];
}

/** isEmptyWriteSet says whether a write set writes nothing at all. */
function isEmptyWriteSet(set: WriteSet): boolean {
  return Object.values(set).every((part: unknown[]) => part.length === 0);
}

/**
 * writeBalanceChanges writes a group's changes in one statement and checks that every part
 * was written as planned. A claim taken meanwhile by another transaction throws
 * ClaimTakenError; any other shortfall (a reservation no longer held, a lot or balance not
 * found, a stored event no longer unrated) is a broken assumption and throws: either way
 * the caller's transaction must roll back, and it writes nothing.
 */
export async function writeBalanceChanges(tx: Tx, set: WriteSet): Promise<WrittenSet> {
  if (isEmptyWriteSet(set)) return { entryIds: [], usageIds: [], recordedAt: new Date() };
  const result = await tx.query({ name: "write_balance_changes", text: writeText, values: writeValues(set) });
  const row = result.rows[0];
  if (row.claims !== set.claims.length) throw new ClaimTakenError(set.claims.length - row.claims);
  const expected: Record<string, number> = {
    balances: set.balances.length, lots: set.lots.length, new_lots: set.newLots.length, usage_ratings: set.usageRatings.length,
    shadows: set.shadows.length, carries: set.carries.length, pool_usage: set.poolUsage.length, reservation_inserts: set.reservationInserts.length,
    reservation_resolves: set.reservationResolves.length, corrections: set.corrections.length, audits: set.audits.length,
    released_event_ids: set.releasedEventIds.length, usage_conflicts: set.usageConflicts.length,
  };
  for (const [part, count] of Object.entries(expected)) {
    if (row[part] !== count) throw new Error(`assertion failed: writeBalanceChanges wrote ${row[part]} ${part}, planned ${count}`);
  }
  const entryIds = (row.entry_ids as string[]).map(BigInt);
  const usageIds = row.usage_ids as string[];
  if (entryIds.length !== set.entries.length || usageIds.length !== set.usageInserts.length) {
    throw new Error("assertion failed: writeBalanceChanges inserted every entry and usage event");
  }
  return { entryIds, usageIds, recordedAt: row.recorded_at as Date };
}
