// CORS for browser pages on the vendor's own origin (BURNDOWN_CORS_ORIGINS), seen at the
// HTTP level against a real server: a listed origin's preflight is answered with what
// Connect and gRPC-Web clients send and read, its calls carry Access-Control-Allow-Origin;
// any other origin, the admin UI, /metrics and a server with no origins get no CORS
// headers. The browser's own enforcement is tested in admin-ui/test/cross-origin.test.ts.
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";

const allowed = "https://app.example.com";

/** send makes one raw HTTP request, as a browser would, and returns its status and headers. */
function send(baseUrl: string, options: { method: string; path: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(options.path, baseUrl), { method: options.method, headers: options.headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

const getBalance = "/burndown.v1.LedgerService/GetBalance";
const preflight = (origin: string, path = getBalance) => ({
  method: "OPTIONS",
  path,
  headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,connect-protocol-version,content-type,x-request-id" },
});

describe("CORS with BURNDOWN_CORS_ORIGINS set", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ corsOrigins: [allowed, "http://localhost:5173"] });
  });
  afterAll(() => t?.close());

  it("answers a listed origin's preflight with the methods and headers Connect and gRPC-Web clients use", async () => {
    const answer = await send(t.server.httpUrl, preflight(allowed));
    expect(answer.status).toBe(204);
    expect(answer.headers["access-control-allow-origin"]).toBe(allowed);
    expect(answer.headers["access-control-allow-methods"]).toBe("POST, GET");
    const headers = String(answer.headers["access-control-allow-headers"]).toLowerCase().split(", ");
    expect(headers).toEqual(expect.arrayContaining(["authorization", "connect-protocol-version", "content-type", "x-request-id", "traceparent", "x-grpc-web", "connect-timeout-ms"]));
    expect(Number(answer.headers["access-control-max-age"])).toBeGreaterThan(0);
    expect(answer.headers.vary).toBe("Origin");
    expect(answer.headers["access-control-allow-credentials"]).toBeUndefined();
  });

  it("lets a listed origin's call through with its answer readable: status, error details and request id exposed", async () => {
    const answer = await send(t.server.httpUrl, {
      method: "POST",
      path: getBalance,
      headers: { origin: allowed, authorization: `Bearer ${t.adminToken}`, "content-type": "application/json", "connect-protocol-version": "1" },
      body: JSON.stringify({ customerId: "nobody" }),
    });
    expect(answer.status).toBe(404);
    expect(JSON.parse(answer.body)).toMatchObject({ code: "not_found" });
    expect(answer.headers["access-control-allow-origin"]).toBe(allowed);
    expect(String(answer.headers["access-control-expose-headers"]).toLowerCase().split(", ")).toEqual(expect.arrayContaining(["x-request-id", "grpc-status", "grpc-message", "grpc-status-details-bin"]));
    expect(answer.headers["x-request-id"]).toBeDefined();
  });

  it("gives any other origin no CORS headers, so its browser blocks the answer", async () => {
    for (const origin of ["https://evil.example", "https://app.example.com.evil.example", "http://app.example.com", "null"]) {
      const answer = await send(t.server.httpUrl, preflight(origin));
      expect(answer.headers["access-control-allow-origin"], origin).toBeUndefined();
      expect(answer.status, origin).not.toBe(204);
      const call = await send(t.server.httpUrl, { method: "POST", path: getBalance, headers: { origin, "content-type": "application/json" }, body: "{}" });
      expect(call.headers["access-control-allow-origin"], origin).toBeUndefined();
      expect(call.headers.vary, origin).toBe("Origin");
    }
  });

  it("never opens the admin UI, /metrics or the Stripe webhook to other origins", async () => {
    for (const path of ["/", "/customer", "/metrics", "/webhooks/stripe", "/assets/index.js"]) {
      const answer = await send(t.server.httpUrl, preflight(allowed, path));
      expect(answer.headers["access-control-allow-origin"], path).toBeUndefined();
    }
  });
});

describe("CORS with BURNDOWN_CORS_ORIGINS unset", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t?.close());

  it("sends no CORS headers at all", async () => {
    const answer = await send(t.server.httpUrl, preflight(allowed));
    expect(answer.headers["access-control-allow-origin"]).toBeUndefined();
    expect(answer.headers.vary).toBeUndefined();
  });
});
