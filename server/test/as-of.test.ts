// GetBalance as of a past time, through the public clients on real PostgreSQL with a fake
// clock: a seeded random history (grants, some not yet effective and some expiring, burns,
// reservations committed and released, usage reported late, expiry job runs) checked at
// random (effective, record) pairs against an independent replay of the entries the test
// reads back with ListLedgerEntries; a late usage event as the difference between "as
// known then" and "as known now"; a lot past its expiry before the job recorded it; the
// entry history filtered and paged by both times; bad input; and who may ask.
import { randomUUID } from "node:crypto";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { type AsOfLot, type CreditBalance, EntryKind, errorInfoOf, GrantSource, type LedgerEntry, Role, UsageOutcome } from "@burndown/sdk";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runExpiryPass } from "../src/jobs/expiry-jobs.js";
import { invariantViolations } from "../../test-support/invariants.js";
import { type Clients, FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";
import { databaseSnapshot, errorOf } from "../../test-support/snapshot.js";

const creditTypeId = "credits";
const featureKey = "chat";
const minuteMs = 60_000;
const hourMs = 60 * minuteMs;

let t: TestServer;
let clock: FakeClock;
let admin: Clients;
let service: Clients;

beforeAll(async () => {
  clock = new FakeClock(Date.parse("2030-03-01T00:00:00Z"));
  t = await startTestServer({ clock });
  admin = t.clients(t.adminToken);
  service = t.clients(await t.createKey("service"));
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "Credits", scale: 0 }, requestId: randomUUID() });
  await admin.admin.createFeature({ feature: { featureKey, displayName: "Chat", creditTypeId, burnRate: 1n }, requestId: randomUUID() });
});
afterAll(async () => t?.close());

const ms = (timestamp: { seconds: bigint; nanos: number } | undefined) => (timestamp === undefined ? null : timestampMs(timestamp as never));

async function newCustomer(label: string): Promise<string> {
  const customerId = `${label}-${randomUUID()}`;
  await admin.admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
  return customerId;
}

async function grant(customerId: string, amount: bigint, lot: { effectiveAtMs?: number; expiresAtMs?: number } = {}) {
  const res = await admin.ledger.grant({
    customerId,
    creditTypeId,
    amount,
    source: GrantSource.PURCHASE,
    reasonCode: "purchase",
    effectiveTime: lot.effectiveAtMs === undefined ? undefined : timestampFromMs(lot.effectiveAtMs),
    expireTime: lot.expiresAtMs === undefined ? undefined : timestampFromMs(lot.expiresAtMs),
    requestId: randomUUID(),
  });
  return res.lot!;
}

async function report(customerId: string, quantity: bigint, eventAtMs: number) {
  const res = await service.ledger.reportUsage({ events: [{ eventId: randomUUID(), customerId, featureKey, quantity, eventTime: timestampFromMs(eventAtMs) }] });
  return res.results[0].outcome;
}

async function runExpiry(): Promise<void> {
  for (let pass = 0; pass < 20; pass++) {
    const done = await runExpiryPass(t.server.deps);
    expect(done.itemsFailed).toBe(0);
    if (done.reservationsExpired === 0 && done.balancesExpired === 0) return;
  }
  throw new Error("the expiry job still had work after 20 passes");
}

/** allEntries reads a customer's whole history, oldest first, page by page. */
async function allEntries(customerId: string, clients = admin): Promise<LedgerEntry[]> {
  const entries: LedgerEntry[] = [];
  let pageToken = "";
  for (let page = 0; page < 100; page++) {
    const res = await clients.ledger.listLedgerEntries({ customerId, pageSize: 7, pageToken });
    entries.push(...res.entries);
    pageToken = res.nextPageToken;
    if (pageToken === "") return entries.reverse();
  }
  throw new Error("more than 100 pages");
}

async function asOf(customerId: string, asOfMs: number, asRecordedMs?: number, clients = admin) {
  return clients.ledger.getBalance({
    customerId,
    asOfTime: timestampFromMs(asOfMs),
    asRecordedTime: asRecordedMs === undefined ? undefined : timestampFromMs(asRecordedMs),
  });
}

