// CorrectUsageEvent: refund a wrongly rated usage event with compensating entries linked
// to it, once, in one audited transaction. Each credit goes back where the burn took it
// from: a lot-backed part to its lot; an overdraft part off the debt while there is debt,
// and the rest, debt that later lots already repaid, back to those lots (the last to
// settle first, each at most what it settled and no correction has given back yet).
import { LedgerError } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { distributeRefund } from "../ledger/distribute-refund.js";
import { planRefund, planUpkeep } from "../ledger/plan.js";
import { limits } from "../limits.js";
import type { BalanceKey } from "../store/balance-store.js";
import type { EntryWrite } from "../store/balance-writer.js";
import { selectChargeRefunds } from "../store/charge-refund-store.js";
import { type CorrectionRow, selectCorrection, selectLotsByIds, selectUnreturnedSettles, type UnreturnedSettle } from "../store/correction-store.js";
import { mapDriverErrors, type Tx } from "../store/database.js";
import { type EntryRow, selectEntriesOfUsage } from "../store/entry-store.js";
import type { StoredUsage } from "../store/usage-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { resolveUsageEvent, type UsageEventRef } from "./explain-usage.js";
import { loadedState, type LoadView, type WriteOp } from "./write-op.js";

/** CorrectUsageInput is a validated CorrectUsageEvent request. */
export type CorrectUsageInput = UsageEventRef & {
  reasonCode: string;
  note: string;
};

/** CorrectUsageResult is the correction and the refund entries it wrote. */
export interface CorrectUsageResult {
  correction: CorrectionRow;
  entries: EntryRow[];
}

/**
 * correctUsageEvent refunds a burned event once (admin only). FailedPrecondition
 * NOT_CORRECTABLE when the event burned nothing to the balance (shadowed, not billed,
 * unrated), ALREADY_CORRECTED the second time.
 */
export async function correctUsageEvent(deps: Deps, caller: Caller, idempotency: Idempotency, input: CorrectUsageInput): Promise<CorrectUsageResult> {
  if (caller.role !== "admin") {
    throw new LedgerError("forbidden", "ROLE_NOT_ALLOWED", `the ${caller.role} role may not correct usage`, { role: caller.role, method: "CorrectUsageEvent" });
  }
  assert(input.reasonCode.length > 0, "corrections have a reason");
  // A usage event's status stays burned once burned, and its entries are immutable: both
  // may be read before the lock.
  const usage = await mapDriverErrors(() => resolveUsageEvent(deps.pool, input));
  if (usage.status !== "burned") {
    throw new LedgerError("rejected", "NOT_CORRECTABLE", `usage event ${JSON.stringify(usage.eventId)} was ${usage.status}, not burned`, {
      usage_id: usage.usageId,
      status: usage.status,
    });
  }
  const burns = (await mapDriverErrors(() => selectEntriesOfUsage(deps.pool, usage.customerId, [usage.usageId]))).filter((entry) => entry.kind === "burn");
  return deps.writes.submit(correctionOp(caller, idempotency, input, usage, burns));
}

