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
  /** origins whose pages may call the RPCs from a browser (CORS); none: no CORS headers. */
  corsOrigins: string[];
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
  /** GET /metrics wants this bearer token; null: open (a private port). */
  metricsToken: string | null;
  /** the ledger self-check: every intervalMs (0: off), sampleSize customers per run. */
  selfCheck: { intervalMs: number; sampleSize: number };
  /** usage from a NATS JetStream queue (queue/usage-consumer.ts); null: no consumer. */
  usageQueue: UsageQueueConfig | null;
  /** the least severe log level written (BURNDOWN_LOG_LEVEL). */
  logLevel: LogLevel;
  /** OpenTelemetry traces on: the standard OTEL_* variables name an exporter (tracing.ts). */
  tracing: boolean;
}

/** UsageQueueConfig names the JetStream stream, consumer and dead-letter subject of usage from a queue. */
export interface UsageQueueConfig {
  /** NATS servers, comma-separated (nats://host:port or host:port). */
  natsUrl: string;
  stream: string;
  /** the consumer's subject filter; null: every subject of the stream. */
  subject: string | null;
  durable: string;
  deadLetterSubject: string;
  batchSize: number;
  ackWaitMs: number;
  /** the API key the consumer acts as: its events share that key's event-id dedup with its RPC calls. */
  apiKeyId: string;
  /** create the stream (on subject) when it is missing; never alters an existing one. */
  createStream: boolean;
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

/** metricsToken checks the /metrics bearer token: unset or empty means none; else 16-200 visible characters. */
function metricsToken(value: string | undefined): string | null {
  if (value === undefined || value === "") return null;
  if (!/^[\x21-\x7e]{16,200}$/.test(value)) throw new Error(`BURNDOWN_METRICS_TOKEN must be 16 to 200 visible ASCII characters without spaces (a bearer token), got one of ${value.length} characters`);
  return value;
}

/** selfCheckInterval is 0 (off) or 1 s to 7 days. */
function selfCheckInterval(value: string | undefined): number {
  const ms = count("BURNDOWN_SELF_CHECK_INTERVAL_MS", value, limits.selfCheckIntervalMsDefault, 0, 7 * 86_400_000);
  if (ms > 0 && ms < 1_000) throw new Error(`BURNDOWN_SELF_CHECK_INTERVAL_MS must be 0 (off) or from 1000 to ${7 * 86_400_000} milliseconds, got ${JSON.stringify(value)}`);
  return ms;
}

/** logLevel reads BURNDOWN_LOG_LEVEL: one of pino's levels, or silent; info when unset. */
function logLevel(value: string | undefined): LogLevel {
  if (value === undefined || value.trim() === "") return "info";
  const level = value.trim().toLowerCase();
  if (!(logLevels as readonly string[]).includes(level)) throw new Error(`BURNDOWN_LOG_LEVEL must be one of ${logLevels.join(", ")}, got ${JSON.stringify(value)}`);
  return level as LogLevel;
}

/**
 * corsOrigins reads a comma-separated list of origins, each exactly as a browser sends it
 * in Origin (scheme, host and port only: no path, no trailing slash, no wildcard).
 */
function corsOrigins(value: string | undefined): string[] {
  if (value === undefined || value.trim() === "") return [];
  const origins = value.split(",").map((origin) => origin.trim()).filter((origin) => origin !== "");
  if (origins.length > 50) throw new Error(`BURNDOWN_CORS_ORIGINS lists ${origins.length} origins; at most 50`);
  for (const origin of origins) {
    let parsed: URL | null = null;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = null;
    }
    if (parsed === null || (parsed.protocol !== "https:" && parsed.protocol !== "http:") || parsed.origin !== origin) {
      throw new Error(`BURNDOWN_CORS_ORIGINS: ${JSON.stringify(origin)} is not an origin as browsers send it (https://app.example.com, no path or trailing slash)`);
    }
  }
  return [...new Set(origins)];
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

/**
 * Setting is one environment variable as the configuration table documents it. The table in
 * README.md ("Configuration") is rendered from this list (renderConfigTable; `npm run
 * docs:config` writes it, a test checks it), and readConfig can only read a variable listed
 * here, so nothing the server reads goes undocumented.
 */
export interface Setting {
  name: string;
  /** the default, as an operator would write it ("unset: ..." when there is none). */
  default: string;
  /** what values are allowed. */
  allowed: string;
  meaning: string;
}

export const settings: readonly Setting[] = [
  { name: "DATABASE_URL", default: "unset: embedded PostgreSQL", allowed: "a `postgres://` or `postgresql://` URL", meaning: "any PostgreSQL 14+ (for `client_connection_check_interval`); what the server connects as (see \"Database roles\")" },
  { name: "BURNDOWN_MIGRATION_DATABASE_URL", default: "unset: `DATABASE_URL`", allowed: "a `postgres://` URL; needs `DATABASE_URL`", meaning: "the tables' owner, used only to run migrations on start, so that `DATABASE_URL` can be a least-privilege role" },
  { name: "REDIS_URL", default: "unset", allowed: "a `redis://` or `rediss://` URL", meaning: "optional Redis for cross-replica fan-out: a revoked API key is refused by every replica at once instead of within 5 s. The ledger never depends on it: with Redis down or paused, requests go on from PostgreSQL and revocation falls back to the 5 s bound" },
  { name: "BURNDOWN_REDIS_PREFIX", default: "`burndown`", allowed: "1-100 of `[A-Za-z0-9_.:-]`", meaning: "channel prefix, to keep deployments that share one Redis apart" },
  { name: "BURNDOWN_DATA_DIR", default: "`.burndown/postgres`", allowed: "a folder path", meaning: "where the embedded PostgreSQL keeps its data" },
  { name: "HOST", default: "`127.0.0.1`", allowed: "an address or host name", meaning: "address both listeners bind to (`0.0.0.0` to serve a network)" },
  { name: "PORT", default: "`7070`", allowed: "0-65535 (0: any free port)", meaning: "HTTP/1.1: Connect, gRPC-Web, admin UI" },
  { name: "GRPC_PORT", default: "`7071`", allowed: "0-65535, not `PORT`", meaning: "HTTP/2 cleartext: gRPC (`@grpc/grpc-js`)" },
  { name: "BURNDOWN_ADMIN_KEY", default: "unset", allowed: "`bd_<20 hex>_<43 base64url>`", meaning: "an admin token to create if missing (on the first start without it, one is made and printed once)" },
  { name: "BURNDOWN_JOB_INTERVAL_MS", default: "`1000`", allowed: "0-86400000", meaning: "how often reservation and lot expiry, schedules and webhook delivery run; `0` turns them off" },
  { name: "BURNDOWN_USAGE_LATE_CUTOFF_DAYS", default: "`7`", allowed: "a number of days above 0, at most 3650", meaning: "usage events older than this (by event time) are rejected" },
  { name: "BURNDOWN_USAGE_DEDUP_DAYS", default: "`35`", allowed: "a number of days above 0, at most 3650", meaning: "how long a usage event id is remembered for deduplication" },
  { name: "BURNDOWN_GRANT_REASON_CODES", default: "`goodwill,service_credit,promotion,migration,sales_deal,correction`", allowed: `comma-separated codes of \`[a-z0-9_.-]\` (1-${limits.codeLengthMax} characters, at most ${limits.grantReasonCodesMax})`, meaning: "the reason codes the reason-code list starts with on a deployment's first start (when the list is empty); after that admins manage the list (`SupportService`, Platform → Reason codes)" },
  { name: "BURNDOWN_GRANT_REQUEST_TTL_MINUTES", default: "`10080` (7 days)", allowed: "1-129600 (90 days)", meaning: "how long a grant request waits for approval before it expires" },
  { name: "BURNDOWN_RECHARGE_RETRY_DELAYS_MS", default: "`3600000,21600000,86400000`", allowed: "1 to 10 delays, 1 s to 30 days each", meaning: "auto-recharge: after the nth failed payment of a recharge order, ask for it again after the nth delay; when the payment after the last one fails, auto-recharge turns off" },
  { name: "BURNDOWN_STRIPE_WEBHOOK_SECRET", default: "unset", allowed: "`whsec_...`", meaning: "Stripe's webhook signing secret; with it, `POST /webhooks/stripe` on `PORT` confirms and refunds top-up orders (see `BillingService` in `proto/burndown/v1/billing.proto`); unset, that path is 404" },
  { name: "BURNDOWN_WEBHOOK_TIMEOUT_MS", default: "`10000`", allowed: "100-60000", meaning: "how long one webhook delivery attempt may take before it counts as failed" },
  { name: "BURNDOWN_WEBHOOK_ATTEMPTS", default: "`20`", allowed: "1-50", meaning: "attempts of one webhook delivery, with exponential backoff (up to 6 h apart), before it is failed and waits for a replay" },
  { name: "BURNDOWN_DISPUTE_FIRST_RESPONSE_HOURS", default: "`24`", allowed: "1-2160", meaning: "a dispute's first response (assignment, note or resolution) is due this many hours after it opens" },
  { name: "BURNDOWN_DISPUTE_RESOLUTION_HOURS", default: "`120`", allowed: "1-8760", meaning: "a dispute's resolution is due this many hours after it opens" },
  { name: "BURNDOWN_CREDITS_EXPIRING_DAYS", default: "`7`", allowed: "0-365", meaning: "a lot with unused credits is announced once by a `credits.expiring` webhook event this many days before it expires (`0`: never)" },
  { name: "BURNDOWN_CHECKOUT_URL", default: "unset", allowed: "an http(s) URL with `{order_id}`, at most 2000 characters", meaning: "your checkout page, with `{order_id}` (and optionally `{customer_id}`): the customer view then sells the bundles and links there to pay; unset, it sells nothing itself" },
  { name: "BURNDOWN_CORS_ORIGINS", default: "unset: no CORS headers", allowed: "comma-separated origins (`https://app.example.com`, `http://localhost:5173`), at most 50", meaning: "browser pages served from these origins may call the RPCs directly (the embeddable customer view, connect-web clients); other origins, the admin UI, `/metrics` and the Stripe webhook get no CORS headers" },
  { name: "BURNDOWN_CUSTOMER_VIEW_FRAME_ANCESTORS", default: "`*`", allowed: "space-separated origins, `'self'`, `'none'` or `*`", meaning: "who may put the customer view (`/customer`) in an iframe (CSP `frame-ancestors`)" },
  { name: "BURNDOWN_MAX_IN_FLIGHT", default: "`256`", allowed: "1-100000", meaning: "ledger and admin calls running at once per server process; a latency-first deployment sets less (the benchmark runs with `64`)" },
  { name: "BURNDOWN_MAX_QUEUED", default: "`1024`", allowed: "0-1000000", meaning: "calls waiting for a slot; past this a call is refused at once with `ResourceExhausted` / `OVERLOADED`" },
  { name: "BURNDOWN_QUEUE_WAIT_MS", default: "`5000`", allowed: "0-60000", meaning: "how long a call may wait for a slot before it is refused with `OVERLOADED`; set lower (say `100`) to prefer fast refusals to slow answers. A caller's deadline ends its wait sooner" },
  { name: "BURNDOWN_WRITE_LANES", default: "`2`", allowed: `1-${limits.poolSizeMax - 1}, a multiple of \`BURNDOWN_CUSTOMER_PARTITIONS\``, meaning: "write lanes per server process: customers are spread over them by hash, each runs one group transaction at a time, and balance changes that arrive meanwhile join its next one (group commit). Fewer lanes make bigger groups: on a 2-core machine 1 lane did about 30% more than 2 and 2 about 30% more than 4 (`npm run bench`); more lanes keep one slow group from holding up the rest" },
  { name: "BURNDOWN_CUSTOMER_PARTITIONS", default: "`1`", allowed: "1-1024", meaning: "customer-hash partitions no group transaction ever spans (lanes must be a multiple); set it to the shard count when the database is distributed by customer, so that every transaction stays on one shard" },
  { name: "BURNDOWN_METRICS_TOKEN", default: "unset: `/metrics` open", allowed: "16-200 visible ASCII characters", meaning: "`GET /metrics` on `PORT` then wants `Authorization: Bearer <token>` (Prometheus' `authorization` scrape setting); leave it unset when the port is private" },
  { name: "BURNDOWN_SELF_CHECK_INTERVAL_MS", default: "`900000` (15 min)", allowed: "`0` (off) or 1000-604800000", meaning: "how often each replica rebuilds a sample of customers' balances, lots and reservations from their entries and compares (`burndown_self_check_*` metrics and a log line; it never fixes anything)" },
  { name: "BURNDOWN_SELF_CHECK_SAMPLE", default: "`100`", allowed: `1-${limits.selfCheckSampleMax}`, meaning: "customers verified per self-check run: up to half written recently by this replica, the rest at random" },
  { name: "BURNDOWN_NATS_URL", default: "unset: no queue consumer", allowed: "NATS servers, comma-separated (`nats://host:4222` or `host:4222`)", meaning: "usage from a NATS JetStream queue (docs/operations-queue.md): each replica consumes usage events through the same rating and event-id dedup as `ReportUsage`; the other `BURNDOWN_NATS_*` settings need it. The ledger never depends on it" },
  { name: "BURNDOWN_NATS_STREAM", default: "required with `BURNDOWN_NATS_URL`", allowed: "1-64 of `[A-Za-z0-9_-]`", meaning: "the JetStream stream the usage events are in; never created or altered unless `BURNDOWN_NATS_CREATE_STREAM=1`" },
  { name: "BURNDOWN_NATS_SUBJECT", default: "unset: the whole stream", allowed: "a subject of `[A-Za-z0-9_-]` tokens, `*` and a final `>` allowed", meaning: "the consumer's subject filter" },
  { name: "BURNDOWN_NATS_DURABLE", default: "`burndown-usage`", allowed: "1-64 of `[A-Za-z0-9_-]`", meaning: "the durable pull consumer every replica shares; created (explicit acks, `BURNDOWN_NATS_ACK_WAIT_MS`, the filter) when missing, used as it is when it exists" },
  { name: "BURNDOWN_NATS_DEAD_LETTER_SUBJECT", default: "required with `BURNDOWN_NATS_URL`", allowed: "a literal subject outside `BURNDOWN_NATS_SUBJECT`", meaning: "where rejected and unrated events go, payload as received and reason in headers; give it a stream, or those messages are handed back until it has one" },
  { name: "BURNDOWN_NATS_BATCH_SIZE", default: `\`${limits.queueBatchSizeDefault}\``, allowed: `1-${limits.usageBatchSizeMax}`, meaning: "queued events recorded per batch (one `reportUsage`, one admission slot)" },
  { name: "BURNDOWN_NATS_ACK_WAIT_MS", default: `\`${limits.queueAckWaitMsDefault}\``, allowed: `${limits.queueAckWaitMsMin}-${limits.queueAckWaitMsMax}`, meaning: "how long JetStream waits for an ack before it delivers a message again; used when the server creates the consumer" },
  { name: "BURNDOWN_NATS_API_KEY_ID", default: "required with `BURNDOWN_NATS_URL`", allowed: "a key id (the 20 hex digits after `bd_`)", meaning: "the service (or admin) API key the consumer acts as: queued events share its event-id dedup with its `ReportUsage` calls, and the audit trail records them as from the queue" },
  { name: "BURNDOWN_NATS_CREATE_STREAM", default: "`0`", allowed: "`0` or `1`; `1` needs `BURNDOWN_NATS_SUBJECT`", meaning: "`1` creates a missing stream on `BURNDOWN_NATS_SUBJECT`, and a stream for the dead letters; for development" },
  { name: "BURNDOWN_LOG_LEVEL", default: "`info`", allowed: "`trace`, `debug`, `info`, `warn`, `error`, `fatal`, `silent`", meaning: "the least severe log line written; logs are JSON lines on stdout, one per call at `info` (docs/operations-traces-logs.md)" },
  { name: "OTEL_TRACES_EXPORTER", default: "unset", allowed: "`otlp`, `console`, `zipkin` or `none`, comma-separated", meaning: "OpenTelemetry's standard variable: naming an exporter turns tracing on (`none` keeps it off). The other `OTEL_*` variables (service name, protocol, headers, sampler) go to the OpenTelemetry SDK as its specification says; the service name is `burndown-server` unless `OTEL_SERVICE_NAME` says otherwise" },
  { name: "OTEL_EXPORTER_OTLP_ENDPOINT", default: "unset: no traces", allowed: "a URL", meaning: "where OTLP traces go (a collector, `http://collector:4318`); setting it (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns tracing on" },
  { name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", default: "unset", allowed: "a URL", meaning: "where OTLP traces go, for traces only (the full path, `http://collector:4318/v1/traces`)" },
  { name: "OTEL_SDK_DISABLED", default: "`false`", allowed: "`true` or `false`", meaning: "`true` keeps tracing off whatever else is set" },
  { name: "BURNDOWN_TEST_ONLY_ALLOW_UNSAFE_DURABILITY", default: "unset", allowed: "`1` or unset", meaning: "`1` lets the server start on a database with `synchronous_commit` or `fsync` off. Never in production." },
];

const settingNames = new Set(settings.map((setting) => setting.name));

/** ConfigError is every problem found in the environment, one line each. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join("\n"));
    this.name = "ConfigError";
  }
}

/**
 * Reader reads documented variables, keeping a problem per bad value and going on, so that one
 * start reports every bad value at once instead of one per attempt.
 */
class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: NodeJS.ProcessEnv) {}