interface LotMeta {
  grantId: string;
  effectiveAtMs: number;
  expiresAtMs: number | null;
}

interface Replayed {
  available: bigint;
  granted: bigint;
  held: bigint;
  burned: bigint;
  expired: bigint;
  pending: bigint;
  debt: bigint;
  lots: Map<string, { remaining: bigint; held: bigint; expired: bigint; effective: boolean; pastExpiry: boolean }>;
}

/**
 * replay rebuilds a balance at (asOfMs, asRecordedMs) from the entries alone, by the rules
 * GetBalance documents: an entry counts when recorded by the record time and effective by
 * the effective time, a lot granted by then but effective later is pending, and the free
 * part of a lot past its expiry counts as expired whether or not its expiry was recorded.
 * It knows nothing of the server's code.
 */
function replay(entries: LedgerEntry[], lots: Map<string, LotMeta>, asOfMs: number, asRecordedMs: number): Replayed {
  const state: Replayed = { available: 0n, granted: 0n, held: 0n, burned: 0n, expired: 0n, pending: 0n, debt: 0n, lots: new Map() };
  const lotOf = (grantId: string) => state.lots.get(grantId)!;
  for (const entry of entries) {
    const recordedMs = ms(entry.recordTime)!;
    const effectiveMs = ms(entry.effectiveTime)!;
    const granting = entry.kind === EntryKind.GRANT || entry.kind === EntryKind.ROLLOVER_IN;
    if (recordedMs > asRecordedMs) continue;
    if (effectiveMs > asOfMs && !(granting && recordedMs <= asOfMs)) continue;
    const lot = entry.grantId === "" ? null : (state.lots.get(entry.grantId) ?? null);
    switch (entry.kind) {
      case EntryKind.GRANT:
      case EntryKind.ROLLOVER_IN:
        state.granted += entry.amount;
        state.lots.set(entry.grantId, { remaining: entry.amount, held: 0n, expired: 0n, effective: false, pastExpiry: false });
        break;
      case EntryKind.HOLD:
        state.held += entry.amount;
        if (lot) lot.held += entry.amount;
        break;
      case EntryKind.RELEASE:
        state.held -= entry.amount;
        if (lot) lot.held -= entry.amount;
        break;
      case EntryKind.BURN:
        state.burned += entry.amount;
        if (lot) lot.remaining -= entry.amount;
        else state.debt += entry.amount;
        break;
      case EntryKind.EXPIRE:
        state.expired += entry.amount;
        lotOf(entry.grantId).remaining -= entry.amount;
        lotOf(entry.grantId).expired += entry.amount;
        break;
      case EntryKind.UNEXPIRE:
        state.expired -= entry.amount;
        lotOf(entry.grantId).remaining += entry.amount;
        lotOf(entry.grantId).expired -= entry.amount;
        break;
      case EntryKind.VOID:
        state.granted -= entry.amount;
        lotOf(entry.grantId).remaining -= entry.amount;
        break;
      case EntryKind.REFUND:
        state.burned -= entry.amount;
        if (lot) lot.remaining += entry.amount;
        else state.debt -= entry.amount;
        break;
      default:
        throw new Error(`the history made an entry of kind ${EntryKind[entry.kind]} the replay does not expect`);
    }
  }
  for (const [grantId, lot] of state.lots) {
    const meta = lots.get(grantId)!;
    lot.effective = meta.effectiveAtMs <= asOfMs;
    lot.pastExpiry = meta.expiresAtMs !== null && meta.expiresAtMs <= asOfMs;
    const free = lot.remaining - lot.held;
    if (lot.pastExpiry && free > 0n) {
      state.expired += free;
      lot.expired += free;
      lot.remaining = lot.held;
    } else if (!lot.effective) {
      state.pending += free;
    }
  }
  state.available = state.granted - state.pending - state.burned - state.held - state.expired;
  return state;
}

