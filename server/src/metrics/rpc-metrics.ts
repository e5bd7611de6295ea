// RPC metrics: every call's count and latency by service, method and gRPC code, on both
// listeners (the interceptor runs in the one list connect-node and grpc-js share). The
// names follow go-grpc-prometheus (grpc_server_handled_total, grpc_server_handling_seconds)
// so that dashboards and alerts written for gRPC servers work unchanged; the histogram also
// carries grpc_code, so fast refusals (OVERLOADED, PermissionDenied) do not hide the
// latency of the calls that did work.
//
// This sits on the hot path of every call, so it does not use prom-client's Counter and
// Histogram there: their observe hashes and validates the labels on every call. A call
// here adds to plain numbers in a series found once per method (an array indexed by code);
// prom-client reads them only when Prometheus scrapes (rpcCollectors).
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { DescMethod } from "@bufbuild/protobuf";
import type { Metric, Registry } from "prom-client";

/** CollectedValue is one sample line of a collected metric, as prom-client's registry prints it. */
export interface CollectedValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/** rpcBucketsSeconds are the latency histogram's upper bounds: 0.5 ms to 10 s. */
export const rpcBucketsSeconds: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** gRPC's OK, which connect's Code leaves out (a call that succeeded has no code). */
const okCode = 0;
/** OK and Code's sixteen codes. */
const codeCount = 17;

/** RpcSeries is one (service, method, code)'s calls: a count, a sum and a count per bucket (the last: above every bound). */
interface RpcSeries {
  labels: { grpc_service: string; grpc_method: string; grpc_code: string };
  count: number;
  sumSeconds: number;
  buckets: Float64Array;
}

/** MethodSeries are one method's series, by code number, made on its first call with that code. */
type MethodSeries = (RpcSeries | undefined)[];

/** RpcMetrics holds one server's RPC counts; the interceptor adds to them, the collectors read them. */
export class RpcMetrics {
  private readonly methods = new Map<DescMethod, MethodSeries>();

  /** seriesOf is a method's series by code, made on its first call. */
  seriesOf(method: DescMethod): MethodSeries {
    let series = this.methods.get(method);
    if (series === undefined) {
      series = new Array<RpcSeries | undefined>(codeCount).fill(undefined);
      this.methods.set(method, series);
    }
    return series;
  }

  /** record adds one call. */
  record(method: DescMethod, series: MethodSeries, code: number, seconds: number): void {
    const index = code >= 0 && code < codeCount ? code : Code.Unknown;
    let one = series[index];
    if (one === undefined) {
      one = {
        labels: { grpc_service: method.parent.typeName, grpc_method: method.name, grpc_code: index === okCode ? "OK" : Code[index] },
        count: 0,
        sumSeconds: 0,
        buckets: new Float64Array(rpcBucketsSeconds.length + 1),
      };
      series[index] = one;
    }
    one.count++;
    one.sumSeconds += seconds;
    let bucket = 0;
    while (bucket < rpcBucketsSeconds.length && seconds > rpcBucketsSeconds[bucket]) bucket++;
    one.buckets[bucket]++;
  }

  /** all is every series with at least one call. */
  all(): RpcSeries[] {
    const all: RpcSeries[] = [];
    for (const series of this.methods.values()) for (const one of series) if (one !== undefined) all.push(one);
    return all;
  }
}

/** rpcInterceptor counts every call it sees; put it first (outermost), so errors arrive as ConnectErrors with their final code. */
export function rpcInterceptor(metrics: RpcMetrics): Interceptor {
  return (next) => {
    // grpc-js builds the chain once per method, so its series are found on the first call;
    // connect-node builds it per call, so there it is one map lookup by the method's descriptor.
    let cachedMethod: DescMethod | undefined;
    let cachedSeries: MethodSeries = [];
    return async (req) => {
      if (req.method !== cachedMethod) {
        cachedMethod = req.method;
        cachedSeries = metrics.seriesOf(req.method);
      }
      const series = cachedSeries;
      const startedMs = performance.now();
      try {
        const res = await next(req);
        metrics.record(req.method, series, okCode, (performance.now() - startedMs) / 1_000);
        return res;
      } catch (error) {
        metrics.record(req.method, series, error instanceof ConnectError ? error.code : Code.Unknown, (performance.now() - startedMs) / 1_000);
        throw error;
      }
    };
  };
}

/** collector is a prom-client metric whose values are computed when scraped; no values: the family has no samples. */
export function collector(name: string, help: string, type: "counter" | "gauge" | "histogram", values: () => CollectedValue[] | Promise<CollectedValue[]>): Metric {
  // The registry asks a metric only for its name and get() (registry.js); the cast is to its class type.
  const metric = { name, help, type, aggregator: "sum", get: async () => ({ name, help, type, aggregator: "sum", values: await values() }) };
  return metric as unknown as Metric;
}

/** registerRpcCollectors adds grpc_server_handled_total and grpc_server_handling_seconds to a registry. */
export function registerRpcCollectors(registry: Registry, metrics: RpcMetrics): void {
  registry.registerMetric(
    collector("grpc_server_handled_total", "RPCs completed on the server, by service, method and gRPC code.", "counter", () =>
      metrics.all().map((one) => ({ metricName: "grpc_server_handled_total", labels: one.labels, value: one.count })),
    ),
  );
  const histogram = "grpc_server_handling_seconds";
  registry.registerMetric(
    collector(histogram, "Time from a call's arrival at the interceptors to its answer (for a server stream: until its answer begins), in seconds.", "histogram", () =>
      metrics.all().flatMap((one) => {
        let cumulative = 0;
        const buckets = rpcBucketsSeconds.map((bound, i) => {
          cumulative += one.buckets[i];
          return { metricName: `${histogram}_bucket`, labels: { ...one.labels, le: bound }, value: cumulative };
        });
        return [
          ...buckets,
          { metricName: `${histogram}_bucket`, labels: { ...one.labels, le: "+Inf" }, value: one.count },
          { metricName: `${histogram}_sum`, labels: one.labels, value: one.sumSeconds },
          { metricName: `${histogram}_count`, labels: one.labels, value: one.count },
        ];
      }),
    ),
  );
}
