// Writing a decided change to one balance in one statement: the new totals, the lots it
// changed, its entries, and, when the change has them, the reservation it creates or
// resolves and the claim on the request id. They are data-modifying CTEs, each run once
// and to completion whether or not the outer query reads it: one round trip where there
// were up to six. On this kind of machine a statement's socket write is the dominant
// server cost (see docs/performance.md). Expects the balance row locked by this transaction.
import type { BalanceState, LotState, PlannedEntry } from "../ledger/balance-state.js";
import type { Hold } from "../ledger/plan.js";
import type { BalanceKey } from "./balance-store.js";
import type { Tx } from "./database.js";
import { type EntryCause, entryColumns, type EntryRow, toEntryRow } from "./entry-store.js";

/** ReservationWrite creates a held reservation, or resolves one that must still be held. */
export type ReservationWrite =
  | {
      kind: "insert";
      reservationId: string;
      featureKey: string | null;
      amount: bigint;
      holds: Hold[];
      expiresAt: Date;
      requestId: string;
      actor: string;
    }
  | { kind: "resolve"; reservationId: string; status: "committed" | "released" | "expired"; committedAmount: bigint };

/** IdempotencyWrite is the claim on a request id, with the response to replay. */
export interface IdempotencyWrite {
  principal: string;
  requestId: string;
  method: string;
  payloadHash: Buffer;
  response: Uint8Array;
}

/** BalanceChange is everything one decision writes. */
export interface BalanceChange {
  key: BalanceKey;
  state: BalanceState;
  lots: LotState[];
  cause: EntryCause;
  entries: PlannedEntry[];
  usageIds: (string | null)[];
  reservation?: ReservationWrite;
  idempotency?: IdempotencyWrite;
}

/** WrittenChange is the entries written, and whether a resolve found its reservation still held. */
export interface WrittenChange {
  entries: EntryRow[];
  reservationWritten: boolean;
}

