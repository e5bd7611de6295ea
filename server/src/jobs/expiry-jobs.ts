// Background expiry: reservations past their TTL are released and lots past their expiry
// lose their free part. A pass runs its items as groups of the write path
// (service/write-group.ts), one per customer-hash partition, that skip balances another
// transaction holds (FOR UPDATE SKIP LOCKED), so any number of replicas can run the jobs
// at once; the work is idempotent by state, so a skipped item is simply taken next pass.
// An item that fails is run alone by its group and logged; the others go on.
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { customerHash } from "../service/customer-hash.js";
import { expireLotsOp } from "../service/expire-lots.js";
import { expireReservationOp } from "../service/resolve-reservation.js";
import { runWriteGroup } from "../service/write-group.js";
import type { Outcome, WriteOp } from "../service/write-op.js";
import { selectDueBalances } from "../store/balance-store.js";
import { mapDriverErrors } from "../store/database.js";
import { selectDueReservations } from "../store/reservation-store.js";
import { deleteExpiredConflicts, deleteExpiredEventIds } from "../store/usage-store.js";
import { every, type Periodic } from "./periodic.js";
import { traceJob } from "../tracing.js";

/** ExpiryPass counts what one pass did. */
export interface ExpiryPass {
  reservationsExpired: number;
  balancesExpired: number;
  /** items whose transaction failed; each is logged and retried next pass. */
  itemsFailed: number;
}

/**
 * forgetOldEventIds drops usage dedup claims older than the retention window (bounded
 * per call), so a reporter may reuse an event id after it, and the conflicts kept for
 * ids reused within it. Returns how many claims and conflicts it dropped.
 */
export async function forgetOldEventIds(deps: Deps): Promise<number> {
  const before = new Date(deps.now().getTime() - deps.usage.dedupRetentionMs);
  const claims = await mapDriverErrors(() => deleteExpiredEventIds(deps.pool, before, limits.jobBatchSizeMax * 10));
  const conflicts = await mapDriverErrors(() => deleteExpiredConflicts(deps.pool, before, limits.jobBatchSizeMax * 10));
  return claims + conflicts;
}

/** Due is one item of a pass: what it is (for the log), the customer it touches, and its op. */
interface Due {
  what: string;
  customerId: string;
  kind: "reservation" | "lots";
  op: WriteOp<unknown>;
}

/**
 * runExpiryPass expires what is due now, up to jobBatchSizeMax items of each kind, as one
 * group per customer-hash partition. An item that fails ("crash the item, not the pass")
 * is logged and left for the next pass while the others go on.
 */
export async function runExpiryPass(deps: Deps, log: (message: string) => void = () => {}): Promise<ExpiryPass> {
  const now = deps.now();
  const pass: ExpiryPass = { reservationsExpired: 0, balancesExpired: 0, itemsFailed: 0 };
  const reservations = await mapDriverErrors(() => selectDueReservations(deps.pool, now, limits.jobBatchSizeMax));
  const balances = await mapDriverErrors(() => selectDueBalances(deps.pool, now, limits.jobBatchSizeMax));
  const due: Due[] = [
    ...reservations.map((r): Due => ({ what: `reservation ${r.reservationId}`, customerId: r.customerId, kind: "reservation", op: expireReservationOp(r.reservationId) })),
    ...balances.map((due): Due => ({ what: `lots of ${due.key.customerId}/${due.key.creditTypeId}`, customerId: due.key.customerId, kind: "lots", op: expireLotsOp(due) })),
  ];
  const partitions = deps.writes.options.partitions;
  for (let index = 0; index < partitions; index++) {
    const items = due.filter((item) => customerHash(item.customerId) % partitions === index);
    if (items.length === 0) continue;
    const outcomes = await runWriteGroup(deps, items.map((item) => item.op), { skipLocked: true, partition: { index, count: partitions } });
    items.forEach((item, i) => count(pass, item, outcomes[i] as Outcome<unknown>, log));
  }
  return pass;
}

function count(pass: ExpiryPass, item: Due, outcome: Outcome<unknown>, log: (message: string) => void): void {
  if (!outcome.ok) {
    pass.itemsFailed++;
    const error = outcome.error;
    log(`expiry of ${item.what} failed, retrying next pass: ${error instanceof Error ? error.message : String(error)}`);
  } else if (outcome.value !== null && outcome.value !== false) {
    if (item.kind === "reservation") pass.reservationsExpired++;
    else pass.balancesExpired++;
  }
}

/** startExpiryJobs runs passes every intervalMs until stopped; a failed pass is logged and retried next tick. */
export function startExpiryJobs(deps: Deps, intervalMs: number, log: (message: string) => void): Periodic {
  return every(intervalMs, () =>
    traceJob("expiry", () => runExpiryPass(deps, log).then(() => forgetOldEventIds(deps)))
      .catch((error: unknown) => {
        log(`expiry pass failed, retrying next tick: ${error instanceof Error ? error.message : String(error)}`);
      }),
  );
}
