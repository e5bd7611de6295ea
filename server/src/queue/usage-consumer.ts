// Usage from a NATS JetStream queue: a durable pull consumer that feeds queued usage events
// through the same rating, burning and event-id dedup as ReportUsage (reportUsage), in
// batches. A message is acknowledged only after the transaction that recorded its event
// committed; a batch the ledger could not record is handed back (nak with a delay) and
// comes again, or, when the error is no database fault, is recorded message by message,
// so that one poison message holds up no other (see notRecorded). Delivery is at least once, and the event-id dedup (scoped to the API key
// the consumer acts as, as for ReportUsage) makes burning exactly once: a redelivered
// event answers "duplicate" and is acknowledged. Up to queueBatchesInFlightMax batches
// are recorded at once, each holding an admission slot like a call. Rejected and unrated
// events are published to the dead-letter subject (payload as received, reason in
// headers) and acknowledged once JetStream confirmed that publish. The ledger never
// depends on the queue: the consumer connects, retries and logs on its own, and the
// server starts without it.
import { type Consumer, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg, AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, headers, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { isSpanContextValid, propagation, ROOT_CONTEXT, type SpanContext, type TextMapGetter, trace } from "@opentelemetry/api";
import { subjectMatches, type UsageQueueConfig } from "../config.js";
import { assert } from "../ledger/balance-state.js";
import { LedgerError } from "../errors.js";
import { limits } from "../limits.js";
import { mapDriverErrors } from "../store/database.js";
import { selectUnratedReasons } from "../store/usage-store.js";
import type { Admission } from "../rpc/admission.js";
import type { Caller, Deps } from "../service/context.js";
import { queueCaller } from "../service/queue-caller.js";
import { type AuditOf, reportUsage, type UsageResult } from "../service/report-usage.js";
import { inRootSpan } from "../tracing.js";
import { decodeUsageMessage } from "./decode-usage-message.js";

/** UsageConsumerOptions are the queue's settings (BURNDOWN_NATS_* in config.ts). */
export type UsageConsumerOptions = UsageQueueConfig;

/** UsageConsumerStats count what the consumer did, for tests, logs and metrics. */
export interface UsageConsumerStats {
  /** batches recorded (their transactions committed). */
  batches: number;
  /** messages acknowledged, by the outcome of their event. */
  acked: Record<UsageResult["outcome"], number>;
  /** messages published to the dead-letter subject (then acknowledged). */
  deadLettered: number;
  /** messages handed back (nak) because their batch, or their dead letter, failed. */
  handedBack: number;
  /** messages that failed alone again and again while others were recorded (poison), dead-lettered as RECORDING_FAILED, then acknowledged; not recorded. */
  failed: number;
  /** whether the consumer is taking messages now. */
  consuming: boolean;
  /** messages of the stream not yet delivered to the durable consumer (NATS' num_pending, all replicas), as of the last message taken; null before one. */
  pending: number | null;
  /** messages taken that JetStream had delivered before (to this replica or another): their batch failed, they were handed back, or a replica died holding them. */
  redelivered: number;
}

/** AckedMessage is one message acknowledged: how long after it reached the stream. */
export interface AckedMessage {
  /** seconds from the message's arrival in the stream to its acknowledgement (the queue's end-to-end delay). */
  ageSeconds: number;
}

/** DeadLetterNotice is what a dead letter says of its message's event. */
interface DeadLetterNotice {
  /** failed: the ledger could not record it (the message is poison); nothing of it was recorded. */
  outcome: "rejected" | "unrated" | "failed";
  reason: string;
  eventId: string;
  /** for failed: the error, for whoever investigates. */
  error?: string;
}

/** traceHeaders reads a message's NATS headers for the trace context propagator. */
const traceHeaders: TextMapGetter<MsgHdrs | undefined> = {
  get: (carrier, key) => carrier?.get(key) || undefined,
  keys: (carrier) => (carrier === undefined ? [] : carrier.keys()),
};

/** producersOf are the trace contexts a batch's messages carry (a traceparent header their producer set), for the batch span's links. */
function producersOf(batch: JsMsg[]): SpanContext[] {
  const linked: SpanContext[] = [];
  for (const message of batch) {
    if (!message.headers?.has("traceparent")) continue;
    const producer = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, message.headers, traceHeaders));
    if (producer !== undefined && isSpanContextValid(producer)) linked.push(producer);
  }
  return linked;
}

