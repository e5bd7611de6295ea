// A clock for the SDK client that tests move by hand: sleeps wait until advance() passes
// their due time, except the kinds of sleep a test lets run at once (auto-advanced), and
// tests can wait until the client is sleeping, for explicit synchronisation.
import type { Clock, SleepReason } from "@burndown/sdk";

interface Sleeper {
  dueMs: number;
  reason: SleepReason;
  resolve: (elapsed: boolean) => void;
}

/** ManualClock is a Clock whose time moves only when a test says so. */
export class ManualClock implements Clock {
  private currentMs = 0;
  private sleepers: Sleeper[] = [];
  private watchers: (() => void)[] = [];
  /** every sleep asked for, in order: what the client waited for and how long. */
  readonly slept: { ms: number; reason: SleepReason }[] = [];

  /** autoAdvance lists the sleeps that move time forward and end at once. */
  constructor(private readonly autoAdvance: ReadonlySet<SleepReason> = new Set()) {}

  nowMs = (): number => this.currentMs;

  sleep = (ms: number, signal: AbortSignal | undefined, reason: SleepReason): Promise<boolean> => {
    this.slept.push({ ms, reason });
    if (signal?.aborted) return Promise.resolve(false);
    if (this.autoAdvance.has(reason)) {
      this.advance(Math.max(0, ms));
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      const sleeper: Sleeper = { dueMs: this.currentMs + Math.max(0, ms), reason, resolve };
      this.sleepers.push(sleeper);
      signal?.addEventListener(
        "abort",
        () => {
          this.sleepers = this.sleepers.filter((other) => other !== sleeper);
          resolve(false);
        },
        { once: true },
      );
      for (const watcher of [...this.watchers]) watcher();
    });
  };

  /** advance moves time forward and ends every sleep now due, earliest first. */
  advance(ms: number): void {
    this.currentMs += ms;
    const due = this.sleepers.filter((sleeper) => sleeper.dueMs <= this.currentMs).sort((a, b) => a.dueMs - b.dueMs);
    this.sleepers = this.sleepers.filter((sleeper) => sleeper.dueMs > this.currentMs);
    for (const sleeper of due) sleeper.resolve(true);
  }

  /** pending counts the sleeps of a kind now waiting. */
  pending(reason: SleepReason): number {
    return this.sleepers.filter((sleeper) => sleeper.reason === reason).length;
  }

  /** untilSleeping resolves once at least count sleeps of a kind are waiting. */
  untilSleeping(reason: SleepReason, count = 1): Promise<void> {
    return new Promise<void>((resolve) => {
      const check = () => {
        if (this.pending(reason) < count) return;
        this.watchers = this.watchers.filter((watcher) => watcher !== check);
        resolve();
      };
      this.watchers.push(check);
      check();
    });
  }

  /** fire ends every waiting sleep of a kind now, moving time to the latest of them. */
  fire(reason: SleepReason): void {
    const latest = Math.max(this.currentMs, ...this.sleepers.filter((sleeper) => sleeper.reason === reason).map((sleeper) => sleeper.dueMs));
    this.advance(latest - this.currentMs);
  }
}
