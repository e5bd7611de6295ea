// The contract between a use case that changes balances (reserve, commit, burn, grant,
// usage, expiry...) and the write path that runs it in a group (write-group.ts). A use
// case says what it needs read before any lock, which balances it changes and which rows
// must exist first, then plans against the locked state in memory and records what to
// write in its Draft. It never runs a statement itself: every balance it touches is loaded
// by the one loader and written by the one writer, together with the rest of its group.
import { LedgerError } from "../errors.js";
import { assert, type BalanceState, type LotState, type PlannedEntry } from "../ledger/balance-state.js";
import type { Planned } from "../ledger/plan.js";
import { limits } from "../limits.js";
import { type BalanceKey, balanceKeyOf, type PoolMembership } from "../store/balance-store.js";
import type { MemberUsage } from "../ledger/pool-limit.js";
import type {
  AuditWrite,
  CarryWrite,
  CorrectionWrite,
  EntryWrite,
  NewLotWrite,
  PoolUsageWrite,
  ReservationInsert,
  ReservationResolve,
  ShadowWrite,
  UsageConflictWrite,
  UsageRatingWrite,
} from "../store/balance-writer.js";
import type { EntryRow } from "../store/entry-store.js";
import type { Tx } from "../store/database.js";
import type { UsageRow } from "../store/usage-store.js";
import type { EventClaim, WriteInputs, WriteInputsRequest } from "../store/write-inputs-store.js";
import type { Caller, Idempotency } from "./context.js";

/** ReadRequest collects what a group reads before its locks (see WriteInputsRequest). */
export type ReadRequest = { [K in keyof WriteInputsRequest]: Array<WriteInputsRequest[K][number]> };

/** Prepared is what an op needs locked and created, known after the read and before any lock. */
export interface Prepared {
  /** the balances it may change: locked, in key order, with every other op's. */
  keys: BalanceKey[];
  /** the customers it touches: a group never spans two partitions. */
  customerIds: string[];
  /** lots it must see even when they have no free credits (a reservation's holds). */
  pinnedGrantIds?: string[];
  /** reservations whose status it needs, read after the locks. */
  reservationIds?: string[];
  /** (customer, feature) pairs whose carried remainder it needs. */
  carries?: { customerId: string; featureKey: string }[];
  /** rows to create before the locks. */
  createCustomers?: string[];
  createBalances?: BalanceKey[];
  /** usage event ids to claim for deduplication, before the locks, with their events' fingerprints. */
  claimEventIds?: EventClaim[];
  /** customers whose pool membership the plan checks (those that spend), read with the locks. */
  poolMembers?: string[];
}

/** Outcome is an op's answer: its result, or the error it failed with. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Planned result: the value to answer with, or a finisher that completes it from what the database assigned. */
export type PlanResult<T> = { value: T } | { finish: (written: WrittenGroup) => T };

/** WrittenGroup tells a finisher what the database assigned to the group's rows. */
export interface WrittenGroup {
  /** entryRowOf completes an entry the op recorded with its id and record time. */
  entryRowOf: (entry: EntryWrite) => EntryRow;
}

/** WriteOp is one request to change balances, as the write path runs it. */
export interface WriteOp<T> {
  /** what decides its lane: a customer id, or the customer hash a reservation id carries. */
  readonly lane: { customerId: string } | { customerHash: number };
  /** how much of a group it takes (a usage batch counts its events). */
  readonly weight: number;
  /** an idempotent request: a stored claim is replayed, and a success is claimed. */
  readonly claim?: { caller: Caller; idempotency: Idempotency; redact?(result: T): T };
  /** request adds what it needs read before the locks. */
  request(reads: ReadRequest): void;
  /** prepare names what to lock and create; a LedgerError refuses the op before any lock. */
  prepare(inputs: WriteInputs): Prepared;
  /**
   * load reads, under the locks and before planning, what only this op needs (a
   * correction's settlements). An op with it always runs as a group of its own (solo), so
   * a group's statement count never grows with its items.
   */
  load?(tx: Tx, view: LoadView): Promise<void>;
  /** plan decides against the locked state and records writes in ctx.draft; a LedgerError refuses it, writing nothing. */
  plan(ctx: PlanContext): PlanResult<T>;
  /**
   * store writes, after the group's writer and in its transaction, rows of this op's own
   * that its plan decided (a top-up order marked paid with its lot), so that they commit
   * exactly with its balance changes. Only an op with load (alone in its group) has it;
   * it runs only when the plan succeeded, never for a replay.
   */
  store?(tx: Tx): Promise<void>;
}

