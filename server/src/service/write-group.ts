// One group of balance changes in one transaction: the write path every balance change
// takes, from a lone unary call (a group of one) to a thousand items from many callers. A
// fixed number of statements, whatever the group's size:
//   1. read what the ops need before any lock (reservations, rates, what exists);
//   2. create missing customers and balances and claim usage event ids (only if asked);
//   3. lock every balance in one global key order, and read in the same statement the lots,
//      reservation statuses, carries and stored claims (lockAndSelectDecisionInputs); only if
//      a locked balance changed after that statement's snapshot, read them again;
//   4. decide each op in order, in memory, against the state the ops before it left (the
//      pure core decides; a refusal is that op's answer and writes nothing);
//   5. write everything in one statement (writeBalanceChanges), and COMMIT once.
// A stored claim is answered as a replay; a request id repeated inside the group waits for
// the next group. If the transaction loses a race (a request id claimed meanwhile, a
// deadlock), it runs again; if it fails otherwise, nothing of it was written and every op
// runs again alone, so one bad item never fails its neighbours.
import { LedgerError } from "../errors.js";
import { assert, availableOf, type BalanceState, type LotState, overdraftInUseOf } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import {
  type BalanceKey,
  balanceKeyOf,
  type DecisionInputs,
  type DecisionRequest,
  lockAndSelectDecisionInputs,
  selectDecisionInputs,
  type Thresholds,
} from "../store/balance-store.js";
import {
  type BalanceTotalsWrite,
  ClaimTakenError,
  type ClaimWrite,
  type CarryWrite,
  emptyWriteSet,
  type EntryWrite,
  type LotWrite,
  type NewLotWrite,
  writeBalanceChanges,
  type WriteSet,
} from "../store/balance-writer.js";
import { withDeadline } from "../deadline.js";
import { type Tx, toDomainError, withTransaction } from "../store/database.js";
import type { EntryRow } from "../store/entry-store.js";
import { insertClaims } from "../store/idempotency-store.js";
import {
  type ClaimedEvents,
  type EventClaim,
  emptyWriteInputs,
  insertMissingRows,
  selectWriteInputs,
  type WriteInputs,
} from "../store/write-inputs-store.js";
import type pg from "pg";
import { customerHash } from "./customer-hash.js";
import type { Caller, Idempotency } from "./context.js";
import { decodeResult } from "./result-codec.js";
import { claimRowOf } from "./run-idempotent.js";
import type { MemberUsage } from "../ledger/pool-limit.js";
import type { PoolMembership } from "../store/balance-store.js";
import type { PoolUsageWrite } from "../store/balance-writer.js";
import { type PoolCache, sharedPoolCache } from "./pool-cache.js";
import type { WriteObserver } from "./write-observer.js";
import { BalanceNeeded, type BalanceSlot, Draft, GroupAbort, PoolMoved, type GroupView, type Outcome, type PlanContext, type PlanResult, type Prepared, type ReadRequest, type WriteOp } from "./write-op.js";

/** groupStats counts group transactions of two or more ops that committed, and those that failed and ran op by op (process-wide, for metrics and tests). */
export const groupStats = { committed: 0, fellBack: 0 };

/** groupTimings adds up, over every group transaction run, its ops and the milliseconds of each step (process-wide, for metrics and benchmarks). */
export const groupTimings = { transactions: 0, ops: 0, reloads: 0, readMs: 0, createMs: 0, lockMs: 0, loadMs: 0, planMs: 0, writeMs: 0, commitMs: 0, totalMs: 0 };

/** GroupDeps are what a group needs: the database and the clock. */
export interface GroupDeps {
  pool: pg.Pool;
  now: () => Date;
  /** called after a group committed that flagged a balance for auto-recharge (the recharge job's kick). */
  rechargeDue?: () => void;
  /** this process's guesses of pool membership (sharedPoolCache when absent). */
  pools?: PoolCache;
  /** told after each committed group transaction (metrics); none when absent. */
  observer?: WriteObserver;
}

