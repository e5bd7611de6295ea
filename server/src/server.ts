// The Burndown server as a library: one set of services and interceptors on two listeners,
// an HTTP/1.1 one (connect-node: Connect, gRPC-Web, curl and the admin UI) and an h2c one
// for gRPC clients (grpc-js, at a fraction of connect-node's CPU per call; see
// rpc/grpc-js-server.ts). Node ignores allowHTTP1 on plaintext HTTP/2, so one port cannot
// serve both.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { AdminService, BillingService, CorrectionService, ErrorInfoSchema, FinanceService, LedgerService, PlanService, PoolService, PromotionService, SupportService, WebhookService } from "@burndown/sdk";
import { supportHandlers } from "./rpc/support-handlers.js";
import type pg from "pg";
import { startExpiryJobs } from "./jobs/expiry-jobs.js";
import { startScheduleJobs } from "./jobs/schedule-jobs.js";
import { startRechargeJobs } from "./jobs/recharge-jobs.js";
import { startWebhookDelivery, type WebhookPolicy, webhookPolicyOf } from "./jobs/webhook-delivery.js";
import { Admission, type AdmissionLimits, admissionInterceptor } from "./rpc/admission.js";
import { batchHandlers } from "./rpc/batch-handlers.js";
import { billingHandlers } from "./rpc/billing-handlers.js";
import { planHandlers } from "./rpc/plan-handlers.js";
import { deadlineInterceptor } from "./rpc/deadline-interceptor.js";
import { guardUnaryBodies, malformedInterceptor } from "./rpc/malformed-requests.js";
import { limits } from "./limits.js";
import { adminHandlers } from "./rpc/admin-handlers.js";
import { explainHandlers } from "./rpc/explain-handlers.js";
import { serveUi } from "./rpc/admin-ui.js";
import { closeGrpcJs, createGrpcJsServer, listenGrpcJs } from "./rpc/grpc-js-server.js";
import { HealthService, healthService } from "./rpc/health.js";
import { authInterceptor, errorInterceptor } from "./rpc/interceptors.js";
import { observeInterceptor } from "./rpc/observe-interceptor.js";
import { createLogger, type Logger } from "./logger.js";
import { ledgerHandlers } from "./rpc/ledger-handlers.js";
import { pricingHandlers } from "./rpc/pricing-handlers.js";
import { readHandlers } from "./rpc/read-handlers.js";
import { registerReflection } from "./rpc/reflection.js";
import { shadowPricingHandlers } from "./rpc/shadow-pricing-handlers.js";
import { verifyHandlers } from "./rpc/verify-handlers.js";
import { handleStripeWebhook, stripeWebhookPath } from "./rpc/stripe-webhook.js";
import { withCors } from "./rpc/cors.js";
import { usageAdminHandlers } from "./rpc/usage-admin-handlers.js";
import { usageHandlers } from "./rpc/usage-handlers.js";
import { financeHandlers } from "./rpc/finance-handlers.js";
import { promotionHandlers } from "./rpc/promotion-handlers.js";
import { webhookHandlers } from "./rpc/webhook-handlers.js";
import { correctionHandlers } from "./rpc/correction-handlers.js";
import { poolHandlers } from "./rpc/pool-handlers.js";
import { PoolCache } from "./service/pool-cache.js";
import { KeyVerifier } from "./service/api-keys.js";
import { type Fanout, LocalFanout } from "./fanout.js";
import type { Deps, DisputeSla, RechargePolicy, UsagePolicy } from "./service/context.js";
import { GroupCommit, type GroupCommitOptions } from "./service/group-commit.js";
import { ServerMetrics } from "./metrics/server-metrics.js";
import { type SelfCheckPolicy, startSelfCheck } from "./jobs/self-check.js";
import { startUsageConsumer, type UsageConsumer, type UsageConsumerOptions } from "./queue/usage-consumer.js";

