// Database spans: one per statement (and one per transaction and connection wait), made by
// store/database.ts only while a recording span is current, so that statements run outside
// a traced call (jobs between calls, tracing off) cost one context lookup and make no span.
// Our own spans rather than @opentelemetry/instrumentation-pg: that package patches pg
// through module-load hooks, which under ESM need a loader registered before pg is first
// imported (node --import), and vitest loads modules its own way; wrapping the two places
// where this server runs statements needs no hook and works the same in every runner.
// A span carries the statement's text as written, with $1-style placeholders: parameter
// values are never recorded.
import { type Span, SpanKind, SpanStatusCode, context, trace } from "@opentelemetry/api";
import type pg from "pg";
import { limits } from "../limits.js";
import { tracer } from "../tracing.js";

/** Query is the one call form statements take inside the store. */
type Query = (config: pg.QueryConfig) => Promise<pg.QueryResult>;

/** recording says whether the current context carries a span that records: only then are database spans made. */
export function recording(): boolean {
  return trace.getSpan(context.active())?.isRecording() === true;
}

/** operationOf is a statement's first keyword, upper-cased: SELECT, WITH, INSERT, BEGIN. */
function operationOf(text: string): string {
  const match = /^\s*([A-Za-z]+)/.exec(text);
  return match === null ? "QUERY" : match[1].toUpperCase();
}

function startStatementSpan(query: pg.QueryConfig): Span {
  const operation = operationOf(query.text);
  const text = query.text.length > limits.traceStatementCharsMax ? `${query.text.slice(0, limits.traceStatementCharsMax)}…` : query.text;
  return tracer.startSpan(query.name ?? operation, {
    kind: SpanKind.CLIENT,
    attributes: { "db.system.name": "postgresql", "db.operation.name": operation, "db.query.text": text },
  });
}

/** endSpan ends a span with the outcome of what it timed, passing the outcome on. */
export function endSpan<T>(span: Span, work: Promise<T>): Promise<T> {
  return work.then(
    (value) => {
      const rows = (value as { rowCount?: number | null } | undefined)?.rowCount;
      if (typeof rows === "number") span.setAttribute("db.response.returned_rows", rows);
      span.end();
      return value;
    },
    (error: unknown) => {
      const code = (error as { code?: unknown })?.code;
      if (typeof code === "string") span.setAttribute("db.response.status_code", code);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      span.end();
      throw error;
    },
  );
}

/** tracedQuery runs one statement in a span of its own. */
export function tracedQuery(run: Query, query: pg.QueryConfig): Promise<pg.QueryResult> {
  const span = startStatementSpan(query);
  return endSpan(span, context.with(trace.setSpan(context.active(), span), run, undefined, query));
}

/** startDatabaseSpan starts a span for a transaction or a wait for a connection. */
export function startDatabaseSpan(name: string): Span {
  return tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes: { "db.system.name": "postgresql" } });
}
