// reportUsage with a spool: each event is written to the spool (group-committed fsync)
// before it counts as accepted, and the spool is drained in batches after a short
// linger, or at once when a full batch is waiting. Nothing accepted is lost on a crash.
import type { Clock } from "./clock.js";
import { limits } from "./limits.js";
import type { Resilience } from "./resilience.js";
import { type UsageEventInit, usageEventOf, type UsageReceipt } from "./usage-batcher.js";

/** SpoolSink is the reportUsage path when a spool is configured. */
export interface SpoolSink {
  /** add accepts an event; the receipt's durable resolves once it is on disk (rejects if the spool is full). */
  add: (init: UsageEventInit) => UsageReceipt & { durable: Promise<void> };
  /** flush drains the spool; resolves true when it emptied it. */
  flush: () => Promise<boolean>;
  stop: () => void;
}

/** spoolSinkOf returns the spool-backed reportUsage path, or null when there is no spool. */
export function spoolSinkOf(resilience: Resilience, clock: Clock, onError: (error: unknown) => void): SpoolSink | null {
  const spool = resilience.spool;
  const drain = resilience.drain;
  if (spool === null || drain === null) return null;
  const stopped = new AbortController();
  let lingering = false;
  const drainSoon = () => {
    if (spool.pending().length >= limits.usageBatchSizeMaxDefault) return void drain.drain().catch(onError);
    if (lingering) return;
    lingering = true;
    void clock.sleep(limits.usageLingerMsMaxDefault, stopped.signal, "linger").then(() => {
      lingering = false;
      return drain.drain();
    }).catch(onError);
  };
  return {
    add: (init) => {
      const event = usageEventOf(init);
      const eventTimeMs = event.eventTime ? Number(event.eventTime.seconds) * 1000 + Math.floor(event.eventTime.nanos / 1e6) : Date.now();
      const durable = resilience
        .spoolUsage({ eventId: event.eventId, customerId: event.customerId, featureKey: event.featureKey, quantity: event.quantity.toString(), eventTimeMs, properties: event.properties, offline: event.offline })
        .then(drainSoon);
      // A caller may ignore the receipt: report a failed write instead of leaving it unhandled.
      durable.catch(onError);
      return { accepted: true, eventId: event.eventId, durable };
    },
    flush: async () => {
      await resilience.ready();
      return drain.drain();
    },
    stop: () => stopped.abort(),
  };
}
