// ReportUsage and the replay of unrated events: rate usage at each customer's rate and
// burn it (asynchronous enforcement). A batch becomes one op of the write path per lane
// (write-op.ts), so its events join the groups of their customers' lanes: event ids are
// claimed before the locks, each balance's events are rated in event-time order and
// burned in memory, and the events, entries, shadow entries and carries are written with
// the rest of the group. An event the ledger cannot record (its credits beyond int64, a
// balance with too many lots) is rejected alone and its claim released in the same
// write; an op that fails otherwise aborts its group (which then runs op by op), so a
// claimed event id is never committed without its event.
import { createHash } from "node:crypto";
import { LedgerError } from "../errors.js";
import { assert, type BalanceState, type PlannedEntry } from "../ledger/balance-state.js";
import { type PlannedUsage, planUsageBurns, type UsageBurn } from "../ledger/plan.js";
import { enforcementOf } from "../ledger/enforcement.js";
import { rateUsage } from "../ledger/rate-usage.js";
import { limits } from "../limits.js";
import { type BalanceKey, balanceKeyOf } from "../store/balance-store.js";
import type { AuditWrite, CarryWrite } from "../store/balance-writer.js";
import type { RateRow } from "../store/rate-store.js";
import type { SentUsage, UsageRow } from "../store/usage-store.js";
import { eventHashLength, rateAt, type WriteInputs } from "../store/write-inputs-store.js";
import type { Caller, Deps } from "./context.js";
import { type PoolSpend, spendAsMember } from "./pool-spend.js";
import { GroupAbort, loadedState, type PlanContext, type Prepared, spenderOf, type WriteOp } from "./write-op.js";

/** UsageInput is a well-formed usage event of a batch. */
export type UsageInput = SentUsage;

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
  /** a fresh event's fingerprint (see usageFingerprint) and event time as sent; a stored event has neither. */
  sent: { hash: Buffer; eventAt: Date | null } | null;
  /** its id was taken earlier in its batch by another event: kept as a conflict, not rated. */
  reusedInBatch?: true;
}

/**
 * usageFingerprint identifies an event's body as sent: customer, feature, quantity, event
 * time (unset stays unset) and properties. Whether it was sent offline is left out: a
 * spool replaying an event the ledger did record is the same event.
 */
export function usageFingerprint(input: UsageInput): Buffer {
  const properties = Object.keys(input.properties).sort().map((key) => [key, input.properties[key]]);
  const body = JSON.stringify([input.customerId, input.featureKey, input.quantity.toString(), input.eventAt?.getTime() ?? null, properties]);
  return createHash("sha256").update(body).digest().subarray(0, eventHashLength);
}

const result = (eventId: string, outcome: UsageOutcome, reason = ""): UsageResult => ({ eventId, outcome, credits: 0n, creditTypeId: "", reason, overLimit: false });

/**
 * LateUsage bounds how far back usage reaches into expired lots: a lot that expired after
 * revivableAfter (now less the late cutoff) can still pay for an event that happened while
 * it was live.
 */
export interface LateUsage {
  revivableAfter: Date;
}

/** AuditOf makes the audit record of a replay from what it rated (by batch position), or null when it rated nothing worth one. */
export type AuditOf = (rated: ReadonlyMap<number, UsageResult>) => AuditWrite | null;

/**
 * reportUsage records a batch; one result per input, in order. Malformed events arrive as
 * rejections. audit, when given, makes each lane's part of the batch an audit record of
 * what it rated, written in that part's transaction (usage from a queue says so).
 */
export async function reportUsage(deps: Deps, caller: Caller, batch: (UsageInput | { eventId: string; rejected: string })[], audit: AuditOf | null = null): Promise<UsageResult[]> {
  assert(batch.length <= limits.usageBatchSizeMax, "batches are bounded");
  const now = deps.now();
  const results: UsageResult[] = new Array(batch.length);
  const seen = new Map<string, Buffer>();
  const accepted: Pending[] = [];
  batch.forEach((input, position) => {
    if ("rejected" in input) return void (results[position] = result(input.eventId, "rejected", input.rejected));
    const eventAt = input.eventAt ?? now;
    const hash = usageFingerprint(input);
    const pending: Pending = { position, principal: caller.keyId, event: { ...input, eventAt }, usageId: null, sent: { hash, eventAt: input.eventAt } };
    // An id seen earlier in the batch: the same event is a duplicate, another one reuses the id.
    const first = seen.get(input.eventId);
    if (first !== undefined) {
      if (first.equals(hash)) return void (results[position] = result(input.eventId, "duplicate"));
      return void accepted.push({ ...pending, reusedInBatch: true });
    }
    seen.set(input.eventId, hash);
    if (eventAt.getTime() < now.getTime() - deps.usage.lateCutoffMs) return void (results[position] = result(input.eventId, "rejected", "EVENT_TOO_LATE"));
    if (eventAt.getTime() > now.getTime() + limits.usageFutureToleranceMs) return void (results[position] = result(input.eventId, "rejected", "EVENT_IN_FUTURE"));
    accepted.push(pending);
  });
  await rateAndRecord(deps, caller, accepted, results, audit);
  deps.observer?.usageReported(results);
  return results;
}

