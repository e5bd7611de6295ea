// Group commit for batches: several Reserves on one customer, or several Commits on one
// balance, in one transaction. The balance row is locked once; each item is planned in
// request order against the state the items before it left; then all of them (entries,
// reservations, request-id claims) are written in one statement and one COMMIT makes them
// durable together: a handful of round trips, one lock hold and one WAL flush per group
// instead of per item. The database stays the only arbiter: the
// lock is the same row lock a single call takes, so other replicas and single calls
// serialize with a group exactly as with one call.
//
// Failure isolation: an item whose request is refused (insufficient credits, unknown
// feature, reservation not held, ...) gets its error and writes nothing; the items after
// it go on. An item whose request id is already claimed, or repeated within the group,
// is left to the per-item path after the group (it replays or is REQUEST_ID_REUSED). If
// the transaction itself fails (a request id claimed concurrently, a deadlock, a lost
// connection, an item's statement that failed and aborted it), nothing of it was
// written and every item runs again on its own through the per-item path: the group is
// an optimisation, never a second source of truth.
import { LedgerError, notFound } from "../errors.js";
import type { BalanceState } from "../ledger/balance-state.js";
import { type BalanceKey, lockBalance, selectDecisionLots } from "../store/balance-store.js";
import { type BalanceChange, writeBalanceChanges } from "../store/change-store.js";
import { mapDriverErrors, type Tx, withTransaction } from "../store/database.js";
import { selectClaimedRequestIds } from "../store/idempotency-store.js";
import { type ReservationRow, selectReservations, selectReservationStatuses } from "../store/reservation-store.js";
import { limits } from "../limits.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { explainMissingBalance } from "./missing-balance.js";
import { type ResolvedCost, resolveCost } from "./resolve-cost.js";
import { commit, notHeld, pinnedOf, planResolutionChange } from "./resolve-reservation.js";
import { planHoldChange, type ReservationResult, type ReserveInput, reserve } from "./reserve.js";
import { claimRowOf } from "./run-idempotent.js";

/** groupStats counts group transactions that committed and those that failed and ran item by item (process-wide, for metrics and tests). */
export const groupStats = { committed: 0, fellBack: 0 };

/** Outcome is one item's answer: its result, or the error it failed with. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** GroupedReserve is one validated Reserve of a group. */
export interface GroupedReserve {
  idempotency: Idempotency;
  input: ReserveInput;
}

/** CommitItem is one validated Commit of a batch. */
export interface CommitItem {
  idempotency: Idempotency;
  reservationId: string;
  amount: bigint;
}

/** GroupedCommit is one validated Commit of a group, its reservation already read. */
interface GroupedCommit {
  idempotency: Idempotency;
  reservation: ReservationRow;
  amount: bigint;
}

