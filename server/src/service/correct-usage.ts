// CorrectUsageEvent: refund a wrongly rated usage event with compensating entries linked
// to it, once, in one audited transaction. Each credit goes back where the burn took it
// from: a lot-backed part to its lot; an overdraft part off the debt while there is debt,
// and the rest, debt that later lots already repaid, back to those lots (the last to
// settle first, each at most what it settled and no correction has given back yet).
import { LedgerError } from "../errors.js";
import { assert, type BalanceState } from "../ledger/balance-state.js";
import { distributeRefund } from "../ledger/distribute-refund.js";
import { type Planned, planRefund, planUpkeep } from "../ledger/plan.js";
import { limits } from "../limits.js";
import { insertAuditRecord } from "../store/audit-store.js";
import type { BalanceKey } from "../store/balance-store.js";
import { type CorrectionRow, insertCorrection, selectCorrection, selectLotsByIds, selectUnreturnedSettles, type UnreturnedSettle } from "../store/correction-store.js";
import type { Tx } from "../store/database.js";
import { type EntryRow, selectEntriesOfUsage } from "../store/entry-store.js";
import type { StoredUsage } from "../store/usage-store.js";
import { loadBalance, writeChange } from "./balance-change.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { resolveUsageEvent, type UsageEventRef } from "./explain-usage.js";
import { runIdempotent } from "./run-idempotent.js";

/** CorrectUsageInput is a validated CorrectUsageEvent request. */
export interface CorrectUsageInput extends UsageEventRef {
  reasonCode: string;
  note: string;
}

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
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const usage = await resolveUsageEvent(tx, input);
    if (usage.status !== "burned") {
      throw new LedgerError("rejected", "NOT_CORRECTABLE", `usage event ${JSON.stringify(usage.eventId)} was ${usage.status}, not burned`, {
        usage_id: usage.usageId,
        status: usage.status,
      });
    }
    assert(usage.creditTypeId !== null && usage.credits !== null, "a burned event is rated");
    // Entries are immutable and written with the event, so they may be read before the lock.
    const burns = (await selectEntriesOfUsage(tx, usage.customerId, [usage.usageId])).filter((entry) => entry.kind === "burn");
    const key = { customerId: usage.customerId, creditTypeId: usage.creditTypeId };
    const pinned = [...new Set(burns.flatMap((burn) => (burn.grantId === null ? [] : [burn.grantId])))];
    const loaded = await loadBalance(tx, key, deps.now, { pinnedGrantIds: pinned });
    assert(loaded !== null, "a burned event's balance exists");
    if ((await selectCorrection(tx, usage.usageId)) !== null) throw alreadyCorrected(usage);
    const { state, planned } = await planCorrection(tx, key, loaded.state, burns, loaded.now.getTime());
    const written = await writeChange(tx, key, state, planned, {
      reservationId: null,
      requestId: idempotency.requestId,
      actor: caller.keyId,
      reasonCode: input.reasonCode,
      effectiveAt: loaded.now,
    }, [usage.usageId]);
    const entries = written.entries.filter((entry) => entry.kind === "refund");
    assert(entries.every((entry) => entry.usageId === usage.usageId), "refund entries name the event they correct");
    const correction = await recordCorrection(tx, caller, idempotency, input, usage, entries);
    return { correction, entries };
  });
}

function alreadyCorrected(usage: StoredUsage): LedgerError {
  return new LedgerError("rejected", "ALREADY_CORRECTED", `usage event ${JSON.stringify(usage.eventId)} was already corrected`, { usage_id: usage.usageId });
}

/**
 * planCorrection loads the lots that repaid debt and plans the refunds. Expects the balance
 * row locked. Returns the state the plan starts from (with those lots) and the plan, its
 * refund entries tagged with event index 0 (the corrected event).
 */
async function planCorrection(tx: Tx, key: BalanceKey, loaded: BalanceState, burns: EntryRow[], nowMs: number): Promise<{ state: BalanceState; planned: Planned }> {
  const upkeep = planUpkeep(loaded, nowMs);
  const overdraft = burns.reduce((sum, burn) => (burn.grantId === null ? sum + burn.amount : sum), 0n);
  // Only an overdraft part larger than the debt goes back to lots that settled; the
  // settle entries are read (a scan of the balance's entries) only then.
  const settles: UnreturnedSettle[] = [];
  if (overdraft > upkeep.state.debt) {
    // Settlements the upkeep is about to write are the newest of all, the last one first.
    const upkeepSettles = upkeep.entries.filter((entry) => entry.kind === "settle").reverse();
    settles.push(...upkeepSettles.map((entry) => ({ grantId: entry.grantId!, unreturned: entry.amount })));
    settles.push(...(await selectUnreturnedSettles(tx, key, limits.lotsPerDecisionMax)));
  }
  const rows = await selectLotsByIds(tx, key.customerId, [...new Set(settles.map((settle) => settle.grantId))]);
  // Lots without free credits are not loaded for decisions; upkeep leaves them unchanged.
  const state = { ...loaded, lots: [...loaded.lots, ...rows.filter((row) => !loaded.lots.some((lot) => lot.grantId === row.grantId))] };
  const roomOf = new Map(rows.map((row): [string, bigint] => {
    const remaining = upkeep.state.lots.find((lot) => lot.grantId === row.grantId)?.remaining ?? row.remaining;
    return [row.grantId, row.amount - remaining];
  }));
  const refunds = distributeRefund(burns.map((burn) => ({ grantId: burn.grantId, amount: burn.amount })), upkeep.state, settles, roomOf);
  const planned = planRefund(state, refunds, nowMs);
  const tagged = planned.entries.map((entry) => (entry.kind === "refund" ? { ...entry, eventIndex: 0 } : entry));
  assert(tagged.filter((entry) => entry.kind === "refund").length === refunds.length, "every refund is planned");
  return { state, planned: { ...planned, entries: tagged } };
}

/** recordCorrection inserts the correction and its audit record. Expects the balance row locked. */
async function recordCorrection(tx: Tx, caller: Caller, idempotency: Idempotency, input: CorrectUsageInput, usage: StoredUsage, entries: EntryRow[]): Promise<CorrectionRow> {
  const credits = entries.reduce((sum, entry) => sum + entry.amount, 0n);
  assert(credits === usage.credits, "a correction gives back the event's credits");
  const correction = await insertCorrection(tx, {
    usageId: usage.usageId,
    actor: caller.keyId,
    reasonCode: input.reasonCode,
    note: input.note,
    credits,
    requestId: idempotency.requestId,
  });
  if (correction === null) throw alreadyCorrected(usage);
  await insertAuditRecord(tx, {
    actor: caller.keyId,
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
  });
  return correction;
}
