// RefundCharge: give back all or part of what a charge (a Burn, a committed reservation or
// a usage event) burned, last burned first (ledger/split-charge-refund.ts says where each
// part goes), audited. One op of the write path that runs alone: under the balance lock it
// reads the charge's earlier refunds, so that concurrent refunds of one charge are counted
// one after another and never give back more than it burned; the refund record commits
// with its entries.
import { randomUUID } from "node:crypto";
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { planGrant, planRefund, planUpkeep } from "../ledger/plan.js";
import { type BurnPart, refundableOf, splitChargeRefund } from "../ledger/split-charge-refund.js";
import { limits } from "../limits.js";
import type { BalanceKey } from "../store/balance-store.js";
import type { EntryWrite } from "../store/balance-writer.js";
import {
  type Charge,
  type ChargeRefundRow,
  insertChargeRefund,
  type RefundPart,
  selectBurnEntry,
  selectChargeBurns,
  selectChargeRefunds,
  selectCostBases,
} from "../store/charge-refund-store.js";
import { selectCorrection, selectLotsByIds } from "../store/correction-store.js";
import { mapDriverErrors, type Tx } from "../store/database.js";
import type { EntryRow } from "../store/entry-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { loadedState, lotOf, type PlanContext, type WriteOp } from "./write-op.js";

/** ChargeName names a charge: by what caused it, or by one of its burn entries. */
export type ChargeName = Omit<Charge, "customerId"> | { kind: "entry"; entryId: string };

/** RefundChargeInput is a validated RefundCharge request; amount null gives back everything not refunded yet. */
export interface RefundChargeInput {
  customerId: string;
  charge: ChargeName;
  amount: bigint | null;
  reasonCode: string;
  note: string;
  /** the dispute this refund resolves, and what to write with it in the refund's transaction. */
  dispute?: { disputeId: string; store: (tx: Tx, refund: ChargeRefundRow) => Promise<void> };
}

/** RefundChargeResult is the refund and its entries (refunds, and grants of new lots). */
export interface RefundChargeResult {
  refund: ChargeRefundRow;
  entries: EntryRow[];
}

/**
 * refundCharge gives back credits of a charge. NotFound CHARGE_NOT_FOUND; FailedPrecondition
 * NOTHING_TO_REFUND, REFUND_EXCEEDS_CHARGE. Admin and support keys.
 */
export async function refundCharge(deps: Deps, caller: Caller, idempotency: Idempotency, input: RefundChargeInput): Promise<RefundChargeResult> {
  assert(input.reasonCode.length > 0, "refunds have a reason");
  if (caller.role !== "admin" && caller.role !== "support") {
    throw new LedgerError("forbidden", "ROLE_NOT_ALLOWED", `the ${caller.role} role may not refund charges`, { role: caller.role, method: "RefundCharge" });
  }
  const charge = await mapDriverErrors(() => resolveCharge(deps, input.customerId, input.charge));
  // A charge's burns are immutable entries: they may be read before the lock.
  const burns = await mapDriverErrors(() => selectChargeBurns(deps.pool, charge, limits.chargeBurnsMax));
  if (burns.length === 0) throw notFound("CHARGE_NOT_FOUND", "charge", `${charge.kind}:${charge.ref}`);
  assert(burns.every((burn) => burn.creditTypeId === burns[0].creditTypeId), "a charge burns one credit type");
  return deps.writes.submit(refundOp(caller, idempotency, input, charge, burns));
}

/** resolveCharge turns a burn entry into the charge it belongs to. */
async function resolveCharge(deps: Deps, customerId: string, name: ChargeName): Promise<Charge> {
  if (name.kind !== "entry") return { customerId, ...name };
  const entry = await selectBurnEntry(deps.pool, customerId, name.entryId);
  if (entry === null) throw notFound("CHARGE_NOT_FOUND", "entry id", name.entryId);
  if (entry.usageId !== null) return { customerId, kind: "usage", ref: entry.usageId };
  if (entry.reservationId !== null) return { customerId, kind: "commit", ref: entry.reservationId };
  assert(entry.requestId !== null, "a direct burn has a request id");
  return { customerId, kind: "burn", ref: entry.requestId };
}

