// Configuration from the environment, checked once at start.
import path from "node:path";
import { limits } from "./limits.js";
import { type LogLevel, logLevels } from "./logger.js";
import { tracingWantedIn } from "./tracing.js";

/** Config is everything main needs to start. */
export interface Config {
  /** null: start an embedded PostgreSQL in dataDir. */
  databaseUrl: string | null;
  /** the tables' owner, for migrations only, when the server itself connects with fewer privileges. */
  migrationDatabaseUrl: string | null;
  /** Redis for cross-replica fan-out (optional). */
  redisUrl: string | null;
  /** keeps deployments that share one Redis apart. */
  redisChannelPrefix: string;
  dataDir: string;
  host: string;
  httpPort: number;
  grpcPort: number;
  adminKey: string | undefined;
  jobIntervalMs: number;
  /** test-only: start even when synchronous_commit or fsync is off. */
  allowUnsafeDurability: boolean;
  usageLateCutoffMs: number;
  usageDedupRetentionMs: number;
  /** admission control: see rpc/admission.ts. */
  admission: { inFlightMax: number; queuedMax: number; queueWaitMs: number };
  /** who may frame the customer view (CSP frame-ancestors sources). */
  customerViewFrameAncestors: string;
  /** the vendor's checkout page, with {order_id}, where the customer view sends a customer to pay an order; null: none. */
  checkoutUrl: string | null;
  /** group commit: see service/group-commit.ts. */
  writes: { lanes: number; partitions: number };
  /** the reason codes a support key's Grant may use. */
  grantReasonCodes: string[];
  /** how long a grant request waits for a decision before it expires. */
  grantRequestTtlMs: number;
  /** Stripe's webhook signing secret; null: no Stripe webhook route. */
  stripeWebhookSecret: string | null;
  /** webhook delivery: each attempt's timeout, attempts before a delivery fails, the credits.expiring window (0: none). */
  webhooks: { timeoutMs: number; attemptsMax: number; expiringNoticeMs: number };
  /** auto-recharge: the delays before a failed recharge payment is asked for again. */
  rechargeRetryDelaysMs: readonly number[];
  /** disputes: how long staff have to first act on one, and to resolve it. */
  disputeSla: { firstResponseMs: number; resolutionMs: number };
  /** the least severe log level written (BURNDOWN_LOG_LEVEL). */
  logLevel: LogLevel;
  /** OpenTelemetry traces on: the standard OTEL_* variables name an exporter (tracing.ts). */
  tracing: boolean;
}

/** logLevel reads BURNDOWN_LOG_LEVEL: one of pino's levels, or silent; info when unset. */
function logLevel(value: string | undefined): LogLevel {
  if (value === undefined || value.trim() === "") return "info";
  const level = value.trim().toLowerCase();
  if (!(logLevels as readonly string[]).includes(level)) throw new Error(`BURNDOWN_LOG_LEVEL must be one of ${logLevels.join(", ")}, got ${JSON.stringify(value)}`);
  return level as LogLevel;
}

/** retryDelays reads a comma-separated list of delays in milliseconds (1 to 10, each from 1 s to 30 days). */
function retryDelays(name: string, value: string | undefined, fallback: readonly number[]): readonly number[] {
  if (value === undefined || value === "") return fallback;
  const delays = value.split(",").map((part) => Number(part.trim()));
  if (delays.length > 10 || delays.some((delay) => !Number.isInteger(delay) || delay < 1_000 || delay > 30 * 86_400_000)) {
    throw new Error(`${name} must list 1 to 10 delays in milliseconds (1 s to 30 days), such as 3600000,21600000,86400000, got ${JSON.stringify(value)}`);
  }
  return delays;
}

/** stripeSecret checks a Stripe webhook signing secret: unset or empty means none. */
function stripeSecret(value: string | undefined): string | null {
  if (value === undefined || value === "") return null;
  if (!/^whsec_[A-Za-z0-9_+/=-]{8,}$/.test(value)) throw new Error("BURNDOWN_STRIPE_WEBHOOK_SECRET must be a Stripe signing secret (whsec_...)");
  return value;
}

function count(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || value === "") return fallback;
  const parsed = /^[0-9]{1,16}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) throw new Error(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return parsed;
}

function days(name: string, value: string | undefined, fallbackMs: number): number {
  if (value === undefined || value === "") return fallbackMs;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0 || parsed > 3650) throw new Error(`${name} must be a number of days (0-3650), got ${JSON.stringify(value)}`);
  return Math.round(parsed * 86_400_000);
}

