// Webhooks in PostgreSQL: endpoints, the outbox (webhook_events) and deliveries (one per
// event and subscribed endpoint). Events are queued by the transaction of the change that
// causes them (enqueueWebhookEvents here, or the write path's own statement for
// grant.created, balance-writer.ts), and only when an enabled endpoint subscribes.
import type { Db, Tx } from "./database.js";

/** WebhookEndpointRow is an endpoint without its secret. */
export interface WebhookEndpointRow {
  endpointId: string;
  url: string;
  eventTypes: string[];
  description: string;
  createdAt: Date;
  disabledAt: Date | null;
  secretAt: Date;
}

/** WebhookDeliveryRow is one event's delivery to one endpoint. */
export interface WebhookDeliveryRow {
  endpointId: string;
  status: "pending" | "delivered" | "failed";
  attempts: number;
  lastHttpStatus: number;
  lastError: string;
  nextAttemptAt: Date;
  deliveredAt: Date | null;
}

/** WebhookEventRow is an outbox event with its deliveries. */
export interface WebhookEventRow {
  seq: bigint;
  eventId: string;
  type: string;
  customerId: string;
  payload: unknown;
  createdAt: Date;
  deliveries: WebhookDeliveryRow[];
}

/** ClaimedDelivery is an attempt a worker owns until its lease ends: what to send, where, and with which secret. */
export interface ClaimedDelivery {
  eventId: string;
  endpointId: string;
  /** this attempt's number (1 for the first): the fence of its result. */
  attempt: number;
  type: string;
  customerId: string;
  payload: unknown;
  createdAt: Date;
  url: string;
  secret: string;
}

const endpointColumns = `endpoint_id as "endpointId", url, event_types as "eventTypes", description, created_at as "createdAt",
  disabled_at as "disabledAt", secret_at as "secretAt"`;

/** subscribes is the SQL test that endpoint `ep` is enabled and receives events of type `type`. */
const subscribes = (type: string) => `ep.disabled_at is null and (cardinality(ep.event_types) = 0 or ${type} = any(ep.event_types))`;

const endpointCountLockKey = 0x77656268; // "webh"

/**
 * lockEndpointCount takes the transaction-scoped lock that serializes endpoint creation,
 * so the bound on enabled endpoints holds under concurrency, and counts the enabled ones.
 */
export async function lockEndpointCount(tx: Tx): Promise<number> {
  await tx.query("select pg_advisory_xact_lock($1)", [endpointCountLockKey]);
  const result = await tx.query<{ count: number }>("select count(*)::int as count from webhook_endpoints where disabled_at is null");
  return result.rows[0].count;
}

/** insertEndpoint stores a new endpoint and its secret. Any transaction; hold lockEndpointCount. */
export async function insertEndpoint(
  tx: Tx,
  row: { endpointId: string; url: string; eventTypes: string[]; description: string; secret: string; createdBy: string },
): Promise<WebhookEndpointRow> {
  const result = await tx.query<WebhookEndpointRow>(
    `insert into webhook_endpoints (endpoint_id, url, event_types, description, secret, created_by)
     values ($1, $2, $3, $4, $5, $6) returning ${endpointColumns}`,
    [row.endpointId, row.url, row.eventTypes, row.description, row.secret, row.createdBy],
  );
  return result.rows[0];
}

/** selectEndpoints reads every endpoint, newest first (at most webhookEndpointsMax are enabled). No lock. */
export async function selectEndpoints(db: Db, limit: number): Promise<WebhookEndpointRow[]> {
  const result = await db.query<WebhookEndpointRow>(`select ${endpointColumns} from webhook_endpoints order by created_at desc, endpoint_id limit $1`, [limit]);
  return result.rows;
}

/** lockEndpoint reads one endpoint and locks its row (FOR UPDATE) until the transaction ends; null when none. */
export async function lockEndpoint(tx: Tx, endpointId: string): Promise<WebhookEndpointRow | null> {
  const result = await tx.query<WebhookEndpointRow>(`select ${endpointColumns} from webhook_endpoints where endpoint_id = $1 for update`, [endpointId]);
  return result.rows[0] ?? null;
}

/** disableEndpoint disables an enabled endpoint, as of now(). Hold its lock (lockEndpoint). */
export async function disableEndpoint(tx: Tx, endpointId: string): Promise<WebhookEndpointRow> {
  const result = await tx.query<WebhookEndpointRow>(
    `update webhook_endpoints set disabled_at = now() where endpoint_id = $1 and disabled_at is null returning ${endpointColumns}`,
    [endpointId],
  );
  if (result.rows.length !== 1) throw new Error("assertion failed: disableEndpoint disables one enabled endpoint");
  return result.rows[0];
}

/** updateSecret replaces an enabled endpoint's secret. Hold its lock (lockEndpoint). */
export async function updateSecret(tx: Tx, endpointId: string, secret: string): Promise<WebhookEndpointRow> {
  const result = await tx.query<WebhookEndpointRow>(
    `update webhook_endpoints set secret = $2, secret_at = now() where endpoint_id = $1 and disabled_at is null returning ${endpointColumns}`,
    [endpointId, secret],
  );
  if (result.rows.length !== 1) throw new Error("assertion failed: updateSecret updates one enabled endpoint");
  return result.rows[0];
}

