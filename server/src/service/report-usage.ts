// ReportUsage and the replay of unrated events: rate usage at each customer's rate and
// burn it (asynchronous enforcement). A batch becomes one op of the write path per lane
// (write-op.ts), so its events join the groups of their customers' lanes: event ids are
// claimed before the locks, each balance's events are rated in event-time order and
// burned in memory, and the events, entries, shadow entries and carries are written with
// the rest of the group. An event the ledger cannot record (its credits beyond int64, a
// balance with too many lots) is rejected alone and its claim released in the same
// write; an op that fails otherwise aborts its group (which then runs op by op), so a
// claimed event id is never committed without its event.
import { LedgerError } from "../errors.js";
import { assert, type BalanceState, type PlannedEntry } from "../ledger/balance-state.js";
import { type PlannedUsage, planUsageBurns, type UsageBurn } from "../ledger/plan.js";
import { enforcementOf } from "../ledger/enforcement.js";
import { rateUsage } from "../ledger/rate-usage.js";
import { limits } from "../limits.js";
import { type BalanceKey, balanceKeyOf } from "../store/balance-store.js";
import type { AuditWrite, CarryWrite } from "../store/balance-writer.js";
import type { RateRow } from "../store/rate-store.js";
import type { UsageRow } from "../store/usage-store.js";
import type { WriteInputs } from "../store/write-inputs-store.js";
import type { Caller, Deps } from "./context.js";
import { GroupAbort, loadedState, type PlanContext, type Prepared, type WriteOp } from "./write-op.js";

/** UsageInput is a well-formed usage event of a batch. */
export interface UsageInput {
  eventId: string;
  customerId: string;
  featureKey: string;
  quantity: bigint;
  /** null: now. */
  eventAt: Date | null;
  properties: Record<string, string>;
  /** allowed by an SDK while the ledger was unreachable, replayed from its spool. */
  offline: boolean;
}

/** UsageOutcome is what became of one event. */
export type UsageOutcome = "burned" | "duplicate" | "rejected" | "unrated" | "shadowed" | "not_billed";

/** UsageResult is the result of one event. */
export interface UsageResult {
  eventId: string;
  outcome: UsageOutcome;
  credits: bigint;
  creditTypeId: string;
  reason: string;
  overLimit: boolean;
}

/** Pending is an event on its way into a group: its batch position, and its row if already stored (replay). */
interface Pending {
  position: number;
  principal: string;
  event: UsageInput & { eventAt: Date };
  usageId: string | null;
}

const result = (eventId: string, outcome: UsageOutcome, reason = ""): UsageResult => ({ eventId, outcome, credits: 0n, creditTypeId: "", reason, overLimit: false });

/** AuditOf makes the audit record of a replay from what it rated (by batch position), or null when it rated nothing worth one. */
export type AuditOf = (rated: ReadonlyMap<number, UsageResult>) => AuditWrite | null;

/** reportUsage records a batch; one result per input, in order. Malformed events arrive as rejections. */
export async function reportUsage(deps: Deps, caller: Caller, batch: (UsageInput | { eventId: string; rejected: string })[]): Promise<UsageResult[]> {
  assert(batch.length <= limits.usageBatchSizeMax, "batches are bounded");
  const now = deps.now();
  const results: UsageResult[] = new Array(batch.length);
  const seen = new Set<string>();
  const accepted: Pending[] = [];
  batch.forEach((input, position) => {
    if ("rejected" in input) return void (results[position] = result(input.eventId, "rejected", input.rejected));
    if (seen.has(input.eventId)) return void (results[position] = result(input.eventId, "duplicate"));
    seen.add(input.eventId);
    const eventAt = input.eventAt ?? now;
    if (eventAt.getTime() < now.getTime() - deps.usage.lateCutoffMs) return void (results[position] = result(input.eventId, "rejected", "EVENT_TOO_LATE"));
    if (eventAt.getTime() > now.getTime() + limits.usageFutureToleranceMs) return void (results[position] = result(input.eventId, "rejected", "EVENT_IN_FUTURE"));
    accepted.push({ position, principal: caller.keyId, event: { ...input, eventAt }, usageId: null });
  });
  await rateAndRecord(deps, caller, accepted, results, null);
  return results;
}

