// Enum values as people say them.
import { GrantSource, EntryKind, ReservationStatus } from "@burndown/sdk/gen/burndown/v1/types_pb.js";

export const grantSources: [GrantSource, string][] = [
  [GrantSource.SUPPORT, "Support"],
  [GrantSource.PROMOTION, "Promotion"],
  [GrantSource.PURCHASE, "Purchase"],
  [GrantSource.PLAN, "Plan"],
  [GrantSource.RECHARGE, "Recharge"],
];

export function grantSourceName(source: GrantSource): string {
  return grantSources.find(([value]) => value === source)?.[1] ?? "Unknown";
}

export const entryKinds: [EntryKind, string][] = [
  [EntryKind.GRANT, "Grant"],
  [EntryKind.HOLD, "Hold"],
  [EntryKind.RELEASE, "Release"],
  [EntryKind.BURN, "Burn"],
  [EntryKind.EXPIRE, "Expire"],
  [EntryKind.SETTLE, "Debt settled"],
  [EntryKind.REFUND, "Refund"],
  [EntryKind.UNEXPIRE, "Expiry reversed"],
];

export function entryKindName(kind: EntryKind): string {
  return entryKinds.find(([value]) => value === kind)?.[1] ?? "Unknown";
}

export function reservationStatusName(status: ReservationStatus): string {
  return ReservationStatus[status]?.toLowerCase() ?? "unknown";
}