/** LoadView is what an op's load sees: its balances as loaded, and a way to add lots a decision must see. */
export interface LoadView {
  /** the decision time. */
  now: Date;
  balance(key: BalanceKey): BalanceSlot;
  /** addLots adds stored lots (with no free credits, so not loaded) to a loaded balance. */
  addLots(key: BalanceKey, lots: LotState[]): void;
}

/** EntryCause is what the entries of one change share. */
export interface EntryCause {
  reservationId: string | null;
  requestId: string | null;
  actor: string;
  reasonCode: string;
  effectiveAt: Date;
  /** the pool member on whose behalf a pool owner's balance changes. */
  memberCustomerId?: string | null;
}

/** BalanceSlot is a balance as a plan sees it: its state, or why there is none. */
export type BalanceSlot = { kind: "loaded"; state: BalanceState } | { kind: "missing" } | { kind: "busy" } | { kind: "too_many_lots" };

/** GroupView is the group's state as ops see it, between ops (write-group.ts implements it). */
export interface GroupView {
  /** the decision time: the clock read after the locks. */
  readonly now: Date;
  /** the transaction's time: what PostgreSQL records as recorded_at and created_at. */
  readonly recordedAt: Date;
  readonly inputs: WriteInputs;
  /** whether the kill switch is on: nothing is refused for lack of credits, what goes past a limit is flagged. */
  readonly killSwitch: boolean;
  /**
   * eventClaim says what a usage event id is to the event sent under it: "fresh" if this
   * group claimed it (once: a second op with it sees what the first claimed), "duplicate"
   * if it was taken by the same event (or one whose fingerprint is unknown), "reused" if
   * taken by another event.
   */
  eventClaim(claim: EventClaim): "fresh" | "duplicate" | "reused";
  balance(key: BalanceKey): BalanceSlot;
  reservationStatus(reservationId: string): string | undefined;
  carry(customerId: string, featureKey: string): { perUnits: bigint; carry: bigint } | null;
  /** poolOf is a customer's pool membership as read under the locks (null: it spends its own balances); it must have been asked (Prepared.poolMembers). */
  poolOf(customerId: string): PoolMembership | null;
  /** memberUsage is a member's counter on a credit type as the ops before left it (null: none yet). */
  memberUsage(memberCustomerId: string, creditTypeId: string): MemberUsage | null;
  /** a seq for a lot granted in this group: after every stored lot, in grant order. */
  nextLotSeq(): bigint;
}

/** PlanContext is what an op's plan works with: the group's view, and its own draft. */
export interface PlanContext extends GroupView {
  readonly draft: Draft;
}

/** overflowed says whether a balance total left the int64 range. */
function overflowed(state: BalanceState): boolean {
  return [state.granted, state.held, state.burned, state.expired, state.debt, state.overdraftHeld].some((total) => total > limits.amountMax);
}

/**
 * Draft records one op's writes. The group merges it only when the op's plan returns, so
 * a refused op writes nothing and leaves the state for the next op as it found it.
 */
export class Draft {
  /** the state of each balance this op changed, after its changes. */
  readonly balances = new Map<string, { key: BalanceKey; state: BalanceState }>();
  readonly entries: EntryWrite[] = [];
  readonly newLots: NewLotWrite[] = [];
  readonly reservationInserts: ReservationInsert[] = [];
  readonly reservationResolves: ReservationResolve[] = [];
  /** usage events this op inserts; entries and shadows refer to them by index here. */
  readonly usageInserts: UsageRow[] = [];
  readonly usageRatings: UsageRatingWrite[] = [];
  readonly shadows: ShadowWrite[] = [];
  readonly carries = new Map<string, CarryWrite>();
  readonly poolUsage = new Map<string, PoolUsageWrite>();
  readonly audits: AuditWrite[] = [];
  readonly corrections: CorrectionWrite[] = [];
  readonly releasedEventIds: { principal: string; eventId: string }[] = [];
  readonly usageConflicts: UsageConflictWrite[] = [];
  readonly activatedLots: { customerId: string; grantId: string }[] = [];

  constructor(private readonly group: GroupView) {}

