// Gathers concurrent attempts of one mutation (Reserve or Commit) into one batch RPC
// (ReserveBatch, CommitBatch), so a busy process pays the RPC stack's per-call cost once
// per batch instead of once per operation. It adds no delay: while fewer than
// batchesInFlightMax calls are out, an attempt goes at the next turn of the event loop
// (alone, as the unary RPC, when nothing else is waiting); once they are all out, attempts
// wait for one to come back and then leave together. Each attempt keeps its own request
// id, signal and answer: an item's error is thrown to that attempt alone, as the unary
// call would have thrown it, and the call path retries it like any other attempt. A
// server that does not know the batch RPC (Unimplemented) gets unary calls from then on.
// Each attempt is sent in the OpenTelemetry context it was made in, so its trace context
// goes with it; a batch carries the context of its first attempt (a request has one parent).
import { Code, ConnectError } from "@connectrpc/connect";
import { type Context, context } from "@opentelemetry/api";
import { ErrorInfoSchema, errorDomain } from "./error-info.js";
import type { BatchItemError } from "./gen/burndown/v1/ledger_service_pb.js";

/** ItemResult is one item's answer in a batch response. */
export type ItemResult<Res> = { result: { case: "response"; value: Res } | { case: "error"; value: BatchItemError } | { case: undefined; value?: undefined } };

/** OperationBatcherOptions wire a batcher to one unary RPC and its batch RPC. */
export interface OperationBatcherOptions<Req, Res> {
  /** timeoutMs, when set, is sent as the call's timeout so the server answers within it. */
  sendOne: (request: Req, signal: AbortSignal, timeoutMs: number | undefined) => Promise<Res>;
  sendBatch: (requests: Req[], signal: AbortSignal, timeoutMs: number | undefined) => Promise<ItemResult<Res>[]>;
  /** items per batch call. */
  batchSizeMax: number;
  /** calls (batch or unary) out at once before attempts wait to leave together. */
  batchesInFlightMax: number;
}

/** OperationCounts: attempts sent (items), the calls that carried them, and how many of those calls were batches. */
export interface OperationCounts {
  calls: number;
  batches: number;
  items: number;
}

/**
 * Pending is one attempt waiting for its answer. It is its own abort listener: an attempt
 * that times out or is cancelled leaves at once (outcome unknown, as for a unary call); if
 * its batch already left, the server may still apply it, and the retry with the same
 * request id replays it.
 */
class Pending<Req, Res> {
  constructor(
    readonly request: Req,
    readonly signal: AbortSignal,
    /** when this attempt times out (Date.now() time), if it has a timeout. */
    readonly deadlineAtMs: number | undefined,
    private readonly settle: { resolve: (response: Res) => void; reject: (error: unknown) => void },
    private readonly waiting: Pending<Req, Res>[],
    /** the OpenTelemetry context the attempt was made in; its call is sent in it. */
    readonly context: Context,
  ) {}

  resolve(response: Res): void {
    this.signal.removeEventListener("abort", this);
    this.settle.resolve(response);
  }

  reject(error: unknown): void {
    this.signal.removeEventListener("abort", this);
    this.settle.reject(error);
  }

  handleEvent(): void {
    const index = this.waiting.indexOf(this);
    if (index >= 0) this.waiting.splice(index, 1);
    this.settle.reject(this.signal.reason);
  }
}

/** itemErrorToConnectError rebuilds the error the unary call would have thrown. */
export function itemErrorToConnectError(error: BatchItemError): ConnectError {
  const code = error.code in Code ? (error.code as Code) : Code.Unknown;
  const details = error.reason ? [{ desc: ErrorInfoSchema, value: { reason: error.reason, domain: errorDomain, metadata: { ...error.metadata } } }] : [];
  return new ConnectError(error.message, code, undefined, details);
}

/**
 * timeoutMsOf is the timeout a call carrying these attempts tells the server: the latest of
 * theirs (a batch must not be cut short for the item with the most time left), none when
 * any attempt has none.
 */
