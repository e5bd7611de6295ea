// The client when the ledger is unreachable, driven by a fault proxy and by killing
// processes: fail-closed denies, fail-open allows within its budget and spools, and
// recovery replays with zero duplicates and zero loss (counted in the database).
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { FailurePolicy } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BurndownClient, createBurndownClient } from "../src/client.js";
import { OfflineDeniedError } from "../src/errors.js";
import { type AttemptRecorder, attemptRecorder } from "../../test-support/attempt-recorder.js";
import { FaultProxy } from "../../test-support/fault-proxy.js";
import { startLedgerFixture, type LedgerFixture } from "../../test-support/ledger-fixture.js";
import { quietPort } from "../../test-support/ports.js";
import { startServerProcess } from "../../test-support/server-process.js";

let f: LedgerFixture;
let directory: string;
const quickRetries = { attemptsMax: 2, backoffMsInitial: 5, backoffMsMax: 10, deadlineMs: 2_000 };
const breaker = { volumeThreshold: 2, errorPercentThreshold: 50, resetTimeoutMs: 60_000, rollingWindowMs: 60_000 };

beforeAll(async () => {
  f = await startLedgerFixture();
  directory = await mkdtemp(path.join(os.tmpdir(), "burndown-resilience-"));
  await chmod(directory, 0o755);
});
afterAll(async () => {
  await f.close();
  await rm(directory, { recursive: true, force: true });
});

async function usageOf(customerId: string): Promise<{ events: number; offline: number; credits: bigint }> {
  const result = await f.t.database.pool.query(
    `select count(*)::int as events, count(*) filter (where offline)::int as offline, coalesce(sum(credits), 0)::text as credits
     from usage_events where customer_id = $1`,
    [customerId],
  );
  return { events: result.rows[0].events, offline: result.rows[0].offline, credits: BigInt(result.rows[0].credits) };
}

async function setPolicy(featureKey: string, policy: FailurePolicy, creditsMax = 0n): Promise<void> {
  await f.t.clients(f.t.adminToken).admin.setFailurePolicy({ featureKey, failurePolicy: policy, offlineBudget: { creditsMax }, reason: "test", requestId: randomUUID() });
}

function clientThrough(proxy: FaultProxy, spoolPath?: string, recorder?: AttemptRecorder): BurndownClient {
  return createBurndownClient({
    baseUrl: proxy.url,
    apiKey: f.serviceToken,
    timeoutMs: 500,
    retry: quickRetries,
    onError: () => {},
    attemptInterceptors: recorder ? [recorder.interceptor] : [],
    resilience: { breaker, spoolPath, spoolDrainIntervalMs: 60_000 },
  });
}

describe("fail closed", () => {
  it.each([
    { fault: "connections reset", mode: { kind: "reset" } as const },
    { fault: "a blackhole (attempts time out)", mode: { kind: "blackhole" } as const },
    { fault: "latency beyond the attempt timeout", mode: { kind: "latency", latencyMs: 2_000 } as const },
  ])("with $fault, denies with OfflineDeniedError FAIL_CLOSED without running the action, then fails fast once the breaker opens", async ({ mode }) => {
    await setPolicy(f.featureKey, FailurePolicy.FAIL_CLOSED);
    const proxy = await FaultProxy.start(f.t.server.grpcUrl);
    const recorder = attemptRecorder();
    const client = clientThrough(proxy, undefined, recorder);
    try {
      expect(await client.refreshPolicies()).toBe(true);
      const customerId = await f.customer(100n);
      proxy.setMode(mode);
      let ran = 0;
      for (let i = 0; i < 3; i++) {
        const denied = await client.withCredits({ customerId, featureKey: f.featureKey, quantity: 1n }, async () => ++ran).catch((error: unknown) => error);
        expect(denied).toBeInstanceOf(OfflineDeniedError);
        expect((denied as OfflineDeniedError).reason).toBe("FAIL_CLOSED");
      }
      expect(ran).toBe(0);
      // Open now: the next call is denied without a single attempt on the wire.
      const attemptsBefore = recorder.records.length;
      const fast = await client.withCredits({ customerId, featureKey: f.featureKey, quantity: 1n }, async () => ++ran).catch((error: unknown) => error);
      expect((fast as OfflineDeniedError).reason).toBe("FAIL_CLOSED");
      expect(recorder.records.length).toBe(attemptsBefore);
      expect((await f.balanceOf(customerId)).burned).toBe(0n);
    } finally {
      await client.close({ timeoutMs: 100 });
      await proxy.close();
    }
  });
});

