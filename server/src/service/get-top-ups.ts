// GetTopUp and ListTopUps: an order, and a customer's orders newest first in pages
// (AIP-158). A page token is the last order's creation time and id, so pages stay
// stable as orders are added.
import { invalid, notFound } from "../errors.js";
import { selectTopUp, selectTopUpByPaymentReference, selectTopUps, type TopUpRow } from "../store/billing-store.js";
import { mapDriverErrors } from "../store/database.js";
import type { Deps } from "./context.js";

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function decodeToken(pageToken: string): { createdAtMicros: bigint; orderId: string } | null {
  if (pageToken === "") return null;
  const [version, micros, orderId] = Buffer.from(pageToken, "base64url").toString("utf8").split(":");
  if (version !== "topup1" || !/^[0-9]{1,18}$/.test(micros ?? "") || !uuidPattern.test(orderId ?? "")) {
    throw invalid("INVALID_PAGE_TOKEN", "page_token", "not a token from a previous page of top-ups");
  }
  return { createdAtMicros: BigInt(micros), orderId };
}

/** getTopUp reads one order. NotFound TOPUP_NOT_FOUND. */
export async function getTopUp(deps: Deps, orderId: string): Promise<TopUpRow> {
  const order = await mapDriverErrors(() => selectTopUp(deps.pool, orderId, "none"));
  if (order === null) throw notFound("TOPUP_NOT_FOUND", "order id", orderId);
  return order;
}

/** listTopUps reads one page of a customer's orders and the token for the next. */
export async function listTopUps(deps: Deps, input: { customerId: string; pageSize: number; pageToken: string }): Promise<{ topUps: TopUpRow[]; nextPageToken: string }> {
  const after = decodeToken(input.pageToken);
  const rows = await mapDriverErrors(() => selectTopUps(deps.pool, { customerId: input.customerId, after, limit: input.pageSize + 1 }));
  const topUps = rows.slice(0, input.pageSize);
  const last = topUps.at(-1);
  const nextPageToken = rows.length > input.pageSize && last ? Buffer.from(`topup1:${last.createdAtMicros}:${last.orderId}`).toString("base64url") : "";
  return { topUps, nextPageToken };
}

/** findTopUpByPaymentReference reads the order a payment reference paid, or null. */
export async function findTopUpByPaymentReference(deps: Deps, paymentReference: string): Promise<TopUpRow | null> {
  return mapDriverErrors(() => selectTopUpByPaymentReference(deps.pool, paymentReference));
}
