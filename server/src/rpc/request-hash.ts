// The payload half of an idempotency key: a hash of the request without its request id.
import { createHash } from "node:crypto";
import { type DescMessage, type MessageShape, toBinary } from "@bufbuild/protobuf";
import type { Idempotency } from "../service/context.js";
import { requireId } from "./decode.js";

/** idempotencyOf checks a request's request_id and hashes the rest of it. */
export function idempotencyOf<Desc extends DescMessage>(schema: Desc, method: string, req: MessageShape<Desc> & { requestId: string }): Idempotency {
  const requestId = requireId("request_id", req.requestId);
  // Binary encoding is deterministic for these messages (no maps, no unknown fields
  // kept in a different order), so equal requests hash equally.
  const payload = toBinary(schema, { ...req, requestId: "" });
  return { requestId, method, payloadHash: createHash("sha256").update(method).update(payload).digest() };
}
