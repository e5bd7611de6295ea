// The durable local spool of usage allowed while the ledger was unreachable (fail-open).
// An event is appended and fsync'ed before the action it pays for is allowed, so a crash
// loses nothing acknowledged. Replay sends pending events through ReportUsage; the server
// deduplicates by event id, so a replay interrupted by a crash and repeated never
// double-burns. Records are JSON lines: {"e": event} appends or replaces an event (the
// last record of an event id wins), {"a": [ids]} acknowledges events the ledger accepted.
// One spool file per process: the spool does not lock the file against other processes.
import { mkdir, open, readFile, rename, rm, type FileHandle } from "node:fs/promises";
import path from "node:path";

/** SpooledEvent is a usage event kept in the spool. Quantity is a decimal string. */
export interface SpooledEvent {
  eventId: string;
  customerId: string;
  featureKey: string;
  quantity: string;
  /** epoch milliseconds of the usage. */
  eventTimeMs: number;
  properties?: Record<string, string>;
  /** allowed while the ledger was unreachable (fail-open). */
  offline?: boolean;
  /** its action is still running: not sent until replaced; after a crash it counts as used. */
  inFlight?: boolean;
}

/** SpoolFullError says the spool reached its bound; the action must not be allowed offline. */
export class SpoolFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SpoolFullError";
  }
}

/** UsageSpool is an append-only, fsync'ed file of offline usage. */
export class UsageSpool {
  private handle: FileHandle | null = null;
  private bytes = 0;
  private readonly events = new Map<string, SpooledEvent>();
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    readonly filePath: string,
    private readonly bounds: { bytesMax: number; eventsMax: number },
  ) {}

  /** open reads what a previous run left (ignoring a torn last line) and opens the file for appends. */
  async open(): Promise<void> {
    await mkdir(path.dirname(this.filePath), { recursive: true });
    let text = "";
    try {
      text = await readFile(this.filePath, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    const lines = text.split("\n");
    for (const [index, line] of lines.entries()) {
      if (line === "") continue;
      let record: { e?: SpooledEvent; a?: string[] };
      try {
        record = JSON.parse(line);
      } catch (error) {
        // Only the last line can be torn (a crash mid-append, never acknowledged to a caller).
        if (index === lines.length - 1) break;
        throw new Error(`usage spool ${this.filePath} is corrupt at line ${index + 1}`, { cause: error });
      }
      // An action in flight when the process died most likely ran: bill it.
      if (record.e) this.events.set(record.e.eventId, { ...record.e, inFlight: undefined });
      for (const id of record.a ?? []) this.events.delete(id);
    }
    this.handle = await open(this.filePath, "a");
    this.bytes = (await this.handle.stat()).size;
    await syncDirectory(path.dirname(this.filePath));
  }

  /** pending lists the events not yet acknowledged and not in flight, oldest first. */
  pending(): SpooledEvent[] {
    return [...this.events.values()].filter((event) => !event.inFlight);
  }

  /** size is how many events are pending. */
  get size(): number {
    return this.events.size;
  }

  /**
   * append stores (or replaces) an event durably; resolves once it is on disk. Appends
   * queued while a write is in progress are written together with one fsync (group
   * commit). Throws SpoolFullError at the bounds, before writing anything of it.
   */
  async append(event: SpooledEvent): Promise<void> {
    const line = `${JSON.stringify({ e: event })}\n`;
    const isNew = !this.events.has(event.eventId) && !this.queued.some((entry) => entry.event.eventId === event.eventId);
    if (isNew && this.events.size + this.queued.length >= this.bounds.eventsMax) {
      throw new SpoolFullError(`the usage spool holds ${this.bounds.eventsMax} events`);
    }
    const queuedBytes = this.queued.reduce((sum, entry) => sum + Buffer.byteLength(entry.line), 0);
    if (this.bytes + queuedBytes + Buffer.byteLength(line) > this.bounds.bytesMax) throw new SpoolFullError(`the usage spool reached ${this.bounds.bytesMax} bytes`);
    return new Promise((resolve, reject) => {
      this.queued.push({ event, line, resolve, reject });
      if (this.queued.length === 1) void this.serially(() => this.writeQueued());
    });
  }

  private queued: { event: SpooledEvent; line: string; resolve: () => void; reject: (error: unknown) => void }[] = [];

  private async writeQueued(): Promise<void> {
    const group = this.queued;
    this.queued = [];
    try {
      await this.write(group.map((entry) => entry.line).join(""));
      for (const entry of group) this.events.set(entry.event.eventId, entry.event);
      for (const entry of group) entry.resolve();
    } catch (error) {
      for (const entry of group) entry.reject(error);
    }
  }

  /** acknowledge records that the ledger accepted these events; compacts the file when nothing is pending. */
  async acknowledge(eventIds: string[]): Promise<void> {
    if (eventIds.length === 0) return;
    return this.serially(async () => {
      await this.write(`${JSON.stringify({ a: eventIds })}\n`);
      for (const id of eventIds) this.events.delete(id);
      if (this.events.size === 0) await this.compact();
    });
  }

  /** close flushes and closes the file. */
  async close(): Promise<void> {
    await this.serially(async () => {
      await this.handle?.close();
      this.handle = null;
    });
  }

  private async write(line: string): Promise<void> {
    if (this.handle === null) throw new Error("the usage spool is not open");
    await this.handle.write(line);
    await this.handle.sync();
    this.bytes += Buffer.byteLength(line);
  }

  /** compact replaces the file with an empty one, atomically. */
  private async compact(): Promise<void> {
    const fresh = `${this.filePath}.compact`;
    const handle = await open(fresh, "w");
    await handle.sync();
    await handle.close();
    await rename(fresh, this.filePath);
    await syncDirectory(path.dirname(this.filePath));
    await this.handle?.close();
    this.handle = await open(this.filePath, "a");
    this.bytes = 0;
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work, work);
    // The chain only orders the writes; each caller still sees its own failure through run.
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** destroy removes the spool file (tests). */
  async destroy(): Promise<void> {
    await this.close();
    await rm(this.filePath, { force: true });
  }
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