async function settle<T>(work: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * runGroup runs the items that may be grouped in one transaction (inGroup plans them under
 * the lock and writes them; a LedgerError planning one is that item's answer) and
 * everything else through single, one at a time, in request order.
 */
async function runGroup<I extends { idempotency: Idempotency }, T>(
  deps: Deps,
  caller: Caller,
  items: readonly I[],
  inGroup: (tx: Tx, grouped: I[]) => Promise<Outcome<T>[]>,
  single: (item: I) => Promise<T>,
): Promise<Outcome<T>[]> {
  if (items.length === 1) return [await settle(() => single(items[0]))];
  const claimed = await mapDriverErrors(() => selectClaimedRequestIds(deps.pool, caller.keyId, items.map((item) => item.idempotency.requestId)));
  const seen = new Set<string>();
  const groupedIndexes: number[] = [];
  items.forEach((item, index) => {
    const requestId = item.idempotency.requestId;
    if (!claimed.has(requestId) && !seen.has(requestId)) groupedIndexes.push(index);
    seen.add(requestId);
  });
  const outcomes = new Array<Outcome<T> | undefined>(items.length);
  if (groupedIndexes.length > 0) {
    try {
      // An item answered with a LedgerError from a failed statement leaves the transaction
      // aborted: withTransaction then throws at COMMIT, and the group falls back below.
      const grouped = await withTransaction(deps.pool, (tx) => inGroup(tx, groupedIndexes.map((index) => items[index])));
      groupedIndexes.forEach((index, i) => (outcomes[index] = grouped[i]));
      groupStats.committed++;
    } catch {
      // Nothing of the group was written: every item gets its answer on its own below.
      groupStats.fellBack++;
    }
  }
  for (const [index, item] of items.entries()) {
    outcomes[index] ??= await settle(() => single(item));
  }
  return outcomes as Outcome<T>[];
}

/** planned runs one item's planning; a LedgerError is its answer, anything else fails the group. */
async function planned<T>(work: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    if (error instanceof LedgerError && error.kind !== "unavailable" && error.kind !== "conflict") return { ok: false, error };
    throw error;
  }
}

/** reserveGroup places the holds of one customer's Reserves, grouped where it can. */
async function reserveGroup(deps: Deps, caller: Caller, items: readonly GroupedReserve[]): Promise<Outcome<ReservationResult>[]> {
  return runGroup(
    deps,
    caller,
    items,
    async (tx, grouped) => {
      // Prices first (no locks), then each balance locked once, in key order.
      const costs = new Map<string, Promise<Outcome<ResolvedCost>>>();
      const costOf = (item: GroupedReserve) => {
        const memo = JSON.stringify(item.input.cost, (_, value) => (typeof value === "bigint" ? value.toString() : value));
        let cost = costs.get(memo);
        if (cost === undefined) costs.set(memo, (cost = planned(() => resolveCost(tx, item.input.customerId, item.input.cost))));
        return cost;
      };
      const resolved: Outcome<ResolvedCost>[] = [];
      for (const item of grouped) resolved.push(await costOf(item));
      const balances = new Map<string, { key: BalanceKey; state: BalanceState | null; now: Date; changes: BalanceChange[] }>();
      const creditTypes = [...new Set(resolved.flatMap((cost) => (cost.ok ? [cost.value.creditTypeId] : [])))].sort();
      for (const creditTypeId of creditTypes) {
        const key = { customerId: grouped[0].input.customerId, creditTypeId };
        const row = await lockBalance(tx, key);
        const now = deps.now();
        const state = row === null ? null : { ...row, lots: (await selectDecisionLots(tx, key, [], null)).lots };
        if (state !== null && state.lots.length > limits.lotsPerDecisionMax) throw new Error("too many lots for a group: run the items one by one");
        balances.set(creditTypeId, { key, state, now, changes: [] });
      }
      const outcomes: Outcome<ReservationResult>[] = [];
      for (const [i, item] of grouped.entries()) {
        const cost = resolved[i];
        if (!cost.ok) {
          outcomes.push(cost);
          continue;
        }
        const balance = balances.get(cost.value.creditTypeId)!;
        outcomes.push(
          await planned(async () => {
            if (balance.state === null) return explainMissingBalance(tx, balance.key.customerId, balance.key.creditTypeId, cost.value.amount);
            const hold = planHoldChange({
              caller,
              idempotency: item.idempotency,
              key: balance.key,
              before: balance.state,
              now: balance.now,
              cost: cost.value,
              ttlMs: item.input.ttlMs,
              claimRow: (result) => claimRowOf(caller, item.idempotency, result),
            });
            balance.state = hold.state;
            balance.changes.push(hold.change);
            return hold.result;
          }),
        );
      }
      // Every hold of a balance in one statement.
      for (const balance of balances.values()) await writeBalanceChanges(tx, balance.changes);
      return outcomes;
    },
    (item) => reserve(deps, caller, item.idempotency, item.input),
  );
}

/** commitGroup commits reservations of one balance, grouped where it can. */
async function commitGroup(deps: Deps, caller: Caller, items: readonly GroupedCommit[]): Promise<Outcome<ReservationResult>[]> {
  return runGroup(
    deps,
    caller,
    items,
    async (tx, grouped) => {
      const first = grouped[0].reservation;
      const key = { customerId: first.customerId, creditTypeId: first.creditTypeId };
      const row = await lockBalance(tx, key);
      if (row === null) throw new Error("a reservation's balance exists");
      const now = deps.now();
      const ids = grouped.map((item) => item.reservation.reservationId);
      // Read after the lock: settled, as for a single commit. A reservation this group
      // resolves is marked here as it goes.
      const statuses = await selectReservationStatuses(tx, ids);
      const { lots } = await selectDecisionLots(tx, key, [...new Set(grouped.flatMap((item) => pinnedOf(item.reservation)))], null);
      if (lots.length > limits.lotsPerDecisionMax) throw new Error("too many lots for a group: run the items one by one");
      let state: BalanceState = { ...row, lots };
      const changes: BalanceChange[] = [];
      const outcomes: Outcome<ReservationResult>[] = [];
      for (const item of grouped) {
        const found = item.reservation;
        outcomes.push(
          await planned(async () => {
            const status = statuses.get(found.reservationId) ?? found.status;
            if (status !== "held") throw notHeld({ ...found, status: status as ReservationRow["status"] });
            const resolution = planResolutionChange({
              caller,
              requestId: item.idempotency.requestId,
              found,
              before: state,
              now,
              status: "committed",
              amount: item.amount,
              claimRow: (result) => claimRowOf(caller, item.idempotency, result),
            });
            state = resolution.state;
            changes.push(resolution.change);
            statuses.set(found.reservationId, "committed");
            return resolution.result;
          }),
        );
      }
      await writeBalanceChanges(tx, changes);
      return outcomes;
    },
    (item) => commit(deps, caller, item.idempotency, { reservationId: item.reservation.reservationId, amount: item.amount }),
  );
}

/** runGroups runs each group (item indexes, in request order), at most limits.batchGroupsInFlightMax at once. */
async function runGroups<T>(groups: Iterable<number[]>, run: (indexes: number[]) => Promise<Outcome<T>[]>, outcomes: Outcome<T>[]): Promise<void> {
  const queue = [...groups];
  const worker = async () => {
    for (let group = queue.shift(); group !== undefined; group = queue.shift()) {
      const answers = await run(group);
      group.forEach((index, i) => (outcomes[index] = answers[i]));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limits.batchGroupsInFlightMax, queue.length) }, worker));
}

