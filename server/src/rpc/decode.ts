// Checks on request fields, shared by every handler. A failed check is InvalidArgument
// with a reason naming what is wrong; nothing past this layer sees a malformed value.
import { type Duration, type Timestamp } from "@bufbuild/protobuf/wkt";
import { EnforcementMode, type EnforcementRollout, EntryKind, FailurePolicy, GrantSource, Role as ProtoRole } from "@burndown/sdk";
import type { EnforcementMode as DomainEnforcementMode, FailurePolicy as DomainFailurePolicy } from "../store/catalog-store.js";
import { invalid } from "../errors.js";
import type { EntryKind as DomainEntryKind } from "../ledger/balance-state.js";
import type { Rollout } from "../ledger/enforcement.js";
import { limits } from "../limits.js";
import type { Cost } from "../service/resolve-cost.js";
import type { Role } from "../service/context.js";

const idPattern = /^[\x21-\x7e]+$/;
const codePattern = /^[a-z0-9][a-z0-9_.-]*$/;

/** requireId checks an id: 1-128 printable ASCII characters without spaces. */
export function requireId(field: string, value: string): string {
  if (value.length === 0) throw invalid("MISSING_FIELD", field, "is required");
  if (value.length > limits.idLengthMax || !idPattern.test(value)) {
    throw invalid("INVALID_ID", field, `must be 1-${limits.idLengthMax} printable ASCII characters without spaces`);
  }
  return value;
}

/** optionalId checks an id that may be empty. */
export function optionalId(field: string, value: string): string {
  return value === "" ? "" : requireId(field, value);
}

/** requireCode checks a machine-readable code: 1-64 characters of [a-z0-9_.-]. */
export function requireCode(field: string, value: string): string {
  if (value.length === 0) throw invalid("MISSING_FIELD", field, "is required");
  if (value.length > limits.codeLengthMax || !codePattern.test(value)) {
    throw invalid("INVALID_CODE", field, `must be 1-${limits.codeLengthMax} characters of [a-z0-9_.-], starting with a letter or digit`);
  }
  return value;
}

/** optionalCode checks a code that may be empty. */
export function optionalCode(field: string, value: string): string {
  return value === "" ? "" : requireCode(field, value);
}

/** requireText checks free text against a length bound; PostgreSQL text cannot hold NUL, so neither can it. */
export function requireText(field: string, value: string, lengthMax: number, required = false): string {
  if (required && value.trim().length === 0) throw invalid("MISSING_FIELD", field, "is required");
  if (value.length > lengthMax) throw invalid("TEXT_TOO_LONG", field, `must be at most ${lengthMax} characters`);
  if (value.includes("\u0000")) throw invalid("INVALID_TEXT", field, "must not contain NUL characters");
  return value;
}

/** requirePositive checks an amount of credits is above zero (the wire already bounds it to int64). */
export function requirePositive(field: string, value: bigint): bigint {
  if (value <= 0n) throw invalid("INVALID_AMOUNT", field, "must be positive");
  return value;
}

/**
 * requireQuantity checks a quantity of usage is above zero. A quantity counts units of a
 * feature, not credits, so it has its own reason: INVALID_QUANTITY, as the contract says.
 */
export function requireQuantity(field: string, value: bigint): bigint {
  if (value <= 0n) throw invalid("INVALID_QUANTITY", field, "must be positive");
  return value;
}

/** requireNonNegative checks an amount is zero or more. */
export function requireNonNegative(field: string, value: bigint): bigint {
  if (value < 0n) throw invalid("INVALID_AMOUNT", field, "must not be negative");
  return value;
}

/** optionalTime converts a Timestamp, or null when unset. */
export function optionalTime(field: string, value: Timestamp | undefined): Date | null {
  if (value === undefined) return null;
  const ms = Number(value.seconds) * 1000 + Math.floor(value.nanos / 1e6);
  // Timestamp's documented range: 0001-01-01 to 9999-12-31.
  if (value.seconds < -62135596800n || value.seconds > 253402300799n || value.nanos < 0 || value.nanos > 999_999_999) {
    throw invalid("INVALID_TIME", field, "is not a valid timestamp");
  }
  return new Date(ms);
}

