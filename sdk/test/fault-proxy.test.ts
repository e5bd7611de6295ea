// The fault proxy itself, in front of a loopback echo server: each mode does what client
// tests rely on, and bytes always keep their order.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FaultProxy, startFaultProxy } from "../../test-support/fault-proxy.js";

let echo: net.Server;
let echoUrl: string;

beforeAll(async () => {
  echo = net.createServer((socket) => {
    // The proxy resets the echo's side too when it resets a connection: expected here.
    socket.on("error", () => socket.destroy());
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", () => resolve()));
  echoUrl = `http://127.0.0.1:${(echo.address() as net.AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => echo.close(resolve));
});

interface Connection {
  socket: net.Socket;
  received: () => string;
  /** untilReceived resolves once the text received ends with text. */
  untilReceived: (text: string) => Promise<void>;
  /** closed resolves with the error code the socket closed with, or null for a clean close. */
  closed: Promise<string | null>;
}

async function connectTo(proxy: FaultProxy): Promise<Connection> {
  const socket = net.connect({ host: "127.0.0.1", port: proxy.port });
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  let text = "";
  const watchers = new Set<() => void>();
  socket.on("data", (chunk: Buffer) => {
    text += chunk.toString();
    for (const watcher of [...watchers]) watcher();
  });
  let failure: string | null = null;
  socket.on("error", (error: NodeJS.ErrnoException) => (failure = error.code ?? error.message));
  const closed = new Promise<string | null>((resolve) => socket.once("close", () => resolve(failure)));
  const untilReceived = (expected: string) =>
    new Promise<void>((resolve) => {
      const check = () => text.endsWith(expected) && (watchers.delete(check), resolve());
      watchers.add(check);
      check();
    });
  return { socket, received: () => text, untilReceived, closed };
}

async function withProxy(test: (proxy: FaultProxy) => Promise<void>): Promise<void> {
  const proxy = await startFaultProxy(echoUrl);
  try {
    await test(proxy);
  } finally {
    await proxy.close();
  }
}

describe("fault proxy", () => {
  it("pass forwards bytes both ways at once", () =>
    withProxy(async (proxy) => {
      const connection = await connectTo(proxy);
      connection.socket.write("hello");
      await connection.untilReceived("hello");
      expect(proxy.connectionsAccepted()).toBe(1);
    }));

  it("stall holds bytes until the mode changes, then releases them in order", () =>
    withProxy(async (proxy) => {
      const connection = await connectTo(proxy);
      proxy.setMode({ kind: "stall", direction: "downstream" });
      connection.socket.write("one,");
      await proxy.untilHeld("downstream", 4);
      connection.socket.write("two");
      await proxy.untilHeld("downstream", 7);
      expect(connection.received()).toBe("");
      proxy.setMode({ kind: "pass" });
      await connection.untilReceived("one,two");
    }));

  it("latency delays bytes by at least its time and keeps their order", () =>
    withProxy(async (proxy) => {
      const connection = await connectTo(proxy);
      proxy.setMode({ kind: "latency", latencyMs: 20, direction: "upstream" });
      const startedMs = Date.now();
      connection.socket.write("a");
      connection.socket.write("b");
      connection.socket.write("c");
      await connection.untilReceived("abc");
      expect(Date.now() - startedMs).toBeGreaterThanOrEqual(19);
    }));

  it("reset resets open connections and every new one", () =>
    withProxy(async (proxy) => {
      const open = await connectTo(proxy);
      proxy.setMode({ kind: "reset" });
      expect(await open.closed).toBe("ECONNRESET");
      const socket = net.connect({ host: "127.0.0.1", port: proxy.port });
      const code = await new Promise<string | undefined>((resolve) => socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code)));
      expect(code).toBe("ECONNRESET");
    }));

  it("blackhole swallows bytes, and leaving it resets the connections it corrupted", () =>
    withProxy(async (proxy) => {
      const connection = await connectTo(proxy);
      proxy.setMode({ kind: "blackhole" });
      connection.socket.write("lost");
      await proxy.until(() => proxy.droppedBytes() === 4);
      expect(proxy.heldBytes("upstream") + proxy.heldBytes("downstream")).toBe(0);
      proxy.setMode({ kind: "pass" });
      expect(await connection.closed).toBe("ECONNRESET");
      expect(connection.received()).toBe("");
    }));

  it("refuses a target that is not loopback", async () => {
    await expect(startFaultProxy("http://192.0.2.1:80")).rejects.toThrow(/not loopback/);
  });
});
