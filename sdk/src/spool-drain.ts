// Draining the usage spool into the ledger: pending events go out in batches through
// ReportUsage; every answered event is acknowledged (burned, duplicate, unrated... and
// rejected, which no retry would change: it is counted, not kept). A failed send leaves
// the events in the spool for the next drain. The server deduplicates by event id, so a
// send whose answer was lost and is sent again never burns twice.
import type { SpooledEvent, UsageSpool } from "./usage-spool.js";

/** SentResult is the ledger's answer for one spooled event. */
export interface SentResult {
  eventId: string;
  rejected: boolean;
}

/** DrainStats counts what drains did. */
export interface DrainStats {
  sent: number;
  rejected: number;
  failedSends: number;
}

/** SpoolDrain sends the spool's events to the ledger, one batch at a time. */
export class SpoolDrain {
  readonly stats: DrainStats = { sent: 0, rejected: 0, failedSends: 0 };
  private running: Promise<boolean> | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly spool: UsageSpool,
    private readonly options: {
      send: (events: SpooledEvent[]) => Promise<SentResult[]>;
      batchSizeMax: number;
      intervalMs: number;
      onError: (error: unknown) => void;
    },
  ) {}

  /** drain sends until the spool is empty or a send fails; resolves true when it emptied the spool. Concurrent calls share one run. */
  drain(): Promise<boolean> {
    this.running ??= this.run().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async run(): Promise<boolean> {
    for (let batch = this.nextBatch(); batch.length > 0; batch = this.nextBatch()) {
      let results: SentResult[];
      try {
        results = await this.options.send(batch);
      } catch (error) {
        this.stats.failedSends++;
        this.options.onError(error);
        return false;
      }
      const answered = new Set(results.map((result) => result.eventId));
      if (!batch.every((event) => answered.has(event.eventId))) throw new Error("assertion failed: the ledger answers every event of a batch");
      this.stats.sent += batch.length;
      this.stats.rejected += results.filter((result) => result.rejected).length;
      await this.spool.acknowledge(batch.map((event) => event.eventId));
    }
    return true;
  }

  private nextBatch(): SpooledEvent[] {
    return this.spool.pending().slice(0, this.options.batchSizeMax);
  }

  /** start drains every intervalMs until stop (and once now). */
  start(): void {
    const tick = () => void this.drain().catch(this.options.onError);
    tick();
    this.timer = setInterval(tick, this.options.intervalMs);
    this.timer.unref();
  }

  /** stop ends the periodic drains and waits for one in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.running) await this.running;
  }
}
