// GetBalance as of a past time shows the overdraft limit of that time, as known at the
// record time asked: a limit takes effect when it is set, and its changes are read back
// from their audit records. Real clocks (no fake clock): a limit's change and the entries
// are both dated by the database, as in production.
import { randomUUID } from "node:crypto";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { GrantSource } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Clients, startTestServer, type TestServer } from "../../test-support/server.js";

const creditTypeId = "credits";
let t: TestServer;
let admin: Clients;

beforeAll(async () => {
  t = await startTestServer();
  admin = t.clients(t.adminToken);
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "Credits", scale: 0 }, requestId: randomUUID() });
});
afterAll(async () => t?.close());

/** tick waits a few milliseconds, so that a time taken around it falls between two recorded changes. */
const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

/** moment takes a time strictly between what was recorded before it and what is recorded after it. */
async function moment(): Promise<number> {
  await tick();
  const at = Date.now();
  await tick();
  return at;
}

const setLimit = (customerId: string, amount: bigint) =>
  admin.admin.setOverdraftLimit({ customerId, limit: { creditTypeId, amount }, reason: "credit line", requestId: randomUUID() });

async function balanceAt(customerId: string, asOfMs: number, asRecordedMs?: number): Promise<{ available: bigint; overdraftLimit: bigint }> {
  const { balances } = await admin.ledger.getBalance({
    customerId,
    creditTypeId,
    asOfTime: timestampFromMs(asOfMs),
    asRecordedTime: asRecordedMs === undefined ? undefined : timestampFromMs(asRecordedMs),
  });
  expect(balances).toHaveLength(1);
  return { available: balances[0].available, overdraftLimit: balances[0].overdraftLimit };
}

describe("GetBalance as of a past time", () => {
  it("shows the overdraft limit in effect then, not today's, and as known at the record time asked", async () => {
    const customerId = `overdraft-${randomUUID()}`;
    await admin.admin.createCustomer({ customer: { customerId, overdraftLimits: [{ creditTypeId, amount: 50n }] }, requestId: randomUUID() });
    await admin.ledger.grant({ customerId, creditTypeId, amount: 100n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
    const atStart = await moment();
    await setLimit(customerId, 500n);
    const afterRaise = await moment();
    await admin.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 300n } }, requestId: randomUUID() });
    const afterBurn = await moment();
    await setLimit(customerId, 1_000n);
    const afterSecondRaise = await moment();
    await setLimit(customerId, 250n);

    expect(await balanceAt(customerId, atStart)).toEqual({ available: 100n, overdraftLimit: 50n });
    expect(await balanceAt(customerId, afterRaise)).toEqual({ available: 100n, overdraftLimit: 500n });
    expect(await balanceAt(customerId, afterBurn)).toEqual({ available: -200n, overdraftLimit: 500n });
    expect(await balanceAt(customerId, afterSecondRaise)).toEqual({ available: -200n, overdraftLimit: 1_000n });
    // As known right after the first raise: the burn and the later changes were not recorded yet.
    expect(await balanceAt(customerId, afterSecondRaise, afterRaise)).toEqual({ available: 100n, overdraftLimit: 500n });
    // Now: the last change, in the rebuilt view as in the stored balance.
    expect(await balanceAt(customerId, await moment())).toEqual({ available: -200n, overdraftLimit: 250n });
    expect((await admin.ledger.getBalance({ customerId, creditTypeId })).balances[0].overdraftLimit).toBe(250n);
  });

  it("keeps each credit type's limit history apart", async () => {
    await admin.admin.createCreditType({ creditType: { creditTypeId: "other", displayName: "Other", scale: 0 }, requestId: randomUUID() });
    const customerId = `overdraft-${randomUUID()}`;
    await admin.admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
    await admin.ledger.grant({ customerId, creditTypeId, amount: 10n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
    const setOther = (amount: bigint) => admin.admin.setOverdraftLimit({ customerId, limit: { creditTypeId: "other", amount }, reason: "other line", requestId: randomUUID() });
    await setOther(70n);
    const before = await moment();
    // The first change after "before" is the other credit type's (old 70): it says nothing of this one's.
    await setOther(90n);
    await setLimit(customerId, 30n);
    expect(await balanceAt(customerId, before)).toEqual({ available: 10n, overdraftLimit: 0n });
    expect(await balanceAt(customerId, await moment())).toEqual({ available: 10n, overdraftLimit: 30n });
  });
});
