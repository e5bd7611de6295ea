// The ledger's decisions. Each plan function takes a balance state and a request, and
// returns either a tagged rejection or the entries to write and the state they leave.
// Every plan runs the same upkeep before and after its own entries (expire lots past
// their expiry, settle overdraft debt from live lots), so a decision never counts an
// expired credit and a debt is repaid by the first credits that become available.
import {
  applyEntry,
  assert,
  availableOf,
  type BalanceState,
  cloneState,
  compareBurnOrder,
  findLot,
  isExpired,
  isLive,
  isVoided,
  type LotState,
  type PlannedEntry,
  totalMax,
} from "./balance-state.js";

/** Hold is the part of a reservation pinned to one lot; grantId null is held on overdraft. */
export interface Hold {
  grantId: string | null;
  amount: bigint;
}

/** Planned is an accepted plan: entries in order and the state after them. */
export interface Planned {
  kind: "planned";
  entries: PlannedEntry[];
  state: BalanceState;
}

/** Insufficient is the rejection when available + overdraft limit cannot cover an amount. */
export interface Insufficient {
  kind: "insufficient";
  available: bigint;
  required: bigint;
}

/** PlannedHold is an accepted hold with the lots it pinned. */
export interface PlannedHold extends Planned {
  holds: Hold[];
}

/** Plan carries entries while they are applied to a working copy of the state. */
class Plan {
  readonly state: BalanceState;
  readonly entries: PlannedEntry[] = [];

  constructor(state: BalanceState, readonly nowMs: number) {
    this.state = cloneState(state);
    this.state.lots.sort(compareBurnOrder);
  }

  add(entry: PlannedEntry): void {
    if (entry.amount === 0n) return;
    applyEntry(this.state, entry);
    this.entries.push(entry);
  }

  /** upkeep brings the balance up to now (catchUp), then settles debt from what is live now. */
  upkeep(): void {
    this.catchUp();
    this.settleDebt();
  }

  /**
   * catchUp brings the balance up to now as if the jobs had run at every instant since its
   * last change: at each past moment a lot became effective, debt is settled from the lots
   * live then (dated then), and every lot past its expiry expires its free part (dated at
   * its expiry), in time order. Any change settles debt from every live lot, so a debt
   * that meets a lot with free credits here was there when that lot became effective.
   * excludeGrantId is a lot being granted by this plan: not counted before its grant entry.
   */
  catchUp(excludeGrantId?: string): void {
    if (this.state.debt > 0n) {
      const starts = new Set<number>();
      for (const lot of this.state.lots) {
        if (lot.grantId !== excludeGrantId && lot.effectiveAtMs < this.nowMs && lot.remaining > lot.held) starts.add(lot.effectiveAtMs);
      }
      for (const atMs of [...starts].sort((a, b) => a - b)) {
        if (this.state.debt === 0n) break;
        this.expireDue("at expiry", atMs, excludeGrantId);
        this.settleAt(atMs, excludeGrantId);
      }
    }
    this.expireDue("at expiry", this.nowMs, excludeGrantId);
  }

  /**
   * expireDue expires the free part of every lot past its expiry at atMs (now unless
   * catching up). Before a plan's own entries, a free part was already free at the expiry
   * time (any release since would have expired it then), so it is dated at the expiry;
   * after them, it was freed by this plan's releases and is dated now, so that replaying
   * entries by effective time never expires a credit while it is still held.
   */
  expireDue(dated: "at expiry" | "now", atMs = this.nowMs, excludeGrantId?: string): void {
    for (const lot of this.state.lots) {
      if (lot.grantId === excludeGrantId) continue;
      // A voided lot's free part was voided with it; what came back to it since (a release,
      // a commit of less than held, a refund) is voided now, not expired, even past its expiry.
      if (isVoided(lot, atMs)) {
        this.add({ kind: "void", amount: lot.remaining - lot.held, grantId: lot.grantId, effectiveAtMs: this.nowMs, leftover: true });
        continue;
      }
      if (!isExpired(lot, atMs)) continue;
      const effectiveAtMs = dated === "now" ? this.nowMs : (lot.expiresAtMs ?? this.nowMs);
      this.add({ kind: "expire", amount: lot.remaining - lot.held, grantId: lot.grantId, effectiveAtMs });
    }
  }

  settleDebt(): void {
    if (this.state.debt > 0n) this.draw(this.state.debt, "settle");
  }

