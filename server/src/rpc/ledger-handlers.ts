// LedgerService handlers: decode, call one service function, encode. No business rules.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  BurnRequestSchema,
  type CommitRequest,
  CommitRequestSchema,
  type CommitResponseSchema,
  GrantRequestSchema,
  type LedgerService,
  ReleaseRequestSchema,
  type ReserveRequest,
  ReserveRequestSchema,
  type ReserveResponseSchema,
} from "@burndown/sdk";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { burn } from "../service/burn.js";
import type { Caller, Deps } from "../service/context.js";
import { getBalance } from "../service/get-balance.js";
import { grant } from "../service/grant.js";
import { listLedgerEntries } from "../service/list-ledger-entries.js";
import { commit, release } from "../service/resolve-reservation.js";
import { reserve } from "../service/reserve.js";
import {
  optionalCode,
  optionalTime,
  requireCode,
  requireCost,
  requireEntryKinds,
  requireGrantSource,
  requireId,
  requireNonNegative,
  requirePageSize,
  requirePositive,
  requirePriority,
  requireText,
  requireUuid,
  ttlMs,
} from "./decode.js";
import { encodeBalance, encodeEntry, encodeLot, encodeReservation } from "./encode.js";
import { callerKey, ownCustomer } from "./interceptors.js";
import { idempotencyOf } from "./request-hash.js";

/** callerOf reads the caller the auth interceptor put in the context. */
export function callerOf(ctx: HandlerContext): Caller {
  const caller = ctx.values.get(callerKey);
  assert(caller !== undefined, "the auth interceptor ran");
  return caller;
}

/** reserveOne is Reserve for one request: the unary method and each item of ReserveBatch. */
export async function reserveOne(deps: Deps, caller: Caller, req: ReserveRequest): Promise<MessageInitShape<typeof ReserveResponseSchema>> {
  const idempotency = idempotencyOf(ReserveRequestSchema, "Reserve", req);
  const result = await reserve(deps, caller, idempotency, {
    customerId: requireId("customer_id", req.customerId),
    cost: requireCost(req.cost),
    ttlMs: ttlMs("ttl", req.ttl),
  });
  return { reservation: encodeReservation(result.reservation), balance: encodeBalance(result.balance) };
}

/** commitOne is Commit for one request: the unary method and each item of CommitBatch. */
export async function commitOne(deps: Deps, caller: Caller, req: CommitRequest): Promise<MessageInitShape<typeof CommitResponseSchema>> {
  const idempotency = idempotencyOf(CommitRequestSchema, "Commit", req);
  const result = await commit(deps, caller, idempotency, {
    reservationId: requireUuid("reservation_id", req.reservationId),
    amount: requireNonNegative("amount", req.amount),
  });
  return { reservation: encodeReservation(result.reservation), balance: encodeBalance(result.balance) };
}

/** ledgerHandlers implements LedgerService's balance methods. */
export function ledgerHandlers(deps: Deps): Partial<ServiceImpl<typeof LedgerService>> {
  return {
    async grant(req, ctx) {
      const idempotency = idempotencyOf(GrantRequestSchema, "Grant", req);
      const result = await grant(deps, callerOf(ctx), idempotency, {
        customerId: requireId("customer_id", req.customerId),
        creditTypeId: requireCode("credit_type_id", req.creditTypeId),
        amount: requirePositive("amount", req.amount),
        source: requireGrantSource(req.source),
        reasonCode: requireCode("reason_code", req.reasonCode),
        note: requireText("note", req.note, limits.noteLengthMax),
        priority: requirePriority(req.priority),
        effectiveAt: optionalTime("effective_time", req.effectiveTime),
        expiresAt: optionalTime("expire_time", req.expireTime),
        costBasisMicros: requireNonNegative("cost_basis_micros", req.costBasisMicros),
      });
      return { lot: encodeLot(result.lot), balance: encodeBalance(result.balance) };
    },
    reserve: (req, ctx) => reserveOne(deps, callerOf(ctx), req),
    commit: (req, ctx) => commitOne(deps, callerOf(ctx), req),
    async release(req, ctx) {
      const idempotency = idempotencyOf(ReleaseRequestSchema, "Release", req);
      const result = await release(deps, callerOf(ctx), idempotency, { reservationId: requireUuid("reservation_id", req.reservationId) });
      return { reservation: encodeReservation(result.reservation), balance: encodeBalance(result.balance) };
    },
    async burn(req, ctx) {
      const idempotency = idempotencyOf(BurnRequestSchema, "Burn", req);
      const result = await burn(deps, callerOf(ctx), idempotency, { customerId: requireId("customer_id", req.customerId), cost: requireCost(req.cost) });
      return { creditTypeId: result.creditTypeId, amount: result.amount, entries: result.entries.map(encodeEntry), balance: encodeBalance(result.balance) };
    },
    async getBalance(req, ctx) {
      const customerId = ownCustomer(callerOf(ctx), requireId("customer_id", req.customerId));
      const balances = await getBalance(deps, { customerId, creditTypeId: optionalCode("credit_type_id", req.creditTypeId) });
      return { balances: balances.map(encodeBalance) };
    },
    async listLedgerEntries(req, ctx) {
      const page = await listLedgerEntries(deps, {
        customerId: ownCustomer(callerOf(ctx), requireId("customer_id", req.customerId)),
        creditTypeId: optionalCode("credit_type_id", req.creditTypeId),
        kinds: requireEntryKinds(req.kinds),
        startAt: optionalTime("start_time", req.startTime),
        endAt: optionalTime("end_time", req.endTime),
        pageSize: requirePageSize(req.pageSize),
        pageToken: requireText("page_token", req.pageToken, 512),
      });
      return { entries: page.entries.map(encodeEntry), nextPageToken: page.nextPageToken };
    },
  };
}
