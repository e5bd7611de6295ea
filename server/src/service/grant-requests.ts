// Maker-checker grants: RequestGrant (grant within the limit, file a request above it),
// approve (the grant and the decision in one write-group transaction: granted exactly
// once, or not at all), reject, and the listing. See support-grant-op.ts for the rules.
import { invalid, LedgerError } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { mapDriverErrors } from "../store/database.js";
import { type GrantRequestFilter, type GrantRequestRow, selectGrantRequest, selectGrantRequests, updateGrantRequestDecided } from "../store/grant-request-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import type { GrantInput } from "./grant.js";
import { runIdempotent } from "./run-idempotent.js";
import { auditOfDecision, checkApprovable, precheckSupportGrant, type SupportGrantOutcome, supportGrantOp } from "./support-grant-op.js";

/** requestGrant grants within the caller's limit, and files a pending request above it. */
export async function requestGrant(deps: Deps, caller: Caller, idempotency: Idempotency, input: GrantInput): Promise<SupportGrantOutcome> {
  const ttlMs = deps.grantRequestTtlMs ?? limits.grantRequestTtlMsDefault;
  assert(ttlMs >= limits.grantRequestTtlMsMin && ttlMs <= limits.grantRequestTtlMsMax, "the request TTL is within its bounds");
  await precheckSupportGrant(deps, caller, idempotency, input, { kind: "request", ttlMs });
  return deps.writes.submit(supportGrantOp(caller, idempotency, input, { kind: "request", ttlMs }));
}

/** inputOf is the grant a request asked for. */
function inputOf(request: GrantRequestRow): GrantInput {
  return {
    customerId: request.customerId,
    creditTypeId: request.creditTypeId,
    amount: request.amount,
    source: request.source,
    reasonCode: request.reasonCode,
    note: request.note,
    priority: request.priority,
    effectiveAt: request.effectiveAt,
    expiresAt: request.lotExpiresAt,
    costBasisMicros: request.costBasisMicros,
    ticketUrl: request.ticketUrl,
  };
}

const notFound = (grantRequestId: string) =>
  new LedgerError("not_found", "GRANT_REQUEST_NOT_FOUND", `grant request ${grantRequestId} not found`, { grant_request_id: grantRequestId });

/**
 * approveGrantRequest grants a pending request on the approver's authority: an admin's,
 * or a support key's within its own limit. The request is read first only for what never
 * changes (customer, credit type, amount); its state is checked again under its row lock
 * in the grant's transaction, so of two approvers one grants and the other is told
 * ALREADY_DECIDED.
 */
export async function approveGrantRequest(deps: Deps, caller: Caller, idempotency: Idempotency, input: { grantRequestId: string; reason: string }): Promise<SupportGrantOutcome> {
  const request = await mapDriverErrors(() => selectGrantRequest(deps.pool, input.grantRequestId, "none"));
  if (request === null) throw notFound(input.grantRequestId);
  const outcome = await deps.writes.submit(supportGrantOp(caller, idempotency, inputOf(request), { kind: "approve", ...input }));
  assert(outcome.kind === "granted" && outcome.request?.grantRequestId === input.grantRequestId, "an approval grants the request it names");
  return outcome;
}

/** rejectGrantRequest rejects a pending request with a reason, audited. */
export async function rejectGrantRequest(deps: Deps, caller: Caller, idempotency: Idempotency, input: { grantRequestId: string; reason: string }): Promise<GrantRequestRow> {
  assert(input.reason !== "", "a rejection says why");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const now = deps.now();
    checkApprovable(await selectGrantRequest(tx, input.grantRequestId, "update"), caller, now, input.grantRequestId);
    const row = await updateGrantRequestDecided(tx, { grantRequestId: input.grantRequestId, status: "rejected", deciderKeyId: caller.keyId, decidedAt: now, reason: input.reason, grantId: null });
    assert(row !== null, "a locked pending request is decided");
    await insertAuditRecord(tx, auditOfDecision(caller, row));
    return row;
  });
}

function decodeToken(pageToken: string): GrantRequestFilter["after"] {
  if (pageToken === "") return null;
  const [version, ms, id] = Buffer.from(pageToken, "base64url").toString("utf8").split(":");
  if (version !== "gr1" || !/^[0-9]{1,15}$/.test(ms ?? "") || !/^[0-9a-f-]{36}$/.test(id ?? "")) {
    throw invalid("INVALID_PAGE_TOKEN", "page_token", "not a token from a previous page of grant requests");
  }
  return { createdAt: new Date(Number(ms)), grantRequestId: id };
}

/** listGrantRequests reads a page of requests, newest first, and the token of the next. */
export async function listGrantRequests(
  deps: Deps,
  input: { status: GrantRequestFilter["status"]; requesterKeyId: string | null; customerId: string | null; pageSize: number; pageToken: string },
): Promise<{ requests: GrantRequestRow[]; nextPageToken: string; now: Date }> {
  const now = deps.now();
  const rows = await mapDriverErrors(() =>
    selectGrantRequests(deps.pool, { status: input.status, requesterKeyId: input.requesterKeyId, customerId: input.customerId, now, after: decodeToken(input.pageToken), limit: input.pageSize + 1 }),
  );
  const requests = rows.slice(0, input.pageSize);
  const last = requests.at(-1);
  const nextPageToken = rows.length > input.pageSize && last !== undefined ? Buffer.from(`gr1:${last.createdAt.getTime()}:${last.grantRequestId}`).toString("base64url") : "";
  return { requests, nextPageToken, now };
}