describe("fail open", () => {
  it("allows within the offline budget, spools, denies past it, and replays every allowed action exactly once", async () => {
    await setPolicy(f.featureKey, FailurePolicy.FAIL_OPEN, 30n);
    const proxy = await FaultProxy.start(f.t.server.grpcUrl);
    const spoolPath = path.join(directory, `${randomUUID()}.spool`);
    const client = clientThrough(proxy, spoolPath);
    try {
      expect(await client.refreshPolicies()).toBe(true);
      const customerId = await f.customer(1_000n);
      proxy.setMode({ kind: "reset" });
      const outcomes: string[] = [];
      // Rate 2: each use of quantity 3 is 6 credits; the budget of 30 allows five.
      for (let i = 0; i < 6; i++) {
        const failing = i === 3;
        const outcome = await client
          .withCredits({ customerId, featureKey: f.featureKey, quantity: 3n }, async (hold) => {
            expect(hold.offline).toBe(true);
            if (failing) throw new Error("the action failed");
            return "ran";
          })
          .catch((error: unknown) => (error instanceof OfflineDeniedError ? error.reason : (error as Error).message));
        outcomes.push(outcome);
      }
      expect(outcomes).toEqual(["ran", "ran", "ran", "the action failed", "ran", "OFFLINE_BUDGET_EXCEEDED"]);
      expect(await usageOf(customerId)).toEqual({ events: 0, offline: 0, credits: 0n });

      proxy.setMode({ kind: "pass" });
      expect((await client.flush()).drained).toBe(true);
      expect(await usageOf(customerId)).toEqual({ events: 4, offline: 4, credits: 24n });
      expect((await f.balanceOf(customerId)).burned).toBe(24n);
      expect((await client.flush()).drained).toBe(true);
      expect(await usageOf(customerId)).toEqual({ events: 4, offline: 4, credits: 24n });
    } finally {
      await client.close({ timeoutMs: 1_000 });
      await proxy.close();
    }
  });
});

describe("killing the server", () => {
  it("fail-open survives a server SIGKILL and replays to the restarted server with zero loss and zero duplicates", async () => {
    await setPolicy(f.featureKey, FailurePolicy.FAIL_OPEN, 0n);
    // Below the ephemeral range: no other test's server can be handed these while this one is down.
    const [httpPort, grpcPort] = [await quietPort(), await quietPort()];
    const env = { DATABASE_URL: f.t.database.url, PORT: String(httpPort), GRPC_PORT: String(grpcPort), BURNDOWN_JOB_INTERVAL_MS: "0" };
    let server = await startServerProcess(env);
    const spoolPath = path.join(directory, `${randomUUID()}.spool`);
    const client = createBurndownClient({
      baseUrl: server.grpcUrl, apiKey: f.serviceToken, timeoutMs: 500, retry: quickRetries, onError: () => {},
      resilience: { breaker, spoolPath, spoolDrainIntervalMs: 60_000 },
    });
    try {
      expect(await client.refreshPolicies()).toBe(true);
      const customerId = await f.customer(10_000n);
      const online = 20;
      for (let i = 0; i < online; i++) await client.withCredits({ customerId, featureKey: f.featureKey, quantity: 1n }, async () => "ran");
      await server.stop("SIGKILL");
      const offline = 30;
      for (let i = 0; i < offline; i++) {
        await expect(client.withCredits({ customerId, featureKey: f.featureKey, quantity: 1n }, async () => "ran")).resolves.toBe("ran");
      }
      server = await startServerProcess(env);
      expect((await client.flush()).drained).toBe(true);
      const usage = await usageOf(customerId);
      expect(usage).toEqual({ events: offline, offline, credits: BigInt(offline) * f.featureRate });
      expect((await f.balanceOf(customerId)).burned).toBe(BigInt(online + offline) * f.featureRate);
    } finally {
      await client.close({ timeoutMs: 1_000 });
      await server.stop();
    }
  }, 120_000);
});

describe("killing the client", () => {
  it("usage accepted into the spool survives a SIGKILL of the client and is sent once by the next process", async () => {
    const spoolPath = path.join(directory, `${randomUUID()}.spool`);
    const customerId = await f.customer(1_000_000n);
    const proxy = await FaultProxy.start(f.t.server.grpcUrl);
    // The ledger answers nothing while the first process runs, so everything stays spooled.
    proxy.setMode({ kind: "blackhole" });
    const script = path.join(directory, `${randomUUID()}.mts`);
    await writeFile(script, `
      import { createBurndownClient } from ${JSON.stringify(path.resolve(import.meta.dirname, "../src/client.ts"))};
      const client = createBurndownClient({ baseUrl: ${JSON.stringify(proxy.url)}, apiKey: ${JSON.stringify(f.serviceToken)},
        timeoutMs: 200, onError: () => {}, resilience: { spoolPath: ${JSON.stringify(spoolPath)}, spoolDrainIntervalMs: 60_000 } });
      for (let i = 0; ; i++) {
        const receipt = client.reportUsage({ eventId: "kill-" + i, customerId: ${JSON.stringify(customerId)}, featureKey: ${JSON.stringify(f.featureKey)}, quantity: 1n });
        await receipt.durable;
        process.stdout.write("ok " + receipt.eventId + "\\n");
      }
    `);
    const child = spawn(process.execPath, ["--import", "tsx", script], { cwd: path.resolve(import.meta.dirname, ".."), stdio: ["ignore", "pipe", "inherit"] });
    const acknowledged: string[] = [];
    await new Promise<void>((resolve) => {
      readline.createInterface({ input: child.stdout! }).on("line", (line) => {
        acknowledged.push(line.slice(3));
        if (acknowledged.length === 300) child.kill("SIGKILL");
      });
      child.once("exit", () => resolve());
    });
    proxy.setMode({ kind: "pass" });
    const next = clientThrough(proxy, spoolPath);
    try {
      expect((await next.flush()).drained).toBe(true);
      const stored = await f.t.database.pool.query("select event_id from usage_events where customer_id = $1", [customerId]);
      const ids = stored.rows.map((row) => row.event_id as string);
      expect(new Set(ids).size).toBe(ids.length);
      expect(acknowledged.filter((id) => !ids.includes(id))).toEqual([]);
      expect((await f.balanceOf(customerId)).burned).toBe(BigInt(ids.length) * f.featureRate);
    } finally {
      await next.close({ timeoutMs: 1_000 });
      await proxy.close();
    }
  }, 120_000);
});
