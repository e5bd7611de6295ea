// Domain results to protobuf messages. Plain objects in, plain init objects out.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type AsOfLotSchema,
  type ApiKeySchema,
  type CreditBalanceSchema,
  type CreditTypeSchema,
  type CustomerSchema,
  type FeatureSchema,
  type LedgerEntrySchema,
  type LotSchema,
  ReservationSchema,
  ReservationStatus,
  type SourceBalanceSchema,
} from "@burndown/sdk";
import type { BalanceView, LotView, SourceView } from "../service/balance-view.js";
import type { AsOfLotView } from "../service/get-balance-as-of.js";
import type { ApiKeyRow } from "../store/api-key-store.js";
import type { CreditTypeRow, CustomerRow, FeatureRow } from "../store/catalog-store.js";
import type { EntryRow } from "../store/entry-store.js";
import type { ReservationRow } from "../store/reservation-store.js";
import { enforcementModeOf, entryKindOf, failurePolicyOf, grantSourceOf, roleOf } from "./decode.js";

type Init<T extends Parameters<typeof create>[0]> = MessageInitShape<T>;

const optionalTimestamp = (date: Date | null) => (date === null ? undefined : timestampFromDate(date));

/** encodeLot converts a lot view. */
export function encodeLot(lot: LotView): Init<typeof LotSchema> {
  return {
    grantId: lot.grantId,
    source: grantSourceOf(lot.source),
    amount: lot.amount,
    remaining: lot.remaining,
    held: lot.held,
    priority: lot.priority,
    effectiveTime: timestampFromDate(lot.effectiveAt),
    expireTime: optionalTimestamp(lot.expiresAt),
    createTime: timestampFromDate(lot.createdAt),
    reasonCode: lot.reasonCode,
    costBasisMicros: lot.costBasisMicros,
    voidPending: lot.voidPending,
    voidTime: optionalTimestamp(lot.voidedAt),
  };
}

/** encodeAsOfLot converts a lot as it stood at a past time (GetBalance as_of_time). */
export function encodeAsOfLot(lot: AsOfLotView): Init<typeof AsOfLotSchema> {
  return { creditTypeId: lot.creditTypeId, lot: encodeLot(lot.lot), expired: lot.expired, effective: lot.effective, pastExpiry: lot.pastExpiry };
}

/** encodeSource converts what is left of a balance's lots of one source. */
export function encodeSource(source: SourceView): Init<typeof SourceBalanceSchema> {
  return {
    source: grantSourceOf(source.source),
    remaining: source.remaining,
    held: source.held,
    nextExpireTime: optionalTimestamp(source.nextExpiresAt),
    nextExpireAmount: source.nextExpireAmount,
  };
}

/** encodeBalance converts a balance view. */
export function encodeBalance(balance: BalanceView): Init<typeof CreditBalanceSchema> {
  return { ...balance, lots: balance.lots.map(encodeLot), sources: balance.sources === undefined ? [] : balance.sources.map(encodeSource) };
}

const reservationStatuses: Record<ReservationRow["status"], ReservationStatus> = {
  held: ReservationStatus.HELD,
  committed: ReservationStatus.COMMITTED,
  released: ReservationStatus.RELEASED,
  expired: ReservationStatus.EXPIRED,
};

/** encodeReservation converts a reservation. */
export function encodeReservation(reservation: ReservationRow) {
  return create(ReservationSchema, {
    reservationId: reservation.reservationId,
    customerId: reservation.customerId,
    creditTypeId: reservation.creditTypeId,
    amount: reservation.amount,
    featureKey: reservation.featureKey ?? "",
    status: reservationStatuses[reservation.status],
    expireTime: timestampFromDate(reservation.expiresAt),
    committedAmount: reservation.committedAmount,
    mode: enforcementModeOf(reservation.mode === "forced" ? "enforce" : reservation.mode),
    forced: reservation.mode === "forced",
  });
}

/** encodeEntry converts a ledger entry. */
export function encodeEntry(entry: EntryRow): Init<typeof LedgerEntrySchema> {
  return {
    entryId: entry.entryId.toString(),
    customerId: entry.customerId,
    creditTypeId: entry.creditTypeId,
    kind: entryKindOf(entry.kind),
    amount: entry.amount,
    grantId: entry.grantId ?? "",
    reservationId: entry.reservationId ?? "",
    requestId: entry.requestId ?? "",
    actor: entry.actor,
    effectiveTime: timestampFromDate(entry.effectiveAt),
    recordTime: timestampFromDate(entry.recordedAt),
    reasonCode: entry.reasonCode,
    usageId: entry.usageId ?? "",
    overLimit: entry.overLimit,
    memberCustomerId: entry.memberCustomerId ?? "",
  };
}

/** encodeReservationResult converts what Reserve, Commit and Release (and each batch item) answer. */
export function encodeReservationResult(result: { reservation: ReservationRow; balance: BalanceView; overLimit: boolean }) {
  return { reservation: encodeReservation(result.reservation), balance: encodeBalance(result.balance), overLimit: result.overLimit };
}

/** encodeCreditType converts a credit type. */
export function encodeCreditType(type: CreditTypeRow): Init<typeof CreditTypeSchema> {
  return { creditTypeId: type.creditTypeId, displayName: type.displayName, scale: type.scale, createTime: timestampFromDate(type.createdAt) };
}

/** encodeFeature converts a feature. */
export function encodeFeature(feature: FeatureRow): Init<typeof FeatureSchema> {
  return {
    featureKey: feature.featureKey,
    displayName: feature.displayName,
    creditTypeId: feature.creditTypeId,
    burnRate: feature.burnRate,
    enforcementMode: enforcementModeOf(feature.enforcementMode),
    createTime: timestampFromDate(feature.createdAt),
    failurePolicy: failurePolicyOf(feature.failurePolicy),
    offlineBudget: { creditsMax: feature.offlineCreditsMax, durationMax: feature.offlineMsMax > 0n ? durationFromMs(Number(feature.offlineMsMax)) : undefined },
    rollout:
      feature.rollout === null
        ? undefined
        : { mode: enforcementModeOf(feature.rollout.mode), customerIds: [...feature.rollout.customerIds], percent: feature.rollout.percent },
  };
}

/** encodeCustomer converts a customer. */
export function encodeCustomer(customer: CustomerRow): Init<typeof CustomerSchema> {
  return {
    customerId: customer.customerId,
    displayName: customer.displayName,
    overdraftLimits: customer.overdraftLimits.map((limit) => ({ creditTypeId: limit.creditTypeId, amount: limit.limit })),
    createTime: timestampFromDate(customer.createdAt),
    pricingVersionId: customer.pricingVersionId ?? "",
  };
}

/** encodeApiKey converts an API key (never its secret). */
export function encodeApiKey(key: ApiKeyRow): Init<typeof ApiKeySchema> {
  return {
    keyId: key.keyId,
    name: key.name,
    role: roleOf(key.role),
    grantLimit: key.grantLimit,
    createTime: timestampFromDate(key.createdAt),
    expireTime: optionalTimestamp(key.expiresAt),
    revokeTime: optionalTimestamp(key.revokedAt),
    customerId: key.customerId ?? "",
  };
}
