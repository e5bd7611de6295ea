// The read model of a balance: totals as of now, as the expiry job will leave them (lots
// past their expiry expired, debt settled from lots that became effective, lots not yet
// effective pending), even before the job has run.
import { assert, availableOf, isExpired, isVoided, pendingOf, type BalanceState } from "../ledger/balance-state.js";
import { planUpkeep } from "../ledger/plan.js";
import type { BalanceRow, LotRow } from "../store/balance-store.js";

/** BalanceView is a balance as a caller sees it. */
export interface BalanceView {
  creditTypeId: string;
  available: bigint;
  held: bigint;
  granted: bigint;
  burned: bigint;
  expired: bigint;
  pending: bigint;
  overdraftLimit: bigint;
  lots: LotView[];
  /** what is left of the effective lots per source; only GetBalance fills it, as it does lots. */
  sources?: SourceView[];
}

/** SourceView is what is left of a balance's effective lots of one source. */
export interface SourceView {
  source: string;
  remaining: bigint;
  held: bigint;
  nextExpiresAt: Date | null;
  nextExpireAmount: bigint;
}

/** LotView is a lot as a caller sees it. */
export interface LotView {
  grantId: string;
  source: string;
  amount: bigint;
  remaining: bigint;
  held: bigint;
  priority: number;
  effectiveAt: Date;
  expiresAt: Date | null;
  createdAt: Date;
  reasonCode: string;
  /** what one credit cost, in micro minor units; 0 for free credits. */
  costBasisMicros: bigint;
  /** of held, what is pending its void (the lot was voided whole); 0 for a lot not voided. */
  voidPending: bigint;
  /** when the whole lot was voided; null: never. */
  voidedAt: Date | null;
}

/** toLotView shows a lot, with the free part of an expired lot shown as gone, and a voided lot's held part as pending its void. */
export function toLotView(lot: LotRow, nowMs: number): LotView {
  assert(lot.costBasisMicros !== undefined, "a lot shown to a caller was read with its cost basis (lotViewColumns)");
  assert(lot.remaining >= lot.held && lot.held >= 0n, "a lot's held part is within what is left of it");
  const voided = isVoided(lot, nowMs);
  const remaining = isExpired(lot, nowMs) || voided ? lot.held : lot.remaining;
  return {
    grantId: lot.grantId,
    source: lot.source,
    amount: lot.amount,
    remaining,
    held: lot.held,
    priority: lot.priority,
    effectiveAt: new Date(lot.effectiveAtMs),
    expiresAt: lot.expiresAtMs === null ? null : new Date(lot.expiresAtMs),
    createdAt: lot.createdAt,
    reasonCode: lot.reasonCode,
    costBasisMicros: lot.costBasisMicros,
    voidPending: voided ? lot.held : 0n,
    voidedAt: voided ? new Date(lot.voidedAtMs as number) : null,
  };
}

/**
 * balanceStateAt computes a balance's state as of nowMs from its row and its open lots:
 * the same upkeep every change runs first (ledger/plan.ts), applied in memory and not
 * written. Its lots are in burn order.
 */
export function balanceStateAt(row: BalanceRow, lots: LotRow[], nowMs: number): BalanceState {
  return planUpkeep({ ...row, lots }, nowMs).state;
}

/** toBalanceView computes a balance as of nowMs from its row and its open lots (balanceStateAt). */
export function toBalanceView(creditTypeId: string, row: BalanceRow, lots: LotRow[], nowMs: number): BalanceView {
  const state = balanceStateAt(row, lots, nowMs);
  const rows = new Map(lots.map((lot) => [lot.grantId, lot]));
  const views = state.lots
    .map((lot) => toLotView({ ...(rows.get(lot.grantId) as LotRow), remaining: lot.remaining, held: lot.held }, nowMs))
    .filter((lot) => lot.remaining > 0n);
  return {
    creditTypeId,
    available: availableOf(state, nowMs),
    held: state.held,
    granted: state.granted,
    burned: state.burned,
    expired: state.expired,
    pending: pendingOf(state, nowMs),
    overdraftLimit: row.overdraftLimit,
    lots: views,
  };
}

/** sourceOrder puts promotional credits first, then purchased ones, then the rest by name. */
const sourceOrder = (source: string) => (source === "promotion" ? "0" : source === "purchase" ? "1" : `2${source}`);

/**
 * sourcesOf sums what is left of the effective lots per source (lots not yet effective
 * count nowhere yet), with the soonest expiry of each source and what expires then.
 */
export function sourcesOf(lots: readonly LotView[], nowMs: number): SourceView[] {
  const bySource = new Map<string, SourceView>();
  for (const lot of lots) {
    if (lot.effectiveAt.getTime() > nowMs || lot.remaining === 0n) continue;
    const view = bySource.get(lot.source) ?? { source: lot.source, remaining: 0n, held: 0n, nextExpiresAt: null, nextExpireAmount: 0n };
    view.remaining += lot.remaining;
    view.held += lot.held;
    const expiresAt = lot.expiresAt;
    if (expiresAt !== null && (view.nextExpiresAt === null || expiresAt < view.nextExpiresAt)) {
      view.nextExpiresAt = expiresAt;
      view.nextExpireAmount = lot.remaining;
    } else if (expiresAt !== null && expiresAt.getTime() === view.nextExpiresAt?.getTime()) {
      view.nextExpireAmount += lot.remaining;
    }
    bySource.set(lot.source, view);
  }
  const sources = [...bySource.values()].sort((a, b) => sourceOrder(a.source).localeCompare(sourceOrder(b.source)));
  assert(sources.every((view) => view.held <= view.remaining && view.nextExpireAmount <= view.remaining), "a source's parts are within what is left of it");
  return sources;
}

/** totalsView shows a balance's totals after a change (mutation responses carry no lots). */
export function totalsView(creditTypeId: string, state: BalanceState, nowMs: number): BalanceView {
  return {
    creditTypeId,
    available: availableOf(state, nowMs),
    held: state.held,
    granted: state.granted,
    burned: state.burned,
    expired: state.expired,
    pending: pendingOf(state, nowMs),
    overdraftLimit: state.overdraftLimit,
    lots: [],
  };
}

/** emptyView shows a balance that has no row yet: nothing granted, nothing held. */
export function emptyView(creditTypeId: string): BalanceView {
  return { creditTypeId, available: 0n, held: 0n, granted: 0n, burned: 0n, expired: 0n, pending: 0n, overdraftLimit: 0n, lots: [] };
}