function shown(balance: CreditBalance | undefined, lots: AsOfLot[]) {
  return {
    available: balance?.available ?? 0n,
    granted: balance?.granted ?? 0n,
    held: balance?.held ?? 0n,
    burned: balance?.burned ?? 0n,
    expired: balance?.expired ?? 0n,
    pending: balance?.pending ?? 0n,
    lots: new Map(lots.map((lot) => [lot.lot!.grantId, { remaining: lot.lot!.remaining, held: lot.lot!.held, expired: lot.expired, effective: lot.effective, pastExpiry: lot.pastExpiry }])),
  };
}

type Step =
  | { kind: "grant"; amount: bigint; startInMs: number; lastsMs: number | null }
  | { kind: "burn"; amount: bigint }
  | { kind: "reserve"; amount: bigint }
  | { kind: "resolve"; index: number; commitPercent: number | null }
  | { kind: "late usage"; quantity: bigint; lateMs: number }
  | { kind: "expiry job" }
  | { kind: "void"; index: number; percent: number }
  | { kind: "refund"; index: number; percent: number };

const grantArbitrary: fc.Arbitrary<Step> = fc.record({
  kind: fc.constant("grant" as const),
  amount: fc.bigInt(20n, 200n),
  startInMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3 * hourMs })),
  lastsMs: fc.option(fc.integer({ min: 10 * minuteMs, max: 4 * hourMs }), { nil: null }),
});

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: grantArbitrary, weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant("burn" as const), amount: fc.bigInt(1n, 40n) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("reserve" as const), amount: fc.bigInt(1n, 40n) }), weight: 3 },
  {
    arbitrary: fc.record({ kind: fc.constant("resolve" as const), index: fc.nat(), commitPercent: fc.option(fc.integer({ min: 0, max: 99 }), { nil: null }) }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant("late usage" as const), quantity: fc.bigInt(1n, 5n), lateMs: fc.integer({ min: 0, max: 2 * hourMs }) }), weight: 2 },
  { arbitrary: fc.constant({ kind: "expiry job" as const }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("void" as const), index: fc.nat(), percent: fc.integer({ min: 0, max: 100 }) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("refund" as const), index: fc.nat(), percent: fc.integer({ min: 1, max: 100 }) }), weight: 1 },
);