  /** raw is a variable's value; reading one the table does not list is a programming error. */
  raw(name: string): string | undefined {
    if (!settingNames.has(name)) throw new Error(`${name} is read but not listed in settings (server/src/config.ts)`);
    return this.env[name];
  }

  /** read parses a variable; on a bad value it records the problem and answers the fallback. */
  read<T>(name: string, parse: (value: string | undefined) => T, fallback: T): T {
    try {
      return parse(this.raw(name));
    } catch (error) {
      if (!(error instanceof Error) || error.message.includes("not listed in settings")) throw error;
      this.problems.push(error.message);
      return fallback;
    }
  }

  problem(message: string): void {
    this.problems.push(message);
  }
}

/** databaseUrl checks a PostgreSQL URL (a key=value or socket-path string is passed on to the driver as is). */
function databaseUrl(name: string) {
  return (value: string | undefined): string | null => {
    if (value === undefined || value === "") return null;
    if (!value.includes("://")) return value;
    let protocol = "";
    try {
      protocol = new URL(value).protocol;
    } catch {
      protocol = "";
    }
    if (protocol !== "postgres:" && protocol !== "postgresql:") throw new Error(`${name} must be a postgres:// or postgresql:// URL, got a value starting ${JSON.stringify(value.slice(0, value.indexOf("://") + 3))}`);
    return value;
  };
}

