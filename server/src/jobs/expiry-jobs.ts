// Background expiry: reservations past their TTL are released and lots past their expiry
// lose their free part. Each item runs in its own transaction and skips balances another
// transaction holds (FOR UPDATE SKIP LOCKED), so any number of replicas can run the jobs
// at once; the work is idempotent by state, so a skipped item is simply taken next pass.
import { planUpkeep } from "../ledger/plan.js";
import { limits } from "../limits.js";
import { loadBalance, writeChange } from "../service/balance-change.js";
import type { Deps } from "../service/context.js";
import { expireReservation } from "../service/resolve-reservation.js";
import { selectDueBalances } from "../store/balance-store.js";
import { mapDriverErrors, withTransaction } from "../store/database.js";
import { selectDueReservations } from "../store/reservation-store.js";
import { deleteExpiredEventIds } from "../store/usage-store.js";

/** ExpiryPass counts what one pass did. */
export interface ExpiryPass {
  reservationsExpired: number;
  balancesExpired: number;
  /** items whose transaction failed; each is logged and retried next pass. */
  itemsFailed: number;
}

/**
 * forgetOldEventIds drops usage dedup claims older than the retention window (bounded
 * per call), so a reporter may reuse an event id after it. Returns how many it dropped.
 */
export async function forgetOldEventIds(deps: Deps): Promise<number> {
  const before = new Date(deps.now().getTime() - deps.usage.dedupRetentionMs);
  return mapDriverErrors(() => deleteExpiredEventIds(deps.pool, before, limits.jobBatchSizeMax * 10));
}

/**
 * runExpiryPass expires what is due now, up to jobBatchSizeMax items of each kind. Each
 * item is its own transaction, and one that fails ("crash the item, not the pass") is
 * logged and left for the next pass while the others go on.
 */
export async function runExpiryPass(deps: Deps, log: (message: string) => void = () => {}): Promise<ExpiryPass> {
  const now = deps.now();
  const pass: ExpiryPass = { reservationsExpired: 0, balancesExpired: 0, itemsFailed: 0 };
  const isolated = async (what: string, work: () => Promise<boolean>) => {
    try {
      return await work();
    } catch (error) {
      pass.itemsFailed++;
      log(`expiry of ${what} failed, retrying next pass: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    }
  };
  for (const reservation of await selectDueReservations(deps.pool, now, limits.jobBatchSizeMax)) {
    const expired = await isolated(`reservation ${reservation.reservationId}`, async () =>
      (await withTransaction(deps.pool, (tx) => expireReservation(tx, deps.now, reservation))) !== null,
    );
    if (expired) pass.reservationsExpired++;
  }
  for (const key of await selectDueBalances(deps.pool, now, limits.jobBatchSizeMax)) {
    const wrote = await isolated(`lots of ${key.customerId}/${key.creditTypeId}`, () => withTransaction(deps.pool, async (tx) => {
      const loaded = await loadBalance(tx, key, deps.now, { skipLocked: true });
      if (loaded === null) return false;
      const { state: before, now: decidedAt } = loaded;
      const planned = planUpkeep(before, decidedAt.getTime());
      if (planned.entries.length === 0) return false;
      await writeChange(tx, key, before, planned, { reservationId: null, requestId: null, actor: "system", reasonCode: "lot_expired", effectiveAt: decidedAt });
      return true;
    }));
    if (wrote) pass.balancesExpired++;
  }
  return pass;
}

/** startExpiryJobs runs passes every intervalMs until stopped; a failed pass is logged and retried next tick. */
export function startExpiryJobs(deps: Deps, intervalMs: number, log: (message: string) => void): { stop: () => Promise<void> } {
  let running: Promise<unknown> | null = null;
  let stopped = false;
  const timer = setInterval(() => {
    // One pass at a time: a slow pass delays the next tick instead of queueing passes.
    if (stopped || running !== null) return;
    running = runExpiryPass(deps, log)
      .then(() => forgetOldEventIds(deps))
      .catch((error: unknown) => {
        log(`expiry pass failed, retrying next tick: ${error instanceof Error ? error.message : String(error)}`);
      })
      .finally(() => {
        running = null;
      });
  }, intervalMs);
  timer.unref();
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      if (running !== null) await running;
    },
  };
}
