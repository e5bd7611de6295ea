// Cross-origin calls from browsers (BURNDOWN_CORS_ORIGINS): the embeddable customer view
// (@burndown/admin-ui/embed) or any connect-web client served from the vendor's own origin
// may call the RPCs directly instead of through a proxy. Only the origins listed get CORS
// headers, and only on RPC paths: the admin UI, /metrics and the Stripe webhook never do.
// Credentials are bearer tokens in the Authorization header, never cookies, so no
// Access-Control-Allow-Credentials is sent.
import type http from "node:http";
import { cors } from "@connectrpc/connect";

/** rpcPath matches a Connect, gRPC-Web or gRPC path, /package.Service/Method: the service is package-qualified (/webhooks/stripe is not). */
const rpcPath = /^\/[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+\/[A-Za-z_][A-Za-z0-9_]*$/;

/** allowedHeaders are what a browser client may send: Connect's and gRPC-Web's, the bearer token, the request id and trace context. */
const allowedHeaders = [...cors.allowedHeaders, "Authorization", "X-Request-Id", "Traceparent", "Tracestate"].join(", ");

/** exposedHeaders are what a browser client may read: Connect's and gRPC-Web's, and the request id to quote to support. */
const exposedHeaders = [...cors.exposedHeaders, "X-Request-Id"].join(", ");

/** corsMaxAgeSeconds is how long a browser may reuse a preflight answer. */
const corsMaxAgeSeconds = 7_200;

/**
 * withCors answers preflights and adds CORS headers for the allowed origins on RPC paths,
 * then hands every request to handler. With no origins it is handler itself.
 */
export function withCors(handler: http.RequestListener, origins: readonly string[]): http.RequestListener {
  if (origins.length === 0) return handler;
  const allowed = new Set(origins);
  return (req, res) => {
    const path = req.url?.split("?")[0] ?? "";
    if (!rpcPath.test(path)) return handler(req, res);
    // Answers differ by Origin, so a cache must key on it, allowed or not.
    res.setHeader("Vary", "Origin");
    const origin = req.headers.origin;
    if (origin === undefined || !allowed.has(origin)) return handler(req, res);
    res.setHeader("Access-Control-Allow-Origin", origin);
    if (req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined) {
      res.writeHead(204, {
        "Access-Control-Allow-Methods": cors.allowedMethods.join(", "),
        "Access-Control-Allow-Headers": allowedHeaders,
        "Access-Control-Max-Age": String(corsMaxAgeSeconds),
      });
      res.end();
      return;
    }
    res.setHeader("Access-Control-Expose-Headers", exposedHeaders);
    return handler(req, res);
  };
}