function redisUrl(value: string | undefined): string | null {
  if (value === undefined || value === "") return null;
  let protocol = "";
  try {
    protocol = new URL(value).protocol;
  } catch {
    protocol = "";
  }
  // The value may hold a password: only its scheme is repeated.
  if (protocol !== "redis:" && protocol !== "rediss:") throw new Error(`REDIS_URL must be a redis:// or rediss:// URL, got a value starting ${JSON.stringify(value.split(":")[0])}`);
  return value;
}

function redisPrefix(value: string | undefined): string {
  if (value === undefined || value === "") return "burndown";
  if (!/^[A-Za-z0-9_.:-]{1,100}$/.test(value)) throw new Error(`BURNDOWN_REDIS_PREFIX must be 1-100 characters of [A-Za-z0-9_.:-], got ${JSON.stringify(value)}`);
  return value;
}

function adminKey(value: string | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  // The format of newApiKeyToken (service/api-keys.ts); the value itself is a secret and is never repeated.
  if (!/^bd_[0-9a-f]{20}_[A-Za-z0-9_-]{43}$/.test(value)) throw new Error(`BURNDOWN_ADMIN_KEY must be a key of the form bd_<20 hex digits>_<43 base64url characters> (${value.length} characters given; the value is not shown)`);
  return value;
}