/** GroupOptions shape one group. */
export interface GroupOptions {
  /** background jobs: skip balances another transaction holds (their ops see "busy"). */
  skipLocked?: boolean;
  /** the customer-hash partition every customer of the group must be in. */
  partition?: { index: number; count: number };
  /**
   * per op, its caller's deadline (epoch ms), if it has one. The group's statements end by
   * the earliest: a caller whose time ran out is answered Unavailable and its op is never
   * applied, exactly as a lone call; the other ops run again in the next group.
   */
  deadlinesAtMs?: readonly (number | undefined)[];
}

/** GroupOutcome is an op's answer, or that it must wait for another group (to its lane, or the customer's). */
export type GroupOutcome<T> = Outcome<T> | { deferred: true; customerId?: string };

/** AnyOp is an op of any result type. */
type AnyOp = WriteOp<unknown>;

function newReadRequest(): ReadRequest {
  return { reservationIds: [], rates: [], customerIds: [], creditTypeIds: [], featureKeys: [], expiredLots: [] };
}

const unique = <T>(values: T[], keyOf: (value: T) => string = String): T[] => [...new Map(values.map((value) => [keyOf(value), value])).values()];
const pairKey = (pair: { customerId: string; featureKey: string }) => balanceKeyOf(pair.customerId, pair.featureKey);
const keyOf = (key: BalanceKey) => balanceKeyOf(key.customerId, key.creditTypeId);

function compareKeys(a: BalanceKey, b: BalanceKey): number {
  return a.customerId < b.customerId ? -1 : a.customerId > b.customerId ? 1 : a.creditTypeId < b.creditTypeId ? -1 : a.creditTypeId > b.creditTypeId ? 1 : 0;
}

/** readInputs runs step 1 when any op asked for something. */
async function readInputs(tx: Tx, ops: readonly AnyOp[]): Promise<WriteInputs> {
  const reads = newReadRequest();
  for (const op of ops) op.request(reads);
  if (Object.values(reads).every((list: unknown[]) => list.length === 0)) return emptyWriteInputs();
  return selectWriteInputs(tx, {
    reservationIds: unique(reads.reservationIds),
    rates: unique(reads.rates, (rate) => `${pairKey(rate)}@${rate.at?.getTime() ?? "now"}`),
    customerIds: unique(reads.customerIds),
    creditTypeIds: unique(reads.creditTypeIds),
    featureKeys: unique(reads.featureKeys),
    expiredLots: reads.expiredLots,
  });
}

/** prepareAll runs each op's prepare; refusals and ops of another partition are answered at once. */
function prepareAll(ops: readonly AnyOp[], inputs: WriteInputs, options: GroupOptions, outcomes: (GroupOutcome<unknown> | undefined)[]): (Prepared | null)[] {
  return ops.map((op, index) => {
    try {
      const prepared = op.prepare(inputs);
      const partition = options.partition;
      const foreign = partition === undefined ? undefined : prepared.customerIds.find((id) => customerHash(id) % partition.count !== partition.index);
      if (foreign !== undefined) {
        outcomes[index] = { deferred: true, customerId: foreign };
        return null;
      }
      return prepared;
    } catch (error) {
      if (!(error instanceof LedgerError)) throw error;
      outcomes[index] = { ok: false, error };
      return null;
    }
  });
}

/** GroupState is the group's working state: each balance as the ops so far left it, and what they write. */
class GroupState implements GroupView {
  private readonly slots = new Map<string, BalanceSlot>();
  private readonly statuses: Map<string, string>;
  private readonly carries: Map<string, { perUnits: bigint; carry: bigint }>;
  private lotSeq = 1n << 62n;
  readonly set: WriteSet = emptyWriteSet();
  private readonly totals = new Map<string, BalanceTotalsWrite>();
  private readonly lots = new Map<string, LotWrite>();
  private readonly newLots = new Map<string, NewLotWrite>();
  private readonly carryWrites = new Map<string, CarryWrite>();
  private readonly pools: Map<string, PoolMembership>;
  private readonly poolUsageWrites = new Map<string, PoolUsageWrite>();
  private readonly takenEventIds = new Set<string>();

  constructor(
    readonly now: Date,
    readonly inputs: WriteInputs,
    private readonly events: ClaimedEvents,
    decision: DecisionInputs,
    slots: Map<string, BalanceSlot>,
    private readonly thresholds: Map<string, Thresholds>,
  ) {
    this.recordedAt = decision.transactionTime;
    this.killSwitch = decision.killSwitch;
    this.statuses = decision.reservationStatuses;
    this.carries = decision.carries;
    this.pools = decision.pools;
    this.slots = slots;
  }