  /** settleAt settles debt from the lots live at atMs, in burn order, dated atMs. */
  private settleAt(atMs: number, excludeGrantId?: string): void {
    for (const lot of this.state.lots) {
      if (this.state.debt === 0n) break;
      if (lot.grantId === excludeGrantId || !isLive(lot, atMs)) continue;
      this.add({ kind: "settle", amount: min(this.state.debt, lot.remaining - lot.held), grantId: lot.grantId, effectiveAtMs: atMs });
    }
  }

  /** draw takes up to amount from live lots' free credits in burn order; returns what is left. */
  draw(amount: bigint, kind: "hold" | "burn" | "settle", tag: Partial<PlannedEntry> = {}): bigint {
    assert(amount >= 0n, "draw amounts are not negative");
    let left = amount;
    for (const lot of this.state.lots) {
      if (left === 0n) break;
      if (!isLive(lot, this.nowMs)) continue;
      const take = min(left, lot.remaining - lot.held);
      this.add({ kind, amount: take, grantId: lot.grantId, ...tag });
      left -= take;
    }
    assert(left >= 0n && left <= amount, "a draw never takes more than asked");
    return left;
  }

  /**
   * drawAsOf burns up to amount of a usage event as it happened; returns what is left. Lots
   * live at the event time come first, in burn order: free credits of those still live,
   * and, of those that have expired since (after revivableAfterMs, the late cutoff), what
   * expired from them: that part of the expiry is reversed (unexpire, dated at the expiry)
   * and burned. Then any other live lot.
   */
  drawAsOf(amount: bigint, eventAtMs: number, revivableAfterMs: number, tag: { effectiveAtMs: number; eventIndex: number }): bigint {
    let left = amount;
    for (const atEvent of [true, false]) {
      for (const lot of this.state.lots) {
        if (left === 0n) return left;
        if (isLive(lot, eventAtMs) !== atEvent) continue;
        let take = 0n;
        if (isLive(lot, this.nowMs)) {
          take = min(left, lot.remaining - lot.held);
        } else if (atEvent && lot.expiresAtMs !== null && lot.expiresAtMs <= this.nowMs && lot.expiresAtMs > revivableAfterMs) {
          take = min(left, lot.expired);
          this.add({ kind: "unexpire", amount: take, grantId: lot.grantId, effectiveAtMs: lot.expiresAtMs, eventIndex: tag.eventIndex });
        }
        this.add({ kind: "burn", amount: take, grantId: lot.grantId, ...tag });
        left -= take;
      }
    }
    assert(left >= 0n && left <= amount, "a draw never takes more than asked");
    return left;
  }

