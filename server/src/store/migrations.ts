// The schema, as ordered migrations. Applied on start under an advisory lock, so that
// several replicas starting together migrate once. A migration is never edited after
// release; changes are new migrations.
import type pg from "pg";

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
  overdraft_held bigint not null default 0 check (overdraft_held >= 0 and overdraft_held <= held),
  overdraft_limit bigint not null default 0 check (overdraft_limit >= 0),
  updated_at timestamptz not null default now(),
  primary key (customer_id, credit_type_id),
  -- What is drawn on the overdraft never exceeds the limit; with free lot credits never
  -- negative, this keeps available >= -overdraft_limit through any later expiry.
  check (debt + overdraft_held <= overdraft_limit)
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
];

const migrationLockKey = 0x6275726e; // "burn"

/** migrate applies every migration not yet applied, once, under an advisory lock. */
export async function migrate(pool: pg.Pool): Promise<number[]> {
  const client = await pool.connect();
  try {
    await client.query("begin");
    await client.query("select pg_advisory_xact_lock($1)", [migrationLockKey]);
    await client.query(
      "create table if not exists schema_migrations (version int primary key, name text not null, applied_at timestamptz not null default now())",
    );
    const applied = await client.query<{ version: number }>("select version from schema_migrations");
    const done = new Set(applied.rows.map((row) => row.version));
    const appliedNow: number[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query("insert into schema_migrations (version, name) values ($1, $2)", [migration.version, migration.name]);
      appliedNow.push(migration.version);
    }
    await client.query("commit");
    return appliedNow;
  } catch (error) {
    await client.query("rollback").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