interface Loaded {
  refundedFrom: Map<string | null, bigint>;
  /** what the charge's refunds gave back in all, as recorded; null for a corrected usage event. */
  refundedBefore: bigint | null;
  costBasisOf: Map<string, bigint>;
}

function refundOp(caller: Caller, idempotency: Idempotency, input: RefundChargeInput, charge: Charge, burns: EntryRow[]): WriteOp<RefundChargeResult> {
  const key = { customerId: charge.customerId, creditTypeId: burns[0].creditTypeId };
  const parts: BurnPart[] = burns.map((burn) => ({ grantId: burn.grantId, amount: burn.amount }));
  const grantIds = [...new Set(burns.flatMap((burn) => (burn.grantId === null ? [] : [burn.grantId])))];
  let loaded: Loaded | null = null;
  let record: Omit<ChargeRefundRow, "createdAt"> | null = null;
  return {
    lane: { customerId: charge.customerId },
    weight: 1,
    claim: { caller, idempotency },
    request: () => {},
    prepare: () => ({ keys: [key], customerIds: [key.customerId], pinnedGrantIds: grantIds }),
    load: async (tx, view) => {
      record = null;
      const refunds = await selectChargeRefunds(tx, charge);
      const refundedFrom = new Map<string | null, bigint>();
      const corrected = charge.kind === "usage" && (await selectCorrection(tx, charge.ref)) !== null;
      // A corrected usage event was given back whole (AdminService.CorrectUsageEvent).
      const given = corrected ? parts.map((part) => ({ fromGrantId: part.grantId, amount: part.amount })) : refunds.flatMap((refund) => refund.parts);
      for (const part of given) refundedFrom.set(part.fromGrantId, (refundedFrom.get(part.fromGrantId) ?? 0n) + part.amount);
      view.addLots(key, await selectLotsByIds(tx, key.customerId, grantIds));
      loaded = { refundedFrom, refundedBefore: corrected ? null : (refunds.at(-1)?.refundedTotal ?? 0n), costBasisOf: await selectCostBases(tx, key.customerId, grantIds) };
    },
    plan: (ctx) => {
      assert(loaded !== null, "load runs before plan");
      const charged = parts.reduce((sum, part) => sum + part.amount, 0n);
      const refundable = refundableOf(parts, loaded.refundedFrom);
      assert(loaded.refundedBefore === null || charged - refundable === loaded.refundedBefore, "the refunds' parts add up to their recorded total");
      const details = { charge_kind: charge.kind, charge_ref: charge.ref, charged: charged.toString(), refundable: refundable.toString() };
      if (refundable === 0n) throw new LedgerError("rejected", "NOTHING_TO_REFUND", `${charge.kind} ${charge.ref} was refunded in full already`, details);
      const amount = input.amount ?? refundable;
      if (amount > refundable) {
        throw new LedgerError("rejected", "REFUND_EXCEEDS_CHARGE", `${charge.kind} ${charge.ref} has ${refundable} credits left to refund`, details);
      }
      const { entries, refundParts } = writeRefund(ctx, { caller, idempotency, input, charge, key, parts, amount, loaded });
      const refundedTotal = charged - refundable + amount;
      record = {
        refundId: randomUUID(), ...key, chargeKind: charge.kind, chargeRef: charge.ref, amount, charged, refundedTotal, parts: refundParts,
        reasonCode: input.reasonCode, note: input.note, actor: caller.keyId, requestId: idempotency.requestId, disputeId: input.dispute?.disputeId ?? null,
      };
      ctx.draft.audit(auditOf(caller, record));
      const refund: ChargeRefundRow = { ...record, createdAt: ctx.recordedAt };
      return { finish: (written) => ({ refund, entries: entries.map(written.entryRowOf) }) };
    },
    store: async (tx) => {
      assert(record !== null, "store runs only after a plan that succeeded");
      const row = await insertChargeRefund(tx, record);
      assert(row.refundedTotal <= row.charged, "refunds never exceed the charge");
      if (input.dispute !== undefined) await input.dispute.store(tx, row);
    },
  };
}

