// Grant: add credits to a customer as one lot, creating the customer on first use. One
// op of the write path (write-op.ts): the lot, its grant entry, the balance and the audit
// record are written with the rest of its group, in its transaction.
import { randomUUID } from "node:crypto";
import { invalid, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { planGrant } from "../ledger/plan.js";
import { type BalanceView, type LotView, totalsView } from "./balance-view.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { precheckSupportGrant, supportGrantOp } from "./support-grant-op.js";
import { loadedState, lotOf, type WriteOp } from "./write-op.js";

/** GrantInput is a validated Grant request. */
export interface GrantInput {
  customerId: string;
  creditTypeId: string;
  amount: bigint;
  source: string;
  reasonCode: string;
  note: string;
  priority: number;
  effectiveAt: Date | null;
  expiresAt: Date | null;
  costBasisMicros: bigint;
  /** a link to the support ticket behind it ("" for none), kept in its audit record. */
  ticketUrl: string;
}

/** GrantResult is the new lot and the balance after it. */
export interface GrantResult {
  lot: LotView;
  balance: BalanceView;
}

/** grantOp is one Grant as the write path runs it. */
export function grantOp(caller: Caller, idempotency: Idempotency, input: GrantInput): WriteOp<GrantResult> {
  const key = { customerId: input.customerId, creditTypeId: input.creditTypeId };
  return {
    lane: { customerId: input.customerId },
    weight: 1,
    claim: { caller, idempotency },
    request: (reads) => void reads.creditTypeIds.push(input.creditTypeId),
    prepare: (inputs) => {
      if (!inputs.creditTypes.has(input.creditTypeId)) throw notFound("CREDIT_TYPE_NOT_FOUND", "credit type id", input.creditTypeId);
      return { keys: [key], customerIds: [input.customerId], createCustomers: [input.customerId], createBalances: [key] };
    },
    plan: (ctx) => {
      const before = loadedState(ctx.balance(key), key);
      const effectiveAt = input.effectiveAt ?? ctx.now;
      if (input.expiresAt !== null && (input.expiresAt <= effectiveAt || input.expiresAt <= ctx.now)) {
        throw invalid("INVALID_EXPIRE_TIME", "expire_time", "must be in the future and after the effective time");
      }
      const grantId = randomUUID();
      const lot = lotOf({ grantId, amount: input.amount, priority: input.priority, effectiveAt, expiresAt: input.expiresAt }, ctx.nextLotSeq());
      const nowMs = ctx.now.getTime();
      const planned = planGrant({ ...before, lots: [...before.lots, lot] }, grantId, nowMs);
      ctx.draft.newLot({
        ...input, ...key, grantId, effectiveAt, remaining: input.amount, held: 0n, requestId: idempotency.requestId, actor: caller.keyId,
        activationDue: effectiveAt > ctx.now,
      });
      ctx.draft.change(key, planned, { reservationId: null, requestId: idempotency.requestId, actor: caller.keyId, reasonCode: input.reasonCode, effectiveAt: ctx.now });
      ctx.draft.audit(auditOf(caller, input, grantId, effectiveAt));
      const after = planned.state.lots.find((candidate) => candidate.grantId === grantId);
      assert(after !== undefined, "the new lot is in the plan");
      const lotView: LotView = {
        grantId,
        source: input.source,
        amount: input.amount,
        remaining: input.expiresAt !== null && input.expiresAt.getTime() <= nowMs ? after.held : after.remaining,
        held: after.held,
        priority: input.priority,
        effectiveAt,
        expiresAt: input.expiresAt,
        createdAt: ctx.recordedAt,
        reasonCode: input.reasonCode,
        costBasisMicros: input.costBasisMicros,
        voidPending: 0n,
        voidedAt: null,
      };
      return { value: { lot: lotView, balance: totalsView(input.creditTypeId, planned.state, nowMs) } };
    },
  };
}

function auditOf(caller: Caller, input: GrantInput, grantId: string, effectiveAt: Date) {
  return {
    actor: caller.keyId,
    requestId: caller.requestId,
    action: "grant",
    target: `customer:${input.customerId}`,
    reason: input.note === "" ? input.reasonCode : `${input.reasonCode}: ${input.note}`,
    details: {
      old: null,
      new: {
        grant_id: grantId,
        credit_type_id: input.creditTypeId,
        amount: input.amount.toString(),
        source: input.source,
        priority: input.priority,
        effective_time: effectiveAt.toISOString(),
        expire_time: input.expiresAt?.toISOString() ?? null,
        cost_basis_micros: input.costBasisMicros.toString(),
      },
      reason_code: input.reasonCode,
      ...(input.ticketUrl === "" ? {} : { ticket_url: input.ticketUrl }),
    },
  };
}

/**
 * grant adds a lot. A support key's grant runs under the support rules
 * (support-grant-op.ts): an enabled reason code, a source its role may use, and its limit
 * per call and per period; above the limit it is refused, and RequestGrant files it for
 * approval instead. Service and admin keys may use any code and source, with no limit.
 */
export async function grant(deps: Deps, caller: Caller, idempotency: Idempotency, input: GrantInput): Promise<GrantResult> {
  if (caller.role !== "support") return deps.writes.submit(grantOp(caller, idempotency, input));
  await precheckSupportGrant(deps, caller, idempotency, input, { kind: "grant" });
  const outcome = await deps.writes.submit(supportGrantOp(caller, idempotency, input, { kind: "grant" }));
  // A replay of a grant made before support rules existed answers its result as stored.
  if ("lot" in outcome) return outcome as unknown as GrantResult;
  assert(outcome.kind === "granted", "a plain grant is granted or refused, never filed");
  return outcome.granted;
}
