// ReportUsage and the replay of unrated events: rate usage at each customer's rate and
// burn it (asynchronous enforcement). A batch is split into groups by customer and credit
// type, and all groups are written in one transaction of set-based statements (a handful
// of statements per batch, not per group): claim the event ids (in id order), lock the
// balances (in key order, so batches never deadlock), read their lots and carries, rate
// and plan each group in memory, then write events, balances, lots, entries and carries.
import { LedgerError } from "../errors.js";
import { assert, type BalanceState, type PlannedEntry } from "../ledger/balance-state.js";
import { type Planned, planUsageBurns, type UsageBurn } from "../ledger/plan.js";
import { type Carry, rateUsage } from "../ledger/rate-usage.js";
import { limits } from "../limits.js";
import { type BalanceKey, balanceKeyOf, type LotRow, ensureBalances, lockBalances, selectFreeLotsOf, updateBalances, updateLots } from "../store/balance-store.js";
import { mapDriverErrors, type Tx, withTransaction } from "../store/database.js";
import { insertEntryBatches } from "../store/entry-store.js";
import { type RateRow, selectCarries, selectRates, upsertCarries } from "../store/rate-store.js";
import { claimEventIds, insertShadowEntries, insertUsageEvents, rateUnratedEvent, type UsageRow } from "../store/usage-store.js";
import { changedLots } from "./balance-change.js";
import type { Caller, Deps } from "./context.js";
import { explainUnrated } from "./unrated-reason.js";

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
  await rateAndRecord(deps, caller, accepted, results);
  return results;
}

/** replayUnrated rates stored unrated events whose customer and feature now exist. */
export async function replayUnrated(deps: Deps, caller: Caller, events: Pending[], onRated?: OnRated): Promise<UsageResult[]> {
  const results: UsageResult[] = new Array(events.length);
  await rateAndRecord(deps, caller, events.map((event, position) => ({ ...event, position })), results, onRated);
  return results;
}

/** OnRated runs in the transaction that rated events (by their batch position), before it commits: an audit record. */
export type OnRated = (tx: Tx, rated: ReadonlyMap<number, UsageResult>) => Promise<void>;

async function rateAndRecord(deps: Deps, caller: Caller, pending: Pending[], results: UsageResult[], onRated?: OnRated): Promise<void> {
  const pairs = [...new Map(pending.map((p) => [`${p.event.customerId}\u0000${p.event.featureKey}`, p.event])).values()];
  const rates = new Map((await mapDriverErrors(() => selectRates(deps.pool, pairs))).map((rate) => [`${rate.customerId}\u0000${rate.featureKey}`, rate]));
  const groups = new Map<string, Group>();
  const unrated: Pending[] = [];
  for (const p of pending) {
    const rate = rates.get(`${p.event.customerId}\u0000${p.event.featureKey}`);
    if (rate === undefined) {
      unrated.push(p);
      continue;
    }
    const key = balanceKeyOf(p.event.customerId, rate.creditTypeId);
    const group = groups.get(key) ?? { key: { customerId: p.event.customerId, creditTypeId: rate.creditTypeId }, events: [] };
    group.events.push(p);
    groups.set(key, group);
  }
  const sorted = [...groups.values()].sort((a, b) => compareKeys(a.key, b.key));
  const rated = sorted.length === 0 ? new Map<number, UsageResult>() : await withRetries(() =>
          withTransaction(deps.pool, async (tx) => {
            const rated = await rateGroups(tx, deps, caller, sorted, rates);
            await onRated?.(tx, rated);
            return rated;
          }),
        );
  const kept = unrated.length === 0 ? new Map<number, UsageResult>() : await recordUnrated(deps, caller, unrated);
  for (const [position, groupResult] of [...rated, ...kept]) results[position] = groupResult;
}

/** Group is one balance's events of a batch. */
interface Group {
  key: BalanceKey;
  events: Pending[];
}

function compareKeys(a: BalanceKey, b: BalanceKey): number {
  return a.customerId < b.customerId ? -1 : a.customerId > b.customerId ? 1 : a.creditTypeId < b.creditTypeId ? -1 : a.creditTypeId > b.creditTypeId ? 1 : 0;
}

async function withRetries<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      // A lost lock conflict rolled everything back, so the batch may simply run again.
      if (!(error instanceof LedgerError && error.kind === "conflict") || attempt >= limits.usageGroupAttemptsMax) throw error;
    }
  }
}

