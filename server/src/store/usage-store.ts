// Usage events: the events as received and rated, and their dedup claims' retention. The
// write path (balance-writer.ts, write-inputs-store.ts) stores them.
import type { Db } from "./database.js";

/** UsageStatus is what became of a kept event. */
export type UsageStatus = "burned" | "shadowed" | "not_billed" | "unrated";

/** UsageRow is a usage event to store, as received and as rated. */
export interface UsageRow {
  principal: string;
  eventId: string;
  customerId: string;
  featureKey: string;
  quantity: bigint;
  eventAt: Date;
  properties: Record<string, string>;
  status: UsageStatus;
  reason: string;
  creditTypeId: string | null;
  pricingVersionId: string | null;
  rateOverride: boolean;
  rateCredits: bigint | null;
  ratePerUnits: bigint | null;
  carryBefore: bigint | null;
  carryAfter: bigint | null;
  credits: bigint | null;
  overLimit: boolean;
  offline: boolean;
}

/** StoredUsage is a stored usage event. */
export interface StoredUsage extends UsageRow {
  usageId: string;
  receivedAt: Date;
}

function toStoredUsage(row: Record<string, unknown>): StoredUsage {
  const big = (value: unknown) => (value === null ? null : BigInt(value as string));
  return {
    usageId: String(row.usage_id),
    principal: row.principal as string,
    eventId: row.event_id as string,
    customerId: row.customer_id as string,
    featureKey: row.feature_key as string,
    quantity: BigInt(row.quantity as string),
    eventAt: row.event_at as Date,
    receivedAt: row.received_at as Date,
    properties: row.properties as Record<string, string>,
    status: row.status as UsageStatus,
    reason: row.reason as string,
    creditTypeId: row.credit_type_id as string | null,
    pricingVersionId: row.pricing_version_id as string | null,
    rateOverride: row.rate_override as boolean,
    rateCredits: big(row.rate_credits),
    ratePerUnits: big(row.rate_per_units),
    carryBefore: big(row.carry_before),
    carryAfter: big(row.carry_after),
    credits: big(row.credits),
    overLimit: row.over_limit as boolean,
    offline: row.offline as boolean,
  };
}

const usageColumns = `usage_id, principal, event_id, customer_id, feature_key, quantity, event_at, received_at, properties, status, reason,
  credit_type_id, pricing_version_id, rate_override, rate_credits, rate_per_units, carry_before, carry_after, credits, over_limit, offline`;

/** selectUnratedEvents reads unrated events oldest first, after a usage id. No locks. */
export async function selectUnratedEvents(db: Db, afterUsageId: string | null, limit: number): Promise<StoredUsage[]> {
  const result = await db.query({
    name: "select_unrated_events",
    text: `select ${usageColumns} from usage_events where status = 'unrated' and ($1::bigint is null or usage_id > $1)
           order by usage_id limit $2`,
    values: [afterUsageId, limit],
  });
  return result.rows.map(toStoredUsage);
}

/**
 * selectUsageByEventId reads the events a reporter (or any, when principal is null) sent
 * with an id, of one customer (or any, when customerId is null), newest first. No locks.
 */
export async function selectUsageByEventId(
  db: Db,
  { eventId, principal, customerId }: { eventId: string; principal: string | null; customerId: string | null },
): Promise<StoredUsage[]> {
  const result = await db.query({
    name: "select_usage_by_event_id",
    text: `select ${usageColumns} from usage_events
           where event_id = $1 and ($2::text is null or principal = $2) and ($3::text is null or customer_id = $3)
           order by usage_id desc limit 10`,
    values: [eventId, principal, customerId],
  });
  return result.rows.map(toStoredUsage);
}

/**
 * selectUnratedReasons says which of a reporter's event ids are stored unrated now, and
 * why: a redelivered queue message answers "duplicate", and its dead letter must still
 * say the event is unrated. No locks.
 */
export async function selectUnratedReasons(db: Db, principal: string, eventIds: string[]): Promise<Map<string, string>> {
  if (eventIds.length === 0) return new Map();
  const result = await db.query({
    name: "select_unrated_reasons",
    text: `select event_id, reason from usage_events where event_id = any($1::text[]) and principal = $2 and status = 'unrated'`,
    values: [eventIds, principal],
  });
  return new Map(result.rows.map((row: { event_id: string; reason: string }) => [row.event_id, row.reason]));
}

/** selectUsageByUsageId reads one event by the usage id ledger entries carry. No locks. */
export async function selectUsageByUsageId(db: Db, usageId: bigint): Promise<StoredUsage | null> {
  const result = await db.query({
    name: "select_usage_by_usage_id",
    text: `select ${usageColumns} from usage_events where usage_id = $1`,
    values: [usageId.toString()],
  });
  return result.rows.length === 0 ? null : toStoredUsage(result.rows[0]);
}

/** deleteExpiredEventIds forgets dedup claims older than the retention window. Any transaction. */
export async function deleteExpiredEventIds(db: Db, before: Date, limit: number): Promise<number> {
  const result = await db.query({
    name: "delete_expired_event_ids",
    text: `delete from usage_event_ids where ctid in (select ctid from usage_event_ids where received_at <= $1 limit $2)`,
    values: [before, limit],
  });
  return result.rowCount ?? 0;
}

