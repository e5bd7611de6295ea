// The ledger's pure model of one balance (a customer and a credit type) and its lots.
// Every change is an entry with exactly one effect; applyEntry is that effect, and
// the store persists the state it leaves. Nothing here does IO.

/** EntryKind is the kind of a ledger entry; each kind has one fixed effect. */
export type EntryKind = "grant" | "hold" | "release" | "burn" | "expire" | "settle" | "refund" | "unexpire" | "clawback" | "rollover_out" | "rollover_in" | "void";

/** PlannedEntry is an entry the core decided to write. grantId null means no lot (overdraft). */
export interface PlannedEntry {
  kind: EntryKind;
  amount: bigint;
  grantId: string | null;
  /** when the entry takes effect, if not when it is written (a lot's grant or expiry time). */
  effectiveAtMs?: number;
  /** which of a plan's usage events caused the entry (an index into the plan's events). */
  eventIndex?: number;
  /**
   * a void of what a voided lot got back (a release, a commit of less than held, a
   * refund): upkeep's doing, as an expiry is, not the void's or the caller's.
   */
  leftover?: boolean;
}

/** LotState is one grant's lot as the core sees it. Times are epoch milliseconds. */
export interface LotState {
  grantId: string;
  /** amount minus everything burned, expired or settled from it; includes the held part. */
  remaining: bigint;
  /** the part of remaining held by open reservations. */
  held: bigint;
  /** what expired from it, less what late usage took back (unexpire). */
  expired: bigint;
  priority: number;
  effectiveAtMs: number;
  /** null: never expires. */
  expiresAtMs: number | null;
  /** insertion order, the last tie-breaker of the burn order. */
  seq: bigint;
  /**
   * when the whole lot was voided (VoidGrant of all of it); absent or null: never. From
   * then on the lot is not live, as if past its expiry, and what its reservations give
   * back is voided rather than expired (the held part was pending its void).
   */
  voidedAtMs?: number | null;
}

/** BalanceState is the projection of one balance plus the lots that matter for a decision. */
export interface BalanceState {
  granted: bigint;
  held: bigint;
  burned: bigint;
  expired: bigint;
  /** overdraft drawn and not yet settled from a lot. */
  debt: bigint;
  /** the part of held that no lot backs (held on the overdraft). */
  overdraftHeld: bigint;
  overdraftLimit: bigint;
  /** every lot with free credits (remaining > held), plus any lot a reservation pins. */
  lots: LotState[];
}

/** totalMax is the largest balance total: totals are stored as int64. */
export const totalMax = (1n << 63n) - 1n;

/** assert throws on a programmer error: a state the code must never reach. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

/** cloneState copies a state so that planning never changes its input. */
export function cloneState(state: BalanceState): BalanceState {
  return { ...state, lots: state.lots.map((lot) => ({ ...lot })) };
}

/** compareBurnOrder orders lots: priority, then earliest expiry (never last), then oldest. */
export function compareBurnOrder(a: LotState, b: LotState): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  if (a.expiresAtMs !== b.expiresAtMs) {
    if (a.expiresAtMs === null) return 1;
    if (b.expiresAtMs === null) return -1;
    return a.expiresAtMs - b.expiresAtMs;
  }
  if (a.effectiveAtMs !== b.effectiveAtMs) return a.effectiveAtMs - b.effectiveAtMs;
  return a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0;
}

/** isLive says whether a lot may be drawn from at nowMs: effective, not expired and not voided. */
export function isLive(lot: LotState, nowMs: number): boolean {
  return lot.effectiveAtMs <= nowMs && (lot.expiresAtMs === null || lot.expiresAtMs > nowMs) && !isVoided(lot, nowMs);
}

/** isVoided says whether the whole lot had been voided at nowMs (its held part pending its void). */
export function isVoided(lot: LotState, nowMs: number): boolean {
  return lot.voidedAtMs != null && lot.voidedAtMs <= nowMs;
}

/** isExpired says whether a lot's expiry time has come at nowMs. */
export function isExpired(lot: LotState, nowMs: number): boolean {
  return lot.expiresAtMs !== null && lot.expiresAtMs <= nowMs;
}

/**
 * pendingOf sums the free credits of lots not yet effective at nowMs. A lot's held part
 * is never pending: a replica whose clock runs behind another's may see a lot as not yet
 * effective that the other has already drawn from.
 */
