// Helpers for "nothing changed" and "this call fails" assertions.
import { ConnectError } from "@connectrpc/connect";
import type pg from "pg";

/** databaseSnapshot captures every table a request could touch, to show that nothing changed. */
export async function databaseSnapshot(pool: pg.Pool): Promise<Record<string, unknown>> {
  const counts = await pool.query(`select
    (select count(*) from ledger_entries)::int as ledger_entries, (select count(*) from grants)::int as grants,
    (select count(*) from reservations)::int as reservations, (select count(*) from idempotency_keys)::int as idempotency_keys,
    (select count(*) from customers)::int as customers, (select count(*) from credit_types)::int as credit_types,
    (select count(*) from features)::int as features, (select count(*) from api_keys)::int as api_keys,
    (select count(*) from bundles)::int as bundles, (select count(*) from topup_refunds)::int as topup_refunds,
    (select count(*) from webhook_events)::int as webhook_events, (select count(*) from promo_codes)::int as promo_codes,
    (select count(*) from promo_redemptions)::int as promo_redemptions, (select count(*) from charge_refunds)::int as charge_refunds,
    (select count(*) from dispute_notes)::int as dispute_notes,
    (select count(*) from support_grants)::int as support_grants, (select count(*) from grant_limits)::int as grant_limits,
    (select count(*) from reason_codes)::int as reason_codes, (select count(*) from audit_log)::int as audit_log`);
  const balances = await pool.query("select customer_id, credit_type_id, granted, held, burned, expired, debt, overdraft_limit from balances order by 1, 2");
  const lots = await pool.query("select grant_id, remaining, held from grants order by 1");
  const reservations = await pool.query("select reservation_id, status, committed_amount from reservations order by 1");
  const revoked = await pool.query("select key_id from api_keys where revoked_at is not null order by 1");
  const topUps = await pool.query("select order_id, state, refunded_minor from topup_orders order by 1");
  const endpoints = await pool.query("select endpoint_id, secret, disabled_at from webhook_endpoints order by 1");
  const deliveries = await pool.query("select event_id, endpoint_id, status, attempts, next_attempt_at from webhook_deliveries order by 1, 2");
  const promoCodes = await pool.query("select promo_code_id, redemption_count, disabled_at from promo_codes order by 1");
  const disputes = await pool.query("select dispute_id, status, owner, first_response_at, resolved_at from disputes order by 1");
  const grantRequests = await pool.query("select grant_request_id, status, grant_id from grant_requests order by 1");
  const supportRules = await pool.query(
    "select (select json_agg(l order by l.subject_kind, l.subject, l.credit_type_id) from grant_limits l) as limits, (select json_agg(s order by s.role) from grant_sources s) as sources, (select json_agg(r order by r.code) from reason_codes r) as codes",
  );
  return {
    counts: counts.rows[0],
    balances: balances.rows,
    lots: lots.rows,
    reservations: reservations.rows,
    revoked: revoked.rows,
    topUps: topUps.rows,
    webhookEndpoints: endpoints.rows,
    webhookDeliveries: deliveries.rows,
    promoCodes: promoCodes.rows,
    disputes: disputes.rows,
    grantRequests: grantRequests.rows,
    supportRules: supportRules.rows[0],
  };
}

/** errorOf awaits a call that must fail and returns its error. */
export async function errorOf(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("expected the call to be refused, but it succeeded");
}
