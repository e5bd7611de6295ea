// The catalog and customers the usage benches (report-usage.ts, queue-usage.ts) burn
// against: one credit type, one feature at a credit per unit, and customers each granted
// far more than a run can burn, so no event is refused for want of credits.
import { randomUUID } from "node:crypto";
import type { Client } from "@connectrpc/connect";
import { type AdminService, GrantSource, type LedgerService } from "@burndown/sdk";

export const benchFeatureKey = "tokens";

/** seedUsageCatalog creates the catalog and the customers, 64 grants at a time, and returns their ids. */
export async function seedUsageCatalog(ledger: Client<typeof LedgerService>, admin: Client<typeof AdminService>, customersCount: number): Promise<string[]> {
  await admin.createCreditType({ creditType: { creditTypeId: "ai_credits", displayName: "AI", scale: 0 }, requestId: randomUUID() });
  await admin.createFeature({ feature: { featureKey: benchFeatureKey, displayName: "Tokens", creditTypeId: "ai_credits", burnRate: 1n }, requestId: randomUUID() });
  const customers = Array.from({ length: customersCount }, (_, index) => `bench-${index}`);
  for (let start = 0; start < customers.length; start += 64) {
    await Promise.all(
      customers.slice(start, start + 64).map((customerId) =>
        ledger.grant({ customerId, creditTypeId: "ai_credits", amount: 1_000_000_000n, source: GrantSource.PURCHASE, reasonCode: "bench", requestId: randomUUID() }),
      ),
    );
  }
  return customers;
}