/** NotRecorded is why a batch was not recorded: the key may not act (caller null, error null), or the error (with the caller and messages as far as they were read). */
interface NotRecorded {
  caller: Caller | null;
  decoded: ReturnType<typeof decodeUsageMessage>[];
  error: unknown;
}

/** transient says whether an error is the database's fault (down, slow, a lost race, overload): such a batch is handed back however often it fails. */
function transient(error: unknown): boolean {
  return error instanceof LedgerError && (error.kind === "unavailable" || error.kind === "conflict" || error.kind === "overloaded");
}

/** UsageConsumer is a running consumer. */
export interface UsageConsumer {
  stats: () => UsageConsumerStats;
  /** onAcked tells listener of every message acknowledged from now on (the metrics' delay histogram). */
  onAcked: (listener: (message: AckedMessage) => void) => void;
  /** stop finishes the batch in hand (recorded and acknowledged), hands back what was fetched but not taken, and drains the connection. */
  stop: () => Promise<void>;
}

/** delay waits ms, or less when the stop signal fires. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * closeConnection drains the connection (the acks still buffered are sent) for at most
 * shutdownGraceMsMax: NATS away must not hold up the server's stop. Whatever was not
 * acknowledged is delivered again, and deduplicated.
 */
async function closeConnection(nc: NatsConnection, log: (message: string) => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const drained = nc.drain().then(() => true, (error: unknown) => (log(`usage queue: draining the connection: ${describe(error)}`), false));
  const inTime = await Promise.race([drained, new Promise<false>((resolve) => (timer = setTimeout(resolve, limits.shutdownGraceMsMax, false)))]);
  clearTimeout(timer);
  if (!inTime && !nc.isClosed()) await nc.close();
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error);
}

/** startUsageConsumer starts consuming in the background; it never throws for the queue's faults, it logs them and retries. */
export function startUsageConsumer(deps: Deps, admission: Admission, options: UsageConsumerOptions, log: (message: string) => void): UsageConsumer {
  assert(options.batchSize >= 1 && options.batchSize <= limits.usageBatchSizeMax, "a batch fits one reportUsage");
  assert(options.ackWaitMs >= limits.queueAckWaitMsMin, "ack wait is bounded");
  const stats: UsageConsumerStats = {
    batches: 0,
    acked: { burned: 0, duplicate: 0, rejected: 0, unrated: 0, shadowed: 0, not_billed: 0 },
    deadLettered: 0,
    handedBack: 0,
    failed: 0,
    consuming: false,
    pending: null,
    redelivered: 0,
  };
  const listeners: ((message: AckedMessage) => void)[] = [];
  const stopping = new AbortController();
  let messages: ConsumerMessages | null = null;
  const session = new ConsumerSession(deps, admission, options, log, stats, listeners);
  const running = (async () => {
    let failures = 0;
    while (!stopping.signal.aborted) {
      let nc: NatsConnection | null = null;
      try {
        // Reconnects by itself once connected; a first connection that fails is retried here, with a backoff.
        nc = await connect({ servers: options.natsUrl.split(",").map((server) => server.trim()), name: `burndown-usage-${options.durable}`, maxReconnectAttempts: -1, timeout: 5_000 });
        const consumer = await session.setUp(nc);
        if (stopping.signal.aborted) break;
        messages = await consumer.consume({ max_messages: options.batchSize * limits.queueBatchesInFlightMax });
        log(`usage queue: consuming ${options.stream}/${options.durable} from ${options.natsUrl}, batches of ${options.batchSize}`);
        failures = 0;
        stats.consuming = true;
        await session.consumeBatches(messages, stopping.signal);
      } catch (error) {
        failures++;
        log(`usage queue: ${describe(error)}; trying again`);
      } finally {
        stats.consuming = false;
        messages = null;
        if (nc !== null) await closeConnection(nc, log);
      }
      if (!stopping.signal.aborted) await delay(Math.min(limits.queueNakDelayMs * 2 ** Math.min(failures, 5), 30_000), stopping.signal);
    }
  })();
  return {
    stats: () => ({ ...stats, acked: { ...stats.acked } }),
    onAcked: (listener) => void listeners.push(listener),
    stop: async () => {
      stopping.abort();
      // Ends the pull: the iterator yields what was fetched, then ends (consumeBatches hands that back).
      messages?.stop();
      await running;
    },
  };
}

