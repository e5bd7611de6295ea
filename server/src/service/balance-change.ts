// Loading a balance for a decision and writing the decision back: the two halves every
// balance-changing service shares. The balance row lock is taken first, always.
import { LedgerError } from "../errors.js";
import { availableOf, type BalanceState, type LotState, pendingOf } from "../ledger/balance-state.js";
import type { BalanceView } from "./balance-view.js";
import type { Planned } from "../ledger/plan.js";
import { limits } from "../limits.js";
import { type BalanceKey, lockBalance, selectDecisionLots, tryLockBalance } from "../store/balance-store.js";
import { type BalanceChange, type IdempotencyWrite, type ReservationWrite, writeBalanceChange, type WrittenChange } from "../store/change-store.js";
import type { Tx } from "../store/database.js";
import type { EntryCause } from "../store/entry-store.js";

/** LoadedBalance is a locked balance, the time its decision is made at, and a reservation's status. */
export interface LoadedBalance {
  state: BalanceState;
  now: Date;
  /** the status of options.reservationId, read after the lock; null when none was asked for. */
  reservationStatus: string | null;
}

/**
 * loadBalance locks a balance and loads the lots a decision needs; null when it does not
 * exist, or, with skipLocked (background jobs), when another transaction holds it.
 * The decision time is read after the lock is held: a time read before could precede
 * changes committed while this transaction waited (a lot granted "in its future").
 */
export async function loadBalance(
  tx: Tx,
  key: BalanceKey,
  clock: () => Date,
  options: { pinnedGrantIds?: string[]; skipLocked?: boolean; reservationId?: string } = {},
): Promise<LoadedBalance | null> {
  const row = options.skipLocked ? await tryLockBalance(tx, key) : await lockBalance(tx, key);
  if (row === null) return null;
  const now = clock();
  const { lots, reservationStatus } = await selectDecisionLots(tx, key, options.pinnedGrantIds ?? [], options.reservationId ?? null);
  if (lots.length > limits.lotsPerDecisionMax) {
    throw new LedgerError("rejected", "TOO_MANY_LOTS", `the balance has more than ${limits.lotsPerDecisionMax} open lots`, {
      customer_id: key.customerId,
      credit_type_id: key.creditTypeId,
    });
  }
  return { state: { ...row, lots }, now, reservationStatus };
}

function lotChanged(before: LotState | undefined, after: LotState): boolean {
  return before === undefined || before.remaining !== after.remaining || before.held !== after.held;
}

/** changedLots lists the lots a plan changed (or added). */
export function changedLots(before: BalanceState, planned: Planned): LotState[] {
  const beforeLots = new Map(before.lots.map((lot) => [lot.grantId, lot]));
  return planned.state.lots.filter((lot) => lotChanged(beforeLots.get(lot.grantId), lot));
}

/**
 * changeOf is what a plan writes: the balance totals, the lots it changed, its entries, and
 * optionally the reservation it creates or resolves and the request id's claim. usageIds
 * maps an entry's eventIndex to the usage event that caused it.
 */
export function changeOf(
  key: BalanceKey,
  before: BalanceState,
  planned: Planned,
  cause: Omit<EntryCause, "customerId" | "creditTypeId">,
  usageIds: string[] = [],
  extras: { reservation?: ReservationWrite; idempotency?: IdempotencyWrite } = {},
): BalanceChange {
  const entryUsageIds = planned.entries.map((entry) => (entry.eventIndex === undefined ? null : usageIds[entry.eventIndex]));
  return {
    key,
    state: planned.state,
    lots: changedLots(before, planned),
    cause: { ...cause, ...key },
    entries: planned.entries,
    usageIds: entryUsageIds,
    ...extras,
  };
}

/** writeChange persists a plan in one statement (see changeOf for the arguments). */
export async function writeChange(tx: Tx, ...change: Parameters<typeof changeOf>): Promise<WrittenChange> {
  return writeBalanceChange(tx, changeOf(...change));
}

/** totalsView shows a balance's totals after a change (mutation responses carry no lots). */
export function totalsView(creditTypeId: string, state: BalanceState, nowMs: number): BalanceView {
  return {
    creditTypeId,
    available: availableOf(state, nowMs),
    held: state.held,
    granted: state.granted,
    burned: state.burned,
    expired: state.expired,
    pending: pendingOf(state, nowMs),
    overdraftLimit: state.overdraftLimit,
    lots: [],
  };
}
