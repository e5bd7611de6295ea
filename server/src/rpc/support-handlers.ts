// SupportService handlers: decode, call one service, encode.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Duration, durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  ApproveGrantRequestRequestSchema,
  CreateReasonCodeRequestSchema,
  DeleteGrantLimitRequestSchema,
  type GrantLimit,
  type GrantLimitSchema,
  GrantRequestStatus,
  GrantSource,
  type PendingGrantSchema,
  type ReasonCodeSchema,
  RejectGrantRequestRequestSchema,
  RequestGrantRequestSchema,
  Role as ProtoRole,
  SetGrantLimitRequestSchema,
  SetGrantSourcesRequestSchema,
  type SupportService,
  UpdateReasonCodeRequestSchema,
} from "@burndown/sdk";
import type { ServiceImpl } from "@connectrpc/connect";
import { invalid } from "../errors.js";
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { deleteGrantLimit, type LimitSubject, listGrantLimits, listGrantSources, setGrantLimit, setGrantSources } from "../service/grant-limits.js";
import { approveGrantRequest, listGrantRequests, rejectGrantRequest, requestGrant } from "../service/grant-requests.js";
import { createReasonCode, listReasonCodes, updateReasonCode } from "../service/reason-codes.js";
import type { SupportGrantOutcome } from "../service/support-grant-op.js";
import type { GrantLimitRow, GrantSourcesRow } from "../store/grant-limit-store.js";
import type { GrantRequestRow } from "../store/grant-request-store.js";
import type { ReasonCodeRow } from "../store/reason-code-store.js";
import { decodeGrant } from "./decode-grant.js";
import { grantSourceOf, optionalId, requireCode, requireGrantSource, requireId, requirePageSize, requireText, requireUuid, roleOf } from "./decode.js";
import { encodeBalance, encodeLot } from "./encode.js";
import { callerOf } from "./ledger-handlers.js";
import { idempotencyOf } from "./request-hash.js";

const badLimit = (field: string, message: string) => invalid("INVALID_GRANT_LIMIT", field, message);

/** requireLimitSubject checks that a limit names a role (support) or a key, not both. */
function requireLimitSubject(role: ProtoRole, keyId: string, creditTypeId: string): LimitSubject {
  const creditType = creditTypeId === "" ? "" : requireCode("credit_type_id", creditTypeId);
  if ((role === ProtoRole.UNSPECIFIED) === (keyId === "")) throw badLimit("role", "set either role or key_id");
  if (keyId !== "") return { subjectKind: "key", subject: requireId("key_id", keyId), creditTypeId: creditType };
  if (role !== ProtoRole.SUPPORT) throw badLimit("role", "only ROLE_SUPPORT keys have grant limits");
  return { subjectKind: "role", subject: "support", creditTypeId: creditType };
}

function requirePeriodSeconds(period: Duration | undefined): number {
  const seconds = period === undefined ? 0n : period.seconds;
  if (period === undefined || period.nanos !== 0 || seconds < BigInt(limits.grantLimitPeriodSecondsMin) || seconds > BigInt(limits.grantLimitPeriodSecondsMax)) {
    throw badLimit("period", "must be whole seconds from 1 hour to 365 days");
  }
  return Number(seconds);
}

function decodeLimit(limit: GrantLimit | undefined) {
  if (limit === undefined) throw invalid("MISSING_FIELD", "limit", "is required");
  const subject = requireLimitSubject(limit.role, limit.keyId, limit.creditTypeId);
  if (limit.perCallMax <= 0n || limit.periodMax <= 0n) throw badLimit("per_call_max", "per_call_max and period_max must be positive");
  return { ...subject, perCallMax: limit.perCallMax, periodMax: limit.periodMax, periodSeconds: requirePeriodSeconds(limit.period) };
}

/** requireSupportSources checks a restricted role's sources: at least one, never PURCHASE or RECHARGE. */
function requireSupportSources(role: ProtoRole, sources: GrantSource[]): GrantSourcesRow {
  const bad = (message: string) => invalid("INVALID_GRANT_SOURCES", "grant_sources", message);
  if (role !== ProtoRole.SUPPORT) throw bad("only ROLE_SUPPORT's sources are restricted");
  if (sources.length === 0) throw bad("name at least one source");
  if (sources.includes(GrantSource.PURCHASE) || sources.includes(GrantSource.RECHARGE)) throw bad("PURCHASE and RECHARGE are never support's to grant");
  return { role: "support", sources: [...new Set(sources.map(requireGrantSource))] };
}

