// The CPU the observe interceptor (rpc/observe-interceptor.ts) adds to one call, measured
// in isolation: on a shared, loaded machine the end-to-end benchmark's run-to-run spread
// (±50%) hides a few microseconds, and a tight loop does not. Each variant runs the
// interceptor around a handler that answers at once, after a warm-up, and reports
// CPU per call beside the same loop without the interceptor:
//   off     tracing off (the API's no-op tracer), request lines below the level (silent)
//   lines   tracing off, a request line per call at info, written to /dev/null
//   traced  tracing on (a batch span processor whose exporter drops spans), lines at info
//   npx tsx bench/observe-cost.ts
import { create } from "@bufbuild/protobuf";
import { createContextValues, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { GetBalanceRequestSchema, GetBalanceResponseSchema, LedgerService } from "@burndown/sdk";
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { pino } from "pino";
import { createLogger } from "../server/src/logger.js";
import { observeInterceptor } from "../server/src/rpc/observe-interceptor.js";

const callsCount = 200_000;
const method = LedgerService.method.getBalance;

function request(): UnaryRequest {
  return {
    stream: false,
    service: LedgerService,
    method,
    requestMethod: "POST",
    url: "http://127.0.0.1/burndown.v1.LedgerService/GetBalance",
    header: new Headers({ "content-type": "application/grpc", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }),
    contextValues: createContextValues(),
    message: create(GetBalanceRequestSchema, { customerId: "acme" }),
    signal: new AbortController().signal,
  } as unknown as UnaryRequest;
}

const answer = async (req: UnaryRequest): Promise<UnaryResponse> =>
  ({ stream: false, service: req.service, method: req.method, header: new Headers(), trailer: new Headers(), message: create(GetBalanceResponseSchema) }) as unknown as UnaryResponse;

/** nsPerCall runs calls one after another and returns the process's CPU time per call in nanoseconds (CPU, not wall time: others' load does not count). */
async function nsPerCall(call: (req: UnaryRequest) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 20_000; i++) await call(request());
  const startedAt = process.cpuUsage();
  for (let i = 0; i < callsCount; i++) await call(request());
  const used = process.cpuUsage(startedAt);
  return ((used.user + used.system) * 1000) / callsCount;
}

const dropAll: SpanExporter = {
  export: (_spans: ReadableSpan[], done) => done({ code: 0 }),
  shutdown: async () => {},
};

async function main(): Promise<void> {
  const devNull = pino.destination({ dest: "/dev/null", sync: true }); // as the server writes stdout
  const bare = await nsPerCall(answer as never);
  const off = await nsPerCall(observeInterceptor(createLogger("silent"))(answer as never) as never);
  const lines = await nsPerCall(observeInterceptor(createLogger("info", devNull))(answer as never) as never);
  const provider = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropAll)] });
  provider.register();
  const traced = await nsPerCall(observeInterceptor(createLogger("info", devNull))(answer as never) as never);
  await provider.shutdown();
  const extra = (ns: number) => `${((ns - bare) / 1000).toFixed(2)} µs more per call`;
  console.log(`no interceptor: ${(bare / 1000).toFixed(2)} µs per call (the loop and request objects)`);
  console.log(`off:    ${extra(off)}`);
  console.log(`lines:  ${extra(lines)}`);
  console.log(`traced: ${extra(traced)}`);
}

void main();
