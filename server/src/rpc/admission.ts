// Admission control: shed overload instead of queueing without bound. At most
// `inFlightMax` ledger and admin calls run at once in this process; a call past that
// waits in a FIFO queue of at most `queuedMax` for at most `queueWaitMs`, then is refused
// with ResourceExhausted and reason OVERLOADED (details: retry_after_ms). A refused call
// has done nothing, so a caller may retry it with the same request id. A caller with a
// deadline (deadline.ts) waits only while its answer can still reach it in time, and one
// that cancels leaves at once. Health checks and reflection are never limited: a probe
// must see an overloaded server as alive.
import type { Interceptor } from "@connectrpc/connect";
import { remainingMs } from "../deadline.js";
import { LedgerError } from "../errors.js";
import { publicMethods } from "./interceptors.js";

/** AdmissionLimits bound one process's concurrent work. */
export interface AdmissionLimits {
  /** calls running at once. */
  inFlightMax: number;
  /** calls waiting for a slot; past this, refused at once. */
  queuedMax: number;
  /** how long a call may wait for a slot before it is refused. */
  queueWaitMs: number;
}

/** AdmissionStats counts what the limiter did, for tests and metrics. */
export interface AdmissionStats {
  inFlight: number;
  queued: number;
  admitted: number;
  shed: number;
}

interface Waiter {
  admit: () => void;
  timer: NodeJS.Timeout;
}

/** Admission is a counting semaphore with a bounded, deadline-limited queue. */
export class Admission {
  private inFlight = 0;
  private readonly queue: Waiter[] = [];
  private admitted = 0;
  private shed = 0;

  constructor(readonly limits: AdmissionLimits) {
    if (!(limits.inFlightMax >= 1) || !(limits.queuedMax >= 0) || !(limits.queueWaitMs >= 0)) {
      throw new Error(`Admission: bad limits ${JSON.stringify(limits)}`);
    }
  }

  stats(): AdmissionStats {
    return { inFlight: this.inFlight, queued: this.queue.length, admitted: this.admitted, shed: this.shed };
  }

  /**
   * acquire resolves when the call may run, or rejects with OVERLOADED, or with the
   * signal's reason once the caller gives up (its deadline passed or it cancelled): a
   * caller that left does not keep its place. Call release once after it resolved.
   */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.tryAcquire()) return Promise.resolve();
    // A caller with a deadline waits only while an answer can still reach it in time.
    const waitMs = Math.min(this.limits.queueWaitMs, remainingMs() ?? Infinity);
    if (this.queue.length >= this.limits.queuedMax || waitMs <= 0) return Promise.reject(this.refusal());
    return new Promise((resolve, reject) => {
      const leave = (error: unknown) => {
        const index = this.queue.indexOf(waiter);
        if (index >= 0) this.queue.splice(index, 1);
        signal?.removeEventListener("abort", onAbort);
        reject(error);
      };
      const onAbort = () => {
        clearTimeout(waiter.timer);
        leave(signal!.reason);
      };
      const waiter: Waiter = {
        admit: () => {
          clearTimeout(waiter.timer);
          signal?.removeEventListener("abort", onAbort);
          this.admitted++;
          resolve();
        },
        timer: setTimeout(() => leave(this.refusal()), waitMs),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  /** tryAcquire takes a free slot if there is one and nobody waits for it; call release once after it returned true. */
  tryAcquire(): boolean {
    if (this.inFlight >= this.limits.inFlightMax || this.queue.length > 0) return false;
    this.inFlight++;
    this.admitted++;
    return true;
  }

  /** release frees a slot; the oldest waiter, if any, takes it. */
  release(): void {
    const next = this.queue.shift();
    if (next !== undefined) next.admit(); // the slot passes on: inFlight stays the same.
    else this.inFlight--;
  }

  private refusal(): LedgerError {
    this.shed++;
    return new LedgerError(
      "overloaded",
      "OVERLOADED",
      `the server is at capacity (${this.limits.inFlightMax} calls running, ${this.queue.length} waiting); back off and retry with the same request id`,
      { retry_after_ms: String(Math.max(10, this.limits.queueWaitMs)) },
    );
  }
}

/** admissionInterceptor runs every call but health and reflection through admission. */
export function admissionInterceptor(admission: Admission): Interceptor {
  return (next) => async (req) => {
    if (publicMethods.has(`${req.service.typeName}/${req.method.name}`)) return next(req);
    // A free slot is taken without reading the call's signal: the grpc-js listener makes
    // one only when it is read, and making it costs more than the rest of admission.
    if (!admission.tryAcquire()) await admission.acquire(req.signal);
    try {
      return await next(req);
    } finally {
      admission.release();
    }
  };
}
