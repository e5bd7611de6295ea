// Plans, subscriptions and grant schedules: the versioned plan catalog, customers'
// subscriptions, their schedules, and the rows that make each period granted once
// (schedule_grants) and link a rollover's two lots (schedule_rollovers). Amounts are
// bigint here and in SQL; plan allotments are JSON with amounts as strings.
import type { PeriodUnit } from "../ledger/schedule-periods.js";
import type { Db, Tx } from "./database.js";

/** LotExpiry is how long a schedule's lots last: to the end of their period, a lifetime from its start, or forever. */
export type LotExpiry = { kind: "period_end" } | { kind: "lifetime"; seconds: bigint } | { kind: "never" };

/** RolloverCap caps what of a period's unused lot rolls into the next; null: no rollover. */
export type RolloverCap = { kind: "amount"; amount: bigint } | { kind: "percent"; percent: number } | null;

/** Allotment is a recurring grant: an amount of a credit type every period. */
export interface Allotment {
  creditTypeId: string;
  amount: bigint;
  unit: PeriodUnit;
  length: number;
  lotExpiry: LotExpiry;
  rollover: RolloverCap;
}

/** PlanRow is one version of a plan. */
export interface PlanRow {
  planId: string;
  version: number;
  displayName: string;
  allotments: Allotment[];
  bundleIds: string[];
  pricingVersionId: string | null;
  createdAt: Date;
}

/** SubscriptionState is where a subscription is in its life. */
export type SubscriptionState = "active" | "cancelled" | "moved";

/** SubscriptionRow is a stored subscription. */
export interface SubscriptionRow {
  subscriptionId: string;
  customerId: string;
  planId: string;
  planVersion: number;
  state: SubscriptionState;
  startAt: Date;
  periodCount: number | null;
  endedAt: Date | null;
  movedTo: string | null;
  createdAt: Date;
}

/** ScheduleRow is a stored grant schedule. */
export interface ScheduleRow extends Allotment {
  scheduleId: string;
  customerId: string;
  subscriptionId: string | null;
  source: string;
  reasonCode: string;
  startAt: Date;
  periodCount: number | null;
  endedAt: Date | null;
  /** the next period to grant, from 1. */
  nextPeriod: number;
  /** when it is due; null when no period is left. */
  nextDueAt: Date | null;
  createdAt: Date;
}

/** RolloverRow links a period's lot to the rollover lot it rolled into. */
export interface RolloverRow {
  scheduleId: string;
  periodIndex: number;
  customerId: string;
  fromGrantId: string;
  toGrantId: string | null;
  amount: bigint;
  createdAt: Date;
}

interface AllotmentJson {
  credit_type_id: string;
  amount: string;
  unit: PeriodUnit;
  length: number;
  lot_expiry: string;
  lot_lifetime_seconds: string | null;
  rollover_max_amount: string | null;
  rollover_max_percent: number | null;
}

const bigintOrNull = (value: unknown): bigint | null => (value === null || value === undefined ? null : BigInt(value as string));

/** allotmentOf reads an allotment from its columns (a schedule row) or its JSON (a plan's). */
function allotmentOf(row: AllotmentJson): Allotment {
  const lifetime = bigintOrNull(row.lot_lifetime_seconds);
  const maxAmount = bigintOrNull(row.rollover_max_amount);
  return {
    creditTypeId: row.credit_type_id,
    amount: BigInt(row.amount),
    unit: row.unit,
    length: row.length,
    lotExpiry: row.lot_expiry === "period_end" ? { kind: "period_end" } : lifetime !== null ? { kind: "lifetime", seconds: lifetime } : { kind: "never" },
    rollover: maxAmount !== null ? { kind: "amount", amount: maxAmount } : row.rollover_max_percent !== null ? { kind: "percent", percent: row.rollover_max_percent } : null,
  };
}

