// What a group of balance changes reads before it takes any lock, and the rows it creates
// before it locks. Both are one statement whatever the group's size. Nothing read here is
// trusted beyond what cannot change under a lock: a reservation's balance and holds are
// fixed when it is made (its status is read again after the lock), pricing versions are
// immutable, and existence only ever grows.
import type { BalanceKey } from "./balance-store.js";
import { balanceKeyOf } from "./balance-store.js";
import type { Db, Tx } from "./database.js";
import { rateQuery, type RateRow, toRateRow } from "./rate-store.js";
import { reservationColumns, type ReservationRow, toReservationRow } from "./reservation-store.js";

/** WriteInputsRequest names what to read. */
export interface WriteInputsRequest {
  reservationIds: readonly string[];
  /** (customer, feature) pairs to price, now or (at) as of a usage event's time. */
  rates: readonly { customerId: string; featureKey: string; at?: Date }[];
  customerIds: readonly string[];
  creditTypeIds: readonly string[];
  featureKeys: readonly string[];
  /** lots of each (customer, feature's credit type) that have expired credits and expired after since: what late usage may take back. */
  expiredLots: readonly { customerId: string; featureKey: string; since: Date }[];
}

/** WriteInputs are what was read; absent ids do not exist. */
export interface WriteInputs {
  reservations: Map<string, ReservationRow>;
  /** the rate now, keyed by balanceKeyOf(customer id, feature key). */
  rates: Map<string, RateRow>;
  /** the rate at a past time where it differs from now's, keyed by rateAtKey. */
  ratesAt: Map<string, RateRow>;
  customers: Set<string>;
  creditTypes: Set<string>;
  features: Set<string>;
  /** the lots expiredLots asked for. */
  expiredLots: { customerId: string; grantId: string }[];
  /** the group's guess of which customers spend a pool owner's balance (service/pool-cache.ts); checked under the locks. */
  poolParents: PoolParents;
}

/** PoolParents is a guess of each pool member's owner (undefined: not a member). */
export interface PoolParents {
  parentOf(customerId: string): string | undefined;
}

const noPoolGuess: PoolParents = { parentOf: () => undefined };

/** emptyWriteInputs is the answer when nothing needs reading. */
export function emptyWriteInputs(): WriteInputs {
  return { reservations: new Map(), rates: new Map(), ratesAt: new Map(), customers: new Set(), creditTypes: new Set(), features: new Set(), expiredLots: [], poolParents: noPoolGuess };
}

const rateAtKey = (customerId: string, featureKey: string, atMs: number) => `${balanceKeyOf(customerId, featureKey)}@${atMs}`;

/**
 * rateAt is a customer's rate for a feature at a time (null: now): the one in force then,
 * if the customer's pricing changed since; undefined when the customer or feature does
 * not exist. The time must have been requested (WriteInputsRequest.rates).
 */
export function rateAt(inputs: WriteInputs, customerId: string, featureKey: string, at: Date | null): RateRow | undefined {
  const now = inputs.rates.get(balanceKeyOf(customerId, featureKey));
  if (now === undefined || at === null || now.changedAtMs === null || at.getTime() >= now.changedAtMs) return now;
  const then = inputs.ratesAt.get(rateAtKey(customerId, featureKey, at.getTime()));
  if (then === undefined) throw new Error(`assertion failed: the rate of ${customerId}/${featureKey} at ${at.toISOString()} was read`);
  return then;
}

/**
 * selectWriteInputs reads reservations, rates, which customers, credit types and features
 * exist, and recently expired lots, in one statement; and, only when a customer's pricing
 * changed after a usage event's time, the rates in force then in a second. No locks.
 */