  readonly recordedAt: Date;
  readonly killSwitch: boolean;

  balance(key: BalanceKey): BalanceSlot {
    return this.slots.get(keyOf(key)) ?? { kind: "missing" };
  }

  reservationStatus(reservationId: string): string | undefined {
    return this.statuses.get(reservationId);
  }

  carry(customerId: string, featureKey: string): { perUnits: bigint; carry: bigint } | null {
    return this.carries.get(balanceKeyOf(customerId, featureKey)) ?? null;
  }

  nextLotSeq(): bigint {
    return this.lotSeq++;
  }

  poolOf(customerId: string): PoolMembership | null {
    return this.pools.get(customerId) ?? null;
  }

  memberUsage(memberCustomerId: string, creditTypeId: string): MemberUsage | null {
    const written = this.poolUsageWrites.get(balanceKeyOf(memberCustomerId, creditTypeId));
    if (written !== undefined) return { periodStartMs: written.periodStart.getTime(), used: written.used };
    return this.pools.get(memberCustomerId)?.usage.get(creditTypeId) ?? null;
  }

  eventClaim(claim: EventClaim): "fresh" | "duplicate" | "reused" {
    const key = balanceKeyOf(claim.principal, claim.eventId);
    const claimed = this.events.claimed.get(key);
    if (claimed !== undefined && !this.takenEventIds.has(key)) {
      assert(claimed.equals(claim.hash), "the first op to plan an event id is the one that claimed it");
      this.takenEventIds.add(key);
      return "fresh";
    }
    const first = claimed ?? this.events.stored.get(key) ?? null;
    return first === null || first.equals(claim.hash) ? "duplicate" : "reused";
  }

  /** merge adopts an op's draft: its states become the next op's, its writes join the group's. */
  merge(draft: Draft): void {
    for (const lot of draft.newLots) this.newLots.set(lot.grantId, lot);
    for (const { key, state } of draft.balances.values()) {
      const before = this.slots.get(keyOf(key));
      assert(before?.kind === "loaded", "an op changes only balances it loaded");
      this.recordLots(key, before.state, state);
      this.recordNegative(key, before.state, state);
      if (this.thresholds.size > 0) this.recordLow(key, before.state, state);
      this.slots.set(keyOf(key), { kind: "loaded", state });
      const { granted, held, burned, expired, debt, overdraftHeld } = state;
      this.totals.set(keyOf(key), { key, granted, held, burned, expired, debt, overdraftHeld });
    }
    const usageOffset = this.set.usageInserts.length;
    const shifted = <T extends { usageIndex: number | null }>(write: T): T => (write.usageIndex === null ? write : { ...write, usageIndex: write.usageIndex + usageOffset });
    this.set.usageInserts.push(...draft.usageInserts);
    // Entries keep their identity (finishers look them up), so their usage index moves in place.
    for (const entry of draft.entries) if (entry.usageIndex !== null) entry.usageIndex += usageOffset;
    this.set.entries.push(...draft.entries);
    this.set.shadows.push(...draft.shadows.map(shifted));
    this.set.usageRatings.push(...draft.usageRatings);
    this.set.reservationInserts.push(...draft.reservationInserts);
    for (const reservation of draft.reservationInserts) this.statuses.set(reservation.reservationId, "held");
    this.set.reservationResolves.push(...draft.reservationResolves);
    for (const resolution of draft.reservationResolves) this.statuses.set(resolution.reservationId, resolution.status);
    for (const [pair, carry] of draft.carries) {
      this.carries.set(pair, { perUnits: carry.perUnits, carry: carry.carry });
      this.carryWrites.set(pair, carry);
    }
    for (const [pair, usage] of draft.poolUsage) this.poolUsageWrites.set(pair, usage);
    this.set.audits.push(...draft.audits);
    this.set.corrections.push(...draft.corrections);
    this.set.releasedEventIds.push(...draft.releasedEventIds);
    this.set.usageConflicts.push(...draft.usageConflicts);
    this.set.activatedLots.push(...draft.activatedLots);
  }

