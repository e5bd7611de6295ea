// Request bodies that do not decode are refused with InvalidArgument and reason
// MALFORMED_REQUEST over every protocol, change nothing, and leave well-formed requests
// alone. (connect-es alone answers bad protobuf with Internal and bad JSON with no reason.)
import http2 from "node:http2";
import { randomUUID } from "node:crypto";
import { fromBinary, toBinary, create } from "@bufbuild/protobuf";
import { ErrorInfoSchema, GetBalanceRequestSchema, GrantSource } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { databaseSnapshot } from "../../test-support/snapshot.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
  await t.clients(t.adminToken).admin.createCreditType({ creditType: { creditTypeId: "credits", displayName: "C", scale: 0 }, requestId: randomUUID() });
  await t.clients(t.adminToken).ledger.grant({ customerId: "acme", creditTypeId: "credits", amount: 10n, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
});
afterAll(() => t?.close());

function reasonOf(base64: string | undefined): string {
  return base64 === undefined ? "" : (fromBinary(ErrorInfoSchema, Buffer.from(base64, "base64")) as unknown as { reason: string }).reason;
}

async function connectCall(path: string, contentType: string, body: Uint8Array | string) {
  const res = await fetch(`${t.server.httpUrl}/${path}`, { method: "POST", headers: { "content-type": contentType, authorization: `Bearer ${t.adminToken}` }, body: typeof body === "string" ? body : Buffer.from(body) });
  const payload = (await res.json()) as { code?: string; details?: { type: string; value: string }[]; balances?: unknown[] };
  return { status: res.status, code: payload.code, reason: reasonOf(payload.details?.find((detail) => detail.type === "google.rpc.ErrorInfo")?.value), payload };
}

function envelope(payload: Uint8Array, flags = 0): Uint8Array {
  const out = new Uint8Array(5 + payload.byteLength);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, payload.byteLength);
  out.set(payload, 5);
  return out;
}

async function grpcCall(path: string, body: Uint8Array): Promise<{ status: string | undefined; reason: string }> {
  const session = http2.connect(t.server.grpcUrl);
  try {
    return await new Promise((resolve, reject) => {
      const stream = session.request({ ":method": "POST", ":path": `/${path}`, "content-type": "application/grpc", te: "trailers", authorization: `Bearer ${t.adminToken}` });
      let headers: http2.IncomingHttpHeaders = {};
      stream.on("response", (h) => (headers = h));
      stream.on("trailers", (trailers) => (headers = { ...headers, ...trailers }));
      stream.on("data", () => undefined);
      stream.on("error", reject);
      stream.on("close", () => {
        const details = headers["grpc-status-details-bin"] as string | undefined;
        // google.rpc.Status: field 3 holds Any messages; the ErrorInfo is the first one's value.
        const reason = details === undefined ? "" : /MALFORMED_REQUEST/.test(Buffer.from(details, "base64").toString("latin1")) ? "MALFORMED_REQUEST" : "other";
        resolve({ status: headers["grpc-status"] as string | undefined, reason });
      });
      stream.end(body);
    });
  } finally {
    session.close();
  }
}

describe("malformed request bodies", () => {
  it.each([
    { name: "bytes that are not protobuf", contentType: "application/proto", body: new Uint8Array([0]) },
    { name: "a string field that is not UTF-8", contentType: "application/proto", body: new Uint8Array([0x0a, 0x02, 0xff, 0xfe]) },
    { name: "JSON that does not parse", contentType: "application/json", body: "{" },
    { name: "JSON with a field of the wrong type", contentType: "application/json", body: '{"customerId": 5}' },
    { name: "JSON with an unknown field", contentType: "application/json", body: '{"customer": "acme"}' },
  ])("Connect: $name is InvalidArgument MALFORMED_REQUEST and changes nothing", async ({ contentType, body }) => {
    const before = await databaseSnapshot(t.database.pool);
    const res = await connectCall("burndown.v1.LedgerService/Grant", contentType, body);
    expect([res.status, res.code, res.reason]).toEqual([400, "invalid_argument", "MALFORMED_REQUEST"]);
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
  });

  it.each([
    { name: "a message that is not protobuf", body: envelope(new Uint8Array([0xff, 0xff])) },
    { name: "broken framing", body: new Uint8Array([0, 0, 0, 0, 9, 1]) },
    { name: "two messages for a unary call", body: new Uint8Array([...envelope(new Uint8Array(0)), ...envelope(new Uint8Array(0))]) },
  ])("gRPC: $name is INVALID_ARGUMENT (3) MALFORMED_REQUEST", async ({ body }) => {
    expect(await grpcCall("burndown.v1.LedgerService/Grant", body)).toEqual({ status: "3", reason: "MALFORMED_REQUEST" });
  });

  it("leaves well-formed requests alone, over Connect binary, Connect JSON and gRPC", async () => {
    const request = toBinary(GetBalanceRequestSchema, create(GetBalanceRequestSchema, { customerId: "acme" }));
    const viaProto = await fetch(`${t.server.httpUrl}/burndown.v1.LedgerService/GetBalance`, { method: "POST", headers: { "content-type": "application/proto", authorization: `Bearer ${t.adminToken}` }, body: request });
    expect(viaProto.status).toBe(200);
    const viaJson = await connectCall("burndown.v1.LedgerService/GetBalance", "application/json", '{"customerId":"acme"}');
    expect(viaJson.status).toBe(200);
    expect(viaJson.payload.balances).toHaveLength(1);
    expect(await grpcCall("burndown.v1.LedgerService/GetBalance", envelope(request))).toEqual({ status: "0", reason: "" });
  });
});
