// Table-driven tests of the balance model: the burn order, when a lot is live, pending
// or expired, what is available, and the one effect of each entry kind.
import { describe, expect, it } from "vitest";
import {
  applyEntry,
  availableOf,
  type BalanceState,
  cloneState,
  compareBurnOrder,
  isExpired,
  isLive,
  type LotState,
  type PlannedEntry,
  pendingOf,
} from "./balance-state.js";

/** nowMs is the fixed "now" of every case. */
const nowMs = 1_700_000_000_000;
const hourMs = 3_600_000;

function lot(grantId: string, options: Partial<Omit<LotState, "grantId">> = {}): LotState {
  return { grantId, remaining: 100n, held: 0n, expired: 0n, priority: 0, effectiveAtMs: nowMs - hourMs, expiresAtMs: null, seq: 0n, ...options };
}

/** eachCase declares one test per row, named by the guarantee the row shows. */
function eachCase<Row extends { name: string }>(rows: Row[], test: (row: Row) => void): void {
  for (const row of rows) it(row.name, () => test(row));
}

describe("compareBurnOrder", () => {
  eachCase([
    {
      name: "priority decides before expiry: a lower priority number comes first",
      lots: [lot("expires-soon", { priority: 1, expiresAtMs: nowMs + 1 }), lot("high-priority", { priority: 0, expiresAtMs: null })],
      order: ["high-priority", "expires-soon"],
    },
    {
      name: "within a priority the earliest expiry comes first",
      lots: [lot("later", { expiresAtMs: nowMs + 2 * hourMs }), lot("sooner", { expiresAtMs: nowMs + hourMs })],
      order: ["sooner", "later"],
    },
    {
      name: "a lot that never expires comes after every expiring lot",
      lots: [lot("never", { seq: 1n }), lot("far", { expiresAtMs: Number.MAX_SAFE_INTEGER, seq: 2n })],
      order: ["far", "never"],
    },
    {
      name: "with equal expiry the lot effective earliest comes first, whatever its seq",
      lots: [lot("newer", { effectiveAtMs: nowMs - 1, seq: 1n }), lot("older", { effectiveAtMs: nowMs - 2, seq: 2n })],
      order: ["older", "newer"],
    },
    {
      name: "with equal expiry and effective time the lower seq comes first",
      lots: [lot("second", { seq: 2n }), lot("third", { seq: 3n }), lot("first", { seq: 1n })],
      order: ["first", "second", "third"],
    },
    {
      name: "all three keys combine: priority, then expiry with never last, then age",
      lots: [
        lot("p1-never", { priority: 1, seq: 1n }),
        lot("p0-never-old", { effectiveAtMs: nowMs - 2 * hourMs, seq: 2n }),
        lot("p0-expiring", { expiresAtMs: nowMs + hourMs, seq: 3n }),
        lot("p0-never-new", { effectiveAtMs: nowMs - hourMs, seq: 4n }),
        lot("p1-expiring", { priority: 1, expiresAtMs: nowMs + 1, seq: 5n }),
      ],
      order: ["p0-expiring", "p0-never-old", "p0-never-new", "p1-expiring", "p1-never"],
    },
  ], ({ lots, order }) => {
    expect([...lots].sort(compareBurnOrder).map((each) => each.grantId)).toEqual(order);
    // The order must not depend on where the lots started.
    expect([...lots].reverse().sort(compareBurnOrder).map((each) => each.grantId)).toEqual(order);
  });
});