/** replayUnrated rates stored unrated events whose customer and feature now exist; audit records what it burned, in the same transaction. */
export async function replayUnrated(deps: Deps, caller: Caller, events: Omit<Pending, "sent">[], audit: AuditOf): Promise<UsageResult[]> {
  const results: UsageResult[] = new Array(events.length);
  await rateAndRecord(deps, caller, events.map((event, position) => ({ ...event, position, sent: null })), results, audit);
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
      const late = { revivableAfter: new Date(deps.now().getTime() - deps.usage.lateCutoffMs) };
      const rated = await deps.writes.submit(usageOp(caller, events, audit, late));
      for (const [position, eventResult] of rated) results[position] = eventResult;
    }),
  );
}

/** BalanceEvents are one balance's events of an op, each with its rate (a pool owner's balance holds its members' events). */
interface BalanceEvents {
  key: BalanceKey;
  events: { p: Pending; rate: RateRow }[];
}

/** MemberPools are the pool memberships of an op's customers that spend a pool owner's balance, by customer id. */
type MemberPools = Map<string, PoolSpend>;

/**
 * memberPoolsOf checks the guessed spender of every customer of an op against the
 * memberships read under the locks (PoolMoved when one is wrong: the group runs again)
 * and returns those that are pool members.
 */
function memberPoolsOf(ctx: PlanContext, guesses: ReadonlyMap<string, string>): MemberPools {
  const pools: MemberPools = new Map();
  for (const [customerId, guessed] of guesses) {
    const { membership } = spenderOf(ctx, customerId, guessed);
    if (membership !== null) pools.set(customerId, { memberCustomerId: customerId, membership });
  }
  return pools;
}

