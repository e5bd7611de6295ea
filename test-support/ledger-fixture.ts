// A real server with one credit type, one feature and a service key, for SDK client tests.
import { randomUUID } from "node:crypto";
import { type CreditBalance, EnforcementMode, GrantSource } from "@burndown/sdk";
import { startTestServer, type TestServer } from "./server.js";

/** LedgerFixture is a running server set up for client tests. */
export interface LedgerFixture {
  t: TestServer;
  /** a service key's token, what a product's SDK would use. */
  serviceToken: string;
  creditTypeId: string;
  /** a feature that burns featureRate credits per unit of quantity. */
  featureKey: string;
  featureRate: bigint;
  /** customer makes a customer with credits and returns its id. */
  customer: (credits: bigint) => Promise<string>;
  /** balanceOf reads a customer's balance straight from the server (no proxy, no client under test). */
  balanceOf: (customerId: string) => Promise<CreditBalance>;
  /** burnEntries counts the burn entries of a customer in the database. */
  burnEntries: (customerId: string) => Promise<number>;
  close: () => Promise<void>;
}

/** startLedgerFixture starts a server on a fresh database and sets it up. */
export async function startLedgerFixture(): Promise<LedgerFixture> {
  const t = await startTestServer();
  const creditTypeId = "api_credits";
  const featureKey = "chat";
  const featureRate = 2n;
  const { admin, ledger } = t.clients(t.adminToken);
  await admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 0 }, requestId: randomUUID() });
  await admin.createFeature({
    feature: { featureKey, displayName: featureKey, creditTypeId, burnRate: featureRate, enforcementMode: EnforcementMode.ENFORCE },
    requestId: randomUUID(),
  });
  const serviceToken = await t.createKey("service");
  return {
    t,
    serviceToken,
    creditTypeId,
    featureKey,
    featureRate,
    customer: async (credits) => {
      const customerId = `cust-${randomUUID()}`;
      await admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
      if (credits > 0n) await ledger.grant({ customerId, creditTypeId, amount: credits, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
      return customerId;
    },
    balanceOf: async (customerId) => {
      const { balances } = await ledger.getBalance({ customerId, creditTypeId });
      if (balances.length !== 1) throw new Error(`expected one balance for ${customerId}, got ${balances.length}`);
      return balances[0];
    },
    burnEntries: async (customerId) => {
      const result = await t.database.pool.query("select count(*)::int as n from ledger_entries where customer_id = $1 and kind = 'burn'", [customerId]);
      return result.rows[0].n as number;
    },
    close: () => t.close(),
  };
}