async function recordUnrated(deps: Deps, caller: Caller, events: Pending[]): Promise<Map<number, UsageResult>> {
  const fresh = events.filter((p) => p.usageId === null);
  const reasons = await explainUnrated(deps.pool, events.map((p) => p.event));
  const results = new Map<number, UsageResult>();
  for (const p of events) if (p.usageId !== null) results.set(p.position, result(p.event.eventId, "unrated", reasons.get(p.event.eventId) ?? "UNRATED"));
  if (fresh.length === 0) return results;
  return withTransaction(deps.pool, async (tx) => {
    const claimed = await claimEventIds(tx, caller.keyId, fresh.map((p) => p.event.eventId), deps.now());
    const kept = fresh.filter((p) => claimed.has(p.event.eventId));
    await insertUsageEvents(tx, kept.map((p) => unratedRow(p, reasons.get(p.event.eventId) ?? "UNRATED")));
    for (const p of fresh) {
      const reason = reasons.get(p.event.eventId) ?? "UNRATED";
      results.set(p.position, claimed.has(p.event.eventId) ? result(p.event.eventId, "unrated", reason) : result(p.event.eventId, "duplicate"));
    }
    return results;
  });
}

function unratedRow(p: Pending, reason: string): UsageRow {
  return {
    ...p.event, principal: p.principal, status: "unrated", reason, creditTypeId: null, pricingVersionId: null, rateOverride: false,
    rateCredits: null, ratePerUnits: null, carryBefore: null, carryAfter: null, credits: null, overLimit: false,
  };
}

/** GroupPlan is one balance's rated events and their burn plan. */
interface GroupPlan {
  group: Group;
  before: BalanceState;
  ordered: Pending[];
  rows: UsageRow[];
  burnRowIndex: number[];
  planned: Planned;
}

/** rateGroups rates and records the events of many balances, sorted by key. Inside a transaction. */
async function rateGroups(tx: Tx, deps: Deps, caller: Caller, sortedGroups: Group[], rates: Map<string, RateRow>): Promise<Map<number, UsageResult>> {
  const results = new Map<number, UsageResult>();
  const fresh = sortedGroups.flatMap((group) => group.events.filter((p) => p.usageId === null));
  const claimed = await claimEventIds(tx, caller.keyId, fresh.map((p) => p.event.eventId), deps.now());
  for (const p of fresh) if (!claimed.has(p.event.eventId)) results.set(p.position, result(p.event.eventId, "duplicate"));
  const groups = sortedGroups
    .map((group) => ({ ...group, events: group.events.filter((p) => p.usageId !== null || claimed.has(p.event.eventId)) }))
    .filter((group) => group.events.length > 0);
  if (groups.length === 0) return results;

  const keys = groups.map((group) => group.key);
  await ensureBalances(tx, keys);
  const balances = await lockBalances(tx, keys);
  const now = deps.now();
  const lotsByBalance = new Map<string, LotRow[]>();
  for (const lot of await selectFreeLotsOf(tx, keys)) {
    const mapKey = balanceKeyOf(lot.customerId, lot.creditTypeId);
    const lots = lotsByBalance.get(mapKey);
    if (lots === undefined) lotsByBalance.set(mapKey, [lot]);
    else lots.push(lot);
  }
  const carryPairs = groups.flatMap((group) => [...new Set(group.events.map((p) => p.event.featureKey))].map((featureKey) => ({ customerId: group.key.customerId, featureKey })));
  const carries = new Map((await selectCarries(tx, carryPairs)).map((carry) => [`${carry.customerId}\u0000${carry.featureKey}`, carry as Carry]));

  const plans = groups.map((group): GroupPlan => {
    const mapKey = balanceKeyOf(group.key.customerId, group.key.creditTypeId);
    const row = balances.get(mapKey);
    assert(row !== undefined, "every ensured balance is locked");
    const lots = lotsByBalance.get(mapKey) ?? [];
    if (lots.length > limits.lotsPerDecisionMax) throw new LedgerError("rejected", "TOO_MANY_LOTS", `a balance has more than ${limits.lotsPerDecisionMax} open lots`, { customer_id: group.key.customerId });
    const before: BalanceState = { ...row, lots };
    // Rate in event-time order, so that lots are drawn as the usage happened.
    const ordered = [...group.events].sort((a, b) => a.event.eventAt.getTime() - b.event.eventAt.getTime() || a.position - b.position);
    const rows: UsageRow[] = [];
    const burns: UsageBurn[] = [];
    const burnRowIndex: number[] = [];
    for (const p of ordered) {
      const rate = rates.get(`${group.key.customerId}\u0000${p.event.featureKey}`);
      assert(rate !== undefined && rate.creditTypeId === group.key.creditTypeId, "a grouped event has its rate");
      rows.push(ratedRow(p, rate, carries, `${group.key.customerId}\u0000`, burns, burnRowIndex, rows.length));
    }
    const planned = planUsageBurns(before, burns, now.getTime());
    planned.overLimit.forEach((over, burnIndex) => (rows[burnRowIndex[burnIndex]].overLimit = over));
    return { group, before, ordered, rows, burnRowIndex, planned };
  });

  const usageIds = await storeRows(tx, plans.flatMap((plan) => plan.ordered), plans.flatMap((plan) => plan.rows));
  let offset = 0;
  const withIds = plans.map((plan) => {
    const ids = usageIds.slice(offset, offset + plan.rows.length);
    offset += plan.rows.length;
    return { ...plan, usageIds: ids };
  });
  const burning = withIds.filter((plan) => plan.burnRowIndex.length > 0);
  await updateBalances(tx, burning.map((plan) => ({ key: plan.group.key, state: plan.planned.state })));
  await updateLots(tx, burning.flatMap((plan) => changedLots(plan.before, plan.planned).map((lot) => ({ ...lot, customerId: plan.group.key.customerId }))));
  // Burns of events allowed offline (fail-open, replayed from an SDK spool) say so.
  await insertEntryBatches(tx, burning.flatMap((plan) => {
    const rowOf = (entry: PlannedEntry) => (entry.eventIndex === undefined ? null : plan.burnRowIndex[entry.eventIndex]);
    const isOffline = (entry: PlannedEntry) => rowOf(entry) !== null && plan.rows[rowOf(entry)!].offline;
    return [false, true].map((offline) => {
      const entries = plan.planned.entries.filter((entry) => isOffline(entry) === offline);
      const reasonCode = offline ? "usage_offline" : "usage";
      const usageIds = entries.map((entry) => (rowOf(entry) === null ? null : plan.usageIds[rowOf(entry)!]));
      return { cause: { ...plan.group.key, reservationId: null, requestId: null, actor: caller.keyId, reasonCode, effectiveAt: now }, entries, usageIds };
    });
  }));
  await insertShadowEntries(tx, withIds.flatMap((plan) => plan.rows.flatMap((row, index) =>
    row.status === "shadowed"
      ? [{ ...plan.group.key, featureKey: row.featureKey, usageId: plan.usageIds[index], credits: row.credits ?? 0n, effectiveAt: row.eventAt }]
      : [],
  )));
  await upsertCarries(tx, [...carries.entries()].map(([pairKey, carry]) => ({ customerId: pairKey.split("\u0000")[0], featureKey: pairKey.split("\u0000")[1], ...carry })));
  for (const plan of withIds) {
    plan.ordered.forEach((p, index) => {
      const row = plan.rows[index];
      const outcome = row.status === "burned" ? "burned" : row.status === "shadowed" ? "shadowed" : "not_billed";
      results.set(p.position, { eventId: p.event.eventId, outcome, credits: row.credits ?? 0n, creditTypeId: plan.group.key.creditTypeId, reason: "", overLimit: row.overLimit });
    });
  }
  return results;
}