  /** state is the balance as this op has left it so far, or as the group has. */
  state(key: BalanceKey): BalanceSlot {
    const changed = this.balances.get(balanceKeyOf(key.customerId, key.creditTypeId));
    return changed === undefined ? this.group.balance(key) : { kind: "loaded", state: changed.state };
  }

  /**
   * change records a plan on a balance: its new totals and lots, and its entries with their
   * cause. link ties an entry to the usage event that caused it (and may name its own
   * reason code). A forced plan that went over the overdraft limit flags its burns. With
   * no entries it still writes the balance row: everything that changes under a balance's
   * lock writes its row (see lockAndSelectDecisionInputs). Expiry entries, and the void
   * of what a voided lot got back, are upkeep's doing, whatever caused the plan: actor
   * "system", no request id, reason code lot_expired or lot_voided. Returns the
   * entries as written, in order.
   */
  change(
    key: BalanceKey,
    planned: Planned & { overLimit?: boolean },
    cause: EntryCause,
    link?: (entry: PlannedEntry) => Partial<Pick<EntryWrite, "usageId" | "usageIndex" | "reasonCode" | "memberCustomerId">>,
  ): EntryWrite[] {
    if (overflowed(planned.state)) {
      throw new LedgerError("invalid", "AMOUNT_OUT_OF_RANGE", "the amount would take a balance total beyond the int64 range", {
        customer_id: key.customerId,
        credit_type_id: key.creditTypeId,
      });
    }
    this.balances.set(balanceKeyOf(key.customerId, key.creditTypeId), { key, state: planned.state });
    const written = planned.entries.map((entry): EntryWrite => {
      const expiry = entry.kind === "expire" || entry.leftover === true;
      const linked = link?.(entry) ?? {};
      return {
        ...key,
        kind: entry.kind,
        amount: entry.amount,
        grantId: entry.grantId,
        reservationId: cause.reservationId,
        requestId: expiry ? null : cause.requestId,
        actor: expiry ? "system" : cause.actor,
        reasonCode: expiry ? (entry.kind === "expire" ? "lot_expired" : "lot_voided") : (linked.reasonCode ?? cause.reasonCode),
        effectiveAt: entry.effectiveAtMs === undefined ? cause.effectiveAt : new Date(entry.effectiveAtMs),
        usageId: linked.usageId ?? null,
        usageIndex: linked.usageIndex ?? null,
        // A forced plan (the kill switch) that went past the overdraft limit flags its burns.
        // A clawback's debt (no lot) past the limit is flagged too (ledger/plan.ts planClawback).
        overLimit: planned.overLimit === true && (entry.kind === "burn" || (entry.kind === "clawback" && entry.grantId === null)),
        memberCustomerId: expiry ? null : (linked.memberCustomerId ?? cause.memberCustomerId ?? null),
      };
    });
    this.entries.push(...written);
    return written;
  }

  /** newLot records a lot granted by this op; change() then records its grant entry. */
  newLot(lot: NewLotWrite): void {
    this.newLots.push(lot);
  }

  /** reserve records a reservation placed. */
  reserve(reservation: ReservationInsert): void {
    this.reservationInserts.push(reservation);
  }

  /** resolve records a held reservation's resolution. */
  resolve(resolution: ReservationResolve): void {
    assert(this.group.reservationStatus(resolution.reservationId) === "held", "only a held reservation is resolved");
    this.reservationResolves.push(resolution);
  }

  /** insertUsage records a usage event to store; returns its index for entries and shadows. */
  insertUsage(row: UsageRow): number {
    this.usageInserts.push(row);
    return this.usageInserts.length - 1;
  }

  /** rateUsage records the rating of a stored, unrated event. */
  rateUsage(rating: UsageRatingWrite): void {
    this.usageRatings.push(rating);
  }

  /** shadow records what enforce would have burned. */
  shadow(write: ShadowWrite): void {
    this.shadows.push(write);
  }

  /** setCarry records a customer's carried remainder for a feature. */
  setCarry(write: CarryWrite): void {
    this.carries.set(balanceKeyOf(write.customerId, write.featureKey), write);
  }

  /** carry is the remainder as this op has left it, or as the group has. */
  carry(customerId: string, featureKey: string): { perUnits: bigint; carry: bigint } | null {
    return this.carries.get(balanceKeyOf(customerId, featureKey)) ?? this.group.carry(customerId, featureKey);
  }