describe("isLive, isExpired and pendingOf", () => {
  eachCase([
    { name: "a lot effective before now and never expiring is live", effectiveAtMs: nowMs - 1, expiresAtMs: null, live: true, expired: false, pending: 0n },
    { name: "a lot becomes live at exactly its effective time", effectiveAtMs: nowMs, expiresAtMs: null, live: true, expired: false, pending: 0n },
    { name: "a lot one millisecond before its effective time is pending, not live", effectiveAtMs: nowMs + 1, expiresAtMs: null, live: false, expired: false, pending: 100n },
    { name: "a lot one millisecond before its expiry is still live", effectiveAtMs: nowMs - 1, expiresAtMs: nowMs + 1, live: true, expired: false, pending: 0n },
    { name: "a lot expires at exactly its expiry time", effectiveAtMs: nowMs - 1, expiresAtMs: nowMs, live: false, expired: true, pending: 0n },
  ], ({ effectiveAtMs, expiresAtMs, live, expired, pending }) => {
    const subject = lot("subject", { effectiveAtMs, expiresAtMs });
    expect(isLive(subject, nowMs)).toBe(live);
    expect(isExpired(subject, nowMs)).toBe(expired);
    expect(pendingOf({ ...emptyState(), granted: 100n, lots: [subject] }, nowMs)).toBe(pending);
  });

  it("a lot seen as pending by a replica whose clock runs behind counts only its free part as pending", () => {
    const pendingLot = lot("pending", { held: 10n, effectiveAtMs: nowMs + 1 });
    const state = { ...emptyState(), granted: pendingLot.remaining, held: 10n, lots: [pendingLot] };
    expect(pendingOf(state, nowMs)).toBe(pendingLot.remaining - 10n);
    expect(availableOf(state, nowMs)).toBe(0n);
  });
});

function emptyState(): BalanceState {
  return { granted: 0n, held: 0n, burned: 0n, expired: 0n, debt: 0n, overdraftHeld: 0n, overdraftLimit: 0n, lots: [] };
}

describe("availableOf", () => {
  eachCase([
    {
      name: "available is granted minus pending, burned, held and expired",
      state: {
        ...emptyState(),
        granted: 1000n,
        burned: 100n,
        held: 50n,
        expired: 25n,
        lots: [lot("pending", { remaining: 200n, effectiveAtMs: nowMs + hourMs }), lot("live", { remaining: 675n, held: 50n })],
      },
      available: 625n,
    },
    {
      name: "available goes negative by the debt and what is held on overdraft",
      state: { ...emptyState(), burned: 30n, debt: 30n, held: 20n, overdraftLimit: 100n },
      available: -50n,
    },
  ], ({ state, available }) => {
    expect(availableOf(state, nowMs)).toBe(available);
  });
});