/** groupIndexes gathers item indexes by key, each group in request order. */
function groupIndexes(count: number, keyOf: (index: number) => string | null): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  for (let index = 0; index < count; index++) {
    const key = keyOf(index);
    if (key === null) continue;
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [index]);
    else group.push(index);
  }
  return groups;
}

/** reserveBatch answers each Reserve as the unary call would: one customer's items are grouped, groups run side by side. */
export async function reserveBatch(deps: Deps, caller: Caller, items: readonly GroupedReserve[]): Promise<Outcome<ReservationResult>[]> {
  const outcomes = new Array<Outcome<ReservationResult>>(items.length);
  const groups = groupIndexes(items.length, (index) => items[index].input.customerId);
  await runGroups(groups.values(), (indexes) => reserveGroup(deps, caller, indexes.map((index) => items[index])), outcomes);
  return outcomes;
}

/**
 * commitBatch answers each Commit as the unary call would: items are grouped by the
 * balance of their reservation (read without locks; the group re-reads statuses under the
 * balance lock), groups run side by side.
 */
export async function commitBatch(deps: Deps, caller: Caller, items: readonly CommitItem[]): Promise<Outcome<ReservationResult>[]> {
  const outcomes = new Array<Outcome<ReservationResult>>(items.length);
  const reservations = await mapDriverErrors(() => selectReservations(deps.pool, [...new Set(items.map((item) => item.reservationId))]));
  const groups = groupIndexes(items.length, (index) => {
    const reservation = reservations.get(items[index].reservationId);
    if (reservation === undefined) {
      outcomes[index] = { ok: false, error: notFound("RESERVATION_NOT_FOUND", "reservation id", items[index].reservationId) };
      return null;
    }
    return JSON.stringify([reservation.customerId, reservation.creditTypeId]);
  });
  await runGroups(
    groups.values(),
    (indexes) => commitGroup(deps, caller, indexes.map((index) => ({ ...items[index], reservation: reservations.get(items[index].reservationId)! }))),
    outcomes,
  );
  return outcomes;
}
