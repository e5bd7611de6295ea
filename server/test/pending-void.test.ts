// Pending voids through the contract, on real PostgreSQL: a void of a whole lot with a
// reservation on it voids the free part now and leaves the held part pending; the lot is
// then no longer burned or reserved from, what its reservations give back (release, a
// commit of less than held, expiry of the reservation) is voided in the change that gives
// it back, and what they commit still burns from it, even with many callers at once.
import { randomUUID } from "node:crypto";
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { EntryKind, errorInfoOf, GrantSource } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runExpiryPass } from "../src/jobs/expiry-jobs.js";
import { invariantViolations } from "../../test-support/invariants.js";
import { errorOf } from "../../test-support/snapshot.js";
import { type Clients, FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";

const creditTypeId = "pv_credits";
const minuteMs = 60_000;
const clock = new FakeClock(Date.parse("2030-06-01T00:00:00Z"));
let t: TestServer;
let admin: Clients;
let service: Clients;

async function customer(): Promise<string> {
  const customerId = `pv-${randomUUID().slice(0, 8)}`;
  await admin.admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
  return customerId;
}

async function grant(customerId: string, amount: bigint, priority = 0): Promise<string> {
  const res = await admin.ledger.grant({ customerId, creditTypeId, amount, source: GrantSource.PURCHASE, reasonCode: "buy", priority, requestId: randomUUID() });
  return res.lot!.grantId;
}

async function reserve(customerId: string, amount: bigint, ttlMs = 10 * minuteMs): Promise<string> {
  const res = await service.ledger.reserve({ customerId, cost: { case: "credits", value: { creditTypeId, amount } }, ttl: { seconds: BigInt(ttlMs / 1000) }, requestId: randomUUID() });
  return res.reservation!.reservationId;
}

const burn = (customerId: string, amount: bigint) => service.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount } }, requestId: randomUUID() });
const voidLot = (customerId: string, grantId: string) =>
  admin.corrections.voidGrant({ customerId, grantId, amount: 0n, reasonCode: "granted_by_mistake", requestId: randomUUID() });

async function balanceOf(customerId: string) {
  return (await admin.ledger.getBalance({ customerId, creditTypeId })).balances[0];
}

/** entriesOf lists a lot's entries after its grant: kind, amount, actor, reason code, reservation. */
async function entriesOf(grantId: string): Promise<[string, string, string, string, string | null][]> {
  const result = await t.database.pool.query(
    "select kind, amount::text, actor, reason_code, reservation_id::text from ledger_entries where grant_id = $1 and kind <> 'grant' order by entry_id",
    [grantId],
  );
  return result.rows.map((row) => [row.kind, row.amount, row.actor, row.reason_code, row.reservation_id]);
}

async function lotRow(grantId: string): Promise<{ remaining: string; held: string; voided: boolean }> {
  const result = await t.database.pool.query("select remaining::text, held::text, voided_at is not null as voided from grants where grant_id = $1", [grantId]);
  return result.rows[0];
}

/** voidedWithHold makes a customer with lot a (100, 30 of it reserved) voided whole, and lot b (20) after it. */
async function voidedWithHold(): Promise<{ customerId: string; a: string; b: string; reservationId: string }> {
  const customerId = await customer();
  const a = await grant(customerId, 100n, 0);
  const b = await grant(customerId, 20n, 1);
  const reservationId = await reserve(customerId, 30n);
  expect(await voidLot(customerId, a)).toMatchObject({ voided: 70n, held: 30n, pending: 30n, remaining: 30n });
  return { customerId, a, b, reservationId };
}

beforeAll(async () => {
  t = await startTestServer({ clock });
  admin = t.clients(t.adminToken);
  service = t.clients(await t.createKey("service"));
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "PV", scale: 0 }, requestId: randomUUID() });
});
afterAll(async () => {
  if (t) expect(await invariantViolations(t.database.pool)).toEqual([]);
  await t?.close();
});