/**
 * enqueueWebhookEvents writes events of one type to the outbox, with a delivery for every
 * enabled endpoint subscribed to it, in one statement: call it in the transaction of the
 * change that causes them, so they commit (or roll back) with it. Writes nothing when no
 * endpoint subscribes. Returns how many events it queued.
 */
export async function enqueueWebhookEvents(tx: Tx, type: string, events: { customerId: string; payload: unknown }[]): Promise<number> {
  if (events.length === 0) return 0;
  const result = await tx.query<{ queued: number }>({
    name: "enqueue_webhook_events",
    text: `with e as (
             insert into webhook_events (type, customer_id, payload)
             select $1, v.customer_id, v.payload from unnest($2::text[], $3::jsonb[]) with ordinality as v(customer_id, payload, position)
             where exists (select 1 from webhook_endpoints ep where ${subscribes("$1")})
             order by v.position
             returning event_id),
           d as (
             insert into webhook_deliveries (event_id, endpoint_id)
             select e.event_id, ep.endpoint_id from e join webhook_endpoints ep on ${subscribes("$1")}
             returning 1)
           select (select count(*) from e)::int as queued, (select count(*) from d)::int as deliveries`,
    values: [type, events.map((event) => event.customerId), events.map((event) => JSON.stringify(event.payload))],
  });
  return result.rows[0].queued;
}

/**
 * selectEvents reads a page of outbox events, newest first, before a seq (null: the
 * newest), each with its deliveries (only the endpoint's, and only events queued for it,
 * when endpointId is set). No lock.
 */
export async function selectEvents(db: Db, page: { endpointId: string | null; beforeSeq: bigint | null; limit: number }): Promise<WebhookEventRow[]> {
  const result = await db.query(
    `select e.seq::text as seq, e.event_id as "eventId", e.type, e.customer_id as "customerId", e.payload, e.created_at as "createdAt",
       coalesce((select json_agg(json_build_object('endpointId', d.endpoint_id, 'status', d.status, 'attempts', d.attempts,
           'lastHttpStatus', d.last_http_status, 'lastError', d.last_error, 'nextAttemptAt', d.next_attempt_at, 'deliveredAt', d.delivered_at)
           order by d.endpoint_id)
         from webhook_deliveries d where d.event_id = e.event_id and ($1::uuid is null or d.endpoint_id = $1)), '[]') as deliveries
     from webhook_events e
     where ($2::bigint is null or e.seq < $2)
       and ($1::uuid is null or exists (select 1 from webhook_deliveries d where d.event_id = e.event_id and d.endpoint_id = $1))
     order by e.seq desc limit $3`,
    [page.endpointId, page.beforeSeq?.toString() ?? null, page.limit],
  );
  return result.rows.map((row) => ({
    ...row,
    seq: BigInt(row.seq),
    deliveries: (row.deliveries as Record<string, unknown>[]).map((d) => ({
      ...(d as unknown as WebhookDeliveryRow),
      nextAttemptAt: new Date(d.nextAttemptAt as string),
      deliveredAt: d.deliveredAt === null ? null : new Date(d.deliveredAt as string),
    })),
  }));
}

/** selectMissingEvents returns which of the event ids no event has. No lock. */
export async function selectMissingEvents(db: Db, eventIds: string[]): Promise<string[]> {
  const result = await db.query<{ id: string }>(
    "select v.id from unnest($1::uuid[]) as v(id) where not exists (select 1 from webhook_events e where e.event_id = v.id)",
    [eventIds],
  );
  return result.rows.map((row) => row.id);
}

/**
 * requeueDeliveries makes deliveries of events to an endpoint due now with a fresh count of
 * attempts, creating those that did not exist: the events named, or (eventIds null) the
 * failed ones created since `since`, oldest first, up to limit. Returns how many. Locks
 * the deliveries it changes; hold the endpoint's lock (lockEndpoint).
 */
export async function requeueDeliveries(tx: Tx, replay: { endpointId: string; eventIds: string[] | null; since: Date | null; limit: number }): Promise<number> {
  const result = await tx.query<{ count: number }>(
    `with chosen as (
       select e.event_id from webhook_events e
       where ($2::uuid[] is not null and e.event_id = any($2::uuid[]))
          or ($2::uuid[] is null and e.created_at >= $3
              and exists (select 1 from webhook_deliveries d where d.event_id = e.event_id and d.endpoint_id = $1 and d.status = 'failed'))
       order by e.seq limit $4),
     upserted as (
       insert into webhook_deliveries (event_id, endpoint_id)
       select event_id, $1 from chosen
       on conflict (event_id, endpoint_id) do update
         set status = 'pending', attempts = 0, next_attempt_at = now(), delivered_at = null, last_error = '', last_http_status = 0
       returning 1)
     select count(*)::int as count from upserted`,
    [replay.endpointId, replay.eventIds, replay.since, replay.limit],
  );
  return result.rows[0].count;
}