  done(): Planned {
    this.expireDue("now");
    this.settleDebt();
    assert(this.state.held >= 0n, "held is never negative");
    return { kind: "planned", entries: this.entries, state: this.state };
  }
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

function covers(state: BalanceState, nowMs: number, amount: bigint): Insufficient | null {
  const available = availableOf(state, nowMs);
  if (available - amount >= -state.overdraftLimit) return null;
  return { kind: "insufficient", available, required: amount };
}

/** planUpkeep expires what is due and settles debt, with no request of its own (the expiry job). */
export function planUpkeep(state: BalanceState, nowMs: number): Planned {
  const plan = new Plan(state, nowMs);
  plan.upkeep();
  return plan.done();
}

/** planGrant records a new lot; the caller has added the lot to the state with remaining = amount. */
export function planGrant(state: BalanceState, grantId: string, nowMs: number): Planned {
  // Catching up, but no settlement now, before the grant entry: settling first would draw
  // on the new lot before it is counted as granted. done() settles after it.
  const plan = new Plan(state, nowMs);
  plan.catchUp(grantId);
  const lot = findLot(plan.state, grantId);
  assert(lot.held === 0n && lot.remaining > 0n, "a new lot is whole");
  plan.add({ kind: "grant", amount: lot.remaining, grantId, effectiveAtMs: lot.effectiveAtMs });
  // A lot granted after its own expiry (a scheduled period caught up after it ended)
  // expires at once, dated at its expiry, like any lot the jobs reached late.
  if (isExpired(lot, nowMs)) plan.expireDue("at expiry");
  return plan.done();
}

/** Rollover is what a plan of a rollover needs: the lot that ends, the cap, and the new lot (its amount decided here). */
export interface Rollover {
  fromGrantId: string;
  cap: bigint;
  toLot: Omit<LotState, "remaining" | "held" | "expired">;
}

/**
 * planRollover carries the unused part of a lot that reached the end of its period, up to
 * the cap, into a new lot: a rollover_out entry on the old lot and a rollover_in entry on
 * the new one, both dated at the old lot's expiry. The rest of the old lot expires as any
 * lot does. If another change expired the old lot first (its upkeep runs for any change
 * after the expiry), the part to roll is taken back from that expiry (unexpire, dated at
 * the expiry) before it rolls. The held part of the old lot never rolls. rolled is 0 when
 * nothing was left; the new lot is then not in the state.
 */
export function planRollover(state: BalanceState, rollover: Rollover, nowMs: number): Planned & { rolled: bigint } {
  assert(rollover.cap > 0n, "a rollover cap is positive");
  const plan = new Plan(state, nowMs);
  const from = findLot(plan.state, rollover.fromGrantId);
  assert(from.expiresAtMs !== null && from.expiresAtMs <= nowMs, "a lot rolls over once its period has ended");
  const free = from.remaining - from.held;
  const rolled = min(rollover.cap, free + from.expired);
  const atMs = from.expiresAtMs;
  if (rolled > 0n) {
    plan.add({ kind: "unexpire", amount: rolled > free ? rolled - free : 0n, grantId: from.grantId, effectiveAtMs: atMs });
    plan.add({ kind: "rollover_out", amount: rolled, grantId: from.grantId, effectiveAtMs: atMs });
    plan.state.lots.push({ ...rollover.toLot, remaining: rolled, held: 0n, expired: 0n });
    plan.state.lots.sort(compareBurnOrder);
    plan.add({ kind: "rollover_in", amount: rolled, grantId: rollover.toLot.grantId, effectiveAtMs: atMs });
  }
  plan.upkeep();
  return { ...plan.done(), rolled };
}

/** planHold sets aside amount for a reservation, lots first in burn order, then overdraft. */
export function planHold(state: BalanceState, amount: bigint, nowMs: number): PlannedHold | Insufficient {
  assert(amount > 0n, "holds are positive");
  const plan = new Plan(state, nowMs);
  plan.upkeep();
  const rejection = covers(plan.state, nowMs, amount);
  if (rejection) return rejection;
  const first = plan.entries.length;
  const onOverdraft = plan.draw(amount, "hold");
  plan.add({ kind: "hold", amount: onOverdraft, grantId: null });
  const holds = plan.entries.slice(first).map((entry) => ({ grantId: entry.grantId, amount: entry.amount }));
  assert(holds.reduce((sum, hold) => sum + hold.amount, 0n) === amount, "holds add up to the amount");
  return { ...plan.done(), holds };
}

/** Forced is a plan that may go past the overdraft limit (the kill switch), and whether it did. */
export interface Forced extends Planned {
  overLimit: boolean;
}

/**
 * planBurn deducts amount now, lots first in burn order, then the overdraft. With force
 * (the kill switch) what the lots and the overdraft limit cannot cover is burned all the
 * same, as debt past the limit, and the plan says it went over.
 */
export function planBurn(state: BalanceState, amount: bigint, nowMs: number, options: { force?: boolean } = {}): Forced | Insufficient {
  assert(amount > 0n, "burns are positive");
  const plan = new Plan(state, nowMs);
  plan.upkeep();
  const rejection = covers(plan.state, nowMs, amount);
  if (rejection && options.force !== true) return rejection;
  const onOverdraft = plan.draw(amount, "burn");
  plan.add({ kind: "burn", amount: onOverdraft, grantId: null });
  return { ...plan.done(), overLimit: rejection !== null };
}

/** planRelease returns every held credit; the part of an expired lot expires at once. */
export function planRelease(state: BalanceState, holds: Hold[], nowMs: number): Planned {
  const plan = new Plan(state, nowMs);
  plan.upkeep();
  for (const hold of holds) plan.add({ kind: "release", amount: hold.amount, grantId: hold.grantId });
  return plan.done();
}

/**
 * planCommit burns the actual amount from the reservation's holds in their order and
 * returns the rest. Above the held total, the excess is burned like planBurn, and must
 * fit available + overdraft limit, unless forced (the kill switch; see planBurn). A
 * reservation made under the kill switch without cover holds nothing: its holds are
 * empty, and all of actual is excess.
 */
export function planCommit(state: BalanceState, holds: Hold[], actual: bigint, nowMs: number, options: { force?: boolean } = {}): Forced | Insufficient {
  assert(actual >= 0n, "commits are not negative");
  const heldTotal = holds.reduce((sum, hold) => sum + hold.amount, 0n);
  assert(heldTotal > 0n || options.force === true, "a reservation holds something, unless it was forced");
  const plan = new Plan(state, nowMs);
  plan.upkeep();
  const excess = actual - heldTotal;
  let overLimit = false;
  if (excess > 0n) {
    const rejection = covers(plan.state, nowMs, excess);
    if (rejection && options.force !== true) return { ...rejection, required: actual, available: rejection.available + heldTotal };
    overLimit = rejection !== null;
  }
  let left = actual;
  for (const hold of holds) {
    plan.add({ kind: "release", amount: hold.amount, grantId: hold.grantId });
    const take = min(left, hold.amount);
    plan.add({ kind: "burn", amount: take, grantId: hold.grantId });
    left -= take;
  }
  if (left > 0n) {
    const onOverdraft = plan.draw(left, "burn");
    plan.add({ kind: "burn", amount: onOverdraft, grantId: null });
  }
  return { ...plan.done(), overLimit };
}

/** UsageBurn is one rated usage event to burn. */
export interface UsageBurn {
  amount: bigint;
  eventAtMs: number;
}

/**
 * PlannedUsage is an accepted usage plan: per event, whether it took the balance past its
 * limit, and whether it was left out because it would take a total beyond int64.
 */
export interface PlannedUsage extends Planned {
  overLimit: boolean[];
  outOfRange: boolean[];
}

/**
 * planUsageBurns burns rated usage events in order (asynchronous enforcement: the usage
 * already happened, so it is never refused). Each event draws first from lots that were
 * live at its event time (even one that has expired since, within revivableAfterMs: see
 * drawAsOf), then from any live lot, then the overdraft; a burn that takes
 * available below -overdraft limit is still written, and flagged. Entries are dated at
 * the event time and carry their event's index. An event that would take the burned
 * total beyond int64 is left out (outOfRange), and the others still burn.
 */
export function planUsageBurns(state: BalanceState, burns: UsageBurn[], nowMs: number, options: { revivableAfterMs?: number } = {}): PlannedUsage {
  const plan = new Plan(state, nowMs);
  plan.upkeep();
  const revivableAfterMs = options.revivableAfterMs ?? Number.POSITIVE_INFINITY;
  const overLimit: boolean[] = [];
  const outOfRange: boolean[] = [];
  burns.forEach((burn, eventIndex) => {
    // Debt is part of burned, so a burn that keeps burned within int64 keeps debt within it too.
    const skipped = burn.amount > totalMax - plan.state.burned;
    outOfRange.push(skipped);
    if (skipped || burn.amount === 0n) return void overLimit.push(false);
    const tag = { effectiveAtMs: Math.min(burn.eventAtMs, nowMs), eventIndex };
    const onOverdraft = plan.drawAsOf(burn.amount, burn.eventAtMs, revivableAfterMs, tag);
    plan.add({ kind: "burn", amount: onOverdraft, grantId: null, ...tag });
    overLimit.push(availableOf(plan.state, nowMs) < -plan.state.overdraftLimit);
  });
  return { ...plan.done(), overLimit, outOfRange };
}

/** Refund is a burn to give back: to its lot, or off the debt when grantId is null. */
export interface Refund {
  grantId: string | null;
  amount: bigint;
}

/**
 * planRefund gives burned credits back (a correction). A lot that has expired since
 * expires what it gets back at once; a refund into a live lot repays any debt first.
 */
export function planRefund(state: BalanceState, refunds: Refund[], nowMs: number): Planned {
  const plan = new Plan(state, nowMs);
  plan.upkeep();
  for (const refund of refunds) plan.add({ kind: "refund", amount: refund.amount, grantId: refund.grantId });
  return plan.done();
}

/** Clawback is the credits a refunded purchase takes back from its lot. */
export interface Clawback {
  grantId: string;
  /** the lot's amount as granted. */
  lotAmount: bigint;
  /** the credits to take back now. */
  credits: bigint;
  /** what earlier clawbacks of this lot took from it, and took as debt. */
  fromLotBefore: bigint;
  asDebtBefore: bigint;
}

/** PlannedClawback is an accepted clawback: what came off the lot, what became debt, and whether that went past the limit. */
export interface PlannedClawback extends Planned {
  fromLot: bigint;
  asDebt: bigint;
  overLimit: boolean;
}

/**
 * planClawback takes credits back for a refunded purchase: first what is free in its lot,
 * then, as debt, what of the lot was burned (or is held) and not clawed back as debt
 * before. Credits of the lot that expired unused are not charged again: the take may be
 * less than asked. The debt is never refused (the money is gone); past the overdraft
 * limit it is flagged.
 */
export function planClawback(state: BalanceState, clawback: Clawback, nowMs: number): PlannedClawback {
  assert(clawback.credits > 0n, "a clawback takes something");
  const plan = new Plan(state, nowMs);
  plan.upkeep();
  const lot = findLot(plan.state, clawback.grantId);
  const fromLot = min(clawback.credits, isLive(lot, nowMs) ? lot.remaining - lot.held : 0n);
  // amount = used + expired + remaining + clawed back from the lot; what was used or is held may be charged as debt once.
  const usedOrHeld = clawback.lotAmount - lot.expired - lot.remaining - clawback.fromLotBefore + lot.held;
  const room = usedOrHeld - clawback.asDebtBefore;
  assert(room >= 0n, "debt clawed back never exceeds what the lot had used");
  const asDebt = min(clawback.credits - fromLot, room);
  plan.add({ kind: "clawback", amount: fromLot, grantId: clawback.grantId });
  plan.add({ kind: "clawback", amount: asDebt, grantId: null });
  const overLimit = asDebt > 0n && availableOf(plan.state, nowMs) < -plan.state.overdraftLimit;
  return { ...plan.done(), fromLot, asDebt, overLimit };
}

/** VoidRefused is why a void cannot run: the lot has nothing free or held, or less free than asked. */
export interface VoidRefused {
  kind: "nothing_to_void" | "exceeds_unused";
  unused: bigint;
  held: bigint;
}

/**
 * PlannedVoid is an accepted void: what it took now, what of the lot stays held, and of
 * that what is pending its void (all of it when the whole lot was voided, else nothing).
 */
export interface PlannedVoid extends Planned {
  voided: bigint;
  held: bigint;
  pending: bigint;
  remaining: bigint;
  /** whether the whole lot was voided: the caller stores its void time (voidedAtMs). */
  lotVoided: boolean;
}

/**
 * planVoid takes back the free credits of a lot with a void entry: granted falls, and so
 * does the lot's remaining. With amount null the whole lot is voided: its free credits now,
 * and its held part as its reservations give it back (the lot is marked voided, so it is
 * no longer live and upkeep voids whatever comes back to it; what they commit still burns
 * from it). With an amount, only that many free credits, and the lot stays live. Upkeep
 * runs first, so a lot past its expiry has nothing to void (its leftovers expire); what was
 * burned or expired is never voided, so voiding twice never takes more than the lot had.
 */
export function planVoid(state: BalanceState, grantId: string, amount: bigint | null, nowMs: number): PlannedVoid | VoidRefused {
  assert(amount === null || amount > 0n, "a void amount is positive or all");
  const plan = new Plan(state, nowMs);
  plan.upkeep();
  const lot = findLot(plan.state, grantId);
  const over = isExpired(lot, nowMs) || isVoided(lot, nowMs);
  const unused = over ? 0n : lot.remaining - lot.held;
  assert(unused >= 0n, "free credits are never negative");
  const lotVoided = amount === null && !over;
  if (unused === 0n && (!lotVoided || lot.held === 0n)) return { kind: "nothing_to_void", unused, held: lot.held };
  if (amount !== null && amount > unused) return { kind: "exceeds_unused", unused, held: lot.held };
  const voided = amount ?? unused;
  plan.add({ kind: "void", amount: voided, grantId });
  if (lotVoided) lot.voidedAtMs = nowMs;
  const after = plan.done();
  const left = findLot(after.state, grantId);
  assert(left.remaining >= left.held && (!lotVoided || left.remaining === left.held), "a voided lot keeps only its held part");
  return { ...after, voided, held: left.held, pending: lotVoided ? left.held : 0n, remaining: left.remaining, lotVoided };
}
