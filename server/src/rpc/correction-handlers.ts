// CorrectionService handlers: decode, call one service, encode.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  AddDisputeNoteRequestSchema,
  AssignDisputeRequestSchema,
  ChargeKind,
  type ChargeRef,
  type ChargeRefundSchema,
  type CorrectionService,
  type DisputeSchema,
  DisputeStatus,
  OpenDisputeRequestSchema,
  RefundChargeRequestSchema,
  type ResolveDisputeRequest,
  ResolveDisputeRequestSchema,
  VoidGrantRequestSchema,
} from "@burndown/sdk";
import type { ServiceImpl } from "@connectrpc/connect";
import { invalid } from "../errors.js";
import { limits } from "../limits.js";
import { addDisputeNote, assignDispute, type DisputeView, getDispute, listDisputes, openDispute } from "../service/disputes.js";
import { type ChargeName, refundCharge } from "../service/refund-charge.js";
import { type Resolution, resolveDispute } from "../service/resolve-dispute.js";
import { voidGrant } from "../service/void-grant.js";
import type { ChargeKind as DomainChargeKind, ChargeRefundRow } from "../store/charge-refund-store.js";
import type { DisputeStatus as DomainDisputeStatus } from "../store/dispute-store.js";
import type { Deps } from "../service/context.js";
import { requireCode, requireId, requireNonNegative, requirePageSize, requireText, requireUuid } from "./decode.js";
import { encodeEntry } from "./encode.js";
import { ownCustomer } from "./interceptors.js";
import { callerOf } from "./ledger-handlers.js";
import { idempotencyOf } from "./request-hash.js";

const chargeKinds: Record<DomainChargeKind, ChargeKind> = { burn: ChargeKind.BURN, commit: ChargeKind.COMMIT, usage: ChargeKind.USAGE };
const disputeStatuses: Record<DomainDisputeStatus, DisputeStatus> = {
  open: DisputeStatus.OPEN,
  investigating: DisputeStatus.INVESTIGATING,
  resolved_refunded: DisputeStatus.RESOLVED_REFUNDED,
  rejected: DisputeStatus.REJECTED,
};

/** requireEntryId checks a ledger entry id: the decimal int64 an entry carries. */
function requireEntryId(field: string, value: string): string {
  if (value === "") throw invalid("MISSING_FIELD", field, "is required");
  if (!/^[1-9][0-9]{0,18}$/.test(value) || BigInt(value) > limits.amountMax) throw invalid("INVALID_ID", field, "must be an id from a ledger entry (a positive integer)");
  return value;
}

/** requireCharge checks how a charge is named. */
function requireCharge(charge: ChargeRef | undefined): ChargeName {
  const named = charge?.charge;
  if (named === undefined || named.case === undefined) throw invalid("MISSING_FIELD", "charge", "name the charge by entry_id, burn_request_id, reservation_id or usage_id");
  switch (named.case) {
    case "entryId":
      return { kind: "entry", entryId: requireEntryId("charge.entry_id", named.value) };
    case "burnRequestId":
      return { kind: "burn", ref: requireId("charge.burn_request_id", named.value) };
    case "reservationId":
      return { kind: "commit", ref: requireUuid("charge.reservation_id", named.value) };
    case "usageId":
      return { kind: "usage", ref: requireEntryId("charge.usage_id", named.value) };
  }
}

/** requireDisputeStatus converts a status filter; unspecified is any. */
function requireDisputeStatus(value: DisputeStatus): DomainDisputeStatus | null {
  if (value === DisputeStatus.UNSPECIFIED) return null;
  const status = Object.entries(disputeStatuses).find(([, candidate]) => candidate === value)?.[0] as DomainDisputeStatus | undefined;
  if (status === undefined) throw invalid("INVALID_ENUM", "status", "must be a known DisputeStatus");
  return status;
}

/** requireEntryIds checks a dispute's entries: 1 to disputeEntriesMax, no repeats. */
function requireEntryIds(values: string[]): string[] {
  if (values.length === 0) throw invalid("MISSING_FIELD", "entry_ids", "name at least one ledger entry");
  if (values.length > limits.disputeEntriesMax) throw invalid("TOO_MANY_ENTRIES", "entry_ids", `at most ${limits.disputeEntriesMax} entries`);
  return [...new Set(values.map((value) => requireEntryId("entry_ids", value)))];
}

/** requireResolution checks how a dispute ends. */
function requireResolution(req: ResolveDisputeRequest): Resolution {
  const { resolution } = req;
  if (resolution.case === "refund") {
    const amount = requireNonNegative("refund.amount", resolution.value.amount);
    return {
      kind: "refund",
      entryId: requireEntryId("refund.entry_id", resolution.value.entryId),
      amount: amount === 0n ? null : amount,
      reasonCode: requireCode("refund.reason_code", resolution.value.reasonCode),
    };
  }
  if (resolution.case === "reject") return { kind: "reject", reason: requireText("reject.reason", resolution.value.reason, limits.noteLengthMax, true) };
  throw invalid("INVALID_RESOLUTION", "resolution", "resolve with a refund or a reject");
}

/** encodeChargeRefund converts a refund. */
export function encodeChargeRefund(row: ChargeRefundRow): MessageInitShape<typeof ChargeRefundSchema> {
  return {
    refundId: row.refundId,
    customerId: row.customerId,
    creditTypeId: row.creditTypeId,
    chargeKind: chargeKinds[row.chargeKind],
    chargeRef: row.chargeRef,
    amount: row.amount,
    charged: row.charged,
    refundedTotal: row.refundedTotal,
    reasonCode: row.reasonCode,
    note: row.note,
    actor: row.actor,
    createTime: timestampFromDate(row.createdAt),
    disputeId: row.disputeId ?? "",
  };
}