  /** addLots adds stored lots to a loaded balance before any op plans (an op's load). */
  addLots(key: BalanceKey, lots: LotState[]): void {
    const slot = this.slots.get(keyOf(key));
    assert(slot?.kind === "loaded", "lots are added to a loaded balance");
    const known = new Set(slot.state.lots.map((lot) => lot.grantId));
    slot.state.lots.push(...lots.filter((lot) => !known.has(lot.grantId)));
  }

  /**
   * recordNegative notes a balance this op took from available >= 0 to below 0 (a
   * balance.negative event). Available is below zero only while the balance draws on its
   * overdraft, so a balance that does not (nearly every change) costs one comparison.
   */
  private recordNegative(key: BalanceKey, before: BalanceState, after: BalanceState): void {
    if (overdraftInUseOf(after) === 0n) return;
    const nowMs = this.now.getTime();
    const available = availableOf(after, nowMs);
    if (available < 0n && availableOf(before, nowMs) >= 0n) this.set.balancesNegative.push({ ...key, available });
  }

  /**
   * recordLow notes a balance this op took from available at or above a threshold to below
   * it: for the recharge job, and a balance.low event. Only balances with a threshold are
   * in the map (copied onto their row), so a group without one skips this altogether.
   */
  private recordLow(key: BalanceKey, before: BalanceState, after: BalanceState): void {
    const thresholds = this.thresholds.get(keyOf(key));
    if (thresholds === undefined) return;
    const nowMs = this.now.getTime();
    const available = availableOf(after, nowMs);
    const was = availableOf(before, nowMs);
    const crossed = (threshold: bigint | null) => (threshold !== null && available < threshold && was >= threshold ? threshold : null);
    const recharge = crossed(thresholds.recharge);
    const low = crossed(thresholds.low);
    if (recharge !== null || low !== null) this.set.balancesLow.push({ ...key, available, recharge, low });
  }

  /** recordLots keeps the last remaining and held of every lot the change moved (a new lot's go into its insert). */
  private recordLots(key: BalanceKey, before: BalanceState, after: BalanceState): void {
    const previous = new Map(before.lots.map((lot) => [lot.grantId, lot]));
    for (const lot of after.lots) {
      const was: LotState | undefined = previous.get(lot.grantId);
      if (was !== undefined && was.remaining === lot.remaining && was.held === lot.held && was.expired === lot.expired) continue;
      const created = this.newLots.get(lot.grantId);
      if (created !== undefined) {
        created.remaining = lot.remaining;
        created.held = lot.held;
      } else {
        assert(was !== undefined, "a lot that changed was loaded or granted in this group");
        this.lots.set(lot.grantId, { customerId: key.customerId, grantId: lot.grantId, remaining: lot.remaining, held: lot.held, expired: lot.expired });
      }
    }
  }

  /** writeSet is the group's writes, each part in order. */
  writeSet(claims: ClaimWrite[]): WriteSet {
    return {
      ...this.set,
      balances: [...this.totals.values()],
      lots: [...this.lots.values()],
      newLots: [...this.newLots.values()],
      carries: [...this.carryWrites.values()],
      poolUsage: [...this.poolUsageWrites.values()],
      claims,
    };
  }
}

/** replayOf answers a request whose id is already claimed: the first answer, or REQUEST_ID_REUSED for another request. */
function replayOf(stored: { method: string; payloadHash: Buffer; response: Buffer }, idempotency: Idempotency): Outcome<unknown> {
  if (stored.method !== idempotency.method || !stored.payloadHash.equals(idempotency.payloadHash)) {
    const error = new LedgerError("rejected", "REQUEST_ID_REUSED", `request id ${JSON.stringify(idempotency.requestId)} was used for a different request`, {
      request_id: idempotency.requestId,
      first_method: stored.method,
    });
    return { ok: false, error };
  }
  return { ok: true, value: decodeResult(stored.response) };
}