/** allotmentJson is an allotment as stored: in a plan's JSON, or as a schedule's columns. */
export function allotmentJson(allotment: Allotment): AllotmentJson {
  return {
    credit_type_id: allotment.creditTypeId,
    amount: allotment.amount.toString(),
    unit: allotment.unit,
    length: allotment.length,
    lot_expiry: allotment.lotExpiry.kind,
    lot_lifetime_seconds: allotment.lotExpiry.kind === "lifetime" ? allotment.lotExpiry.seconds.toString() : null,
    rollover_max_amount: allotment.rollover?.kind === "amount" ? allotment.rollover.amount.toString() : null,
    rollover_max_percent: allotment.rollover?.kind === "percent" ? allotment.rollover.percent : null,
  };
}

const planColumns = "plan_id, version, display_name, allotments, bundle_ids, pricing_version_id, created_at";
const subscriptionColumns = "subscription_id, customer_id, plan_id, plan_version, state, start_at, period_count, ended_at, moved_to, created_at";
const scheduleColumns = `schedule_id, customer_id, subscription_id, credit_type_id, amount, period_unit as unit, period_length as length, lot_expiry,
  lot_lifetime_seconds, rollover_max_amount, rollover_max_percent, source, reason_code, start_at, period_count, ended_at, next_period, next_due_at, created_at`;

function toPlanRow(row: Record<string, unknown>): PlanRow {
  return {
    planId: row.plan_id as string,
    version: row.version as number,
    displayName: row.display_name as string,
    allotments: (row.allotments as AllotmentJson[]).map(allotmentOf),
    bundleIds: row.bundle_ids as string[],
    pricingVersionId: row.pricing_version_id as string | null,
    createdAt: row.created_at as Date,
  };
}

function toSubscriptionRow(row: Record<string, unknown>): SubscriptionRow {
  return {
    subscriptionId: row.subscription_id as string,
    customerId: row.customer_id as string,
    planId: row.plan_id as string,
    planVersion: row.plan_version as number,
    state: row.state as SubscriptionState,
    startAt: row.start_at as Date,
    periodCount: row.period_count as number | null,
    endedAt: row.ended_at as Date | null,
    movedTo: row.moved_to as string | null,
    createdAt: row.created_at as Date,
  };
}

function toScheduleRow(row: Record<string, unknown>): ScheduleRow {
  return {
    ...allotmentOf(row as unknown as AllotmentJson),
    scheduleId: row.schedule_id as string,
    customerId: row.customer_id as string,
    subscriptionId: row.subscription_id as string | null,
    source: row.source as string,
    reasonCode: row.reason_code as string,
    startAt: row.start_at as Date,
    periodCount: row.period_count as number | null,
    endedAt: row.ended_at as Date | null,
    nextPeriod: row.next_period as number,
    nextDueAt: row.next_due_at as Date | null,
    createdAt: row.created_at as Date,
  };
}

/** insertPlanVersion adds the next version of a plan. Two at once of one plan: one fails on plans_pkey. */
export async function insertPlanVersion(tx: Tx, plan: Omit<PlanRow, "version" | "createdAt"> & { createdBy: string }): Promise<PlanRow> {
  const result = await tx.query({
    name: "insert_plan_version",
    text: `insert into plans (plan_id, version, display_name, allotments, bundle_ids, pricing_version_id, created_by)
           select $1, coalesce(max(version), 0) + 1, $2, $3::jsonb, $4::text[], $5, $6 from plans where plan_id = $1
           returning ${planColumns}`,
    values: [plan.planId, plan.displayName, JSON.stringify(plan.allotments.map(allotmentJson)), plan.bundleIds, plan.pricingVersionId, plan.createdBy],
  });
  return toPlanRow(result.rows[0]);
}

