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

/** timerStopped is the reason a stopped timer's sleep is aborted with; a fixed one spares building a DOMException per timer. */
const timerStopped = "timer stopped";

/**
 * startTimer runs onElapsed after ms unless the returned stop runs first. On the system
 * clock it is a plain setTimeout; any other clock goes through its sleep (with reason), so
 * a test clock sees the timer and fires it.
 */
export function startTimer(clock: Clock, ms: number, reason: SleepReason, onElapsed: () => void): () => void {
  if (clock === systemClock) {
    const timer = setTimeout(onElapsed, ms);
    return () => clearTimeout(timer);
  }
  const stop = new AbortController();
  void clock.sleep(ms, stop.signal, reason).then((elapsed) => {
    if (elapsed) onElapsed();
  });
  return () => stop.abort(timerStopped);
}