/** ConsumerSession is the consumer's work on one connection: set up, take batches, record, acknowledge. */
class ConsumerSession {
  private js: JetStreamClient | null = null;
  private caller: { checkedAtMs: number; caller: Caller | null } = { checkedAtMs: -Infinity, caller: null };
  private readonly target: string;
  /** when a batch was last recorded (Date.now()): a message failing alone meanwhile is the message's fault, not the ledger's. */
  private lastRecordedAtMs = -Infinity;

  constructor(
    private readonly deps: Deps,
    private readonly admission: Admission,
    private readonly options: UsageConsumerOptions,
    private readonly log: (message: string) => void,
    private readonly stats: UsageConsumerStats,
    private readonly listeners: readonly ((message: AckedMessage) => void)[],
  ) {
    this.target = `nats:${options.stream}/${options.durable}`;
  }

  /** setUp finds (or, when configured, creates) the stream, creates the durable consumer if missing, and checks the dead-letter subject. */
  async setUp(nc: NatsConnection): Promise<Consumer> {
    const { stream, subject, durable, deadLetterSubject, ackWaitMs } = this.options;
    const jsm = await jetstreamManager(nc);
    this.js = jetstream(nc);
    await this.ensureStream(jsm);
    const existing = await jsm.consumers.info(stream, durable).catch((error: unknown) => {
      if ((error as Error).name === "ConsumerNotFoundError") return null;
      throw error;
    });
    if (existing === null) {
      await jsm.consumers.add(stream, { durable_name: durable, ack_policy: AckPolicy.Explicit, ack_wait: ackWaitMs * 1_000_000, ...(subject === null ? {} : { filter_subject: subject }) });
      this.log(`usage queue: created the durable consumer ${durable} on stream ${stream}`);
    } else if (existing.config.ack_policy !== AckPolicy.Explicit) {
      throw new Error(`the consumer ${durable} on ${stream} does not use explicit acks: delete it, or name another with BURNDOWN_NATS_DURABLE`);
    } else if (existing.config.ack_wait !== ackWaitMs * 1_000_000 || (existing.config.filter_subject ?? null) !== subject) {
      this.log(`usage queue: the consumer ${durable} exists with ack wait ${(existing.config.ack_wait ?? 0) / 1_000_000} ms and filter ${existing.config.filter_subject ?? "(none)"}; it is used as it is`);
    }
    const deadStream = await jsm.streams.find(deadLetterSubject).catch(() => null);
    if (deadStream === stream && (subject === null || subjectMatches(subject, deadLetterSubject))) {
      throw new Error(`the dead-letter subject ${deadLetterSubject} is consumed as usage by ${durable}: choose a subject outside its filter`);
    }
    if (deadStream === null) {
      this.log(`usage queue: WARNING no stream stores the dead-letter subject ${deadLetterSubject}: rejected and unrated events are handed back until one does`);
    }
    return this.js.consumers.get(stream, durable);
  }

  /** ensureStream checks that the stream exists; creates it (and a dead-letter stream) only when configured to. */
  private async ensureStream(jsm: JetStreamManager): Promise<void> {
    const { stream, subject, deadLetterSubject, createStream } = this.options;
    const found = await jsm.streams.info(stream).catch((error: unknown) => {
      if ((error as Error).name === "StreamNotFoundError") return null;
      throw error;
    });
    if (found !== null) return;
    if (!createStream) throw new Error(`the stream ${stream} does not exist: create it, or set BURNDOWN_NATS_CREATE_STREAM=1`);
    assert(subject !== null, "config requires a subject to create a stream");
    await jsm.streams.add({ name: stream, subjects: [subject] });
    if ((await jsm.streams.find(deadLetterSubject).catch(() => null)) === null) {
      await jsm.streams.add({ name: `${stream}_dead_letters`, subjects: [deadLetterSubject] });
    }
    this.log(`usage queue: created the stream ${stream} (${subject}) and its dead letters' (${deadLetterSubject})`);
  }

