// OpenTelemetry traces: off unless the standard OTEL_* variables name an exporter, and then
// one span per RPC (rpc/observe-interceptor.ts), a span for each write's wait and group
// (service/group-commit.ts), one per pass of a background job (traceJob) and one per
// database statement (store/database.ts), exported
// by @opentelemetry/sdk-node as those variables say (OTLP by default). The code that makes
// spans uses @opentelemetry/api only: with no SDK started its tracer is the API's no-op one,
// so tracing off costs a few no-op calls per RPC and nothing per statement.
import { type Attributes, context, ROOT_CONTEXT, type Span, type SpanContext, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";

/** tracer makes every Burndown span; a no-op until a tracer provider is registered (by startTracing, or a test). */
export const tracer = trace.getTracer("burndown-server");

/**
 * traceJob runs one pass of a background job (expiry, schedules, recharges, webhooks, the
 * self-check) in a root span of its own, "burndown.job <name>": its statements and
 * transactions nest beneath it, and a pass that throws marks it an error. A pass starts
 * no trace of any caller's; with tracing off it is the pass alone.
 */
export function traceJob<T>(name: string, pass: () => Promise<T>): Promise<T> {
  return inRootSpan(`burndown.job ${name}`, { "burndown.job": name }, [], pass);
}

/**
 * inRootSpan runs work in a new root span (never inside the trace current here) with
 * links to the span contexts given (the producers of a queued batch), ends it when work
 * settles, and marks it an error when work throws.
 */
export function inRootSpan<T>(name: string, attributes: Attributes, links: SpanContext[], work: () => Promise<T>): Promise<T> {
  const span = tracer.startSpan(name, { kind: SpanKind.INTERNAL, root: true, attributes, links: links.map((linked) => ({ context: linked })) }, ROOT_CONTEXT);
  if (!span.isRecording()) {
    span.end();
    return work();
  }
  return context.with(trace.setSpan(ROOT_CONTEXT, span), work).then(
    (value) => {
      span.end();
      return value;
    },
    (error: unknown) => {
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      if (error instanceof Error) span.recordException(error);
      span.end();
      throw error;
    },
  );
}

/** serviceNameDefault is service.name when OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) does not set one. */
export const serviceNameDefault = "burndown-server";

/** traceExporters are the OTEL_TRACES_EXPORTER values @opentelemetry/sdk-node knows. */
const traceExporters = new Set(["otlp", "console", "zipkin", "none"]);

/**
 * tracingWantedIn reads the OTEL_* variables as the specification means them: tracing is on
 * when OTEL_TRACES_EXPORTER names an exporter other than none, or when an OTLP endpoint is
 * set (the exporter is then OTLP); OTEL_SDK_DISABLED=true turns it off whatever else is set.
 * It throws on an exporter name the SDK would ignore, so a typo does not silently drop traces.
 */
export function tracingWantedIn(env: NodeJS.ProcessEnv): boolean {
  const disabled = env.OTEL_SDK_DISABLED?.trim().toLowerCase();
  if (disabled !== undefined && disabled !== "" && disabled !== "true" && disabled !== "false") {
    throw new Error(`OTEL_SDK_DISABLED must be true or false, got ${JSON.stringify(env.OTEL_SDK_DISABLED)}`);
  }
  const exporters = (env.OTEL_TRACES_EXPORTER ?? "")
    .split(",")
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== "");
  const unknown = exporters.find((name) => !traceExporters.has(name));
  if (unknown !== undefined) {
    throw new Error(`OTEL_TRACES_EXPORTER must list exporters among ${[...traceExporters].join(", ")}, got ${JSON.stringify(env.OTEL_TRACES_EXPORTER)}`);
  }
  if (disabled === "true") return false;
  if (exporters.length > 0) return !(exporters.length === 1 && exporters[0] === "none");
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

/** Tracing is a started OpenTelemetry SDK; stop flushes the spans it still holds. */
export interface Tracing {
  stop: () => Promise<void>;
}

/**
 * startTracing starts @opentelemetry/sdk-node for traces only (metrics are Prometheus's, on
 * the HTTP port, and logs are pino's on stdout): exporter, endpoint, sampler and propagators
 * come from the OTEL_* variables; service.name is burndown-server unless they name one.
 * The SDK registers W3C trace context propagation and an AsyncLocalStorage context manager.
 */
export async function startTracing(env: NodeJS.ProcessEnv): Promise<Tracing> {
  // Loaded only when tracing is on: a server without it never loads the SDK and its exporters.
  const { NodeSDK } = await import("@opentelemetry/sdk-node");
  const named = Boolean(env.OTEL_SERVICE_NAME?.trim()) || /(^|,)\s*service\.name\s*=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? "");
  const sdk = new NodeSDK({
    serviceName: named ? undefined : serviceNameDefault,
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [],
  });
  sdk.start();
  return { stop: () => sdk.shutdown() };
}

/** grpcErrorCodes are the gRPC codes a server span reports as an error (OpenTelemetry's RPC conventions); the rest are the caller's. */
const grpcErrorCodes = new Set([2, 4, 12, 13, 14, 15]);

/** endRpcSpan records a call's gRPC code on its span and ends it. */
export function endRpcSpan(span: Span, code: number, message: string | undefined): void {
  span.setAttribute("rpc.grpc.status_code", code);
  if (grpcErrorCodes.has(code)) span.setStatus({ code: SpanStatusCode.ERROR, message });
  span.end();
}
