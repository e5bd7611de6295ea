// The dead letters of usage: events kept unrated because their customer or feature did
// not exist. Listed for support, and replayed (rated and burned, at their event time)
// once both exist. A replay is safe to repeat: only rows still unrated are rated.
import { invalid } from "../errors.js";
import { mapDriverErrors } from "../store/database.js";
import { selectUnratedEvents, type StoredUsage } from "../store/usage-store.js";
import type { Caller, Deps } from "./context.js";
import { type PendingUsage, replayUnrated, type UsageResult } from "./report-usage.js";

function decodeToken(token: string): string | null {
  if (token === "") return null;
  const match = /^u1:([1-9][0-9]{0,18})$/.exec(Buffer.from(token, "base64url").toString("utf8"));
  if (match === null || BigInt(match[1]) > 9_223_372_036_854_775_807n) throw invalid("INVALID_PAGE_TOKEN", "page_token", "not a token from a previous page");
  return match[1];
}

/** listUnratedEvents reads a page of unrated events, oldest first. */
export async function listUnratedEvents(deps: Deps, input: { pageSize: number; pageToken: string }): Promise<{ events: StoredUsage[]; nextPageToken: string }> {
  const after = decodeToken(input.pageToken);
  const rows = await mapDriverErrors(() => selectUnratedEvents(deps.pool, after, input.pageSize + 1));
  const events = rows.slice(0, input.pageSize);
  const last = events.at(-1);
  return { events, nextPageToken: rows.length > input.pageSize && last ? Buffer.from(`u1:${last.usageId}`).toString("base64url") : "" };
}

/**
 * replayUnratedEvents tries to rate up to limit unrated events, oldest first. Events it
 * rates are burned, an administrative change of balances: the audit record (who, why,
 * which events) is written in the transaction that burns them. A replay that rates
 * nothing changes nothing and leaves no record.
 */
export async function replayUnratedEvents(deps: Deps, caller: Caller, input: { limit: number; reason: string }): Promise<UsageResult[]> {
  const rows = await mapDriverErrors(() => selectUnratedEvents(deps.pool, null, input.limit));
  const pending: Omit<PendingUsage, "sent">[] = rows.map((row, position) => ({
    position,
    principal: row.principal,
    usageId: row.usageId,
    event: { eventId: row.eventId, customerId: row.customerId, featureKey: row.featureKey, quantity: row.quantity, eventAt: row.eventAt, properties: row.properties, offline: row.offline },
  }));
  if (pending.length === 0) return [];
  return replayUnrated(deps, caller, pending, (rated) => {
    const burned = [...rated].filter(([, result]) => result.outcome === "burned").map(([position]) => rows[position]);
    if (burned.length === 0) return null;
    return {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "replay_unrated_events",
      target: "usage_events",
      reason: input.reason,
      details: { old: null, new: { rated: burned.length, usage_ids: burned.map((row) => row.usageId) } },
    };
  });
}
