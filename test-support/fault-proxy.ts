// A TCP proxy on loopback that sits in front of a server's port and misbehaves on
// demand: it delays bytes, stalls them until told, resets connections or swallows
// everything. Client tests use it to make a real server look slow or down without
// touching the server. Every buffer and count is bounded; both ends must be loopback.
import net from "node:net";

/** Direction is which way bytes flow: upstream is client to server, downstream server to client. */
export type Direction = "upstream" | "downstream" | "both";

/** FaultMode is how the proxy treats open and new connections. */
export type FaultMode =
  /** forward every byte at once. */
  | { kind: "pass" }
  /** forward bytes in order, each latencyMs late. */
  | { kind: "latency"; latencyMs: number; direction?: Direction }
  /** hold bytes until the mode changes, then forward them in order; for explicit synchronisation. */
  | { kind: "stall"; direction: Direction }
  /** reset (TCP RST) every open connection and each new one. */
  | { kind: "reset" }
  /** accept connections and drop every byte both ways; nothing ever answers. */
  | { kind: "blackhole" };

/** faultProxyLimits bound what a proxy holds. */
export const faultProxyLimits = {
  connectionsMax: 64,
  /** bytes held per connection and direction; past this the connection is reset. */
  heldBytesMax: 16 * 1024 * 1024,
  latencyMsMax: 60_000,
} as const;

type Way = "upstream" | "downstream";

/** A Pipe carries one direction of one connection, in order, through a queue. */
interface Pipe {
  from: net.Socket;
  to: net.Socket;
  way: Way;
  queue: { chunk: Buffer; releaseAtMs: number }[];
  queuedBytes: number;
  timer: NodeJS.Timeout | null;
  /** bytes were dropped, so the stream is corrupt and must not carry traffic again. */
  lost: boolean;
  /** the sender half-closed; the receiver is ended once the queue is empty. */
  ended: boolean;
}

function isLoopback(host: string): boolean {
  return ["127.0.0.1", "localhost", "::1", "[::1]"].includes(host);
}

function holds(mode: FaultMode, way: Way): boolean {
  if (mode.kind !== "latency" && mode.kind !== "stall") return false;
  const direction = mode.direction ?? "both";
  return direction === "both" || direction === way;
}

function resetBoth(pipe: Pipe): void {
  pipe.from.resetAndDestroy();
  pipe.to.resetAndDestroy();
}

/** FaultProxy is a running proxy in front of one loopback port. */
export class FaultProxy {
  private mode: FaultMode = { kind: "pass" };
  private accepted = 0;
  private dropped = 0;
  private readonly pipes = new Set<Pipe>();
  private readonly sockets = new Set<net.Socket>();
  private watchers: (() => void)[] = [];
  private readonly server = net.createServer((client) => this.accept(client));

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** start listens on a free loopback port and forwards to target, a loopback http URL. */
  static async start(target: string): Promise<FaultProxy> {
    const url = new URL(target);
    if (!isLoopback(url.hostname)) throw new Error(`fault proxy: target ${target} is not loopback`);
    const proxy = new FaultProxy(url.hostname.replace(/^\[|\]$/g, ""), Number(url.port));
    await new Promise<void>((resolve, reject) => {
      proxy.server.once("error", reject);
      proxy.server.listen(0, "127.0.0.1", () => resolve());
    });
    return proxy;
  }

  /** port is the port the proxy listens on. */
  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** url is http://127.0.0.1:<port>, to use as a client's baseUrl. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** connectionsAccepted counts the connections accepted so far. */
  connectionsAccepted(): number {
    return this.accepted;
  }

  /** heldBytes says how many bytes wait in one direction, across connections. */
  heldBytes(way: Way): number {
    let total = 0;
    for (const pipe of this.pipes) if (pipe.way === way) total += pipe.queuedBytes;
    return total;
  }

  /** droppedBytes counts the bytes blackhole mode swallowed. */
  droppedBytes(): number {
    return this.dropped;
  }

