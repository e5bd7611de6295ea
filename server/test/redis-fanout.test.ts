// Redis fan-out between two replicas on one database (REDIS_URL; skipped, loudly, without
// it). A revoked API key is refused by the other replica at once, not only when its cache
// entry expires; with Redis paused (a blackhole) or unavailable (connections reset) the
// ledger keeps working from PostgreSQL alone and a revocation falls back to the cache
// bound; when Redis returns, the replicas resync and fan-out works again. Time is frozen
// (FakeClock) so a key cache never expires unless the test moves the clock: a refusal
// while it stands still can only come from fan-out.
import { randomBytes, randomUUID } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService, GrantSource, LedgerService, Role } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalFanout, RedisFanout } from "../src/fanout.js";
import { limits } from "../src/limits.js";
import { type RunningServer, startServer } from "../src/server.js";
import { createPool } from "../src/store/database.js";
import { newApiKeyToken } from "../src/service/api-keys.js";
import { createTestDatabase } from "../../test-support/database.js";
import { quietPort } from "../../test-support/ports.js";
import { startServerProcess } from "../../test-support/server-process.js";
import { bearer } from "../../test-support/bearer.js";
import { FaultProxy } from "../../test-support/fault-proxy.js";
import { FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";

const redisUrl = process.env.REDIS_URL;
if (!redisUrl) console.warn("SKIPPED: REDIS_URL is not set, so the Redis fan-out tests (server/test/redis-fanout.test.ts) did not run");

const creditTypeId = "credits";

/** Replicas are two servers on one database, each with its own fan-out. */
interface Replicas {
  a: TestServer;
  b: RunningServer;
  fanoutA: LocalFanout;
  fanoutB: LocalFanout;
  clock: FakeClock;
  close: () => Promise<void>;
}

async function startReplicas(makeFanout: () => LocalFanout): Promise<Replicas> {
  const clock = new FakeClock();
  const fanoutA = makeFanout();
  const fanoutB = makeFanout();
  const a = await startTestServer({ clock, fanout: fanoutA });
  const poolB = createPool(a.database.serverUrl);
  const b = await startServer({ pool: poolB, host: "127.0.0.1", httpPort: 0, grpcPort: 0, jobIntervalMs: 0, now: clock.now, fanout: fanoutB, log: () => {} });
  await a.clients(a.adminToken).admin.createCreditType({ creditType: { creditTypeId, displayName: "Credits", scale: 0 }, requestId: randomUUID() });
  await a.clients(a.adminToken).ledger.grant({ customerId: "acme", creditTypeId, amount: 1n, source: GrantSource.PURCHASE, reasonCode: "seed", requestId: randomUUID() });
  return {
    a,
    b,
    fanoutA,
    fanoutB,
    clock,
    close: async () => {
      await b.close();
      await poolB.end();
      await a.close();
      await Promise.all([fanoutA.close(), fanoutB.close()]);
    },
  };
}

function clientsOf(server: { httpUrl: string }, token: string) {
  const transport = createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [bearer(token)] });
  return { ledger: createClient(LedgerService, transport), admin: createClient(AdminService, transport) };
}

/** works says whether a key is accepted (any answer but Unauthenticated). */
async function works(server: { httpUrl: string }, token: string): Promise<boolean> {
  try {
    await clientsOf(server, token).ledger.getBalance({ customerId: "acme", creditTypeId }, { timeoutMs: 5_000 });
    return true;
  } catch (error) {
    if (ConnectError.from(error).code === Code.Unauthenticated) return false;
    throw error;
  }
}

async function eventually(condition: () => Promise<boolean> | boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** revoke revokes a key through replica A. */
async function revoke(r: Replicas, token: string): Promise<void> {
  const keyId = token.split("_")[1];
  await r.a.clients(r.a.adminToken).admin.revokeApiKey({ keyId, requestId: randomUUID(), reason: "test" });
}

/** keyUsedOnBoth makes a service key and has both replicas cache it. */
async function keyUsedOnBoth(r: Replicas): Promise<string> {
  const token = await r.a.createKey("service");
  expect(await works(r.a.server, token)).toBe(true);
  expect(await works(r.b, token)).toBe(true);
  return token;
}

/** ledgerWorks runs a grant, a reserve and a commit on each replica: PostgreSQL alone carries them. */
async function ledgerWorks(r: Replicas): Promise<void> {
  for (const server of [r.a.server, r.b]) {
    const { ledger } = clientsOf(server, r.a.adminToken);
    const customerId = `cust-${randomUUID()}`;
    const options = { timeoutMs: 5_000 };
    await ledger.grant({ customerId, creditTypeId, amount: 100n, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() }, options);
    const held = await ledger.reserve({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 40n } }, requestId: randomUUID() }, options);
    await ledger.commit({ reservationId: held.reservation!.reservationId, amount: 25n, requestId: randomUUID() }, options);
    expect((await ledger.getBalance({ customerId, creditTypeId }, options)).balances[0].available).toBe(75n);
  }
}

