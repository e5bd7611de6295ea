// PostgreSQL killed with SIGKILL (the postmaster and every backend, as an out-of-memory
// kill of its container would) during a stream of acknowledged writes, then started again
// on the same data directory: crash recovery must keep every acknowledged write, the
// server must reconnect by itself, and callers must see Unavailable (which the SDK
// retries with the same request id), never a wrong answer. A throwaway embedded cluster,
// so the machine's PostgreSQL is never touched.
//   BURNDOWN_DB_CRASH_OPS=5000 npx vitest run server/test/database-crash.test.ts   (the long profile)
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService, type BurndownClient, createBurndownClient, GrantSource, LedgerService } from "@burndown/sdk";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newApiKeyToken } from "../src/service/api-keys.js";
import { type EmbeddedDatabase, startEmbeddedDatabase } from "../src/store/embedded-database.js";
import { sharedTransactions } from "../../test-support/groups.js";
import { invariantViolations } from "../../test-support/invariants.js";
import { quietPort } from "../../test-support/ports.js";
import { bearer } from "../../test-support/bearer.js";
import { type ServerProcess, startServerProcess } from "../../test-support/server-process.js";

const operationsCount = Number(process.env.BURNDOWN_DB_CRASH_OPS ?? 400);
const callersCount = 8;
const creditTypeId = "credits";
const dataDir = path.join(os.tmpdir(), `burndown-db-crash-${process.pid}-${Date.now()}`);
const token = newApiKeyToken();
let port: number;
let cluster: EmbeddedDatabase;
let server: ServerProcess;

/** killCluster SIGKILLs the postmaster and all its children at once. */
function killCluster(): number {
  const postmaster = Number(readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  const children = execFileSync("ps", ["-o", "pid=", "--ppid", String(postmaster)], { encoding: "utf8" }).split("\n").map(Number).filter((pid) => pid > 0);
  for (const pid of [postmaster, ...children]) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  return 1 + children.length;
}

beforeAll(async () => {
  port = await quietPort();
  cluster = await startEmbeddedDatabase({ dataDir, port, persistent: true });
  server = await startServerProcess({ DATABASE_URL: cluster.url, BURNDOWN_ADMIN_KEY: token, BURNDOWN_JOB_INTERVAL_MS: "0" });
}, 180_000);

afterAll(async () => {
  await server?.stop("SIGKILL");
  await cluster?.stop().catch(() => undefined);
  rmSync(dataDir, { recursive: true, force: true });
});

describe("PostgreSQL killed under acknowledged writes", () => {
  it(`${operationsCount} burns across a SIGKILL of the whole cluster and its recovery: none lost, none doubled, only Unavailable seen`, async () => {
    const auth = bearer(token);
    const transport = createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [auth] });
    await createClient(AdminService, transport).createCreditType({ creditType: { creditTypeId, displayName: "Credits", scale: 0 }, requestId: randomUUID() });
    const ledger = createClient(LedgerService, transport);
    const customers = Array.from({ length: 20 }, (_, i) => `db-crash-${i}`);
    for (const customerId of customers) {
      await ledger.grant({ customerId, creditTypeId, amount: 1_000_000_000n, source: GrantSource.PURCHASE, reasonCode: "seed", requestId: randomUUID() });
    }

    // Every failed attempt, by code: what callers saw while the database was away.
    const attemptFailures: Record<string, number> = {};
    const sdk: BurndownClient = createBurndownClient({
      baseUrl: server.grpcUrl,
      apiKey: token,
      timeoutMs: 3_000,
      retry: { attemptsMax: 20, deadlineMs: 120_000, backoffMsInitial: 50, backoffMsMax: 1_000 },
      attemptInterceptors: [
        (next) => async (attempt) => {
          try {
            return await next(attempt);
          } catch (error) {
            const code = Code[ConnectError.from(error).code];
            attemptFailures[code] = (attemptFailures[code] ?? 0) + 1;
            throw error;
          }
        },
      ],
      onError: () => undefined,
    });
    const records: { requestId: string; amount: bigint; acknowledged: boolean }[] = [];
    let started = 0;
    let finished = 0;
    const caller = async () => {
      while (started < operationsCount) {
        const index = started++;
        const record = { requestId: randomUUID(), amount: BigInt(1 + (index % 5)), acknowledged: false };
        records.push(record);
        try {
          await sdk.burn({ customerId: customers[index % customers.length], cost: { case: "credits", value: { creditTypeId, amount: record.amount } }, requestId: record.requestId });
          record.acknowledged = true;
        } catch {
          // outcome unknown after every retry
        }
        finished++;
      }
    };
    let killed = 0;
    let inFlightAtKill = 0;
    const killer = (async () => {
      while (finished < operationsCount / 3) await sleep(5);
      inFlightAtKill = started - finished;
      killed = killCluster();
      await sleep(500);
      cluster = await startEmbeddedDatabase({ dataDir, port, persistent: true });
      // The restarted cluster itself answers (so a failure below is the server's, not the cluster's).
      const probe = new pg.Client({ connectionString: cluster.url });
      await probe.connect();
      await probe.query("select 1");
      await probe.end();
    })();
    await Promise.all([...Array.from({ length: callersCount }, caller), killer]);
    await sdk.close({ timeoutMs: 2_000 });

    const pool = new pg.Pool({ connectionString: cluster.url, max: 2 });
    try {
      const { rows } = await pool.query(
        "select request_id, count(*)::int as burns, sum(abs(amount))::text as burned from ledger_entries where kind = 'burn' and request_id = any($1::text[]) group by request_id",
        [records.map((record) => record.requestId)],
      );
      const applied = new Map(rows.map((row) => [row.request_id as string, { burns: row.burns as number, burned: BigInt(row.burned as string) }]));
      const acknowledged = records.filter((record) => record.acknowledged);
      const lost = acknowledged.filter((record) => !applied.has(record.requestId));
      const doubled = [...applied.values()].filter((effect) => effect.burns !== 1);
      const wrongAmount = records.filter((record) => applied.has(record.requestId) && applied.get(record.requestId)!.burned !== record.amount);
      console.log(
        `database crash: ${records.length} burns, ${killed} PostgreSQL processes killed with ${inFlightAtKill} burns in flight, ` +
          `${acknowledged.length} acknowledged, lost ${lost.length}, doubled ${doubled.length}, wrong amount ${wrongAmount.length}, attempt failures ${JSON.stringify(attemptFailures)}`,
      );
      expect(inFlightAtKill).toBeGreaterThan(0);
      expect(lost).toEqual([]);
      expect(doubled).toEqual([]);
      expect(wrongAmount).toEqual([]);
      expect(await invariantViolations(pool)).toEqual([]);
      // What was killed was group-committed traffic: transactions held several customers' entries.
      expect(await sharedTransactions(pool)).toBeGreaterThan(0);
      // The server reconnected by itself: every burn was answered in the end.
      const probe = await pool.query("select 1 as ok").then(() => "answers", (error: unknown) => String(error));
      expect(acknowledged.length, `the cluster ${probe}; the server said:\n${server.output.slice(-15).join("\n")}`).toBe(operationsCount);
      // While the database was away, callers saw only "try again": never a wrong answer.
      expect(Object.keys(attemptFailures).filter((code) => code !== "Unavailable" && code !== "DeadlineExceeded")).toEqual([]);
      expect(server.child.exitCode).toBeNull();
    } finally {
      await pool.end();
    }
  }, 300_000);
});
