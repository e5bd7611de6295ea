// The SDK's trace context goes through @opentelemetry/api's global propagator: nothing is
// written in an application without OpenTelemetry, and W3C traceparent/tracestate of the
// active span once the application registers a propagator (its SDK does).
import { createContextValues, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { context, propagation, ROOT_CONTEXT, trace, TraceFlags } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { traceContextInterceptor } from "./trace-context.js";

/** headersSent runs the interceptor in ctx and returns the headers it handed on. */
async function headersSent(ctx = context.active()): Promise<Headers> {
  let sent: Headers | undefined;
  const next = async (req: UnaryRequest) => {
    sent = req.header;
    return {} as UnaryResponse;
  };
  const req = { header: new Headers(), contextValues: createContextValues() } as unknown as UnaryRequest;
  await context.with(ctx, () => traceContextInterceptor()(next as never)(req));
  return sent!;
}

const spanContext = { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: TraceFlags.SAMPLED, traceState: undefined };

// A context manager, so that the span is active inside context.with (an application's SDK registers one).
beforeAll(() => context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable()));
afterAll(() => context.disable());
afterEach(() => propagation.disable());

describe("traceContextInterceptor", () => {
  it("writes no header when the application registered no propagator, even inside a span", async () => {
    propagation.disable();
    const header = await headersSent(trace.setSpanContext(ROOT_CONTEXT, spanContext));
    expect([...headerNames(header)]).toEqual([]);
  });

  it("writes the active span's traceparent once a W3C propagator is registered", async () => {
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    const header = await headersSent(trace.setSpanContext(ROOT_CONTEXT, spanContext));
    expect(header.get("traceparent")).toBe("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    expect((await headersSent(ROOT_CONTEXT)).get("traceparent")).toBeNull();
  });
});

function headerNames(header: Headers): string[] {
  const names: string[] = [];
  header.forEach((_value, name) => names.push(name));
  return names;
}
