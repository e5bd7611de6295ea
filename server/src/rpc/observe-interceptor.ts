// What an operator sees of each call: its server span (a child of the caller's span when
// the call carries W3C traceparent/tracestate, as the SDK sends it) and one log line with
// the request id, method, caller key id, gRPC code and duration. The interceptor is the
// outermost, so it times and reports every answer, refusals by the other interceptors
// included. Bodies, headers and tokens are never logged. The request id also goes on in the
// call's context values (requestIdKey), for the audit records the call writes.
import { randomUUID } from "node:crypto";
import { Code, ConnectError, type Interceptor, type StreamResponse, type UnaryResponse } from "@connectrpc/connect";
import { ROOT_CONTEXT, type Span, SpanKind, type TextMapGetter, context, isSpanContextValid, propagation, trace } from "@opentelemetry/api";
import { type Logger, requestLoggerOf } from "../logger.js";
import { endRpcSpan, tracer } from "../tracing.js";
import { callerKey, requestIdKey } from "./interceptors.js";

/** requestIdHeader carries the request id in both directions: taken from the caller when well formed, always answered. */
export const requestIdHeader = "x-request-id";

/** a caller's request id is kept when it is 1 to 128 characters of letters, digits and . _ : - (a UUID, a W3C trace id, a load balancer's id). */
const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/** isRequestId says whether a value is a request id the server would keep (ListAuditRecords' filter checks it too). */
export function isRequestId(value: string): boolean {
  return requestIdPattern.test(value);
}

/** requestIdOf is the caller's x-request-id when well formed, else a new UUID. */
export function requestIdOf(header: Headers): string {
  const given = header.get(requestIdHeader);
  return given !== null && isRequestId(given) ? given : randomUUID();
}

const headerGetter: TextMapGetter<Headers> = {
  keys: (carrier) => {
    const keys: string[] = [];
    carrier.forEach((_value, key) => keys.push(key));
    return keys;
  },
  get: (carrier, key) => carrier.get(key) ?? undefined,
};

/**
 * rpcSystemOf says how a call came: "grpc" for gRPC and gRPC-Web, "connect_rpc" for the
 * Connect protocol. grpc-js keeps content-type out of the metadata it hands the h2c
 * listener's adapter, so a call without one came over gRPC there.
 */
function rpcSystemOf(header: Headers): "grpc" | "connect_rpc" {
  const contentType = header.get("content-type");
  return contentType === null || contentType.startsWith("application/grpc") ? "grpc" : "connect_rpc";
}

/** codeNames are gRPC's code names as logs and dashboards spell them ("NOT_FOUND"). */
const codeNames: Record<number, string> = Object.fromEntries(
  Object.entries(Code)
    .filter(([, value]) => typeof value === "number")
    .map(([name, value]) => [value, name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase()]),
);
codeNames[0] = "OK";

/** CallEnd is what a call's log line and span say of its answer. */
interface CallEnd {
  code: number;
  message?: string;
  reason?: string;
}

function endOf(error: unknown): CallEnd {
  const connectError = ConnectError.from(error);
  const info = connectError.details.find((detail) => "desc" in detail && detail.desc.typeName === "google.rpc.ErrorInfo");
  const reason = info !== undefined && "value" in info ? (info.value as { reason?: string }).reason : undefined;
  return { code: connectError.code, message: connectError.rawMessage, reason };
}

/** levelOf is a call's log level: server faults are errors, overload and unavailability warnings, the rest info. */
function levelOf(code: number): "info" | "warn" | "error" {
  if (code === Code.Internal || code === Code.Unknown || code === Code.DataLoss) return "error";
  if (code === Code.Unavailable || code === Code.ResourceExhausted || code === Code.DeadlineExceeded) return "warn";
  return "info";
}

/** Observed is one call being observed: its span, start time and ids. */
class Observed {
  readonly startedAtMs = performance.now();
  keyId: string | undefined;

  constructor(
    readonly logger: Logger,
    readonly method: string,
    readonly requestId: string,
    readonly span: Span,
  ) {}

  /** finish ends the span and writes the call's line. */
  finish(end: CallEnd): void {
    endRpcSpan(this.span, end.code, end.message);
    const level = levelOf(end.code);
    if (!this.logger.isLevelEnabled(level)) return;
    const spanContext = this.span.spanContext();
    const line: Record<string, unknown> = {
      requestId: this.requestId,
      method: this.method,
      keyId: this.keyId,
      code: codeNames[end.code] ?? String(end.code),
      durationMs: Math.round((performance.now() - this.startedAtMs) * 1000) / 1000,
    };
    if (end.reason) line.reason = end.reason;
    if (isSpanContextValid(spanContext)) line.trace_id = spanContext.traceId;
    this.logger[level](line, "request");
  }
}

/**
 * observeInterceptor starts each call's server span from the caller's trace context (the
 * headers alone: a server span never inherits whatever context the listener runs in),
 * runs the call inside it, answers the request id in x-request-id, and logs the call.
 */
export function observeInterceptor(messageLogger: Logger): Interceptor {
  const logger = requestLoggerOf(messageLogger);
  return (next) => async (req) => {
    const method = `${req.service.typeName}/${req.method.name}`;
    const parent = propagation.extract(ROOT_CONTEXT, req.header, headerGetter);
    const span = tracer.startSpan(method, { kind: SpanKind.SERVER }, parent);
    if (span.isRecording()) span.setAttributes({ "rpc.system": rpcSystemOf(req.header), "rpc.service": req.service.typeName, "rpc.method": req.method.name });
    const observed = new Observed(logger, method, requestIdOf(req.header), span);
    req.contextValues.set(requestIdKey, observed.requestId);
    try {
      const res = await context.with(trace.setSpan(parent, span), next, undefined, req);
      observed.keyId = req.contextValues.get(callerKey)?.keyId;
      res.header.set(requestIdHeader, observed.requestId);
      if (res.stream) return streamObserved(res, observed, req.signal);
      observed.finish({ code: 0 });
      return res as UnaryResponse;
    } catch (error) {
      observed.keyId = req.contextValues.get(callerKey)?.keyId;
      const connectError = ConnectError.from(error);
      connectError.metadata.set(requestIdHeader, observed.requestId);
      observed.finish(endOf(connectError));
      throw connectError;
    }
  };
}

/**
 * streamObserved ends a streaming call's span and writes its line when its last message
 * has gone (OK), it failed (its code), or the client cancelled it, went away, or the
 * server stopped it (CANCELED: left before its end, or ended as the call's signal fired).
 */
function streamObserved(res: StreamResponse, observed: Observed, signal: AbortSignal): StreamResponse {
  const messages = res.message;
  const cancelled: CallEnd = { code: Code.Canceled, message: "the stream was cancelled: the client left, or the server is stopping" };
  async function* observedMessages() {
    let end = cancelled;
    try {
      yield* messages;
      // A handler that stops when its call is cancelled ends its stream quietly (health's Watch).
      if (!signal.aborted) end = { code: 0 };
    } catch (error) {
      end = endOf(error);
      throw error;
    } finally {
      observed.finish(end);
    }
  }
  return { ...res, message: observedMessages() };
}
