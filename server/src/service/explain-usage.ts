// ExplainUsageEvent: the whole story of one usage event ("why was I charged for this?"),
// read from one snapshot: the event as received and rated, the burn and refund entries
// linked to it, the lots they drew from, and its correction.
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { type CorrectionRow, selectCorrection, selectLotsByIds } from "../store/correction-store.js";
import { type Db, withSnapshot } from "../store/database.js";
import { type EntryRow, selectEntriesOfUsage } from "../store/entry-store.js";
import { selectUsageByEventId, selectUsageByUsageId, type StoredUsage } from "../store/usage-store.js";
import { type LotView, toLotView } from "./balance-view.js";
import type { Deps } from "./context.js";

/**
 * UsageEventRef names a usage event: its id, and the reporting key when several used that
 * id; or its usage id. customerId, when set, sees only that customer's events (a customer
 * key's own); unset, any customer's.
 */
export type UsageEventRef = (
  | {
      eventId: string;
      /** null: whichever key reported it, when only one did. */
      reporterKeyId: string | null;
    }
  | { usageId: bigint }
) & { customerId?: string };

/** UsageExplanation is one event with everything that explains its charge. */
export interface UsageExplanation {
  usage: StoredUsage;
  /** burn and refund entries linked to the event, oldest first. */
  entries: EntryRow[];
  /** the lots those entries name, as of now. */
  lots: LotView[];
  correction: CorrectionRow | null;
}

/**
 * resolveUsageEvent finds the stored event a reference names. NotFound when none; when
 * several keys reported the id and the reference names none, FailedPrecondition
 * AMBIGUOUS_EVENT_ID. One key may have reused an id after its dedup claim was pruned;
 * the newest of its events is the one meant. A reference bound to a customer sees that
 * customer's events only, before anything else is decided, so that another customer's
 * event answers exactly as a missing one (and never makes an id ambiguous). No locks.
 */
export async function resolveUsageEvent(db: Db, ref: UsageEventRef): Promise<StoredUsage> {
  if ("usageId" in ref) {
    const usage = await selectUsageByUsageId(db, ref.usageId);
    // One row by its key: another customer's event is answered exactly as a missing one.
    if (usage === null || (ref.customerId !== undefined && usage.customerId !== ref.customerId)) {
      throw notFound("USAGE_EVENT_NOT_FOUND", "usage id", ref.usageId.toString());
    }
    return usage;
  }
  const found = await selectUsageByEventId(db, { eventId: ref.eventId, principal: ref.reporterKeyId, customerId: ref.customerId ?? null });
  assert(ref.customerId === undefined || found.every((usage) => usage.customerId === ref.customerId), "a customer's reference finds only its events");
  if (found.length === 0) throw notFound("USAGE_EVENT_NOT_FOUND", "event id", ref.eventId);
  const reporters = new Set(found.map((usage) => usage.principal));
  if (reporters.size > 1) {
    assert(ref.reporterKeyId === null, "a named reporter narrows the events to its own");
    throw new LedgerError("rejected", "AMBIGUOUS_EVENT_ID", `several API keys reported event id ${JSON.stringify(ref.eventId)}; name the reporter_key_id`, {
      event_id: ref.eventId,
    });
  }
  // selectUsageByEventId returns the newest first.
  const usage = found[0];
  assert(usage.eventId === ref.eventId, "the event found has the id asked for");
  return usage;
}

/** explainUsageEvent reads one event's explanation from one consistent snapshot. */
export async function explainUsageEvent(deps: Deps, ref: UsageEventRef): Promise<UsageExplanation> {
  const nowMs = deps.now().getTime();
  return withSnapshot(deps.pool, async (tx) => {
    const usage = await resolveUsageEvent(tx, ref);
    const entries = await selectEntriesOfUsage(tx, usage.customerId, [usage.usageId]);
    assert(entries.every((entry) => ["burn", "refund", "unexpire"].includes(entry.kind)), "only burns, refunds and the expiry they take back name a usage event");
    const grantIds = [...new Set(entries.flatMap((entry) => (entry.grantId === null ? [] : [entry.grantId])))];
    const lots = await selectLotsByIds(tx, usage.customerId, grantIds);
    assert(lots.length === grantIds.length, "every lot an entry names exists");
    const correction = await selectCorrection(tx, usage.usageId);
    return { usage, entries, lots: lots.map((lot) => toLotView(lot, nowMs)), correction };
  });
}
