// One period of a grant schedule, granted exactly once. One op of the write path that
// runs alone (it has a load): under the customer's balance lock it locks the schedule
// row and checks the period is still the next one due; the period's lot, its grant entry,
// the rollover of the previous period's lot (if the allotment rolls over) and the
// (schedule, period) row commit in one transaction. The primary key of that row is the
// guard: a second grant of a period, by any replica, fails there and writes nothing.
import { randomUUID } from "node:crypto";
import { assert, type BalanceState } from "../ledger/balance-state.js";
import { planGrant, planRollover } from "../ledger/plan.js";
import { nextDueAt, periodEnd, periodStart } from "../ledger/schedule-periods.js";
import type { BalanceKey } from "../store/balance-store.js";
import { selectLotsByIds } from "../store/correction-store.js";
import { insertRollover, insertScheduleGrant, updateLotExpired, type ScheduleRow, selectPeriodGrantId, selectSchedule } from "../store/plan-store.js";
import { loadedState, lotOf, type PlanContext, type WriteOp } from "./write-op.js";

/** PeriodOutcome says what one op did: granted the period, or found it granted (or no longer due) already. */
export type PeriodOutcome = "granted" | "not_due";

/** rolloverReasonCode is the reason code of a rollover's entries and lot. */
export const rolloverReasonCode = "rollover";

/**
 * requestIdOf is the request id a period's lot records (grants need one): the schedule and
 * the period. Its entries carry none, as every change a background job makes.
 */
function requestIdOf(scheduleId: string, periodIndex: number): string {
  return `schedule:${scheduleId}:${periodIndex}`;
}

/** lotExpiryOf is when a period's lot expires, or null. */
function lotExpiryOf(schedule: ScheduleRow, periodIndex: number): Date | null {
  if (schedule.lotExpiry.kind === "never") return null;
  if (schedule.lotExpiry.kind === "period_end") return periodEnd(schedule, periodIndex);
  return new Date(periodStart(schedule, periodIndex).getTime() + Number(schedule.lotExpiry.seconds) * 1000);
}

/** rolloverCapOf is the most of an allotment's lot that rolls over, or 0n. */
export function rolloverCapOf(schedule: Pick<ScheduleRow, "amount" | "rollover">): bigint {
  if (schedule.rollover === null) return 0n;
  if (schedule.rollover.kind === "amount") return schedule.rollover.amount;
  return (schedule.amount * BigInt(schedule.rollover.percent)) / 100n;
}

/** grantPeriodOp grants period periodIndex of a schedule, if it is still the next one due. */
export function grantPeriodOp(scheduleId: string, customerId: string, creditTypeId: string, periodIndex: number): WriteOp<PeriodOutcome> {
  const key: BalanceKey = { customerId, creditTypeId };
  let locked: ScheduleRow | null = null;
  let previousGrantId: string | null = null;
  let decided: PeriodDecision | null = null;
  return {
    lane: { customerId },
    weight: 1,
    request: (reads) => void reads.creditTypeIds.push(creditTypeId),
    prepare: () => ({ keys: [key], customerIds: [customerId], createCustomers: [customerId], createBalances: [key] }),
    load: async (tx, view) => {
      decided = null;
      previousGrantId = null;
      // After the balance lock, as every grant of this schedule takes them.
      locked = await selectSchedule(tx, scheduleId, "update");
      if (locked === null || locked.nextPeriod !== periodIndex || locked.nextDueAt === null || locked.nextDueAt > view.now) return;
      if (rolloverCapOf(locked) === 0n || periodIndex === 1) return;
      previousGrantId = await selectPeriodGrantId(tx, scheduleId, periodIndex - 1);
      // The previous period's lot may be spent or expired, and so not loaded with the balance.
      if (previousGrantId !== null) view.addLots(key, await selectLotsByIds(tx, customerId, [previousGrantId]));
    },
    plan: (ctx) => {
      const schedule = locked;
      if (schedule === null || schedule.nextPeriod !== periodIndex || schedule.nextDueAt === null || schedule.nextDueAt > ctx.now) return { value: "not_due" };
      decided = planPeriod(ctx, schedule, periodIndex, previousGrantId);
      return { value: "granted" };
    },
    store: async (tx) => {
      if (decided === null) return;
      const schedule = locked;
      assert(schedule !== null, "a decided period has its schedule");
      await insertScheduleGrant(tx, {
        scheduleId,
        periodIndex,
        customerId,
        grantId: decided.grantId,
        periodStart: periodStart(schedule, periodIndex),
        periodEnd: periodEnd(schedule, periodIndex),
        nextDueAt: nextDueAt(schedule, periodIndex + 1),
      });
      if (decided.rollover !== null) await insertRollover(tx, { scheduleId, periodIndex: periodIndex - 1, customerId, ...decided.rollover });
      // A missed period caught up after its end expires its new lot at once; the writer
      // inserts a new lot with nothing expired, so that part is recorded here.
      for (const lot of decided.expiredNewLots) await updateLotExpired(tx, { customerId, ...lot });
    },
  };
}

