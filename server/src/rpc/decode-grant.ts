// Decoding of a grant as Grant and RequestGrant take it, and of its ticket link.
import type { GrantRequest } from "@burndown/sdk";
import { invalid } from "../errors.js";
import { limits } from "../limits.js";
import type { GrantInput } from "../service/grant.js";
import { optionalTime, requireCode, requireGrantSource, requireId, requireNonNegative, requirePositive, requirePriority, requireText } from "./decode.js";

/** requireTicketUrl checks an optional ticket link: empty, or an http(s) URL of at most ticketUrlLengthMax characters. */
export function requireTicketUrl(value: string): string {
  if (value === "") return "";
  const fail = () => invalid("INVALID_TICKET_URL", "ticket_url", `must be an http or https URL of at most ${limits.ticketUrlLengthMax} characters`);
  if (value.length > limits.ticketUrlLengthMax || /\s/.test(value)) throw fail();
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // An unparsable link is the caller's mistake, said in the error.
    throw fail();
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "") throw fail();
  return value;
}

/** decodeGrant checks a GrantRequest's fields (its request id is checked with its idempotency). */
export function decodeGrant(req: GrantRequest): GrantInput {
  return {
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
    ticketUrl: requireTicketUrl(req.ticketUrl),
  };
}
