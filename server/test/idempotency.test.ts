// Idempotency (AIP-155): a replay returns the first response and changes nothing; the
// same id with another payload is REQUEST_ID_REUSED; ids are scoped per API key; racing
// duplicates apply once; a rejected request does not use up its id.
import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { errorInfoOf, GrantSource } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invariantViolations } from "../../test-support/invariants.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";

let t: TestServer;
let serviceToken: string;

async function entryCount(): Promise<number> {
  const result = await t.database.pool.query("select count(*)::int as n from ledger_entries");
  return result.rows[0].n;
}

async function expectReason(call: Promise<unknown>, code: Code, reason: string): Promise<void> {
  const error = await call.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error, `expected ${reason}`).not.toBeNull();
  expect(ConnectError.from(error).code).toBe(code);
  expect(errorInfoOf(error)?.reason).toBe(reason);
}

const credits = (amount: bigint) => ({ case: "credits" as const, value: { creditTypeId: "api_credits", amount } });

async function fund(customerId: string, amount: bigint): Promise<void> {
  await t.clients(t.adminToken).ledger.grant({ customerId, creditTypeId: "api_credits", amount, source: GrantSource.PURCHASE, reasonCode: "test", requestId: randomUUID() });
}

beforeAll(async () => {
  t = await startTestServer();
  await t.clients(t.adminToken).admin.createCreditType({ creditType: { creditTypeId: "api_credits", displayName: "API", scale: 0 }, requestId: randomUUID() });
  serviceToken = await t.createKey("service");
});
afterAll(async () => t.close());

describe("replays", () => {
  it("a replayed grant returns the first response and adds no second lot", async () => {
    const { ledger } = t.clients(serviceToken);
    const request = { customerId: "replay-grant", creditTypeId: "api_credits", amount: 100n, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() };
    const first = await ledger.grant(request);
    const before = await entryCount();
    const again = await ledger.grant(request);
    expect(again).toEqual(first);
    expect(await entryCount()).toBe(before);
    expect((await ledger.getBalance({ customerId: "replay-grant" })).balances[0].granted).toBe(100n);
  });

  it("a replayed reserve returns the same reservation even after the credits are gone", async () => {
    const { ledger } = t.clients(serviceToken);
    await fund("replay-reserve", 100n);
    const request = { customerId: "replay-reserve", cost: credits(100n), requestId: randomUUID() };
    const first = await ledger.reserve(request);
    const before = await entryCount();
    const again = await ledger.reserve(request);
    expect(again.reservation?.reservationId).toBe(first.reservation?.reservationId);
    expect(again).toEqual(first);
    expect(await entryCount()).toBe(before);
  });

  it("a replayed commit returns the commit, not RESERVATION_NOT_HELD", async () => {
    const { ledger } = t.clients(serviceToken);
    await fund("replay-commit", 100n);
    const reserved = await ledger.reserve({ customerId: "replay-commit", cost: credits(60n), requestId: randomUUID() });
    const request = { reservationId: reserved.reservation!.reservationId, amount: 40n, requestId: randomUUID() };
    const first = await ledger.commit(request);
    const again = await ledger.commit(request);
    expect(again).toEqual(first);
    expect((await ledger.getBalance({ customerId: "replay-commit" })).balances[0]).toMatchObject({ burned: 40n, available: 60n });
  });

  it("a replayed burn and a replayed release change nothing", async () => {
    const { ledger } = t.clients(serviceToken);
    await fund("replay-burn", 100n);
    const burnRequest = { customerId: "replay-burn", cost: credits(30n), requestId: randomUUID() };
    expect(await ledger.burn(burnRequest)).toEqual(await ledger.burn(burnRequest));
    const reserved = await ledger.reserve({ customerId: "replay-burn", cost: credits(20n), requestId: randomUUID() });
    const releaseRequest = { reservationId: reserved.reservation!.reservationId, requestId: randomUUID() };
    expect(await ledger.release(releaseRequest)).toEqual(await ledger.release(releaseRequest));
    expect((await ledger.getBalance({ customerId: "replay-burn" })).balances[0]).toMatchObject({ burned: 30n, held: 0n, available: 70n });
  });

  it("a replayed CreateApiKey returns the key but never its secret again", async () => {
    const { admin } = t.clients(t.adminToken);
    const request = { name: "replayed", role: 1, requestId: randomUUID() };
    const first = await admin.createApiKey(request);
    const again = await admin.createApiKey(request);
    expect(first.token).toMatch(/^bd_/);
    expect(again.token).toBe("");
    expect(again.apiKey).toEqual(first.apiKey);
  });
});