/** selectExistingIds says which of these customers and features exist. No locks. */
export async function selectExistingIds(db: Db, customerIds: string[], featureKeys: string[]): Promise<{ customerIds: Set<string>; featureKeys: Set<string> }> {
  const result = await db.query({
    name: "select_existing_ids",
    text: `select 'c' as kind, customer_id as id from customers where customer_id = any($1::text[])
           union all select 'f', feature_key from features where feature_key = any($2::text[])`,
    values: [customerIds, featureKeys],
  });
  const ids = (kind: string) => new Set(result.rows.filter((row) => row.kind === kind).map((row) => row.id as string));
  return { customerIds: ids("c"), featureKeys: ids("f") };
}

/** SentUsage is a usage event as a producer sent it. */
export interface SentUsage {
  eventId: string;
  customerId: string;
  featureKey: string;
  quantity: bigint;
  /** null: sent without an event time (now). */
  eventAt: Date | null;
  properties: Record<string, string>;
  /** allowed by an SDK while the ledger was unreachable, replayed from its spool. */
  offline: boolean;
}

/** UsageConflict is a usage event refused because its id was taken by another event, as received from its reporter. */
export interface UsageConflict extends SentUsage {
  principal: string;
  receivedAt: Date;
}

/** StoredConflict is a kept conflict, with the event that took the id if still kept. */
export interface StoredConflict extends UsageConflict {
  conflictId: string;
  /** the latest event accepted under this id, if still kept. */
  first: StoredUsage | null;
}

/** ConflictFilter narrows a list of conflicts to one reporting key and one customer (either or both). */
export interface ConflictFilter {
  principal: string | null;
  customerId: string | null;
}

/**
 * selectUsageConflicts reads a page of conflicts, newest first, below a conflict id, with
 * the count of every conflict the filter matches. No locks.
 */
export async function selectUsageConflicts(db: Db, filter: ConflictFilter, below: string | null, limit: number): Promise<{ conflicts: StoredConflict[]; total: bigint }> {
  const result = await db.query({
    name: "select_usage_conflicts",
    text: `with matching as (
             select * from usage_event_conflicts
             where ($1::text is null or principal = $1) and ($2::text is null or customer_id = $2))
           select c.conflict_id, c.principal, c.event_id, c.customer_id, c.feature_key, c.quantity::text as quantity, c.event_at, c.properties,
             c.offline, c.received_at, f.usage_id as first_usage_id, (select count(*) from matching)::text as total
           from matching c
           left join lateral (
             select u.usage_id from usage_events u
             where u.event_id = c.event_id and u.principal = c.principal
             order by u.usage_id desc limit 1) f on true
           where $3::bigint is null or c.conflict_id < $3
           order by c.conflict_id desc limit $4`,
    values: [filter.principal, filter.customerId, below, limit],
  });
  const total = result.rows.length > 0 ? BigInt(result.rows[0].total as string) : await countUsageConflicts(db, filter);
  const firstIds = result.rows.flatMap((row) => (row.first_usage_id === null ? [] : [String(row.first_usage_id)]));
  const firsts = new Map<string, StoredUsage>();
  if (firstIds.length > 0) {
    const found = await db.query({ name: "select_usage_by_ids", text: `select ${usageColumns} from usage_events where usage_id = any($1::bigint[])`, values: [firstIds] });
    for (const row of found.rows) firsts.set(String(row.usage_id), toStoredUsage(row));
  }
  const conflicts = result.rows.map((row): StoredConflict => ({
    conflictId: String(row.conflict_id),
    principal: row.principal,
    eventId: row.event_id,
    customerId: row.customer_id,
    featureKey: row.feature_key,
    quantity: BigInt(row.quantity),
    eventAt: row.event_at,
    properties: row.properties,
    offline: row.offline,
    receivedAt: row.received_at,
    first: row.first_usage_id === null ? null : (firsts.get(String(row.first_usage_id)) ?? null),
  }));
  return { conflicts, total };
}

async function countUsageConflicts(db: Db, filter: ConflictFilter): Promise<bigint> {
  const result = await db.query({
    name: "count_usage_conflicts",
    text: `select count(*)::text as total from usage_event_conflicts where ($1::text is null or principal = $1) and ($2::text is null or customer_id = $2)`,
    values: [filter.principal, filter.customerId],
  });
  return BigInt(result.rows[0].total as string);
}

/** deleteExpiredConflicts forgets conflicts older than the retention window, as their ids are forgotten. Any transaction. */
export async function deleteExpiredConflicts(db: Db, before: Date, limit: number): Promise<number> {
  const result = await db.query({
    name: "delete_expired_conflicts",
    text: `delete from usage_event_conflicts where conflict_id in (select conflict_id from usage_event_conflicts where received_at <= $1 limit $2)`,
    values: [before, limit],
  });
  return result.rowCount ?? 0;
}