describe("without Redis", () => {
  it("a key revoked on one replica still works on another until that replica's cache entry expires (the bound fan-out improves on)", async () => {
    const r = await startReplicas(() => new LocalFanout());
    try {
      const token = await keyUsedOnBoth(r);
      await revoke(r, token);
      expect(await works(r.a.server, token)).toBe(false);
      expect(await works(r.b, token)).toBe(true);
      r.clock.advance(limits.apiKeyCacheMsMax);
      expect(await works(r.b, token)).toBe(false);
    } finally {
      await r.close();
    }
  });

  it("a server whose REDIS_URL points at nothing starts and serves from PostgreSQL, saying so in its log", async () => {
    const database = await createTestDatabase();
    const token = newApiKeyToken();
    const server = await startServerProcess({ DATABASE_URL: database.url, REDIS_URL: `redis://127.0.0.1:${await quietPort()}`, BURNDOWN_ADMIN_KEY: token, BURNDOWN_JOB_INTERVAL_MS: "0" });
    try {
      const { admin, ledger } = clientsOf(server, token);
      await admin.createCreditType({ creditType: { creditTypeId, displayName: "Credits", scale: 0 }, requestId: randomUUID() });
      await ledger.grant({ customerId: "acme", creditTypeId, amount: 5n, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
      const other = (await admin.createApiKey({ name: "k", role: Role.SERVICE, requestId: randomUUID() })).token;
      expect(await works(server, other)).toBe(true);
      await admin.revokeApiKey({ keyId: other.split("_")[1], requestId: randomUUID(), reason: "test" });
      expect(await works(server, other)).toBe(false);
      expect(server.output.some((line) => /redis (publisher|subscriber): .*ECONNREFUSED/.test(line)), server.output.join("\n")).toBe(true);
    } finally {
      await server.stop("SIGTERM");
      await database.drop();
    }
  });
});

describe.skipIf(!redisUrl)("Redis fan-out", () => {
  let proxy: FaultProxy;
  let r: Replicas;
  const prefix = `burndown-test-${randomBytes(6).toString("hex")}`;

  beforeAll(async () => {
    const target = new URL(redisUrl!);
    proxy = await FaultProxy.start(`http://${target.hostname}:${target.port || 6379}`);
    const viaProxy = new URL(redisUrl!);
    viaProxy.hostname = "127.0.0.1";
    viaProxy.port = String(proxy.port);
    r = await startReplicas(() => {
      const fanout = new RedisFanout({ url: viaProxy.toString(), channelPrefix: prefix, publishTimeoutMs: 500, livenessIntervalMs: 200, log: () => {} });
      void fanout.start();
      return fanout;
    });
    await eventually(() => r.fanoutA.stats().resyncs > 0 && r.fanoutB.stats().resyncs > 0, "both replicas to subscribe");
  }, 120_000);

  afterAll(async () => {
    await r?.close();
    await proxy?.close();
  });

  it("a key revoked on one replica is refused by the other at once, with the clock standing still", async () => {
    const token = await keyUsedOnBoth(r);
    await revoke(r, token);
    expect(await works(r.a.server, token)).toBe(false);
    await eventually(async () => !(await works(r.b, token)), "replica B to refuse the revoked key");
    expect(r.fanoutB.stats().received).toBeGreaterThan(0);
  });

  it.each([
    ["paused (a blackhole: nothing answers)", { kind: "blackhole" as const }],
    ["unavailable (every connection reset)", { kind: "reset" as const }],
  ])("Redis %s: the ledger keeps working, a revocation holds within the cache bound, and fan-out resumes when Redis returns", async (_name, mode) => {
    const before = r.fanoutB.stats();
    const token = await keyUsedOnBoth(r);
    proxy.setMode(mode);
    try {
      await ledgerWorks(r);
      await revoke(r, token);
      // This replica knows at once; the other learns when its cache entry expires.
      expect(await works(r.a.server, token)).toBe(false);
      expect(await works(r.b, token)).toBe(true);
      r.clock.advance(limits.apiKeyCacheMsMax);
      expect(await works(r.b, token)).toBe(false);
      await ledgerWorks(r);
      // A paused Redis leaves the subscription looking open: its unanswered ping forces a reconnect.
      if (mode.kind === "blackhole") await eventually(() => r.fanoutB.stats().livenessFailed > before.livenessFailed, "replica B to notice the silent subscription");
    } finally {
      proxy.setMode({ kind: "pass" });
    }
    // The replicas reconnect, resubscribe and drop their caches (they may have missed revocations).
    await eventually(() => r.fanoutB.stats().resyncs > before.resyncs, "replica B to resubscribe", 15_000);
    await eventually(async () => {
      const next = await keyUsedOnBoth(r);
      await revoke(r, next);
      try {
        await eventually(async () => !(await works(r.b, next)), "fan-out after recovery", 1_000);
        return true;
      } catch {
        return false; // the publisher may still be reconnecting: try with another key
      }
    }, "fan-out to work again", 15_000);
  }, 60_000);
});
