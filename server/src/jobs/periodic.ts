// The loop every background job runs: a pass every intervalMs, one at a time (a slow pass
// delays the next tick instead of queueing passes), and a stop that waits for the pass in
// hand. The timer is unref'd, so a job never keeps a process alive on its own.

/** Periodic is a running loop; stop ends it once the pass in hand is done. */
export interface Periodic {
  stop: () => Promise<void>;
}

/** every runs pass every intervalMs until stopped; pass handles (logs) its own failures. */
export function every(intervalMs: number, pass: () => Promise<unknown>): Periodic {
  let running: Promise<unknown> | null = null;
  let stopped = false;
  const timer = setInterval(() => {
    if (stopped || running !== null) return;
    running = pass().finally(() => {
      running = null;
    });
  }, intervalMs);
  timer.unref();
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      if (running !== null) await running;
    },
  };
}