/** slotsOf turns locked rows and loaded lots into each balance's slot. */
function slotsOf(keys: BalanceKey[], locked: Map<string, Omit<BalanceState, "lots">>, decision: DecisionInputs, skipLocked: boolean): Map<string, BalanceSlot> {
  const slots = new Map<string, BalanceSlot>();
  for (const key of keys) {
    const row = locked.get(keyOf(key));
    const lots = decision.lots.get(keyOf(key)) ?? [];
    if (row === undefined) slots.set(keyOf(key), { kind: skipLocked ? "busy" : "missing" });
    else if (lots.length > limits.lotsPerDecisionMax) slots.set(keyOf(key), { kind: "too_many_lots" });
    else slots.set(keyOf(key), { kind: "loaded", state: { ...row, lots } });
  }
  return slots;
}

/** planContextOf is what one op's plan sees: the group as the ops before it left it, and its own draft. */
function planContextOf(group: GroupState, draft: Draft): PlanContext {
  return {
    now: group.now,
    recordedAt: group.recordedAt,
    killSwitch: group.killSwitch,
    inputs: group.inputs,
    eventClaim: (claim) => group.eventClaim(claim),
    balance: (key) => draft.state(key),
    reservationStatus: (reservationId) => group.reservationStatus(reservationId),
    carry: (customerId, featureKey) => draft.carry(customerId, featureKey),
    poolOf: (customerId) => group.poolOf(customerId),
    memberUsage: (memberCustomerId, creditTypeId) => draft.memberUsage(memberCustomerId, creditTypeId),
    nextLotSeq: () => group.nextLotSeq(),
    draft,
  };
}

/** Finished is an op planned successfully: its answer, or how to finish it once written. */
interface Finished {
  index: number;
  result: PlanResult<unknown>;
}

/** runOnce runs steps 1-5 in one transaction; throws when the transaction must not commit. */
async function runOnce(deps: GroupDeps, ops: readonly AnyOp[], options: GroupOptions): Promise<GroupOutcome<unknown>[]> {
  const startedAtMs = performance.now();
  let stepAtMs = startedAtMs;
  const step = (name: "readMs" | "createMs" | "lockMs" | "loadMs" | "planMs" | "writeMs" | "commitMs") => {
    const nowMs = performance.now();
    groupTimings[name] += nowMs - stepAtMs;
    stepAtMs = nowMs;
  };
  let flaggedRecharge = false;
  let entries: readonly EntryWrite[] = [];
  const outcomes = await withTransaction(deps.pool, async (tx) => {
    const outcomes = new Array<GroupOutcome<unknown> | undefined>(ops.length);
    const pools = deps.pools ?? sharedPoolCache;
    let inputs: WriteInputs = { ...(await readInputs(tx, ops)), poolParents: pools };
    step("readMs");
    const prepared = prepareAll(ops, inputs, options, outcomes);
    const live = prepared.filter((p): p is Prepared => p !== null);
    const createCustomers = unique(live.flatMap((p) => p.createCustomers ?? []));
    const createBalances = unique(live.flatMap((p) => p.createBalances ?? []), keyOf);
    const claimEventIds = unique(live.flatMap((p) => p.claimEventIds ?? []), (id) => balanceKeyOf(id.principal, id.eventId));
    const claimedEvents =
      createCustomers.length + createBalances.length + claimEventIds.length === 0
        ? { claimed: new Map(), stored: new Map() }
        : await insertMissingRows(tx, { customerIds: createCustomers, balances: createBalances, eventIds: claimEventIds, receivedAt: deps.now() });
    step("createMs");
    const keys = unique(live.flatMap((p) => p.keys), keyOf).sort(compareKeys);
    const request: DecisionRequest = {
      keys,
      pinnedGrantIds: unique(live.flatMap((p) => p.pinnedGrantIds ?? [])),
      reservationIds: unique(live.flatMap((p) => p.reservationIds ?? [])),
      carries: unique(live.flatMap((p) => p.carries ?? []), pairKey),
      claims: ops.flatMap((op) => (op.claim ? [{ principal: op.claim.caller.keyId, requestId: op.claim.idempotency.requestId }] : [])),
      poolMembers: unique(live.flatMap((p) => p.poolMembers ?? [])),
    };
    const loaded = await lockAndSelectDecisionInputs(tx, request, { skipLocked: options.skipLocked ?? false });
    const { locked, thresholds } = loaded;
    step("lockMs");
    const now = deps.now();
    // A balance changed after the statement's snapshot: read again, under the locks now held.
    const decision = loaded.stale ? await selectDecisionInputs(tx, request) : loaded.inputs;
    if (loaded.stale) groupTimings.reloads++;
    if (request.poolMembers.length > 0) pools.learn(request.poolMembers, decision.pools);
    const missing = options.skipLocked ? [] : keys.filter((key) => !locked.has(keyOf(key)));
    if (missing.length > 0) inputs = await explainMissing(tx, inputs, missing);
    step("loadMs");
    const group = new GroupState(now, inputs, claimedEvents, decision, slotsOf(keys, locked, decision, options.skipLocked ?? false), thresholds);
    for (const [index, op] of ops.entries()) {
      if (op.load === undefined || outcomes[index] !== undefined) continue;
      assert(ops.length === 1, "an op that loads runs alone");
      await op.load(tx, { now, balance: (key) => group.balance(key), addLots: (key, lots) => group.addLots(key, lots) });
    }
    const finished = planAll(ops, group, decision, outcomes);
    step("planMs");
    await write(tx, ops, group, finished, outcomes);
    for (const { index } of finished) {
      const op = ops[index];
      if (op.store === undefined) continue;
      assert(ops.length === 1 && op.load !== undefined, "an op that stores rows of its own runs alone");
      await op.store(tx);
    }
    step("writeMs");
    flaggedRecharge = group.set.balancesLow.some((low) => low.recharge !== null);
    entries = group.set.entries;
    return outcomes.map((outcome) => {
      assert(outcome !== undefined, "every op of a group is answered");
      return outcome;
    });
  });
  step("commitMs");
  if (flaggedRecharge) deps.rechargeDue?.();
  groupTimings.transactions++;
  groupTimings.ops += ops.length;
  groupTimings.totalMs += performance.now() - startedAtMs;
  deps.observer?.groupCommitted({ ops: ops.length, seconds: (performance.now() - startedAtMs) / 1_000, entries });
  return outcomes;
}

