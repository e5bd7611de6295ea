// ListLedgerEntries: a customer's entries, newest first (by entry id, the order they were
// recorded), in pages, filtered by effective time and by record time. A page token is bound
// to the filters it was made with (AIP-158), so it cannot silently page another query.
import { createHash } from "node:crypto";
import { invalid, notFound } from "../errors.js";
import { customerExists } from "../store/catalog-store.js";
import { withSnapshot } from "../store/database.js";
import { type EntryRow, selectEntries } from "../store/entry-store.js";
import { limits } from "../limits.js";
import type { Deps } from "./context.js";

/** ListEntriesInput is a validated ListLedgerEntries request. */
export interface ListEntriesInput {
  customerId: string;
  creditTypeId: string;
  kinds: string[];
  startAt: Date | null;
  endAt: Date | null;
  /** only entries recorded at or after this time. */
  recordStartAt: Date | null;
  /** only entries recorded before this time. */
  recordEndAt: Date | null;
  pageSize: number;
  pageToken: string;
  /** only entries this pool member caused; empty: all. */
  memberCustomerId: string;
}

function filterHash(input: ListEntriesInput): string {
  const filter = [input.customerId, input.creditTypeId, [...input.kinds].sort().join(","), input.startAt?.toISOString() ?? "", input.endAt?.toISOString() ?? "", input.memberCustomerId,
    input.recordStartAt?.toISOString() ?? "", input.recordEndAt?.toISOString() ?? ""];
  return createHash("sha256").update(JSON.stringify(filter)).digest("base64url").slice(0, 16);
}

function decodeToken(input: ListEntriesInput): bigint | null {
  if (input.pageToken === "") return null;
  const [version, before, hash] = Buffer.from(input.pageToken, "base64url").toString("utf8").split(":");
  if (version !== "v1" || !/^[1-9][0-9]{0,18}$/.test(before ?? "") || BigInt(before) > limits.amountMax || hash !== filterHash(input)) {
    throw invalid("INVALID_PAGE_TOKEN", "page_token", "not a token from a previous page of this same query");
  }
  return BigInt(before);
}

/** listLedgerEntries reads one page of entries and the token for the next. */
export async function listLedgerEntries(deps: Deps, input: ListEntriesInput): Promise<{ entries: EntryRow[]; nextPageToken: string }> {
  const beforeEntryId = decodeToken(input);
  return withSnapshot(deps.pool, async (tx) => {
    if (!(await customerExists(tx, input.customerId))) throw notFound("CUSTOMER_NOT_FOUND", "customer id", input.customerId);
    const rows = await selectEntries(tx, { ...input, beforeEntryId, limit: input.pageSize + 1 });
    const entries = rows.slice(0, input.pageSize);
    const last = entries.at(-1);
    const nextPageToken = rows.length > input.pageSize && last ? Buffer.from(`v1:${last.entryId}:${filterHash(input)}`).toString("base64url") : "";
    return { entries, nextPageToken };
  });
}
