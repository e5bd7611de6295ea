// The ledger's self-check on real PostgreSQL: a ledger written through the API checks
// clean; a balance corrupted directly in SQL (as the database owner, in this file's scratch
// database, as verify-ledger.test.ts does) is found by the next run, which says so in its
// metrics (scraped over HTTP) and in one log line naming the difference, and leaves the
// row as it found it. The sample starts with the customers this replica wrote last.
import { randomUUID } from "node:crypto";
import { GrantSource } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { runSelfCheck, sampleCustomers } from "../src/jobs/self-check.js";
import { startServer } from "../src/server.js";
import { createPool, endPool } from "../src/store/database.js";
import { type Clients, startTestServer, type TestServer } from "../../test-support/server.js";

const creditTypeId = "checked_credits";

let t: TestServer;
let admin: Clients;

beforeAll(async () => {
  t = await startTestServer();
  admin = t.clients(t.adminToken);
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "Checked", scale: 0 }, requestId: randomUUID() });
});
afterAll(async () => t?.close());

/** customerWithHistory makes a customer with a lot, a committed reservation and a burn, through the API. */
async function customerWithHistory(label: string): Promise<string> {
  const customerId = `${label}-${randomUUID()}`;
  const cost = (amount: bigint) => ({ case: "credits" as const, value: { creditTypeId, amount } });
  await admin.ledger.grant({ customerId, creditTypeId, amount: 100n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
  const reservation = (await admin.ledger.reserve({ customerId, cost: cost(20n), requestId: randomUUID() })).reservation!;
  await admin.ledger.commit({ reservationId: reservation.reservationId, amount: 15n, requestId: randomUUID() });
  await admin.ledger.burn({ customerId, cost: cost(10n), requestId: randomUUID() });
  return customerId;
}

/** scrapeValue reads one sample's value from GET /metrics (NaN when absent). */
async function scrapeValue(name: string, labels = ""): Promise<number> {
  const text = await (await fetch(`${t.server.httpUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("the ledger self-check", () => {
  it("checks a clean ledger clean, recording the run and its customers", async () => {
    const customers = [await customerWithHistory("clean"), await customerWithHistory("clean")];
    const lines: string[] = [];
    const result = await runSelfCheck(t.server.deps.pool, t.server.metrics, 100, (line) => lines.push(line));
    expect(result?.differences).toBe(0n);
    expect(result?.customerIds).toEqual(expect.arrayContaining(customers));
    expect(lines).toEqual([expect.stringMatching(/^self-check: verified \d+ customers \(\d+ entries\) in \d+ ms: no differences$/)]);
    expect(await scrapeValue("burndown_self_check_runs_total", '{result="clean"}')).toBe(1);
    expect(await scrapeValue("burndown_self_check_last_customers_checked")).toBe(result!.customerIds.length);
    expect(await scrapeValue("burndown_self_check_last_differences")).toBe(0);
    expect(await scrapeValue("burndown_self_check_last_run_timestamp_seconds")).toBeGreaterThan(Date.now() / 1_000 - 60);
  });

  it("samples the customers written last first", async () => {
    await customerWithHistory("older");
    const newest = await customerWithHistory("newest");
    expect(t.server.metrics.recentCustomers()[0]).toBe(newest);
    expect(await sampleCustomers(t.server.deps.pool, t.server.metrics.recentCustomers(), 1)).toEqual([newest]);
  });

  it("finds a corrupted balance, says so in its metrics and one log line, and changes nothing", async () => {
    const customerId = await customerWithHistory("corrupt");
    const owner = t.database.pool;
    await owner.query("update balances set burned = burned + 1 where customer_id = $1", [customerId]);
    const rowOf = async () => (await owner.query("select * from balances where customer_id = $1", [customerId])).rows;
    const corrupted = await rowOf();
    const differencesBefore = await scrapeValue("burndown_self_check_differences_total");
    const lines: string[] = [];
    try {
      // A sample of one is the customer written last: this one.
      const result = await runSelfCheck(t.server.deps.pool, t.server.metrics, 1, (line) => lines.push(line));
      expect(result?.customerIds).toEqual([customerId]);
      expect(result?.differences).toBe(1n);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^self-check: verified 1 customers \(\d+ entries\) in \d+ ms: ALERT 1 differences, nothing changed/);
      expect(lines[0]).toContain(`balances ${customerId}`);
      expect(lines[0]).toMatch(/burned stored 26 rebuilt from entries 25/);
      expect(await scrapeValue("burndown_self_check_runs_total", '{result="differences"}')).toBe(1);
      expect(await scrapeValue("burndown_self_check_last_differences")).toBe(1);
      expect(await scrapeValue("burndown_self_check_differences_total")).toBe(differencesBefore + 1);
      expect(await rowOf()).toEqual(corrupted);
    } finally {
      await owner.query("update balances set burned = burned - 1 where customer_id = $1", [customerId]);
    }
  });

  it("runs by itself every interval when the server is given one, and not otherwise", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const lines: string[] = [];
    const start = (selfCheck?: { intervalMs: number; sampleSize: number }) =>
      startServer({ pool: t.database.serverPool, host: "127.0.0.1", httpPort: 0, grpcPort: 0, jobIntervalMs: 0, log: (line) => lines.push(line), selfCheck });
    const [off, on] = [await start(), await start({ intervalMs: 60_000, sampleSize: 5 })];
    try {
      const runs = async (server: typeof on) => (await server.metrics.registry.getSingleMetric("burndown_self_check_runs_total")!.get()).values.reduce((total, v) => total + v.value, 0);
      vi.advanceTimersByTime(59_999);
      expect(lines.filter((line) => line.startsWith("self-check:"))).toEqual([]);
      vi.advanceTimersByTime(1);
      await vi.waitFor(() => expect(lines.filter((line) => line.startsWith("self-check:"))).toHaveLength(1), { timeout: 10_000 });
      expect(lines.find((line) => line.startsWith("self-check:"))).toMatch(/^self-check: verified [1-5] customers .*: no differences$/);
      expect([await runs(off), await runs(on)]).toEqual([0, 1]);
    } finally {
      vi.useRealTimers();
      await Promise.all([off.close(), on.close()]);
    }
  });

  it("counts a run the database could not finish as failed and logs it, without throwing", async () => {
    const url = new URL(t.database.serverUrl);
    url.pathname = `/no_such_database_${randomUUID().replaceAll("-", "")}`;
    const pool = createPool(url.toString());
    const failedBefore = await scrapeValue("burndown_self_check_runs_total", '{result="failed"}');
    const lines: string[] = [];
    try {
      expect(await runSelfCheck(pool, t.server.metrics, 10, (line) => lines.push(line))).toBeNull();
    } finally {
      await endPool(pool);
    }
    expect(lines).toEqual([expect.stringMatching(/^self-check: failed, trying again next interval: /)]);
    expect(await scrapeValue("burndown_self_check_runs_total", '{result="failed"}')).toBe(failedBefore + 1);
  });
});