function unsafeDurability(value: string | undefined): boolean {
  if (value === undefined || value === "") return false;
  if (value !== "1") throw new Error(`BURNDOWN_TEST_ONLY_ALLOW_UNSAFE_DURABILITY must be 1 or unset, got ${JSON.stringify(value)}`);
  return true;
}

/** natsName checks a stream or consumer name: JetStream forbids spaces, dots, wildcards and path separators. */
function natsName(name: string, fallback: string | null) {
  return (value: string | undefined): string => {
    if (value === undefined || value === "") {
      if (fallback === null) throw new Error(`${name} must be set when BURNDOWN_NATS_URL is`);
      return fallback;
    }
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(value)) throw new Error(`${name} must be 1-64 characters of [A-Za-z0-9_-], got ${JSON.stringify(value)}`);
    return value;
  };
}

/** natsSubject checks a subject (dot-separated tokens; a filter may use * and a final >). */
function natsSubject(name: string, wildcards: boolean) {
  return (value: string | undefined): string => {
    const tokens = (value ?? "").split(".");
    const ok = (value ?? "").length <= 255 && tokens.every((token, index) => /^[A-Za-z0-9_-]+$/.test(token) || (wildcards && (token === "*" || (token === ">" && index === tokens.length - 1))));
    if (!ok) throw new Error(`${name} must be a NATS subject of dot-separated [A-Za-z0-9_-] tokens${wildcards ? " (* and a final > allowed)" : ""}, got ${JSON.stringify(value ?? "")}`);
    return value!;
  };
}

