// The running server's database privileges. Migrations run as the tables' owner; the
// server itself should not: an owner can ALTER TABLE ... DISABLE TRIGGER and so rewrite
// the append-only ledger. Every migration run grants the role `burndown_app` exactly
// what the server's statements need, and no more: append-only tables get SELECT and
// INSERT only, nothing gets TRUNCATE, REFERENCES or TRIGGER, and DDL needs ownership. A
// login role that is a member of burndown_app (or the embedded cluster's own
// burndown_server) is what the server should connect as.
import type pg from "pg";

/** appRole is the group role granted the server's privileges. */
export const appRole = "burndown_app";

/**
 * appPrivileges: per table, what the server's statements do to it. SELECT ... FOR UPDATE
 * needs UPDATE. A new table must be added here (a test compares this with the schema).
 */
export const appPrivileges: Readonly<Record<string, string>> = {
  schema_migrations: "select",
  credit_types: "select, insert, update",
  features: "select, insert, update",
  customers: "select, insert, update",
  api_keys: "select, insert, update",
  settings: "select, insert, update",
  balances: "select, insert, update",
  grants: "select, insert, update",
  reservations: "select, insert, update",
  idempotency_keys: "select, insert, update",
  rate_overrides: "select, insert, update, delete",
  feature_rollouts: "select, insert, update, delete",
  usage_event_ids: "select, insert, delete",
  usage_events: "select, insert, update",
  usage_carries: "select, insert, update",
  usage_event_conflicts: "select, insert, delete",
  topup_orders: "select, insert, update",
  webhook_endpoints: "select, insert, update",
  webhook_deliveries: "select, insert, update",
  pool_members: "select, insert, update, delete",
  pool_member_limits: "select, insert, update, delete",
  pool_usage: "select, insert, update",
  promo_codes: "select, insert, update",
  plan_subscriptions: "select, insert, update",
  grant_schedules: "select, insert, update",
  recharge_settings: "select, insert, update",
  recharge_due: "select, insert, update, delete",
  disputes: "select, insert, update",
  grant_limits: "select, insert, update, delete",
  grant_sources: "select, insert, update",
  reason_codes: "select, insert, update",
  support_grant_tallies: "select, insert, update",
  support_grants: "select, insert",
  grant_requests: "select, insert, update",
  // Append-only (triggers refuse UPDATE and DELETE too, for the owner's sake).
  ledger_entries: "select, insert",
  shadow_entries: "select, insert",
  audit_log: "select, insert",
  pricing_versions: "select, insert",
  pricing_rates: "select, insert",
  usage_corrections: "select, insert",
  charge_refunds: "select, insert",
  dispute_notes: "select, insert",
  customer_pricing_changes: "select, insert",
  rate_override_changes: "select, insert",
  bundles: "select, insert",
  topup_refunds: "select, insert",
  webhook_events: "select, insert",
  promo_redemptions: "select, insert",
  lot_expiry_notices: "select, insert",
  plans: "select, insert",
  schedule_grants: "select, insert",
  schedule_rollovers: "select, insert",
};

/**
 * grantAppPrivileges creates burndown_app if it is missing and the current user may
 * create roles, then grants it appPrivileges, revoking anything else it held on these
 * tables. It runs inside the migration transaction, as the tables' owner; a user that
 * owns no table (a server connected as the app role) skips it.
 */
export async function grantAppPrivileges(client: Pick<pg.PoolClient, "query">): Promise<"granted" | "not owner" | "no role"> {
  const owner = await client.query<{ owns: boolean }>(
    "select pg_has_role(current_user, tableowner, 'USAGE') as owns from pg_tables where schemaname = current_schema() and tablename = 'ledger_entries'",
  );
  if (owner.rows[0]?.owns !== true) return "not owner";
  // A role is cluster-wide: another database's migration may create it at the same time.
  await client.query(`
    do $$ begin
      if not exists (select 1 from pg_roles where rolname = '${appRole}') then
        begin
          create role ${appRole} nologin;
        exception when duplicate_object or insufficient_privilege then null;
        end;
      end if;
    end $$`);
  const exists = await client.query("select 1 from pg_roles where rolname = $1", [appRole]);
  if (exists.rows.length === 0) return "no role";
  await client.query(`grant usage on schema ${await currentSchema(client)} to ${appRole}`);
  for (const [table, privileges] of Object.entries(appPrivileges)) {
    await client.query(`revoke all on ${table} from ${appRole}`);
    await client.query(`grant ${privileges} on ${table} to ${appRole}`);
  }
  return "granted";
}

async function currentSchema(client: Pick<pg.PoolClient, "query">): Promise<string> {
  const result = await client.query<{ schema: string }>("select quote_ident(current_schema()) as schema");
  return result.rows[0].schema;
}

/** PrivilegeReport says whether the connected user could rewrite the ledger. */
export interface PrivilegeReport {
  user: string;
  superuser: boolean;
  ownsTables: boolean;
  canChangeEntries: boolean;
}

/** checkPrivileges reads what the connected user may do to the ledger itself. */
export async function checkPrivileges(db: Pick<pg.Pool, "query">): Promise<PrivilegeReport> {
  const result = await db.query<PrivilegeReport>(`
    select current_user as "user",
           (select rolsuper from pg_roles where rolname = current_user) as superuser,
           pg_has_role(current_user, (select tableowner from pg_tables where schemaname = current_schema() and tablename = 'ledger_entries'), 'USAGE') as "ownsTables",
           has_table_privilege('ledger_entries', 'UPDATE') or has_table_privilege('ledger_entries', 'DELETE') or has_table_privilege('ledger_entries', 'TRUNCATE') as "canChangeEntries"`);
  return result.rows[0];
}