/** selectPlans reads the latest version of each plan, or every version, by id then version. No locks. */
export async function selectPlans(db: Db, options: { allVersions: boolean; limit: number }): Promise<PlanRow[]> {
  const result = await db.query({
    name: "select_plans",
    text: `select ${planColumns} from plans p
           where $1 or p.version = (select max(version) from plans l where l.plan_id = p.plan_id)
           order by plan_id, version limit $2`,
    values: [options.allVersions, options.limit],
  });
  return result.rows.map(toPlanRow);
}

/** selectPlan reads one version of a plan (the latest when version is null), or null. No locks: versions never change. */
export async function selectPlan(db: Db, planId: string, version: number | null): Promise<PlanRow | null> {
  const result = await db.query({
    name: "select_plan",
    text: `select ${planColumns} from plans where plan_id = $1 and ($2::int is null or version = $2) order by version desc limit 1`,
    values: [planId, version],
  });
  return result.rows.length === 0 ? null : toPlanRow(result.rows[0]);
}

/** selectMissingBundleIds returns the bundle ids of the list that no bundle has. No locks. */
export async function selectMissingBundleIds(db: Db, bundleIds: string[]): Promise<string[]> {
  const result = await db.query({
    name: "select_missing_bundle_ids",
    text: `select k.bundle_id from unnest($1::text[]) as k(bundle_id) where not exists (select 1 from bundles b where b.bundle_id = k.bundle_id)`,
    values: [bundleIds],
  });
  return result.rows.map((row) => row.bundle_id as string);
}

/** insertSubscription adds an active subscription. Any transaction. */
export async function insertSubscription(
  tx: Tx,
  row: { subscriptionId: string; customerId: string; planId: string; planVersion: number; startAt: Date; periodCount: number | null; createdBy: string },
): Promise<SubscriptionRow> {
  const result = await tx.query({
    name: "insert_subscription",
    text: `insert into plan_subscriptions (subscription_id, customer_id, plan_id, plan_version, start_at, period_count, created_by)
           values ($1, $2, $3, $4, $5, $6, $7) returning ${subscriptionColumns}`,
    values: [row.subscriptionId, row.customerId, row.planId, row.planVersion, row.startAt, row.periodCount, row.createdBy],
  });
  return toSubscriptionRow(result.rows[0]);
}

/** selectSubscription reads a subscription, locked FOR UPDATE with lock "update" (a transaction), or null. */
export async function selectSubscription(db: Db, subscriptionId: string, lock: "none" | "update"): Promise<SubscriptionRow | null> {
  const result = await db.query({
    name: `select_subscription_${lock}`,
    text: `select ${subscriptionColumns} from plan_subscriptions where subscription_id = $1 ${lock === "update" ? "for update" : ""}`,
    values: [subscriptionId],
  });
  return result.rows.length === 0 ? null : toSubscriptionRow(result.rows[0]);
}

/** selectSubscriptions reads a customer's subscriptions, newest first. No locks. */
export async function selectSubscriptions(db: Db, customerId: string, limit: number): Promise<SubscriptionRow[]> {
  const result = await db.query({
    name: "select_subscriptions",
    text: `select ${subscriptionColumns} from plan_subscriptions where customer_id = $1 order by created_at desc, subscription_id limit $2`,
    values: [customerId, limit],
  });
  return result.rows.map(toSubscriptionRow);
}

/** endSubscription marks an active subscription cancelled or moved as of endedAt. The caller holds its row lock. */
export async function endSubscription(tx: Tx, end: { subscriptionId: string; state: "cancelled" | "moved"; endedAt: Date; movedTo: string | null }): Promise<SubscriptionRow> {
  const result = await tx.query({
    name: "end_subscription",
    text: `update plan_subscriptions set state = $2, ended_at = $3, moved_to = $4 where subscription_id = $1 and state = 'active'
           returning ${subscriptionColumns}`,
    values: [end.subscriptionId, end.state, end.endedAt, end.movedTo],
  });
  return toSubscriptionRow(result.rows[0]);
}

