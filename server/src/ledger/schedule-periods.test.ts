import { describe, expect, it } from "vitest";
import { isGranted, periodEnd, periodStart, type SchedulePeriods } from "./schedule-periods.js";

const schedule = (startAt: string, unit: SchedulePeriods["unit"], length = 1, periodCount: number | null = null): SchedulePeriods => ({
  startAt: new Date(startAt),
  unit,
  length,
  periodCount,
  endedAt: null,
});

describe("schedule periods", () => {
  it.each([
    ["days count 24 hours each", schedule("2030-01-01T00:00:00Z", "day", 30), 3, "2030-03-02T00:00:00.000Z"],
    ["months keep the start's day and time", schedule("2030-01-15T09:30:00Z", "month"), 3, "2030-03-15T09:30:00.000Z"],
    ["a start on the 31st falls on the last day of a shorter month", schedule("2030-01-31T00:00:00Z", "month"), 2, "2030-02-28T00:00:00.000Z"],
    ["and comes back to the 31st after it", schedule("2030-01-31T00:00:00Z", "month"), 3, "2030-03-31T00:00:00.000Z"],
    ["months cross years", schedule("2030-11-01T00:00:00Z", "month", 2), 2, "2031-01-01T00:00:00.000Z"],
    ["years are twelve months, leap days clamped", schedule("2032-02-29T00:00:00Z", "year"), 2, "2033-02-28T00:00:00.000Z"],
  ])("%s", (_name, periods, index, expected) => {
    expect(periodStart(periods, index).toISOString()).toBe(expected);
  });

  it("a period ends when the next starts", () => {
    const periods = schedule("2030-01-31T00:00:00Z", "month");
    expect(periodEnd(periods, 1)).toEqual(periodStart(periods, 2));
  });

  it("a schedule grants its count of periods, and none starting at or after its end", () => {
    expect(isGranted(schedule("2030-01-01T00:00:00Z", "month", 1, 2), 2)).toBe(true);
    expect(isGranted(schedule("2030-01-01T00:00:00Z", "month", 1, 2), 3)).toBe(false);
    const ended = { ...schedule("2030-01-01T00:00:00Z", "month"), endedAt: new Date("2030-02-01T00:00:00Z") };
    expect(isGranted(ended, 1)).toBe(true);
    expect(isGranted(ended, 2)).toBe(false);
  });
});
