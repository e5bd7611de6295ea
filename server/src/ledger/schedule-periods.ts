// The periods of a grant schedule. Period k (from 1) starts (k - 1) periods after the
// schedule's start; months and years are counted on the UTC calendar from the start
// itself, never from the previous period, so a start on the 31st falls on the last day
// of shorter months and comes back to the 31st after them. Nothing here does IO.
import { assert } from "./balance-state.js";

/** PeriodUnit is the unit of a schedule's period. */
export type PeriodUnit = "day" | "month" | "year";

/** SchedulePeriods is what the periods of a schedule depend on. */
export interface SchedulePeriods {
  startAt: Date;
  unit: PeriodUnit;
  length: number;
  /** null: forever. */
  periodCount: number | null;
  /** no period starting at or after this is granted; null while active. */
  endedAt: Date | null;
}

const dayMs = 86_400_000;

/** periodStart is when period index (from 1) starts. */
export function periodStart(schedule: SchedulePeriods, index: number): Date {
  assert(index >= 1 && Number.isInteger(index), "periods count from 1");
  const steps = (index - 1) * schedule.length;
  const start = schedule.startAt;
  if (schedule.unit === "day") return new Date(start.getTime() + steps * dayMs);
  const months = schedule.unit === "month" ? steps : steps * 12;
  const monthIndex = start.getUTCMonth() + months;
  const year = start.getUTCFullYear() + Math.floor(monthIndex / 12);
  const month = ((monthIndex % 12) + 12) % 12;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const day = Math.min(start.getUTCDate(), lastDay);
  return new Date(Date.UTC(year, month, day, start.getUTCHours(), start.getUTCMinutes(), start.getUTCSeconds(), start.getUTCMilliseconds()));
}

/** periodEnd is when period index ends: when the next one starts. */
export function periodEnd(schedule: SchedulePeriods, index: number): Date {
  const end = periodStart(schedule, index + 1);
  assert(end > periodStart(schedule, index), "a period has a length");
  return end;
}

/** isGranted says whether period index is one the schedule grants: within its count and starting before its end. */
export function isGranted(schedule: SchedulePeriods, index: number): boolean {
  if (schedule.periodCount !== null && index > schedule.periodCount) return false;
  return schedule.endedAt === null || periodStart(schedule, index) < schedule.endedAt;
}

/** nextDueAt is when period index is due, or null when the schedule grants it not. */
export function nextDueAt(schedule: SchedulePeriods, index: number): Date | null {
  return isGranted(schedule, index) ? periodStart(schedule, index) : null;
}