/** insertSchedule adds a grant schedule, due at its start. Any transaction. */
export async function insertSchedule(tx: Tx, row: Omit<ScheduleRow, "nextPeriod" | "nextDueAt" | "createdAt" | "endedAt"> & { createdBy: string }): Promise<ScheduleRow> {
  const allotment = allotmentJson(row);
  const result = await tx.query({
    name: "insert_schedule",
    text: `insert into grant_schedules (schedule_id, customer_id, subscription_id, credit_type_id, amount, period_unit, period_length, lot_expiry,
             lot_lifetime_seconds, rollover_max_amount, rollover_max_percent, source, reason_code, start_at, period_count, next_due_at, created_by)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $14, $16) returning ${scheduleColumns}`,
    values: [
      row.scheduleId, row.customerId, row.subscriptionId, row.creditTypeId, allotment.amount, row.unit, row.length, allotment.lot_expiry,
      allotment.lot_lifetime_seconds, allotment.rollover_max_amount, allotment.rollover_max_percent, row.source, row.reasonCode, row.startAt, row.periodCount, row.createdBy,
    ],
  });
  return toScheduleRow(result.rows[0]);
}

/** selectSchedule reads a schedule, locked FOR UPDATE with lock "update" (a transaction), or null. */
export async function selectSchedule(db: Db, scheduleId: string, lock: "none" | "update"): Promise<ScheduleRow | null> {
  const result = await db.query({
    name: `select_schedule_${lock}`,
    text: `select ${scheduleColumns} from grant_schedules where schedule_id = $1 ${lock === "update" ? "for update" : ""}`,
    values: [scheduleId],
  });
  return result.rows.length === 0 ? null : toScheduleRow(result.rows[0]);
}

/** selectSchedules reads a customer's schedules (or those of one subscription), newest first. No locks. */
export async function selectSchedules(db: Db, filter: { customerId: string; subscriptionId: string | null; limit: number }): Promise<ScheduleRow[]> {
  const result = await db.query({
    name: "select_schedules",
    text: `select ${scheduleColumns} from grant_schedules where customer_id = $1 and ($2::uuid is null or subscription_id = $2)
           order by created_at desc, schedule_id limit $3`,
    values: [filter.customerId, filter.subscriptionId, filter.limit],
  });
  return result.rows.map(toScheduleRow);
}

/** selectDueSchedules reads schedules with a period due at now, earliest first. No locks: the grant locks and checks again. */
export async function selectDueSchedules(db: Db, now: Date, limit: number): Promise<ScheduleRow[]> {
  const result = await db.query({
    name: "select_due_schedules",
    text: `select ${scheduleColumns} from grant_schedules where next_due_at <= $1 order by next_due_at, schedule_id limit $2`,
    values: [now, limit],
  });
  return result.rows.map(toScheduleRow);
}

/** endSchedules stops schedules as of endedAt (those of a subscription, or one), with their next due time. The caller holds the owner's lock. */
export async function endSchedule(tx: Tx, end: { scheduleId: string; endedAt: Date; nextDueAt: Date | null }): Promise<ScheduleRow> {
  const result = await tx.query({
    name: "end_schedule",
    text: `update grant_schedules set ended_at = $2, next_due_at = $3 where schedule_id = $1 and ended_at is null returning ${scheduleColumns}`,
    values: [end.scheduleId, end.endedAt, end.nextDueAt],
  });
  return toScheduleRow(result.rows[0]);
}

/**
 * insertScheduleGrant records period index of a schedule as granted, by its lot, and moves
 * the schedule on to its next period. The primary key (schedule, period) is the guard of
 * exactly once: a second grant of a period fails here and rolls back its lot. The caller
 * holds the schedule's row lock, in the transaction that writes the lot.
 */
