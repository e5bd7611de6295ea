// One circuit breaker per feature (not per call), counting only the failures that say
// the ledger is unreachable: UNAVAILABLE and DEADLINE_EXCEEDED. A refusal (no credits,
// bad input) is an answer, not a fault, and never opens a breaker. opossum's cache and
// coalescing stay off: they would replay or merge mutations. Each call passes its own
// closure, so cancellation stays per call.
import { Code, ConnectError } from "@connectrpc/connect";
import CircuitBreaker from "opossum";

/** BreakerOptions tune every feature's breaker. */
export interface BreakerOptions {
  /** percentage of failed calls in the rolling window that opens the breaker. */
  errorPercentThreshold: number;
  /** calls in the window before the percentage counts. */
  volumeThreshold: number;
  /** how long the breaker stays open before one trial call (half-open). */
  resetTimeoutMs: number;
  /** the rolling window. */
  rollingWindowMs: number;
}

/** breakerDefaults are the defaults of BreakerOptions. */
export const breakerDefaults: BreakerOptions = { errorPercentThreshold: 50, volumeThreshold: 5, resetTimeoutMs: 5_000, rollingWindowMs: 10_000 };

/** isUnreachable says whether an error means the ledger could not answer (the only failures a breaker counts). */
export function isUnreachable(error: unknown): boolean {
  const code = error instanceof ConnectError ? error.code : ConnectError.from(error).code;
  return code === Code.Unavailable || code === Code.DeadlineExceeded;
}

/** BreakerOpenError is thrown, code Unavailable, without calling the ledger while a feature's breaker is open. */
export class BreakerOpenError extends ConnectError {
  constructor(readonly featureKey: string) {
    super(`the ledger is unreachable for feature ${featureKey} (circuit open)`, Code.Unavailable);
  }

  // ConnectError's own check accepts any ConnectError-shaped value; this one needs the prototype check.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

type Call = () => Promise<unknown>;

/** FeatureBreakers holds one breaker per feature key, made on first use. */
export class FeatureBreakers {
  private readonly breakers = new Map<string, CircuitBreaker<[Call], unknown>>();
  private readonly openedAtMs = new Map<string, number>();

  constructor(
    private readonly options: BreakerOptions = breakerDefaults,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** run calls the ledger through the feature's breaker; throws BreakerOpenError while it is open. */
  run<T>(featureKey: string, call: () => Promise<T>): Promise<T> {
    return (this.breakerOf(featureKey).fire(call) as Promise<T>).then(undefined, (error: unknown) => {
      throw (error as { code?: string }).code === "EOPENBREAKER" ? new BreakerOpenError(featureKey) : error;
    });
  }

  /** isOpen says whether a feature's breaker is open (calls fail fast). */
  isOpen(featureKey: string): boolean {
    return this.breakers.get(featureKey)?.opened ?? false;
  }

  /** outageStartMs is when a feature's breaker last opened, while it is not closed; null when closed. */
  outageStartMs(featureKey: string): number | null {
    return this.openedAtMs.get(featureKey) ?? null;
  }

  /** onClose calls listener whenever any feature's breaker closes again (the ledger is back). */
  onClose(listener: (featureKey: string) => void): void {
    this.closeListeners.push(listener);
  }

  private readonly closeListeners: ((featureKey: string) => void)[] = [];

  private breakerOf(featureKey: string): CircuitBreaker<[Call], unknown> {
    const existing = this.breakers.get(featureKey);
    if (existing) return existing;
    const breaker = new CircuitBreaker<[Call], unknown>((call: Call) => call(), {
      timeout: false, // per-call deadlines are the client's; a breaker timeout would not cancel the call
      errorThresholdPercentage: this.options.errorPercentThreshold,
      volumeThreshold: this.options.volumeThreshold,
      resetTimeout: this.options.resetTimeoutMs,
      rollingCountTimeout: this.options.rollingWindowMs,
      errorFilter: (error: unknown) => !isUnreachable(error),
      cache: false,
      // Only fires and failures decide; latency percentiles (a sort of the window's latencies
      // on every failure and every second) and snapshot events are work nobody reads.
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      name: featureKey,
    });
    breaker.on("open", () => {
      if (!this.openedAtMs.has(featureKey)) this.openedAtMs.set(featureKey, this.nowMs());
    });
    breaker.on("close", () => {
      this.openedAtMs.delete(featureKey);
      for (const listener of this.closeListeners) listener(featureKey);
    });
    this.breakers.set(featureKey, breaker);
    return breaker;
  }

  /** shutdown stops every breaker's timers. */
  shutdown(): void {
    for (const breaker of this.breakers.values()) breaker.shutdown();
    this.breakers.clear();
  }
}