const statuses: Record<number, "pending" | "approved" | "rejected" | "expired" | null> = {
  [GrantRequestStatus.UNSPECIFIED]: null,
  [GrantRequestStatus.PENDING]: "pending",
  [GrantRequestStatus.APPROVED]: "approved",
  [GrantRequestStatus.REJECTED]: "rejected",
  [GrantRequestStatus.EXPIRED]: "expired",
};

function requireStatus(value: GrantRequestStatus) {
  const status = statuses[value];
  if (status === undefined) throw invalid("INVALID_ENUM", "status", "must be a known GrantRequestStatus");
  return status;
}

function encodeLimit(row: GrantLimitRow): MessageInitShape<typeof GrantLimitSchema> {
  return {
    role: row.subjectKind === "role" ? roleOf(row.subject as "support") : ProtoRole.UNSPECIFIED,
    keyId: row.subjectKind === "key" ? row.subject : "",
    creditTypeId: row.creditTypeId,
    perCallMax: row.perCallMax,
    periodMax: row.periodMax,
    period: durationFromMs(row.periodSeconds * 1000),
    updateTime: timestampFromDate(row.updatedAt),
  };
}

const encodeSources = (row: GrantSourcesRow) => ({ role: roleOf(row.role as "support"), sources: row.sources.map(grantSourceOf) });

function encodeReasonCode(row: ReasonCodeRow): MessageInitShape<typeof ReasonCodeSchema> {
  return {
    code: row.code,
    label: row.label,
    description: row.description,
    disabled: row.disabledAt !== null,
    createTime: timestampFromDate(row.createdAt),
    updateTime: timestampFromDate(row.updatedAt),
  };
}

const statusOf = (row: GrantRequestRow, now: Date): GrantRequestStatus =>
  row.status === "approved" ? GrantRequestStatus.APPROVED : row.status === "rejected" ? GrantRequestStatus.REJECTED : row.expiresAt <= now ? GrantRequestStatus.EXPIRED : GrantRequestStatus.PENDING;

/** encodeGrantRequest converts a request; its status at `now` (a pending one past its expiry is expired). */
export function encodeGrantRequest(row: GrantRequestRow, now: Date): MessageInitShape<typeof PendingGrantSchema> {
  return {
    grantRequestId: row.grantRequestId,
    status: statusOf(row, now),
    requesterKeyId: row.requesterKeyId,
    customerId: row.customerId,
    creditTypeId: row.creditTypeId,
    amount: row.amount,
    source: grantSourceOf(row.source),
    reasonCode: row.reasonCode,
    note: row.note,
    ticketUrl: row.ticketUrl,
    priority: row.priority,
    lotExpireTime: row.lotExpiresAt === null ? undefined : timestampFromDate(row.lotExpiresAt),
    createTime: timestampFromDate(row.createdAt),
    expireTime: timestampFromDate(row.expiresAt),
    deciderKeyId: row.deciderKeyId ?? "",
    decideTime: row.decidedAt === null ? undefined : timestampFromDate(row.decidedAt),
    decisionReason: row.decisionReason,
    grantId: row.grantId ?? "",
  };
}

function encodeOutcome(outcome: SupportGrantOutcome, now: Date) {
  if (outcome.kind === "pending") return { pending: encodeGrantRequest(outcome.request, now) };
  return { granted: { lot: encodeLot(outcome.granted.lot), balance: encodeBalance(outcome.granted.balance) } };
}

