// W3C trace context on every call: the client writes traceparent and tracestate (and
// baggage, when the application's propagator carries it) from the active OpenTelemetry
// context into each request's headers, so the server's span for the call is a child of the
// caller's span. It uses @opentelemetry/api's propagation alone: in an application with no
// OpenTelemetry SDK the propagator is the API's no-op one and no header is written.
import type { Interceptor } from "@connectrpc/connect";
import { context, propagation, type TextMapSetter } from "@opentelemetry/api";

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