/** replayUnrated rates stored unrated events whose customer and feature now exist; audit records what it burned, in the same transaction. */
export async function replayUnrated(deps: Deps, caller: Caller, events: Pending[], audit: AuditOf): Promise<UsageResult[]> {
  const results: UsageResult[] = new Array(events.length);
  await rateAndRecord(deps, caller, events.map((event, position) => ({ ...event, position })), results, audit);
  return results;
}

/**
 * rateAndRecord sends a batch's events as one op per lane, and fills results by position.
 * A replay's parts each carry their own audit record, written with what they burned.
 */
async function rateAndRecord(deps: Deps, caller: Caller, pending: Pending[], results: UsageResult[], audit: AuditOf | null): Promise<void> {
  if (pending.length === 0) return;
  const parts = new Map<number, Pending[]>();
  for (const p of pending) {
    const lane = deps.writes.laneOfCustomer(p.event.customerId);
    const part = parts.get(lane);
    if (part === undefined) parts.set(lane, [p]);
    else part.push(p);
  }
  await Promise.all(
    [...parts.values()].map(async (events) => {
      const rated = await deps.writes.submit(usageOp(caller, events, audit));
      for (const [position, eventResult] of rated) results[position] = eventResult;
    }),
  );
}

/** BalanceEvents are one balance's events of an op, each with its rate. */
interface BalanceEvents {
  key: BalanceKey;
  events: { p: Pending; rate: RateRow }[];
}

/** usageOp rates and records events (one lane's, or one replay's) as one op; its answer maps batch positions to results. */
export function usageOp(caller: Caller, events: readonly Pending[], audit: AuditOf | null): WriteOp<Map<number, UsageResult>> {
  let balances: BalanceEvents[] = [];
  let unrated: Pending[] = [];
  const first = events[0];
  assert(first !== undefined, "a usage op has events");
  return {
    lane: { customerId: first.event.customerId },
    weight: events.length,
    request: (reads) => {
      for (const { event } of events) {
        reads.rates.push({ customerId: event.customerId, featureKey: event.featureKey });
        reads.customerIds.push(event.customerId);
        reads.featureKeys.push(event.featureKey);
      }
    },
    prepare: (inputs) => {
      ({ balances, unrated } = sortByBalance(inputs, events));
      const keys = balances.map((balance) => balance.key);
      const prepared: Prepared = {
        keys,
        customerIds: [...new Set(events.map((p) => p.event.customerId))],
        createBalances: keys,
        claimEventIds: events.filter((p) => p.usageId === null).map((p) => ({ principal: p.principal, eventId: p.event.eventId })),
        carries: balances.flatMap((balance) => balance.events.map(({ p }) => ({ customerId: p.event.customerId, featureKey: p.event.featureKey }))),
      };
      return prepared;
    },
    plan: (ctx) => {
      try {
        const rated = new Map<number, UsageResult>();
        const fresh = (p: Pending) => p.usageId !== null || ctx.takeEventClaim(p.principal, p.event.eventId);
        for (const p of unrated) recordUnrated(ctx, p, fresh(p), rated);
        for (const balance of balances) {
          const kept = balance.events.filter(({ p }) => (fresh(p) ? true : void rated.set(p.position, result(p.event.eventId, "duplicate"))));
          if (kept.length > 0) burnEvents(ctx, caller, { ...balance, events: kept }, rated);
        }
        const record = audit?.(rated) ?? null;
        if (record !== null) ctx.draft.audit(record);
        return { value: rated };
      } catch (error) {
        // Event ids were claimed before the locks: an op that cannot record its events must not let the group commit the claims.
        throw new GroupAbort(error);
      }
    },
  };
}

/** sortByBalance splits events into those with a rate, by balance, and those without. */
function sortByBalance(inputs: WriteInputs, events: readonly Pending[]): { balances: BalanceEvents[]; unrated: Pending[] } {
  const byKey = new Map<string, BalanceEvents>();
  const unrated: Pending[] = [];
  for (const p of events) {
    const rate = inputs.rates.get(balanceKeyOf(p.event.customerId, p.event.featureKey));
    if (rate === undefined) {
      unrated.push(p);
      continue;
    }
    const key = { customerId: p.event.customerId, creditTypeId: rate.creditTypeId };
    const mapKey = balanceKeyOf(key.customerId, key.creditTypeId);
    const balance = byKey.get(mapKey) ?? { key, events: [] };
    balance.events.push({ p, rate });
    byKey.set(mapKey, balance);
  }
  return { balances: [...byKey.values()], unrated };
}