export async function selectWriteInputs(db: Db, request: WriteInputsRequest): Promise<WriteInputs> {
  const pairs = new Map<string, { customerId: string; featureKey: string }>();
  for (const { customerId, featureKey } of request.rates) pairs.set(balanceKeyOf(customerId, featureKey), { customerId, featureKey });
  const result = await db.query({
    name: "select_write_inputs",
    text: `select
             (select coalesce(jsonb_agg(jsonb_build_object('reservation_id', reservation_id, 'customer_id', customer_id,
                'credit_type_id', credit_type_id, 'feature_key', feature_key, 'amount', amount::text, 'holds', holds, 'status', status,
                'committed_amount', committed_amount::text, 'expires_at_ms', (extract(epoch from expires_at) * 1000)::bigint::text, 'mode', mode,
                'member_customer_id', member_customer_id)), '[]')
              from (select ${reservationColumns} from reservations where reservation_id = any($1::uuid[])) r) as reservations,
             (select coalesce(jsonb_agg(to_jsonb(x)), '[]') from (${rateQuery("$2", "$3")}) x) as rates,
             (select coalesce(jsonb_agg(customer_id), '[]') from customers where customer_id = any($4::text[])) as customers,
             (select coalesce(jsonb_agg(credit_type_id), '[]') from credit_types where credit_type_id = any($5::text[])) as credit_types,
             (select coalesce(jsonb_agg(feature_key), '[]') from features where feature_key = any($6::text[])) as features,
             (select coalesce(jsonb_agg(distinct jsonb_build_array(g.customer_id, g.grant_id)), '[]')
              from unnest($7::text[], $8::text[], $9::timestamptz[]) as v(customer_id, feature_key, since)
              join features f on f.feature_key = v.feature_key
              join grants g on g.customer_id = v.customer_id and g.credit_type_id = f.credit_type_id and g.expired > 0 and g.expires_at > v.since)
              as expired_lots`,
    values: [
      request.reservationIds,
      [...pairs.values()].map((pair) => pair.customerId),
      [...pairs.values()].map((pair) => pair.featureKey),
      request.customerIds,
      request.creditTypeIds,
      request.featureKeys,
      request.expiredLots.map((lots) => lots.customerId),
      request.expiredLots.map((lots) => lots.featureKey),
      request.expiredLots.map((lots) => lots.since),
    ],
  });
  const row = result.rows[0];
  const reservations = (row.reservations as Record<string, unknown>[]).map((json) =>
    toReservationRow({ ...json, expires_at: new Date(Number(json.expires_at_ms as string)) }),
  );
  const rates = new Map((row.rates as Record<string, string | null>[]).map(toRateRow).map((rate) => [balanceKeyOf(rate.customerId, rate.featureKey), rate]));
  return {
    reservations: new Map(reservations.map((reservation) => [reservation.reservationId, reservation])),
    rates,
    ratesAt: await selectRatesThen(db, request, rates),
    customers: new Set(row.customers as string[]),
    creditTypes: new Set(row.credit_types as string[]),
    features: new Set(row.features as string[]),
    expiredLots: (row.expired_lots as [string, string][]).map(([customerId, grantId]) => ({ customerId, grantId })),
    poolParents: noPoolGuess,
  };
}

/** selectRatesThen reads the rates in force at the requested times that are before their customer's last pricing change. */
async function selectRatesThen(db: Db, request: WriteInputsRequest, now: Map<string, RateRow>): Promise<Map<string, RateRow>> {
  const wanted = new Map<string, { customerId: string; featureKey: string; at: Date }>();
  for (const { customerId, featureKey, at } of request.rates) {
    const changedAtMs = now.get(balanceKeyOf(customerId, featureKey))?.changedAtMs ?? null;
    if (at === undefined || changedAtMs === null || at.getTime() >= changedAtMs) continue;
    wanted.set(rateAtKey(customerId, featureKey, at.getTime()), { customerId, featureKey, at });
  }
  const ratesAt = new Map<string, RateRow>();
  if (wanted.size === 0) return ratesAt;
  const asked = [...wanted.values()];
  const result = await db.query({
    name: "select_rates_then",
    text: rateQuery("$1", "$2", "$3"),
    values: [asked.map((x) => x.customerId), asked.map((x) => x.featureKey), asked.map((x) => x.at)],
  });
  for (const row of result.rows) {
    const { customerId, featureKey, at } = asked[Number(row.n) - 1];
    ratesAt.set(rateAtKey(customerId, featureKey, at.getTime()), toRateRow(row));
  }
  return ratesAt;
}

