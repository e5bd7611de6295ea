// Refusals in words: the server's ErrorInfo reason (and its metadata) as a sentence a
// support person or a customer can act on. An unknown reason still shows its code.
import { Code, ConnectError } from "@connectrpc/connect";
import { errorInfoOf } from "@burndown/sdk/error-reason";

type Metadata = Record<string, string>;

const words: Record<string, (m: Metadata) => string> = {
  MISSING_API_KEY: () => "Sign in with an API key.",
  INVALID_API_KEY: () => "This API key is unknown, revoked or expired. Sign in with another key.",
  ROLE_NOT_ALLOWED: (m) => `Your key's role (${m.role ?? "?"}) may not do this${m.method ? ` (${m.method})` : ""}. Ask an admin.`,
  GRANT_LIMIT_EXCEEDED: (m) =>
    m.approval_possible === "true"
      ? "That is more than your key may grant (per grant or in its period). File it for approval, or grant less."
      : `That is more than your key may grant${m.per_call_max ? ` (at most ${m.per_call_max} per grant, ${m.period_max ?? "?"} per period, ${m.period_used ?? "0"} used)` : ""}.`,
  GRANT_SOURCE_NOT_ALLOWED: (m) => `Your role may not grant credits of that source${m.allowed_sources ? ` (allowed: ${m.allowed_sources.replaceAll(",", ", ")})` : ""}.`,
  INVALID_TICKET_URL: () => "The ticket link must be an http or https address.",
  SELF_APPROVAL_NOT_ALLOWED: () => "You filed this request: another person must decide it.",
  ALREADY_DECIDED: (m) => `This request was ${m.status ?? "decided"} already.`,
  GRANT_REQUEST_EXPIRED: () => "This request expired before anyone decided it.",
  GRANT_REQUEST_NOT_FOUND: () => "No such grant request.",
  REASON_CODE_EXISTS: () => "That reason code exists already.",
  INVALID_GRANT_LIMIT: (m) =>
    m.field === "grant_limit" || m.field === "key_id"
      ? "Only support keys have a grant limit."
      : `That limit is not valid${m.field ? ` (${m.field.replaceAll("_", " ")})` : ""}: maxima must be positive and the period from 1 hour to 365 days.`,
  INVALID_GRANT_SOURCES: () => "Choose at least one source; Purchase and Recharge are never allowed.",
  INSUFFICIENT_CREDITS: (m) => `Not enough credits${m.available ? `: ${m.available} available` : ""}${m.required ? `, ${m.required} needed` : ""}.`,
  INVALID_AMOUNT: () => "The amount must be a whole number of units greater than zero.",
  INVALID_QUANTITY: () => "The quantity must be greater than zero.",
  AMOUNT_OUT_OF_RANGE: () => "That amount is too large for the ledger.",
  INVALID_REASON_CODE: () => "Choose a reason code from the list.",
  INVALID_EXPIRE_TIME: () => "The expiry must be in the future.",
  INVALID_TEXT: () => "The text contains a character that is not allowed.",
  TEXT_TOO_LONG: () => "The text is too long.",
  MISSING_FIELD: (m) => `Fill in ${m.field ? m.field.replaceAll("_", " ") : "every required field"}.`,
  INVALID_ID: (m) => `${m.field ? m.field.replaceAll("_", " ") : "An id"} must be 1-128 printable characters without spaces.`,
  INVALID_CODE: (m) => `${m.field ? m.field.replaceAll("_", " ") : "A code"} must be lowercase letters, digits, '_' or '-'.`,
  CUSTOMER_NOT_FOUND: () => "No such customer.",
  CREDIT_TYPE_NOT_FOUND: () => "No such credit type.",
  FEATURE_NOT_FOUND: () => "No such feature.",
  PRICING_VERSION_NOT_FOUND: () => "No such pricing version.",
  API_KEY_NOT_FOUND: () => "No such API key.",
  USAGE_EVENT_NOT_FOUND: () => "No such usage event.",
  RESERVATION_NOT_FOUND: () => "No such reservation.",
  CREDIT_TYPE_EXISTS: () => "A credit type with that id exists already.",
  FEATURE_EXISTS: () => "A feature with that key exists already.",
  CUSTOMER_EXISTS: () => "A customer with that id exists already.",
  PRICING_VERSION_EXISTS: () => "A pricing version with that id exists already.",
  OVERDRAFT_IN_USE: () => "The customer is further in debt than that limit allows; settle the debt first.",
  NOT_CORRECTABLE: () => "This event burned nothing from the balance, so there is nothing to correct.",
  ALREADY_CORRECTED: () => "This event was corrected already.",
  ALREADY_REFUNDED: () => "This event was refunded in part already; refund the rest from its ledger line.",
  NOTHING_TO_VOID: (m) => `This lot has no unused credits left to void${m.held && m.held !== "0" ? ` (${m.held} are held by open reservations)` : ""}.`,
  VOID_EXCEEDS_UNUSED: (m) => `That is more than the lot's unused credits (${m.unused ?? "?"} in the smallest unit).`,
  LOT_OF_TOP_UP: (m) => `These credits were bought with top-up ${m.order_id ?? "?"}: refund the top-up to take them back, with its money.`,
  GRANT_NOT_FOUND: () => "No such lot for this customer.",
  CHARGE_NOT_FOUND: () => "No such charge for this customer.",
  NOTHING_TO_REFUND: () => "This charge was refunded in full already.",
  REFUND_EXCEEDS_CHARGE: (m) => `That is more than is left to refund of this charge (${m.refundable ?? "?"} in the smallest unit).`,
  DISPUTE_NOT_FOUND: () => "No such dispute.",
  DISPUTE_CLOSED: () => "This dispute was resolved already.",
  ENTRY_NOT_FOUND: () => "That line is not in this customer's ledger.",
  INVALID_RESOLUTION: () => "Resolve with a refund of one of the dispute's lines, or a rejection with a reason.",
  SAME_PRICING_VERSION: () => "The customers are on that version already.",
  INVALID_SCALE: () => "The scale must be from 0 to 12.",
  INVALID_PERCENT: () => "The percentage must be a whole number from 0 to 100.",
  INVALID_PRIORITY: () => "The priority is out of range.",
  INVALID_PERIOD: () => "Choose a shorter period, with its end after its start.",
  INVALID_CUSTOMER_ID: () => "Only customer keys name a customer.",
  INVALID_DURATION: () => "The offline time must be from 0 to 30 days.",
  INVALID_LIMIT: () => "The number of events must be from 0 to 1,000.",
  INVALID_ENUM: (m) => `Choose ${m.field ? `a ${m.field.replaceAll("_", " ")}` : "a value"} from the list.`,
  TOO_MANY_CUSTOMERS: () => "List at most 1,000 customers.",
  TOO_MANY_CUSTOMER_IDS: () => "List at most 1,000 customers.",
  TOO_MANY_RATES: () => "A pricing version holds at most 1,000 rates.",
  DUPLICATE_FEATURE: () => "Rate each feature once.",
  UNRATED: () => "Its customer and feature exist, yet no rate applied to it.",
  REQUEST_ID_REUSED: () => "This form was already sent with different values. Reload and try again.",
  CONCURRENT_UPDATE: () => "Someone changed this at the same moment. Try again.",
  DATABASE_UNAVAILABLE: () => "The ledger's database is not answering. Try again in a moment; nothing was changed.",
  OVERLOADED: () => "The server is busy. Try again in a moment; nothing was changed.",
  TOO_MANY_LOTS: () => "This balance has too many lots for that operation.",
  CHILD_LIMIT_EXCEEDED: (m) => `That would take this pool member past its limit${m.limit ? ` of ${m.limit}` : ""} this period${m.used ? ` (${m.used} used)` : ""}.`,
  SELF_POOL: () => "A customer cannot be a member of its own pool.",
  ALREADY_POOLED: (m) => `That customer is already a member of ${m.parent_customer_id ?? "another"}'s pool; detach it first.`,
  POOL_NESTING: () => "Pools are one level deep: a pool's owner cannot be a member, and a member cannot own a pool.",
  POOL_MEMBER_NOT_FOUND: () => "That customer is not a member of a pool.",
  NEGATIVE_LIMIT: () => "The limit must be zero or more.",
  INVALID_POOL_PERIOD: () => "Choose a period: month or day.",
  TOO_MANY_POOL_MEMBERS: () => "This pool has as many members as it may.",
  INTERNAL: () => "Something went wrong on the server. It has been logged.",
  INVALID_PROMO_CODE: () => "A promo code is 3 to 64 letters, digits, '-' or '_'.",
  INVALID_PROMO_EXPIRY: () => "Say when the credits expire: a date in the future, or a number of days from redemption (1 day to 100 years).",
  INVALID_VALID_UNTIL: () => "The last day to redeem must be in the future.",
  INVALID_MAX_REDEMPTIONS: () => "The number of redemptions must be 0 (no limit) or more.",
  PROMO_CODE_EXISTS: () => "A promo code with these letters exists already (codes match in any case).",
  PROMO_CODE_NOT_FOUND: () => "That promo code does not exist. Check its spelling.",
  PROMO_CODE_DISABLED: () => "That promo code is no longer valid.",
  PROMO_CODE_EXPIRED: () => "That promo code has expired.",
  PROMO_CODE_EXHAUSTED: () => "That promo code has been used as many times as it may be.",
  PROMO_CODE_ALREADY_REDEEMED: () => "You have already redeemed this promo code.",
};

/** Refusal is an error as the screens show it. */
export interface Refusal {
  reason: string;
  text: string;
}

/** refusalOf turns any failure of an RPC into words, with the reason code kept for support. */
export function refusalOf(error: unknown): Refusal {
  const info = errorInfoOf(error);
  if (info !== null) {
    const say = words[info.reason];
    const connectError = ConnectError.from(error);
    return { reason: info.reason, text: say ? say(info.metadata) : connectError.rawMessage || info.reason.replaceAll("_", " ").toLowerCase() };
  }
  if (error instanceof ConnectError) {
    if (error.code === Code.Unavailable) return { reason: "UNAVAILABLE", text: "The server cannot be reached. Check your connection and try again." };
    return { reason: Code[error.code], text: error.rawMessage };
  }
  return { reason: "ERROR", text: error instanceof Error ? error.message : String(error) };
}

/** reasonText is a reason code alone in words (an unrated event's, say), as refusalOf would say it. */
export function reasonText(reason: string, metadata: Metadata = {}): string {
  const say = words[reason];
  return say ? say(metadata) : reason.replaceAll("_", " ").toLowerCase();
}