  /**
   * consumeBatches takes what has arrived, up to a batch, records it, and acknowledges it,
   * until the pull ends, with at most queueBatchesInFlightMax batches in hand. A batch is
   * only what is already here: a lone event does not wait for company. Fetched messages
   * not taken when it stops are handed back at once; batches in hand are finished.
   */
  async consumeBatches(messages: ConsumerMessages, stop: AbortSignal): Promise<void> {
    const iterator = messages[Symbol.asyncIterator]();
    const inFlight = new Set<Promise<void>>();
    let next: Promise<IteratorResult<JsMsg>> | null = null;
    for (;;) {
      const first = await (next ?? iterator.next());
      next = null;
      if (first.done) break;
      const batch: JsMsg[] = [this.taken(first.value)];
      let ended = false;
      while (batch.length < this.options.batchSize) {
        // What has arrived resolves within this turn; a message still on the wire waits for the next batch.
        next = iterator.next();
        const arrived = await Promise.race([next, new Promise<null>((resolve) => setImmediate(resolve, null))]);
        if (arrived === null) break;
        next = null;
        if (arrived.done) {
          ended = true;
          break;
        }
        batch.push(this.taken(arrived.value));
      }
      if (stop.aborted) {
        // Fetched after the stop: another replica, or the next start, takes them. Not at
        // once: this connection's pull may still be open and would take them back.
        for (const message of batch) message.nak(limits.queueNakDelayMs);
        this.stats.handedBack += batch.length;
      } else {
        // A few batches at once, as concurrent calls: the write path groups them.
        const handled: Promise<void> = this.handleBatch(batch)
          .then(() => {})
          .catch((error: unknown) => this.log(`usage queue: ${describe(error)}`))
          .finally(() => inFlight.delete(handled));
        inFlight.add(handled);
        if (inFlight.size >= limits.queueBatchesInFlightMax) await Promise.race(inFlight);
      }
      if (ended) break;
    }
    await Promise.all(inFlight);
  }

  /** handleBatch records one batch as reportUsage would, then dead-letters and acknowledges each message. */
  private async handleBatch(batch: JsMsg[], split = false): Promise<"recorded" | "not recorded"> {
    const attempt = await this.record(batch);
    if ("error" in attempt) {
      await this.notRecorded(batch, attempt, split);
      return "not recorded";
    }
    const { caller, results } = attempt;
    this.lastRecordedAtMs = Date.now();
    assert(results.length === batch.length, "one result per message");
    this.stats.batches++;
    const notices = await this.deadLetterNotices(caller, results);
    const dead = await Promise.all(batch.map((message, index) => this.deadLetter(message, caller, notices[index])));
    batch.forEach((message, index) => {
      if (dead[index] === "failed") {
        message.nak(limits.queueNakDelayMs);
        this.stats.handedBack++;
        return;
      }
      this.ack(message);
      this.stats.acked[results[index].outcome]++;
      if (dead[index] === "published") this.stats.deadLettered++;
    });
    return "recorded";
  }

  /**
   * record takes an admission slot for the batch and records it with reportUsage, in a
   * trace of its own; it says why not when the key may not act (caller null) or the
   * ledger failed (error).
   */
  private async record(batch: JsMsg[]): Promise<{ caller: Caller; results: UsageResult[] } | NotRecorded> {
    await this.admit(batch);
    let caller: Caller | null = null;
    let decoded: ReturnType<typeof decodeUsageMessage>[] = [];
    try {
      const as = await this.currentCaller();
      caller = as;
      if (as === null) return { caller, decoded, error: null };
      decoded = batch.map((message) => decodeUsageMessage({ data: message.data, contentType: message.headers?.get("Content-Type") || null }));
      const attributes = { "messaging.system": "nats", "messaging.batch.message_count": batch.length };
      const results = await inRootSpan("burndown.usage_queue.batch", attributes, producersOf(batch), () => reportUsage(this.deps, as, decoded, this.auditOf(as, batch)));
      return { caller: as, results };
    } catch (error) {
      return { caller, decoded, error };
    } finally {
      this.admission.release();
    }
  }

