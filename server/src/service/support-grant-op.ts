// A grant under support rules, as the write path runs it: a support key's Grant, a
// RequestGrant (which files a pending request when over the limit) and the approval of a
// request. It runs alone in its group (it loads): after the balance lock it takes the row
// lock of the key's tally for the credit type, so concurrent grants of one key read and
// add to its period sum one at a time and together never pass it; the grant, the tally
// row and the request's decision commit in one transaction, and a replay is answered
// from its claim before any of that, so it is never counted twice. Service and admin
// keys' plain Grants never come here (grant.ts): they pay nothing for it.
import { randomUUID } from "node:crypto";
import { invalid, LedgerError } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { checkGrantLimit, type EffectiveGrantLimit, resolveGrantLimit } from "../ledger/grant-limit.js";
import { limits } from "../limits.js";
import { mapDriverErrors, type Tx } from "../store/database.js";
import { insertSupportGrant, lockSupportTally, selectGrantLimits, selectGrantSources, selectSupportGrantSum } from "../store/grant-limit-store.js";
import { type GrantRequestRow, insertGrantRequest, selectGrantRequest, updateGrantRequestDecided } from "../store/grant-request-store.js";
import { selectIdempotencyKey } from "../store/idempotency-store.js";
import { selectReasonCode } from "../store/reason-code-store.js";
import { enqueueWebhookEvents } from "../store/webhook-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { type GrantInput, type GrantResult, grantOp } from "./grant.js";
import type { PlanContext, WriteOp } from "./write-op.js";

/** SupportGrantMode says what the op does over the limit: refuse, file a request, or (approving one) refuse. */
export type SupportGrantMode =
  | { kind: "grant" }
  | { kind: "request"; ttlMs: number }
  | { kind: "approve"; grantRequestId: string; reason: string };

/** SupportGrantOutcome is a grant made (with the request it approved), or a request filed. */
export type SupportGrantOutcome = { kind: "granted"; granted: GrantResult; request: GrantRequestRow | null } | { kind: "pending"; request: GrantRequestRow };

/** supportSourcesDefault are the sources support keys grant with when no admin set others. */
export const supportSourcesDefault: readonly string[] = ["support", "promotion"];

/** fallbackLimit applies when no role or key limit does. */
const fallbackLimit: EffectiveGrantLimit = {
  perCallMax: limits.supportGrantPerCallMaxDefault,
  periodMax: limits.supportGrantPeriodMaxDefault,
  periodSeconds: limits.supportGrantPeriodSecondsDefault,
};

/** Loaded is what the op read under its locks. */
interface Loaded {
  reasonEnabled: boolean;
  /** null: the caller is not limited. */
  limited: { limit: EffectiveGrantLimit; used: bigint; sources: readonly string[] } | null;
  /** the request being approved, locked. */
  request: GrantRequestRow | null;
}

async function loadLimited(tx: Tx, caller: Caller, creditTypeId: string, now: Date, lock: boolean): Promise<NonNullable<Loaded["limited"]>> {
  const sources = (await selectGrantSources(tx, caller.role))[0]?.sources ?? supportSourcesDefault;
  if (lock) await lockSupportTally(tx, { keyId: caller.keyId, creditTypeId });
  const rules = await selectGrantLimits(tx, { keyId: caller.keyId, role: caller.role });
  const limit = resolveGrantLimit(rules, { keyId: caller.keyId, role: caller.role, creditTypeId, keyPerCallMax: caller.grantLimit }, fallbackLimit);
  const used = await selectSupportGrantSum(tx, { keyId: caller.keyId, creditTypeId, after: new Date(now.getTime() - limit.periodSeconds * 1000) });
  return { limit, used, sources };
}

function overLimit(limit: EffectiveGrantLimit, used: bigint, approvalPossible: boolean): LedgerError {
  const why = `support grants of this key may give at most ${limit.perCallMax} per call and ${limit.periodMax} per ${limit.periodSeconds} s (${used} given)`;
  return new LedgerError("forbidden", "GRANT_LIMIT_EXCEEDED", approvalPossible ? `${why}; RequestGrant files it for approval` : why, {
    per_call_max: limit.perCallMax.toString(),
    period_max: limit.periodMax.toString(),
    period_seconds: limit.periodSeconds.toString(),
    period_used: used.toString(),
    // Kept for clients of the per-call limit only.
    grant_limit: limit.perCallMax.toString(),
    approval_possible: approvalPossible ? "true" : "false",
  });
}

