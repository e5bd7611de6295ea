// W3C trace context on every call: the client writes traceparent and tracestate (and
// baggage, when the application's propagator carries it) from the active OpenTelemetry
// context into each request's headers, so the server's span for the call is a child of the
// caller's span. It uses @opentelemetry/api's propagation alone: in an application with no
// OpenTelemetry SDK the propagator is the API's no-op one and no header is written. The
// call path adds a span per call and one per attempt (callSpanInterceptor,
// attemptSpanInterceptor), no-op spans likewise without a provider.
import type { Interceptor } from "@connectrpc/connect";
import { context, propagation, type Span, SpanKind, SpanStatusCode, type TextMapSetter, trace } from "@opentelemetry/api";
import type { AttemptInterceptor, CallInfo, CallInterceptor } from "./call-path.js";

const headerSetter: TextMapSetter<Headers> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

/** traceContextInterceptor injects the active trace context into every request's headers. */
export function traceContextInterceptor(): Interceptor {
  return (next) => (req) => {
    propagation.inject(context.active(), req.header, headerSetter);
    return next(req);
  };
}

/** ledgerService is the service of every call the call path makes (CallInfo.method is its method's name). */
const ledgerService = "burndown.v1.LedgerService";

/** sdkTracer makes the client's spans: the API's no-op tracer until the application registers a provider. */
const sdkTracer = trace.getTracer("@burndown/sdk");

/**
 * callSpanInterceptor gives each logical call a span, "burndown.sdk <Method>", around its
 * attempts, backoffs and the breaker's decision: retries show as attempts under one call
 * instead of sibling server spans. It ends with the call's outcome (the request id, the
 * attempts made, and on failure the code and reason the caller sees). Without a recording
 * provider it costs one no-op span.
 */
export function callSpanInterceptor(): CallInterceptor {
  return (next) => (call, signal) => {
    const span = sdkTracer.startSpan(`burndown.sdk ${call.method}`, { kind: SpanKind.INTERNAL });
    if (!span.isRecording()) {
      span.end();
      return next(call, signal);
    }
    span.setAttributes(callAttributes(call));
    return inSpan(span, () => next(call, signal), (error) => {
      const failure = error as { reason?: string; attempts?: number };
      if (failure.reason) span.setAttribute("burndown.reason", failure.reason);
      if (failure.attempts !== undefined) span.setAttribute("burndown.attempts", failure.attempts);
    });
  };
}

/**
 * attemptSpanInterceptor gives each attempt a client span named as the RPC
 * ("burndown.v1.LedgerService/Reserve"), under the call's: the trace context each request
 * carries is the attempt's, so the server's span is its child.
 */
export function attemptSpanInterceptor(rpcSystem: "grpc" | "connect_rpc"): AttemptInterceptor {
  return (next) => (attempt) => {
    const span = sdkTracer.startSpan(`${ledgerService}/${attempt.call.method}`, { kind: SpanKind.CLIENT });
    if (!span.isRecording()) {
      span.end();
      return next(attempt);
    }
    span.setAttributes({ "rpc.system": rpcSystem, "rpc.service": ledgerService, "rpc.method": attempt.call.method, "burndown.attempt": attempt.attempt });
    return inSpan(span, () => next(attempt), () => {}, () => span.setAttribute("rpc.grpc.status_code", 0));
  };
}

/**
 * inSpan runs work with span active and ends the span when work settles; a failure sets
 * the span's status and code (the gRPC code of a ConnectError or BurndownError), then
 * onError adds what else it knows.
 */
function inSpan<T>(span: Span, work: () => Promise<T>, onError: (error: unknown) => void, onValue: () => void = () => {}): Promise<T> {
  return context.with(trace.setSpan(context.active(), span), work).then(
    (value) => {
      onValue();
      span.end();
      return value;
    },
    (error: unknown) => {
      const code = (error as { code?: number }).code;
      if (code !== undefined) span.setAttribute("rpc.grpc.status_code", code);
      onError(error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      span.end();
      throw error;
    },
  );
}

function callAttributes(call: CallInfo): Record<string, string> {
  const attributes: Record<string, string> = { "rpc.service": ledgerService, "rpc.method": call.method };
  if (call.requestId !== undefined) attributes["burndown.request_id"] = call.requestId;
  if (call.customerId !== undefined) attributes["burndown.customer_id"] = call.customerId;
  if (call.featureKey !== undefined) attributes["burndown.feature_key"] = call.featureKey;
  return attributes;
}