/** subjectMatches says whether a subject filter (with * and >) takes a literal subject. */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split(".");
  const s = subject.split(".");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === ">") return s.length > i;
    if (i >= s.length || (f[i] !== "*" && f[i] !== s[i])) return false;
  }
  return f.length === s.length;
}

function natsUrl(value: string | undefined): string | null {
  const url = value?.trim() ?? "";
  if (url === "") return null;
  if (!url.split(",").every((server) => /^(nats:\/\/|tls:\/\/)?[^\s,/]+(:\d{1,5})?$/.test(server.trim()))) {
    // The value may hold a password: it is not repeated.
    throw new Error("BURNDOWN_NATS_URL must be NATS servers, comma-separated (nats://host:4222 or host:4222)");
  }
  return url;
}

function apiKeyId(value: string | undefined): string {
  if (!/^[0-9a-f]{20}$/.test(value ?? "")) {
    throw new Error(`BURNDOWN_NATS_API_KEY_ID must be the id of a service API key (20 hex digits, the part after bd_ of its token), got ${JSON.stringify(value ?? "")}`);
  }
  return value!;
}

function createStream(value: string | undefined): boolean {
  if (value !== undefined && !["", "0", "1"].includes(value)) throw new Error(`BURNDOWN_NATS_CREATE_STREAM must be 1 (create a missing stream) or 0, got ${JSON.stringify(value)}`);
  return value === "1";
}