/** unratedReason says why an event has no rate: its customer or its feature does not exist (yet). */
function unratedReason(inputs: WriteInputs, p: Pending): string {
  if (!inputs.customers.has(p.event.customerId)) return "CUSTOMER_NOT_FOUND";
  if (!inputs.features.has(p.event.featureKey)) return "FEATURE_NOT_FOUND";
  return "UNRATED";
}

/** recordUnrated keeps a fresh event without a rate as a dead letter; a replayed one stays unrated. */
function recordUnrated(ctx: PlanContext, p: Pending, fresh: boolean, rated: Map<number, UsageResult>): void {
  if (!fresh) return void rated.set(p.position, result(p.event.eventId, "duplicate"));
  const reason = unratedReason(ctx.inputs, p);
  if (p.usageId === null) ctx.draft.insertUsage(unratedRow(p, reason));
  rated.set(p.position, result(p.event.eventId, "unrated", reason));
}

function unratedRow(p: Pending, reason: string): UsageRow {
  return {
    ...p.event, principal: p.principal, status: "unrated", reason, creditTypeId: null, pricingVersionId: null, rateOverride: false,
    rateCredits: null, ratePerUnits: null, carryBefore: null, carryAfter: null, credits: null, overLimit: false,
  };
}

/** rejectEvent refuses one event alone: nothing of it is recorded, and a fresh event's id may be reported again. */
function rejectEvent(ctx: PlanContext, p: Pending, reason: string, rated: Map<number, UsageResult>): void {
  if (p.usageId === null) ctx.draft.releaseEventClaim(p.principal, p.event.eventId);
  rated.set(p.position, result(p.event.eventId, "rejected", reason));
}

/**
 * burnEvents rates one balance's events in event-time order (so that lots are drawn as the
 * usage happened), burns the enforced ones, shadows the observed ones, and records them.
 * A balance the decision cannot use (too many open lots) rejects its events; an event
 * whose credits, or whose burn, would leave the int64 range is rejected alone, and the
 * others are rated again without it (its carry never happened).
 */
function burnEvents(ctx: PlanContext, caller: Caller, balance: BalanceEvents, rated: Map<number, UsageResult>): void {
  const { key } = balance;
  let before: BalanceState;
  try {
    before = loadedState(ctx.balance(key), key);
  } catch (error) {
    if (!(error instanceof LedgerError)) throw error;
    for (const { p } of balance.events) rejectEvent(ctx, p, error.reason, rated);
    return;
  }
  let ordered = [...balance.events].sort((a, b) => a.p.event.eventAt.getTime() - b.p.event.eventAt.getTime() || a.p.position - b.p.position);
  for (;;) {
    const rating = rateEvents(ctx, ordered);
    const planned = planUsageBurns(before, rating.burns, ctx.now.getTime());
    const outOfRange = new Set(rating.outOfRange);
    planned.outOfRange.forEach((out, burnIndex) => (out ? outOfRange.add(rating.burnRowIndex[burnIndex]) : undefined));
    if (outOfRange.size > 0) {
      for (const index of outOfRange) rejectEvent(ctx, ordered[index].p, "AMOUNT_OUT_OF_RANGE", rated);
      ordered = ordered.filter((_, index) => !outOfRange.has(index));
      continue;
    }
    for (const carry of rating.carries.values()) ctx.draft.setCarry(carry);
    planned.overLimit.forEach((over, burnIndex) => (rating.rows[rating.burnRowIndex[burnIndex]].overLimit = over));
    recordBurns(ctx, caller, key, ordered, rating, planned, rated);
    return;
  }
}

/** Rating is one balance's events rated in order: their rows, their burns and the carries they leave. */
interface Rating {
  rows: UsageRow[];
  burns: UsageBurn[];
  /** the row of each burn. */
  burnRowIndex: number[];
  /** rows whose credits exceed int64: to reject. */
  outOfRange: number[];
  carries: Map<string, CarryWrite>;
}