/** correctionOp refunds one burned event as an op of the write path; it reads its settlements under the lock, so it runs alone. */
function correctionOp(caller: Caller, idempotency: Idempotency, input: CorrectUsageInput, usage: StoredUsage, burns: EntryRow[]): WriteOp<CorrectUsageResult> {
  assert(usage.creditTypeId !== null && usage.credits !== null, "a burned event is rated");
  const key = { customerId: usage.customerId, creditTypeId: usage.creditTypeId };
  let corrected = false;
  let refunded = false;
  let settles: UnreturnedSettle[] = [];
  let roomOf = new Map<string, bigint>();
  return {
    lane: { customerId: usage.customerId },
    weight: 1,
    claim: { caller, idempotency },
    request: () => {},
    prepare: () => ({ keys: [key], customerIds: [key.customerId], pinnedGrantIds: [...new Set(burns.flatMap((burn) => (burn.grantId === null ? [] : [burn.grantId])))] }),
    load: async (tx, view) => {
      corrected = (await selectCorrection(tx, usage.usageId)) !== null;
      if (corrected) return;
      // A usage event refunded in part (CorrectionService.RefundCharge) is refunded the rest of the way there, never here.
      refunded = (await selectChargeRefunds(tx, { customerId: usage.customerId, kind: "usage", ref: usage.usageId })).length > 0;
      if (refunded) return;
      ({ settles, roomOf } = await loadSettlements(tx, view, key, burns, view.now.getTime()));
    },
    plan: (ctx) => {
      if (corrected) throw alreadyCorrected(usage);
      if (refunded) {
        throw new LedgerError("rejected", "ALREADY_REFUNDED", `usage event ${JSON.stringify(usage.eventId)} was refunded in part; refund the rest with RefundCharge`, {
          usage_id: usage.usageId,
        });
      }
      const state = loadedState(ctx.balance(key), key);
      const refunds = distributeRefund(burns.map((burn) => ({ grantId: burn.grantId, amount: burn.amount })), planUpkeep(state, ctx.now.getTime()).state, settles, roomOf);
      const planned = planRefund(state, refunds, ctx.now.getTime());
      const cause = { reservationId: null, requestId: idempotency.requestId, actor: caller.keyId, reasonCode: input.reasonCode, effectiveAt: ctx.now };
      const entries = ctx.draft.change(key, planned, cause, (entry) => (entry.kind === "refund" ? { usageId: usage.usageId } : {})).filter((entry) => entry.kind === "refund");
      assert(entries.length === refunds.length, "every refund is planned");
      const credits = entries.reduce((sum, entry) => sum + entry.amount, 0n);
      assert(credits === usage.credits, "a correction gives back the event's credits");
      const correction = { usageId: usage.usageId, actor: caller.keyId, reasonCode: input.reasonCode, note: input.note, credits, requestId: idempotency.requestId };
      ctx.draft.correct(correction);
      ctx.draft.audit(auditOf(caller, input, usage, entries));
      return { finish: (written) => ({ correction: { ...correction, createdAt: ctx.recordedAt }, entries: entries.map(written.entryRowOf) }) };
    },
  };
}

function alreadyCorrected(usage: StoredUsage): LedgerError {
  return new LedgerError("rejected", "ALREADY_CORRECTED", `usage event ${JSON.stringify(usage.eventId)} was already corrected`, { usage_id: usage.usageId });
}

/**
 * loadSettlements reads, under the balance lock, the lots that repaid debt and how much of
 * it no correction has given back yet, when the event's overdraft part is larger than the
 * debt left after upkeep; those lots are added to the balance, so that refunds can reach them.
 */
async function loadSettlements(tx: Tx, view: LoadView, key: BalanceKey, burns: EntryRow[], nowMs: number): Promise<{ settles: UnreturnedSettle[]; roomOf: Map<string, bigint> }> {
  const loaded = loadedState(view.balance(key), key);
  const upkeep = planUpkeep(loaded, nowMs);
  const overdraft = burns.reduce((sum, burn) => (burn.grantId === null ? sum + burn.amount : sum), 0n);
  const settles: UnreturnedSettle[] = [];
  if (overdraft > upkeep.state.debt) {
    // Settlements the upkeep is about to write are the newest of all, the last one first.
    const upkeepSettles = upkeep.entries.filter((entry) => entry.kind === "settle").reverse();
    settles.push(...upkeepSettles.map((entry) => ({ grantId: entry.grantId!, unreturned: entry.amount })));
    settles.push(...(await selectUnreturnedSettles(tx, key, limits.lotsPerDecisionMax)));
  }
  const rows = await selectLotsByIds(tx, key.customerId, [...new Set(settles.map((settle) => settle.grantId))]);
  // Lots without free credits are not loaded for decisions; upkeep leaves them unchanged.
  view.addLots(key, rows);
  const roomOf = new Map(rows.map((row): [string, bigint] => {
    const remaining = upkeep.state.lots.find((lot) => lot.grantId === row.grantId)?.remaining ?? row.remaining;
    return [row.grantId, row.amount - remaining];
  }));
  return { settles, roomOf };
}

function auditOf(caller: Caller, input: CorrectUsageInput, usage: StoredUsage, entries: EntryWrite[]) {
  const credits = entries.reduce((sum, entry) => sum + entry.amount, 0n);
  return {
    actor: caller.keyId,
    requestId: caller.requestId,
    action: "correct_usage_event",
    target: `usage:${usage.usageId}`,
    reason: input.reasonCode,
    details: {
      old: { status: usage.status, credits: credits.toString() },
      new: { corrected: true, credits_refunded: credits.toString() },
      event_id: usage.eventId,
      reporter_key_id: usage.principal,
      customer_id: usage.customerId,
      credit_type_id: usage.creditTypeId,
      note: input.note,
      refunds: entries.map((entry) => ({ grant_id: entry.grantId, amount: entry.amount.toString() })),
    },
  };
}
