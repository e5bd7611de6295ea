// Usage events refused because their event id was taken by another event from the same
// API key (EVENT_ID_REUSED): kept as received, listed for the producer's team with the
// event that took the id, and forgotten with the id after the deduplication window.
import { invalid } from "../errors.js";
import { mapDriverErrors } from "../store/database.js";
import { selectUsageConflicts, type StoredConflict } from "../store/usage-store.js";
import type { Deps } from "./context.js";

function decodeToken(token: string): string | null {
  if (token === "") return null;
  const match = /^c1:([1-9][0-9]{0,18})$/.exec(Buffer.from(token, "base64url").toString("utf8"));
  if (match === null || BigInt(match[1]) > 9_223_372_036_854_775_807n) throw invalid("INVALID_PAGE_TOKEN", "page_token", "not a token from a previous page");
  return match[1];
}

/** ConflictPage is a page of conflicts, newest first, and how many match in all. */
export interface ConflictPage {
  conflicts: StoredConflict[];
  nextPageToken: string;
  total: bigint;
}

/** listUsageConflicts reads a page of conflicts, newest first, of one reporting key and one customer when given. */
export async function listUsageConflicts(
  deps: Deps,
  input: { reporterKeyId: string; customerId: string; pageSize: number; pageToken: string },
): Promise<ConflictPage> {
  const below = decodeToken(input.pageToken);
  const filter = { principal: input.reporterKeyId === "" ? null : input.reporterKeyId, customerId: input.customerId === "" ? null : input.customerId };
  const { conflicts: rows, total } = await mapDriverErrors(() => selectUsageConflicts(deps.pool, filter, below, input.pageSize + 1));
  const conflicts = rows.slice(0, input.pageSize);
  const last = conflicts.at(-1);
  return { conflicts, total, nextPageToken: rows.length > input.pageSize && last ? Buffer.from(`c1:${last.conflictId}`).toString("base64url") : "" };
}