/** checkApprovable refuses an approval the request's state or the approver forbid. */
export function checkApprovable(request: GrantRequestRow | null, approver: Caller, now: Date, grantRequestId: string): GrantRequestRow {
  if (request === null) throw new LedgerError("not_found", "GRANT_REQUEST_NOT_FOUND", `grant request ${grantRequestId} not found`, { grant_request_id: grantRequestId });
  if (request.requesterKeyId === approver.keyId) {
    throw new LedgerError("forbidden", "SELF_APPROVAL_NOT_ALLOWED", "another person decides a grant request, never the key that filed it", { grant_request_id: grantRequestId });
  }
  if (request.status !== "pending") {
    throw new LedgerError("rejected", "ALREADY_DECIDED", `grant request ${grantRequestId} was ${request.status} already`, { status: request.status });
  }
  if (request.expiresAt <= now) {
    throw new LedgerError("rejected", "GRANT_REQUEST_EXPIRED", `grant request ${grantRequestId} expired at ${request.expiresAt.toISOString()}`, {
      expire_time: request.expiresAt.toISOString(),
    });
  }
  return request;
}

function pendingRequestOf(caller: Caller, input: GrantInput, ctx: PlanContext, ttlMs: number): GrantRequestRow {
  return {
    grantRequestId: randomUUID(),
    requesterKeyId: caller.keyId,
    customerId: input.customerId,
    creditTypeId: input.creditTypeId,
    amount: input.amount,
    source: input.source,
    reasonCode: input.reasonCode,
    note: input.note,
    ticketUrl: input.ticketUrl,
    priority: input.priority,
    effectiveAt: input.effectiveAt,
    lotExpiresAt: input.expiresAt,
    costBasisMicros: input.costBasisMicros,
    status: "pending",
    createdAt: ctx.now,
    expiresAt: new Date(ctx.now.getTime() + ttlMs),
    deciderKeyId: null,
    decidedAt: null,
    decisionReason: "",
    grantId: null,
  };
}

/**
 * withinRules checks a grant against the rules read: an enabled reason code, a source the
 * role may use, and its limit. It throws the refusal, or answers false when a request may
 * be filed instead.
 */
function withinRules(state: Loaded, caller: Caller, input: GrantInput, mode: SupportGrantMode): boolean {
  // An approval grants what was asked under the code it was asked with, even if disabled since.
  if (mode.kind !== "approve" && !state.reasonEnabled) {
    throw new LedgerError("invalid", "INVALID_REASON_CODE", `reason_code: ${JSON.stringify(input.reasonCode)} is not an enabled reason code (ListReasonCodes)`, {
      field: "reason_code",
    });
  }
  const limited = state.limited;
  if (limited === null) return true;
  if (!limited.sources.includes(input.source)) {
    throw new LedgerError("forbidden", "GRANT_SOURCE_NOT_ALLOWED", `the ${caller.role} role grants with the sources ${limited.sources.join(", ")} only`, {
      source: input.source,
      allowed_sources: limited.sources.join(","),
    });
  }
  if (checkGrantLimit(limited.limit, input.amount, limited.used).kind === "within") return true;
  if (mode.kind !== "request") throw overLimit(limited.limit, limited.used, mode.kind === "grant");
  return false;
}

/**
 * precheckSupportGrant refuses, before the write path, what the rules as they stand
 * refuse: a refusal then writes nothing at all (not even the customer a grant would
 * create). Nothing is locked: the op checks again under its locks, and only its answer
 * counts.
 */
export async function precheckSupportGrant(deps: Deps, caller: Caller, idempotency: Idempotency, input: GrantInput, mode: SupportGrantMode): Promise<void> {
  assert(mode.kind !== "approve", "an approval is checked under its request's lock");
  const reason = await mapDriverErrors(() => selectReasonCode(deps.pool, input.reasonCode, "none"));
  const limited = caller.role === "support" ? await mapDriverErrors(() => loadLimited(deps.pool, caller, input.creditTypeId, deps.now(), false)) : null;
  try {
    withinRules({ reasonEnabled: reason !== null && reason.disabledAt === null, limited, request: null }, caller, input, mode);
  } catch (error) {
    // A replay is answered as the first time (by the write path), whatever the rules say now.
    const claimed = await mapDriverErrors(() => selectIdempotencyKey(deps.pool, caller.keyId, idempotency.requestId));
    if (claimed === null) throw error;
  }
}

