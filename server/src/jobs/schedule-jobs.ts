// The scheduler: grants the periods of grant schedules that have come due, catching up
// missed ones after downtime, each period in its own transaction of the write path
// (service/grant-period.ts). Any number of replicas may run it at once: each period's lot
// is written with its (schedule, period) row under the schedule's row lock, and a replica
// that finds the period granted already writes nothing. A schedule that fails is logged
// and taken again next pass; the others go on.
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { grantDuePeriods } from "../service/grant-schedules.js";
import { mapDriverErrors } from "../store/database.js";
import { selectDueSchedules } from "../store/plan-store.js";
import { every, type Periodic } from "./periodic.js";
import { traceJob } from "../tracing.js";

/** SchedulePass counts what one pass did. */
export interface SchedulePass {
  periodsGranted: number;
  /** schedules whose grant failed; each is logged and retried next pass. */
  schedulesFailed: number;
}

/** runSchedulePass grants every period due now of up to jobBatchSizeMax schedules, earliest due first. */
export async function runSchedulePass(deps: Deps, log: (message: string) => void = () => {}): Promise<SchedulePass> {
  const pass: SchedulePass = { periodsGranted: 0, schedulesFailed: 0 };
  const due = await mapDriverErrors(() => selectDueSchedules(deps.pool, deps.now(), limits.jobBatchSizeMax));
  for (const schedule of due) {
    try {
      pass.periodsGranted += await grantDuePeriods(deps, [schedule.scheduleId]);
    } catch (error) {
      pass.schedulesFailed++;
      log(`scheduled grant of ${schedule.scheduleId} failed, retrying next pass: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return pass;
}

/** startScheduleJobs runs passes every intervalMs until stopped; one pass at a time. */
export function startScheduleJobs(deps: Deps, intervalMs: number, log: (message: string) => void): Periodic {
  return every(intervalMs, () => traceJob("schedules", () => runSchedulePass(deps, log)).catch((error: unknown) => log(`schedule pass failed, retrying next tick: ${error instanceof Error ? error.message : String(error)}`)));
}
