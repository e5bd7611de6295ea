// The Burndown client: the ledger methods with request ids made here and retries that
// reuse them, withCredits for the common reserve-run-commit case, background usage
// reporting, and the admin service. Every RPC goes through one call path (call-path.ts),
// where breakers, failure policies and traces plug in.
import http from "node:http";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Client, type CallOptions as ConnectCallOptions, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { uuidV7 } from "./uuid-v7.js";
import { type AttemptInterceptor, type CallInfo, type CallInterceptor, type CallOptions, createCallPath, attemptTimeoutMsOf, type Invoke } from "./call-path.js";
import { type Clock, systemClock } from "./clock.js";
import { createGrpcJsTransport } from "./grpc-js-transport.js";
import { attemptSpanInterceptor, callSpanInterceptor, traceContextInterceptor } from "./trace-context.js";
import { AdminService } from "./gen/burndown/v1/admin_service_pb.js";
import {
  type CommitRequestSchema,
  type CommitResponse,
  LedgerService,
  type ReportUsageRequestSchema,
  type ReportUsageResponse,
  type ReserveRequestSchema,
  type ReserveResponse,
} from "./gen/burndown/v1/ledger_service_pb.js";
import { OperationBatcher, type OperationCounts } from "./operation-batcher.js";
import { limits } from "./limits.js";
import { type RetryOptions, retryOptionsOf } from "./retry-policy.js";
import type { UsageEvent, UsageEventResult } from "./gen/burndown/v1/usage_pb.js";
import { type DrainResult, UsageBatcher, type UsageEventInit, usageEventOf, type UsageReceipt, type UsageStats } from "./usage-batcher.js";
import { type CreditsSpec, type Hold, withCredits } from "./with-credits.js";
import { Resilience, type ResilienceOptions } from "./resilience.js";
import type { DrainStats } from "./spool-drain.js";
import { spoolSinkOf } from "./spool-sink.js";
import { queueSinkOf, type QueueStats } from "./queue-sink.js";
import type { UsagePublisher } from "./usage-queue.js";

/** UsageOptions bound background usage reporting. */
export interface UsageOptions {
  /** events per ReportUsage call, 1 to 1,000. */
  batchSizeMax: number;
  /** the longest an accepted event waits for companions before its batch is sent. */
  lingerMsMax: number;
  /** events accepted and not yet answered; past this reportUsage drops and counts. */
  queueLengthMax: number;
  /** the pause before a batch that found the ledger unreachable is tried again. */
  retryPauseMs: number;
}

/** BatchingOptions shape how concurrent Reserves and Commits are gathered (operation-batcher.ts). */
export interface BatchingOptions {
  /** false: every Reserve and Commit is its own unary call. Default true. */
  enabled: boolean;
  /** attempts per ReserveBatch / CommitBatch call, 1 to 1,000. */
  batchSizeMax: number;
  /** calls of one method out at once before further attempts wait to leave together. */
  batchesInFlightMax: number;
}

/** BurndownClientOptions configure a client; only baseUrl and apiKey are required. */
export interface BurndownClientOptions {
  /** the server's gRPC (h2c) URL for protocol "grpc", its HTTP URL for "connect". */
  baseUrl: string;
  /** an API key, sent as a bearer token. */
  apiKey: string;
  /** "grpc" (default): HTTP/2 to the gRPC port; "connect": the Connect protocol over HTTP/1.1. */
  protocol?: "grpc" | "connect";
  /** the timeout of each attempt; an attempt that times out counts as "outcome unknown". */
  timeoutMs?: number;
  retry?: Partial<RetryOptions>;
  usage?: Partial<UsageOptions>;
  /** gathering of concurrent Reserves and Commits into batch calls; on by default. */
  batching?: Partial<BatchingOptions>;
  /** wrap every attempt (innermost first is last in the list, as with Connect interceptors). */
  attemptInterceptors?: AttemptInterceptor[];
  /** wrap every call, retries included. */
  callInterceptors?: CallInterceptor[];
  /** time for timeouts, backoff and batching; tests pass a manual clock. */
  clock?: Clock;
  /** the jitter source, [0, 1); tests pass a fixed one. */
  random?: () => number;
  /** background failures (usage batches, releases after a failed action); default console.warn. */
  onError?: (error: unknown) => void;
  /** the ledger's answer for every reported usage event. */
  onUsageResults?: (results: UsageEventResult[]) => void;
  /**
   * usageQueue makes reportUsage publish each event to NATS JetStream with this publisher
   * (createUsagePublisher from @burndown/sdk/usage-queue) instead of sending ReportUsage:
   * the server's queue consumer burns it later. An event the queue refuses is sent by
   * ReportUsage (or the spool) instead, with the same id and time, so it burns once.
   */
  usageQueue?: UsagePublisher;
  /** circuit breakers, failure policies and the durable usage spool (see resilience.ts). */
  resilience?: ResilienceOptions;
}