/** ServerOptions configure a server over an existing, migrated pool. */
export interface ServerOptions {
  pool: pg.Pool;
  host: string;
  httpPort: number;
  grpcPort: number;
  /** run the expiry jobs every this many ms; 0 turns them off (tests drive them). */
  jobIntervalMs: number;
  now?: () => Date;
  log?: (message: string) => void;
  /** writes one line per request (rpc/observe-interceptor.ts); none by default. */
  logger?: Logger;
  usage?: Partial<UsagePolicy>;
  /** the reason codes a support key's Grant may use; limits.grantReasonCodesDefault by default. */
  grantReasonCodes?: readonly string[];
  /** how long a grant request waits for a decision; limits.grantRequestTtlMsDefault by default. */
  grantRequestTtlMs?: number;
  /** admission control (rpc/admission.ts); defaults from limits.ts. */
  admission?: Partial<AdmissionLimits>;
  /** cross-replica fan-out (Redis when configured); this replica alone by default. The caller closes it. */
  fanout?: Fanout;
  /** group commit (service/group-commit.ts): lanes and customer-hash partitions; defaults from limits.ts. */
  writes?: Partial<Pick<GroupCommitOptions, "lanes" | "partitions">>;
  /** the Stripe webhook signing secret (whsec_...); unset: POST /webhooks/stripe answers 404. */
  stripeWebhookSecret?: string | null;
  /** origins whose browser pages may call the RPCs directly (CORS, rpc/cors.ts); none by default. */
  corsOrigins?: readonly string[];
  /** CSP frame-ancestors of the customer view (/customer), for vendors that iframe it; "*" by default. */
  customerViewFrameAncestors?: string;
  /** the vendor's checkout page for the customer view's purchases, with {order_id}; unset: none. */
  checkoutUrl?: string | null;
  /** auto-recharge's retry delays after failed payments; limits.rechargeRetryDelaysMsDefault by default. */
  recharge?: Partial<RechargePolicy>;
  /** how long staff have to first act on a dispute and to resolve it; limits' defaults when unset. */
  disputeSla?: Partial<DisputeSla>;
  /** webhook delivery (jobs/webhook-delivery.ts): timeout, attempts, first retry delay; defaults from limits.ts. Runs with the jobs. */
  webhooks?: Partial<WebhookPolicy>;
  /** GET /metrics answers only 'Authorization: Bearer <token>' when set; open when unset (docs/operations-metrics.md). */
  metricsToken?: string | null;
  /** the ledger self-check (jobs/self-check.ts); off unless an interval is given. */
  selfCheck?: Partial<SelfCheckPolicy>;
  /** usage from a NATS JetStream queue (queue/usage-consumer.ts); unset: none. */
  usageQueue?: UsageConsumerOptions | null;
}

/** RunningServer is a started server. */
export interface RunningServer {
  httpUrl: string;
  grpcUrl: string;
  deps: Deps;
  /** admission control, for its counters. */
  admission: Admission;
  /** this server's Prometheus metrics (its own registry), served on GET /metrics. */
  metrics: ServerMetrics;
  /** the HTTP/1.1 listener's Connect handler, for other listeners (bench/grpc-transport.ts mounts it on h2c). */
  connectHandler: ReturnType<typeof connectNodeAdapter>;
  /** the queue consumer, when configured. */
  usageQueue: UsageConsumer | null;
  close: () => Promise<void>;
}

function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

