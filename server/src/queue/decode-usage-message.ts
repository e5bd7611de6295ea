// One queued message is one usage event, encoded as the proto UsageEvent: binary protobuf
// by default, or its JSON form when the message says Content-Type: application/json. A
// message that does not decode, or whose event fails ReportUsage's per-event checks, is
// a rejection with a reason, exactly as a malformed event of a ReportUsage batch is.
import { fromBinary, fromJsonString } from "@bufbuild/protobuf";
import { type UsageEvent, UsageEventSchema } from "@burndown/sdk";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { decodeUsageEvent } from "../rpc/usage-handlers.js";
import type { UsageInput } from "../service/report-usage.js";

/** QueuedMessage is what the decoder reads of a message: its payload and its Content-Type header, if any. */
export interface QueuedMessage {
  data: Uint8Array;
  contentType: string | null;
}

/** DecodedUsage is a well-formed event, or a rejection with its reason (and the event id, when one could be read). */
export type DecodedUsage = UsageInput | { eventId: string; rejected: string };

/** binaryTypes are the Content-Type values read as binary protobuf; no header means binary too. */
const binaryTypes = new Set(["application/protobuf", "application/x-protobuf", "application/proto"]);

/** decodeUsageMessage reads one message's event and checks it as ReportUsage checks each event. */
export function decodeUsageMessage(message: QueuedMessage): DecodedUsage {
  if (message.data.byteLength > limits.queueMessageBytesMax) return { eventId: "", rejected: "MESSAGE_TOO_LARGE" };
  const type = message.contentType?.split(";")[0].trim().toLowerCase() ?? null;
  let event: UsageEvent;
  try {
    if (type === null || type === "" || binaryTypes.has(type)) event = fromBinary(UsageEventSchema, message.data);
    else if (type === "application/json") event = fromJsonString(UsageEventSchema, new TextDecoder("utf-8", { fatal: true }).decode(message.data));
    else return { eventId: "", rejected: "UNSUPPORTED_CONTENT_TYPE" };
  } catch {
    // Why it did not decode is the payload's business; the dead letter keeps the payload.
    return { eventId: "", rejected: "MALFORMED_MESSAGE" };
  }
  const decoded = decodeUsageEvent(event);
  assert("rejected" in decoded || decoded.eventId === event.eventId, "a well-formed event keeps its id");
  return decoded;
}