/** runStep applies one step of a history at the clock's time; refusals (too few credits) are part of the history. */
async function runStep(customerId: string, step: Step, lots: Map<string, LotMeta>, open: { id: string; amount: bigint }[], startMs: number): Promise<void> {
  const now = clock.ms;
  const cost = (amount: bigint) => ({ case: "credits" as const, value: { creditTypeId, amount } });
  const refusedAsUsed = (error: unknown) => {
    if (Code[(error as { code?: Code }).code ?? Code.Unknown] !== "FailedPrecondition") throw error;
  };
  const refusedForCredits = (error: unknown) => {
    if (errorInfoOf(error)?.reason !== "INSUFFICIENT_CREDITS") throw error;
  };
  switch (step.kind) {
    case "grant": {
      const effectiveAtMs = now + step.startInMs;
      const expiresAtMs = step.lastsMs === null ? undefined : effectiveAtMs + step.lastsMs;
      const lot = await grant(customerId, step.amount, { effectiveAtMs: step.startInMs === 0 ? undefined : effectiveAtMs, expiresAtMs });
      lots.set(lot.grantId, { grantId: lot.grantId, effectiveAtMs: ms(lot.effectiveTime)!, expiresAtMs: ms(lot.expireTime) });
      return;
    }
    case "burn":
      await service.ledger.burn({ customerId, cost: cost(step.amount), requestId: randomUUID() }).catch(refusedForCredits);
      return;
    case "reserve": {
      const res = await service.ledger.reserve({ customerId, cost: cost(step.amount), ttl: { seconds: 3_600n }, requestId: randomUUID() }).catch(refusedForCredits);
      if (res) open.push({ id: res.reservation!.reservationId, amount: step.amount });
      return;
    }
    case "resolve": {
      if (open.length === 0) return;
      const [reservation] = open.splice(step.index % open.length, 1);
      const expired = (error: unknown) => {
        if (errorInfoOf(error)?.reason !== "RESERVATION_EXPIRED" && errorInfoOf(error)?.reason !== "RESERVATION_NOT_HELD") throw error;
      };
      if (step.commitPercent === null) await service.ledger.release({ reservationId: reservation.id, requestId: randomUUID() }).catch(expired);
      else await service.ledger.commit({ reservationId: reservation.id, amount: (reservation.amount * BigInt(step.commitPercent)) / 100n, requestId: randomUUID() }).catch(expired);
      return;
    }
    case "late usage": {
      // Only what the customer clearly has: a usage event is never refused, so one beyond the
      // balance would draw on the overdraft, which this history leaves out.
      const [balance] = (await admin.ledger.getBalance({ customerId, creditTypeId })).balances;
      if ((balance?.available ?? 0n) < step.quantity * 4n) return;
      expect(await report(customerId, step.quantity, Math.max(startMs, now - step.lateMs))).toBe(UsageOutcome.BURNED);
      return;
    }
    case "expiry job":
      await runExpiry();
      return;
    case "void": {
      // All (0) or part of a lot's free credits; a lot with none free refuses, as a history may.
      const lotsNow = (await admin.ledger.getBalance({ customerId, creditTypeId })).balances.flatMap((balance) => balance.lots);
      if (lotsNow.length === 0) return;
      const lot = lotsNow[step.index % lotsNow.length];
      const amount = step.percent === 0 ? 0n : ((lot.remaining - lot.held) * BigInt(step.percent)) / 100n;
      if (amount === 0n && step.percent !== 0) return;
      await admin.corrections.voidGrant({ customerId, grantId: lot.grantId, amount, reasonCode: "history", requestId: randomUUID() }).catch(refusedAsUsed);
      return;
    }
    case "refund": {
      // Part of a charge, named by one of its burn entries: back to its lot, or as a new lot when that lot expired.
      const burns = (await admin.ledger.listLedgerEntries({ customerId, creditTypeId, kinds: [EntryKind.BURN], pageSize: 100 })).entries;
      if (burns.length === 0) return;
      const entry = burns[step.index % burns.length];
      const amount = (entry.amount * BigInt(step.percent) + 99n) / 100n;
      await admin.corrections.refundCharge({ customerId, charge: { charge: { case: "entryId", value: entry.entryId } }, amount, reasonCode: "history", requestId: randomUUID() }).catch(refusedAsUsed);
      for (const lot of (await admin.ledger.getBalance({ customerId, creditTypeId })).balances.flatMap((balance) => balance.lots)) {
        if (!lots.has(lot.grantId)) lots.set(lot.grantId, { grantId: lot.grantId, effectiveAtMs: ms(lot.effectiveTime)!, expiresAtMs: ms(lot.expireTime) });
      }
      return;
    }
  }
}

