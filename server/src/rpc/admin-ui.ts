// The admin UI and the customer view, served as static files on the HTTP port: same
// origin as the API, so the browser needs no CORS and the UI no private API. The bundle
// is built from admin-ui/ (admin-ui/scripts/build.mjs, run by `npm start`) and never
// committed. Until it is built, the page says how to build it.
import { readFile } from "node:fs/promises";
import type http from "node:http";
import path from "node:path";

const distDirectory = path.resolve(import.meta.dirname, "../../../admin-ui/dist");

/** the pages: the admin UI at /, the customer's view (which a vendor may iframe) at /customer. */
const pages = new Set(["/", "/index.html", "/customer", "/customer/"]);
const assetPattern = /^\/assets\/[A-Za-z0-9._-]+\.(js|css|svg|png|woff2)$/;
const contentTypes: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  woff2: "font/woff2",
};

const notBuilt = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Burndown</title></head>
<body><main><h1>Burndown</h1>
<p>The ledger is running, but the admin UI is not built. <code>npm start</code> builds it; or run
<code>node admin-ui/scripts/build.mjs</code>. The API answers on this port (Connect JSON, gRPC-Web) and on the gRPC port.</p>
</main></body></html>`;

export interface UiOptions {
  /** who may put the customer view in a frame (CSP frame-ancestors); the admin UI may never be framed. */
  customerViewFrameAncestors: string;
  /** the vendor's checkout page, with {order_id} where the order's id goes; null: the customer view sells nothing itself. */
  checkoutUrl: string | null;
}

const htmlAttribute = (value: string) => value.replaceAll("&", "&amp;").replaceAll('"', "&quot;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/** withSettings puts the deployment's settings for the page in meta tags (read by admin-ui/src/settings.ts). */
function withSettings(page: Buffer, options: UiOptions): Buffer | string {
  if (options.checkoutUrl === null) return page;
  const meta = `<meta name="burndown-checkout-url" content="${htmlAttribute(options.checkoutUrl)}">`;
  return page.toString("utf8").replace("</head>", `${meta}</head>`);
}

function securityHeaders(pathname: string, options: UiOptions): Record<string, string> {
  const customerView = pathname.startsWith("/customer");
  return {
    "content-security-policy": [
      "default-src 'self'",
      "img-src 'self' data:",
      "style-src 'self' 'unsafe-inline'",
      "connect-src 'self'",
      "base-uri 'none'",
      "form-action 'self'",
      `frame-ancestors ${customerView ? options.customerViewFrameAncestors : "'none'"}`,
    ].join("; "),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    ...(customerView ? {} : { "x-frame-options": "DENY" }),
  };
}

/** serveUi answers GETs for the pages and their assets; anything else is 404. */
export async function serveUi(req: http.IncomingMessage, res: http.ServerResponse, options: UiOptions): Promise<void> {
  const pathname = (req.url ?? "/").split("?")[0];
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
    return;
  }
  if (pages.has(pathname)) {
    const page = await readFile(path.join(distDirectory, "index.html")).catch(() => null);
    // The page names its hashed assets: it must never be cached past a rebuild.
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-cache", ...securityHeaders(pathname, options) }).end(page === null ? notBuilt : withSettings(page, options));
    return;
  }
  const asset = assetPattern.exec(pathname);
  if (asset !== null) {
    const body = await readFile(path.join(distDirectory, pathname)).catch(() => null);
    if (body !== null) {
      // Hashed file names: a new build is a new name, so these may be cached for good.
      res.writeHead(200, { "content-type": contentTypes[asset[1]], "cache-control": "public, max-age=31536000, immutable", "x-content-type-options": "nosniff" }).end(body);
      return;
    }
  }
  res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
}