/** supportGrantOp is a grant under the support rules (see the file comment). */
export function supportGrantOp(caller: Caller, idempotency: Idempotency, input: GrantInput, mode: SupportGrantMode): WriteOp<SupportGrantOutcome> {
  const inner = grantOp(caller, idempotency, input);
  let loaded: Loaded | null = null;
  let stored: ((tx: Tx) => Promise<void>) | null = null;
  return {
    lane: inner.lane,
    weight: inner.weight,
    claim: { caller, idempotency },
    request: (reads) => inner.request(reads),
    prepare: (inputs) => inner.prepare(inputs),
    load: async (tx, view) => {
      stored = null;
      const reason = await selectReasonCode(tx, input.reasonCode, "none");
      const request = mode.kind === "approve" ? await selectGrantRequest(tx, mode.grantRequestId, "update") : null;
      const limited = caller.role === "support" ? await loadLimited(tx, caller, input.creditTypeId, view.now, true) : null;
      loaded = { reasonEnabled: reason !== null && reason.disabledAt === null, limited, request };
    },
    plan: (ctx) => {
      assert(loaded !== null, "the op loaded before it plans");
      const state: Loaded = loaded;
      const approved = mode.kind === "approve" ? checkApprovable(state.request, caller, ctx.now, mode.grantRequestId) : null;
      const limited = state.limited;
      if (!withinRules(state, caller, input, mode)) {
        assert(limited !== null && mode.kind === "request", "only a limited key's request is filed");
        // Refused now what its grant would refuse: an expiry that has passed or comes before its start.
        if (input.expiresAt !== null && (input.expiresAt <= ctx.now || (input.effectiveAt !== null && input.expiresAt <= input.effectiveAt))) {
          throw invalid("INVALID_EXPIRE_TIME", "expire_time", "must be in the future and after the effective time");
        }
        const request = pendingRequestOf(caller, input, ctx, mode.ttlMs);
        ctx.draft.audit(auditOfRequest(caller, request));
        stored = async (tx) => {
          await insertGrantRequest(tx, request);
          await enqueueWebhookEvents(tx, "grant_request.created", [{ customerId: request.customerId, payload: grantRequestEventData(request) }]);
        };
        return { value: { kind: "pending", request } };
      }
      const planned = inner.plan(ctx);
      assert("value" in planned, "a grant's plan answers at once");
      const granted = planned.value;
      const decided: GrantRequestRow | null =
        approved === null ? null : { ...approved, status: "approved", deciderKeyId: caller.keyId, decidedAt: ctx.now, decisionReason: mode.kind === "approve" ? mode.reason : "", grantId: granted.lot.grantId };
      if (decided !== null) ctx.draft.audit(auditOfDecision(caller, decided));
      stored = async (tx) => {
        if (limited !== null) {
          await insertSupportGrant(tx, {
            keyId: caller.keyId, creditTypeId: input.creditTypeId, grantedAt: ctx.now, amount: input.amount, grantId: granted.lot.grantId,
            customerId: input.customerId, reasonCode: input.reasonCode, ticketUrl: input.ticketUrl,
          });
        }
        if (decided === null) return;
        const row = await updateGrantRequestDecided(tx, { ...decided, status: "approved", decidedAt: ctx.now, reason: decided.decisionReason, deciderKeyId: caller.keyId });
        assert(row !== null && row.grantId === granted.lot.grantId, "the locked pending request is the one approved");
      };
      return { value: { kind: "granted", granted, request: decided } };
    },
    store: async (tx) => {
      if (stored !== null) await stored(tx);
    },
  };
}

/** grantRequestEventData is a request as the grant_request.created webhook event carries it. */
function grantRequestEventData(request: GrantRequestRow): Record<string, unknown> {
  return {
    grantRequestId: request.grantRequestId,
    requesterKeyId: request.requesterKeyId,
    creditTypeId: request.creditTypeId,
    amount: request.amount.toString(),
    source: request.source,
    reasonCode: request.reasonCode,
    ticketUrl: request.ticketUrl,
    expireTime: request.expiresAt.toISOString(),
  };
}

function auditOfRequest(caller: Caller, request: GrantRequestRow) {
  return {
    actor: caller.keyId,
    requestId: caller.requestId,
    action: "request_grant",
    target: `customer:${request.customerId}`,
    reason: request.note === "" ? request.reasonCode : `${request.reasonCode}: ${request.note}`,
    details: {
      old: null,
      new: {
        grant_request_id: request.grantRequestId,
        credit_type_id: request.creditTypeId,
        amount: request.amount.toString(),
        source: request.source,
        ticket_url: request.ticketUrl,
        expire_time: request.expiresAt.toISOString(),
      },
      reason_code: request.reasonCode,
    },
  };
}

/** auditOfDecision is the audit record of an approval or a rejection. */
export function auditOfDecision(caller: Caller, request: GrantRequestRow) {
  assert(request.status !== "pending", "a decision is recorded once decided");
  return {
    actor: caller.keyId,
    requestId: caller.requestId,
    action: request.status === "approved" ? "approve_grant_request" : "reject_grant_request",
    target: `grant_request:${request.grantRequestId}`,
    reason: request.decisionReason === "" ? request.status : request.decisionReason,
    details: {
      old: { status: "pending" },
      new: { status: request.status, grant_id: request.grantId, requester_key_id: request.requesterKeyId, customer_id: request.customerId, amount: request.amount.toString() },
    },
  };
}
