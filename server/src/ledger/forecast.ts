// The forecast of one balance: when it would run out at a steady burn rate, spending its
// lots in burn order as the ledger does, with what is left of each lot expiring at its
// expiry time, and how much would expire so. Pure: time is epoch milliseconds as bigint,
// and the simulation counts in credit-milliseconds (credits × msPerDay), so that a rate of
// dailyBurn credits a day spends exactly dailyBurn of them each millisecond, and every
// time it computes is exact to the millisecond (rounded up), with no floating point.
import { assert, availableOf, type BalanceState, compareBurnOrder, overdraftInUseOf } from "./balance-state.js";

const msPerDay = 86_400_000n;

/** Forecast is what a balance would do at a steady burn rate. */
export interface Forecast {
  /** when available first reaches zero (exact, rounded up to the millisecond); null when nothing burns or beyond the horizon. */
  emptyAtMs: bigint | null;
  /** credits that expire before they are spent (fractions of a credit spent before an expiry count as spent). */
  expiringUnused: bigint;
}

/** SimLot is a lot's free credits in the simulation, in credit-milliseconds. */
interface SimLot {
  free: bigint;
  effectiveAtMs: bigint;
  expiresAtMs: bigint | null;
}

function ceilDiv(a: bigint, b: bigint): bigint {
  assert(a >= 0n && b > 0n, "ceilDiv takes a non-negative dividend and a positive divisor");
  return (a + b - 1n) / b;
}

function isLiveAt(lot: SimLot, atMs: bigint): boolean {
  return lot.effectiveAtMs <= atMs && (lot.expiresAtMs === null || lot.expiresAtMs > atMs);
}

/** Sim is the simulation's state: the lots in burn order, the time, the overdraft still to repay, and what expired. */
class Sim {
  unused = 0n;

  constructor(
    readonly lots: SimLot[],
    public atMs: bigint,
    /** overdraft in use (debt and unbacked holds), repaid from lots as they become live, as the ledger settles debt. */
    public owed: bigint,
  ) {}

  level(): bigint {
    return this.lots.reduce((sum, lot) => sum + (isLiveAt(lot, this.atMs) ? lot.free : 0n), 0n) - this.owed;
  }

  /** spend takes amount from live lots in burn order; what they cannot cover is owed. */
  spend(amount: bigint): void {
    let left = amount;
    for (const lot of this.lots) {
      if (left === 0n) break;
      if (!isLiveAt(lot, this.atMs)) continue;
      const take = lot.free < left ? lot.free : left;
      lot.free -= take;
      left -= take;
    }
    this.owed += left;
  }

  /** repay draws what is owed from live lots in burn order, as the ledger settles debt: the level stays the same. */
  repay(): void {
    for (const lot of this.lots) {
      if (this.owed === 0n) break;
      if (!isLiveAt(lot, this.atMs)) continue;
      const take = lot.free < this.owed ? lot.free : this.owed;
      lot.free -= take;
      this.owed -= take;
    }
  }

  /** expireDue lets the free part of every lot whose expiry has come expire. */
  expireDue(): void {
    for (const lot of this.lots) {
      if (lot.expiresAtMs !== null && lot.expiresAtMs <= this.atMs && lot.free > 0n) {
        this.unused += lot.free;
        lot.free = 0n;
      }
    }
  }

  /** nextChangeMs is the next time a lot with free credits becomes live or expires, or null. */
  nextChangeMs(): bigint | null {
    let next: bigint | null = null;
    for (const lot of this.lots) {
      if (lot.free === 0n) continue;
      for (const atMs of [lot.effectiveAtMs, lot.expiresAtMs]) {
        if (atMs !== null && atMs > this.atMs && (next === null || atMs < next)) next = atMs;
      }
    }
    return next;
  }

  /** firstLive is the first live lot with free credits in burn order, or undefined. */
  firstLive(): SimLot | undefined {
    return this.lots.find((lot) => lot.free > 0n && isLiveAt(lot, this.atMs));
  }
}

/**
 * forecastBalance simulates a balance (as upkeep leaves it at nowMs: see planUpkeep)
 * spending dailyBurn credits a day from nowMs. Lots are spent in burn order, each from
 * when it is effective; what a lot has left at its expiry expires unused; an overdraft in
 * use is repaid first from lots that become live. Available reaching zero (not minus the
 * overdraft limit) is empty; beyond horizonMs from now it is not forecast. The simulation
 * runs until no lot has credits left, at most three steps per lot.
 */
export function forecastBalance(state: BalanceState, input: { dailyBurn: bigint; nowMs: number; horizonMs: number }): Forecast {
  assert(input.dailyBurn >= 0n, "a burn rate is not negative");
  const nowMs = BigInt(input.nowMs);
  const lots = [...state.lots].sort(compareBurnOrder).map((lot) => ({
    free: (lot.remaining - lot.held) * msPerDay,
    effectiveAtMs: BigInt(lot.effectiveAtMs),
    expiresAtMs: lot.expiresAtMs === null ? null : BigInt(lot.expiresAtMs),
  }));
  const sim = new Sim(lots, nowMs, overdraftInUseOf(state) * msPerDay);
  sim.expireDue();
  assert(sim.unused === 0n, "upkeep has already expired what was due");
  sim.repay();
  assert(sim.level() === availableOf(state, input.nowMs) * msPerDay, "the simulation starts from what is available now");
  let emptyAtMs: bigint | null = input.dailyBurn > 0n && sim.level() <= 0n ? nowMs : null;
  const stepsMax = 3 * lots.length + 1;
  for (let step = 0; ; step++) {
    assert(step <= stepsMax, "each step exhausts, expires or activates a lot");
    const first = input.dailyBurn > 0n ? sim.firstLive() : undefined;
    const changeMs = sim.nextChangeMs();
    const exhaustedMs = first === undefined ? null : sim.atMs + ceilDiv(first.free, input.dailyBurn);
    const untilMs = exhaustedMs !== null && (changeMs === null || exhaustedMs < changeMs) ? exhaustedMs : changeMs;
    if (untilMs === null) break;
    sim.spend(input.dailyBurn * (untilMs - sim.atMs));
    sim.atMs = untilMs;
    sim.expireDue();
    sim.repay();
    if (input.dailyBurn > 0n && emptyAtMs === null && sim.level() <= 0n) emptyAtMs = sim.atMs;
  }
  const beyond = emptyAtMs !== null && emptyAtMs - nowMs > BigInt(input.horizonMs);
  return { emptyAtMs: beyond ? null : emptyAtMs, expiringUnused: sim.unused / msPerDay };
}