describe("a void of a lot with a reservation on it", () => {
  it("voids the free part now, marks the lot voided, and GetBalance shows the held part pending", async () => {
    const { customerId, a, b } = await voidedWithHold();
    expect(await lotRow(a)).toEqual({ remaining: "30", held: "30", voided: true });
    const balance = await balanceOf(customerId);
    expect(balance).toMatchObject({ granted: 50n, held: 30n, available: 20n });
    const lots = new Map(balance.lots.map((lot) => [lot.grantId, lot]));
    expect(lots.get(a)).toMatchObject({ remaining: 30n, held: 30n, voidPending: 30n });
    expect(timestampDate(lots.get(a)!.voidTime!).getTime()).toBe(clock.ms);
    expect(lots.get(b)).toMatchObject({ remaining: 20n, voidPending: 0n });
    expect(lots.get(b)?.voidTime).toBeUndefined();
  });

  it("leaves the lot out of new burns and holds, even once its reservation gave credits back: they take other lots, or are refused when they would need it", async () => {
    const { customerId, a, b, reservationId } = await voidedWithHold();
    await service.ledger.release({ reservationId, requestId: randomUUID() });
    const refused = await errorOf(burn(customerId, 21n));
    expect(errorInfoOf(refused)?.reason).toBe("INSUFFICIENT_CREDITS");
    expect(errorInfoOf(await errorOf(reserve(customerId, 21n)))?.reason).toBe("INSUFFICIENT_CREDITS");
    const burned = await burn(customerId, 20n);
    expect(burned.entries.map((entry) => [entry.kind, entry.grantId, entry.amount])).toEqual([[EntryKind.BURN, b, 20n]]);
    expect(await entriesOf(a)).toEqual([
      ["hold", "30", expect.any(String), expect.any(String), reservationId],
      ["void", "70", expect.any(String), "granted_by_mistake", null],
      ["release", "30", expect.any(String), expect.any(String), reservationId],
      ["void", "30", "system", "lot_voided", reservationId],
    ]);
  });

  it("voids what a release gives back, in the same change: available does not move, the lot is empty", async () => {
    const { customerId, a, reservationId } = await voidedWithHold();
    const before = await balanceOf(customerId);
    await service.ledger.release({ reservationId, requestId: randomUUID() });
    expect(await balanceOf(customerId)).toMatchObject({ available: before.available, held: 0n, granted: 20n });
    expect((await entriesOf(a)).slice(2)).toEqual([
      ["release", "30", expect.any(String), expect.any(String), reservationId],
      ["void", "30", "system", "lot_voided", reservationId],
    ]);
    expect(await lotRow(a)).toEqual({ remaining: "0", held: "0", voided: true });
  });

  it("burns what a commit uses from the lot and voids the rest of its hold", async () => {
    const { customerId, a, reservationId } = await voidedWithHold();
    await service.ledger.commit({ reservationId, amount: 12n, requestId: randomUUID() });
    expect((await entriesOf(a)).slice(2).map(([kind, amount, actor]) => [kind, amount, actor === "system"])).toEqual([
      ["release", "30", false],
      ["burn", "12", false],
      ["void", "18", true],
    ]);
    expect(await balanceOf(customerId)).toMatchObject({ granted: 32n, burned: 12n, held: 0n, available: 20n });
    expect(await lotRow(a)).toEqual({ remaining: "0", held: "0", voided: true });
  });

  it("voids, and does not expire, what a reservation gives back when its time to live runs out", async () => {
    const { customerId, a, reservationId } = await voidedWithHold();
    clock.advance(11 * minuteMs);
    for (let pass = 0; pass < 5; pass++) {
      const done = await runExpiryPass(t.server.deps);
      expect(done.itemsFailed).toBe(0);
      if (done.reservationsExpired === 0 && done.balancesExpired === 0) break;
    }
    expect((await entriesOf(a)).slice(2)).toEqual([
      ["release", "30", expect.any(String), expect.any(String), reservationId],
      ["void", "30", "system", "lot_voided", reservationId],
    ]);
    expect(await balanceOf(customerId)).toMatchObject({ granted: 20n, expired: 0n, held: 0n, available: 20n });
  });
});

describe("a refund of a charge that burned from a voided lot", () => {
  it("comes back as a new lot (source adjustment, reason refund), not to the voided lot: the customer gets the credits", async () => {
    const customerId = await customer();
    const a = await grant(customerId, 100n);
    const burnRequestId = randomUUID();
    await service.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 10n } }, requestId: burnRequestId });
    const reservationId = await reserve(customerId, 30n);
    expect(await voidLot(customerId, a)).toMatchObject({ voided: 60n, pending: 30n });
    const before = await balanceOf(customerId);
    await admin.corrections.refundCharge({ customerId, charge: { charge: { case: "burnRequestId", value: burnRequestId } }, amount: 0n, reasonCode: "goodwill", requestId: randomUUID() });
    // The burn stays burned; the voided lot takes nothing back.
    expect(await balanceOf(customerId)).toMatchObject({ available: before.available + 10n, burned: 10n, granted: 50n, held: 30n });
    expect((await entriesOf(a)).map(([kind]) => kind)).not.toContain("refund");
    const lots = (await service.ledger.getBalance({ customerId, creditTypeId })).balances[0].lots;
    expect(lots.filter((lot) => lot.grantId !== a).map((lot) => [lot.amount, lot.source, lot.reasonCode])).toEqual([[10n, GrantSource.ADJUSTMENT, "refund"]]);
    await service.ledger.release({ reservationId, requestId: randomUUID() });
    expect(await lotRow(a)).toEqual({ remaining: "0", held: "0", voided: true });
  });
});

