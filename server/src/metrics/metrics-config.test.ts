// The metrics' and self-check's settings: their defaults, what they accept, and that a bad
// value stops the start with a message naming the setting and the value.
import { describe, expect, it } from "vitest";
import { readConfig } from "../config.js";
import { limits } from "../limits.js";

describe("BURNDOWN_METRICS_TOKEN", () => {
  it.each([undefined, ""])("unset (%j) leaves /metrics open", (value) => {
    expect(readConfig({ BURNDOWN_METRICS_TOKEN: value }).metricsToken).toBeNull();
  });

  it("is a bearer token of 16 to 200 visible characters", () => {
    expect(readConfig({ BURNDOWN_METRICS_TOKEN: "s3cret-metrics-token" }).metricsToken).toBe("s3cret-metrics-token");
  });

  it.each([
    ["a short one", "short"],
    ["one with a space", "has a space inside it"],
    ["a long one", "x".repeat(201)],
  ])("refuses %s, naming the setting", (_name, value) => {
    expect(() => readConfig({ BURNDOWN_METRICS_TOKEN: value })).toThrow(/^BURNDOWN_METRICS_TOKEN must be 16 to 200 visible ASCII characters/);
  });
});

describe("the self-check's settings", () => {
  it("default to a run every 15 minutes of 100 customers", () => {
    expect(readConfig({}).selfCheck).toEqual({ intervalMs: 15 * 60_000, sampleSize: 100 });
    expect(limits.selfCheckIntervalMsDefault).toBe(900_000);
  });

  it("0 turns it off; a sample is 1 to the limit", () => {
    expect(readConfig({ BURNDOWN_SELF_CHECK_INTERVAL_MS: "0", BURNDOWN_SELF_CHECK_SAMPLE: "1" }).selfCheck).toEqual({ intervalMs: 0, sampleSize: 1 });
    expect(readConfig({ BURNDOWN_SELF_CHECK_SAMPLE: String(limits.selfCheckSampleMax) }).selfCheck.sampleSize).toBe(limits.selfCheckSampleMax);
  });

  it.each([
    ["BURNDOWN_SELF_CHECK_INTERVAL_MS", "500", /^BURNDOWN_SELF_CHECK_INTERVAL_MS must be 0 \(off\) or from 1000 to 604800000 milliseconds, got "500"/],
    ["BURNDOWN_SELF_CHECK_INTERVAL_MS", "-1", /^BURNDOWN_SELF_CHECK_INTERVAL_MS must be an integer from 0 to 604800000, got "-1"/],
    ["BURNDOWN_SELF_CHECK_INTERVAL_MS", "hourly", /^BURNDOWN_SELF_CHECK_INTERVAL_MS must be an integer/],
    ["BURNDOWN_SELF_CHECK_SAMPLE", "0", /^BURNDOWN_SELF_CHECK_SAMPLE must be an integer from 1 to 10000, got "0"/],
    ["BURNDOWN_SELF_CHECK_SAMPLE", "10001", /^BURNDOWN_SELF_CHECK_SAMPLE must be an integer from 1 to 10000, got "10001"/],
  ])("refuses %s=%s", (name, value, message) => {
    expect(() => readConfig({ [name]: value })).toThrow(message);
  });
});