describe("GetBalance as of a time", () => {
  it("equals an independent replay of the entries at random effective and record times, for seeded random histories", async () => {
    const kindsSeen = new Set<string>();
    let pendingSeen = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.tuple(grantArbitrary, fc.array(stepArbitrary, { minLength: 8, maxLength: 24 })).map(([first, rest]) => [first, ...rest]),
        fc.array(fc.integer({ min: 0, max: 40 * minuteMs }), { minLength: 25, maxLength: 25 }),
        fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })), { minLength: 6, maxLength: 6 }),
        async (steps, waits, points) => {
          const customerId = await newCustomer("history");
          const startMs = clock.ms;
          const lots = new Map<string, LotMeta>();
          const open: { id: string; amount: bigint }[] = [];
          for (const [index, step] of steps.entries()) {
            await runStep(customerId, step, lots, open, startMs);
            clock.advance(waits[index]);
          }
          clock.advance(minuteMs);
          const entries = await allEntries(customerId);
          for (const entry of entries) kindsSeen.add(EntryKind[entry.kind]);
          const recordTimes = [...new Set(entries.map((entry) => ms(entry.recordTime)!))].sort((a, b) => a - b);
          const lastRecordedMs = recordTimes.at(-1) ?? Date.now();
          const checks: [number, number][] = [[clock.ms, lastRecordedMs]];
          for (const [effective, recorded] of points) {
            const asOfMs = Math.floor(startMs - minuteMs + effective * (clock.ms - startMs + minuteMs));
            // A record time just before, at or after one at which entries were recorded.
            const index = Math.floor(recorded * recordTimes.length);
            const asRecordedMs = recordTimes.length === 0 ? lastRecordedMs : recordTimes[Math.min(index, recordTimes.length - 1)] - (index % 2);
            checks.push([asOfMs, asRecordedMs]);
          }
          for (const [asOfMs, asRecordedMs] of checks) {
            const res = await asOf(customerId, asOfMs, asRecordedMs);
            const expected = replay(entries, lots, asOfMs, asRecordedMs);
            expect(expected.debt).toBe(0n);
            if (expected.pending > 0n) pendingSeen++;
            const { debt: _, ...expectedShown } = expected;
            expect(shown(res.balances[0], res.asOfLots), `as of ${new Date(asOfMs).toISOString()}, as recorded by ${new Date(asRecordedMs).toISOString()}`).toEqual(expectedShown);
            expect([ms(res.asOfTime), ms(res.asRecordedTime)]).toEqual([asOfMs, asRecordedMs]);
          }
          // As of now, as known now, the rebuilt balance is the stored one GetBalance reads.
          const now = (await admin.ledger.getBalance({ customerId })).balances;
          const rebuiltNow = (await asOf(customerId, clock.ms)).balances;
          expect(rebuiltNow.map((balance) => ({ ...balance, lots: balance.lots.map((lot) => lot.grantId) }))).toEqual(
            now.map((balance) => ({ ...balance, lots: balance.lots.map((lot) => lot.grantId) })),
          );
        },
      ),
      { seed: 20261207, numRuns: 10, endOnFailure: true },
    );
    // The histories were rich enough to mean something.
    expect(["BURN", "EXPIRE", "GRANT", "HOLD", "RELEASE", "UNEXPIRE", "VOID", "REFUND"].filter((kind) => !kindsSeen.has(kind)), "kinds the histories never made").toEqual([]);
    expect(pendingSeen).toBeGreaterThan(0);
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  }, 240_000);

  it("shows a usage event reported late as the difference between as known then and as known now", async () => {
    const customerId = await newCustomer("late");
    const lot = await grant(customerId, 100n);
    const eventAtMs = clock.ms;
    clock.advance(2 * hourMs);
    const knownThenMs = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 5)); // the database clock records the report after knownThenMs
    expect(await report(customerId, 30n, eventAtMs + minuteMs)).toBe(UsageOutcome.BURNED);
    const asOfMs = eventAtMs + hourMs;

    const knownThen = await asOf(customerId, asOfMs, knownThenMs);
    const knownNow = await asOf(customerId, asOfMs);
    expect(knownThen.balances.map((b) => [b.available, b.burned])).toEqual([[100n, 0n]]);
    expect(knownNow.balances.map((b) => [b.available, b.burned])).toEqual([[70n, 30n]]);
    expect(knownNow.asOfLots.map((l) => [l.lot!.grantId, l.lot!.remaining, l.effective, l.pastExpiry])).toEqual([[lot.grantId, 70n, true, false]]);
    // Before the event happened, neither view has it.
    expect((await asOf(customerId, eventAtMs)).balances.map((b) => b.burned)).toEqual([0n]);
  });

  it("counts a lot past its expiry as expired before the expiry job recorded it, and lists lots pending then", async () => {
    const customerId = await newCustomer("lapsed");
    const startMs = clock.ms;
    const lapsing = await grant(customerId, 50n, { expiresAtMs: startMs + hourMs });
    const later = await grant(customerId, 20n, { effectiveAtMs: startMs + 3 * hourMs });
    await service.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 10n } }, requestId: randomUUID() });
    clock.advance(2 * hourMs);
    const beforeJobMs = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 5));
    await runExpiry();
    const expected = { available: 0n, granted: 70n, burned: 10n, expired: 40n, pending: 20n };
    for (const asRecordedMs of [beforeJobMs, undefined]) {
      const res = await asOf(customerId, startMs + 2 * hourMs, asRecordedMs);
      expect(res.balances[0]).toMatchObject(expected);
      expect(res.asOfLots.map((l) => [l.lot!.grantId, l.lot!.remaining, l.expired, l.effective, l.pastExpiry])).toEqual([
        [lapsing.grantId, 0n, 40n, true, true],
        [later.grantId, 20n, 0n, false, false],
      ]);
    }
    // Before its expiry, the lot was whole but for the burn.
    expect((await asOf(customerId, startMs + 30 * minuteMs)).balances[0]).toMatchObject({ available: 40n, expired: 0n, pending: 20n });
  });

  it("answers an empty list as known before the customer had any entry, and the fast path is unchanged without as_of_time", async () => {
    const customerId = await newCustomer("empty");
    const knownBeforeMs = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 5));
    await grant(customerId, 5n);
    const res = await asOf(customerId, clock.ms, knownBeforeMs);
    expect([res.balances, res.asOfLots]).toEqual([[], []]);
    const plain = await admin.ledger.getBalance({ customerId });
    expect([plain.asOfTime, plain.asRecordedTime, plain.asOfLots, plain.balances.map((b) => b.available)]).toEqual([undefined, undefined, [], [5n]]);
  });
});

