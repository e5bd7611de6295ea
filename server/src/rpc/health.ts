// The standard gRPC health service (grpc.health.v1.Health), so load balancers, Kubernetes
// gRPC probes and grpc-health-probe can ask whether this replica can serve. No npm package
// implements it for connect-es v2, and the Buf Schema Registry is out of reach, so its
// descriptor is built here, the way sdk/src/error-info.ts builds google.rpc.ErrorInfo: the
// type names and field numbers are the standard ones, so any gRPC client can call it.
//
// A replica can serve exactly when its database answers: every RPC needs PostgreSQL, so
// one status covers "" and every registered service. The probe is shared and cached, so
// unauthenticated health traffic costs the database at most one `select 1` per interval.
import { setTimeout as delay } from "node:timers/promises";
import { create, createFileRegistry, type DescService, type Message } from "@bufbuild/protobuf";
import type { GenMessage, GenService } from "@bufbuild/protobuf/codegenv2";
import { FieldDescriptorProto_Label, FieldDescriptorProto_Type, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type pg from "pg";
import { LedgerError } from "../errors.js";
import { limits } from "../limits.js";
import { toConnectError } from "./interceptors.js";

/** ServingStatus is grpc.health.v1.HealthCheckResponse.ServingStatus. */
export enum ServingStatus {
  UNKNOWN = 0,
  SERVING = 1,
  NOT_SERVING = 2,
  /** only sent by Watch, for a service this server does not know. */
  SERVICE_UNKNOWN = 3,
}

/** HealthCheckRequest is grpc.health.v1.HealthCheckRequest: the service asked about, "" for the server. */
export type HealthCheckRequest = Message<"grpc.health.v1.HealthCheckRequest"> & { service: string };

/** HealthCheckResponse is grpc.health.v1.HealthCheckResponse. */
export type HealthCheckResponse = Message<"grpc.health.v1.HealthCheckResponse"> & { status: ServingStatus };

const optional = FieldDescriptorProto_Label.OPTIONAL;

const healthFileProto = create(FileDescriptorProtoSchema, {
  name: "grpc/health/v1/health.proto",
  package: "grpc.health.v1",
  syntax: "proto3",
  messageType: [
    {
      name: "HealthCheckRequest",
      field: [{ name: "service", number: 1, jsonName: "service", type: FieldDescriptorProto_Type.STRING, label: optional }],
    },
    {
      name: "HealthCheckResponse",
      field: [
        {
          name: "status",
          number: 1,
          jsonName: "status",
          type: FieldDescriptorProto_Type.ENUM,
          label: optional,
          typeName: ".grpc.health.v1.HealthCheckResponse.ServingStatus",
        },
      ],
      enumType: [
        {
          name: "ServingStatus",
          value: [
            { name: "UNKNOWN", number: ServingStatus.UNKNOWN },
            { name: "SERVING", number: ServingStatus.SERVING },
            { name: "NOT_SERVING", number: ServingStatus.NOT_SERVING },
            { name: "SERVICE_UNKNOWN", number: ServingStatus.SERVICE_UNKNOWN },
          ],
        },
      ],
    },
  ],
  service: [
    {
      name: "Health",
      method: [
        { name: "Check", inputType: ".grpc.health.v1.HealthCheckRequest", outputType: ".grpc.health.v1.HealthCheckResponse" },
        { name: "Watch", inputType: ".grpc.health.v1.HealthCheckRequest", outputType: ".grpc.health.v1.HealthCheckResponse", serverStreaming: true },
      ],
    },
  ],
});

const healthRegistry = createFileRegistry(healthFileProto, () => undefined);

type HealthMessages = { input: GenMessage<HealthCheckRequest>; output: GenMessage<HealthCheckResponse> };

/** HealthService describes grpc.health.v1.Health: Check and Watch. */
export const HealthService = healthRegistry.getService("grpc.health.v1.Health") as GenService<{
  check: { methodKind: "unary" } & HealthMessages;
  watch: { methodKind: "server_streaming" } & HealthMessages;
}>;

/** HealthProbe says whether this replica can serve; it never rejects. */
export type HealthProbe = () => Promise<boolean>;

/** databaseProbe runs `select 1` on the pool; an error or no answer within timeoutMs means down. */
export function databaseProbe(pool: Pick<pg.Pool, "query">, timeoutMs: number = limits.healthProbeTimeoutMs): HealthProbe {
  if (!(timeoutMs > 0)) throw new Error(`databaseProbe: timeoutMs must be positive, got ${timeoutMs}`);
  return async () => {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    // The query may outlive the timeout; it settles to a boolean, so it never goes unhandled.
    const answered = pool.query("select 1 as up").then(
      (result) => result.rows.length === 1,
      () => false,
    );
    try {
      return await Promise.race([answered, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  };
}

/** cachedProbe shares one probe among all callers: at most one runs at a time, and its answer is reused for ttlMs. */
export function cachedProbe(probe: HealthProbe, ttlMs: number, nowMs: () => number = Date.now): HealthProbe {
  if (!(ttlMs >= 0)) throw new Error(`cachedProbe: ttlMs must not be negative, got ${ttlMs}`);
  let last: { atMs: number; up: boolean } | null = null;
  let running: Promise<boolean> | null = null;
  return () => {
    if (last !== null && nowMs() - last.atMs < ttlMs) return Promise.resolve(last.up);
    running ??= probe()
      .catch(() => false)
      .then((up) => {
        last = { atMs: nowMs(), up };
        running = null;
        return up;
      });
    return running;
  };
}

/** HealthOptions configure the health service. */
export interface HealthOptions {
  /** the services whose status is reported; "" (the whole server) is always known. */
  services: readonly DescService[];
  probe: HealthProbe;
  /** how often an open Watch probes again. */
  watchIntervalMs?: number;
  /** how many Watch streams may be open at once; more are refused with RESOURCE_EXHAUSTED. */
  watchersMax?: number;
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** healthHandlers implements Check and Watch over one probe. */
export function healthHandlers(options: HealthOptions): ServiceImpl<typeof HealthService> {
  const known = new Set(["", ...options.services.map((service) => service.typeName)]);
  const watchIntervalMs = options.watchIntervalMs ?? limits.healthWatchIntervalMs;
  const watchersMax = options.watchersMax ?? limits.healthWatchersMax;
  if (!(watchIntervalMs > 0) || !(watchersMax > 0)) throw new Error("healthHandlers: watchIntervalMs and watchersMax must be positive");
  const statusNow = async () => ((await options.probe()) ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
  let watchers = 0;

  async function* watchKnown(ctx: HandlerContext): AsyncGenerator<{ status: ServingStatus }> {
    let last: ServingStatus | null = null;
    // Runs until the client goes away or the server shuts down (ctx.signal).
    while (!ctx.signal.aborted) {
      const status = await statusNow();
      if (status !== last) yield { status };
      last = status;
      // An abort cuts the wait short by rejecting; the loop's condition then ends the stream.
      await delay(watchIntervalMs, undefined, { signal: ctx.signal }).catch(() => undefined);
    }
  }

  return {
    async check(req) {
      if (!known.has(req.service)) throw new LedgerError("not_found", "SERVICE_NOT_FOUND", `unknown service ${JSON.stringify(req.service)}`, { service: req.service });
      return { status: await statusNow() };
    },
    async *watch(req, ctx) {
      // Errors thrown while streaming pass the error interceptor by, so they are mapped here.
      if (watchers >= watchersMax) {
        throw toConnectError(new LedgerError("overloaded", "TOO_MANY_WATCHERS", `at most ${watchersMax} health watches may be open`), () => {});
      }
      watchers++;
      try {
        if (known.has(req.service)) {
          yield* watchKnown(ctx);
        } else {
          // The set of services never changes while the server runs: say so once, then hold
          // the stream open as the protocol asks (ending it would make clients retry).
          yield { status: ServingStatus.SERVICE_UNKNOWN };
          await aborted(ctx.signal);
        }
      } finally {
        watchers--;
      }
    },
  };
}

/** healthService is the health service of a server over a pool: the probe is cached for limits.healthProbeCacheMs. */
export function healthService(pool: Pick<pg.Pool, "query">, services: readonly DescService[]): ServiceImpl<typeof HealthService> {
  return healthHandlers({ services, probe: cachedProbe(databaseProbe(pool), limits.healthProbeCacheMs) });
}
