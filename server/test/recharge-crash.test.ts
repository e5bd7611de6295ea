// A server killed with SIGKILL while it opens recharge orders, then started again: the
// burns that crossed the customers' thresholds flagged their balances in their own
// transactions, so every crossing still opens its order after the restart (the periodic
// pass finds the flags the dead process left), and none opens twice (the flag goes in
// the transaction that opens the order; one open recharge per balance in any case). Half
// the customers have their orders credited on creation: each such order gets its lot
// exactly once, also when the process died between opening the order and crediting it.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService, BillingService, type BurndownClient, createBurndownClient, GrantSource, LedgerService, WebhookService } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { newApiKeyToken } from "../src/service/api-keys.js";
import { bearer } from "../../test-support/bearer.js";
import { createTestDatabase, type TestDatabase } from "../../test-support/database.js";
import { invariantViolations } from "../../test-support/invariants.js";
import { type ServerProcess, startServerProcess } from "../../test-support/server-process.js";

const customersCount = 40;
const creditTypeId = "credits";
let database: TestDatabase;
let server: ServerProcess;
const token = newApiKeyToken();
// The periodic pass is what finds the flags a killed process left.
const env = () => ({ DATABASE_URL: database.serverUrl, BURNDOWN_ADMIN_KEY: token, BURNDOWN_JOB_INTERVAL_MS: "100" });

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startServerProcess(env());
}, 120_000);
afterAll(async () => {
  await server?.stop("SIGKILL");
  await database?.drop();
});

async function orderCounts(): Promise<Map<string, number>> {
  const { rows } = await database.pool.query("select customer_id, count(*)::int as n from topup_orders where origin = 'recharge' group by customer_id");
  return new Map(rows.map((row) => [row.customer_id as string, row.n as number]));
}

describe("the server killed while opening recharge orders", () => {
  it(`${customersCount} customers crossing their thresholds across a SIGKILL and restart: one order each, none lost, none doubled`, async () => {
    const transport = createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [bearer(token)] });
    await createClient(AdminService, transport).createCreditType({ creditType: { creditTypeId, displayName: "Credits", scale: 0 }, requestId: randomUUID() });
    await createClient(WebhookService, transport).createWebhookEndpoint({ url: "https://example.com/hooks", eventTypes: ["recharge.requested"], requestId: randomUUID() });
    const ledger = createClient(LedgerService, transport);
    const billing = createClient(BillingService, transport);
    const customers = Array.from({ length: customersCount }, (_, i) => `recharge-crash-${i}`);
    for (const [index, customerId] of customers.entries()) {
      await ledger.grant({ customerId, creditTypeId, amount: 1000n, source: GrantSource.PURCHASE, reasonCode: "seed", requestId: randomUUID() });
      await billing.setAutoRecharge({
        customerId,
        creditTypeId,
        enabled: true,
        threshold: 500n,
        item: { case: "amount", value: { creditTypeId, credits: 1000n, currency: "USD", priceMinor: 1000n } },
        creditOnCreation: index % 2 === 0,
        requestId: randomUUID(),
      });
    }
    const sdk: BurndownClient = createBurndownClient({
      baseUrl: server.grpcUrl,
      apiKey: token,
      timeoutMs: 2_000,
      retry: { attemptsMax: 20, deadlineMs: 90_000, backoffMsInitial: 50, backoffMsMax: 1_000 },
      onError: () => undefined,
    });
    // Each customer burns 600 in six calls, the customers one after another: crossings keep coming.
    let openedAtKill = -1;
    const burns = (async () => {
      for (const customerId of customers) {
        for (let i = 0; i < 6; i++) await sdk.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 100n } }, requestId: randomUUID() });
      }
    })();
    // Kill once a third of the customers have their order: the kicked job is busy with the next ones.
    const killer = (async () => {
      while ([...(await orderCounts()).values()].length < customersCount / 3) await sleep(2);
      openedAtKill = (await orderCounts()).size;
      await server.stop("SIGKILL");
      const ports = { PORT: new URL(server.httpUrl).port, GRPC_PORT: new URL(server.grpcUrl).port };
      await sleep(300);
      server = await startServerProcess({ ...env(), ...ports });
    })();
    await Promise.all([burns, killer]);
    await sdk.close({ timeoutMs: 2_000 });

    await vi.waitFor(async () => expect((await orderCounts()).size).toBe(customersCount), { timeout: 30_000, interval: 100 });
    const counts = await orderCounts();
    console.log(`recharge crash: ${openedAtKill} of ${customersCount} orders open at the SIGKILL`);
    expect(openedAtKill).toBeLessThan(customersCount);
    expect([...counts.entries()].filter(([, n]) => n !== 1)).toEqual([]);
    // Every order to credit on creation has its one lot, with its one grant entry.
    await vi.waitFor(
      async () => expect((await database.pool.query("select count(*)::int as n from topup_orders where credit_on_creation and grant_id is null")).rows[0].n).toBe(0),
      { timeout: 30_000, interval: 100 },
    );
    const lots = await database.pool.query(
      `select o.order_id, o.credit_on_creation, o.unpaid_credits::text, (select count(*)::int from grants g where g.note = 'top-up ' || o.order_id) as lots
       from topup_orders o where o.origin = 'recharge' order by o.customer_id`,
    );
    expect(lots.rows.filter((row) => row.lots !== (row.credit_on_creation ? 1 : 0))).toEqual([]);
    expect(lots.rows.filter((row) => row.credit_on_creation).map((row) => row.unpaid_credits)).toEqual(Array.from({ length: customersCount / 2 }, () => "1000"));
    const flags = await database.pool.query("select count(*)::int as n from recharge_due");
    expect(flags.rows[0].n).toBe(0);
    const events = await database.pool.query(
      "select payload->>'orderId' as order_id from webhook_events where type = 'recharge.requested' order by seq",
    );
    const orders = await database.pool.query("select order_id::text from topup_orders where origin = 'recharge' order by order_id");
    expect(events.rows.map((row) => row.order_id).sort()).toEqual(orders.rows.map((row) => row.order_id));
    expect(await invariantViolations(database.pool)).toEqual([]);
  }, 300_000);
});
