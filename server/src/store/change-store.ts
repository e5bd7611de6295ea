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
