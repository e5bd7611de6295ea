// Grant schedules: a customer's own recurring grants (CreateGrantSchedule,
// CancelGrantSchedule), and grantDuePeriods, which grants what is due of some schedules,
// one period per transaction of the write path (grant-period.ts), catching up missed
// periods in order. Subscriptions make their schedules through insertSchedules.
import { randomUUID } from "node:crypto";
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { nextDueAt, periodStart } from "../ledger/schedule-periods.js";
import { limits } from "../limits.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { insertCustomer, selectCreditType } from "../store/catalog-store.js";
import { mapDriverErrors, type Tx } from "../store/database.js";
import {
  type Allotment,
  allotmentJson,
  endSchedule,
  insertSchedule,
  type RolloverRow,
  type ScheduleRow,
  selectRollovers,
  selectSchedule,
  selectSchedules,
} from "../store/plan-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { grantPeriodOp } from "./grant-period.js";
import { runIdempotent } from "./run-idempotent.js";

/** ScheduleInput is a validated CreateGrantSchedule request. */
export interface ScheduleInput {
  customerId: string;
  allotment: Allotment;
  source: string;
  reasonCode: string;
  /** null: now. */
  startAt: Date | null;
  periodCount: number | null;
}

/** insertSchedules makes one schedule per allotment for a customer, who is created if missing. The caller audits. */
export async function insertSchedules(
  tx: Tx,
  caller: Caller,
  input: { customerId: string; subscriptionId: string | null; allotments: Allotment[]; source: string; reasonCode: string; startAt: Date; periodCount: number | null },
): Promise<ScheduleRow[]> {
  await insertCustomer(tx, { customerId: input.customerId, displayName: "" });
  const schedules: ScheduleRow[] = [];
  for (const allotment of input.allotments) {
    if ((await selectCreditType(tx, allotment.creditTypeId)) === null) throw notFound("CREDIT_TYPE_NOT_FOUND", "credit type id", allotment.creditTypeId);
    schedules.push(
      await insertSchedule(tx, {
        ...allotment,
        scheduleId: randomUUID(),
        customerId: input.customerId,
        subscriptionId: input.subscriptionId,
        source: input.source,
        reasonCode: input.reasonCode,
        startAt: input.startAt,
        periodCount: input.periodCount,
        createdBy: caller.keyId,
      }),
    );
  }
  return schedules;
}

/** createGrantSchedule makes a customer's own schedule, audited, and grants period 1 if its start has come. */
export async function createGrantSchedule(deps: Deps, caller: Caller, idempotency: Idempotency, input: ScheduleInput): Promise<ScheduleRow> {
  const created = await runIdempotent(deps, caller, idempotency, async (tx) => {
    const [schedule] = await insertSchedules(tx, caller, { ...input, subscriptionId: null, allotments: [input.allotment], startAt: input.startAt ?? deps.now() });
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "create_grant_schedule",
      target: `customer:${input.customerId}`,
      reason: input.reasonCode,
      details: { old: null, new: scheduleJson(schedule) },
    });
    return schedule;
  });
  await grantDuePeriods(deps, [created.scheduleId]);
  return readSchedule(deps, created.scheduleId);
}

/** cancelGrantSchedule stops a customer's own schedule from now, audited. */
export async function cancelGrantSchedule(deps: Deps, caller: Caller, idempotency: Idempotency, input: { scheduleId: string; note: string }): Promise<ScheduleRow> {
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const schedule = await selectSchedule(tx, input.scheduleId, "update");
    if (schedule === null) throw notFound("SCHEDULE_NOT_FOUND", "schedule id", input.scheduleId);
    if (schedule.endedAt !== null || schedule.subscriptionId !== null) {
      throw new LedgerError("rejected", "SCHEDULE_NOT_ACTIVE", schedule.subscriptionId !== null ? "the schedule belongs to a subscription: cancel the subscription" : "the schedule was cancelled already", {
        schedule_id: schedule.scheduleId,
      });
    }
    const ended = await endSchedules(tx, [schedule], deps.now());
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "cancel_grant_schedule",
      target: `customer:${schedule.customerId}`,
      reason: input.note,
      details: { old: { ended_at: null }, new: { ended_at: ended[0].endedAt?.toISOString() ?? null }, schedule_id: schedule.scheduleId },
    });
    return ended[0];
  });
}

/** endSchedules stops schedules as of endedAt: no period starting at or after it is granted. The caller holds their rows' locks. */
export async function endSchedules(tx: Tx, schedules: ScheduleRow[], endedAt: Date): Promise<ScheduleRow[]> {
  const ended: ScheduleRow[] = [];
  for (const schedule of schedules) {
    if (schedule.endedAt !== null) continue;
    ended.push(await endSchedule(tx, { scheduleId: schedule.scheduleId, endedAt, nextDueAt: nextDueAt({ ...schedule, endedAt }, schedule.nextPeriod) }));
  }
  return ended;
}

/** scheduleJson is a schedule as the audit log keeps it. */
export function scheduleJson(schedule: ScheduleRow) {
  return {
    schedule_id: schedule.scheduleId,
    subscription_id: schedule.subscriptionId,
    allotment: allotmentJson(schedule),
    source: schedule.source,
    reason_code: schedule.reasonCode,
    start_time: schedule.startAt.toISOString(),
    period_count: schedule.periodCount,
  };
}

async function readSchedule(deps: Deps, scheduleId: string): Promise<ScheduleRow> {
  const schedule = await mapDriverErrors(() => selectSchedule(deps.pool, scheduleId, "none"));
  assert(schedule !== null, "a schedule is never deleted");
  return schedule;
}

/** listGrantSchedules reads a customer's schedules, newest first. */
export async function listGrantSchedules(deps: Deps, customerId: string): Promise<ScheduleRow[]> {
  return mapDriverErrors(() => selectSchedules(deps.pool, { customerId, subscriptionId: null, limit: limits.customerPlanRowsListedMax }));
}

/** listRollovers reads a customer's rollovers, newest first. */
export async function listRollovers(deps: Deps, customerId: string): Promise<RolloverRow[]> {
  return mapDriverErrors(() => selectRollovers(deps.pool, customerId, limits.customerPlanRowsListedMax));
}

/**
 * grantDuePeriods grants every period due now of these schedules, oldest first, each in
 * its own transaction; returns how many it granted. A period another replica granted
 * meanwhile is simply found granted. At most schedulePeriodsPerPassMax periods.
 */
export async function grantDuePeriods(deps: Deps, scheduleIds: string[]): Promise<number> {
  let granted = 0;
  for (const scheduleId of scheduleIds) {
    for (let step = 0; step < limits.periodCountMax && granted < limits.schedulePeriodsPerPassMax; step++) {
      const schedule = await readSchedule(deps, scheduleId);
      if (schedule.nextDueAt === null || schedule.nextDueAt > deps.now()) break;
      assert(schedule.nextDueAt.getTime() === periodStart(schedule, schedule.nextPeriod).getTime(), "a schedule is due at its next period's start");
      const outcome = await deps.writes.submit(grantPeriodOp(scheduleId, schedule.customerId, schedule.creditTypeId, schedule.nextPeriod));
      if (outcome === "granted") granted++;
    }
  }
  return granted;
}