  /**
   * notRecorded handles a batch the ledger could not record. A database fault hands it
   * back, however often: the ledger is down, not the messages. Any other error may be one
   * message's (a poison message), so a batch of several is recorded again message by
   * message, and the others go through. A message that fails alone, for the
   * queuePoisonDeliveriesMin-th delivery or later, while other batches are recorded, is
   * dead-lettered (RECORDING_FAILED) and acknowledged: it must not come back forever. When
   * nothing is recorded at all, the fault is the ledger's, and every message is handed
   * back however often: a broken deployment does not empty the stream into dead letters.
   */
  private async notRecorded(batch: JsMsg[], { caller, decoded, error }: NotRecorded, split: boolean): Promise<void> {
    // The key may not report usage now: currentCaller said so in the log.
    if (caller === null && error === null) return this.handBack(batch);
    if (transient(error) || caller === null) {
      this.log(`usage queue: a batch of ${batch.length} was not recorded, handed back: ${describe(error)}`);
      return this.handBack(batch);
    }
    if (batch.length > 1) {
      const alone = await Promise.all(batch.map((message) => this.handleBatch([message], true)));
      const failed = alone.filter((outcome) => outcome === "not recorded").length;
      this.log(`usage queue: a batch of ${batch.length} was not recorded (${describe(error)}); one by one, ${batch.length - failed} were recorded and ${failed} not`);
      return;
    }
    const [message] = batch;
    const othersRecorded = Date.now() - this.lastRecordedAtMs < limits.queuePoisonWindowMs;
    if (message.info.deliveryCount < limits.queuePoisonDeliveriesMin || !othersRecorded) {
      // One line per batch: a message of a split batch is counted in its batch's line.
      if (!split) this.log(`usage queue: ${message.info.stream}#${message.seq} was not recorded (delivery ${message.info.deliveryCount}), handed back: ${describe(error)}`);
      return this.handBack(batch);
    }
    const eventId = decoded[0]?.eventId ?? "";
    this.log(`usage queue: ${message.info.stream}#${message.seq} (event ${eventId || "?"}) failed alone ${message.info.deliveryCount} times while others were recorded: dead-lettered as RECORDING_FAILED: ${describe(error)}`);
    const dead = await this.deadLetter(message, caller, { outcome: "failed", reason: "RECORDING_FAILED", eventId, error: describe(error).slice(0, limits.queueDeadLetterErrorCharsMax) });
    if (dead !== "published") return this.handBack(batch);
    this.ack(message);
    this.stats.failed++;
    this.stats.deadLettered++;
  }

  /**
   * deadLetterNotices says, for each message, what its dead letter says, or null when it
   * has none. A duplicate whose event is stored unrated gets one too: its first delivery
   * recorded the event, but the replica may have died (or the dead-letter publish failed)
   * before the notice was stored; JetStream drops the copy when it was. When that cannot
   * be read, the duplicates are handed back ("unknown") and read again on redelivery.
   */
  private async deadLetterNotices(caller: Caller, results: UsageResult[]): Promise<(DeadLetterNotice | null | "unknown")[]> {
    const duplicates = results.filter((result) => result.outcome === "duplicate").map((result) => result.eventId);
    let unrated = new Map<string, string>();
    let unknown = false;
    if (duplicates.length > 0) {
      try {
        unrated = await mapDriverErrors(() => selectUnratedReasons(this.deps.pool, caller.keyId, duplicates));
      } catch (error) {
        this.log(`usage queue: could not read whether ${duplicates.length} duplicates are unrated, handed back: ${describe(error)}`);
        unknown = true;
      }
    }
    return results.map((result) => {
      if (result.outcome === "rejected" || result.outcome === "unrated") return { outcome: result.outcome, reason: result.reason, eventId: result.eventId };
      if (result.outcome !== "duplicate") return null;
      if (unknown) return "unknown";
      const reason = unrated.get(result.eventId);
      return reason === undefined ? null : { outcome: "unrated", reason, eventId: result.eventId };
    });
  }

  /** ack acknowledges a message and tells the listeners how long it took from the stream. */
  private ack(message: JsMsg): void {
    message.ack();
    if (this.listeners.length === 0) return;
    const acked = { ageSeconds: Math.max(0, (Date.now() - message.info.timestampNanos / 1e6) / 1_000) };
    for (const listener of this.listeners) listener(acked);
  }