/** startServer starts both listeners and the expiry jobs. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const log = options.log ?? ((message: string) => console.error(message));
  const now = options.now ?? (() => new Date());
  const metrics = new ServerMetrics({ pool: options.pool, now, log });
  // The write path kicks the recharge job after a group that flagged a balance (set below, once the job exists).
  let rechargeDue = (): void => {};
  const deps: Deps = {
    pool: options.pool,
    now,
    usage: {
      lateCutoffMs: options.usage?.lateCutoffMs ?? limits.usageLateCutoffMsDefault,
      dedupRetentionMs: options.usage?.dedupRetentionMs ?? limits.usageDedupRetentionMsDefault,
    },
    fanout: options.fanout ?? new LocalFanout(),
    grantReasonCodes: options.grantReasonCodes ?? limits.grantReasonCodesDefault,
    grantRequestTtlMs: options.grantRequestTtlMs ?? limits.grantRequestTtlMsDefault,
    recharge: { retryDelaysMs: options.recharge?.retryDelaysMs ?? limits.rechargeRetryDelaysMsDefault },
    disputeSla: {
      firstResponseMs: options.disputeSla?.firstResponseMs ?? limits.disputeFirstResponseMsDefault,
      resolutionMs: options.disputeSla?.resolutionMs ?? limits.disputeResolutionMsDefault,
    },
    // Jobs run groups with these deps (expiry-jobs.ts): their crossings kick it too.
    rechargeDue: () => rechargeDue(),
    observer: metrics,
    writes: new GroupCommit(
      { pool: options.pool, now, rechargeDue: () => rechargeDue(), pools: new PoolCache(), observer: metrics },
      {
        lanes: options.writes?.lanes ?? limits.writeLanesDefault,
        partitions: options.writes?.partitions ?? limits.customerPartitionsDefault,
        groupWeightMax: limits.groupWeightMax,
      },
    ),
  };
  const verifier = new KeyVerifier(deps);
  deps.fanout.subscribe({ keyRevoked: (keyId) => verifier.forget(keyId), resync: () => verifier.forgetAll() });
  const admission = new Admission({
    inFlightMax: options.admission?.inFlightMax ?? limits.inFlightMaxDefault,
    queuedMax: options.admission?.queuedMax ?? limits.queuedMaxDefault,
    queueWaitMs: options.admission?.queueWaitMs ?? limits.queueWaitMsDefault,
  });
  metrics.watchAdmission(admission);
  const routes = (router: ConnectRouter) => {
    router.service(LedgerService, { ...ledgerHandlers(deps), ...usageHandlers(deps), ...batchHandlers(deps, log), ...readHandlers(deps) });
    router.service(AdminService, {
      ...adminHandlers(deps), ...pricingHandlers(deps), ...usageAdminHandlers(deps), ...explainHandlers(deps), ...shadowPricingHandlers(deps), ...verifyHandlers(deps),
    });
    router.service(BillingService, billingHandlers(deps));
    router.service(PlanService, planHandlers(deps));
    // Health and reflection answer without an API key (see publicMethods in interceptors.ts).
    router.service(WebhookService, webhookHandlers(deps));
    router.service(PromotionService, promotionHandlers(deps));
    router.service(PoolService, poolHandlers(deps));
    router.service(CorrectionService, correctionHandlers(deps));
    router.service(FinanceService, financeHandlers(deps));
    router.service(SupportService, supportHandlers(deps));
    router.service(HealthService, healthService(deps.pool, [LedgerService, AdminService, BillingService, PlanService, WebhookService, PromotionService, PoolService, CorrectionService, FinanceService, SupportService]));
    registerReflection(router, [
      LedgerService.file, AdminService.file, BillingService.file, PlanService.file, WebhookService.file, PromotionService.file, PoolService.file, CorrectionService.file, FinanceService.file, SupportService.file,
      HealthService.file, ErrorInfoSchema.file,
    ]);
  };
  // The error interceptor is first, so it is outermost and sees every refusal. Malformed
  // bodies and admission come before auth: a flood of bad keys is shed like any other.
  // The caller's deadline is set before admission, so it bounds every wait after it.
  // Observation is outside them all: its span and log line cover every answer. The metrics'
  // interceptor is inside it, before the error interceptor: it only counts, and sees each call's final code.
  const interceptors = [
    observeInterceptor(options.logger ?? createLogger("silent")), metrics.interceptor(), errorInterceptor(log), malformedInterceptor(), deadlineInterceptor(), admissionInterceptor(admission), authInterceptor(verifier),
  ];
  const handler = connectNodeAdapter({
    routes: (router: ConnectRouter) => {
      routes(router);
      // Bodies that do not decode are refused with a reason, not answered Internal (malformed-requests.ts).
      router.handlers.splice(0, router.handlers.length, ...router.handlers.map(guardUnaryBodies));
    },
    interceptors,
    readMaxBytes: limits.requestBodyBytesMax,
    fallback: (req, res) => {
      if ((req as http.IncomingMessage).url?.split("?")[0] === "/metrics") {
        void metrics.serve(req as http.IncomingMessage, res as http.ServerResponse, options.metricsToken ?? null).catch((error: unknown) => {
          log(`metrics: ${String(error)}`);
          (res as http.ServerResponse).writeHead(500).end();
        });
        return;
      }
      // Stripe's events, before the admin UI takes every other path.
      if ((req as http.IncomingMessage).url?.split("?")[0] === stripeWebhookPath) {
        void handleStripeWebhook(deps, { secret: options.stripeWebhookSecret ?? null, log }, req as http.IncomingMessage, res as http.ServerResponse);
        return;
      }
      serveUi(req as http.IncomingMessage, res as http.ServerResponse, { customerViewFrameAncestors: options.customerViewFrameAncestors ?? "*", checkoutUrl: options.checkoutUrl ?? null }).catch((error: unknown) => {
        log(`admin UI: ${String(error)}`);
        (res as http.ServerResponse).writeHead(500).end();
      });
    },
  });
  const httpServer = http.createServer(withCors(handler, options.corsOrigins ?? []));
  const grpcServer = createGrpcJsServer({ routes, interceptors, readMaxBytes: limits.requestBodyBytesMax, log });
  const httpPort = await listen(httpServer, options.host, options.httpPort);
  const grpcPort = await listenGrpcJs(grpcServer, options.host, options.grpcPort).catch(async (error: unknown) => {
    // Not left half up: the HTTP listener goes too.
    await new Promise((resolve) => httpServer.close(resolve));
    throw error;
  });
  const jobs = options.jobIntervalMs > 0 ? startExpiryJobs(deps, options.jobIntervalMs, log) : null;
  const schedules = options.jobIntervalMs > 0 ? startScheduleJobs(deps, options.jobIntervalMs, log) : null;
  // Kicked by the write path whatever the interval: an order opens as soon as its balance crosses.
  const recharges = startRechargeJobs(deps, options.jobIntervalMs, log);
  rechargeDue = recharges.kick;
  const selfCheckMs = options.selfCheck?.intervalMs ?? 0;
  const selfCheck = selfCheckMs > 0 ? startSelfCheck(options.pool, metrics, { intervalMs: selfCheckMs, sampleSize: options.selfCheck?.sampleSize ?? limits.selfCheckSampleDefault }, log) : null;
  const webhooks = options.jobIntervalMs > 0 ? startWebhookDelivery(deps, webhookPolicyOf(options.webhooks), options.jobIntervalMs, log) : null;
  const usageQueue = options.usageQueue ? startUsageConsumer(deps, admission, options.usageQueue, log) : null;
  if (usageQueue) metrics.watchUsageQueue(usageQueue);
  const urlHost = options.host.includes(":") ? `[${options.host}]` : options.host;
  return {
    httpUrl: `http://${urlHost}:${httpPort}`,
    grpcUrl: `http://${urlHost}:${grpcPort}`,
    deps,
    admission,
    metrics,
    connectHandler: handler,
    usageQueue,
    close: async () => {
      // The queue's batch in hand is recorded and acknowledged while the pool is still open.
      await Promise.all([jobs?.stop(), schedules?.stop(), webhooks?.stop(), recharges.stop(), selfCheck?.stop(), usageQueue?.stop()]);
      // In-flight calls get a grace period on both listeners; then they are cut.
      const closed = Promise.all([new Promise((resolve) => httpServer.close(resolve)), closeGrpcJs(grpcServer, limits.shutdownGraceMsMax)]);
      httpServer.closeIdleConnections();
      const timer = setTimeout(() => httpServer.closeAllConnections(), limits.shutdownGraceMsMax);
      await closed;
      clearTimeout(timer);
    },
  };
}
