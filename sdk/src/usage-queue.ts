// Usage through a NATS JetStream queue instead of ReportUsage, for producers that must not
// wait on the ledger: publish returns once JetStream stored the event, and the server's
// usage consumer (BURNDOWN_NATS_URL) rates and burns it later, with ReportUsage's event-id
// dedup. A separate entry point (@burndown/sdk/usage-queue) that takes the application's
// own JetStream client: NATS is an optional peer dependency, never loaded by the main
// client. One event per message, binary protobuf UsageEvent, with the active trace context
// in its headers; Nats-Msg-Id is the event id,
// so JetStream's duplicate window drops a re-publish too (the ledger's dedup is the
// guarantee; the window only saves work).
import { toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import { headers, type MsgHdrs } from "@nats-io/nats-core";
import { context, propagation } from "@opentelemetry/api";
import { UsageEventSchema } from "./gen/burndown/v1/usage_pb.js";
import { type UsageEventInit, usageEventOf } from "./usage-batcher.js";

/**
 * traceHeaders carries the active trace context (W3C traceparent, tracestate) in the
 * message's headers, so the server's span for the batch that burns it links to the
 * publisher's span. Without an OpenTelemetry SDK the propagator writes nothing and the
 * message has no headers.
 */
function traceHeaders(): { headers?: MsgHdrs } {
  const carried: Record<string, string> = {};
  propagation.inject(context.active(), carried);
  const names = Object.keys(carried);
  if (names.length === 0) return {};
  const h = headers();
  for (const name of names) h.set(name, carried[name]);
  return { headers: h };
}

/** UsagePublisherOptions name where events go: a subject the server's consumer reads (BURNDOWN_NATS_SUBJECT). */
export interface UsagePublisherOptions {
  /** a JetStream client of the application's connection: jetstream(await connect(...)) from @nats-io/jetstream. */
  js: JetStreamClient;
  subject: string;
  /** the clock for events without a time; Date.now by default. */
  nowMs?: () => number;
}

/** UsagePublication is a published event: its id (its idempotency key) and where JetStream stored it. */
export interface UsagePublication {
  eventId: string;
  stream: string;
  seq: number;
  /** JetStream had seen this event id within its duplicate window and stored nothing new. */
  duplicate: boolean;
}

/** UsagePublisher publishes usage events to the queue. */
export interface UsagePublisher {
  /**
   * publish sends one event and resolves once JetStream stored it. An event without an id
   * or a time gets them here: to retry a publish that failed, send the id and time it
   * resolved with or give them yourself, or the retry is another event.
   */
  publish: (event: UsageEventInit) => Promise<UsagePublication>;
}

/**
 * createUsagePublisher makes a publisher on the application's JetStream client. Events get
 * an id and, unless given, the time of publishing: a queued event is rated at when it
 * happened, not when the ledger reads it.
 */
export function createUsagePublisher(options: UsagePublisherOptions): UsagePublisher {
  if (options.subject === "" || /[\s*>]/.test(options.subject)) throw new Error(`createUsagePublisher: subject must be a literal NATS subject, got ${JSON.stringify(options.subject)}`);
  const nowMs = options.nowMs ?? Date.now;
  return {
    publish: async (init) => {
      const event = usageEventOf(init);
      if (event.eventTime === undefined) event.eventTime = timestampFromMs(nowMs());
      const ack: PubAck = await options.js.publish(options.subject, toBinary(UsageEventSchema, event), { msgID: event.eventId, ...traceHeaders() });
      return { eventId: event.eventId, stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
    },
  };
}