function ratedRow(
  p: Pending, rate: RateRow, carries: Map<string, Carry>, carryPrefix: string, burns: UsageBurn[], burnRowIndex: number[], rowIndex: number,
): UsageRow {
  const base = {
    ...p.event, principal: p.principal, reason: "", creditTypeId: rate.creditTypeId, pricingVersionId: rate.pricingVersionId,
    rateOverride: rate.override, rateCredits: rate.credits, ratePerUnits: rate.perUnits, overLimit: false,
  };
  if (rate.enforcementMode === "off") return { ...base, status: "not_billed", carryBefore: null, carryAfter: null, credits: 0n };
  const rated = rateUsage(p.event.quantity, { credits: rate.credits, perUnits: rate.perUnits }, carries.get(carryPrefix + p.event.featureKey) ?? null);
  carries.set(carryPrefix + p.event.featureKey, { perUnits: rate.perUnits, carry: rated.carryAfter });
  if (rate.enforcementMode === "enforce") {
    burns.push({ amount: rated.credits, eventAtMs: p.event.eventAt.getTime() });
    burnRowIndex.push(rowIndex);
  }
  return { ...base, status: rate.enforcementMode === "enforce" ? "burned" : "shadowed", carryBefore: rated.carryBefore, carryAfter: rated.carryAfter, credits: rated.credits };
}

/** storeRows inserts new events and rates replayed ones; returns usage ids aligned with rows. */
async function storeRows(tx: Tx, ordered: Pending[], rows: UsageRow[]): Promise<string[]> {
  const freshIndexes = ordered.flatMap((p, index) => (p.usageId === null ? [index] : []));
  const insertedIds = await insertUsageEvents(tx, freshIndexes.map((index) => rows[index]));
  const usageIds = ordered.map((p) => p.usageId ?? "");
  freshIndexes.forEach((rowIndex, i) => (usageIds[rowIndex] = insertedIds[i]));
  for (const [index, p] of ordered.entries()) {
    if (p.usageId === null) continue;
    if (!(await rateUnratedEvent(tx, p.usageId, rows[index]))) {
      throw new LedgerError("conflict", "EVENT_ALREADY_REPLAYED", `usage ${p.usageId} was rated by a concurrent replay`);
    }
  }
  return usageIds;
}

export type { Pending as PendingUsage };