/** Method is a LedgerService method as the client exposes it: the generated request and response, the client's call options. */
type Method<M extends keyof Client<typeof LedgerService>> =
  Client<typeof LedgerService>[M] extends (request: infer I, options?: ConnectCallOptions) => Promise<infer O> ? (request: I, options?: CallOptions) => Promise<O> : never;

/** BurndownClient is the Burndown ledger, idempotent and retrying. Mutations take an optional requestId; one is made when it is missing. */
export interface BurndownClient {
  reserve: Method<"reserve">;
  commit: Method<"commit">;
  release: Method<"release">;
  burn: Method<"burn">;
  grant: Method<"grant">;
  getBalance: Method<"getBalance">;
  listLedgerEntries: Method<"listLedgerEntries">;
  check: Method<"check">;
  /** reportUsageBatch is the raw ReportUsage RPC: one batch, now, with retries (events are idempotent by eventId). */
  reportUsageBatch: (request: MessageInitShape<typeof ReportUsageRequestSchema>, options?: CallOptions) => Promise<ReportUsageResponse>;
  /** withCredits reserves, runs action, commits what it used, or releases if it throws: the common case. */
  withCredits: <T>(spec: CreditsSpec, action: (hold: Hold) => Promise<T>) => Promise<T>;
  /**
   * reportUsage accepts a usage event for background batching and returns at once. With a
   * spool, the receipt's durable promise resolves once the event is on disk.
   */
  reportUsage: (event: UsageEventInit) => UsageReceipt & { durable?: Promise<void> };
  /** flush sends every event accepted so far and waits for the answers (or timeoutMs). */
  flush: (options?: { timeoutMs?: number }) => Promise<DrainResult>;
  /** stats counts what became of reported usage events; with a spool, spool says what it holds and sent. */
  stats: () => UsageStats & { spool?: { pending: number } & DrainStats; queue?: QueueStats };
  /** close stops accepting usage, drains it (up to timeoutMs) and closes the connections; it returns what could not be sent. */
  close: (options?: { timeoutMs?: number }) => Promise<DrainResult & { unsent: UsageEvent[] }>;
  /** admin is the raw AdminService client, with the API key. */
  admin: Client<typeof AdminService>;
  /** operationStats counts Reserve and Commit attempts sent, the calls that carried them, and how many of those were batches. */
  operationStats: () => { reserve: OperationCounts; commit: OperationCounts };
  /** refreshPolicies fetches the failure policies now (they also refresh on a timer); false when the ledger did not answer. */
  refreshPolicies: () => Promise<boolean>;
}