describe("reuse with a different request", () => {
  it("the same id with a different amount is REQUEST_ID_REUSED and changes nothing", async () => {
    const { ledger } = t.clients(serviceToken);
    await fund("reuse", 1000n);
    const requestId = randomUUID();
    await ledger.burn({ customerId: "reuse", cost: credits(10n), requestId });
    const before = await entryCount();
    await expectReason(ledger.burn({ customerId: "reuse", cost: credits(11n), requestId }), Code.FailedPrecondition, "REQUEST_ID_REUSED");
    expect(await entryCount()).toBe(before);
  });

  it("the same id on another method is REQUEST_ID_REUSED", async () => {
    const { ledger } = t.clients(serviceToken);
    await fund("reuse-method", 1000n);
    const requestId = randomUUID();
    await ledger.burn({ customerId: "reuse-method", cost: credits(10n), requestId });
    await expectReason(ledger.reserve({ customerId: "reuse-method", cost: credits(10n), requestId }), Code.FailedPrecondition, "REQUEST_ID_REUSED");
  });
});

describe("scoping and rejections", () => {
  it("request ids are scoped per API key: two keys may use the same id independently", async () => {
    const otherToken = await t.createKey("service");
    await fund("scoped", 1000n);
    const requestId = randomUUID();
    const mine = await t.clients(serviceToken).ledger.burn({ customerId: "scoped", cost: credits(10n), requestId });
    const theirs = await t.clients(otherToken).ledger.burn({ customerId: "scoped", cost: credits(25n), requestId });
    expect(mine.amount).toBe(10n);
    expect(theirs.amount).toBe(25n);
    expect((await t.clients(serviceToken).ledger.getBalance({ customerId: "scoped" })).balances[0].burned).toBe(35n);
  });

  it("a rejected request does not use up its id: after a top-up the same id succeeds", async () => {
    const { ledger } = t.clients(serviceToken);
    await fund("rejected-first", 10n);
    const request = { customerId: "rejected-first", cost: credits(50n), requestId: randomUUID() };
    await expectReason(ledger.reserve(request), Code.FailedPrecondition, "INSUFFICIENT_CREDITS");
    await fund("rejected-first", 100n);
    const accepted = await ledger.reserve(request);
    expect(accepted.reservation?.amount).toBe(50n);
  });
});

describe("racing duplicates", () => {
  it("20 concurrent copies of one reserve hold once and all return the same reservation", async () => {
    const { ledger } = t.clients(serviceToken);
    await fund("race", 1000n);
    const request = { customerId: "race", cost: credits(100n), requestId: randomUUID() };
    const results = await Promise.all(Array.from({ length: 20 }, () => ledger.reserve(request)));
    expect(new Set(results.map((result) => result.reservation?.reservationId)).size).toBe(1);
    expect((await ledger.getBalance({ customerId: "race" })).balances[0]).toMatchObject({ held: 100n, available: 900n });
  });

  it("20 concurrent copies of one commit burn once", async () => {
    const { ledger } = t.clients(serviceToken);
    await fund("race-commit", 1000n);
    const reserved = await ledger.reserve({ customerId: "race-commit", cost: credits(100n), requestId: randomUUID() });
    const request = { reservationId: reserved.reservation!.reservationId, amount: 70n, requestId: randomUUID() };
    const results = await Promise.all(Array.from({ length: 20 }, () => ledger.commit(request)));
    expect(results.every((result) => result.reservation?.committedAmount === 70n)).toBe(true);
    expect((await ledger.getBalance({ customerId: "race-commit" })).balances[0]).toMatchObject({ burned: 70n, held: 0n, available: 930n });
  });

  it("concurrent copies with different payloads: exactly one applies, the rest are REQUEST_ID_REUSED", async () => {
    const { ledger } = t.clients(serviceToken);
    await fund("race-reuse", 1000n);
    const requestId = randomUUID();
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, (_, index) => ledger.burn({ customerId: "race-reuse", cost: credits(BigInt(index + 1)), requestId })));
    const applied = outcomes.filter((outcome) => outcome.status === "fulfilled");
    const amounts = new Set(applied.map((outcome) => (outcome as PromiseFulfilledResult<{ amount: bigint }>).value.amount));
    expect(amounts.size).toBe(1);
    for (const outcome of outcomes) {
      if (outcome.status === "rejected") expect(errorInfoOf(outcome.reason)?.reason).toBe("REQUEST_ID_REUSED");
    }
    expect((await ledger.getBalance({ customerId: "race-reuse" })).balances[0].burned).toBe([...amounts][0]);
  });

  it("leaves every ledger invariant intact", async () => {
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });
});