  /** taken notes what a message taken into a batch says of the consumer: the stream's backlog, and whether it came before. */
  private taken(message: JsMsg): JsMsg {
    this.stats.pending = message.info.pending;
    if (message.info.redelivered) this.stats.redelivered++;
    return message;
  }

  /**
   * admit takes one of the server's admission slots for the batch, so that the queue takes
   * no more than the write path can: under load it waits behind the calls (keeping its
   * messages from being delivered again meanwhile).
   */
  private async admit(batch: JsMsg[]): Promise<void> {
    while (!this.admission.tryAcquire()) {
      try {
        await this.admission.acquire();
        return;
      } catch {
        // Overloaded: the batch waits for the next free slot, and tells JetStream it is still in hand.
        for (const message of batch) message.working();
      }
    }
  }

  private handBack(batch: JsMsg[]): void {
    for (const message of batch) message.nak(limits.queueNakDelayMs);
    this.stats.handedBack += batch.length;
  }

  /** currentCaller is the configured key as last read (at most queueKeyCheckMs ago), or null when it may not report usage. */
  private async currentCaller(): Promise<Caller | null> {
    const nowMs = Date.now();
    if (nowMs - this.caller.checkedAtMs < limits.queueKeyCheckMs) return this.caller.caller;
    const read = await queueCaller(this.deps, this.options.apiKeyId);
    const caller = "caller" in read ? read.caller : null;
    if ("refused" in read && (this.caller.caller !== null || this.caller.checkedAtMs === -Infinity)) {
      this.log(`usage queue: BURNDOWN_NATS_API_KEY_ID ${this.options.apiKeyId} may not report usage (${read.refused}): messages are handed back until it may`);
    }
    this.caller = { checkedAtMs: nowMs, caller };
    return caller;
  }

  /** auditOf makes each lane's part of a batch one audit record: these events came from the queue, through this consumer. */
  private auditOf(caller: Caller, batch: JsMsg[]): AuditOf {
    return (rated) => {
      const recorded = [...rated].filter(([, result]) => result.outcome !== "duplicate" && result.outcome !== "rejected");
      if (recorded.length === 0) return null;
      return {
        actor: caller.keyId,
        requestId: null, // a message is no call: its stream sequences are in the details
        action: "report_usage_from_queue",
        target: this.target,
        reason: "usage from NATS JetStream",
        details: {
          old: null,
          new: { events: recorded.length, event_ids: recorded.map(([, result]) => result.eventId), stream_sequences: recorded.map(([position]) => batch[position].seq) },
        },
      };
    };
  }

  /**
   * deadLetter publishes a rejected or unrated event's message, as received, with why in
   * its headers, and waits for JetStream's PubAck. Its message id lets JetStream drop the
   * copy a redelivery would publish again: an unrated event's is its event id (the
   * reporter's), as a second copy of it says the same; a rejected message's is its stream
   * and sequence, as the same id sent again may be rejected for another reason.
   */
  private async deadLetter(message: JsMsg, caller: Caller, notice: DeadLetterNotice | null | "unknown"): Promise<"none" | "published" | "failed"> {
    if (notice === null) return "none";
    if (notice === "unknown") return "failed";
    assert(this.js !== null, "set up before consuming");
    const h = headers();
    h.set("Burndown-Outcome", notice.outcome);
    h.set("Burndown-Reason", notice.reason);
    if (notice.error !== undefined) h.set("Burndown-Error", notice.error);
    h.set("Burndown-Event-Id", notice.eventId);
    h.set("Burndown-Subject", message.subject);
    h.set("Burndown-Stream", message.info.stream);
    h.set("Burndown-Stream-Sequence", String(message.seq));
    const contentType = message.headers?.get("Content-Type");
    if (contentType) h.set("Content-Type", contentType);
    try {
      await this.js.publish(this.options.deadLetterSubject, message.data, { headers: h, msgID: notice.outcome === "unrated" ? `burndown-dead-unrated-${caller.keyId}-${notice.eventId}` : `burndown-dead-${message.info.stream}-${message.seq}` });
      return "published";
    } catch (error) {
      this.log(`usage queue: dead letter of ${message.info.stream}#${message.seq} to ${this.options.deadLetterSubject} not stored (${describe(error)}): handed back; give the subject a stream`);
      return "failed";
    }
  }
}