/** EventClaim is a usage event id to claim, with the fingerprint of the event sent under it (eventHashLength bytes). */
export interface EventClaim {
  principal: string;
  eventId: string;
  hash: Buffer;
}

/** eventHashLength is the length of a usage event's fingerprint. */
export const eventHashLength = 16;

/** MissingRows are rows a group creates before it locks: customers, balances and usage event ids. */
export interface MissingRows {
  /** customers to create (granted to for the first time), pinned to the default pricing version. */
  customerIds: readonly string[];
  balances: readonly BalanceKey[];
  /** usage event ids to claim for deduplication. */
  eventIds: readonly EventClaim[];
  receivedAt: Date;
}

/**
 * ClaimedEvents says, keyed by balanceKeyOf(principal, event id), which event ids the group
 * claimed (with the fingerprint it claimed them with) and, for the others, the
 * fingerprint stored with them (null: claimed before fingerprints were kept, or forgotten
 * meanwhile).
 */
export interface ClaimedEvents {
  claimed: Map<string, Buffer>;
  stored: Map<string, Buffer | null>;
}

/**
 * insertMissingRows creates the customers and balances a group needs and claims usage event
 * ids, each in key order (so that concurrent groups wait on each other in one order). A
 * claim held by an open transaction waits for it. Ids already taken are read again by a
 * second statement, whose snapshot sees the claims the first waited for. Before any
 * balance lock, in the group's transaction.
 */
export async function insertMissingRows(tx: Tx, rows: MissingRows): Promise<ClaimedEvents> {
  const result = await tx.query({
    name: "insert_missing_rows",
    text: `with c as (
             insert into customers (customer_id, display_name, pricing_version_id)
             select id, '', (select value from settings where key = 'default_pricing_version_id') from unnest($1::text[]) as id order by id
             on conflict do nothing returning 1),
           b as (
             insert into balances (customer_id, credit_type_id)
             select * from unnest($2::text[], $3::text[]) as k(customer_id, credit_type_id) order by 1, 2
             on conflict do nothing returning 1),
           e as (
             insert into usage_event_ids (principal, event_id, received_at, payload_hash)
             select p, id, $6, substring($7::bytea from (n::int - 1) * ${eventHashLength} + 1 for ${eventHashLength})
             from unnest($4::text[], $5::text[]) with ordinality as x(p, id, n) order by 1, 2
             on conflict do nothing returning principal, event_id)
           select principal, event_id, (select count(*) from c)::int as customers, (select count(*) from b)::int as balances
           from (values (1)) as one(x) left join e on true`,
    values: [
      rows.customerIds,
      rows.balances.map((key) => key.customerId),
      rows.balances.map((key) => key.creditTypeId),
      rows.eventIds.map((id) => id.principal),
      rows.eventIds.map((id) => id.eventId),
      rows.receivedAt,
      Buffer.concat(rows.eventIds.map((id) => id.hash)),
    ],
  });
  const hashes = new Map(rows.eventIds.map((id) => [balanceKeyOf(id.principal, id.eventId), id.hash]));
  const claimed = new Map<string, Buffer>();
  for (const row of result.rows) {
    if (row.event_id === null) continue;
    const key = balanceKeyOf(row.principal, row.event_id);
    claimed.set(key, hashes.get(key) as Buffer);
  }
  const stored = new Map<string, Buffer | null>();
  const taken = rows.eventIds.filter((id) => !claimed.has(balanceKeyOf(id.principal, id.eventId)));
  if (taken.length > 0) {
    const found = await tx.query({
      name: "select_claimed_event_hashes",
      text: `select t.principal, t.event_id, t.payload_hash from usage_event_ids t
             join unnest($1::text[], $2::text[]) as v(principal, event_id) on t.principal = v.principal and t.event_id = v.event_id`,
      values: [taken.map((id) => id.principal), taken.map((id) => id.eventId)],
    });
    for (const id of taken) stored.set(balanceKeyOf(id.principal, id.eventId), null);
    for (const row of found.rows) stored.set(balanceKeyOf(row.principal, row.event_id), row.payload_hash as Buffer | null);
  }
  return { claimed, stored };
}