export async function insertScheduleGrant(
  tx: Tx,
  row: { scheduleId: string; periodIndex: number; customerId: string; grantId: string; periodStart: Date; periodEnd: Date; nextDueAt: Date | null },
): Promise<void> {
  await tx.query({
    name: "insert_schedule_grant",
    text: `with granted as (
             insert into schedule_grants (schedule_id, period_index, customer_id, grant_id, period_start, period_end)
             values ($1, $2, $3, $4, $5, $6) returning schedule_id)
           update grant_schedules s set next_period = $2 + 1, next_due_at = $7 from granted g where s.schedule_id = g.schedule_id`,
    values: [row.scheduleId, row.periodIndex, row.customerId, row.grantId, row.periodStart, row.periodEnd, row.nextDueAt],
  });
}

/** selectPeriodGrantId reads the lot a schedule granted for a period, or null. No locks. */
export async function selectPeriodGrantId(db: Db, scheduleId: string, periodIndex: number): Promise<string | null> {
  const result = await db.query({
    name: "select_period_grant_id",
    text: "select grant_id from schedule_grants where schedule_id = $1 and period_index = $2",
    values: [scheduleId, periodIndex],
  });
  return result.rows.length === 0 ? null : (result.rows[0].grant_id as string);
}

/** insertRollover links a period's lot to the lot it rolled into; once per (schedule, period). Any transaction. */
export async function insertRollover(tx: Tx, row: Omit<RolloverRow, "createdAt">): Promise<void> {
  await tx.query({
    name: "insert_rollover",
    text: `insert into schedule_rollovers (schedule_id, period_index, customer_id, from_grant_id, to_grant_id, amount) values ($1, $2, $3, $4, $5, $6)`,
    values: [row.scheduleId, row.periodIndex, row.customerId, row.fromGrantId, row.toGrantId, row.amount.toString()],
  });
}

/** selectRollovers reads a customer's rollovers, newest first. No locks. */
export async function selectRollovers(db: Db, customerId: string, limit: number): Promise<RolloverRow[]> {
  const result = await db.query({
    name: "select_rollovers",
    text: `select schedule_id, period_index, customer_id, from_grant_id, to_grant_id, amount, created_at from schedule_rollovers
           where customer_id = $1 order by created_at desc, schedule_id, period_index desc limit $2`,
    values: [customerId, limit],
  });
  return result.rows.map((row) => ({
    scheduleId: row.schedule_id as string,
    periodIndex: row.period_index as number,
    customerId: row.customer_id as string,
    fromGrantId: row.from_grant_id as string,
    toGrantId: row.to_grant_id as string | null,
    amount: BigInt(row.amount as string),
    createdAt: row.created_at as Date,
  }));
}

/**
 * updateLotExpired records what expired of a lot granted in this transaction (a period
 * caught up after its end), after the writer inserted it. The caller holds the balance lock.
 */
export async function updateLotExpired(tx: Tx, lot: { customerId: string; grantId: string; expired: bigint }): Promise<void> {
  const result = await tx.query({
    name: "update_lot_expired",
    text: "update grants set expired = $3 where customer_id = $1 and grant_id = $2",
    values: [lot.customerId, lot.grantId, lot.expired.toString()],
  });
  if (result.rowCount !== 1) throw new Error(`assertion failed: lot ${lot.grantId} was written`);
}

/**
 * selectOfferedBundleIds is what a customer's active plan subscriptions offer: the union
 * of their plans' bundle ids, or null when none of them names a bundle (then the whole
 * catalog is on offer). No locks.
 */
export async function selectOfferedBundleIds(db: Db, customerId: string): Promise<string[] | null> {
  const result = await db.query<{ bundleIds: string[] | null }>({
    name: "select_offered_bundle_ids",
    text: `select array_agg(distinct b.bundle_id order by b.bundle_id) as "bundleIds"
           from plan_subscriptions s join plans p on p.plan_id = s.plan_id and p.version = s.plan_version, unnest(p.bundle_ids) as b(bundle_id)
           where s.customer_id = $1 and s.state = 'active'`,
    values: [customerId],
  });
  return result.rows[0]?.bundleIds ?? null;
}