describe("a voided lot as of a past time", () => {
  it("is live with all its credits before its void, and shows its held part pending after it, until the release voids it", async () => {
    const customerId = await customer();
    const a = await grant(customerId, 100n);
    const reservationId = await reserve(customerId, 30n);
    clock.advance(minuteMs);
    const voidedAtMs = clock.ms;
    await voidLot(customerId, a);
    clock.advance(minuteMs);
    await service.ledger.release({ reservationId, requestId: randomUUID() });
    const asOf = async (atMs: number) => {
      const res = await admin.ledger.getBalance({ customerId, creditTypeId, asOfTime: timestampFromMs(atMs) });
      const lot = res.asOfLots.find((candidate) => candidate.lot?.grantId === a)?.lot;
      return { available: res.balances[0].available, granted: res.balances[0].granted, remaining: lot?.remaining, held: lot?.held, voidPending: lot?.voidPending };
    };
    expect(await asOf(voidedAtMs - 1)).toEqual({ available: 70n, granted: 100n, remaining: 100n, held: 30n, voidPending: 0n });
    expect(await asOf(voidedAtMs)).toEqual({ available: 0n, granted: 30n, remaining: 30n, held: 30n, voidPending: 30n });
    expect(await asOf(clock.ms)).toEqual({ available: 0n, granted: 0n, remaining: 0n, held: 0n, voidPending: 0n });
  });
});

describe("a voided lot under concurrency", () => {
  it("20 concurrent releases and commits of its reservations, racing burns on the balance: invariants hold, and it voids all it did not burn", async () => {
    const customerId = await customer();
    const a = await grant(customerId, 1_000n, 0);
    const b = await grant(customerId, 300n, 1);
    const reservations: string[] = [];
    for (let index = 0; index < 20; index++) reservations.push(await reserve(customerId, BigInt(10 + index * 3)));
    const heldTotal = reservations.reduce((sum, _, index) => sum + BigInt(10 + index * 3), 0n);
    expect(await voidLot(customerId, a)).toMatchObject({ voided: 1_000n - heldTotal, pending: heldTotal });
    const outcomes = await Promise.allSettled([
      ...reservations.map((reservationId, index) =>
        index % 2 === 0
          ? service.ledger.release({ reservationId, requestId: randomUUID() })
          : service.ledger.commit({ reservationId, amount: BigInt(index * 2), requestId: randomUUID() }),
      ),
      ...Array.from({ length: 20 }, () => burn(customerId, 20n)),
    ]);
    const failures = outcomes.flatMap((outcome) => (outcome.status === "rejected" ? [errorInfoOf(outcome.reason)?.reason] : []));
    // b holds 300: 15 burns of 20 fit, the other 5 need the voided lot and are refused.
    expect(failures).toEqual(Array.from({ length: 5 }, () => "INSUFFICIENT_CREDITS"));
    expect(await invariantViolations(t.database.pool)).toEqual([]);
    const sums = await t.database.pool.query(
      `select coalesce(sum(amount) filter (where kind = 'void'), 0)::text as voided, coalesce(sum(amount) filter (where kind = 'burn'), 0)::text as burned,
         coalesce(sum(amount) filter (where kind = 'expire'), 0)::text as expired from ledger_entries where grant_id = $1`,
      [a],
    );
    const committed = reservations.reduce((sum, _, index) => sum + (index % 2 === 1 ? BigInt(index * 2) : 0n), 0n);
    expect(sums.rows[0]).toEqual({ voided: String(1_000n - committed), burned: String(committed), expired: "0" });
    expect(BigInt(sums.rows[0].voided)).toBe(1_000n - BigInt(sums.rows[0].burned) - BigInt(sums.rows[0].expired));
    expect(await lotRow(a)).toEqual({ remaining: "0", held: "0", voided: true });
    expect(await lotRow(b)).toMatchObject({ remaining: "0", voided: false });
    expect(await balanceOf(customerId)).toMatchObject({ held: 0n, available: 0n, burned: committed + 300n });
  });
});
