// Time as the client sees it: one injectable clock drives attempt timeouts, backoff,
// lingering batches and close timeouts, so tests can move time by hand.

/** SleepReason names what a sleep waits for, so a test clock can treat each kind differently. */
export type SleepReason = "attempt timeout" | "backoff" | "linger" | "retry pause" | "wait timeout";

/** Clock is the time source of a client. */
export interface Clock {
  /** nowMs is a monotonic time in milliseconds; only differences matter. */
  nowMs: () => number;
  /** sleep resolves true after ms, or false as soon as signal aborts; it never rejects. */
  sleep: (ms: number, signal: AbortSignal | undefined, reason: SleepReason) => Promise<boolean>;
}

/** systemClock is real time: performance.now() and setTimeout. */
export const systemClock: Clock = {
  nowMs: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<boolean>((resolve) => {
      if (signal?.aborted) return resolve(false);
      const onAbort = () => {
        clearTimeout(timer);
        resolve(false);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve(true);
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};