export function pendingOf(state: BalanceState, nowMs: number): bigint {
  let pending = 0n;
  for (const lot of state.lots) {
    if (lot.effectiveAtMs > nowMs) pending += lot.remaining - lot.held;
  }
  assert(pending >= 0n, "pending is never negative");
  return pending;
}

/**
 * overdraftInUseOf is what the balance draws on its overdraft: debt plus holds no lot
 * backs. Keeping it within the limit keeps available >= -limit whatever later expires,
 * because available = free credits of live lots - overdraft in use.
 */
export function overdraftInUseOf(state: BalanceState): bigint {
  return state.debt + state.overdraftHeld;
}

/** availableOf is what may be reserved or burned now: granted - pending - burned - held - expired. */
export function availableOf(state: BalanceState, nowMs: number): bigint {
  return state.granted - pendingOf(state, nowMs) - state.burned - state.held - state.expired;
}

/** findLot returns the lot with this id; the caller must have loaded it. */
export function findLot(state: BalanceState, grantId: string): LotState {
  const lot = state.lots.find((candidate) => candidate.grantId === grantId);
  assert(lot !== undefined, `lot ${grantId} is loaded`);
  return lot;
}

/** applyEntry applies one entry's effect to the state, asserting that nothing goes negative. */
export function applyEntry(state: BalanceState, entry: PlannedEntry): void {
  assert(entry.amount > 0n, "entry amounts are positive");
  const lot = entry.grantId === null ? null : findLot(state, entry.grantId);
  switch (entry.kind) {
    case "grant":
      // The lot is created with remaining = amount; only the totals move.
      assert(lot !== null, "a grant names its lot");
      state.granted += entry.amount;
      break;
    case "hold":
      state.held += entry.amount;
      if (lot) lot.held += entry.amount;
      else state.overdraftHeld += entry.amount;
      break;
    case "release":
      state.held -= entry.amount;
      if (lot) lot.held -= entry.amount;
      else state.overdraftHeld -= entry.amount;
      break;
    case "burn":
      state.burned += entry.amount;
      if (lot) lot.remaining -= entry.amount;
      else state.debt += entry.amount;
      break;
    case "expire":
      assert(lot !== null, "an expiry names its lot");
      state.expired += entry.amount;
      lot.remaining -= entry.amount;
      lot.expired += entry.amount;
      break;
    case "unexpire":
      // Part of a lot's expiry reversed, so that a late usage event burns credits that were live at its event time.
      assert(lot !== null, "an unexpire names its lot");
      state.expired -= entry.amount;
      lot.remaining += entry.amount;
      lot.expired -= entry.amount;
      assert(lot.expired >= 0n, "an unexpire never reverses more than expired from its lot");
      break;
    case "settle":
      assert(lot !== null, "a settlement names its lot");
      state.debt -= entry.amount;
      lot.remaining -= entry.amount;
      break;
    case "clawback":
      // Credits taken back for a refunded purchase: from its lot, or as debt when they were burned already.
      state.burned += entry.amount;
      if (lot) lot.remaining -= entry.amount;
      else state.debt += entry.amount;
      break;
    case "rollover_out":
      // A period's unused credits leave its lot for the next period's rollover lot.
      assert(lot !== null, "a rollover out names its lot");
      state.granted -= entry.amount;
      lot.remaining -= entry.amount;
      break;
    case "rollover_in":
      // The rollover lot is created with remaining = amount, as a grant's is.
      assert(lot !== null, "a rollover in names its lot");
      state.granted += entry.amount;
      break;
    case "void":
      // Unused credits of a lot taken back (a grant made by mistake): they were never granted.
      assert(lot !== null, "a void names its lot");
      assert(entry.amount <= lot.remaining - lot.held, "a void takes only free credits");
      state.granted -= entry.amount;
      lot.remaining -= entry.amount;
      break;
    case "refund":
      state.burned -= entry.amount;
      if (lot) lot.remaining += entry.amount;
      else state.debt -= entry.amount;
      assert(state.burned >= 0n, "a refund never gives back more than was burned");
      break;
  }
  assert(state.held >= 0n && state.debt >= 0n, "held and debt stay non-negative");
  assert(state.overdraftHeld >= 0n && state.overdraftHeld <= state.held, "overdraft holds are part of held");
  if (lot) assert(lot.held >= 0n && lot.remaining >= lot.held, "a lot never holds more than it has");
}
