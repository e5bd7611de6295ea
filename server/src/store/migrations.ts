// The schema, as ordered migrations. Applied on start under an advisory lock, so that
// several replicas starting together migrate once. A migration is never edited after
// release; changes are new migrations.
import type pg from "pg";
import { grantAppPrivileges } from "./privileges.js";

/** Migration is one schema step. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** migrations lists every schema step in order. */
export const migrations: Migration[] = [
  {
    version: 1,
    name: "ledger core",
    sql: `
create table credit_types (
  credit_type_id text primary key,
  display_name text not null,
  scale int not null check (scale between 0 and 12),
  created_at timestamptz not null default now()
);

create table features (
  feature_key text primary key,
  display_name text not null,
  credit_type_id text not null references credit_types,
  burn_rate bigint not null check (burn_rate > 0),
  created_at timestamptz not null default now()
);

create table customers (
  customer_id text primary key,
  display_name text not null default '',
  created_at timestamptz not null default now()
);

create table api_keys (
  key_id text primary key,
  name text not null,
  role text not null check (role in ('service', 'support', 'admin')),
  secret_hash bytea not null,
  grant_limit bigint not null default 0 check (grant_limit >= 0),
  created_at timestamptz not null default now(),
  expires_at timestamptz,
  revoked_at timestamptz
);

-- The projection of one balance. Every hot-path transaction locks this row first.
create table balances (
  customer_id text not null references customers,
  credit_type_id text not null references credit_types,
  granted bigint not null default 0 check (granted >= 0),
  held bigint not null default 0 check (held >= 0),
  burned bigint not null default 0 check (burned >= 0),
  expired bigint not null default 0 check (expired >= 0),
  debt bigint not null default 0 check (debt >= 0),
  overdraft_held bigint not null default 0,
  overdraft_limit bigint not null default 0 check (overdraft_limit >= 0),
  updated_at timestamptz not null default now(),
  primary key (customer_id, credit_type_id),
  constraint balances_overdraft_held_bounds check (overdraft_held >= 0 and overdraft_held <= held),
  -- What is drawn on the overdraft never exceeds the limit; with free lot credits never
  -- negative, this keeps available >= -overdraft_limit through any later expiry.
  constraint balances_overdraft_within_limit check (debt + overdraft_held <= overdraft_limit)
);

-- One row per grant (lot). Never deleted; remaining only falls.
create table grants (
  customer_id text not null,
  grant_id uuid not null unique,
  credit_type_id text not null,
  seq bigint generated always as identity,
  source text not null,
  amount bigint not null check (amount > 0),
  remaining bigint not null check (remaining >= 0 and remaining <= amount),
  held bigint not null default 0 check (held >= 0 and held <= remaining),
  priority int not null default 0,
  effective_at timestamptz not null,
  expires_at timestamptz,
  cost_basis_micros bigint not null default 0 check (cost_basis_micros >= 0),
  reason_code text not null,
  note text not null default '',
  request_id text not null,
  actor text not null,
  created_at timestamptz not null default now(),
  primary key (customer_id, grant_id),
  foreign key (customer_id, credit_type_id) references balances,
  check (expires_at is null or expires_at > effective_at)
);
-- Lots with free credits, in burn order: what a decision loads.
create index grants_free on grants (customer_id, credit_type_id, priority, expires_at, effective_at, seq)
  where remaining > held;
-- Lots whose free part must expire: what the expiry job scans.
create index grants_due on grants (expires_at) where remaining > held and expires_at is not null;

create table reservations (
  customer_id text not null,
  reservation_id uuid not null unique,
  credit_type_id text not null,
  feature_key text,
  amount bigint not null check (amount > 0),
  -- [{"grantId": uuid|null, "amount": "123"}] in the order they were drawn.
  holds jsonb not null,
  status text not null check (status in ('held', 'committed', 'released', 'expired')),
  committed_amount bigint not null default 0 check (committed_amount >= 0),
  expires_at timestamptz not null,
  created_at timestamptz not null default now(),
  resolved_at timestamptz,
  request_id text not null,
  actor text not null,
  primary key (customer_id, reservation_id),
  foreign key (customer_id, credit_type_id) references balances,
  check ((status = 'held') = (resolved_at is null))
);
create index reservations_due on reservations (expires_at) where status = 'held';

-- The ledger. Append-only: the triggers below refuse every UPDATE, DELETE and TRUNCATE.
create table ledger_entries (
  customer_id text not null,
  entry_id bigint generated always as identity,
  credit_type_id text not null,
  kind text not null check (kind in ('grant', 'hold', 'release', 'burn', 'expire', 'settle')),
  amount bigint not null check (amount > 0),
  grant_id uuid,
  reservation_id uuid,
  request_id text,
  actor text not null,
  reason_code text not null default '',
  effective_at timestamptz not null,
  recorded_at timestamptz not null default now(),
  primary key (customer_id, entry_id),
  foreign key (customer_id, credit_type_id) references balances
);

create function ledger_entries_are_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'ledger entries are append-only: % refused', tg_op
    using errcode = 'insufficient_privilege';
end
$$;
create trigger ledger_entries_no_update_delete before update or delete on ledger_entries
  for each row execute function ledger_entries_are_append_only();
create trigger ledger_entries_no_truncate before truncate on ledger_entries
  for each statement execute function ledger_entries_are_append_only();

-- Idempotency: the first successful response per (principal, request id). The row is
-- inserted in the same transaction as the effect; the primary key is the real guard.
create table idempotency_keys (
  principal text not null,
  request_id text not null,
  method text not null,
  payload_hash bytea not null,
  response bytea not null,
  created_at timestamptz not null default now(),
  primary key (principal, request_id)
);
`,
  },
  {
    version: 2,
    name: "usage, pricing versions, enforcement",
    sql: `
alter table features add column enforcement_mode text not null default 'enforce'
  check (enforcement_mode in ('enforce', 'observe', 'off'));

-- Pricing versions are immutable once created: the triggers refuse UPDATE and DELETE.
create table pricing_versions (
  pricing_version_id text primary key,
  display_name text not null,
  seq bigint generated always as identity,
  created_by text not null,
  created_at timestamptz not null default now(),
  -- The transaction that published the version: the only one that may add its rates.
  created_txid bigint not null default txid_current()
);
create table pricing_rates (
  pricing_version_id text not null references pricing_versions,
  feature_key text not null references features,
  credits bigint not null check (credits >= 0),
  per_units bigint not null check (per_units > 0),
  primary key (pricing_version_id, feature_key)
);
create function pricing_is_immutable() returns trigger language plpgsql as $$
begin
  raise exception 'pricing versions are immutable: % refused', tg_op using errcode = 'insufficient_privilege';
end
$$;
create trigger pricing_versions_immutable before update or delete on pricing_versions
  for each row execute function pricing_is_immutable();
create trigger pricing_rates_immutable before update or delete on pricing_rates
  for each row execute function pricing_is_immutable();
create trigger pricing_versions_no_truncate before truncate on pricing_versions
  for each statement execute function pricing_is_immutable();
create trigger pricing_rates_no_truncate before truncate on pricing_rates
  for each statement execute function pricing_is_immutable();
create function pricing_rates_only_with_their_version() returns trigger language plpgsql as $$
begin
  if (select created_txid from pricing_versions where pricing_version_id = new.pricing_version_id) is distinct from txid_current() then
    raise exception 'pricing version % is published: its rates cannot change', new.pricing_version_id
      using errcode = 'insufficient_privilege';
  end if;
  return new;
end
$$;
create trigger pricing_rates_insert_with_version before insert on pricing_rates
  for each row execute function pricing_rates_only_with_their_version();

alter table customers add column pricing_version_id text references pricing_versions;

create table rate_overrides (
  customer_id text not null references customers,
  feature_key text not null references features,
  credits bigint not null check (credits >= 0),
  per_units bigint not null check (per_units > 0),
  primary key (customer_id, feature_key)
);

-- Deployment-wide settings: default_pricing_version_id, kill_switch ('on'/'off').
create table settings (
  key text primary key,
  value text not null,
  updated_at timestamptz not null default now()
);

-- Who did what administrative action, when and why; written in the action's transaction.
create table audit_log (
  audit_id bigint generated always as identity primary key,
  actor text not null,
  action text not null,
  target text not null,
  reason text not null,
  details jsonb not null default '{}',
  created_at timestamptz not null default now()
);

-- Usage events as received, rated or not. Dedup is usage_event_ids (pruned after the
-- retention window); the events themselves are kept for explanations.
create table usage_event_ids (
  principal text not null,
  event_id text not null,
  received_at timestamptz not null default now(),
  primary key (principal, event_id)
);
create index usage_event_ids_received on usage_event_ids (received_at);

create table usage_events (
  usage_id bigint generated always as identity primary key,
  principal text not null,
  event_id text not null,
  customer_id text not null,
  feature_key text not null,
  quantity bigint not null check (quantity > 0),
  event_at timestamptz not null,
  received_at timestamptz not null default now(),
  properties jsonb not null default '{}',
  status text not null check (status in ('burned', 'shadowed', 'not_billed', 'unrated')),
  reason text not null default '',
  credit_type_id text,
  pricing_version_id text,
  rate_override boolean not null default false,
  rate_credits bigint,
  rate_per_units bigint,
  carry_before bigint,
  carry_after bigint,
  credits bigint,
  over_limit boolean not null default false,
  rated_at timestamptz
);
create index usage_events_by_event_id on usage_events (event_id, principal);
create index usage_events_unrated on usage_events (usage_id) where status = 'unrated';
create index usage_events_over_limit on usage_events (customer_id, credit_type_id) where over_limit;

-- Carried remainders of fractional rates, per customer and feature (see Rate in usage.proto).
create table usage_carries (
  customer_id text not null,
  feature_key text not null,
  per_units bigint not null check (per_units > 0),
  carry bigint not null check (carry >= 0 and carry < per_units),
  primary key (customer_id, feature_key)
);

-- What enforce would have burned for features in observe mode. Append-only.
create table shadow_entries (
  customer_id text not null,
  shadow_id bigint generated always as identity,
  credit_type_id text not null,
  feature_key text not null,
  usage_id bigint not null references usage_events,
  credits bigint not null check (credits >= 0),
  effective_at timestamptz not null,
  recorded_at timestamptz not null default now(),
  primary key (customer_id, shadow_id)
);
create trigger shadow_entries_no_update_delete before update or delete on shadow_entries
  for each row execute function ledger_entries_are_append_only();

create table usage_corrections (
  usage_id bigint primary key references usage_events,
  actor text not null,
  reason_code text not null,
  note text not null default '',
  credits bigint not null check (credits >= 0),
  request_id text not null,
  created_at timestamptz not null default now()
);

alter table ledger_entries add column usage_id bigint;
create index ledger_entries_usage on ledger_entries (usage_id) where usage_id is not null;
alter table ledger_entries drop constraint ledger_entries_kind_check;
alter table ledger_entries add constraint ledger_entries_kind_check
  check (kind in ('grant', 'hold', 'release', 'burn', 'expire', 'settle', 'refund'));

-- Usage that happened is recorded even past the overdraft limit (asynchronous
-- enforcement), so the limit is no longer a database check on debt: the synchronous
-- paths enforce it, and balances taken past it by usage are flagged on the events.
alter table balances drop constraint balances_overdraft_within_limit;
alter table balances add constraint balances_overdraft_held_within_limit check (overdraft_held <= overdraft_limit);
`,
  },
  {
    version: 3,
    name: "failure policies and offline usage",
    sql: `
-- What SDKs do for a feature while the ledger is unreachable; 0 budgets do not apply.
alter table features
  add column failure_policy text not null default 'fail_closed' check (failure_policy in ('fail_open', 'fail_closed')),
  add column offline_credits_max bigint not null default 0 check (offline_credits_max >= 0),
  add column offline_ms_max bigint not null default 0 check (offline_ms_max >= 0);

-- Usage allowed by an SDK while the ledger was unreachable, replayed from its spool.
alter table usage_events add column offline boolean not null default false;
`,
  },
  {
    version: 4,
    name: "customer-scoped API keys",
    sql: `
-- A customer key reads one customer's own balance, entries and checks, for the vendor's
-- own customers; every other role is bound to no customer.
alter table api_keys drop constraint api_keys_role_check;
alter table api_keys add constraint api_keys_role_check check (role in ('service', 'support', 'admin', 'customer'));
alter table api_keys add column customer_id text references customers (customer_id);
alter table api_keys add constraint api_keys_customer_bound check ((role = 'customer') = (customer_id is not null));
`,
  },
  {
    version: 5,
    name: "a write path whose updates stay HOT",
    sql: `
-- The write path (balance-writer.ts) writes a balance's entries and reservations only while
-- it holds that balance's row lock (lockBalances), so the per-row foreign-key checks on
-- them repeated what the lock guarantees, at about half the cost of each insert. That
-- every entry and reservation belongs to a balance stays checked by the test suite's
-- invariants (test-support/invariants.ts).
alter table ledger_entries drop constraint ledger_entries_customer_id_credit_type_id_fkey;
alter table reservations drop constraint reservations_customer_id_credit_type_id_fkey;

-- A lot's remaining and held change on nearly every hold and burn. Indexes whose predicate
-- named them (remaining > held) made every such update a non-HOT one: a new entry in every
-- index of grants. The open-lot indexes now key on a flag that changes only when a lot is
-- used up (or given back by a correction), so those updates stay on their page (HOT), and
-- the pages keep room for them.
alter table grants add column exhausted boolean generated always as (remaining = 0) stored;
create index grants_open on grants (customer_id, credit_type_id, priority, expires_at, effective_at, seq) where not exhausted;
create index grants_open_due on grants (expires_at) where not exhausted and expires_at is not null;
drop index grants_free;
drop index grants_due;
alter table grants set (fillfactor = 70);
alter table balances set (fillfactor = 70);
`,
  },
  {
    version: 6,
    name: "enforcement on every path, rollouts by cohort",
    sql: `
-- Another enforcement mode for a cohort of a feature's customers: those listed, and a
-- stable percentage of the rest (a hash of the feature key and the customer id).
create table feature_rollouts (
  feature_key text primary key references features,
  mode text not null check (mode in ('enforce', 'observe', 'off')),
  customer_ids text[] not null default '{}',
  percent int not null default 0 check (percent between 0 and 100),
  updated_at timestamptz not null default now()
);

-- The mode a reservation was made under decides its commit: 'enforce' holds and burns,
-- 'observe' and 'off' hold nothing and record their commit in the shadow ledger, and
-- 'forced' (the kill switch, when the balance could not cover it) holds nothing and
-- burns at commit even past the overdraft limit.
alter table reservations add column mode text not null default 'enforce'
  check (mode in ('enforce', 'observe', 'off', 'forced'));

-- Burns written under the kill switch past the balance's overdraft limit are flagged.
alter table ledger_entries add column over_limit boolean not null default false;

-- The shadow ledger also records reservations' commits and burns of features in
-- observe mode (what enforce would have burned) and in off mode (used, not billed).
alter table shadow_entries alter column usage_id drop not null;
alter table shadow_entries add column mode text not null default 'observe' check (mode in ('observe', 'off'));
alter table shadow_entries add column reservation_id uuid;
alter table shadow_entries add column request_id text;
alter table shadow_entries add constraint shadow_entries_cause check (usage_id is not null or request_id is not null);
`,
  },
  {
    version: 7,
    name: "a reused usage event id with another body is kept for investigation",
    sql: `
-- A fingerprint of the event claimed under an id (customer, feature, quantity, event time
-- as sent, properties): the same id sent again with the same fingerprint is a duplicate,
-- with another it is a producer reusing ids. Null for claims made before it was kept.
alter table usage_event_ids add column payload_hash bytea;

-- Events refused because their id was already taken by another event: kept, as received,
-- for the producer's team to investigate, for as long as the id itself is remembered.
create table usage_event_conflicts (
  conflict_id bigint generated always as identity primary key,
  principal text not null,
  event_id text not null,
  customer_id text not null,
  feature_key text not null,
  quantity bigint not null,
  event_at timestamptz,
  properties jsonb not null default '{}',
  offline boolean not null default false,
  received_at timestamptz not null default now()
);
create index usage_event_conflicts_received on usage_event_conflicts (received_at);
create index usage_event_conflicts_customer on usage_event_conflicts (customer_id, conflict_id);
create index usage_event_conflicts_principal on usage_event_conflicts (principal, conflict_id);
`,
  },
  {
    version: 8,
    name: "lots that become effective later settle debt when they do",
    sql: `
-- A lot granted to take effect later is due for the expiry job when it does: a balance in
-- debt then settles from it at once, not at the customer's next call (or never, if the lot
-- expires first). The job clears the flag under the balance's lock.
alter table grants add column activation_due boolean not null default false;
update grants set activation_due = true where effective_at > now() and not exhausted;
create index grants_activation_due on grants (effective_at) where activation_due;
`,
  },
  {
    version: 9,
    name: "usage events by period",
    sql: `
-- Reports over a period of usage (the shadow pricing report) read the events whose
-- event_at falls in it. Events arrive close to their event time (a late one at most the
-- late cutoff after it), so the table's physical order follows event_at and a BRIN index
-- (a min and max per range of pages) lets such a scan skip the rest of the table. A BRIN
-- index is nearly free on the insert path, unlike a B-tree: usage ingestion, the hot
-- write, stays as fast as it was. Building it reads the table once (inserts wait for
-- that read only). A range of pages filled since the last summary has no min and max yet,
-- so every scan reads it (500k events never summarized: a day's report read all 9k pages
-- of the table; summarized, 387). autosummarize has autovacuum summarize each range as
-- soon as inserts move on to the next one, instead of at the table's next vacuum.
create index usage_events_event_at on usage_events using brin (event_at) with (autosummarize = on);
`,
  },
  {
    version: 10,
    name: "late usage is priced and burned as it happened",
    sql: `
-- What expired from each lot (less what late usage took back), so that a usage event
-- reported late can burn credits of a lot that was live at its event time and has
-- expired since: that part of the expiry is reversed by an 'unexpire' entry linked to the
-- event. Lots with expired credits are found by customer and expiry time.
alter table grants add column expired bigint not null default 0 check (expired >= 0);
update grants g set expired = e.expired
from (select grant_id, sum(amount) as expired from ledger_entries where kind = 'expire' group by grant_id) e
where g.grant_id = e.grant_id;
create index grants_expired_lots on grants (customer_id, credit_type_id, expires_at) where expired > 0;
alter table ledger_entries drop constraint ledger_entries_kind_check;
alter table ledger_entries add constraint ledger_entries_kind_check
  check (kind in ('grant', 'hold', 'release', 'burn', 'expire', 'settle', 'refund', 'unexpire'));

-- Pins and rate overrides keep their history, so that an event is rated at what was in
-- force for its customer at its event time. Each row is one change, with what it
-- replaced: the pin or override in force at a time t is the "from" of the first change
-- after t, or the current one when there is none. pricing_changed_at is the customer's
-- last change: events after it need no history.
create table customer_pricing_changes (
  change_id bigint generated always as identity primary key,
  customer_id text not null references customers,
  from_pricing_version_id text references pricing_versions,
  to_pricing_version_id text references pricing_versions,
  effective_at timestamptz not null
);
create index customer_pricing_changes_by_time on customer_pricing_changes (customer_id, effective_at, change_id);
create table rate_override_changes (
  change_id bigint generated always as identity primary key,
  customer_id text not null references customers,
  feature_key text not null references features,
  -- the override replaced; null: there was none.
  from_credits bigint,
  from_per_units bigint,
  -- the override set; null: removed.
  to_credits bigint,
  to_per_units bigint,
  effective_at timestamptz not null
);
create index rate_override_changes_by_time on rate_override_changes (customer_id, feature_key, effective_at, change_id);
alter table customers add column pricing_changed_at timestamptz;
create function pricing_history_is_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'pricing history is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end
$$;
create trigger customer_pricing_changes_append_only before update or delete on customer_pricing_changes
  for each statement execute function pricing_history_is_append_only();
create trigger rate_override_changes_append_only before update or delete on rate_override_changes
  for each statement execute function pricing_history_is_append_only();
create trigger customer_pricing_changes_no_truncate before truncate on customer_pricing_changes
  for each statement execute function pricing_history_is_append_only();
create trigger rate_override_changes_no_truncate before truncate on rate_override_changes
  for each statement execute function pricing_history_is_append_only();
`,
  },
  {
    version: 11,
    name: "bundles and top-up orders",
    sql: `
-- The catalog of credit bundles. A bundle is versioned: each change is a new row with the
-- next version, and a version never changes, so an order made from it keeps its terms.
create table bundles (
  bundle_id text not null,
  version int not null check (version > 0),
  display_name text not null,
  credit_type_id text not null references credit_types,
  credits bigint not null check (credits > 0),
  bonus_credits bigint not null check (bonus_credits >= 0),
  currency text not null check (currency ~ '^[A-Z]{3}$'),
  price_minor bigint not null check (price_minor > 0),
  -- how long the credited lot lasts from payment; null: never expires.
  credit_expiry_seconds bigint check (credit_expiry_seconds > 0),
  created_by text not null,
  created_at timestamptz not null default now(),
  primary key (bundle_id, version)
);
create trigger bundles_append_only before update or delete on bundles
  for each statement execute function pricing_history_is_append_only();

-- Top-up orders: pending, then paid (credited once, in the transaction that marks it paid)
-- or cancelled; a paid order may be refunded in part, then in full. A payment reference
-- pays one order only.
create table topup_orders (
  order_id uuid primary key,
  customer_id text not null,
  state text not null check (state in ('pending', 'paid', 'cancelled', 'partially_refunded', 'refunded')),
  bundle_id text,
  bundle_version int,
  credit_type_id text not null references credit_types,
  credits bigint not null check (credits > 0),
  currency text not null check (currency ~ '^[A-Z]{3}$'),
  price_minor bigint not null check (price_minor > 0),
  credit_expiry_seconds bigint check (credit_expiry_seconds > 0),
  payment_reference text unique,
  grant_id uuid,
  refunded_minor bigint not null default 0 check (refunded_minor >= 0 and refunded_minor <= price_minor),
  clawed_back_credits bigint not null default 0 check (clawed_back_credits >= 0),
  debt_credits bigint not null default 0 check (debt_credits >= 0),
  created_by text not null,
  created_at timestamptz not null default now(),
  paid_at timestamptz,
  foreign key (bundle_id, bundle_version) references bundles,
  check ((bundle_id is null) = (bundle_version is null)),
  check ((state in ('pending', 'cancelled')) = (payment_reference is null)),
  check ((payment_reference is null) = (grant_id is null) and (grant_id is null) = (paid_at is null)),
  check (clawed_back_credits + debt_credits <= credits),
  check ((state = 'refunded') = (refunded_minor = price_minor and payment_reference is not null)),
  check ((state = 'partially_refunded') = (refunded_minor > 0 and refunded_minor < price_minor))
);
create index topup_orders_by_customer on topup_orders (customer_id, created_at desc, order_id desc);

-- Each refund (or chargeback) of an order once: a refund reference is recorded with its order.
create table topup_refunds (
  order_id uuid not null references topup_orders,
  payment_reference text not null,
  amount_minor bigint not null check (amount_minor > 0),
  reason_code text not null,
  credits_from_lot bigint not null check (credits_from_lot >= 0),
  credits_as_debt bigint not null check (credits_as_debt >= 0),
  actor text not null,
  created_at timestamptz not null default now(),
  primary key (order_id, payment_reference)
);

alter table ledger_entries drop constraint ledger_entries_kind_check;
alter table ledger_entries add constraint ledger_entries_kind_check
  check (kind in ('grant', 'hold', 'release', 'burn', 'expire', 'settle', 'refund', 'unexpire', 'clawback'));
`,
  },
  {
    version: 12,
    name: "webhooks: endpoints, a transactional outbox and deliveries",
    sql: `
-- Where events are sent. The secret signs every request (HMAC-SHA256), so it is kept as
-- is, not hashed; the API shows it once. Disabled endpoints are kept for the history.
create table webhook_endpoints (
  endpoint_id uuid primary key,
  url text not null,
  -- Empty: every event type.
  event_types text[] not null default '{}',
  description text not null default '',
  secret text not null,
  secret_at timestamptz not null default now(),
  created_by text not null,
  created_at timestamptz not null default now(),
  disabled_at timestamptz
);

-- The outbox: written in the transaction of the change that causes the event, and only
-- when an enabled endpoint subscribes to its type. Append-only (the server may not
-- update or delete it).
create table webhook_events (
  event_id uuid primary key default gen_random_uuid(),
  seq bigint generated always as identity unique,
  type text not null,
  customer_id text not null default '',
  payload jsonb not null,
  created_at timestamptz not null default now()
);

-- One event's delivery to one endpoint. next_attempt_at is also the lease of an attempt
-- in flight: the worker pushes it past the request's timeout when it claims the row, so
-- another replica takes it only if this one never recorded the result.
create table webhook_deliveries (
  event_id uuid not null references webhook_events,
  endpoint_id uuid not null references webhook_endpoints,
  status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
  attempts int not null default 0 check (attempts >= 0),
  next_attempt_at timestamptz not null default now(),
  last_attempt_at timestamptz,
  last_http_status int not null default 0,
  last_error text not null default '',
  delivered_at timestamptz,
  primary key (event_id, endpoint_id),
  check ((status = 'delivered') = (delivered_at is not null))
);
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_by_endpoint on webhook_deliveries (endpoint_id, status);
`,
  },
  {
    version: 17,
    name: "credits.expiring notices: each lot announced once",
    sql: `
-- A lot announced by a credits.expiring webhook event: the primary key makes the
-- announcement once per lot, whichever replica's job sends it first. Append-only.
create table lot_expiry_notices (
  grant_id uuid primary key,
  customer_id text not null,
  expires_at timestamptz not null,
  noticed_at timestamptz not null default now()
);
`,
  },
  {
    version: 15,
    name: "promo codes",
    sql: `
-- Promo codes: each gives a lot of promotional credits to a customer who redeems it, once
-- per customer, at most max_redemptions times in all. Codes are matched in any case.
create table promo_codes (
  promo_code_id uuid primary key,
  code text not null check (code ~ '^[A-Za-z0-9_-]{3,64}$'),
  credit_type_id text not null references credit_types,
  amount bigint not null check (amount > 0),
  -- the lot's expiry: a fixed time, or a lifetime from redemption; exactly one.
  credit_expires_at timestamptz,
  credit_validity_seconds bigint check (credit_validity_seconds > 0),
  priority int not null default 0,
  valid_until timestamptz,
  -- null: no limit. redemption_count rises with each redemption, in its transaction.
  max_redemptions bigint check (max_redemptions > 0),
  redemption_count bigint not null default 0 check (redemption_count >= 0 and (max_redemptions is null or redemption_count <= max_redemptions)),
  description text not null default '',
  created_by text not null,
  created_at timestamptz not null default now(),
  disabled_at timestamptz,
  check ((credit_expires_at is null) <> (credit_validity_seconds is null))
);
create unique index promo_codes_code_key on promo_codes (lower(code));
create index promo_codes_by_time on promo_codes (created_at desc, promo_code_id desc);

-- One row per customer that redeemed a code: the primary key is what makes a redemption
-- happen once per customer. Written with the lot it names, in one transaction. Append-only.
create table promo_redemptions (
  promo_code_id uuid not null references promo_codes,
  customer_id text not null,
  grant_id uuid not null,
  request_id text not null,
  actor text not null,
  created_at timestamptz not null default now(),
  primary key (promo_code_id, customer_id),
  foreign key (customer_id, grant_id) references grants (customer_id, grant_id)
);
create trigger promo_redemptions_append_only before update or delete on promo_redemptions
  for each statement execute function pricing_history_is_append_only();
`,
  },
  {
    version: 14,
    name: "plans, subscriptions, grant schedules granted once per period, rollover entries",
    sql: `
-- Versioned plans: a version never changes (subscribers keep theirs until moved). Their
-- allotments are kept as JSON (amounts as strings); each subscription copies them into
-- its own grant schedules.
create table plans (
  plan_id text not null,
  version int not null check (version > 0),
  display_name text not null,
  allotments jsonb not null,
  bundle_ids text[] not null default '{}',
  pricing_version_id text references pricing_versions,
  created_by text not null,
  created_at timestamptz not null default now(),
  primary key (plan_id, version)
);

create table plan_subscriptions (
  subscription_id uuid primary key,
  customer_id text not null references customers,
  plan_id text not null,
  plan_version int not null,
  state text not null default 'active' check (state in ('active', 'cancelled', 'moved')),
  start_at timestamptz not null,
  period_count int check (period_count > 0),
  ended_at timestamptz,
  moved_to uuid,
  created_by text not null,
  created_at timestamptz not null default now(),
  foreign key (plan_id, plan_version) references plans,
  check ((state = 'active') = (ended_at is null)),
  check ((state = 'moved') = (moved_to is not null))
);
create index plan_subscriptions_by_customer on plan_subscriptions (customer_id, created_at desc);

-- A recurring grant. next_period and next_due_at only say where the job is; the rows of
-- schedule_grants, unique per (schedule, period) and written in the transaction of the
-- period's lot, are what makes each period granted once.
create table grant_schedules (
  schedule_id uuid primary key,
  customer_id text not null references customers,
  subscription_id uuid references plan_subscriptions,
  credit_type_id text not null references credit_types,
  amount bigint not null check (amount > 0),
  period_unit text not null check (period_unit in ('day', 'month', 'year')),
  period_length int not null check (period_length > 0),
  lot_expiry text not null check (lot_expiry in ('period_end', 'lifetime', 'never')),
  lot_lifetime_seconds bigint check (lot_lifetime_seconds > 0),
  rollover_max_amount bigint check (rollover_max_amount > 0),
  rollover_max_percent int check (rollover_max_percent between 1 and 100),
  source text not null,
  reason_code text not null,
  start_at timestamptz not null,
  period_count int check (period_count > 0),
  ended_at timestamptz,
  next_period int not null default 1 check (next_period > 0),
  next_due_at timestamptz,
  created_by text not null,
  created_at timestamptz not null default now(),
  check ((lot_expiry = 'lifetime') = (lot_lifetime_seconds is not null)),
  check (rollover_max_amount is null or rollover_max_percent is null),
  check ((rollover_max_amount is null and rollover_max_percent is null) or lot_expiry = 'period_end')
);
create index grant_schedules_by_customer on grant_schedules (customer_id, created_at desc);
create index grant_schedules_due on grant_schedules (next_due_at) where next_due_at is not null;

-- One row per granted period: the guard of exactly once. Append-only.
create table schedule_grants (
  schedule_id uuid not null references grant_schedules,
  period_index int not null check (period_index > 0),
  customer_id text not null,
  grant_id uuid not null,
  period_start timestamptz not null,
  period_end timestamptz not null,
  created_at timestamptz not null default now(),
  primary key (schedule_id, period_index)
);

-- A period's lot rolled into the next period's rollover lot; written with that period's
-- grant. Append-only.
create table schedule_rollovers (
  schedule_id uuid not null references grant_schedules,
  period_index int not null check (period_index > 0),
  customer_id text not null,
  from_grant_id uuid not null,
  to_grant_id uuid,
  amount bigint not null check (amount >= 0),
  created_at timestamptz not null default now(),
  primary key (schedule_id, period_index),
  check ((amount > 0) = (to_grant_id is not null))
);
create index schedule_rollovers_by_customer on schedule_rollovers (customer_id, created_at desc);
create trigger plans_append_only before update or delete on plans
  for each statement execute function pricing_history_is_append_only();
create trigger schedule_grants_append_only before update or delete on schedule_grants
  for each statement execute function pricing_history_is_append_only();
create trigger schedule_rollovers_append_only before update or delete on schedule_rollovers
  for each statement execute function pricing_history_is_append_only();

alter table ledger_entries drop constraint ledger_entries_kind_check;
alter table ledger_entries add constraint ledger_entries_kind_check
  check (kind in ('grant', 'hold', 'release', 'burn', 'expire', 'settle', 'refund', 'unexpire', 'clawback', 'rollover_out', 'rollover_in'));
`,
  },
  {
    version: 13,
    name: "auto-recharge and the balance-low alert",
    sql: `
-- A customer's auto-recharge and balance-low alert for one credit type. Recharge: when
-- available falls below threshold, one recharge order is opened for the bundle (its
-- latest version when bundle_version is null) or the plain amount; at most
-- monthly_recharges_max orders a calendar month (UTC; 0: no cap). Alert: when available
-- falls below low_threshold, one balance.low event per crossing.
create table recharge_settings (
  customer_id text not null references customers,
  credit_type_id text not null references credit_types,
  enabled boolean not null default false,
  threshold bigint check (threshold > 0),
  bundle_id text,
  bundle_version int check (bundle_version > 0),
  credits bigint check (credits > 0),
  currency text check (currency ~ '^[A-Z]{3}$'),
  price_minor bigint check (price_minor > 0),
  monthly_recharges_max int not null default 0 check (monthly_recharges_max >= 0),
  low_threshold bigint check (low_threshold > 0),
  -- credit the order's lot when it opens; the payment then credits nothing more.
  credit_on_creation boolean not null default false,
  -- why auto-recharge was turned off by the server (failed payments), '' otherwise.
  disabled_reason text not null default '',
  -- the month (its first day, UTC) whose cap was reported: once a month, not per crossing.
  cap_reported_month date,
  updated_by text not null,
  updated_at timestamptz not null default now(),
  primary key (customer_id, credit_type_id),
  check (bundle_id is null or credits is null),
  check ((credits is null) = (currency is null) and (credits is null) = (price_minor is null)),
  check (bundle_version is null or bundle_id is not null),
  check (not enabled or (threshold is not null and (bundle_id is not null or credits is not null)))
);

-- The thresholds, copied onto the balance row the write path locks and reads anyway: a
-- change compares available with them only when one is set (null on every balance
-- without auto-recharge or an alert).
alter table balances add column recharge_threshold bigint, add column low_threshold bigint;

-- Balances whose available fell below their recharge threshold, flagged by the write
-- path's statement in the transaction of the change; the recharge job opens the order
-- and deletes the flag in one transaction (claimed with SKIP LOCKED).
create table recharge_due (
  customer_id text not null,
  credit_type_id text not null,
  available bigint not null,
  flagged_at timestamptz not null default now(),
  primary key (customer_id, credit_type_id)
);

-- Orders opened by auto-recharge are top-up orders with origin 'recharge'. attempt is the
-- payment attempt asked for (recharge.requested); after a failed payment the order stays
-- pending until retry_at, then asks again, until the retries run out (state 'failed').
alter table topup_orders add column origin text not null default 'api' check (origin in ('api', 'recharge'));
alter table topup_orders add column attempt int not null default 1 check (attempt >= 1);
alter table topup_orders add column payment_failures int not null default 0 check (payment_failures >= 0);
alter table topup_orders add column retry_at timestamptz;
alter table topup_orders add column failure_reason text not null default '';
-- An order credited when it opened (credit on creation) has its lot before its payment;
-- unpaid_credits is what it credited and is not paid for yet. A final failure claws back
-- what is left of the lot and turns what was burned into debt, as a refund does.
alter table topup_orders add column credit_on_creation boolean not null default false;
alter table topup_orders add column unpaid_credits bigint not null default 0 check (unpaid_credits >= 0 and unpaid_credits <= credits);
do $$
declare name text;
begin
  select conname into strict name from pg_constraint
  where conrelid = 'topup_orders'::regclass and contype = 'c' and pg_get_constraintdef(oid) like '%grant_id IS NULL%paid_at IS NULL%';
  execute format('alter table topup_orders drop constraint %I', name);
end $$;
alter table topup_orders add constraint topup_orders_paid_has_lot
  check ((payment_reference is null) = (paid_at is null) and (payment_reference is null or grant_id is not null));
alter table topup_orders add constraint topup_orders_lot_before_payment_only_on_creation
  check (grant_id is null or payment_reference is not null or credit_on_creation);
alter table topup_orders drop constraint topup_orders_state_check;
alter table topup_orders add constraint topup_orders_state_check
  check (state in ('pending', 'paid', 'cancelled', 'partially_refunded', 'refunded', 'failed'));
do $$
declare name text;
begin
  select conname into strict name from pg_constraint
  where conrelid = 'topup_orders'::regclass and contype = 'c' and pg_get_constraintdef(oid) like '%''cancelled''%payment_reference IS NULL%';
  execute format('alter table topup_orders drop constraint %I', name);
end $$;
alter table topup_orders add constraint topup_orders_unpaid_has_no_reference
  check ((state in ('pending', 'cancelled', 'failed')) = (payment_reference is null));
-- The database's guard of "one open recharge per balance", whatever the replicas do.
create unique index topup_orders_one_open_recharge on topup_orders (customer_id, credit_type_id) where origin = 'recharge' and state = 'pending';
create index topup_orders_recharge_retry on topup_orders (retry_at) where retry_at is not null;
create index topup_orders_recharges_by_month on topup_orders (customer_id, credit_type_id, created_at) where origin = 'recharge';
`,
  },
  {
    version: 16,
    name: "pooled credits: members burn from their pool owner's balance",
    sql: `
-- A pool member (a child customer) spends its pool owner's (the parent's) balances. One
-- pool per member, one level deep: a parent is never itself a member. Changing a
-- membership or a limit also writes the balance rows of both customers, under their
-- locks, so that a write group that read the old membership sees its balances changed
-- and reads it again.
create table pool_members (
  member_customer_id text primary key references customers,
  parent_customer_id text not null references customers,
  created_by text not null,
  created_at timestamptz not null default now(),
  check (member_customer_id <> parent_customer_id)
);
create index pool_members_by_parent on pool_members (parent_customer_id);

-- A member's optional limit per credit type, per calendar period (UTC).
create table pool_member_limits (
  member_customer_id text not null references pool_members on delete cascade,
  credit_type_id text not null references credit_types,
  limit_amount bigint not null check (limit_amount >= 0),
  period text not null check (period in ('month', 'day')),
  primary key (member_customer_id, credit_type_id)
);

-- What a member used of its pool in the current period (burned, plus held by its open
-- reservations): one row per (parent, member, credit type), written only under the lock
-- of the parent's balance of that credit type, so siblings never overrun a limit. A row
-- of an earlier period counts as zero; the next change starts the period over.
create table pool_usage (
  parent_customer_id text not null,
  member_customer_id text not null,
  credit_type_id text not null,
  period_start timestamptz not null,
  used bigint not null check (used >= 0),
  primary key (parent_customer_id, member_customer_id, credit_type_id)
);

-- The member on whose behalf a pool owner's balance changed; null for the owner's own.
alter table ledger_entries add column member_customer_id text;
create index ledger_entries_by_member on ledger_entries (customer_id, member_customer_id, entry_id) where member_customer_id is not null;
alter table reservations add column member_customer_id text;
`,
  },
  {
    version: 18,
    name: "support: grant limits per role and key, sources per role, reason codes, grant requests",
    sql: `
-- The most a role's keys, or one key, may grant of a credit type ('' for every credit
-- type, each apart): per call, and in all over a rolling period. Only support keys are
-- limited; the most specific limit applies (support/resolve-grant-limit.ts).
create table grant_limits (
  subject_kind text not null check (subject_kind in ('role', 'key')),
  subject text not null,
  credit_type_id text not null default '',
  per_call_max bigint not null check (per_call_max > 0),
  period_max bigint not null check (period_max > 0),
  period_seconds integer not null check (period_seconds between 3600 and 31536000),
  updated_at timestamptz not null default now(),
  primary key (subject_kind, subject, credit_type_id)
);
-- A fresh deployment's support keys are limited, never unlimited.
insert into grant_limits (subject_kind, subject, credit_type_id, per_call_max, period_max, period_seconds)
  values ('role', 'support', '', 100000, 1000000, 86400);

-- The sources a restricted role may grant with (support only, for now).
create table grant_sources (
  role text primary key,
  sources text[] not null check (cardinality(sources) > 0 and not (sources && array['purchase', 'recharge'])),
  updated_at timestamptz not null default now()
);
insert into grant_sources (role, sources) values ('support', array['support', 'promotion']);

-- The reason codes support grants and grant requests are filed under. Seeded from
-- BURNDOWN_GRANT_REASON_CODES by the first server start that finds it empty.
create table reason_codes (
  code text primary key,
  label text not null,
  description text not null default '',
  disabled_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- One row per (limited key, credit type): locked by each of its grants, so that the
-- period sum is read and added to by one grant at a time.
create table support_grant_tallies (
  key_id text not null,
  credit_type_id text not null,
  primary key (key_id, credit_type_id)
);
-- What limited keys granted, for the period sums: written in the grant's transaction.
create table support_grants (
  key_id text not null,
  credit_type_id text not null,
  granted_at timestamptz not null,
  amount bigint not null check (amount > 0),
  grant_id uuid not null unique,
  customer_id text not null,
  reason_code text not null,
  ticket_url text not null default '',
  primary key (key_id, credit_type_id, granted_at, grant_id)
);

-- Grants asked for above the asker's limit, waiting for another person's decision. A
-- pending request past expires_at is expired (computed, never written).
create table grant_requests (
  grant_request_id uuid primary key,
  requester_key_id text not null,
  customer_id text not null,
  credit_type_id text not null,
  amount bigint not null check (amount > 0),
  source text not null,
  reason_code text not null,
  note text not null default '',
  ticket_url text not null default '',
  priority integer not null default 0,
  effective_at timestamptz,
  lot_expires_at timestamptz,
  cost_basis_micros bigint not null default 0,
  status text not null check (status in ('pending', 'approved', 'rejected')),
  created_at timestamptz not null,
  expires_at timestamptz not null,
  decider_key_id text,
  decided_at timestamptz,
  decision_reason text not null default '',
  grant_id uuid,
  check ((status = 'pending') = (decided_at is null)),
  check ((status = 'approved') = (grant_id is not null))
);
create index grant_requests_newest on grant_requests (created_at desc, grant_request_id);
create index grant_requests_by_requester on grant_requests (requester_key_id, created_at desc);
create index grant_requests_by_customer on grant_requests (customer_id, created_at desc);
`,
  },
  {
    version: 19,
    name: "voids, refunds of charges and disputes",
    sql: `
-- A void takes back the unused credits of a lot: granted -= amount, the lot's remaining too.
alter table ledger_entries drop constraint ledger_entries_kind_check;
alter table ledger_entries add constraint ledger_entries_kind_check
  check (kind in ('grant', 'hold', 'release', 'burn', 'expire', 'settle', 'refund', 'unexpire', 'clawback', 'rollover_out', 'rollover_in', 'void'));

-- One refund of a charge (a Burn by request id, a committed reservation, a usage event).
-- Written only under the lock of the charge's balance, so the refunds of one charge are
-- read and added one at a time: their sum never exceeds what the charge burned. parts
-- says where each part went: [{"fromGrantId": uuid|null, "toGrantId": uuid|null, "amount": "12"}],
-- toGrantId the lot it burned from, a new lot, or null (off the debt). Append-only.
create table charge_refunds (
  customer_id text not null references customers,
  refund_id uuid not null unique,
  credit_type_id text not null,
  charge_kind text not null check (charge_kind in ('burn', 'commit', 'usage')),
  charge_ref text not null,
  amount bigint not null check (amount > 0),
  charged bigint not null check (charged > 0),
  refunded_total bigint not null check (refunded_total <= charged),
  parts jsonb not null,
  reason_code text not null,
  note text not null default '',
  actor text not null,
  request_id text not null,
  dispute_id uuid,
  created_at timestamptz not null default now(),
  primary key (customer_id, refund_id),
  unique (customer_id, charge_kind, charge_ref, refunded_total)
);

-- A customer's claim about its ledger lines, and its handling by support.
create table disputes (
  customer_id text not null references customers,
  dispute_id uuid not null unique,
  seq bigint generated always as identity,
  status text not null check (status in ('open', 'investigating', 'resolved_refunded', 'rejected')),
  entry_ids bigint[] not null,
  description text not null,
  opened_by text not null,
  owner text,
  opened_at timestamptz not null,
  first_response_due_at timestamptz not null,
  first_response_at timestamptz,
  resolution_due_at timestamptz not null,
  resolved_at timestamptz,
  resolved_by text,
  reject_reason text not null default '',
  primary key (customer_id, dispute_id),
  check ((status in ('resolved_refunded', 'rejected')) = (resolved_at is not null))
);
create index disputes_queue on disputes (seq) where resolved_at is null;

-- A dispute's notes: append-only.
create table dispute_notes (
  dispute_id uuid not null references disputes (dispute_id),
  note_id bigint generated always as identity primary key,
  author text not null,
  text text not null,
  created_at timestamptz not null default now()
);
create index dispute_notes_by_dispute on dispute_notes (dispute_id, note_id);
`,
  },
  {
    version: 20,
    name: "pending voids: a voided lot's held part waits for its reservations",
    sql: `
-- When the whole lot was voided (VoidGrant of all of it); null: never. From then on the lot
-- is not live (nothing new burns or holds from it) and what its reservations give back is
-- voided in the transaction that gives it back. Set once, never cleared; read with the lot
-- by the write path (one more column of the lot read, null for nearly every lot).
alter table grants add column voided_at timestamptz;
`,
  },
  {
    version: 21,
    name: "finance keys: the finance reports and nothing else",
    sql: `
-- A finance key reads the revenue reports (FinanceService) and nothing else; like every
-- role but customer, it is bound to no customer.
alter table api_keys drop constraint api_keys_role_check;
alter table api_keys add constraint api_keys_role_check check (role in ('service', 'support', 'admin', 'customer', 'finance'));
`,
  },
  {
    version: 22,
    name: "audit records carry the request id of the call that made them",
    sql: `
-- The request id of the call that wrote the record (its log line's requestId, its answer's
-- x-request-id), so support can go from a record to the call's log line and trace and back.
-- Null for records written outside a call (jobs, the usage queue, the Stripe webhook) and
-- for those written before. Adding a nullable column without a default rewrites nothing.
-- The app role's table-wide "select, insert" (privileges.ts) covers it; records stay
-- insert-only for that role.
alter table audit_log add column request_id text;
-- ListAuditRecords by request id: an index scan of the few records of one call. Partial, so
-- the records of jobs cost the index nothing.
create index audit_log_by_request_id on audit_log (request_id, audit_id) where request_id is not null;
`,
  },
  {
    version: 23,
    name: "overdraft limit changes found by customer, for balances as of a past time",
    sql: `
-- GetBalance as of a time reads the overdraft limit of that time from the audit records of
-- its changes (set_overdraft_limit, written in the change's transaction): the old limit of
-- the first change after it, or today's when none came since. Partial: only those records.
create index audit_log_overdraft_changes on audit_log (target, audit_id) where action = 'set_overdraft_limit';
`,
  },
];

const migrationLockKey = 0x6275726e; // "burn"

/**
 * migrate applies every migration not yet applied, once, under an advisory lock, then
 * grants the server's role its privileges (privileges.ts). A user that is not the owner
 * (a server connected as the app role) can run it when nothing is left to apply.
 */
export async function migrate(pool: pg.Pool): Promise<number[]> {
  const client = await pool.connect();
  try {
    await client.query("begin");
    await client.query("select pg_advisory_xact_lock($1)", [migrationLockKey]);
    const table = await client.query<{ exists: boolean }>("select to_regclass('schema_migrations') is not null as exists");
    if (!table.rows[0].exists) {
      await client.query("create table schema_migrations (version int primary key, name text not null, applied_at timestamptz not null default now())");
    }
    const applied = await client.query<{ version: number }>("select version from schema_migrations");
    const done = new Set(applied.rows.map((row) => row.version));
    const appliedNow: number[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query("insert into schema_migrations (version, name) values ($1, $2)", [migration.version, migration.name]);
      appliedNow.push(migration.version);
    }
    await grantAppPrivileges(client);
    await client.query("commit");
    return appliedNow;
  } catch (error) {
    await client.query("rollback").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
