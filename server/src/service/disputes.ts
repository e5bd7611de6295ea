// Disputes: open (a customer for itself, or staff for a customer), read, list the queue,
// assign and note. Each mutation is idempotent (runIdempotent), audited, and locks the
// dispute's row. Resolution is resolve-dispute.ts. Service levels: a first response and a
// resolution are due within the deployment's durations (deps.disputeSla) of the opening.
import { randomUUID } from "node:crypto";
import { invalid, LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { type ChargeRefundRow, selectRefundsOfDispute } from "../store/charge-refund-store.js";
import { mapDriverErrors, type Tx } from "../store/database.js";
import {
  countCustomerEntries,
  type DisputeNoteRow,
  type DisputeRow,
  type DisputeStatus,
  insertDispute,
  insertDisputeNote,
  selectDispute,
  selectDisputeNotes,
  selectDisputes,
  updateDispute,
} from "../store/dispute-store.js";
import type { Caller, Deps, DisputeSla, Idempotency } from "./context.js";
import { runIdempotent } from "./run-idempotent.js";

/** DisputeView is a dispute as answered: its row, notes, refunds and whether it is overdue. */
export interface DisputeView {
  dispute: DisputeRow;
  notes: DisputeNoteRow[];
  refunds: ChargeRefundRow[];
  overdue: boolean;
}

/** slaOf is the deployment's dispute service levels, or the defaults. */
export function slaOf(deps: Deps): DisputeSla {
  return deps.disputeSla ?? { firstResponseMs: limits.disputeFirstResponseMsDefault, resolutionMs: limits.disputeResolutionMsDefault };
}

/** isOverdue says whether a due time has passed with what it is due for still not done. */
export function isOverdue(dispute: DisputeRow, now: Date): boolean {
  return (dispute.firstResponseAt === null && dispute.firstResponseDueAt < now) || (dispute.resolvedAt === null && dispute.resolutionDueAt < now);
}

/** disputeNotFound is the answer for a dispute that does not exist or is not the caller's to see. */
export function disputeNotFound(disputeId: string): LedgerError {
  return notFound("DISPUTE_NOT_FOUND", "dispute id", disputeId);
}

/** openDispute records a customer's claim about its entries. NotFound ENTRY_NOT_FOUND for an entry not the customer's. */
export async function openDispute(deps: Deps, caller: Caller, idempotency: Idempotency, input: { customerId: string; entryIds: string[]; description: string }): Promise<DisputeView> {
  assert(input.entryIds.length > 0 && input.entryIds.length <= limits.disputeEntriesMax, "a dispute's entries are decoded");
  assert(caller.role !== "customer" || caller.customerId === input.customerId, "a customer key opens disputes for itself only");
  const found = await mapDriverErrors(() => countCustomerEntries(deps.pool, input.customerId, input.entryIds));
  if (found !== input.entryIds.length) throw new LedgerError("not_found", "ENTRY_NOT_FOUND", `an entry of ${input.entryIds.join(", ")} is not a ledger entry of this customer`, { customer_id: input.customerId });
  const sla = slaOf(deps);
  const openedAt = deps.now();
  const dispute = await runIdempotent(deps, caller, idempotency, async (tx) => {
    const row = await insertDispute(tx, {
      disputeId: randomUUID(), customerId: input.customerId, status: "open", entryIds: input.entryIds, description: input.description, openedBy: caller.keyId,
      openedAt, firstResponseDueAt: new Date(openedAt.getTime() + sla.firstResponseMs), resolutionDueAt: new Date(openedAt.getTime() + sla.resolutionMs),
    });
    await audit(tx, caller, row, "open_dispute", { old: null, new: { status: row.status, entry_ids: row.entryIds } }, input.description);
    return row;
  });
  return { dispute, notes: [], refunds: [], overdue: isOverdue(dispute, deps.now()) };
}

/** getDispute reads a dispute with its notes and refunds; a customer key its own customer's only. */
export async function getDispute(deps: Deps, caller: Caller, disputeId: string): Promise<DisputeView> {
  const dispute = await mapDriverErrors(() => selectDispute(deps.pool, disputeId, "none"));
  if (dispute === null || (caller.role === "customer" && dispute.customerId !== caller.customerId)) throw disputeNotFound(disputeId);
  const [notes, refunds] = await mapDriverErrors(() => Promise.all([selectDisputeNotes(deps.pool, disputeId), selectRefundsOfDispute(deps.pool, dispute.customerId, disputeId)]));
  return { dispute, notes, refunds, overdue: isOverdue(dispute, deps.now()) };
}

/** DisputeQuery is a validated ListDisputes request. */
export interface DisputeQuery {
  status: DisputeStatus | null;
  owner: string;
  customerId: string;
  overdueOnly: boolean;
  pageSize: number;
  pageToken: string;
}

function decodeToken(pageToken: string): bigint | null {
  if (pageToken === "") return null;
  const [version, seq] = Buffer.from(pageToken, "base64url").toString("utf8").split(":");
  if (version !== "dispute1" || !/^[0-9]{1,18}$/.test(seq ?? "")) throw invalid("INVALID_PAGE_TOKEN", "page_token", "not a token from a previous page of disputes");
  return BigInt(seq);
}

/** listDisputes reads a page of the queue, oldest first; a customer key its own customer's only. */
export async function listDisputes(deps: Deps, caller: Caller, query: DisputeQuery): Promise<{ disputes: DisputeView[]; nextPageToken: string }> {
  assert(query.pageSize > 0 && query.pageSize <= limits.pageSizeMax, "page sizes are decoded");
  const customerId = caller.role === "customer" ? caller.customerId! : query.customerId;
  const now = deps.now();
  const rows = await mapDriverErrors(() =>
    selectDisputes(deps.pool, { status: query.status, owner: query.owner, customerId, overdueAt: query.overdueOnly ? now : null, afterSeq: decodeToken(query.pageToken), limit: query.pageSize + 1 }),
  );
  const page = rows.slice(0, query.pageSize);
  const nextPageToken = rows.length > query.pageSize ? Buffer.from(`dispute1:${page.at(-1)!.seq}`, "utf8").toString("base64url") : "";
  return { disputes: page.map((dispute) => ({ dispute, notes: [], refunds: [], overdue: isOverdue(dispute, now) })), nextPageToken };
}

/** lockOpenDispute locks a dispute that is not resolved yet. NotFound DISPUTE_NOT_FOUND; FailedPrecondition DISPUTE_CLOSED. */
export async function lockOpenDispute(tx: Tx, disputeId: string): Promise<DisputeRow> {
  const dispute = await selectDispute(tx, disputeId, "update");
  if (dispute === null) throw disputeNotFound(disputeId);
  if (dispute.resolvedAt !== null) throw disputeClosed(dispute);
  return dispute;
}

/** disputeClosed is the refusal to change a resolved dispute. */
export function disputeClosed(dispute: DisputeRow): LedgerError {
  return new LedgerError("rejected", "DISPUTE_CLOSED", `dispute ${dispute.disputeId} was resolved already (${dispute.status})`, { dispute_id: dispute.disputeId, status: dispute.status });
}

/** assignDispute gives a dispute an owner; an open one starts its investigation. A first response. */
export async function assignDispute(deps: Deps, caller: Caller, idempotency: Idempotency, input: { disputeId: string; owner: string }): Promise<DisputeView> {
  assert(input.owner.length > 0, "an owner is decoded");
  await runIdempotent(deps, caller, idempotency, async (tx) => {
    const before = await lockOpenDispute(tx, input.disputeId);
    const after = await updateDispute(tx, input.disputeId, { ...unresolved(before), status: "investigating", owner: input.owner, respondedAt: deps.now() });
    assert(after !== null, "a locked open dispute updates");
    await audit(tx, caller, after, "assign_dispute", { old: { owner: before.owner, status: before.status }, new: { owner: after.owner, status: after.status } }, `assigned to ${input.owner}`);
    return after.disputeId;
  });
  return getDispute(deps, caller, input.disputeId);
}

/** addDisputeNote appends a staff note; a first response. */
export async function addDisputeNote(deps: Deps, caller: Caller, idempotency: Idempotency, input: { disputeId: string; text: string }): Promise<DisputeView> {
  assert(input.text.length > 0, "a note is decoded");
  await runIdempotent(deps, caller, idempotency, async (tx) => {
    const before = await lockOpenDispute(tx, input.disputeId);
    await insertDisputeNote(tx, input.disputeId, { author: caller.keyId, text: input.text });
    const after = await updateDispute(tx, input.disputeId, { ...unresolved(before), respondedAt: deps.now() });
    assert(after !== null, "a locked open dispute updates");
    await audit(tx, caller, after, "add_dispute_note", { old: null, new: { note: input.text } }, "note");
    return after.disputeId;
  });
  return getDispute(deps, caller, input.disputeId);
}

/** unresolved is a dispute's current state as an update that resolves nothing. */
export function unresolved(dispute: DisputeRow): { status: DisputeStatus; owner: string | null; resolvedAt: null; resolvedBy: null; rejectReason: string } {
  assert(dispute.resolvedAt === null, "only an unresolved dispute changes");
  return { status: dispute.status, owner: dispute.owner, resolvedAt: null, resolvedBy: null, rejectReason: "" };
}

/** audit records a dispute's change. */
export async function audit(tx: Tx, caller: Caller, dispute: DisputeRow, action: string, change: { old: unknown; new: unknown }, reason: string): Promise<void> {
  await insertAuditRecord(tx, {
    actor: caller.keyId,
    requestId: caller.requestId,
    action,
    target: `dispute:${dispute.disputeId}`,
    reason,
    details: { ...change, customer_id: dispute.customerId },
  });
}