function port(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65535) throw new Error(`${name} must be a port number (0-65535), got ${JSON.stringify(value)}`);
  return parsed;
}

/**
 * checkoutUrl checks the vendor's checkout page: an absolute http(s) URL, at most 2,000
 * characters, with {order_id} where the customer view puts the order's id (and optionally
 * {customer_id}). Unset or empty: the customer view sells nothing itself.
 */
function checkoutUrl(value: string | undefined): string | null {
  if (value === undefined || value.trim() === "") return null;
  const url = value.trim();
  let parsed: URL | null = null;
  try {
    parsed = new URL(url.replaceAll("{order_id}", "order").replaceAll("{customer_id}", "customer"));
  } catch {
    parsed = null;
  }
  if (parsed === null || (parsed.protocol !== "https:" && parsed.protocol !== "http:") || url.length > 2_000 || !url.includes("{order_id}")) {
    throw new Error(`BURNDOWN_CHECKOUT_URL must be an http or https URL of at most 2000 characters with {order_id} in it (https://shop.example/pay?order={order_id}), got ${JSON.stringify(value)}`);
  }
  return url;
}

/** frameAncestors checks a CSP source list (origins, 'self', 'none' or *), space separated. */
function frameAncestors(value: string | undefined): string {
  if (value === undefined || value.trim() === "") return "*";
  const sources = value.trim().split(/\s+/);
  for (const source of sources) {
    if (!/^(\*|'self'|'none'|https?:\/\/[A-Za-z0-9.*-]+(:\d+)?)$/.test(source)) {
      throw new Error(`BURNDOWN_CUSTOMER_VIEW_FRAME_ANCESTORS: ${JSON.stringify(source)} is not an origin (https://shop.example), 'self', 'none' or *`);
    }
  }
  return sources.join(" ");
}

/**
 * reasonCodes reads a comma-separated list of codes, each as Grant's reason_code must be
 * (1-64 characters of [a-z0-9_.-], starting with a letter or digit: requireCode in
 * rpc/decode.ts); a code listed twice counts once.
 */
function reasonCodes(name: string, value: string | undefined, fallback: readonly string[]): string[] {
  if (value === undefined || value.trim() === "") return [...fallback];
  const codes = value.split(",").map((code) => code.trim());
  for (const code of codes) {
    if (code.length > limits.codeLengthMax || !/^[a-z0-9][a-z0-9_.-]*$/.test(code)) {
      throw new Error(`${name} must be a comma-separated list of codes of [a-z0-9_.-] (1-${limits.codeLengthMax} characters each), got ${JSON.stringify(code)} in ${JSON.stringify(value)}`);
    }
  }
  const unique = [...new Set(codes)];
  if (unique.length > limits.grantReasonCodesMax) throw new Error(`${name} may list at most ${limits.grantReasonCodesMax} codes, got ${unique.length}`);
  return unique;
}