/** PeriodDecision is what a period's plan decided, for the rows the op stores itself. */
interface PeriodDecision {
  grantId: string;
  rollover: { toGrantId: string | null; amount: bigint; fromGrantId: string } | null;
  expiredNewLots: { grantId: string; expired: bigint }[];
}

/** expiredNewLotsOf lists the new lots that expired in their own plan (a period caught up after its end). */
function expiredNewLotsOf(state: BalanceState, grantIds: string[]): { grantId: string; expired: bigint }[] {
  return state.lots.filter((lot) => grantIds.includes(lot.grantId) && lot.expired > 0n).map((lot) => ({ grantId: lot.grantId, expired: lot.expired }));
}

/** planPeriod plans the previous period's rollover (when the allotment rolls over), then the period's lot. */
function planPeriod(ctx: PlanContext, schedule: ScheduleRow, periodIndex: number, previousGrantId: string | null): PeriodDecision {
  const key = { customerId: schedule.customerId, creditTypeId: schedule.creditTypeId };
  const requestId = requestIdOf(schedule.scheduleId, periodIndex);
  const effectiveAt = periodStart(schedule, periodIndex);
  const expiresAt = lotExpiryOf(schedule, periodIndex);
  const base = { ...key, source: schedule.source, held: 0n, priority: 0, effectiveAt, expiresAt, costBasisMicros: 0n, note: `schedule ${schedule.scheduleId} period ${periodIndex}`, requestId, actor: "system", activationDue: effectiveAt > ctx.now };
  let rollover: PeriodDecision["rollover"] = null;
  const newGrantIds: string[] = [];
  const cap = rolloverCapOf(schedule);
  if (previousGrantId !== null && cap > 0n) {
    // Before the period's lot: the rollover lot then burns first (same expiry, an earlier seq).
    const toGrantId = randomUUID();
    const toLot = { grantId: toGrantId, priority: 0, effectiveAtMs: effectiveAt.getTime(), expiresAtMs: expiresAt?.getTime() ?? null, seq: ctx.nextLotSeq() };
    const rolled = planRollover(loadedState(ctx.draft.state(key), key), { fromGrantId: previousGrantId, cap, toLot }, ctx.now.getTime());
    if (rolled.rolled > 0n) {
      ctx.draft.newLot({ ...base, grantId: toGrantId, source: "rollover", amount: rolled.rolled, remaining: rolled.rolled, reasonCode: rolloverReasonCode });
      newGrantIds.push(toGrantId);
    }
    ctx.draft.change(key, rolled, { reservationId: null, requestId: null, actor: "system", reasonCode: rolloverReasonCode, effectiveAt: ctx.now });
    rollover = { fromGrantId: previousGrantId, toGrantId: rolled.rolled > 0n ? toGrantId : null, amount: rolled.rolled };
  }
  const grantId = randomUUID();
  const before = loadedState(ctx.draft.state(key), key);
  const lot = lotOf({ grantId, amount: schedule.amount, priority: 0, effectiveAt, expiresAt }, ctx.nextLotSeq());
  const granted = planGrant({ ...before, lots: [...before.lots, lot] }, grantId, ctx.now.getTime());
  ctx.draft.newLot({ ...base, grantId, amount: schedule.amount, remaining: schedule.amount, reasonCode: schedule.reasonCode });
  ctx.draft.change(key, granted, { reservationId: null, requestId: null, actor: "system", reasonCode: schedule.reasonCode, effectiveAt: ctx.now });
  newGrantIds.push(grantId);
  return { grantId, rollover, expiredNewLots: expiredNewLotsOf(granted.state, newGrantIds) };
}