function bearer(apiKey: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${apiKey}`);
    return next(req);
  };
}

/** transportOf speaks gRPC through a grpc-js channel (much less client CPU per call than connect-node's gRPC transport) and Connect through connect-node over HTTP/1.1. */
function transportOf(options: BurndownClientOptions): { transport: Transport; close: () => void } {
  const interceptors = [bearer(options.apiKey), traceContextInterceptor()];
  if ((options.protocol ?? "grpc") === "connect") {
    const agent = new http.Agent({ keepAlive: true });
    return { transport: createConnectTransport({ baseUrl: options.baseUrl, httpVersion: "1.1", interceptors, nodeOptions: { agent } }), close: () => agent.destroy() };
  }
  const transport = createGrpcJsTransport({ baseUrl: options.baseUrl, interceptors });
  return { transport, close: () => transport.close() };
}

/** callInfoOf describes a call, naming the customer and feature its request is for, so that call interceptors can key on them. */
function callInfoOf(method: string, kind: CallInfo["kind"], requestId: string | undefined, request: object): CallInfo {
  const fields = request as { customerId?: string; featureKey?: string; cost?: { case?: string; value?: { featureKey?: string } } };
  const featureKey = fields.featureKey ?? (fields.cost?.case === "usage" ? fields.cost.value?.featureKey : undefined);
  return { method, kind, requestId, customerId: fields.customerId, featureKey };
}

type Rpc<I, O> = (request: I, options: ConnectCallOptions) => Promise<O>;

/** mutationOf makes the request id before the first attempt; every retry sends the same one. */
function mutationOf<I extends { requestId?: string }, O>(invoke: Invoke, method: string, rpc: Rpc<I, O>) {
  return (request: I, options?: CallOptions): Promise<O> => {
    const requestId = request.requestId || uuidV7();
    const sent = { ...request, requestId };
    return invoke(callInfoOf(method, "mutation", requestId, request), (signal, timeoutMs) => rpc(sent, { signal, timeoutMs }), options);
  };
}

/** readOf sends a read as it is; repeating it is always safe. */
function readOf<I extends object, O>(invoke: Invoke, method: string, rpc: Rpc<I, O>) {
  return (request: I, options?: CallOptions): Promise<O> => invoke(callInfoOf(method, "read", undefined, request), (signal, timeoutMs) => rpc(request, { signal, timeoutMs }), options);
}

/** reportUsageOf gives every event without an id one before the first attempt: its id is its idempotency key. */
function reportUsageOf(invoke: Invoke, rpc: Rpc<MessageInitShape<typeof ReportUsageRequestSchema>, ReportUsageResponse>) {
  return (request: MessageInitShape<typeof ReportUsageRequestSchema>, options?: CallOptions): Promise<ReportUsageResponse> => {
    const events = (request.events ?? []).map(usageEventOf);
    return invoke({ method: "ReportUsage", kind: "mutation" }, (signal, timeoutMs) => rpc({ ...request, events }, { signal, timeoutMs }), options);
  };
}

function batchingOptionsOf(batching: Partial<BatchingOptions> | undefined): BatchingOptions {
  const merged = {
    enabled: true,
    batchSizeMax: limits.operationBatchSizeMaxDefault,
    batchesInFlightMax: limits.operationBatchesInFlightMaxDefault,
    ...batching,
  };
  const inRange = (value: number, max: number) => Number.isInteger(value) && value >= 1 && value <= max;
  if (!inRange(merged.batchSizeMax, limits.operationBatchSizeMaxMax) || !inRange(merged.batchesInFlightMax, limits.operationBatchesInFlightMaxMax)) {
    throw new RangeError(`batching: batchSizeMax must be 1-${limits.operationBatchSizeMaxMax} and batchesInFlightMax 1-${limits.operationBatchesInFlightMaxMax}`);
  }
  return merged;
}

/** batchedRpc sends one attempt through a batcher, as a unary RPC would be sent (the call path always passes a signal). */
function batchedRpc<Req, Res>(batcher: OperationBatcher<Req, Res>): Rpc<Req, Res> {
  return (request, options) => batcher.send(request, options.signal as AbortSignal, options.timeoutMs);
}

function usageOptionsOf(usage: Partial<UsageOptions> | undefined): UsageOptions {
  const merged = {
    batchSizeMax: limits.usageBatchSizeMaxDefault,
    lingerMsMax: limits.usageLingerMsMaxDefault,
    queueLengthMax: limits.usageQueueLengthMaxDefault,
    retryPauseMs: limits.usageRetryPauseMsDefault,
    ...usage,
  };
  if (!(merged.batchSizeMax <= limits.usageBatchSizeMaxMax && merged.lingerMsMax <= limits.usageLingerMsMaxMax && merged.queueLengthMax <= limits.usageQueueLengthMaxMax)) {
    throw new RangeError(`usage: a bound is past its limit, got ${JSON.stringify(merged)}`);
  }
  return merged;
}

function callPathOf(options: BurndownClientOptions, clock: Clock, extraCallInterceptors: CallInterceptor[]): Invoke {
  const defaults = { attemptsMax: limits.attemptsMaxDefault, backoffMsInitial: limits.backoffMsInitialDefault, backoffMsMax: limits.backoffMsMaxDefault, deadlineMs: limits.deadlineMsDefault };
  return createCallPath({
    retry: retryOptionsOf(options.retry, defaults, limits.attemptsMaxMax, limits.deadlineMsMax),
    attemptTimeoutMs: attemptTimeoutMsOf(options.timeoutMs ?? limits.attemptTimeoutMsDefault),
    clock,
    random: options.random ?? Math.random,
    // The spans are outermost: a call's span holds the breaker's decision and every attempt, and an attempt's span the caller's attempt interceptors.
    attemptInterceptors: [attemptSpanInterceptor((options.protocol ?? "grpc") === "grpc" ? "grpc" : "connect_rpc"), ...(options.attemptInterceptors ?? [])],
    callInterceptors: [callSpanInterceptor(), ...extraCallInterceptors, ...(options.callInterceptors ?? [])],
  });
}

/** createBurndownClient connects a client; call close() when done so that queued usage is sent. */
export function createBurndownClient(options: BurndownClientOptions): BurndownClient {
  const clock = options.clock ?? systemClock;
  const onError = options.onError ?? ((error: unknown) => console.warn("burndown:", error));
  const { transport, close: closeTransport } = transportOf(options);
  const admin = createClient(AdminService, transport);
  // The breaker sits outside every call: it counts a call's final outcome, retries included.
  // It exists once resilience does, which needs the call path first.
  let resilience: Resilience | null = null;
  let breaker: CallInterceptor | null = null;
  const invoke = callPathOf(options, clock, [(next) => (breaker === null ? next : breaker(next))]);
  const ledger = createClient(LedgerService, transport);
  const reportUsageBatch = reportUsageOf(invoke, ledger.reportUsage);
  const batching = batchingOptionsOf(options.batching);
  // Requests stay in their init form: the generated client and the batch message take it as is.
  const reserveBatcher = new OperationBatcher<MessageInitShape<typeof ReserveRequestSchema>, ReserveResponse>({
    ...batching,
    sendOne: (request, signal, timeoutMs) => ledger.reserve(request, { signal, timeoutMs }),
    sendBatch: async (requests, signal, timeoutMs) => (await ledger.reserveBatch({ requests }, { signal, timeoutMs })).results,
  });
  const commitBatcher = new OperationBatcher<MessageInitShape<typeof CommitRequestSchema>, CommitResponse>({
    ...batching,
    sendOne: (request, signal, timeoutMs) => ledger.commit(request, { signal, timeoutMs }),
    sendBatch: async (requests, signal, timeoutMs) => (await ledger.commitBatch({ requests }, { signal, timeoutMs })).results,
  });
  const mutations = {
    reserve: mutationOf(invoke, "Reserve", batching.enabled ? batchedRpc(reserveBatcher) : ledger.reserve),
    commit: mutationOf(invoke, "Commit", batching.enabled ? batchedRpc(commitBatcher) : ledger.commit),
    release: mutationOf(invoke, "Release", ledger.release),
  };
  const batcher = new UsageBatcher({
    ...usageOptionsOf(options.usage),
    clock,
    send: (events, signal) => reportUsageBatch({ events }, { signal }),
    onResults: options.onUsageResults ?? (() => {}),
    onError,
  });
  resilience = new Resilience(options.resilience ?? {}, {
    listFeatures: async () => (await admin.listFeatures({})).features,
    reportUsageBatch: async (events) => {
      const response = await reportUsageBatch({ events });
      options.onUsageResults?.(response.results);
      return response.results;
    },
    queueInMemory: (event) => void batcher.add(event),
    nowMs: clock.nowMs,
    onError,
  });
  breaker = resilience.breakerInterceptor();
  resilience.start();
  const spooled = spoolSinkOf(resilience, clock, onError);
  const direct = (event: UsageEventInit) => (spooled ? spooled.add(event) : batcher.add(event));
  const queued = options.usageQueue ? queueSinkOf(options.usageQueue, direct, onError) : null;
  return {
    ...mutations,
    burn: mutationOf(invoke, "Burn", ledger.burn),
    grant: mutationOf(invoke, "Grant", ledger.grant),
    getBalance: readOf(invoke, "GetBalance", ledger.getBalance),
    listLedgerEntries: readOf(invoke, "ListLedgerEntries", ledger.listLedgerEntries),
    check: readOf(invoke, "Check", ledger.check),
    reportUsageBatch,
    operationStats: () => ({ reserve: { ...reserveBatcher.counts }, commit: { ...commitBatcher.counts } }),
    withCredits: (spec, action) => withCredits(mutations, spec, action, onError, (error) => resilience!.whenUnreachable(spec, action, error)),
    reportUsage: (event) => (queued ? queued.add(event) : direct(event)),
    flush: async (flushOptions) => {
      await queued?.settled();
      const memory = await batcher.flush(flushOptions);
      if (!spooled) return memory;
      const drained = await spooled.flush();
      return { drained: memory.drained && drained, pending: memory.pending + (resilience!.spool?.pending().length ?? 0) };
    },
    stats: () => {
      const memory = batcher.stats();
      const spool = resilience!.spool;
      const withQueue = queued ? { ...memory, queue: queued.stats() } : memory;
      return spool ? { ...withQueue, spool: { pending: spool.size, ...resilience!.drain!.stats } } : withQueue;
    },
    close: async (closeOptions) => {
      // Publishes in flight end (stored, or handed to ReportUsage) before the batcher drains.
      queued?.close();
      await queued?.settled();
      const result = await batcher.close({ timeoutMs: closeOptions?.timeoutMs ?? limits.closeTimeoutMsDefault });
      spooled?.stop();
      await resilience!.stop();
      closeTransport();
      return result;
    },
    admin,
    refreshPolicies: () => resilience!.policies.refresh(),
  };
}