describe("applyEntry", () => {
  /** before: a lot of 100 with 30 held, and 10 of debt burned on overdraft. */
  function before(): BalanceState {
    return { ...emptyState(), granted: 100n, held: 30n, burned: 10n, debt: 10n, lots: [lot("lot", { remaining: 100n, held: 30n })] };
  }

  eachCase([
    {
      name: "a grant raises granted only; the lot was created whole",
      entry: { kind: "grant", amount: 5n, grantId: "lot" },
      totals: { granted: 105n, held: 30n, burned: 10n, expired: 0n, debt: 10n },
      lotAfter: { remaining: 100n, held: 30n },
    },
    {
      name: "a hold on a lot raises held on the balance and on the lot",
      entry: { kind: "hold", amount: 20n, grantId: "lot" },
      totals: { granted: 100n, held: 50n, burned: 10n, expired: 0n, debt: 10n },
      lotAfter: { remaining: 100n, held: 50n },
    },
    {
      name: "a hold on overdraft raises held on the balance and touches no lot",
      entry: { kind: "hold", amount: 20n, grantId: null },
      totals: { granted: 100n, held: 50n, burned: 10n, expired: 0n, debt: 10n },
      lotAfter: { remaining: 100n, held: 30n },
    },
    {
      name: "a release lowers held on the balance and on the lot",
      entry: { kind: "release", amount: 30n, grantId: "lot" },
      totals: { granted: 100n, held: 0n, burned: 10n, expired: 0n, debt: 10n },
      lotAfter: { remaining: 100n, held: 0n },
    },
    {
      name: "a burn from a lot raises burned and lowers the lot's remaining, not debt",
      entry: { kind: "burn", amount: 40n, grantId: "lot" },
      totals: { granted: 100n, held: 30n, burned: 50n, expired: 0n, debt: 10n },
      lotAfter: { remaining: 60n, held: 30n },
    },
    {
      name: "a burn on overdraft raises burned and debt",
      entry: { kind: "burn", amount: 40n, grantId: null },
      totals: { granted: 100n, held: 30n, burned: 50n, expired: 0n, debt: 50n },
      lotAfter: { remaining: 100n, held: 30n },
    },
    {
      name: "an expiry raises expired and lowers the lot's remaining",
      entry: { kind: "expire", amount: 70n, grantId: "lot" },
      totals: { granted: 100n, held: 30n, burned: 10n, expired: 70n, debt: 10n },
      lotAfter: { remaining: 30n, held: 30n },
    },
    {
      name: "a settlement lowers debt and the lot's remaining and moves no other total",
      entry: { kind: "settle", amount: 10n, grantId: "lot" },
      totals: { granted: 100n, held: 30n, burned: 10n, expired: 0n, debt: 0n },
      lotAfter: { remaining: 90n, held: 30n },
    },
  ] satisfies { name: string; entry: PlannedEntry; totals: object; lotAfter: object }[], ({ entry, totals, lotAfter }) => {
    const state = before();
    applyEntry(state, entry);
    const { granted, held, burned, expired, debt } = state;
    expect({ granted, held, burned, expired, debt }).toEqual(totals);
    expect({ remaining: state.lots[0].remaining, held: state.lots[0].held }).toEqual(lotAfter);
  });

  eachCase([
    { name: "an entry of zero is a programmer error", entry: { kind: "burn", amount: 0n, grantId: "lot" }, message: /entry amounts are positive/ },
    { name: "an entry naming a lot that is not loaded is a programmer error", entry: { kind: "burn", amount: 1n, grantId: "missing" }, message: /lot missing is loaded/ },
    { name: "releasing more than the balance holds is a programmer error", entry: { kind: "release", amount: 31n, grantId: null }, message: /held and debt stay non-negative/ },
    { name: "settling more than the debt is a programmer error", entry: { kind: "settle", amount: 11n, grantId: "lot" }, message: /held and debt stay non-negative/ },
    { name: "releasing more than a lot holds is a programmer error", entry: { kind: "release", amount: 31n, grantId: "lot" }, message: /a lot never holds more than it has/ },
    { name: "burning into a lot's held part is a programmer error", entry: { kind: "burn", amount: 71n, grantId: "lot" }, message: /a lot never holds more than it has/ },
    { name: "expiring into a lot's held part is a programmer error", entry: { kind: "expire", amount: 71n, grantId: "lot" }, message: /a lot never holds more than it has/ },
    { name: "holding more than a lot has is a programmer error", entry: { kind: "hold", amount: 71n, grantId: "lot" }, message: /a lot never holds more than it has/ },
    { name: "an expiry with no lot is a programmer error", entry: { kind: "expire", amount: 1n, grantId: null }, message: /an expiry names its lot/ },
    { name: "a settlement with no lot is a programmer error", entry: { kind: "settle", amount: 1n, grantId: null }, message: /a settlement names its lot/ },
    { name: "a grant with no lot is a programmer error", entry: { kind: "grant", amount: 1n, grantId: null }, message: /a grant names its lot/ },
  ] satisfies { name: string; entry: PlannedEntry; message: RegExp }[], ({ entry, message }) => {
    const state = { ...before(), held: 60n, lots: [lot("lot", { remaining: 100n, held: 30n })] };
    // The balance holds 30 more on overdraft here, so that only the lot's own check can
    // catch a lot-level over-release; the balance-level one is checked with grantId null.
    if (entry.kind === "release" && entry.grantId === null) state.held = 30n;
    expect(() => applyEntry(state, entry)).toThrow(message);
  });
});

describe("cloneState", () => {
  it("a clone shares no lot with its original, so changing one leaves the other", () => {
    const original = { ...emptyState(), granted: 100n, lots: [lot("lot")] };
    const copy = cloneState(original);
    copy.lots[0].remaining = 1n;
    copy.lots.push(lot("another"));
    copy.granted = 0n;
    expect(original.lots).toEqual([lot("lot")]);
    expect(original.granted).toBe(100n);
  });
});