/** explainMissing reads which customers and credit types exist, for ops on balances that do not. */
async function explainMissing(tx: Tx, inputs: WriteInputs, missing: BalanceKey[]): Promise<WriteInputs> {
  const found = await selectWriteInputs(tx, {
    reservationIds: [],
    rates: [],
    customerIds: unique(missing.map((key) => key.customerId)),
    creditTypeIds: unique(missing.map((key) => key.creditTypeId)),
    featureKeys: [],
    expiredLots: [],
  });
  return {
    ...inputs,
    customers: new Set([...inputs.customers, ...found.customers]),
    creditTypes: new Set([...inputs.creditTypes, ...found.creditTypes]),
  };
}

/** planAll decides each op in order (step 4). */
function planAll(ops: readonly AnyOp[], group: GroupState, decision: DecisionInputs, outcomes: (GroupOutcome<unknown> | undefined)[]): Finished[] {
  const finished: Finished[] = [];
  const claimsSeen = new Set<string>();
  ops.forEach((op, index) => {
    const early = outcomes[index];
    if (early !== undefined && "deferred" in early) return;
    if (op.claim !== undefined) {
      const claimKey = balanceKeyOf(op.claim.caller.keyId, op.claim.idempotency.requestId);
      const stored = decision.claims.get(claimKey);
      // A replay is answered as the first time, even when the request would be refused now.
      if (stored !== undefined) return void (outcomes[index] = replayOf(stored, op.claim.idempotency));
      // The same request id twice in one group: the second waits for the first to commit or fail.
      if (claimsSeen.has(claimKey)) return void (outcomes[index] = { deferred: true });
      if (early !== undefined) return;
      claimsSeen.add(claimKey);
    } else if (early !== undefined) {
      return;
    }
    const draft = new Draft(group);
    try {
      const result = op.plan(planContextOf(group, draft));
      group.merge(draft);
      finished.push({ index, result });
    } catch (error) {
      if (error instanceof BalanceNeeded || error instanceof PoolMoved) return void (outcomes[index] = { deferred: true });
      if (!(error instanceof LedgerError)) throw error;
      outcomes[index] = { ok: false, error };
    }
  });
  return finished;
}

