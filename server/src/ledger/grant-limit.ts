// Support grant limits, decided without IO: which limit applies to a key's grant of a
// credit type, and whether an amount fits it given what the key granted in its period.
import { assert } from "./balance-state.js";

/** GrantLimitRule is a limit of a role or a key; creditTypeId "" means every credit type. */
export interface GrantLimitRule {
  subjectKind: "role" | "key";
  subject: string;
  creditTypeId: string;
  perCallMax: bigint;
  periodMax: bigint;
  periodSeconds: number;
}

/** EffectiveGrantLimit is the limit a grant is checked against. */
export interface EffectiveGrantLimit {
  perCallMax: bigint;
  periodMax: bigint;
  periodSeconds: number;
}

/**
 * resolveGrantLimit picks the most specific rule for a key's grant of a credit type: the
 * key's for that type, the key's for every type, the role's for that type, the role's for
 * every type, else the fallback. The key's own per-call cap (api_keys.grant_limit) always
 * applies on top.
 */
export function resolveGrantLimit(
  rules: readonly GrantLimitRule[],
  grant: { keyId: string; role: string; creditTypeId: string; keyPerCallMax: bigint },
  fallback: EffectiveGrantLimit,
): EffectiveGrantLimit {
  assert(grant.creditTypeId !== "", "a grant names its credit type");
  assert(grant.keyPerCallMax >= 0n, "a key's own cap is not negative");
  const find = (kind: "role" | "key", subject: string, creditTypeId: string) =>
    rules.find((rule) => rule.subjectKind === kind && rule.subject === subject && rule.creditTypeId === creditTypeId);
  const rule =
    find("key", grant.keyId, grant.creditTypeId) ?? find("key", grant.keyId, "") ?? find("role", grant.role, grant.creditTypeId) ?? find("role", grant.role, "");
  const limit = rule ?? fallback;
  // A key's grant_limit of 0 is "none of its own" (api-keys.ts gives support keys a default).
  const perCallMax = grant.keyPerCallMax > 0n && grant.keyPerCallMax < limit.perCallMax ? grant.keyPerCallMax : limit.perCallMax;
  return { perCallMax, periodMax: limit.periodMax, periodSeconds: limit.periodSeconds };
}

/** GrantLimitCheck is whether an amount fits, and if not which bound it passes. */
export type GrantLimitCheck = { kind: "within" } | { kind: "over_per_call" } | { kind: "over_period"; used: bigint };

/** checkGrantLimit says whether amount fits a limit when the key granted `used` in its period. */
export function checkGrantLimit(limit: EffectiveGrantLimit, amount: bigint, used: bigint): GrantLimitCheck {
  assert(amount > 0n, "a grant is positive");
  assert(used >= 0n, "a period sum is not negative");
  if (amount > limit.perCallMax) return { kind: "over_per_call" };
  if (used + amount > limit.periodMax) return { kind: "over_period", used };
  return { kind: "within" };
}