/** writeRefund plans the refund entries, then one new lot per lot (or overdraft) whose part cannot go back where it came from. */
function writeRefund(
  ctx: PlanContext,
  refund: { caller: Caller; idempotency: Idempotency; input: RefundChargeInput; charge: Charge; key: BalanceKey; parts: BurnPart[]; amount: bigint; loaded: Loaded },
): { entries: EntryWrite[]; refundParts: RefundPart[] } {
  const { caller, idempotency, input, charge, key, parts, amount, loaded } = refund;
  const nowMs = ctx.now.getTime();
  const state = loadedState(ctx.balance(key), key);
  const split = splitChargeRefund(parts, loaded.refundedFrom, amount, planUpkeep(state, nowMs).state, nowMs);
  const cause = { reservationId: null, requestId: idempotency.requestId, actor: caller.keyId, reasonCode: input.reasonCode, effectiveAt: ctx.now };
  const link = () => (charge.kind === "usage" ? { usageId: charge.ref } : {});
  const planned = planRefund(state, split.refunds, nowMs);
  const entries = ctx.draft.change(key, planned, cause, (entry) => (entry.kind === "refund" ? link() : {})).filter((entry) => entry.kind === "refund");
  const refundParts: RefundPart[] = split.refunds.map((refund) => ({ fromGrantId: refund.grantId, toGrantId: refund.grantId, amount: refund.amount }));
  let after = planned.state;
  for (const part of split.newLots) {
    const grantId = randomUUID();
    const lot = lotOf({ grantId, amount: part.amount, priority: 0, effectiveAt: ctx.now, expiresAt: null }, ctx.nextLotSeq());
    const granted = planGrant({ ...after, lots: [...after.lots, lot] }, grantId, nowMs);
    ctx.draft.newLot({
      ...key, grantId, source: "adjustment", amount: part.amount, remaining: part.amount, held: 0n, priority: 0, effectiveAt: ctx.now, expiresAt: null,
      costBasisMicros: part.fromGrantId === null ? 0n : (loaded.costBasisOf.get(part.fromGrantId) ?? 0n), reasonCode: "refund",
      note: `refund of ${charge.kind} ${charge.ref}`, requestId: idempotency.requestId, actor: caller.keyId, activationDue: false,
    });
    entries.push(...ctx.draft.change(key, granted, { ...cause, reasonCode: "refund" }).filter((entry) => entry.kind === "grant"));
    refundParts.push({ fromGrantId: part.fromGrantId, toGrantId: grantId, amount: part.amount });
    after = granted.state;
  }
  assert(refundParts.reduce((sum, part) => sum + part.amount, 0n) === amount, "a refund gives back exactly its amount");
  return { entries, refundParts };
}

function auditOf(caller: Caller, record: Omit<ChargeRefundRow, "createdAt">) {
  return {
    actor: caller.keyId,
    requestId: caller.requestId,
    action: "refund_charge",
    target: `customer:${record.customerId}`,
    reason: record.note === "" ? record.reasonCode : `${record.reasonCode}: ${record.note}`,
    details: {
      old: { refunded_total: (record.refundedTotal - record.amount).toString() },
      new: { refunded_total: record.refundedTotal.toString(), amount: record.amount.toString() },
      refund_id: record.refundId,
      charge_kind: record.chargeKind,
      charge_ref: record.chargeRef,
      charged: record.charged.toString(),
      dispute_id: record.disputeId,
      parts: record.parts.map((part) => ({ from_grant_id: part.fromGrantId, to_grant_id: part.toGrantId, amount: part.amount.toString() })),
    },
  };
}
