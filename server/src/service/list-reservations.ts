// ListReservations: a customer's reservations, newest first, in pages; by default only
// those still held. A page token is bound to the query it was made for (AIP-158), so it
// cannot silently page another customer's or another filter's list.
import { createHash } from "node:crypto";
import { invalid, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { customerExists } from "../store/catalog-store.js";
import { withSnapshot } from "../store/database.js";
import { type ReservationCursor, type ReservationRow, selectCustomerReservations } from "../store/reservation-store.js";
import type { Deps } from "./context.js";

/** ListReservationsInput is a validated ListReservations request. */
export interface ListReservationsInput {
  customerId: string;
  includeResolved: boolean;
  pageSize: number;
  pageToken: string;
}

const tokenVersion = "r1";

function filterHash(input: ListReservationsInput): string {
  return createHash("sha256").update(JSON.stringify([input.customerId, input.includeResolved])).digest("base64url").slice(0, 16);
}

function encodeToken(input: ListReservationsInput, cursor: ReservationCursor): string {
  return Buffer.from(`${tokenVersion}:${cursor.createdAtMicros}:${cursor.reservationId}:${filterHash(input)}`).toString("base64url");
}

function decodeToken(input: ListReservationsInput): ReservationCursor | null {
  if (input.pageToken === "") return null;
  const [version, micros, reservationId, hash, ...rest] = Buffer.from(input.pageToken, "base64url").toString("utf8").split(":");
  const valid =
    version === tokenVersion &&
    rest.length === 0 &&
    /^(0|[1-9][0-9]{0,17})$/.test(micros ?? "") &&
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(reservationId ?? "") &&
    hash === filterHash(input);
  if (!valid) throw invalid("INVALID_PAGE_TOKEN", "page_token", "not a token from a previous page of this same query");
  return { createdAtMicros: BigInt(micros), reservationId };
}

/** listReservations reads one page of a customer's reservations and the token for the next. */
export async function listReservations(deps: Deps, input: ListReservationsInput): Promise<{ reservations: ReservationRow[]; nextPageToken: string }> {
  assert(input.pageSize > 0, "the page size is decoded");
  const after = decodeToken(input);
  return withSnapshot(deps.pool, async (tx) => {
    if (!(await customerExists(tx, input.customerId))) throw notFound("CUSTOMER_NOT_FOUND", "customer id", input.customerId);
    const rows = await selectCustomerReservations(tx, { customerId: input.customerId, includeResolved: input.includeResolved, after, limit: input.pageSize + 1 });
    const page = rows.slice(0, input.pageSize);
    assert(page.every((row) => row.customerId === input.customerId && (input.includeResolved || row.status === "held")), "a page holds only what was asked for");
    const last = page.at(-1);
    const nextPageToken = rows.length > input.pageSize && last ? encodeToken(input, last) : "";
    return { reservations: page.map(({ createdAtMicros: _, ...reservation }) => reservation), nextPageToken };
  });
}
