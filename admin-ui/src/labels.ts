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

/** Sources a person never picks but lots may have: made by plans' rollover, or corrections. */
const otherGrantSources: [GrantSource, string][] = [
  [GrantSource.ROLLOVER, "Rollover"],
  [GrantSource.ADJUSTMENT, "Adjustment"],
];

export function grantSourceName(source: GrantSource): string {
  return [...grantSources, ...otherGrantSources].find(([value]) => value === source)?.[1] ?? "Unknown";
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
  [EntryKind.ROLLOVER_OUT, "Rolled over (out)"],
  [EntryKind.ROLLOVER_IN, "Rolled over (in)"],
  [EntryKind.VOID, "Voided"],
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
  [Role.FINANCE, "Finance"],
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

/** SourceLike: what sourceSummary needs of a balance's source (SourceBalance). */
export interface SourceLike {
  source: GrantSource;
  remaining: bigint;
  nextExpireTime?: { seconds: bigint; nanos: number };
  nextExpireAmount: bigint;
}

const sourceWords: Partial<Record<GrantSource, string>> = { [GrantSource.PROMOTION]: "promotional", [GrantSource.PURCHASE]: "purchased" };

/**
 * sourceSummary tells credits apart by where they came from, in the server's order
 * (promotional first): "20 promotional credits, expiring Mar 31, 2030" (or "55
 * promotional credits, 25 expiring Mar 31, 2030" when only some expire that soon),
 * "100 purchased credits".
 */
export function sourceSummary(sources: SourceLike[], scale: number): { source: GrantSource; label: string }[] {
  return sources
    .filter((source) => source.remaining > 0n)
    .map((source) => {
      const word = sourceWords[source.source] ?? grantSourceName(source.source).toLowerCase();
      const when = formatDate(dateOf(source.nextExpireTime));
      const expiry =
        source.nextExpireTime === undefined
          ? ""
          : source.nextExpireAmount === source.remaining
            ? `, expiring ${when}`
            : `, ${formatAmount(source.nextExpireAmount, scale)} expiring ${when}`;
      return { source: source.source, label: `${formatAmount(source.remaining, scale)} ${word} credits${expiry}` };
    });
}
