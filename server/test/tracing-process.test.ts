// Tracing as an operator turns it on: the server started as `npm start` starts it, with the
// standard OTEL_* variables pointing at an OTLP/HTTP collector (a small one in this test).
// With an endpoint set, the RPC span arrives there, in the caller's trace, from service
// burndown-server, and the stdout request line carries the same trace id; with
// OTEL_SDK_DISABLED=true and the same endpoint, nothing arrives. Spans are read after the
// server stopped (a stop flushes them), so no wait is guessed.
import { randomBytes, randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { LedgerService } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newApiKeyToken, parseToken } from "../src/service/api-keys.js";
import { createTestDatabase, type TestDatabase } from "../../test-support/database.js";
import { startServerProcess } from "../../test-support/server-process.js";

/** OtlpSpan is what this test reads of a span in an OTLP/JSON export. */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  service: string | undefined;
}

/** Collector is an OTLP/HTTP endpoint that keeps the spans posted to it (http/json protocol). */
interface Collector {
  url: string;
  spans: OtlpSpan[];
  close: () => Promise<void>;
}

async function startCollector(): Promise<Collector> {
  const spans: OtlpSpan[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      if (req.url === "/v1/traces") {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as {
          resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: Omit<OtlpSpan, "service">[] }[] }[];
        };
        for (const resourceSpans of body.resourceSpans) {
          const service = resourceSpans.resource.attributes.find((attribute) => attribute.key === "service.name")?.value.stringValue;
          for (const scope of resourceSpans.scopeSpans) for (const span of scope.spans) spans.push({ ...span, service });
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

let database: TestDatabase;
const token = newApiKeyToken();

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.drop());

/** runServer starts a server with env, makes one GetBalance in a trace of the test's, stops it and returns its output and the trace id. */
async function runServer(env: Record<string, string>): Promise<{ output: string[]; traceId: string; parentId: string; requestId: string }> {
  const server = await startServerProcess({ DATABASE_URL: database.serverUrl, BURNDOWN_ADMIN_KEY: token, BURNDOWN_JOB_INTERVAL_MS: "0", OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", ...env });
  const traceId = randomBytes(16).toString("hex");
  const parentId = randomBytes(8).toString("hex");
  const requestId = `req-${randomUUID()}`;
  try {
    const ledger = createClient(LedgerService, createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1" }));
    const headers = { authorization: `Bearer ${token}`, traceparent: `00-${traceId}-${parentId}-01`, "x-request-id": requestId };
    await ledger.getBalance({ customerId: "acme" }, { headers }).catch(() => undefined); // NOT_FOUND is an answer like any other
  } finally {
    expect(await server.stop("SIGTERM")).toBe(0);
  }
  return { output: server.output, traceId, parentId, requestId };
}

describe("the server process", () => {
  it("with OTEL_EXPORTER_OTLP_ENDPOINT set, exports the RPC span in the caller's trace and logs the trace id on the request line", async () => {
    const collector = await startCollector();
    try {
      const { output, traceId, parentId, requestId } = await runServer({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url });
      const rpc = collector.spans.find((span) => span.name === "burndown.v1.LedgerService/GetBalance");
      expect(rpc, JSON.stringify(collector.spans.map((span) => span.name))).toMatchObject({ traceId, parentSpanId: parentId, service: "burndown-server" });
      expect(collector.spans.filter((span) => span.traceId === traceId).length, "the database spans came along").toBeGreaterThan(1);
      const line = output.find((each) => each.includes(requestId));
      expect(line, output.join("\n")).toBeDefined();
      expect(JSON.parse(line!)).toMatchObject({ msg: "request", requestId, method: "burndown.v1.LedgerService/GetBalance", trace_id: traceId, keyId: parseToken(token)!.keyId });
      expect(output.some((each) => each.includes("OpenTelemetry tracing on"))).toBe(true);
      expect(output.join("\n")).not.toContain(parseToken(token)!.secret); // the secret is base64url, so it may hold "_" itself
    } finally {
      await collector.close();
    }
  });

  it("with OTEL_SDK_DISABLED=true, exports nothing though an endpoint is set, and its request line has no trace id", async () => {
    const collector = await startCollector();
    try {
      const { output, requestId } = await runServer({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SDK_DISABLED: "true" });
      expect(collector.spans).toEqual([]);
      const line = output.find((each) => each.includes(requestId));
      expect(line, output.join("\n")).toBeDefined();
      expect(JSON.parse(line!).trace_id).toBeUndefined();
      expect(output.some((each) => each.includes("OpenTelemetry tracing on"))).toBe(false);
    } finally {
      await collector.close();
    }
  });
});