describe("ListLedgerEntries by effective and record time", () => {
  it("filters by record time apart from effective time, shows both, and pages stably under its filters", async () => {
    const customerId = await newCustomer("history-times");
    const eventAtMs = clock.ms;
    await grant(customerId, 100n);
    clock.advance(hourMs);
    const firstRecordedMs = ms((await allEntries(customerId))[0].recordTime)!;
    await new Promise((resolve) => setTimeout(resolve, 5));
    const lateFromMs = Date.now();
    for (let index = 0; index < 5; index++) expect(await report(customerId, 1n, eventAtMs + index)).toBe(UsageOutcome.BURNED);
    const entries = await allEntries(customerId);
    const late = entries.filter((entry) => entry.kind === EntryKind.BURN);
    expect(late).toHaveLength(5);
    for (const entry of late) expect(ms(entry.recordTime)! - ms(entry.effectiveTime)!).toBeLessThan(0); // fake effective 2030, real record now
    expect(ms(entries[0].recordTime)).toBe(firstRecordedMs);

    // Effective in the first minute but recorded later: the late burns only.
    const filter = { customerId, startTime: timestampFromMs(eventAtMs), endTime: timestampFromMs(eventAtMs + minuteMs), recordStartTime: timestampFromMs(lateFromMs) };
    const first = await admin.ledger.listLedgerEntries({ ...filter, pageSize: 2 });
    const second = await admin.ledger.listLedgerEntries({ ...filter, pageSize: 2, pageToken: first.nextPageToken });
    await report(customerId, 1n, eventAtMs + 10); // a new entry between pages does not shift them
    const third = await admin.ledger.listLedgerEntries({ ...filter, pageSize: 2, pageToken: second.nextPageToken });
    const paged = [...first.entries, ...second.entries, ...third.entries].map((entry) => entry.entryId);
    expect(paged).toEqual(late.map((entry) => entry.entryId).reverse());
    expect(third.nextPageToken).toBe("");
    // Recorded before the late reports: the grant only.
    const before = await admin.ledger.listLedgerEntries({ customerId, recordEndTime: timestampFromMs(lateFromMs) });
    expect(before.entries.map((entry) => entry.kind)).toEqual([EntryKind.GRANT]);
    // A token is bound to its filters, record times included.
    const error = await errorOf(admin.ledger.listLedgerEntries({ ...filter, recordStartTime: timestampFromMs(lateFromMs - 1), pageSize: 2, pageToken: first.nextPageToken }));
    expect([Code[error.code], errorInfoOf(error)?.reason]).toEqual(["InvalidArgument", "INVALID_PAGE_TOKEN"]);
  });
});