/** encodeDispute converts a dispute with its notes and refunds. */
export function encodeDispute(view: DisputeView): MessageInitShape<typeof DisputeSchema> {
  const { dispute } = view;
  const time = (at: Date | null) => (at === null ? undefined : timestampFromDate(at));
  return {
    disputeId: dispute.disputeId,
    customerId: dispute.customerId,
    status: disputeStatuses[dispute.status],
    entryIds: dispute.entryIds,
    description: dispute.description,
    openedBy: dispute.openedBy,
    owner: dispute.owner ?? "",
    openTime: timestampFromDate(dispute.openedAt),
    firstResponseDueTime: timestampFromDate(dispute.firstResponseDueAt),
    firstResponseTime: time(dispute.firstResponseAt),
    resolutionDueTime: timestampFromDate(dispute.resolutionDueAt),
    resolveTime: time(dispute.resolvedAt),
    overdue: view.overdue,
    notes: view.notes.map((note) => ({ author: note.author, text: note.text, createTime: timestampFromDate(note.createdAt) })),
    refunds: view.refunds.map(encodeChargeRefund),
    rejectReason: dispute.rejectReason,
    resolvedBy: dispute.resolvedBy ?? "",
  };
}

/** correctionHandlers implements CorrectionService. */
export function correctionHandlers(deps: Deps): ServiceImpl<typeof CorrectionService> {
  return {
    async voidGrant(req, ctx) {
      const idempotency = idempotencyOf(VoidGrantRequestSchema, "VoidGrant", req);
      const amount = requireNonNegative("amount", req.amount);
      const result = await voidGrant(deps, callerOf(ctx), idempotency, {
        customerId: requireId("customer_id", req.customerId),
        grantId: requireUuid("grant_id", req.grantId),
        amount: amount === 0n ? null : amount,
        reasonCode: requireCode("reason_code", req.reasonCode),
        note: requireText("note", req.note, limits.noteLengthMax),
      });
      const { grantId, voided, held, pending, remaining } = result;
      return { grantId, voided, held, pending, remaining, entries: result.entries.map(encodeEntry) };
    },
    async refundCharge(req, ctx) {
      const idempotency = idempotencyOf(RefundChargeRequestSchema, "RefundCharge", req);
      const amount = requireNonNegative("amount", req.amount);
      const result = await refundCharge(deps, callerOf(ctx), idempotency, {
        customerId: requireId("customer_id", req.customerId),
        charge: requireCharge(req.charge),
        amount: amount === 0n ? null : amount,
        reasonCode: requireCode("reason_code", req.reasonCode),
        note: requireText("note", req.note, limits.noteLengthMax),
      });
      return { refund: encodeChargeRefund(result.refund), entries: result.entries.map(encodeEntry) };
    },
    async openDispute(req, ctx) {
      const caller = callerOf(ctx);
      const customerId = ownCustomer(caller, requireId("customer_id", req.customerId));
      const idempotency = idempotencyOf(OpenDisputeRequestSchema, "OpenDispute", req);
      const view = await openDispute(deps, caller, idempotency, {
        customerId,
        entryIds: requireEntryIds(req.entryIds),
        description: requireText("description", req.description, limits.noteLengthMax, true),
      });
      return { dispute: encodeDispute(view) };
    },
    async getDispute(req, ctx) {
      return { dispute: encodeDispute(await getDispute(deps, callerOf(ctx), requireUuid("dispute_id", req.disputeId))) };
    },
    async listDisputes(req, ctx) {
      const page = await listDisputes(deps, callerOf(ctx), {
        status: requireDisputeStatus(req.status),
        owner: requireText("owner", req.owner, limits.idLengthMax),
        // A customer key lists its own customer's; naming another is as if it did not exist.
        customerId: req.customerId === "" ? "" : ownCustomer(callerOf(ctx), requireId("customer_id", req.customerId)),
        overdueOnly: req.overdueOnly,
        pageSize: requirePageSize(req.pageSize),
        pageToken: requireText("page_token", req.pageToken, limits.pageTokenLengthMax),
      });
      return { disputes: page.disputes.map(encodeDispute), nextPageToken: page.nextPageToken };
    },
    async assignDispute(req, ctx) {
      const caller = callerOf(ctx);
      const idempotency = idempotencyOf(AssignDisputeRequestSchema, "AssignDispute", req);
      const owner = req.owner === "" ? caller.keyId : requireText("owner", req.owner, limits.idLengthMax, true);
      return { dispute: encodeDispute(await assignDispute(deps, caller, idempotency, { disputeId: requireUuid("dispute_id", req.disputeId), owner })) };
    },
    async addDisputeNote(req, ctx) {
      const idempotency = idempotencyOf(AddDisputeNoteRequestSchema, "AddDisputeNote", req);
      const text = requireText("text", req.text, limits.noteLengthMax, true);
      return { dispute: encodeDispute(await addDisputeNote(deps, callerOf(ctx), idempotency, { disputeId: requireUuid("dispute_id", req.disputeId), text })) };
    },
    async resolveDispute(req, ctx) {
      const idempotency = idempotencyOf(ResolveDisputeRequestSchema, "ResolveDispute", req);
      const disputeId = requireUuid("dispute_id", req.disputeId);
      return { dispute: encodeDispute(await resolveDispute(deps, callerOf(ctx), idempotency, { disputeId, resolution: requireResolution(req) })) };
    },
  };
}