/** writeBalanceChange persists a change in one statement. */
export async function writeBalanceChange(tx: Tx, change: BalanceChange): Promise<WrittenChange> {
  const { key, state, lots, cause, entries, reservation, idempotency } = change;
  // Every change to a balance is an entry: with none and nothing else to write, nothing changed.
  if (entries.length === 0 && reservation === undefined && idempotency === undefined) return { entries: [], reservationWritten: false };
  const values: unknown[] = [];
  const p = (value: unknown) => {
    values.push(value);
    return `$${values.length}`;
  };
  const customer = p(key.customerId);
  const creditType = p(key.creditTypeId);
  const ctes = [
    `b as (update balances set granted = ${p(state.granted.toString())}, held = ${p(state.held.toString())}, burned = ${p(state.burned.toString())},
       expired = ${p(state.expired.toString())}, debt = ${p(state.debt.toString())}, overdraft_held = ${p(state.overdraftHeld.toString())}, updated_at = now()
       where customer_id = ${customer} and credit_type_id = ${creditType} returning 1)`,
    `l as (update grants g set remaining = v.remaining, held = v.held
       from unnest(${p(lots.map((lot) => lot.grantId))}::uuid[], ${p(lots.map((lot) => lot.remaining.toString()))}::bigint[], ${p(lots.map((lot) => lot.held.toString()))}::bigint[])
         as v(grant_id, remaining, held)
       where g.customer_id = ${customer} and g.grant_id = v.grant_id returning 1)`,
    `e as (insert into ledger_entries (customer_id, credit_type_id, kind, amount, grant_id, reservation_id, request_id, actor, reason_code, effective_at, usage_id)
       select ${customer}, ${creditType}, x.kind, x.amount, x.grant_id, ${p(cause.reservationId)}::uuid,
         case when x.kind = 'expire' then null else ${p(cause.requestId)} end,
         case when x.kind = 'expire' then 'system' else ${p(cause.actor)} end,
         case when x.kind = 'expire' then 'lot_expired' else ${p(cause.reasonCode)} end,
         coalesce(x.effective_at, ${p(cause.effectiveAt)}), x.usage_id
       from unnest(${p(entries.map((entry) => entry.kind))}::text[], ${p(entries.map((entry) => entry.amount.toString()))}::bigint[],
         ${p(entries.map((entry) => entry.grantId))}::uuid[],
         ${p(entries.map((entry) => (entry.effectiveAtMs === undefined ? null : new Date(entry.effectiveAtMs))))}::timestamptz[],
         ${p(entries.map((_entry, index) => change.usageIds[index] ?? null))}::bigint[])
         with ordinality as x(kind, amount, grant_id, effective_at, usage_id, position)
       order by x.position
       returning ${entryColumns})`,
  ];
  if (reservation?.kind === "insert") {
    const holds = JSON.stringify(reservation.holds.map((hold) => ({ grantId: hold.grantId, amount: hold.amount.toString() })));
    ctes.push(`r as (insert into reservations (customer_id, reservation_id, credit_type_id, feature_key, amount, holds, status, expires_at, request_id, actor)
       values (${customer}, ${p(reservation.reservationId)}, ${creditType}, ${p(reservation.featureKey)}, ${p(reservation.amount.toString())}, ${p(holds)}::jsonb,
         'held', ${p(reservation.expiresAt)}, ${p(reservation.requestId)}, ${p(reservation.actor)}) returning 1)`);
  } else if (reservation?.kind === "resolve") {
    ctes.push(`r as (update reservations set status = ${p(reservation.status)}, committed_amount = ${p(reservation.committedAmount.toString())}, resolved_at = now()
       where customer_id = ${customer} and reservation_id = ${p(reservation.reservationId)} and status = 'held' returning 1)`);
  } else {
    ctes.push("r as (select 1 where false)");
  }
  if (idempotency) {
    ctes.push(`k as (insert into idempotency_keys (principal, request_id, method, payload_hash, response)
       values (${p(idempotency.principal)}, ${p(idempotency.requestId)}, ${p(idempotency.method)}, ${p(idempotency.payloadHash)}, ${p(Buffer.from(idempotency.response))}) returning 1)`);
  } else {
    ctes.push("k as (select 1 where false)");
  }
  const result = await tx.query({
    // The text depends only on which parts are present, so each variant is prepared once.
    name: `write_balance_change_${reservation?.kind ?? "none"}_${idempotency ? "claim" : "noclaim"}`,
    text: `with ${ctes.join(",\n")}
           select e.*, (select count(*) from b)::int as balances_written, (select count(*) from l)::int as lots_written,
             (select count(*) from r)::int as reservations_written, (select count(*) from k)::int as claims_written
           from (values (1)) as one(x) left join e on true`,
    values,
  });
  const counts = result.rows[0];
  if (counts.balances_written !== 1 || counts.lots_written !== lots.length || counts.claims_written !== (idempotency ? 1 : 0)) {
    throw new Error("assertion failed: the locked balance, every changed lot and the claim are written");
  }
  const written = result.rows.filter((row) => row.entry_id !== null).map(toEntryRow);
  if (written.length !== entries.length) throw new Error("assertion failed: every entry is inserted");
  return { entries: written.sort((a, b) => (a.entryId < b.entryId ? -1 : 1)), reservationWritten: counts.reservations_written === 1 };
}

/**
 * writeBalanceChanges persists several changes to one balance, planned in turn under its
 * lock, in one statement: the last totals, the last value of every lot any of them
 * changed, every entry in order with its own cause, every reservation inserted or resolved
 * and every claim. Throws when any part is not written as planned (a resolved reservation
 * no longer held, a claim taken): the caller's transaction then writes nothing.
 */