/** usageQueue reads the queue's settings; without BURNDOWN_NATS_URL there is no consumer and the others must be unset. */
function usageQueue(r: Reader): UsageQueueConfig | null {
  const url = r.read("BURNDOWN_NATS_URL", natsUrl, null);
  const names = settings.map((setting) => setting.name).filter((name) => name.startsWith("BURNDOWN_NATS_") && name !== "BURNDOWN_NATS_URL");
  if (url === null) {
    const stray = names.filter((name) => (r.raw(name) ?? "") !== "");
    if (stray.length > 0 && (r.raw("BURNDOWN_NATS_URL") ?? "").trim() === "") r.problem(`${stray.join(", ")} configure usage from a queue, which needs BURNDOWN_NATS_URL`);
    return null;
  }
  const subject = r.read("BURNDOWN_NATS_SUBJECT", (v) => (v ? natsSubject("BURNDOWN_NATS_SUBJECT", true)(v) : null), null);
  const queue: UsageQueueConfig = {
    natsUrl: url,
    stream: r.read("BURNDOWN_NATS_STREAM", natsName("BURNDOWN_NATS_STREAM", null), ""),
    subject,
    durable: r.read("BURNDOWN_NATS_DURABLE", natsName("BURNDOWN_NATS_DURABLE", "burndown-usage"), "burndown-usage"),
    deadLetterSubject: r.read("BURNDOWN_NATS_DEAD_LETTER_SUBJECT", natsSubject("BURNDOWN_NATS_DEAD_LETTER_SUBJECT", false), ""),
    batchSize: r.read("BURNDOWN_NATS_BATCH_SIZE", (v) => count("BURNDOWN_NATS_BATCH_SIZE", v, limits.queueBatchSizeDefault, 1, limits.usageBatchSizeMax), limits.queueBatchSizeDefault),
    ackWaitMs: r.read("BURNDOWN_NATS_ACK_WAIT_MS", (v) => count("BURNDOWN_NATS_ACK_WAIT_MS", v, limits.queueAckWaitMsDefault, limits.queueAckWaitMsMin, limits.queueAckWaitMsMax), limits.queueAckWaitMsDefault),
    apiKeyId: r.read("BURNDOWN_NATS_API_KEY_ID", apiKeyId, ""),
    createStream: r.read("BURNDOWN_NATS_CREATE_STREAM", createStream, false),
  };
  // Dead letters read back as usage would be rejected again, for ever.
  if (subject !== null && queue.deadLetterSubject !== "" && subjectMatches(subject, queue.deadLetterSubject)) {
    r.problem(`BURNDOWN_NATS_DEAD_LETTER_SUBJECT (${queue.deadLetterSubject}) must not match BURNDOWN_NATS_SUBJECT (${subject}): dead letters would be consumed as usage`);
  }
  if (queue.createStream && subject === null) r.problem("BURNDOWN_NATS_CREATE_STREAM=1 needs BURNDOWN_NATS_SUBJECT: the subjects of the stream it creates");
  return queue;
}

/** editDistance is Levenshtein's, for "did you mean" on a misspelt variable. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length];
}

/**
 * configWarnings names variables that look like a misspelt setting (BURNDOWN_WRITE_LANE for
 * BURNDOWN_WRITE_LANES): such a variable is ignored, so its default silently applies. Not
 * an error: other tools share the BURNDOWN_ prefix (the tests' and benchmarks' own settings).
 */
export function configWarnings(env: NodeJS.ProcessEnv): string[] {
  const warnings: string[] = [];
  for (const name of Object.keys(env)) {
    if (settingNames.has(name) || !/^(BURNDOWN_|OTEL_)/.test(name)) continue;
    const near = settings.find((setting) => editDistance(setting.name, name) <= 2);
    if (near) warnings.push(`${name} is not a setting and is ignored: did you mean ${near.name}?`);
  }
  return warnings;
}