  /** until resolves once condition holds; it is checked whenever bytes arrive. */
  until(condition: () => boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const check = () => {
        if (!condition()) return;
        this.watchers = this.watchers.filter((watcher) => watcher !== check);
        resolve();
      };
      this.watchers.push(check);
      check();
    });
  }

  /** untilHeld resolves once at least minBytes wait in one direction. */
  untilHeld(way: Way, minBytes: number): Promise<void> {
    return this.until(() => this.heldBytes(way) >= minBytes);
  }

  /** setMode switches the mode for open and new connections; bytes no longer held are released in order. */
  setMode(mode: FaultMode): void {
    if (mode.kind === "latency" && !(mode.latencyMs >= 0 && mode.latencyMs <= faultProxyLimits.latencyMsMax)) {
      throw new Error(`fault proxy: latencyMs must be 0 to ${faultProxyLimits.latencyMsMax}`);
    }
    this.mode = mode;
    for (const pipe of [...this.pipes]) {
      if (mode.kind === "reset" || pipe.lost) {
        resetBoth(pipe);
      } else if (!(mode.kind === "stall" && holds(mode, pipe.way))) {
        for (const item of pipe.queue) if (!Number.isFinite(item.releaseAtMs)) item.releaseAtMs = Date.now();
        if (pipe.timer !== null) clearTimeout(pipe.timer);
        this.drain(pipe);
      }
    }
  }

  /** close stops listening and destroys every connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    // Errors on either end are the faults this proxy makes; the close handlers pass them on.
    socket.on("error", () => socket.destroy());
    socket.on("close", () => this.sockets.delete(socket));
  }

  private accept(client: net.Socket): void {
    this.accepted += 1;
    this.track(client);
    if (this.mode.kind === "reset" || this.sockets.size > faultProxyLimits.connectionsMax) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ host: this.targetHost, port: this.targetPort });
    this.track(upstream);
    this.connect(client, upstream, "upstream");
    this.connect(upstream, client, "downstream");
  }

  private connect(from: net.Socket, to: net.Socket, way: Way): void {
    const pipe: Pipe = { from, to, way, queue: [], queuedBytes: 0, timer: null, lost: false, ended: false };
    this.pipes.add(pipe);
    from.on("data", (chunk: Buffer) => this.receive(pipe, chunk));
    from.on("end", () => {
      pipe.ended = true;
      if (pipe.queue.length === 0) to.end();
    });
    from.on("close", (hadError: boolean) => {
      // After a clean close the queue still drains; drain() ends the other side.
      if (!hadError && pipe.queue.length > 0) return;
      if (pipe.timer !== null) clearTimeout(pipe.timer);
      this.pipes.delete(pipe);
      // A connection that dies passes the reset on to its other end.
      if (hadError && !to.destroyed) to.resetAndDestroy();
    });
  }

  private receive(pipe: Pipe, chunk: Buffer): void {
    if (this.mode.kind === "blackhole") {
      pipe.lost = true;
      this.dropped += chunk.length;
    } else if (pipe.queuedBytes + chunk.length > faultProxyLimits.heldBytesMax) {
      resetBoth(pipe);
    } else {
      pipe.queue.push({ chunk, releaseAtMs: this.releaseAtFor(pipe) });
      pipe.queuedBytes += chunk.length;
      if (pipe.timer === null) this.drain(pipe);
    }
    for (const watcher of [...this.watchers]) watcher();
  }

  private releaseAtFor(pipe: Pipe): number {
    if (!holds(this.mode, pipe.way)) return Date.now();
    if (this.mode.kind === "stall") return Number.POSITIVE_INFINITY;
    const latencyMs = this.mode.kind === "latency" ? this.mode.latencyMs : 0;
    // Bytes keep their order: a chunk never leaves before the one ahead of it.
    return Math.max(Date.now() + latencyMs, pipe.queue.at(-1)?.releaseAtMs ?? 0);
  }

  private drain(pipe: Pipe): void {
    pipe.timer = null;
    const nowMs = Date.now();
    while (pipe.queue.length > 0 && pipe.queue[0].releaseAtMs <= nowMs) {
      const { chunk } = pipe.queue.shift()!;
      pipe.queuedBytes -= chunk.length;
      if (!pipe.to.destroyed) pipe.to.write(chunk);
    }
    const next = pipe.queue[0];
    if (next === undefined && pipe.ended) {
      pipe.to.end();
      if (pipe.from.closed) this.pipes.delete(pipe);
    }
    if (next !== undefined && Number.isFinite(next.releaseAtMs)) pipe.timer = setTimeout(() => this.drain(pipe), next.releaseAtMs - nowMs);
  }
}

/** startFaultProxy starts a FaultProxy in front of target, a loopback http URL. */
export function startFaultProxy(target: string): Promise<FaultProxy> {
  return FaultProxy.start(target);
}