export async function writeBalanceChanges(tx: Tx, changes: readonly BalanceChange[]): Promise<void> {
  if (changes.length === 0) return;
  const { key } = changes[0];
  if (changes.some((change) => change.key.customerId !== key.customerId || change.key.creditTypeId !== key.creditTypeId)) {
    throw new Error("writeBalanceChanges: every change must be to the same balance");
  }
  const state = changes[changes.length - 1].state;
  const lots = new Map<string, LotState>();
  for (const change of changes) for (const lot of change.lots) lots.set(lot.grantId, lot);
  const entries = changes.flatMap((change) => change.entries.map((entry, index) => ({ entry, usageId: change.usageIds[index] ?? null, cause: change.cause })));
  const inserts = changes.flatMap((change) => (change.reservation?.kind === "insert" ? [change.reservation] : []));
  const resolves = changes.flatMap((change) => (change.reservation?.kind === "resolve" ? [change.reservation] : []));
  const claims = changes.flatMap((change) => (change.idempotency ? [change.idempotency] : []));
  const lotList = [...lots.values()];
  const result = await tx.query({
    name: "write_balance_changes",
    text: `with b as (update balances set granted = $3, held = $4, burned = $5, expired = $6, debt = $7, overdraft_held = $8, updated_at = now()
             where customer_id = $1 and credit_type_id = $2 returning 1),
           l as (update grants g set remaining = v.remaining, held = v.held
             from unnest($9::uuid[], $10::bigint[], $11::bigint[]) as v(grant_id, remaining, held)
             where g.customer_id = $1 and g.grant_id = v.grant_id returning 1),
           e as (insert into ledger_entries (customer_id, credit_type_id, kind, amount, grant_id, reservation_id, request_id, actor, reason_code, effective_at, usage_id)
             select $1, $2, x.kind, x.amount, x.grant_id, x.reservation_id,
               case when x.kind = 'expire' then null else x.request_id end,
               case when x.kind = 'expire' then 'system' else x.actor end,
               case when x.kind = 'expire' then 'lot_expired' else x.reason_code end,
               coalesce(x.effective_at, x.cause_at), x.usage_id
             from unnest($12::text[], $13::bigint[], $14::uuid[], $15::timestamptz[], $16::bigint[], $17::uuid[], $18::text[], $19::text[], $20::text[], $21::timestamptz[])
               with ordinality as x(kind, amount, grant_id, effective_at, usage_id, reservation_id, request_id, actor, reason_code, cause_at, position)
             order by x.position
             returning 1),
           ri as (insert into reservations (customer_id, reservation_id, credit_type_id, feature_key, amount, holds, status, expires_at, request_id, actor)
             select $1, v.reservation_id, $2, v.feature_key, v.amount, v.holds, 'held', v.expires_at, v.request_id, v.actor
             from unnest($22::uuid[], $23::text[], $24::bigint[], $25::jsonb[], $26::timestamptz[], $27::text[], $28::text[])
               as v(reservation_id, feature_key, amount, holds, expires_at, request_id, actor)
             returning 1),
           rr as (update reservations r set status = v.status, committed_amount = v.committed_amount, resolved_at = now()
             from unnest($29::uuid[], $30::text[], $31::bigint[]) as v(reservation_id, status, committed_amount)
             where r.customer_id = $1 and r.reservation_id = v.reservation_id and r.status = 'held'
             returning 1),
           k as (insert into idempotency_keys (principal, request_id, method, payload_hash, response)
             select * from unnest($32::text[], $33::text[], $34::text[], $35::bytea[], $36::bytea[])
             returning 1)
           select (select count(*) from b)::int as balances, (select count(*) from l)::int as lots, (select count(*) from e)::int as entries,
             (select count(*) from ri)::int as inserted, (select count(*) from rr)::int as resolved, (select count(*) from k)::int as claims`,
    values: [
      key.customerId,
      key.creditTypeId,
      state.granted.toString(),
      state.held.toString(),
      state.burned.toString(),
      state.expired.toString(),
      state.debt.toString(),
      state.overdraftHeld.toString(),
      lotList.map((lot) => lot.grantId),
      lotList.map((lot) => lot.remaining.toString()),
      lotList.map((lot) => lot.held.toString()),
      entries.map(({ entry }) => entry.kind),
      entries.map(({ entry }) => entry.amount.toString()),
      entries.map(({ entry }) => entry.grantId),
      entries.map(({ entry }) => (entry.effectiveAtMs === undefined ? null : new Date(entry.effectiveAtMs))),
      entries.map(({ usageId }) => usageId),
      entries.map(({ cause }) => cause.reservationId),
      entries.map(({ cause }) => cause.requestId),
      entries.map(({ cause }) => cause.actor),
      entries.map(({ cause }) => cause.reasonCode),
      entries.map(({ cause }) => cause.effectiveAt),
      inserts.map((r) => r.reservationId),
      inserts.map((r) => r.featureKey),
      inserts.map((r) => r.amount.toString()),
      inserts.map((r) => JSON.stringify(r.holds.map((hold) => ({ grantId: hold.grantId, amount: hold.amount.toString() })))),
      inserts.map((r) => r.expiresAt),
      inserts.map((r) => r.requestId),
      inserts.map((r) => r.actor),
      resolves.map((r) => r.reservationId),
      resolves.map((r) => r.status),
      resolves.map((r) => r.committedAmount.toString()),
      claims.map((c) => c.principal),
      claims.map((c) => c.requestId),
      claims.map((c) => c.method),
      claims.map((c) => c.payloadHash),
      claims.map((c) => Buffer.from(c.response)),
    ],
  });
  const counts = result.rows[0];
  const expected = { balances: 1, lots: lotList.length, entries: entries.length, inserted: inserts.length, resolved: resolves.length, claims: claims.length };
  for (const [part, count] of Object.entries(expected)) {
    if (counts[part] !== count) throw new Error(`assertion failed: writeBalanceChanges wrote ${counts[part]} ${part}, planned ${count}`);
  }
}