/** write runs step 5 and completes the answers; claims wait for the answers that need the database's ids. */
async function write(tx: Tx, ops: readonly AnyOp[], group: GroupState, finished: Finished[], outcomes: (GroupOutcome<unknown> | undefined)[]): Promise<void> {
  const claimOf = (index: number, value: unknown): ClaimWrite[] => {
    const claim = ops[index].claim;
    return claim === undefined ? [] : [claimRowOf(claim.caller as Caller, claim.idempotency, claim.redact ? claim.redact(value) : value)];
  };
  const late = finished.some((f) => "finish" in f.result);
  const early = late ? [] : finished.flatMap((f) => claimOf(f.index, (f.result as { value: unknown }).value));
  const set = group.writeSet(early);
  const written = await writeBalanceChanges(tx, set);
  const entryIds = new Map<EntryWrite, bigint>(set.entries.map((entry, i) => [entry, written.entryIds[i]]));
  const entryRowOf = (entry: EntryWrite): EntryRow => {
    const entryId = entryIds.get(entry);
    assert(entryId !== undefined, "a finisher asks for an entry of its group");
    const { usageIndex, ...row } = entry;
    const usageId = entry.usageId ?? (usageIndex === null ? null : written.usageIds[usageIndex]);
    return { ...row, entryId, usageId, recordedAt: group.recordedAt };
  };
  const values = finished.map((f) => ("finish" in f.result ? f.result.finish({ entryRowOf }) : f.result.value));
  if (late) {
    const claims = finished.flatMap((f, i) => claimOf(f.index, values[i]));
    const inserted = await insertClaims(tx, claims);
    if (inserted !== claims.length) throw new ClaimTakenError(claims.length - inserted);
  }
  finished.forEach((f, i) => (outcomes[f.index] = { ok: true, value: values[i] }));
}

/** isRaceLost says whether a group failed only because a concurrent transaction won a race worth rerunning. */
function isRaceLost(error: unknown): boolean {
  // An op that claimed usage event ids found its pool membership changed: the group learned it, and runs again.
  if (error instanceof GroupAbort && error.failure instanceof PoolMoved) return true;
  return error instanceof ClaimTakenError || (error instanceof LedgerError && error.kind === "conflict");
}

/**
 * runWriteGroup runs ops as one group and answers each; it never throws. A group that
 * lost a race runs again (up to groupAttemptsMax); one the database could not run
 * (Unavailable) answers every op so; one that failed otherwise runs each op alone.
 */
export async function runWriteGroup(deps: GroupDeps, ops: readonly AnyOp[], options: GroupOptions = {}): Promise<GroupOutcome<unknown>[]> {
  assert(ops.length > 0, "a group has ops");
  const deadlines = (options.deadlinesAtMs ?? []).filter((deadline): deadline is number => deadline !== undefined);
  const deadlineAtMs = deadlines.length === 0 ? undefined : Math.min(...deadlines);
  for (let attempt = 1; ; attempt++) {
    try {
      const run = () => runOnce(deps, ops, options);
      const outcomes = await (deadlineAtMs === undefined ? run() : withDeadline(deadlineAtMs, run));
      if (ops.length > 1) groupStats.committed++;
      return outcomes;
    } catch (caught) {
      if (isRaceLost(caught) && attempt < limits.groupAttemptsMax) continue;
      const error =
        caught instanceof ClaimTakenError
          ? new LedgerError("conflict", "CONCURRENT_UPDATE", "a concurrent request claimed a request id; retry with the same request id", {}, { cause: caught })
          : toDomainError(caught instanceof GroupAbort ? caught.failure : caught);
      if (error instanceof LedgerError && error.kind === "unavailable" && deadlineAtMs !== undefined && Date.now() >= deadlineAtMs) {
        // Cut short by a caller's deadline: nothing was applied; those whose time ran out are answered, the rest go again.
        return ops.map((_op, i) => ((options.deadlinesAtMs?.[i] ?? Infinity) <= Date.now() ? { ok: false, error } : { deferred: true }));
      }
      if (ops.length === 1 || (error instanceof LedgerError && error.kind === "unavailable")) return ops.map(() => ({ ok: false, error }));
      groupStats.fellBack++;
      const alone: GroupOutcome<unknown>[] = [];
      for (const op of ops) alone.push((await runWriteGroup(deps, [op], options))[0]);
      return alone;
    }
  }
}
