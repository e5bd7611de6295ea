// GetBalance as of a time: a customer's balances and lots at a past effective time, as
// known at a record time, rebuilt from the ledger entries alone (store/as-of-store.ts)
// and brought to that time by the same upkeep GetBalance applies now (balance-view.ts):
// a lot past its expiry then counts as expired even when its EXPIRE entry was recorded
// later or not yet, and lots granted by then but not yet effective are pending.
import { invalid, LedgerError, notFound } from "../errors.js";
import { assert, compareBurnOrder, isExpired } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { type AsOfBalance, selectBalancesAsOf } from "../store/as-of-store.js";
import type { LotRow } from "../store/balance-store.js";
import { customerExists } from "../store/catalog-store.js";
import { withSnapshot } from "../store/database.js";
import { type BalanceView, balanceStateAt, type LotView, sourcesOf, toBalanceView, toLotView } from "./balance-view.js";
import type { Deps } from "./context.js";

/** AsOfLotView is a lot as it stood at a past time. */
export interface AsOfLotView {
  creditTypeId: string;
  lot: LotView;
  expired: bigint;
  effective: boolean;
  pastExpiry: boolean;
}

/** BalanceAsOf is a customer's balances and lots at asOf, as known at asRecorded. */
export interface BalanceAsOf {
  balances: BalanceView[];
  lots: AsOfLotView[];
  asOf: Date;
  asRecorded: Date;
}

/** checkTimes refuses times in the future: what is not recorded yet cannot be known. */
function checkTimes(nowMs: number, asOf: Date, asRecorded: Date | null): void {
  if (asOf.getTime() > nowMs) throw invalid("AS_OF_IN_FUTURE", "as_of_time", "must not be in the future");
  if (asRecorded !== null && asRecorded.getTime() > nowMs) throw invalid("AS_OF_IN_FUTURE", "as_recorded_time", "must not be in the future");
}

/** lotsAt shows every lot of a balance as it stood at atMs, after the upkeep of that time. */
function lotsAt(creditTypeId: string, row: Parameters<typeof balanceStateAt>[0], lots: LotRow[], atMs: number): AsOfLotView[] {
  const rows = new Map(lots.map((lot) => [lot.grantId, lot]));
  const state = balanceStateAt(row, lots, atMs);
  assert(state.lots.length === lots.length, "the upkeep keeps every lot");
  return state.lots.map((lot) => ({
    creditTypeId,
    lot: toLotView({ ...(rows.get(lot.grantId) as LotRow), remaining: lot.remaining, held: lot.held }, atMs),
    expired: lot.expired,
    effective: lot.effectiveAtMs <= atMs,
    pastExpiry: isExpired(lot, atMs),
  }));
}

/**
 * settleNoEarlierThanDebt keeps a rebuilt balance's debt from going negative. A settlement
 * is dated when the lot it drew from became effective (catching up), which can be before
 * a late-reported overdraft burn it repaid; as of a time between the two, the settlement
 * counts only as far as there was debt to repay, and the rest stays in its lots (the
 * latest lots in burn order give back first).
 */
export function settleNoEarlierThanDebt(rebuilt: AsOfBalance): AsOfBalance {
  if (rebuilt.row.debt >= 0n) return rebuilt;
  let excess = -rebuilt.row.debt;
  const lots = rebuilt.lots.map((lot) => ({ ...lot }));
  for (const lot of [...lots].sort(compareBurnOrder).reverse()) {
    const back = min(excess, rebuilt.settled.get(lot.grantId) ?? 0n);
    lot.remaining += back;
    excess -= back;
  }
  assert(excess === 0n, "what was settled beyond the debt came from the lots' settlements");
  assert(lots.every((lot) => lot.remaining <= lot.amount), "a lot given back its settlement stays within its amount");
  return { ...rebuilt, row: { ...rebuilt.row, debt: 0n }, lots };
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);

/** getBalanceAsOf rebuilds a customer's balances (or one credit type's) as of asOf, as known at asRecorded (default now). */
export async function getBalanceAsOf(
  deps: Deps,
  input: { customerId: string; creditTypeId: string; asOf: Date; asRecorded: Date | null },
): Promise<BalanceAsOf> {
  const now = deps.now();
  checkTimes(now.getTime(), input.asOf, input.asRecorded);
  // Unset: everything recorded so far. The database's clock records entries, so "so far" is
  // the later of the two clocks (they differ only under a test's fake clock).
  const asRecorded = input.asRecorded ?? new Date(Math.max(now.getTime(), Date.now()));
  return withSnapshot(deps.pool, async (tx) => {
    if (!(await customerExists(tx, input.customerId))) throw notFound("CUSTOMER_NOT_FOUND", "customer id", input.customerId);
    const found = await selectBalancesAsOf(tx, { customerId: input.customerId, creditTypeId: input.creditTypeId, asOf: input.asOf, asRecorded });
    if (found === null) throw new LedgerError("rejected", "TOO_MANY_LOTS", `more than ${limits.asOfLotsMax} lots to rebuild`);
    const rebuilt = found.map(settleNoEarlierThanDebt);
    const atMs = input.asOf.getTime();
    const balances = rebuilt.map(({ creditTypeId, row, lots }) => {
      const view = toBalanceView(creditTypeId, row, lots, atMs);
      return { ...view, sources: sourcesOf(view.lots, atMs) };
    });
    const lots = rebuilt.flatMap(({ creditTypeId, row, lots }) => lotsAt(creditTypeId, row, lots, atMs));
    assert(balances.length === rebuilt.length, "one view per rebuilt balance");
    return { balances, lots, asOf: input.asOf, asRecorded };
  });
}