/** ttlMs converts a reservation TTL, applying the default and the bounds. */
export function ttlMs(field: string, value: Duration | undefined): number {
  if (value === undefined) return limits.reservationTtlMsDefault;
  const ms = Number(value.seconds) * 1000 + Math.floor(value.nanos / 1e6);
  if (value.nanos < 0 || value.nanos > 999_999_999 || !Number.isFinite(ms) || ms < limits.reservationTtlMsMin || ms > limits.reservationTtlMsMax) {
    throw invalid("INVALID_TTL", field, `must be between ${limits.reservationTtlMsMin / 1000} s and ${limits.reservationTtlMsMax / 1000} s`);
  }
  return ms;
}

/** requireCost checks a Reserve or Burn cost oneof. */
export function requireCost(cost: { case: "credits"; value: { creditTypeId: string; amount: bigint } } | { case: "usage"; value: { featureKey: string; quantity: bigint } } | { case: undefined; value?: undefined }): Cost {
  switch (cost.case) {
    case "credits":
      return { kind: "credits", creditTypeId: requireCode("credits.credit_type_id", cost.value.creditTypeId), amount: requirePositive("credits.amount", cost.value.amount) };
    case "usage":
      return { kind: "usage", featureKey: requireCode("usage.feature_key", cost.value.featureKey), quantity: requireQuantity("usage.quantity", cost.value.quantity) };
    default:
      throw invalid("MISSING_FIELD", "cost", "set either credits or usage");
  }
}

const grantSources: Record<number, string> = {
  [GrantSource.PURCHASE]: "purchase",
  [GrantSource.PROMOTION]: "promotion",
  [GrantSource.PLAN]: "plan",
  [GrantSource.SUPPORT]: "support",
  [GrantSource.RECHARGE]: "recharge",
  [GrantSource.ADJUSTMENT]: "adjustment",
  [GrantSource.ROLLOVER]: "rollover",
};

/** requireGrantSource converts a GrantSource; unspecified or unknown values are refused. */
export function requireGrantSource(value: GrantSource): string {
  const source = grantSources[value];
  if (source === undefined) throw invalid("INVALID_ENUM", "source", "must be a known GrantSource other than UNSPECIFIED");
  return source;
}

/** grantSourceOf converts a stored source back to the enum. */
export function grantSourceOf(source: string): GrantSource {
  const entry = Object.entries(grantSources).find(([, name]) => name === source);
  return entry ? (Number(entry[0]) as GrantSource) : GrantSource.UNSPECIFIED;
}

const entryKinds: Record<number, DomainEntryKind> = {
  [EntryKind.GRANT]: "grant",
  [EntryKind.HOLD]: "hold",
  [EntryKind.RELEASE]: "release",
  [EntryKind.BURN]: "burn",
  [EntryKind.EXPIRE]: "expire",
  [EntryKind.SETTLE]: "settle",
  [EntryKind.REFUND]: "refund",
  [EntryKind.UNEXPIRE]: "unexpire",
  [EntryKind.CLAWBACK]: "clawback",
  [EntryKind.ROLLOVER_OUT]: "rollover_out",
  [EntryKind.ROLLOVER_IN]: "rollover_in",
  [EntryKind.VOID]: "void",
};

const enforcementModes: Record<number, DomainEnforcementMode> = {
  [EnforcementMode.ENFORCE]: "enforce",
  [EnforcementMode.OBSERVE]: "observe",
  [EnforcementMode.OFF]: "off",
};

/** requireEnforcementMode converts an EnforcementMode; unspecified or unknown values are refused. */
export function requireEnforcementMode(field: string, value: EnforcementMode): DomainEnforcementMode {
  const mode = enforcementModes[value];
  if (mode === undefined) throw invalid("INVALID_ENUM", field, "must be ENFORCE, OBSERVE or OFF");
  return mode;
}

/** requireRollout checks a rollout: a mode, at most rolloutCustomersMax distinct customer ids, a percent from 0 to 100. */
export function requireRollout(rollout: EnforcementRollout): Rollout {
  const mode = requireEnforcementMode("rollout.mode", rollout.mode);
  if (rollout.customerIds.length > limits.rolloutCustomersMax) {
    throw invalid("TOO_MANY_CUSTOMERS", "rollout.customer_ids", `at most ${limits.rolloutCustomersMax} customers`);
  }
  const customerIds = [...new Set(rollout.customerIds.map((id, i) => requireId(`rollout.customer_ids[${i}]`, id)))];
  if (!Number.isInteger(rollout.percent) || rollout.percent < 0 || rollout.percent > 100) {
    throw invalid("INVALID_PERCENT", "rollout.percent", "must be a whole number from 0 to 100");
  }
  return { mode, customerIds, percent: rollout.percent };
}

