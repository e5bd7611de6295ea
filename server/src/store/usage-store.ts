// Usage events: dedup claims, the events as received and rated, and the shadow ledger.
import type { Db, Tx } from "./database.js";

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

/**
 * claimEventIds claims (principal, event id) pairs; returns the ids that were new. Claims
 * are taken in event-id order so that concurrent batches sharing ids cannot deadlock; a
 * claim held by an open transaction waits for it. Any transaction.
 */
export async function claimEventIds(tx: Tx, principal: string, eventIds: string[], receivedAt: Date): Promise<Set<string>> {
  if (eventIds.length === 0) return new Set();
  const result = await tx.query({
    name: "claim_event_ids",
    text: `insert into usage_event_ids (principal, event_id, received_at)
           select $1, id, $3 from unnest($2::text[]) as id order by id
           on conflict do nothing returning event_id`,
    values: [principal, eventIds, receivedAt],
  });
  return new Set(result.rows.map((row) => row.event_id as string));
}

const n = (value: bigint | null) => (value === null ? null : value.toString());

/** insertUsageEvents stores events in one statement; returns their usage ids in order. Any transaction. */
export async function insertUsageEvents(tx: Tx, rows: UsageRow[]): Promise<string[]> {
  if (rows.length === 0) return [];
  const result = await tx.query({
    name: "insert_usage_events",
    text: `insert into usage_events (principal, event_id, customer_id, feature_key, quantity, event_at, properties, status, reason,
             credit_type_id, pricing_version_id, rate_override, rate_credits, rate_per_units, carry_before, carry_after, credits, over_limit, rated_at, offline)
           select e.principal, e.event_id, e.customer_id, e.feature_key, e.quantity, e.event_at, e.properties, e.status, e.reason,
             e.credit_type_id, e.pricing_version_id, e.rate_override, e.rate_credits, e.rate_per_units, e.carry_before, e.carry_after,
             e.credits, e.over_limit, case when e.status = 'unrated' then null else now() end, e.offline
           from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[], $7::jsonb[], $8::text[], $9::text[],
             $10::text[], $11::text[], $12::boolean[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[], $18::boolean[],
             $19::boolean[])
             with ordinality as e(principal, event_id, customer_id, feature_key, quantity, event_at, properties, status, reason,
               credit_type_id, pricing_version_id, rate_override, rate_credits, rate_per_units, carry_before, carry_after, credits, over_limit,
               offline, position)
           order by e.position
           returning usage_id`,
    values: [
      rows.map((r) => r.principal), rows.map((r) => r.eventId), rows.map((r) => r.customerId), rows.map((r) => r.featureKey),
      rows.map((r) => r.quantity.toString()), rows.map((r) => r.eventAt), rows.map((r) => JSON.stringify(r.properties)),
      rows.map((r) => r.status), rows.map((r) => r.reason), rows.map((r) => r.creditTypeId), rows.map((r) => r.pricingVersionId),
      rows.map((r) => r.rateOverride), rows.map((r) => n(r.rateCredits)), rows.map((r) => n(r.ratePerUnits)),
      rows.map((r) => n(r.carryBefore)), rows.map((r) => n(r.carryAfter)), rows.map((r) => n(r.credits)), rows.map((r) => r.overLimit),
      rows.map((r) => r.offline),
    ],
  });
  if (result.rows.length !== rows.length) throw new Error("assertion failed: every usage event is inserted");
  // Identity values follow insertion order, which follows ordinality.
  return result.rows.map((row) => String(row.usage_id)).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
}

/** rateUnratedEvent records the rating of a replayed event; false when it was no longer unrated. Expects the balance row locked. */
export async function rateUnratedEvent(tx: Tx, usageId: string, row: UsageRow): Promise<boolean> {
  const result = await tx.query({
    name: "rate_unrated_event",
    text: `update usage_events set status = $2, reason = $3, credit_type_id = $4, pricing_version_id = $5, rate_override = $6,
             rate_credits = $7, rate_per_units = $8, carry_before = $9, carry_after = $10, credits = $11, over_limit = $12, rated_at = now()
           where usage_id = $1 and status = 'unrated'`,
    values: [usageId, row.status, row.reason, row.creditTypeId, row.pricingVersionId, row.rateOverride, n(row.rateCredits), n(row.ratePerUnits),
      n(row.carryBefore), n(row.carryAfter), n(row.credits), row.overLimit],
  });
  return result.rowCount === 1;
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

/** selectUsageByEventId reads the events a reporter (or any, when principal is null) sent with an id. No locks. */
export async function selectUsageByEventId(db: Db, eventId: string, principal: string | null): Promise<StoredUsage[]> {
  const result = await db.query({
    name: "select_usage_by_event_id",
    text: `select ${usageColumns} from usage_events where event_id = $1 and ($2::text is null or principal = $2) order by usage_id desc limit 10`,
    values: [eventId, principal],
  });
  return result.rows.map(toStoredUsage);
}

/** insertShadowEntries records what enforce would have burned. Any transaction. */
export async function insertShadowEntries(
  tx: Tx,
  entries: { customerId: string; creditTypeId: string; featureKey: string; usageId: string; credits: bigint; effectiveAt: Date }[],
): Promise<void> {
  if (entries.length === 0) return;
  await tx.query({
    name: "insert_shadow_entries",
    text: `insert into shadow_entries (customer_id, credit_type_id, feature_key, usage_id, credits, effective_at)
           select * from unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::timestamptz[])`,
    values: [
      entries.map((e) => e.customerId), entries.map((e) => e.creditTypeId), entries.map((e) => e.featureKey),
      entries.map((e) => e.usageId), entries.map((e) => e.credits.toString()), entries.map((e) => e.effectiveAt),
    ],
  });
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