/** usageOp rates and records events (one lane's, or one replay's) as one op; its answer maps batch positions to results. */
export function usageOp(caller: Caller, events: readonly Pending[], audit: AuditOf | null, late: LateUsage): WriteOp<Map<number, UsageResult>> {
  let balances: BalanceEvents[] = [];
  let unrated: Pending[] = [];
  let guesses = new Map<string, string>();
  const first = events[0];
  assert(first !== undefined, "a usage op has events");
  const reusedInBatch = events.filter((p) => p.reusedInBatch === true);
  const rateable = events.filter((p) => p.reusedInBatch !== true);
  return {
    lane: { customerId: first.event.customerId },
    weight: events.length,
    request: (reads) => {
      const earliest = new Map<string, { customerId: string; featureKey: string; since: Date }>();
      for (const { event } of rateable) {
        reads.rates.push({ customerId: event.customerId, featureKey: event.featureKey, at: event.eventAt });
        reads.customerIds.push(event.customerId);
        reads.featureKeys.push(event.featureKey);
        const pair = balanceKeyOf(event.customerId, event.featureKey);
        const since = event.eventAt < late.revivableAfter ? late.revivableAfter : event.eventAt;
        const known = earliest.get(pair);
        if (known === undefined || since < known.since) earliest.set(pair, { customerId: event.customerId, featureKey: event.featureKey, since });
      }
      // Lots that expired after an event's time may still pay for it: read which, to load them.
      reads.expiredLots.push(...earliest.values());
    },
    prepare: (inputs) => {
      const customerIds = [...new Set(events.map((p) => p.event.customerId))];
      guesses = new Map(customerIds.map((id) => [id, inputs.poolParents.parentOf(id) ?? id]));
      ({ balances, unrated } = sortByBalance(inputs, rateable, guesses));
      const keys = balances.map((balance) => balance.key);
      const prepared: Prepared = {
        keys,
        customerIds,
        pinnedGrantIds: inputs.expiredLots.filter((lot) => customerIds.includes(lot.customerId)).map((lot) => lot.grantId),
        createBalances: keys,
        claimEventIds: rateable.flatMap((p) => (p.sent === null ? [] : [{ principal: p.principal, eventId: p.event.eventId, hash: p.sent.hash }])),
        carries: balances.flatMap((balance) => balance.events.map(({ p }) => ({ customerId: p.event.customerId, featureKey: p.event.featureKey }))),
        poolMembers: customerIds,
      };
      return prepared;
    },
    plan: (ctx) => {
      try {
        const rated = new Map<number, UsageResult>();
        const pools = memberPoolsOf(ctx, guesses);
        // A stored event (a replay) is its own claim; a sent one is fresh only if this group claimed its id.
        const fresh = (p: Pending) => {
          const claim = p.sent === null ? "fresh" : ctx.eventClaim({ principal: p.principal, eventId: p.event.eventId, hash: p.sent.hash });
          if (claim === "duplicate") rated.set(p.position, result(p.event.eventId, "duplicate"));
          if (claim === "reused") recordReused(ctx, p, rated);
          return claim === "fresh";
        };
        for (const p of reusedInBatch) recordReused(ctx, p, rated);
        for (const p of unrated) if (fresh(p)) recordUnrated(ctx, p, rated);
        for (const balance of balances) {
          const kept = balance.events.filter(({ p }) => fresh(p));
          if (kept.length > 0) burnEvents(ctx, caller, { ...balance, events: kept }, rated, late, pools);
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

/**
 * recordReused refuses an event whose id another event took (from the same API key) and
 * keeps it, as sent, for investigation: a producer reusing ids would otherwise lose
 * usage without a trace.
 */
function recordReused(ctx: PlanContext, p: Pending, rated: Map<number, UsageResult>): void {
  assert(p.sent !== null, "only a sent event can reuse an id");
  const { eventId, customerId, featureKey, quantity, properties, offline } = p.event;
  ctx.draft.usageConflict({ principal: p.principal, eventId, customerId, featureKey, quantity, eventAt: p.sent.eventAt, properties, offline, receivedAt: ctx.now });
  rated.set(p.position, result(eventId, "rejected", "EVENT_ID_REUSED"));
}

/** sortByBalance splits events into those with a rate, by balance, and those without. */
function sortByBalance(inputs: WriteInputs, events: readonly Pending[], spenders: ReadonlyMap<string, string>): { balances: BalanceEvents[]; unrated: Pending[] } {
  const byKey = new Map<string, BalanceEvents>();
  const unrated: Pending[] = [];
  for (const p of events) {
    const rate = rateAt(inputs, p.event.customerId, p.event.featureKey, p.event.eventAt);
    if (rate === undefined) {
      unrated.push(p);
      continue;
    }
    const key = { customerId: spenders.get(p.event.customerId) ?? p.event.customerId, creditTypeId: rate.creditTypeId };
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
function recordUnrated(ctx: PlanContext, p: Pending, rated: Map<number, UsageResult>): void {
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
function burnEvents(ctx: PlanContext, caller: Caller, balance: BalanceEvents, rated: Map<number, UsageResult>, late: LateUsage, pools: MemberPools): void {
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
    const planned = planUsageBurns(before, rating.burns, ctx.now.getTime(), { revivableAfterMs: late.revivableAfter.getTime() });
    const outOfRange = new Set(rating.outOfRange);
    planned.outOfRange.forEach((out, burnIndex) => (out ? outOfRange.add(rating.burnRowIndex[burnIndex]) : undefined));
    if (outOfRange.size > 0) {
      for (const index of outOfRange) rejectEvent(ctx, ordered[index].p, "AMOUNT_OUT_OF_RANGE", rated);
      ordered = ordered.filter((_, index) => !outOfRange.has(index));
      continue;
    }
    for (const carry of rating.carries.values()) ctx.draft.setCarry(carry);
    planned.overLimit.forEach((over, burnIndex) => (rating.rows[rating.burnRowIndex[burnIndex]].overLimit = over));
    countMemberUsage(ctx, key, ordered, rating, pools);
    recordBurns(ctx, caller, key, ordered, rating, planned, rated, pools);
    return;
  }
}

/**
 * countMemberUsage counts each pool member's burned events against its limit. Usage has
 * already happened: past the limit it is burned all the same, and its event flagged.
 */
function countMemberUsage(ctx: PlanContext, key: BalanceKey, ordered: readonly { p: Pending }[], rating: Rating, pools: MemberPools): void {
  ordered.forEach(({ p }, index) => {
    const pool = pools.get(p.event.customerId);
    const row = rating.rows[index];
    if (pool === undefined || row.status !== "burned") return;
    if (spendAsMember(ctx, pool, key, row.credits ?? 0n, { enforce: false }).overLimit) row.overLimit = true;
  });
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
  pools: MemberPools,
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
    if (row === null) return {};
    // A late event that took back part of a lot's expiry says so on that entry.
    const memberCustomerId = pools.has(rows[row].customerId) ? rows[row].customerId : null;
    return { ...refs[row], memberCustomerId, reasonCode: entry.kind === "unexpire" ? "late_usage" : rows[row].offline ? "usage_offline" : "usage" };
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