/** readConfig reads and checks the environment; every bad value is reported at once (ConfigError). */
export function readConfig(env: NodeJS.ProcessEnv): Config {
  const r = new Reader(env);
  const databaseUrlValue = r.read("DATABASE_URL", databaseUrl("DATABASE_URL"), null);
  const migrationDatabaseUrl = r.read("BURNDOWN_MIGRATION_DATABASE_URL", databaseUrl("BURNDOWN_MIGRATION_DATABASE_URL"), null);
  if (migrationDatabaseUrl !== null && !env.DATABASE_URL) {
    r.problem("BURNDOWN_MIGRATION_DATABASE_URL needs DATABASE_URL (the embedded database sets up its own roles)");
  }
  const writes = {
    lanes: r.read("BURNDOWN_WRITE_LANES", (v) => count("BURNDOWN_WRITE_LANES", v, limits.writeLanesDefault, 1, limits.poolSizeMax - 1), limits.writeLanesDefault),
    partitions: r.read("BURNDOWN_CUSTOMER_PARTITIONS", (v) => count("BURNDOWN_CUSTOMER_PARTITIONS", v, limits.customerPartitionsDefault, 1, 1_024), limits.customerPartitionsDefault),
  };
  if (writes.lanes % writes.partitions !== 0) {
    r.problem(`BURNDOWN_WRITE_LANES (${writes.lanes}) must be a multiple of BURNDOWN_CUSTOMER_PARTITIONS (${writes.partitions})`);
  }
  const httpPort = r.read("PORT", (v) => port("PORT", v, 7070), 7070);
  const grpcPort = r.read("GRPC_PORT", (v) => port("GRPC_PORT", v, 7071), 7071);
  if (httpPort === grpcPort && httpPort !== 0) r.problem(`PORT and GRPC_PORT must differ (HTTP/1.1 and gRPC listen apart), both are ${httpPort}`);
  const host = r.read("HOST", (v) => {
    if (v !== undefined && !/^[A-Za-z0-9.:_-]{1,253}$/.test(v)) throw new Error(`HOST must be an address or host name (0.0.0.0, ::, 127.0.0.1, a name), got ${JSON.stringify(v)}`);
    return v || "127.0.0.1";
  }, "127.0.0.1");
  const config: Config = {
    databaseUrl: databaseUrlValue,
    migrationDatabaseUrl,
    redisUrl: r.read("REDIS_URL", redisUrl, null),
    redisChannelPrefix: r.read("BURNDOWN_REDIS_PREFIX", redisPrefix, "burndown"),
    dataDir: path.resolve(r.raw("BURNDOWN_DATA_DIR") || path.join(import.meta.dirname, "../../.burndown/postgres")),
    host,
    httpPort,
    grpcPort,
    adminKey: r.read("BURNDOWN_ADMIN_KEY", adminKey, undefined),
    customerViewFrameAncestors: r.read("BURNDOWN_CUSTOMER_VIEW_FRAME_ANCESTORS", frameAncestors, "*"),
    corsOrigins: r.read("BURNDOWN_CORS_ORIGINS", corsOrigins, []),
    checkoutUrl: r.read("BURNDOWN_CHECKOUT_URL", checkoutUrl, null),
    jobIntervalMs: r.read("BURNDOWN_JOB_INTERVAL_MS", (v) => count("BURNDOWN_JOB_INTERVAL_MS", v, limits.jobIntervalMsDefault, 0, 86_400_000), limits.jobIntervalMsDefault),
    allowUnsafeDurability: r.read("BURNDOWN_TEST_ONLY_ALLOW_UNSAFE_DURABILITY", unsafeDurability, false),
    usageLateCutoffMs: r.read("BURNDOWN_USAGE_LATE_CUTOFF_DAYS", (v) => days("BURNDOWN_USAGE_LATE_CUTOFF_DAYS", v, limits.usageLateCutoffMsDefault), limits.usageLateCutoffMsDefault),
    usageDedupRetentionMs: r.read("BURNDOWN_USAGE_DEDUP_DAYS", (v) => days("BURNDOWN_USAGE_DEDUP_DAYS", v, limits.usageDedupRetentionMsDefault), limits.usageDedupRetentionMsDefault),
    writes,
    grantReasonCodes: r.read("BURNDOWN_GRANT_REASON_CODES", (v) => reasonCodes("BURNDOWN_GRANT_REASON_CODES", v, limits.grantReasonCodesDefault), [...limits.grantReasonCodesDefault]),
    grantRequestTtlMs:
      r.read(
        "BURNDOWN_GRANT_REQUEST_TTL_MINUTES",
        (v) => count("BURNDOWN_GRANT_REQUEST_TTL_MINUTES", v, limits.grantRequestTtlMsDefault / 60_000, limits.grantRequestTtlMsMin / 60_000, limits.grantRequestTtlMsMax / 60_000),
        limits.grantRequestTtlMsDefault / 60_000,
      ) * 60_000,
    stripeWebhookSecret: r.read("BURNDOWN_STRIPE_WEBHOOK_SECRET", stripeSecret, null),
    webhooks: {
      timeoutMs: r.read("BURNDOWN_WEBHOOK_TIMEOUT_MS", (v) => count("BURNDOWN_WEBHOOK_TIMEOUT_MS", v, limits.webhookTimeoutMsDefault, 100, 60_000), limits.webhookTimeoutMsDefault),
      attemptsMax: r.read("BURNDOWN_WEBHOOK_ATTEMPTS", (v) => count("BURNDOWN_WEBHOOK_ATTEMPTS", v, limits.webhookAttemptsMaxDefault, 1, 50), limits.webhookAttemptsMaxDefault),
      expiringNoticeMs:
        r.read("BURNDOWN_CREDITS_EXPIRING_DAYS", (v) => count("BURNDOWN_CREDITS_EXPIRING_DAYS", v, limits.creditsExpiringNoticeMsDefault / 86_400_000, 0, 365), limits.creditsExpiringNoticeMsDefault / 86_400_000) *
        86_400_000,
    },
    rechargeRetryDelaysMs: r.read("BURNDOWN_RECHARGE_RETRY_DELAYS_MS", (v) => retryDelays("BURNDOWN_RECHARGE_RETRY_DELAYS_MS", v, limits.rechargeRetryDelaysMsDefault), limits.rechargeRetryDelaysMsDefault),
    disputeSla: {
      firstResponseMs:
        r.read("BURNDOWN_DISPUTE_FIRST_RESPONSE_HOURS", (v) => count("BURNDOWN_DISPUTE_FIRST_RESPONSE_HOURS", v, limits.disputeFirstResponseMsDefault / 3_600_000, 1, 24 * 90), limits.disputeFirstResponseMsDefault / 3_600_000) *
        3_600_000,
      resolutionMs:
        r.read("BURNDOWN_DISPUTE_RESOLUTION_HOURS", (v) => count("BURNDOWN_DISPUTE_RESOLUTION_HOURS", v, limits.disputeResolutionMsDefault / 3_600_000, 1, 24 * 365), limits.disputeResolutionMsDefault / 3_600_000) *
        3_600_000,
    },
    metricsToken: r.read("BURNDOWN_METRICS_TOKEN", metricsToken, null),
    selfCheck: {
      intervalMs: r.read("BURNDOWN_SELF_CHECK_INTERVAL_MS", selfCheckInterval, limits.selfCheckIntervalMsDefault),
      sampleSize: r.read("BURNDOWN_SELF_CHECK_SAMPLE", (v) => count("BURNDOWN_SELF_CHECK_SAMPLE", v, limits.selfCheckSampleDefault, 1, limits.selfCheckSampleMax), limits.selfCheckSampleDefault),
    },
    logLevel: r.read("BURNDOWN_LOG_LEVEL", logLevel, "info"),
    // The OTEL_* variables that decide whether tracing starts (the SDK reads the rest itself).
    tracing: r.read(
      "OTEL_SDK_DISABLED",
      () =>
        tracingWantedIn(
          Object.fromEntries(["OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED"].map((name) => [name, r.raw(name)])),
        ),
      false,
    ),
    admission: {
      inFlightMax: r.read("BURNDOWN_MAX_IN_FLIGHT", (v) => count("BURNDOWN_MAX_IN_FLIGHT", v, limits.inFlightMaxDefault, 1, 100_000), limits.inFlightMaxDefault),
      queuedMax: r.read("BURNDOWN_MAX_QUEUED", (v) => count("BURNDOWN_MAX_QUEUED", v, limits.queuedMaxDefault, 0, 1_000_000), limits.queuedMaxDefault),
      queueWaitMs: r.read("BURNDOWN_QUEUE_WAIT_MS", (v) => count("BURNDOWN_QUEUE_WAIT_MS", v, limits.queueWaitMsDefault, 0, 60_000), limits.queueWaitMsDefault),
    },
    usageQueue: usageQueue(r),
  };
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return config;
}

/** renderConfigTable is the README's configuration table, from settings. */
export function renderConfigTable(): string {
  const cell = (text: string) => text.replaceAll("|", "\\|");
  const rows = settings.map((setting) => `| \`${setting.name}\` | ${cell(setting.default)} | ${cell(setting.allowed)} | ${cell(setting.meaning)} |`);
  return ["| variable | default | allowed | meaning |", "| --- | --- | --- | --- |", ...rows].join("\n");
}