/** readConfig reads and checks the environment. */
export function readConfig(env: NodeJS.ProcessEnv): Config {
  const interval = Number(env.BURNDOWN_JOB_INTERVAL_MS ?? 1000);
  if (!Number.isInteger(interval) || interval < 0) throw new Error("BURNDOWN_JOB_INTERVAL_MS must be a non-negative integer");
  if (env.BURNDOWN_MIGRATION_DATABASE_URL && !env.DATABASE_URL) {
    throw new Error("BURNDOWN_MIGRATION_DATABASE_URL needs DATABASE_URL (the embedded database sets up its own roles)");
  }
  const writes = {
    lanes: count("BURNDOWN_WRITE_LANES", env.BURNDOWN_WRITE_LANES, limits.writeLanesDefault, 1, limits.poolSizeMax - 1),
    partitions: count("BURNDOWN_CUSTOMER_PARTITIONS", env.BURNDOWN_CUSTOMER_PARTITIONS, limits.customerPartitionsDefault, 1, 1_024),
  };
  if (writes.lanes % writes.partitions !== 0) {
    throw new Error(`BURNDOWN_WRITE_LANES (${writes.lanes}) must be a multiple of BURNDOWN_CUSTOMER_PARTITIONS (${writes.partitions})`);
  }
  return {
    databaseUrl: env.DATABASE_URL ? env.DATABASE_URL : null,
    migrationDatabaseUrl: env.BURNDOWN_MIGRATION_DATABASE_URL ? env.BURNDOWN_MIGRATION_DATABASE_URL : null,
    redisUrl: env.REDIS_URL ? env.REDIS_URL : null,
    redisChannelPrefix: env.BURNDOWN_REDIS_PREFIX || "burndown",
    dataDir: path.resolve(env.BURNDOWN_DATA_DIR ?? path.join(import.meta.dirname, "../../.burndown/postgres")),
    host: env.HOST ?? "127.0.0.1",
    httpPort: port("PORT", env.PORT, 7070),
    grpcPort: port("GRPC_PORT", env.GRPC_PORT, 7071),
    adminKey: env.BURNDOWN_ADMIN_KEY || undefined,
    customerViewFrameAncestors: frameAncestors(env.BURNDOWN_CUSTOMER_VIEW_FRAME_ANCESTORS),
    checkoutUrl: checkoutUrl(env.BURNDOWN_CHECKOUT_URL),
    jobIntervalMs: interval,
    allowUnsafeDurability: env.BURNDOWN_TEST_ONLY_ALLOW_UNSAFE_DURABILITY === "1",
    usageLateCutoffMs: days("BURNDOWN_USAGE_LATE_CUTOFF_DAYS", env.BURNDOWN_USAGE_LATE_CUTOFF_DAYS, limits.usageLateCutoffMsDefault),
    usageDedupRetentionMs: days("BURNDOWN_USAGE_DEDUP_DAYS", env.BURNDOWN_USAGE_DEDUP_DAYS, limits.usageDedupRetentionMsDefault),
    writes,
    grantReasonCodes: reasonCodes("BURNDOWN_GRANT_REASON_CODES", env.BURNDOWN_GRANT_REASON_CODES, limits.grantReasonCodesDefault),
    grantRequestTtlMs:
      count("BURNDOWN_GRANT_REQUEST_TTL_MINUTES", env.BURNDOWN_GRANT_REQUEST_TTL_MINUTES, limits.grantRequestTtlMsDefault / 60_000, limits.grantRequestTtlMsMin / 60_000, limits.grantRequestTtlMsMax / 60_000) *
      60_000,
    stripeWebhookSecret: stripeSecret(env.BURNDOWN_STRIPE_WEBHOOK_SECRET),
    webhooks: {
      timeoutMs: count("BURNDOWN_WEBHOOK_TIMEOUT_MS", env.BURNDOWN_WEBHOOK_TIMEOUT_MS, limits.webhookTimeoutMsDefault, 100, 60_000),
      attemptsMax: count("BURNDOWN_WEBHOOK_ATTEMPTS", env.BURNDOWN_WEBHOOK_ATTEMPTS, limits.webhookAttemptsMaxDefault, 1, 50),
      expiringNoticeMs:
        count("BURNDOWN_CREDITS_EXPIRING_DAYS", env.BURNDOWN_CREDITS_EXPIRING_DAYS, limits.creditsExpiringNoticeMsDefault / 86_400_000, 0, 365) * 86_400_000,
    },
    rechargeRetryDelaysMs: retryDelays("BURNDOWN_RECHARGE_RETRY_DELAYS_MS", env.BURNDOWN_RECHARGE_RETRY_DELAYS_MS, limits.rechargeRetryDelaysMsDefault),
    disputeSla: {
      firstResponseMs: count("BURNDOWN_DISPUTE_FIRST_RESPONSE_HOURS", env.BURNDOWN_DISPUTE_FIRST_RESPONSE_HOURS, limits.disputeFirstResponseMsDefault / 3_600_000, 1, 24 * 90) * 3_600_000,
      resolutionMs: count("BURNDOWN_DISPUTE_RESOLUTION_HOURS", env.BURNDOWN_DISPUTE_RESOLUTION_HOURS, limits.disputeResolutionMsDefault / 3_600_000, 1, 24 * 365) * 3_600_000,
    },
    logLevel: logLevel(env.BURNDOWN_LOG_LEVEL),
    tracing: tracingWantedIn(env),
    admission: {
      inFlightMax: count("BURNDOWN_MAX_IN_FLIGHT", env.BURNDOWN_MAX_IN_FLIGHT, limits.inFlightMaxDefault, 1, 100_000),
      queuedMax: count("BURNDOWN_MAX_QUEUED", env.BURNDOWN_MAX_QUEUED, limits.queuedMaxDefault, 0, 1_000_000),
      queueWaitMs: count("BURNDOWN_QUEUE_WAIT_MS", env.BURNDOWN_QUEUE_WAIT_MS, limits.queueWaitMsDefault, 0, 60_000),
    },
  };
}
