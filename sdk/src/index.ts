// @burndown/sdk: the generated Burndown contract, helpers shared by its clients, and the client.
export * from "./gen/burndown/v1/types_pb.js";
export * from "./gen/burndown/v1/usage_pb.js";
export * from "./gen/burndown/v1/ledger_service_pb.js";
export * from "./gen/burndown/v1/admin_service_pb.js";
export * from "./gen/burndown/v1/billing_pb.js";
export * from "./gen/burndown/v1/webhooks_pb.js";
export * from "./gen/burndown/v1/pools_pb.js";
export * from "./gen/burndown/v1/promotions_pb.js";
export * from "./gen/burndown/v1/corrections_pb.js";
export * from "./gen/burndown/v1/support_pb.js";
export * from "./gen/burndown/v1/plans_pb.js";
export * from "./gen/burndown/v1/finance_pb.js";
export { ErrorInfoSchema, errorDomain, type ErrorInfo } from "./error-info.js";
export { errorInfoOf } from "./error-reason.js";
export { createBurndownClient, type BurndownClient, type BurndownClientOptions, type UsageOptions } from "./client.js";
export { createGrpcJsTransport, type GrpcJsTransport, type GrpcJsTransportOptions } from "./grpc-js-transport.js";
export type { Attempt, AttemptInfo, AttemptInterceptor, Call, CallInfo, CallInterceptor, CallOptions } from "./call-path.js";
export { type Clock, type SleepReason, systemClock } from "./clock.js";
export {
  BurndownError,
  InsufficientCreditsError,
  NotFoundError,
  RequestIdReusedError,
  ReservationExpiredError,
  ReservationNotHeldError,
  UnavailableError,
} from "./errors.js";
export { limits as clientLimits } from "./limits.js";
export { backoffDelayMs, type CallKind, type RetryOptions, shouldRetry } from "./retry-policy.js";
export type { DrainResult, UsageEventInit, UsageReceipt, UsageStats } from "./usage-batcher.js";
export type { QueueStats } from "./queue-sink.js";
export type { CreditsSpec, Hold } from "./with-credits.js";
export { traceContextInterceptor } from "./trace-context.js";