function timeoutMsOf(items: readonly { deadlineAtMs: number | undefined }[]): number | undefined {
  let latestMs = -Infinity;
  for (const item of items) {
    if (item.deadlineAtMs === undefined) return undefined;
    latestMs = Math.max(latestMs, item.deadlineAtMs);
  }
  return Math.max(1, Math.ceil(latestMs - Date.now()));
}

/** OperationBatcher sends attempts of one mutation, batched when several are waiting. */
export class OperationBatcher<Req, Res> {
  private readonly waiting: Pending<Req, Res>[] = [];
  private inFlight = 0;
  private flushScheduled = false;
  private batchSupported = true;
  /** counters, for tests and stats: calls sent, and how many of them were batches. */
  readonly counts: OperationCounts = { calls: 0, batches: 0, items: 0 };

  constructor(private readonly options: OperationBatcherOptions<Req, Res>) {
    if (!(options.batchSizeMax >= 1) || !(options.batchesInFlightMax >= 1)) throw new RangeError("batchSizeMax and batchesInFlightMax must be at least 1");
  }

  /**
   * send makes one attempt; it settles with this item's answer, or rejects when signal
   * aborts. timeoutMs is the attempt's own timeout, passed on to the server.
   */
  send(request: Req, signal: AbortSignal, timeoutMs?: number): Promise<Res> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<Res>((resolve, reject) => {
      const deadlineAtMs = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
      const item = new Pending<Req, Res>(request, signal, deadlineAtMs, { resolve, reject }, this.waiting, context.active());
      signal.addEventListener("abort", item, { once: true });
      this.waiting.push(item);
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.waiting.length === 0 || this.inFlight >= this.options.batchesInFlightMax) return;
    this.flushScheduled = true;
    // The next turn of the event loop: attempts made by callers woken together leave together.
    setImmediate(() => {
      this.flushScheduled = false;
      while (this.waiting.length > 0 && this.inFlight < this.options.batchesInFlightMax) {
        this.dispatch(this.waiting.splice(0, this.options.batchSizeMax));
      }
    });
  }

  private dispatch(items: Pending<Req, Res>[]): void {
    this.inFlight++;
    this.counts.items += items.length;
    const sent = items.length === 1 || !this.batchSupported ? this.sendEach(items) : this.sendAsBatch(items);
    void sent.finally(() => {
      this.inFlight--;
      this.scheduleFlush();
    });
  }

  private async sendEach(items: Pending<Req, Res>[]): Promise<void> {
    this.counts.calls += items.length;
    await Promise.all(
      items.map((item) =>
        context.with(item.context, this.options.sendOne, undefined, item.request, item.signal, timeoutMsOf([item])).then(
          (response) => item.resolve(response),
          (error: unknown) => item.reject(error),
        ),
      ),
    );
  }

  private async sendAsBatch(items: Pending<Req, Res>[]): Promise<void> {
    this.counts.calls++;
    this.counts.batches++;
    // The batch is abandoned only when every item in it has been: one item's timeout must not cancel its neighbours.
    const controller = new AbortController();
    let open = items.length;
    const onItemAbort = () => {
      if (--open === 0) controller.abort(new ConnectError("every attempt in the batch was abandoned", Code.Canceled));
    };
    for (const item of items) {
      if (item.signal.aborted) onItemAbort();
      else item.signal.addEventListener("abort", onItemAbort, { once: true });
    }
    try {
      const results = await context.with(items[0].context, this.options.sendBatch, undefined, items.map((item) => item.request), controller.signal, timeoutMsOf(items));
      if (results.length !== items.length) throw new ConnectError(`the batch answered ${results.length} results for ${items.length} requests`, Code.Internal);
      items.forEach((item, index) => {
        const { result } = results[index];
        if (result.case === "response") item.resolve(result.value);
        else if (result.case === "error") item.reject(itemErrorToConnectError(result.value));
        else item.reject(new ConnectError("the batch answered an empty result", Code.Internal));
      });
    } catch (error) {
      if (ConnectError.from(error).code === Code.Unimplemented) {
        // A server from before the batch RPCs: send these, and everything after, one by one.
        this.batchSupported = false;
        await this.sendEach(items);
        return;
      }
      for (const item of items) item.reject(error);
    } finally {
      for (const item of items) item.signal.removeEventListener("abort", onItemAbort);
    }
  }
}
