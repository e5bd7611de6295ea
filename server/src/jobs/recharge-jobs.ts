// The recharge job: opens recharge orders for balances the write path flagged, and asks
// again for the payment of failed recharges whose retry time came (service/open-recharge.ts).
// Each item is its own transaction and claims its row with SKIP LOCKED, so any number of
// replicas can run it at once. The write path kicks it right after a group that flagged a
// balance, so an order opens within milliseconds of the crossing; the periodic pass covers
// a restart (flags left by a replica that died) and the retries.
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { creditOnCreationOp } from "../service/credit-recharge.js";
import { askRetry, type DueOutcome, openDueRecharge } from "../service/open-recharge.js";
import { mapDriverErrors } from "../store/database.js";
import { selectUncreditedRecharges } from "../store/recharge-store.js";
import { traceJob } from "../tracing.js";

/** RechargePass counts what one pass did. */
export interface RechargePass {
  opened: number;
  capped: number;
  retried: number;
  credited: number;
}

/** runRechargePass handles up to jobBatchSizeMax flags and as many due retries. */
export async function runRechargePass(deps: Deps): Promise<RechargePass> {
  const pass: RechargePass = { opened: 0, capped: 0, retried: 0, credited: 0 };
  for (let i = 0; i < limits.jobBatchSizeMax; i++) {
    const outcome: DueOutcome = await openDueRecharge(deps);
    if (outcome === "none_due") break;
    if (outcome === "opened") pass.opened++;
    if (outcome === "cap_reached") pass.capped++;
  }
  for (let i = 0; i < limits.jobBatchSizeMax; i++) {
    if (!(await askRetry(deps))) break;
    pass.retried++;
  }
  // Orders to credit on creation: those just opened, and any a killed process opened but never credited.
  for (const order of await mapDriverErrors(() => selectUncreditedRecharges(deps.pool, limits.jobBatchSizeMax))) {
    if (await deps.writes.submit(creditOnCreationOp(order))) pass.credited++;
  }
  return pass;
}

/** RechargeJobs runs passes on a timer and on a kick. */
export interface RechargeJobs {
  /** kick runs a pass now (or right after the one running). */
  kick: () => void;
  stop: () => Promise<void>;
}

/** startRechargeJobs runs a pass every intervalMs (0: only when kicked) until stopped; a failed pass is logged and retried next time. */
export function startRechargeJobs(deps: Deps, intervalMs: number, log: (message: string) => void): RechargeJobs {
  let running: Promise<unknown> | null = null;
  let again = false;
  let stopped = false;
  const run = (): void => {
    if (stopped) return;
    if (running !== null) {
      again = true;
      return;
    }
    again = false;
    running = traceJob("recharge", () => runRechargePass(deps))
      .catch((error: unknown) => log(`recharge pass failed, retrying next time: ${error instanceof Error ? error.message : String(error)}`))
      .finally(() => {
        running = null;
        if (again) run();
      });
  };
  const timer = intervalMs > 0 ? setInterval(run, intervalMs) : null;
  timer?.unref();
  return {
    kick: run,
    stop: async () => {
      stopped = true;
      if (timer !== null) clearInterval(timer);
      while (running !== null) await running;
    },
  };
}
