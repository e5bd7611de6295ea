// reportUsage through a NATS JetStream queue (the client's usageQueue option): each event
// is published with a publisher from @burndown/sdk/usage-queue instead of joining a
// ReportUsage batch, so a producer never waits on the ledger, and the server's queue
// consumer burns it later with ReportUsage's event-id dedup. An event the queue refuses
// (NATS away, no stream for the subject) goes to the client's other path (batched
// ReportUsage, or the spool) with the same id and time: if both deliver it, it burns once.
// This module only takes the publisher's type: NATS stays out of the main entry point.
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { UsageEvent } from "./gen/burndown/v1/usage_pb.js";
import { type UsageEventInit, usageEventOf, type UsageReceipt } from "./usage-batcher.js";
import type { UsagePublisher } from "./usage-queue.js";

/** QueueStats count what became of the events reportUsage published to the queue. */
export interface QueueStats {
  /** events JetStream stored (the server's consumer burns them later). */
  published: number;
  /** events the queue refused, sent by the client's other path instead (ReportUsage, or the spool). */
  fellBack: number;
  /** publishes not yet answered by JetStream. */
  publishing: number;
}

/** QueueSink is the reportUsage path when a usage queue is configured. */
export interface QueueSink {
  /** add publishes an event; the receipt's durable resolves once JetStream stored it, or its fallback took it. */
  add: (init: UsageEventInit) => UsageReceipt & { durable: Promise<void> };
  /** settled waits until every publish so far was answered (stored, or handed to the fallback). */
  settled: () => Promise<void>;
  /** close stops publishing: later events take the fallback at once. */
  close: () => void;
  stats: () => QueueStats;
}

/**
 * queueSinkOf publishes events with publisher; fallback is the path an event takes when
 * the queue refuses it (or after close). Each event gets its id and time here, before the
 * first attempt, so that a fallback sends the very event that may also be in the queue.
 */
export function queueSinkOf(
  publisher: UsagePublisher,
  fallback: (event: UsageEvent) => UsageReceipt & { durable?: Promise<void> },
  onError: (error: unknown) => void,
): QueueSink {
  const inFlight = new Set<Promise<void>>();
  const counts = { published: 0, fellBack: 0 };
  let closed = false;
  return {
    add: (init) => {
      const event = usageEventOf(init);
      // Wall time, as the publisher would give it: the fallback must send the same event (its fingerprint includes the time).
      if (event.eventTime === undefined) event.eventTime = timestampFromMs(Date.now());
      if (closed) return { ...fallback(event), durable: Promise.resolve() };
      const durable: Promise<void> = publisher.publish(event).then(
        () => void counts.published++,
        async (error: unknown) => {
          onError(new Error(`usage queue: publishing ${event.eventId} failed, sending it by ReportUsage instead: ${error instanceof Error ? error.message : String(error)}`, { cause: error }));
          counts.fellBack++;
          const receipt = fallback(event);
          if (!receipt.accepted) throw new Error(`usage queue: ${event.eventId} was refused by the queue and by the client (${receipt.refusal})`);
          await receipt.durable;
        },
      );
      const tracked = durable.catch(() => {}).finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      // A caller may ignore the receipt: report a lost event instead of leaving it unhandled.
      durable.catch(onError);
      return { accepted: true, eventId: event.eventId, durable };
    },
    settled: async () => {
      while (inFlight.size > 0) await Promise.all(inFlight);
    },
    close: () => {
      closed = true;
    },
    stats: () => ({ ...counts, publishing: inFlight.size }),
  };
}
