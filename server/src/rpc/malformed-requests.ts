// Malformed request bodies. connect-es decodes a request before any interceptor runs, and
// answers a body that is not valid protobuf with Internal ("parse binary: illegal tag")
// and invalid JSON with InvalidArgument without ErrorInfo: a caller's bad bytes would read
// as our fault, with no reason to branch on. The guard reads each unary request body first
// (bodies are small and bounded); one that does not decode is replaced by an empty
// message and marked with a header, and malformedInterceptor refuses it with
// InvalidArgument and reason MALFORMED_REQUEST, in whichever protocol the caller spoke.
// Compressed bodies pass through unread (connect-es decompresses and judges them). The
// grpc-js listener (grpc-js-server.ts) decodes its own bodies and marks failures the same way.
import { fromBinary, fromJsonString } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";
import { invalid, type LedgerError } from "../errors.js";
import { limits } from "../limits.js";

/** malformedHeader carries a decode failure from a transport to the interceptor; transports drop it from what clients send. */
export const malformedHeader = "burndown-malformed-request";

/** markMalformed marks a request whose body did not decode, for malformedInterceptor to refuse. */
export function markMalformed(header: Headers, failure: string): void {
  header.set(malformedHeader, encodeURIComponent(failure.slice(0, 200)));
}

/** malformedRequest is the refusal of a body that is not a valid message of its type. */
export function malformedRequest(typeName: string, failure: string): LedgerError {
  return invalid("MALFORMED_REQUEST", "body", `the request body is not a valid ${typeName}: ${failure}`);
}

type Format = { framing: "plain" | "envelope"; encoding: "binary" | "json" };

function formatOf(req: UniversalServerRequest): Format | null {
  const contentType = (req.header.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  const compressed = (name: string) => {
    const value = req.header.get(name);
    return value !== null && value !== "" && value !== "identity";
  };
  if (contentType === "application/proto" || contentType === "application/json") {
    if (compressed("content-encoding")) return null;
    return { framing: "plain", encoding: contentType === "application/json" ? "json" : "binary" };
  }
  const grpc = /^application\/grpc(-web)?(\+(proto|json))?$/.exec(contentType);
  if (grpc === null || compressed("grpc-encoding")) return null;
  return { framing: "envelope", encoding: grpc[3] === "json" ? "json" : "binary" };
}

async function readAll(body: AsyncIterable<Uint8Array>, bytesMax: number): Promise<Uint8Array | null> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    length += chunk.byteLength;
    if (length > bytesMax) return null;
  }
  const all = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return all;
}

/** messagesOf splits enveloped data into its message payloads; null when the framing itself is broken or compressed. */
function messagesOf(data: Uint8Array): Uint8Array[] | null {
  const messages: Uint8Array[] = [];
  let offset = 0;
  while (offset < data.byteLength) {
    if (data.byteLength - offset < 5) return null;
    const flags = data[offset];
    const length = new DataView(data.buffer, data.byteOffset + offset + 1, 4).getUint32(0);
    if (flags !== 0 || data.byteLength - offset - 5 < length) return null;
    messages.push(data.subarray(offset + 5, offset + 5 + length));
    offset += 5 + length;
  }
  return messages;
}

function emptyBody(format: Format): Uint8Array {
  const payload = format.encoding === "json" ? new TextEncoder().encode("{}") : new Uint8Array(0);
  if (format.framing === "plain") return payload;
  const envelope = new Uint8Array(5 + payload.byteLength);
  new DataView(envelope.buffer).setUint32(1, payload.byteLength);
  envelope.set(payload, 5);
  return envelope;
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

/** guardUnaryBodies wraps a unary method's handler so that a body that does not decode reaches the interceptor marked. */
export function guardUnaryBodies(handler: UniversalHandler): UniversalHandler {
  if (handler.method.methodKind !== "unary") return handler;
  const schema = handler.method.input;
  const guarded = async (req: UniversalServerRequest) => {
    req.header.delete(malformedHeader); // only the guard sets it
    const format = formatOf(req);
    if (format === null || !(Symbol.asyncIterator in Object(req.body))) return handler(req);
    // Past the limit connect-es refuses the body itself (ResourceExhausted); hand it over whole.
    const data = await readAll(req.body as AsyncIterable<Uint8Array>, limits.requestBodyBytesMax + 5);
    if (data === null) return handler(req);
    let failure: string | null = null;
    try {
      const messages = format.framing === "plain" ? [data] : messagesOf(data);
      if (messages === null) failure = "the gRPC message framing is broken";
      else if (messages.length !== 1) failure = `a unary request carries one message, not ${messages.length}`;
      else if (format.encoding === "json") fromJsonString(schema, new TextDecoder("utf-8", { fatal: true }).decode(messages[0]));
      else fromBinary(schema, messages[0]);
    } catch (error) {
      failure = error instanceof Error ? error.message : String(error);
    }
    if (failure === null) return handler({ ...req, body: once(data) });
    markMalformed(req.header, failure);
    const empty = emptyBody(format);
    if (req.header.has("content-length")) req.header.set("content-length", String(empty.byteLength));
    return handler({ ...req, body: once(empty) });
  };
  return Object.assign(guarded, handler);
}

/** malformedInterceptor refuses a request the guard marked. */
export function malformedInterceptor(): Interceptor {
  return (next) => async (req) => {
    const failure = req.header.get(malformedHeader);
    if (failure !== null) throw malformedRequest(req.method.input.typeName, decodeURIComponent(failure));
    return next(req);
  };
}
