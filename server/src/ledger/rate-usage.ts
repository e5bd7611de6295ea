// Rating: the credits a usage costs at a fractional rate, exactly. The remainder below
// one smallest unit is carried per customer and feature, so that any set of events, in
// any order, burns floor(sum(quantity) * credits / perUnits) in all.
import { assert } from "./balance-state.js";

/** Rate is credits per perUnits units of quantity. */
export interface Rate {
  credits: bigint;
  perUnits: bigint;
}

/** Carry is the remainder carried for a rate's perUnits, in 1/perUnits credits. */
export interface Carry {
  perUnits: bigint;
  carry: bigint;
}

/** Rated is the credits of one usage and the carry before and after. */
export interface Rated {
  credits: bigint;
  carryBefore: bigint;
  carryAfter: bigint;
}

/**
 * rateUsage rates a quantity with the carry so far. A carry kept for another perUnits
 * starts afresh (less than one smallest unit is forgone when a rate's perUnits changes).
 */
export function rateUsage(quantity: bigint, rate: Rate, carry: Carry | null): Rated {
  assert(quantity > 0n && rate.credits >= 0n && rate.perUnits > 0n, "rating takes a positive quantity and a valid rate");
  const carryBefore = carry !== null && carry.perUnits === rate.perUnits ? carry.carry : 0n;
  assert(carryBefore >= 0n && carryBefore < rate.perUnits, "a carry is below one credit");
  const total = carryBefore + quantity * rate.credits;
  const rated = { credits: total / rate.perUnits, carryBefore, carryAfter: total % rate.perUnits };
  assert(rated.credits * rate.perUnits + rated.carryAfter === total, "rating loses nothing");
  return rated;
}

/** holdAmount is what a reservation or check needs for a quantity: rounded up, no carry. */
export function holdAmount(quantity: bigint, rate: Rate): bigint {
  assert(quantity > 0n && rate.perUnits > 0n, "a hold takes a positive quantity and a valid rate");
  return (quantity * rate.credits + rate.perUnits - 1n) / rate.perUnits;
}