  /** setMemberUsage records a pool member's counter on a credit type; written under its pool owner's balance lock. */
  setMemberUsage(write: PoolUsageWrite): void {
    this.poolUsage.set(balanceKeyOf(write.memberCustomerId, write.creditTypeId), write);
  }

  /** memberUsage is a member's counter as this op has left it, or as the group has. */
  memberUsage(memberCustomerId: string, creditTypeId: string): MemberUsage | null {
    const changed = this.poolUsage.get(balanceKeyOf(memberCustomerId, creditTypeId));
    if (changed !== undefined) return { periodStartMs: changed.periodStart.getTime(), used: changed.used };
    return this.group.memberUsage(memberCustomerId, creditTypeId);
  }

  /** correct records the correction of a usage event. */
  correct(correction: CorrectionWrite): void {
    this.corrections.push(correction);
  }

  /** releaseEventClaim gives back a usage event id this group claimed, for an event it rejects. */
  releaseEventClaim(principal: string, eventId: string): void {
    this.releasedEventIds.push({ principal, eventId });
  }

  /** activated takes a lot that became effective off the expiry job's list. */
  activated(lot: { customerId: string; grantId: string }): void {
    this.activatedLots.push(lot);
  }

  /** usageConflict keeps an event refused because its id was taken by another event. */
  usageConflict(conflict: UsageConflictWrite): void {
    this.usageConflicts.push(conflict);
  }

  /** audit records an administrative action's record. */
  audit(record: AuditWrite): void {
    this.audits.push(record);
  }
}

/**
 * GroupAbort fails the whole group on purpose: an op whose plan has effects taken before
 * the locks (claimed usage event ids) and cannot complete must not let them commit. The
 * group then runs op by op, and this op alone fails, with failure as its error.
 */
export class GroupAbort extends Error {
  constructor(readonly failure: unknown) {
    super(`a group op could not complete: ${failure instanceof Error ? failure.message : String(failure)}`);
  }
}

/**
 * BalanceNeeded asks for the op to run again in the next group once its balance exists:
 * the kill switch lets a customer who never had credits of a type go into debt, and a
 * balance row is what a debt is kept in. The op names the balance in its next prepare.
 */
export class BalanceNeeded extends Error {
  constructor(readonly key: BalanceKey) {
    super(`balance ${key.customerId}/${key.creditTypeId} must be created first`);
  }
}

/**
 * PoolMoved asks for the op to run again in the next group: the customer's pool
 * membership read under the locks is not the one its prepare guessed (attached or
 * detached meanwhile, or unknown to this process), so it locked the wrong balance. The
 * group has learned the membership, and the next prepare locks the right one.
 */
export class PoolMoved extends Error {
  constructor(readonly customerId: string) {
    super(`the pool membership of ${customerId} changed; run again`);
  }
}

/**
 * spenderOf is whose balance a customer spends: its pool owner's while it is a member.
 * Throws PoolMoved when that is not the balance prepare locked (guessed).
 */
export function spenderOf(ctx: GroupView, customerId: string, guessed: string): { spender: string; membership: PoolMembership | null } {
  const membership = ctx.poolOf(customerId);
  const spender = membership?.parentCustomerId ?? customerId;
  if (spender !== guessed) throw new PoolMoved(customerId);
  return { spender, membership };
}

/** loadedState returns a balance's state, or throws the refusal for a balance a plan cannot use. */
export function loadedState(slot: BalanceSlot, key: BalanceKey): BalanceState {
  if (slot.kind === "loaded") return slot.state;
  if (slot.kind === "too_many_lots") {
    throw new LedgerError("rejected", "TOO_MANY_LOTS", `the balance has more than ${limits.lotsPerDecisionMax} open lots`, {
      customer_id: key.customerId,
      credit_type_id: key.creditTypeId,
    });
  }
  throw new Error(`assertion failed: balance ${key.customerId}/${key.creditTypeId} is ${slot.kind}`);
}

/** lotOf builds the core's view of a lot granted now (its seq provisional until written). */
export function lotOf(lot: { grantId: string; amount: bigint; priority: number; effectiveAt: Date; expiresAt: Date | null }, seq: bigint): LotState {
  return {
    grantId: lot.grantId,
    remaining: lot.amount,
    held: 0n,
    expired: 0n,
    priority: lot.priority,
    effectiveAtMs: lot.effectiveAt.getTime(),
    expiresAtMs: lot.expiresAt?.getTime() ?? null,
    seq,
  };
}
