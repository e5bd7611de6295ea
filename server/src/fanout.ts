// Cross-replica fan-out. PostgreSQL is the source of truth; fan-out only tells the other
// replicas at once what they would otherwise learn when a cache entry expires. Today that
// is an API key's revocation: without fan-out a revoked key keeps working on another
// replica until its cache entry expires (limits.apiKeyCacheMsMax); with Redis (REDIS_URL)
// every replica drops it as soon as the revocation commits.
//
// Nothing waits for Redis. A publish is fire-and-forget with a short timeout and no
// offline queue, so a Redis that is down, slow or paused costs requests nothing, and each
// cache keeps its own bound. Messages sent while a replica was not subscribed are lost,
// so whenever its subscription is (re)established, its listeners resync (drop caches). A
// subscription that silently stopped (Redis paused, a partition) is found by a periodic
// PING and reconnected.
import { Redis } from "ioredis";

/** FanoutListener receives what other replicas (and this one) announce. */
export interface FanoutListener {
  keyRevoked(keyId: string): void;
  /** announcements may have been missed: forget whatever they would have corrected. */
  resync(): void;
}

/** FanoutStats count announcements, for tests and operators. */
export interface FanoutStats {
  published: number;
  publishFailed: number;
  received: number;
  resyncs: number;
  /** pings of the subscription that went unanswered (each forces a reconnect). */
  livenessFailed: number;
}

/** Fanout announces changes to every replica; this replica's listeners hear them first, synchronously. */
export interface Fanout {
  keyRevoked(keyId: string): void;
  subscribe(listener: FanoutListener): void;
  stats(): FanoutStats;
  close(): Promise<void>;
}

/** LocalFanout reaches this replica only: the default without Redis. */
export class LocalFanout implements Fanout {
  protected readonly listeners: FanoutListener[] = [];
  protected readonly counts: FanoutStats = { published: 0, publishFailed: 0, received: 0, resyncs: 0, livenessFailed: 0 };

  keyRevoked(keyId: string): void {
    this.deliverKeyRevoked(keyId);
  }

  subscribe(listener: FanoutListener): void {
    this.listeners.push(listener);
  }

  stats(): FanoutStats {
    return { ...this.counts };
  }

  async close(): Promise<void> {}

  protected deliverKeyRevoked(keyId: string): void {
    for (const listener of this.listeners) listener.keyRevoked(keyId);
  }

  protected resync(): void {
    this.counts.resyncs++;
    for (const listener of this.listeners) listener.resync();
  }
}

/** RedisFanoutOptions: where Redis is, and the channel prefix that keeps deployments sharing one Redis apart. */
export interface RedisFanoutOptions {
  url: string;
  channelPrefix: string;
  /** how long a publish, or a ping of the subscription, may wait on Redis before it counts as failed. */
  publishTimeoutMs?: number;
  /** how often the subscription is pinged. */
  livenessIntervalMs?: number;
  log: (message: string) => void;
}

const keyRevokedKind = "key-revoked";

/** RedisFanout publishes on Redis and delivers what every replica publishes. */
export class RedisFanout extends LocalFanout {
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private readonly channel: string;
  private closed = false;
  private lastError = "";
  private pinging = false;
  private readonly timeoutMs: number;
  private readonly liveness: NodeJS.Timeout;

  constructor(private readonly options: RedisFanoutOptions) {
    super();
    this.channel = `${options.channelPrefix}:fanout`;
    this.timeoutMs = options.publishTimeoutMs ?? 1_000;
    const common = {
      keepAlive: 10_000,
      // Reconnect for ever, backing off to 2 s: Redis coming back is picked up by itself.
      retryStrategy: (attempt: number) => Math.min(100 * attempt, 2_000),
      connectTimeout: 2_000,
      maxRetriesPerRequest: 0,
      lazyConnect: true,
    };
    this.publisher = new Redis(options.url, { ...common, enableOfflineQueue: false, commandTimeout: this.timeoutMs });
    // The subscriber queues its SUBSCRIBE until connected and subscribes again after each reconnect.
    this.subscriber = new Redis(options.url, { ...common, enableOfflineQueue: true, autoResubscribe: true });
    for (const [name, client] of [["publisher", this.publisher], ["subscriber", this.subscriber]] as const) {
      client.on("error", (error: Error) => this.logOnce(`redis ${name}: ${error.message}`));
    }
    this.subscriber.on("message", (channel: string, message: string) => this.onMessage(channel, message));
    // Each (re)connection may have missed announcements: listeners drop their caches.
    this.subscriber.on("ready", () => {
      this.lastError = "";
      this.resync();
    });
    this.liveness = setInterval(() => this.checkLiveness(), options.livenessIntervalMs ?? 5_000);
    this.liveness.unref();
  }

  /** start connects both clients; Redis being unreachable does not stop the server (it keeps retrying). */
  async start(): Promise<void> {
    void this.publisher.connect().catch(() => undefined);
    void this.subscriber.connect().catch(() => undefined);
    void this.subscriber.subscribe(this.channel).catch((error: Error) => this.logOnce(`redis subscribe: ${error.message}`));
  }

  override keyRevoked(keyId: string): void {
    super.keyRevoked(keyId);
    this.publish(`${keyRevokedKind} ${keyId}`);
  }

  override async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.liveness);
    this.publisher.disconnect();
    this.subscriber.disconnect();
  }

  private publish(message: string): void {
    if (this.closed) return;
    this.publisher.publish(this.channel, message).then(
      () => this.counts.published++,
      (error: Error) => {
        this.counts.publishFailed++;
        this.logOnce(`redis publish failed (other replicas learn within their cache bound): ${error.message}`);
      },
    );
  }

  /** checkLiveness pings a ready subscription; no answer in time means reconnect (and so resync). */
  private checkLiveness(): void {
    if (this.closed || this.pinging || this.subscriber.status !== "ready") return;
    this.pinging = true;
    const timer = setTimeout(() => {
      this.pinging = false;
      this.counts.livenessFailed++;
      this.logOnce("redis subscriber did not answer a ping in time; reconnecting");
      this.subscriber.disconnect(true);
    }, this.timeoutMs);
    this.subscriber.ping().then(
      () => {
        clearTimeout(timer);
        this.pinging = false;
      },
      () => undefined, // a reconnect rejects it; the timer or the reconnect handles the rest
    );
  }

  private onMessage(channel: string, message: string): void {
    if (channel !== this.channel) return;
    this.counts.received++;
    const space = message.indexOf(" ");
    const kind = message.slice(0, space);
    const value = message.slice(space + 1);
    if (space > 0 && kind === keyRevokedKind) this.deliverKeyRevoked(value);
  }

  private logOnce(message: string): void {
    if (this.closed || message === this.lastError) return;
    this.lastError = message;
    this.options.log(message);
  }
}
