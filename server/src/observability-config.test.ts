// BURNDOWN_LOG_LEVEL and the OTEL_* variables that turn tracing on, as readConfig reads them:
// tracing is on only when an exporter is named or an OTLP endpoint set, and never when
// OTEL_SDK_DISABLED=true or the only exporter is none.
import { describe, expect, it } from "vitest";
import { readConfig } from "./config.js";

describe("OpenTelemetry tracing", () => {
  it.each([
    ["no OTEL_* variable", {}, false],
    ["an OTLP endpoint", { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }, true],
    ["an OTLP traces endpoint", { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://collector:4318/v1/traces" }, true],
    ["an exporter named", { OTEL_TRACES_EXPORTER: "console" }, true],
    ["otlp named, endpoint left to its default", { OTEL_TRACES_EXPORTER: "otlp" }, true],
    ["the exporter none, with an endpoint", { OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }, false],
    ["OTEL_SDK_DISABLED=true with an endpoint", { OTEL_SDK_DISABLED: "true", OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }, false],
    ["OTEL_SDK_DISABLED=TRUE with an exporter", { OTEL_SDK_DISABLED: "TRUE", OTEL_TRACES_EXPORTER: "otlp" }, false],
    ["OTEL_SDK_DISABLED=false with an endpoint", { OTEL_SDK_DISABLED: "false", OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }, true],
    ["an empty endpoint", { OTEL_EXPORTER_OTLP_ENDPOINT: " " }, false],
    ["a metrics endpoint only", { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "http://collector:4318/v1/metrics" }, false],
  ])("with %s is %s", (_name, env, on) => {
    expect(readConfig(env).tracing).toBe(on);
  });

  it("refuses an exporter the SDK does not know, and a OTEL_SDK_DISABLED that is not a boolean, naming the variable", () => {
    expect(() => readConfig({ OTEL_TRACES_EXPORTER: "otpl" })).toThrow(/^OTEL_TRACES_EXPORTER must list exporters among otlp, console, zipkin, none, got "otpl"/);
    expect(() => readConfig({ OTEL_SDK_DISABLED: "yes" })).toThrow(/^OTEL_SDK_DISABLED must be true or false, got "yes"/);
  });
});

describe("BURNDOWN_LOG_LEVEL", () => {
  it("is info by default and takes pino's levels and silent, in any case", () => {
    expect(readConfig({}).logLevel).toBe("info");
    expect(readConfig({ BURNDOWN_LOG_LEVEL: "" }).logLevel).toBe("info");
    for (const level of ["trace", "debug", "info", "warn", "error", "fatal", "silent"]) expect(readConfig({ BURNDOWN_LOG_LEVEL: level }).logLevel).toBe(level);
    expect(readConfig({ BURNDOWN_LOG_LEVEL: " WARN " }).logLevel).toBe("warn");
  });

  it("refuses any other value, naming the variable and what it allows", () => {
    expect(() => readConfig({ BURNDOWN_LOG_LEVEL: "verbose" })).toThrow('BURNDOWN_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent, got "verbose"');
  });
});