describe("bad input and who may ask", () => {
  /** refused checks a call fails with a code and reason and changes nothing. */
  async function refused(call: () => Promise<unknown>, code: Code, reason: string, field?: string): Promise<void> {
    const before = await databaseSnapshot(t.database.pool);
    const error = await errorOf(call());
    expect([Code[error.code], errorInfoOf(error)?.reason]).toEqual([Code[code], reason]);
    if (field !== undefined) expect(errorInfoOf(error)?.metadata.field).toBe(field);
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
  }

  it("refuses times in the future, a record time without an effective time, and invalid timestamps", async () => {
    const customerId = await newCustomer("bad");
    await grant(customerId, 10n);
    await refused(() => asOf(customerId, clock.ms + 1), Code.InvalidArgument, "AS_OF_IN_FUTURE", "as_of_time");
    await refused(() => asOf(customerId, clock.ms, clock.ms + 1), Code.InvalidArgument, "AS_OF_IN_FUTURE", "as_recorded_time");
    await refused(() => admin.ledger.getBalance({ customerId, asRecordedTime: timestampFromMs(clock.ms) }), Code.InvalidArgument, "MISSING_FIELD", "as_of_time");
    await refused(() => admin.ledger.getBalance({ customerId, asOfTime: { seconds: 1n, nanos: -1 } }), Code.InvalidArgument, "INVALID_TIME", "as_of_time");
    await refused(() => admin.ledger.listLedgerEntries({ customerId, recordStartTime: { seconds: 253402300800n, nanos: 0 } }), Code.InvalidArgument, "INVALID_TIME", "record_start_time");
    await refused(() => asOf(`nobody-${randomUUID()}`, clock.ms), Code.NotFound, "CUSTOMER_NOT_FOUND");
  });

  it("lets a customer key ask about its own customer only, and refuses a call without a key", async () => {
    const customerId = await newCustomer("own");
    await grant(customerId, 10n);
    const created = await admin.admin.createApiKey({ name: "portal", role: Role.CUSTOMER, customerId, requestId: randomUUID() });
    const customer = t.clients(created.token);
    expect((await asOf(customerId, clock.ms, undefined, customer)).balances.map((b) => b.available)).toEqual([10n]);
    expect((await allEntries(customerId, customer)).map((entry) => entry.kind)).toEqual([EntryKind.GRANT]);
    const other = await newCustomer("other");
    await refused(() => asOf(other, clock.ms, undefined, customer), Code.NotFound, "CUSTOMER_NOT_FOUND");
    await refused(() => customer.ledger.listLedgerEntries({ customerId: other, recordStartTime: timestampFromMs(0) }), Code.NotFound, "CUSTOMER_NOT_FOUND");
    await refused(() => asOf(customerId, clock.ms, undefined, t.clients(null)), Code.Unauthenticated, "MISSING_API_KEY");
  });
});

describe("a settlement dated before the debt it repaid", () => {
  it("counts it only as far as there was debt then: the rest stays in its lot", async () => {
    // A lot becoming effective settles the debt standing then, dated at its effective time;
    // an overdraft burn reported later but effective after that time is that debt. Written
    // here directly, as the database's owner, with the projections kept equal to the entries.
    const customerId = await newCustomer("settle");
    const lot = await grant(customerId, 50n);
    const lotMs = ms(lot.effectiveTime)!;
    const owner = t.database.pool;
    const entry = `insert into ledger_entries (customer_id, credit_type_id, kind, amount, grant_id, actor, effective_at) values ($1, $2, $3, 20, $4, 'test', $5)`;
    await owner.query(entry, [customerId, creditTypeId, "burn", null, new Date(lotMs + 2 * minuteMs)]);
    await owner.query(entry, [customerId, creditTypeId, "settle", lot.grantId, new Date(lotMs)]);
    await owner.query("update balances set burned = burned + 20 where customer_id = $1", [customerId]);
    await owner.query("update grants set remaining = remaining - 20 where grant_id = $1", [lot.grantId]);
    expect((await admin.admin.verifyLedger({ customerId })).differenceCount).toBe(0n);
    clock.advance(5 * minuteMs);

    const between = await asOf(customerId, lotMs + minuteMs);
    expect(between.balances.map((b) => [b.available, b.burned])).toEqual([[50n, 0n]]);
    expect(between.asOfLots.map((l) => l.lot!.remaining)).toEqual([50n]);
    const after = await asOf(customerId, lotMs + 3 * minuteMs);
    expect(after.balances.map((b) => [b.available, b.burned])).toEqual([[30n, 20n]]);
    expect(after.asOfLots.map((l) => l.lot!.remaining)).toEqual([30n]);
  });
});