/** rateEvents rates events in order at their rates, each with its customer and feature's carry as the previous event left it. */
function rateEvents(ctx: PlanContext, ordered: readonly { p: Pending; rate: RateRow }[]): Rating {
  const rating: Rating = { rows: [], burns: [], burnRowIndex: [], outOfRange: [], carries: new Map() };
  ordered.forEach(({ p, rate }, rowIndex) => {
    const base = {
      ...p.event, principal: p.principal, reason: "", creditTypeId: rate.creditTypeId, pricingVersionId: rate.pricingVersionId,
      rateOverride: rate.override, rateCredits: rate.credits, ratePerUnits: rate.perUnits, overLimit: false,
    };
    const { mode } = enforcementOf({ featureKey: p.event.featureKey, customerId: p.event.customerId, featureMode: rate.enforcementMode, rollout: rate.rollout });
    if (mode === "off") return void rating.rows.push({ ...base, status: "not_billed", carryBefore: null, carryAfter: null, credits: 0n });
    const pair = balanceKeyOf(p.event.customerId, p.event.featureKey);
    const carried = rating.carries.get(pair) ?? ctx.draft.carry(p.event.customerId, p.event.featureKey);
    const rated = rateUsage(p.event.quantity, { credits: rate.credits, perUnits: rate.perUnits }, carried);
    rating.rows.push({ ...base, status: mode === "enforce" ? "burned" : "shadowed", carryBefore: rated.carryBefore, carryAfter: rated.carryAfter, credits: rated.credits });
    if (rated.credits > limits.amountMax) return void rating.outOfRange.push(rowIndex);
    rating.carries.set(pair, { customerId: p.event.customerId, featureKey: p.event.featureKey, perUnits: rate.perUnits, carry: rated.carryAfter });
    if (mode !== "enforce") return;
    rating.burnRowIndex.push(rowIndex);
    rating.burns.push({ amount: rated.credits, eventAtMs: p.event.eventAt.getTime() });
  });
  return rating;
}

/** recordBurns writes one balance's rated events: their rows, the burn entries linked to them, and the shadows of observed ones. */
function recordBurns(
  ctx: PlanContext,
  caller: Caller,
  key: BalanceKey,
  ordered: readonly { p: Pending }[],
  rating: Rating,
  planned: PlannedUsage,
  rated: Map<number, UsageResult>,
): void {
  const { rows, burnRowIndex } = rating;
  // Each event's row: stored now, or (a replayed dead letter) rated in place.
  const refs = ordered.map(({ p }, index) => {
    if (p.usageId === null) return { usageId: null, usageIndex: ctx.draft.insertUsage(rows[index]) };
    ctx.draft.rateUsage({ usageId: p.usageId, row: rows[index] });
    return { usageId: p.usageId, usageIndex: null };
  });
  const rowOf = (entry: PlannedEntry) => (entry.eventIndex === undefined ? null : burnRowIndex[entry.eventIndex]);
  // Written even when nothing burned (observed features move only carries): every change
  // under a balance's lock writes its row, which is how a later group sees it changed.
  // Burns of events allowed offline (fail-open, replayed from an SDK spool) say so.
  // Usage past the limit is flagged on its event (asynchronous enforcement), not on its entries.
  const { overLimit: _flaggedOnEvents, outOfRange: _none, ...burned } = planned;
  ctx.draft.change(key, burned, { reservationId: null, requestId: null, actor: caller.keyId, reasonCode: "usage", effectiveAt: ctx.now }, (entry) => {
    const row = rowOf(entry);
    return row === null ? {} : { ...refs[row], reasonCode: rows[row].offline ? "usage_offline" : "usage" };
  });
  ordered.forEach(({ p }, index) => {
    const row = rows[index];
    if (row.status === "shadowed") {
      ctx.draft.shadow({ ...key, mode: "observe", featureKey: row.featureKey, ...refs[index], reservationId: null, requestId: null, credits: row.credits ?? 0n, effectiveAt: row.eventAt });
    }
    const outcome = row.status === "burned" ? "burned" : row.status === "shadowed" ? "shadowed" : "not_billed";
    rated.set(p.position, { eventId: p.event.eventId, outcome, credits: row.credits ?? 0n, creditTypeId: key.creditTypeId, reason: "", overLimit: row.overLimit });
  });
}

export type { Pending as PendingUsage };