/** supportHandlers implements SupportService. */
export function supportHandlers(deps: Deps): ServiceImpl<typeof SupportService> {
  return {
    async setGrantLimit(req, ctx) {
      const idempotency = idempotencyOf(SetGrantLimitRequestSchema, "SetGrantLimit", req);
      return { limit: encodeLimit(await setGrantLimit(deps, callerOf(ctx), idempotency, decodeLimit(req.limit))) };
    },
    async listGrantLimits(req) {
      return { limits: (await listGrantLimits(deps, optionalId("key_id", req.keyId))).map(encodeLimit) };
    },
    async deleteGrantLimit(req, ctx) {
      const idempotency = idempotencyOf(DeleteGrantLimitRequestSchema, "DeleteGrantLimit", req);
      const subject = requireLimitSubject(req.role, req.keyId, req.creditTypeId);
      return { limit: encodeLimit(await deleteGrantLimit(deps, callerOf(ctx), idempotency, subject)) };
    },
    async setGrantSources(req, ctx) {
      const idempotency = idempotencyOf(SetGrantSourcesRequestSchema, "SetGrantSources", req);
      if (req.grantSources === undefined) throw invalid("MISSING_FIELD", "grant_sources", "is required");
      const input = requireSupportSources(req.grantSources.role, req.grantSources.sources);
      return { grantSources: encodeSources(await setGrantSources(deps, callerOf(ctx), idempotency, input)) };
    },
    async listGrantSources() {
      return { grantSources: (await listGrantSources(deps)).map(encodeSources) };
    },
    async createReasonCode(req, ctx) {
      const idempotency = idempotencyOf(CreateReasonCodeRequestSchema, "CreateReasonCode", req);
      const row = await createReasonCode(deps, callerOf(ctx), idempotency, {
        code: requireCode("code", req.code),
        label: requireText("label", req.label, limits.reasonCodeLabelLengthMax, true),
        description: requireText("description", req.description, limits.noteLengthMax),
      });
      return { reasonCode: encodeReasonCode(row) };
    },
    async updateReasonCode(req, ctx) {
      const idempotency = idempotencyOf(UpdateReasonCodeRequestSchema, "UpdateReasonCode", req);
      const row = await updateReasonCode(deps, callerOf(ctx), idempotency, {
        code: requireCode("code", req.code),
        label: requireText("label", req.label, limits.reasonCodeLabelLengthMax, true),
        description: requireText("description", req.description, limits.noteLengthMax),
        disabled: req.disabled,
      });
      return { reasonCode: encodeReasonCode(row) };
    },
    async listReasonCodes(req) {
      return { reasonCodes: (await listReasonCodes(deps, req.includeDisabled)).map(encodeReasonCode) };
    },
    async requestGrant(req, ctx) {
      if (req.grant === undefined) throw invalid("MISSING_FIELD", "grant", "is required");
      const idempotency = idempotencyOf(RequestGrantRequestSchema, "RequestGrant", { ...req, requestId: req.grant.requestId });
      return encodeOutcome(await requestGrant(deps, callerOf(ctx), idempotency, decodeGrant(req.grant)), deps.now());
    },
    async approveGrantRequest(req, ctx) {
      const idempotency = idempotencyOf(ApproveGrantRequestRequestSchema, "ApproveGrantRequest", req);
      const input = { grantRequestId: requireUuid("grant_request_id", req.grantRequestId), reason: requireText("reason", req.reason, limits.reasonLengthMax) };
      const outcome = await approveGrantRequest(deps, callerOf(ctx), idempotency, input);
      const now = deps.now();
      if (outcome.kind !== "granted" || outcome.request === null) throw new Error("an approval answers its grant");
      return { grantRequest: encodeGrantRequest(outcome.request, now), granted: encodeOutcome(outcome, now).granted };
    },
    async rejectGrantRequest(req, ctx) {
      const idempotency = idempotencyOf(RejectGrantRequestRequestSchema, "RejectGrantRequest", req);
      const input = { grantRequestId: requireUuid("grant_request_id", req.grantRequestId), reason: requireText("reason", req.reason, limits.reasonLengthMax, true) };
      return { grantRequest: encodeGrantRequest(await rejectGrantRequest(deps, callerOf(ctx), idempotency, input), deps.now()) };
    },
    async listGrantRequests(req) {
      const page = await listGrantRequests(deps, {
        status: requireStatus(req.status),
        requesterKeyId: req.requesterKeyId === "" ? null : requireId("requester_key_id", req.requesterKeyId),
        customerId: req.customerId === "" ? null : requireId("customer_id", req.customerId),
        pageSize: requirePageSize(req.pageSize),
        pageToken: requireText("page_token", req.pageToken, limits.pageTokenLengthMax),
      });
      return { grantRequests: page.requests.map((row) => encodeGrantRequest(row, page.now)), nextPageToken: page.nextPageToken };
    },
  };
}
