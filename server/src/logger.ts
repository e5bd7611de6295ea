// Structured logs: pino, one JSON object per line on stdout, at the level BURNDOWN_LOG_LEVEL
// says. The server's many `log(message)` call sites keep their shape (messageLog adapts
// them); each request is one line written by rpc/observe-interceptor.ts. Nothing secret is
// logged: request lines carry no headers and no body, and messageLog masks bearer tokens,
// API keys, webhook signing secrets and URL passwords in case a message quotes one.
import { context, isSpanContextValid, trace } from "@opentelemetry/api";
import { type DestinationStream, type Logger, pino } from "pino";

/** Logger is the server's structured logger. */
export type { Logger } from "pino";

/** logLevels are the levels BURNDOWN_LOG_LEVEL may name, most verbose first. */
export const logLevels = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

/** LogLevel is one of logLevels. */
export type LogLevel = (typeof logLevels)[number];

/** redactedPaths are fields masked wherever a line carries them, as a second guard behind never logging them. */
const redactedPaths = ["authorization", "token", "secret", "apiKey", "headers.authorization", "*.authorization", "*.token", "*.secret", "*.apiKey", "*.signingSecret"];

/**
 * createLogger makes the logger; destination is stdout, written synchronously, unless given (tests pass a stream).
 * When a span is current (tracing on), every line carries its trace_id and span_id, so a
 * line found in the logs leads to its trace.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = { ...lineOptions(level), redact: { paths: redactedPaths, censor: "[redacted]" }, mixin: traceFields };
  // Synchronous writes to stdout: a line is out before the next statement runs, so lines
  // keep their order and the last ones before an exit (a failed start) are never lost; pino's
  // asynchronous mode put a failed start's hint before its cause. A write per line costs
  // about a microsecond (bench/observe-cost.ts).
  return pino(options, destination ?? pino.destination({ dest: 1, sync: true }));
}

function lineOptions(level: string) {
  return {
    level,
    base: { service: "burndown-server" },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
}

/**
 * requestLoggerOf is a logger for request lines, at logger's level and to its destination,
 * without redaction or the trace mixin: those doubled the cost of a line (13 µs against 7
 * in bench/observe-cost.ts), and a request line needs neither, as its fields are a fixed set
 * that holds no secret and it names its trace id itself.
 */
export function requestLoggerOf(logger: Logger): Logger {
  const destination = (logger as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym];
  return pino(lineOptions(logger.level), destination);
}

function traceFields(): object {
  const span = trace.getSpan(context.active());
  if (span === undefined) return {};
  const spanContext = span.spanContext();
  return isSpanContextValid(spanContext) ? { trace_id: spanContext.traceId, span_id: spanContext.spanId } : {};
}

/** secretPatterns find what must never reach a log line, with what replaces it. */
const secretPatterns: [RegExp, string][] = [
  [/\bBearer\s+\S+/gi, "Bearer [redacted]"],
  [/\bbd_([0-9a-f]{20})_[A-Za-z0-9_-]+/g, "bd_$1_[redacted]"],
  [/\bwhsec_[A-Za-z0-9_+/=-]+/g, "whsec_[redacted]"],
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)[^\s@/]+@/gi, "$1***@"],
];

/** scrub masks tokens, signing secrets and URL passwords in a message. */
export function scrub(message: string): string {
  let scrubbed = message;
  for (const [pattern, replacement] of secretPatterns) scrubbed = scrubbed.replace(pattern, replacement);
  return scrubbed;
}

/**
 * messageLog adapts the logger to the `(message: string) => void` the server passes
 * everywhere: a message starting with WARNING is a warn line, one about an internal error,
 * a failure to start or a bad configuration value an error line, and the rest info.
 */
export function messageLog(logger: Logger): (message: string) => void {
  return (message) => {
    const text = scrub(message);
    if (/^WARNING\b/.test(text)) logger.warn(text);
    else if (/^(internal error|failed to start|configuration:)/.test(text)) logger.error(text);
    else logger.info(text);
  };
}
