// Usage reporting off the hot path: add() accepts an event at once and returns; one
// background loop sends the queue in order, in batches, through ReportUsage. A batch is
// sent when it is full, when its oldest event has lingered lingerMsMax, or when a flush
// or close asks. Memory is bounded by queueLengthMax: past it new events are dropped and
// counted, never queued. A batch that finds the ledger unreachable stays at the head
// and is tried again after a pause; each event keeps the id it got at acceptance, so a
// batch sent twice is deduplicated by the server and never burns twice.
import { clone, create, isMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { context, ROOT_CONTEXT } from "@opentelemetry/api";
import { uuidV7 } from "./uuid-v7.js";
import type { Clock } from "./clock.js";
import { BurndownError, UnavailableError } from "./errors.js";
import type { ReportUsageResponse } from "./gen/burndown/v1/ledger_service_pb.js";
import { type UsageEvent, type UsageEventResult, UsageEventSchema, UsageOutcome } from "./gen/burndown/v1/usage_pb.js";

/** UsageEventInit is a usage event as a caller reports it; eventId and eventTime are filled at acceptance when missing. */
export type UsageEventInit = MessageInitShape<typeof UsageEventSchema>;

/** usageEventOf copies an event into a message of its own and gives it an id (its idempotency key) if it has none. */
export function usageEventOf(init: UsageEventInit): UsageEvent {
  const event = isMessage(init, UsageEventSchema) ? clone(UsageEventSchema, init) : create(UsageEventSchema, init);
  if (event.eventId === "") event.eventId = uuidV7();
  return event;
}

/** UsageReceipt says whether reportUsage accepted an event, and its id. */
export type UsageReceipt = { accepted: true; eventId: string } | { accepted: false; eventId: string; refusal: "queue_full" | "closed" };

/** UsageStats counts what became of reported events. */
export interface UsageStats {
  /** events accepted by reportUsage. */
  accepted: number;
  /** accepted events the ledger answered (any outcome). */
  sent: number;
  /** of those, the ones it refused (outcome REJECTED); see onUsageResults for why. */
  rejected: number;
  /** of those, the ones it had already seen (outcome DUPLICATE): a retried batch. */
  duplicates: number;
  /** accepted events given up because the ledger refused their whole batch (not a transient fault). */
  failed: number;
  /** events refused at once because the queue was full. */
  dropped: number;
  /** accepted events not yet answered, in flight included. */
  pending: number;
  /** ReportUsage calls answered. */
  batchesSent: number;
}

/** DrainResult says whether a flush or close emptied the queue, and what is left. */
export interface DrainResult {
  drained: boolean;
  pending: number;
}

/** UsageBatcherOptions configure a batcher. */
export interface UsageBatcherOptions {
  batchSizeMax: number;
  lingerMsMax: number;
  queueLengthMax: number;
  retryPauseMs: number;
  clock: Clock;
  /** sends one batch (ReportUsage through the client's call path, with its retries). */
  send: (events: UsageEvent[], signal: AbortSignal) => Promise<ReportUsageResponse>;
  onResults: (results: UsageEventResult[]) => void;
  onError: (error: unknown) => void;
}

interface Queued {
  event: UsageEvent;
  seq: number;
  acceptedAtMs: number;
}

/** UsageBatcher queues usage events and sends them in batches in the background. */
export class UsageBatcher {
  private queue: Queued[] = [];
  private inFlight: Queued[] = [];
  private nextSeq = 0;
  /** events answered or given up; the queue is FIFO, so these are exactly seqs below it. */
  private settledCount = 0;
  private flushUpTo = 0;
  private closed = false;
  private loop: Promise<void> | null = null;
  private wake = new AbortController();
  private readonly abandon = new AbortController();
  private waiters: { target: number; resolve: () => void }[] = [];
  private readonly counts = { sent: 0, rejected: 0, duplicates: 0, failed: 0, dropped: 0, batchesSent: 0 };

  constructor(private readonly options: UsageBatcherOptions) {
    if (!(options.batchSizeMax >= 1 && options.queueLengthMax >= options.batchSizeMax)) {
      throw new RangeError("usage: need 1 <= batchSizeMax <= queueLengthMax");
    }
    if (!(options.lingerMsMax >= 0 && options.retryPauseMs >= 0)) throw new RangeError("usage: lingerMsMax and retryPauseMs must be >= 0");
  }

  /** add accepts an event (giving it an id and an event time if it has none) or refuses it at once. */
  add(event: UsageEventInit): UsageReceipt {
    if (this.closed) return { accepted: false, eventId: event.eventId ?? "", refusal: "closed" };
    if (this.queue.length + this.inFlight.length >= this.options.queueLengthMax) {
      this.counts.dropped += 1;
      return { accepted: false, eventId: event.eventId ?? "", refusal: "queue_full" };
    }
    const stamped = usageEventOf(event);
    // Stamped now: the event happened now, however long it waits to be sent.
    stamped.eventTime ??= timestampFromMs(Date.now());
    this.queue.push({ event: stamped, seq: this.nextSeq++, acceptedAtMs: this.options.clock.nowMs() });
    if (this.queue.length >= this.options.batchSizeMax) this.wake.abort();
    this.ensureRunning();
    return { accepted: true, eventId: stamped.eventId };
  }

  /** stats counts what became of reported events. */
  stats(): UsageStats {
    return { ...this.counts, accepted: this.nextSeq, pending: this.queue.length + this.inFlight.length };
  }

  /** flush sends everything accepted so far now, and resolves once it was answered (or timeoutMs passed). */
  async flush(options: { timeoutMs?: number } = {}): Promise<DrainResult> {
    const target = this.nextSeq;
    this.flushUpTo = Math.max(this.flushUpTo, target);
    this.wake.abort();
    this.ensureRunning();
    const drained = await this.untilSettled(target, options.timeoutMs);
    return { drained, pending: this.stats().pending };
  }

  /**
   * close refuses new events, sends everything accepted and waits up to timeoutMs. When
   * time runs out it stops sending and returns the events left, so that the caller can
   * keep them (they keep their ids: sending them again later cannot burn twice).
   */
  async close(options: { timeoutMs: number }): Promise<DrainResult & { unsent: UsageEvent[] }> {
    this.closed = true;
    const result = await this.flush(options);
    if (!result.drained) {
      this.abandon.abort();
      await this.loop;
      for (const waiter of this.waiters) waiter.resolve();
    }
    const unsent = [...this.inFlight, ...this.queue].map((queued) => queued.event);
    return { drained: unsent.length === 0, pending: unsent.length, unsent };
  }

  private ensureRunning(): void {
    if (this.loop !== null || this.queue.length === 0 || this.abandon.signal.aborted) return;
    this.loop = this.run().finally(() => {
      this.loop = null;
      this.ensureRunning();
    });
  }

  private async run(): Promise<void> {
    // Bounded by the queue, which add() bounds; each pass sends or abandons one batch.
    while (this.queue.length > 0 && !this.abandon.signal.aborted) {
      await this.linger();
      const batch = this.queue.splice(0, this.options.batchSizeMax);
      this.inFlight = batch;
      const answer = await this.deliver(batch);
      this.inFlight = [];
      if (answer === "abandoned") {
        this.queue.unshift(...batch);
        return;
      }
      this.settle(batch.length);
      if (answer !== "refused") this.callBack(() => this.options.onResults(answer.results));
    }
  }

  /** linger waits until the head batch should go: full, its oldest event old enough, or asked for. */
  private async linger(): Promise<void> {
    const oldest = this.queue[0];
    if (this.queue.length >= this.options.batchSizeMax || oldest.seq < this.flushUpTo || this.closed) return;
    this.wake = new AbortController();
    const waitMs = oldest.acceptedAtMs + this.options.lingerMsMax - this.options.clock.nowMs();
    if (waitMs > 0) await this.options.clock.sleep(waitMs, this.wake.signal, "linger");
  }

  /** deliver sends a batch until the ledger answers or refuses it, or close gives up on it. */
  private async deliver(batch: Queued[]): Promise<ReportUsageResponse | "refused" | "abandoned"> {
    const events = batch.map((queued) => queued.event);
    // Not bounded by a count: while the ledger is unreachable the batch waits here, paced
    // by the pause, and the queue bound keeps memory in check.
    for (;;) {
      try {
        // Outside any caller's trace context: the loop was started by whichever caller
        // reported first and serves every caller after it, so a batch has no caller of its own.
        const response = await context.with(ROOT_CONTEXT, this.options.send, undefined, events, this.abandon.signal);
        this.count(response);
        return response;
      } catch (error) {
        if (this.abandon.signal.aborted) return "abandoned";
        this.callBack(() => this.options.onError(error));
        // Only the ledger's refusal gives a batch up; no answer (of any kind) means try again.
        if (error instanceof BurndownError && !(error instanceof UnavailableError)) {
          this.counts.failed += batch.length;
          return "refused";
        }
        if (!(await this.options.clock.sleep(this.options.retryPauseMs, this.abandon.signal, "retry pause"))) return "abandoned";
      }
    }
  }

  /** callBack runs a caller's callback; if it throws, the error surfaces on its own rather than stopping the loop. */
  private callBack(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  private count(response: ReportUsageResponse): void {
    this.counts.batchesSent += 1;
    this.counts.sent += response.results.length;
    for (const result of response.results) {
      if (result.outcome === UsageOutcome.REJECTED) this.counts.rejected += 1;
      if (result.outcome === UsageOutcome.DUPLICATE) this.counts.duplicates += 1;
    }
  }

  private settle(count: number): void {
    this.settledCount += count;
    const ready = this.waiters.filter((waiter) => waiter.target <= this.settledCount);
    this.waiters = this.waiters.filter((waiter) => waiter.target > this.settledCount);
    for (const waiter of ready) waiter.resolve();
  }

  /** untilSettled resolves true once target events are settled, false if timeoutMs passes or close gives up first. */
  private async untilSettled(target: number, timeoutMs: number | undefined): Promise<boolean> {
    if (this.settledCount >= target || this.abandon.signal.aborted) return this.settledCount >= target;
    const waiter = { target, resolve: () => {} };
    const settled = new Promise<void>((resolve) => {
      waiter.resolve = resolve;
      this.waiters.push(waiter);
    });
    const stop = new AbortController();
    const timedOut = timeoutMs === undefined ? new Promise<void>(() => {}) : this.options.clock.sleep(timeoutMs, stop.signal, "wait timeout");
    await Promise.race([settled, timedOut]);
    stop.abort();
    this.waiters = this.waiters.filter((other) => other !== waiter);
    return this.settledCount >= target;
  }
}