/**
 * claimDueDeliveries takes up to limit deliveries due at `now` to enabled endpoints,
 * skipping rows another worker has locked (FOR UPDATE SKIP LOCKED), counts the attempt
 * and moves next_attempt_at to leaseUntil, all in one statement (its own transaction), so
 * no other worker takes them while this one sends. Returns what to send.
 */
export async function claimDueDeliveries(db: Db, claim: { now: Date; leaseUntil: Date; limit: number }): Promise<ClaimedDelivery[]> {
  if (claim.limit <= 0) return [];
  const result = await db.query<ClaimedDelivery>({
    name: "claim_due_webhook_deliveries",
    text: `with due as (
             select d.event_id, d.endpoint_id from webhook_deliveries d
             join webhook_endpoints ep on ep.endpoint_id = d.endpoint_id and ep.disabled_at is null
             where d.status = 'pending' and d.next_attempt_at <= $1
             order by d.next_attempt_at limit $3
             for update of d skip locked),
           claimed as (
             update webhook_deliveries d set attempts = d.attempts + 1, next_attempt_at = $2, last_attempt_at = now()
             from due where d.event_id = due.event_id and d.endpoint_id = due.endpoint_id
             returning d.event_id, d.endpoint_id, d.attempts)
           select c.event_id as "eventId", c.endpoint_id as "endpointId", c.attempts as attempt, e.type, e.customer_id as "customerId",
             e.payload, e.created_at as "createdAt", ep.url, ep.secret
           from claimed c join webhook_events e on e.event_id = c.event_id join webhook_endpoints ep on ep.endpoint_id = c.endpoint_id`,
    values: [claim.now, claim.leaseUntil, claim.limit],
  });
  return result.rows;
}

/**
 * recordAttempt records the result of a claimed attempt: delivered, due again at
 * nextAttemptAt, or failed for good (nextAttemptAt null). Fenced by the attempt number:
 * a result that comes after its lease ended and another attempt began changes nothing.
 * Returns whether it was recorded. Its own transaction.
 */
export async function recordAttempt(
  db: Db,
  result: { eventId: string; endpointId: string; attempt: number; delivered: boolean; httpStatus: number; error: string; nextAttemptAt: Date | null },
): Promise<boolean> {
  const status = result.delivered ? "delivered" : result.nextAttemptAt === null ? "failed" : "pending";
  const updated = await db.query({
    name: "record_webhook_attempt",
    text: `update webhook_deliveries set status = $4, last_http_status = $5, last_error = $6,
             delivered_at = case when $4 = 'delivered' then now() end, next_attempt_at = coalesce($7, next_attempt_at)
           where event_id = $1 and endpoint_id = $2 and attempts = $3 and status = 'pending'`,
    values: [result.eventId, result.endpointId, result.attempt, status, result.httpStatus, result.error, result.nextAttemptAt],
  });
  return updated.rowCount === 1;
}

/** ExpiringLot is a lot announced by a credits.expiring event: its free credits and when they expire. */
export interface ExpiringLot {
  customerId: string;
  grantId: string;
  creditTypeId: string;
  source: string;
  /** remaining - held: what expires unless used first. */
  amount: bigint;
  /** RFC 3339 with microseconds, as grant.created's expireTime. */
  expireTime: string;
}

/**
 * claimExpiringLots takes up to `limit` lots with free credits that expire after `now` and
 * no later than `until`, and not announced before, and records their announcement (the
 * notice's primary key makes it once per lot: a replica's transaction that loses the race
 * waits for the other's and claims nothing). Call in the transaction that queues their
 * events. Nothing is claimed when no enabled endpoint subscribes to credits.expiring, so
 * lots are announced to the endpoints that exist when they come due.
 */
export async function claimExpiringLots(tx: Tx, window: { now: Date; until: Date; limit: number }): Promise<ExpiringLot[]> {
  const result = await tx.query<{ customerId: string; grantId: string; creditTypeId: string; source: string; amount: string; expireTime: string }>({
    name: "claim_expiring_lots",
    text: `with due as (
             select g.customer_id, g.grant_id, g.credit_type_id, g.source, g.remaining - g.held as amount, g.expires_at
             from grants g
             where not g.exhausted and g.expires_at > $1 and g.expires_at <= $2 and g.remaining > g.held
               and not exists (select 1 from lot_expiry_notices n where n.grant_id = g.grant_id)
               and exists (select 1 from webhook_endpoints ep where ${subscribes("'credits.expiring'")})
             order by g.expires_at, g.grant_id
             limit $3),
           claimed as (
             insert into lot_expiry_notices (grant_id, customer_id, expires_at)
             select grant_id, customer_id, expires_at from due
             on conflict do nothing
             returning grant_id)
           select due.customer_id as "customerId", due.grant_id as "grantId", due.credit_type_id as "creditTypeId", due.source,
             due.amount::text as amount, to_char(due.expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as "expireTime"
           from due join claimed using (grant_id)
           order by due.expires_at, due.grant_id`,
    values: [window.now, window.until, window.limit],
  });
  return result.rows.map((row) => ({ ...row, amount: BigInt(row.amount) }));
}