/** requireFailurePolicy converts a FailurePolicy; unspecified or unknown values are refused. */
export function requireFailurePolicy(field: string, value: FailurePolicy): DomainFailurePolicy {
  if (value === FailurePolicy.FAIL_OPEN) return "fail_open";
  if (value === FailurePolicy.FAIL_CLOSED) return "fail_closed";
  throw invalid("INVALID_ENUM", field, "must be FAIL_OPEN or FAIL_CLOSED");
}

/** failurePolicyOf converts a stored policy back to the enum. */
export function failurePolicyOf(policy: DomainFailurePolicy): FailurePolicy {
  return policy === "fail_open" ? FailurePolicy.FAIL_OPEN : FailurePolicy.FAIL_CLOSED;
}

/** enforcementModeOf converts a stored mode back to the enum. */
export function enforcementModeOf(mode: DomainEnforcementMode): EnforcementMode {
  const entry = Object.entries(enforcementModes).find(([, name]) => name === mode);
  return entry ? (Number(entry[0]) as EnforcementMode) : EnforcementMode.UNSPECIFIED;
}

/** requireEntryKinds converts an entry-kind filter. */
export function requireEntryKinds(values: EntryKind[]): DomainEntryKind[] {
  return values.map((value) => {
    const kind = entryKinds[value];
    if (kind === undefined) throw invalid("INVALID_ENUM", "kinds", "must be known EntryKind values other than UNSPECIFIED");
    return kind;
  });
}

/** entryKindOf converts a stored kind back to the enum. */
export function entryKindOf(kind: DomainEntryKind): EntryKind {
  const entry = Object.entries(entryKinds).find(([, name]) => name === kind);
  return entry ? (Number(entry[0]) as EntryKind) : EntryKind.UNSPECIFIED;
}

const roles: Record<number, Role> = { [ProtoRole.SERVICE]: "service", [ProtoRole.SUPPORT]: "support", [ProtoRole.ADMIN]: "admin", [ProtoRole.CUSTOMER]: "customer", [ProtoRole.FINANCE]: "finance" };

/** requireRole converts a Role; unspecified or unknown values are refused. */
export function requireRole(value: ProtoRole): Role {
  const role = roles[value];
  if (role === undefined) throw invalid("INVALID_ENUM", "role", "must be SERVICE, SUPPORT, ADMIN, CUSTOMER or FINANCE");
  return role;
}

/** roleOf converts a stored role back to the enum. */
export function roleOf(role: Role): ProtoRole {
  return { service: ProtoRole.SERVICE, support: ProtoRole.SUPPORT, admin: ProtoRole.ADMIN, customer: ProtoRole.CUSTOMER, finance: ProtoRole.FINANCE }[role];
}

/** requirePageSize applies the default and the bound: the general ones, or a method's own. */
export function requirePageSize(value: number, bounds: { sizeDefault: number; sizeMax: number } = { sizeDefault: limits.pageSizeDefault, sizeMax: limits.pageSizeMax }): number {
  if (value === 0) return bounds.sizeDefault;
  if (value < 0 || value > bounds.sizeMax) throw invalid("INVALID_PAGE_SIZE", "page_size", `must be between 1 and ${bounds.sizeMax}`);
  return value;
}

/** requirePriority checks a lot priority. */
export function requirePriority(value: number): number {
  if (value < 0 || value > limits.priorityMax) throw invalid("INVALID_PRIORITY", "priority", `must be between 0 and ${limits.priorityMax}`);
  return value;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** requireUuid checks a server-assigned id. */
export function requireUuid(field: string, value: string): string {
  if (value === "") throw invalid("MISSING_FIELD", field, "is required");
  if (!uuidPattern.test(value)) throw invalid("INVALID_ID", field, "must be an id the server returned (a UUID)");
  return value.toLowerCase();
}

