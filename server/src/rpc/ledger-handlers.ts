// LedgerService handlers: decode, call one service function, encode. No business rules.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  BurnRequestSchema,
  type CommitRequest,
  CommitRequestSchema,
  GrantRequestSchema,
  type LedgerService,
  ReleaseRequestSchema,
  type ReserveRequest,
  ReserveRequestSchema,
} from "@burndown/sdk";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { invalid } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { burn } from "../service/burn.js";
import type { Caller, Deps, Idempotency } from "../service/context.js";
import { getBalance } from "../service/get-balance.js";
import { getBalanceAsOf } from "../service/get-balance-as-of.js";
import { grant } from "../service/grant.js";
import { listLedgerEntries } from "../service/list-ledger-entries.js";
import { commit, release } from "../service/resolve-reservation.js";
import { type ReserveInput, reserve } from "../service/reserve.js";
import {
  enforcementModeOf,
  optionalCode,
  optionalId,
  optionalTime,
  requireCost,
  requireEntryKinds,
  requireId,
  requireNonNegative,
  requirePageSize,
  requireText,
  requireUuid,
  ttlMs,
} from "./decode.js";
import { decodeGrant } from "./decode-grant.js";
import { encodeAsOfLot, encodeBalance, encodeEntry, encodeLot, encodeReservationResult } from "./encode.js";
import { callerKey, ownCustomer } from "./interceptors.js";
import { idempotencyOf } from "./request-hash.js";

/** callerOf reads the caller the auth interceptor put in the context. */
export function callerOf(ctx: HandlerContext): Caller {
  const caller = ctx.values.get(callerKey);
  assert(caller !== undefined, "the auth interceptor ran");
  return caller;
}

/** decodeReserve checks a Reserve request: the unary method and each item of ReserveBatch. */
export function decodeReserve(req: ReserveRequest): { idempotency: Idempotency; input: ReserveInput } {
  return {
    idempotency: idempotencyOf(ReserveRequestSchema, "Reserve", req),
    input: { customerId: requireId("customer_id", req.customerId), cost: requireCost(req.cost), ttlMs: ttlMs("ttl", req.ttl) },
  };
}

/** decodeCommit checks a Commit request: the unary method and each item of CommitBatch. */
export function decodeCommit(req: CommitRequest): { idempotency: Idempotency; input: { reservationId: string; amount: bigint } } {
  return {
    idempotency: idempotencyOf(CommitRequestSchema, "Commit", req),
    input: { reservationId: requireUuid("reservation_id", req.reservationId), amount: requireNonNegative("amount", req.amount) },
  };
}

/** ledgerHandlers implements LedgerService's balance methods. */
export function ledgerHandlers(deps: Deps): Partial<ServiceImpl<typeof LedgerService>> {
  return {
    async grant(req, ctx) {
      const idempotency = idempotencyOf(GrantRequestSchema, "Grant", req);
      const result = await grant(deps, callerOf(ctx), idempotency, decodeGrant(req));
      return { lot: encodeLot(result.lot), balance: encodeBalance(result.balance) };
    },
    async reserve(req, ctx) {
      const { idempotency, input } = decodeReserve(req);
      return encodeReservationResult(await reserve(deps, callerOf(ctx), idempotency, input));
    },
    async commit(req, ctx) {
      const { idempotency, input } = decodeCommit(req);
      return encodeReservationResult(await commit(deps, callerOf(ctx), idempotency, input));
    },
    async release(req, ctx) {
      const idempotency = idempotencyOf(ReleaseRequestSchema, "Release", req);
      return encodeReservationResult(await release(deps, callerOf(ctx), idempotency, { reservationId: requireUuid("reservation_id", req.reservationId) }));
    },
    async burn(req, ctx) {
      const idempotency = idempotencyOf(BurnRequestSchema, "Burn", req);
      const result = await burn(deps, callerOf(ctx), idempotency, { customerId: requireId("customer_id", req.customerId), cost: requireCost(req.cost) });
      return {
        creditTypeId: result.creditTypeId,
        amount: result.amount,
        entries: result.entries.map(encodeEntry),
        balance: encodeBalance(result.balance),
        mode: enforcementModeOf(result.mode),
        overLimit: result.overLimit,
      };
    },
    async getBalance(req, ctx) {
      const customerId = ownCustomer(callerOf(ctx), requireId("customer_id", req.customerId));
      const creditTypeId = optionalCode("credit_type_id", req.creditTypeId);
      const asOf = optionalTime("as_of_time", req.asOfTime);
      const asRecorded = optionalTime("as_recorded_time", req.asRecordedTime);
      if (asOf === null) {
        if (asRecorded !== null) throw invalid("MISSING_FIELD", "as_of_time", "is required with as_recorded_time");
        return { balances: (await getBalance(deps, { customerId, creditTypeId })).map(encodeBalance) };
      }
      const then = await getBalanceAsOf(deps, { customerId, creditTypeId, asOf, asRecorded });
      return {
        balances: then.balances.map(encodeBalance),
        asOfTime: timestampFromDate(then.asOf),
        asRecordedTime: timestampFromDate(then.asRecorded),
        asOfLots: then.lots.map(encodeAsOfLot),
      };
    },
    async listLedgerEntries(req, ctx) {
      const page = await listLedgerEntries(deps, {
        customerId: ownCustomer(callerOf(ctx), requireId("customer_id", req.customerId)),
        creditTypeId: optionalCode("credit_type_id", req.creditTypeId),
        kinds: requireEntryKinds(req.kinds),
        startAt: optionalTime("start_time", req.startTime),
        endAt: optionalTime("end_time", req.endTime),
        recordStartAt: optionalTime("record_start_time", req.recordStartTime),
        recordEndAt: optionalTime("record_end_time", req.recordEndTime),
        pageSize: requirePageSize(req.pageSize),
        pageToken: requireText("page_token", req.pageToken, 512),
        memberCustomerId: optionalId("member_customer_id", req.memberCustomerId),
      });
      return { entries: page.entries.map(encodeEntry), nextPageToken: page.nextPageToken };
    },
  };
}
