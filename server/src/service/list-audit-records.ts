// ListAuditRecords: administrative actions, newest first, in pages (AIP-158). A page
// token is the last audit id of the page before, so pages stay stable as records are added.
import { invalid } from "../errors.js";
import { limits } from "../limits.js";
import { type AuditRecordRow, selectAuditRecords, selectAuditRecordsOfRequest } from "../store/audit-store.js";
import { mapDriverErrors } from "../store/database.js";
import type { Deps } from "./context.js";

function decodeToken(pageToken: string): bigint | null {
  if (pageToken === "") return null;
  const [version, before] = Buffer.from(pageToken, "base64url").toString("utf8").split(":");
  if (version !== "audit1" || !/^[1-9][0-9]{0,18}$/.test(before ?? "") || BigInt(before) > limits.amountMax) {
    throw invalid("INVALID_PAGE_TOKEN", "page_token", "not a token from a previous page of audit records");
  }
  return BigInt(before);
}

/**
 * listAuditRecords reads one page of audit records, newest first, and the token for the next;
 * only those of the call with requestId when it is set.
 */
export async function listAuditRecords(
  deps: Deps,
  input: { pageSize: number; pageToken: string; requestId: string | null },
): Promise<{ records: AuditRecordRow[]; nextPageToken: string }> {
  const beforeAuditId = decodeToken(input.pageToken);
  const { requestId } = input;
  const limit = input.pageSize + 1;
  const rows = await mapDriverErrors(() =>
    requestId === null ? selectAuditRecords(deps.pool, { beforeAuditId, limit }) : selectAuditRecordsOfRequest(deps.pool, { requestId, beforeAuditId, limit }),
  );
  const records = rows.slice(0, input.pageSize);
  const last = records.at(-1);
  const nextPageToken = rows.length > input.pageSize && last ? Buffer.from(`audit1:${last.auditId}`).toString("base64url") : "";
  return { records, nextPageToken };
}
