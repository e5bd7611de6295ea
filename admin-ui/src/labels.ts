// Enum values as people say them.
import { GrantSource, EntryKind, ReservationStatus, Role } from "@burndown/sdk/gen/burndown/v1/types_pb.js";
import { EnforcementMode, FailurePolicy, UsageOutcome } from "@burndown/sdk/gen/burndown/v1/usage_pb.js";
import { dateOf, formatAmount, formatDate } from "./format.js";

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
  [EntryKind.CLAWBACK, "Clawback (refund)"],
];

export function entryKindName(kind: EntryKind): string {
  return entryKinds.find(([value]) => value === kind)?.[1] ?? "Unknown";
}

export function reservationStatusName(status: ReservationStatus): string {
  return ReservationStatus[status]?.toLowerCase() ?? "unknown";
}

export const enforcementModes: [EnforcementMode, string][] = [
  [EnforcementMode.ENFORCE, "Enforce"],
  [EnforcementMode.OBSERVE, "Observe"],
  [EnforcementMode.OFF, "Off"],
];

export function enforcementModeName(mode: EnforcementMode): string {
  return enforcementModes.find(([value]) => value === mode)?.[1] ?? "Unknown";
}

export const failurePolicies: [FailurePolicy, string][] = [
  [FailurePolicy.FAIL_CLOSED, "Fail closed"],
  [FailurePolicy.FAIL_OPEN, "Fail open"],
];

export function failurePolicyName(policy: FailurePolicy): string {
  return failurePolicies.find(([value]) => value === policy)?.[1] ?? "Unknown";
}

export const roles: [Role, string][] = [
  [Role.SERVICE, "Service"],
  [Role.SUPPORT, "Support"],
  [Role.ADMIN, "Admin"],
  [Role.CUSTOMER, "Customer"],
];

export function roleName(role: Role): string {
  return roles.find(([value]) => value === role)?.[1] ?? "Unknown";
}

const usageOutcomes: [UsageOutcome, string][] = [
  [UsageOutcome.BURNED, "burned"],
  [UsageOutcome.DUPLICATE, "duplicate"],
  [UsageOutcome.REJECTED, "rejected"],
  [UsageOutcome.UNRATED, "still unrated"],
  [UsageOutcome.SHADOWED, "shadowed"],
  [UsageOutcome.NOT_BILLED, "not billed"],
];

export function usageOutcomeName(outcome: UsageOutcome): string {
  return usageOutcomes.find(([value]) => value === outcome)?.[1] ?? "unknown";
}

/** Lot-like: what sourceSummary needs of a lot. */
export interface SourcedLot {
  source: GrantSource;
  remaining: bigint;
  expireTime?: { seconds: bigint; nanos: number };
}

const sourceWords: Partial<Record<GrantSource, string>> = { [GrantSource.PROMOTION]: "promotional", [GrantSource.PURCHASE]: "purchased" };

/**
 * sourceSummary tells credits apart by where they came from, promotional first (they burn
 * first when they expire first): "20 promotional credits, expiring Mar 31, 2030",
 * "100 purchased credits". A source's label names the soonest expiry of its lots.
 */
export function sourceSummary(lots: SourcedLot[], scale: number): { source: GrantSource; label: string; amount: bigint }[] {
  const bySource = new Map<GrantSource, { amount: bigint; soonest?: Date; expiries: Set<string> }>();
  for (const lot of lots) {
    if (lot.remaining <= 0n) continue;
    const entry = bySource.get(lot.source) ?? { amount: 0n, expiries: new Set<string>() };
    entry.amount += lot.remaining;
    const expireTime = dateOf(lot.expireTime);
    entry.expiries.add(expireTime === undefined ? "never" : expireTime.toISOString().slice(0, 10));
    if (expireTime !== undefined && (entry.soonest === undefined || expireTime < entry.soonest)) entry.soonest = expireTime;
    bySource.set(lot.source, entry);
  }
  const order = (source: GrantSource) => (source === GrantSource.PROMOTION ? 0 : source === GrantSource.PURCHASE ? 1 : 2);
  return [...bySource.entries()]
    .sort(([a], [b]) => order(a) - order(b) || a - b)
    .map(([source, { amount, soonest, expiries }]) => {
      const word = sourceWords[source] ?? grantSourceName(source).toLowerCase();
      const expiry = soonest === undefined ? "" : expiries.size === 1 ? `, expiring ${formatDate(soonest)}` : `, the first expiring ${formatDate(soonest)}`;
      return { source, amount, label: `${formatAmount(amount, scale)} ${word} credits${expiry}` };
    });
}
