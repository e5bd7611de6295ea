// A deliberately simple in-memory model of one balance, written independently of the
// ledger core: lots in burn order, holds, burns, overdraft debt, expiry and settlement.
// The model-based tests run random operations against the server and this model and
// compare every outcome and balance.

/** ModelLot is a lot as the model keeps it. */
export interface ModelLot { id: string; remaining: bigint; held: bigint; priority: number; expiresAt: number | null; order: number }
/** ModelHold is a reservation's draw on a lot (null: the overdraft). */
export interface ModelHold { lot: ModelLot | null; amount: bigint }
/** ModelReservation is a reservation as the model keeps it. */
export interface ModelReservation { holds: ModelHold[]; expiresAt: number; open: boolean }

/** Model is one balance, kept as simply as possible, independently of the ledger core. */
export class Model {
  lots: ModelLot[] = [];
  reservations: ModelReservation[] = [];
  granted = 0n; burned = 0n; expired = 0n; debt = 0n; heldOnOverdraft = 0n;
  constructor(readonly limit: bigint) {}

  get held(): bigint {
    return this.lots.reduce((sum, lot) => sum + lot.held, 0n) + this.heldOnOverdraft;
  }
  available(now: number): bigint {
    return this.live(now).reduce((sum, lot) => sum + lot.remaining - lot.held, 0n) - this.debt - this.heldOnOverdraft;
  }
  live(now: number): ModelLot[] {
    return this.lots
      .filter((lot) => lot.expiresAt === null || lot.expiresAt > now)
      .sort((a, b) => a.priority - b.priority || (a.expiresAt ?? Infinity) - (b.expiresAt ?? Infinity) || a.order - b.order);
  }
  tidy(now: number): void {
    for (const lot of this.lots) {
      if (lot.expiresAt !== null && lot.expiresAt <= now) {
        this.expired += lot.remaining - lot.held;
        lot.remaining = lot.held;
      }
    }
    for (const lot of this.live(now)) {
      const take = min(this.debt, lot.remaining - lot.held);
      lot.remaining -= take;
      this.debt -= take;
    }
  }
  /** take draws from live lots in burn order; returns the draws and what is left. */
  take(amount: bigint, now: number): { draws: ModelHold[]; left: bigint } {
    const draws: ModelHold[] = [];
    let left = amount;
    for (const lot of this.live(now)) {
      const take = min(left, lot.remaining - lot.held);
      if (take > 0n) draws.push({ lot, amount: take });
      left -= take;
    }
    return { draws, left };
  }
  grant(amount: bigint, priority: number, expiresAt: number | null, now: number): void {
    this.lots.push({ id: "", remaining: amount, held: 0n, priority, expiresAt, order: this.lots.length });
    this.granted += amount;
    this.tidy(now);
  }
  reserve(amount: bigint, ttl: number, now: number): ModelReservation | "insufficient" {
    this.tidy(now);
    if (this.available(now) - amount < -this.limit) return "insufficient";
    const { draws, left } = this.take(amount, now);
    for (const draw of draws) draw.lot!.held += draw.amount;
    this.heldOnOverdraft += left;
    const reservation = { holds: left > 0n ? [...draws, { lot: null, amount: left }] : draws, expiresAt: now + ttl, open: true };
    this.reservations.push(reservation);
    return reservation;
  }
  burn(amount: bigint, now: number): "ok" | "insufficient" {
    this.tidy(now);
    if (this.available(now) - amount < -this.limit) return "insufficient";
    this.consume(amount, now);
    this.tidy(now);
    return "ok";
  }
  consume(amount: bigint, now: number): void {
    const { draws, left } = this.take(amount, now);
    for (const draw of draws) draw.lot!.remaining -= draw.amount;
    this.debt += left;
    this.burned += amount;
  }
  resolve(reservation: ModelReservation, actual: bigint | null, now: number): "ok" | "insufficient" | "not_held" | "expired" {
    if (!reservation.open) return "not_held";
    if (actual !== null && reservation.expiresAt <= now) return "expired";
    this.tidy(now);
    const heldTotal = reservation.holds.reduce((sum, hold) => sum + hold.amount, 0n);
    const used = actual ?? 0n;
    if (used > heldTotal && this.available(now) - (used - heldTotal) < -this.limit) return "insufficient";
    let left = used;
    for (const hold of reservation.holds) {
      const take = min(left, hold.amount);
      if (hold.lot) {
        hold.lot.held -= hold.amount;
        hold.lot.remaining -= take;
      } else {
        this.heldOnOverdraft -= hold.amount;
        this.debt += take;
      }
      this.burned += take;
      left -= take;
    }
    if (left > 0n) this.consume(left, now);
    reservation.open = false;
    this.tidy(now);
    return "ok";
  }
  expireReservations(now: number): void {
    for (const reservation of this.reservations) if (reservation.open && reservation.expiresAt <= now) this.resolve(reservation, null, now);
    this.tidy(now);
  }
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
