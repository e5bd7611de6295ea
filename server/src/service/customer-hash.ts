// Customers are spread over write lanes and customer-hash partitions by one stable hash of
// their id. A reservation id carries its customer's hash, so that a Commit or Release,
// which names only the reservation, joins its customer's lane without a read first.
import { randomBytes } from "node:crypto";

/** customerHash is a stable 32-bit hash of a customer id: FNV-1a over its UTF-8 bytes. */
export function customerHash(customerId: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(customerId, "utf8")) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/**
 * reservationIdFor makes a reservation id that carries its customer's hash: a UUID of
 * version 8 (RFC 9562's custom layout) whose first 32 bits are the hash and whose other
 * 90 free bits are random.
 */
export function reservationIdFor(customerId: string): string {
  const bytes = randomBytes(16);
  bytes.writeUInt32BE(customerHash(customerId), 0);
  bytes[6] = (bytes[6] & 0x0f) | 0x80;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** customerHashOfReservation reads the hash a reservation id carries, or null for an id not made by reservationIdFor. */
export function customerHashOfReservation(reservationId: string): number | null {
  if (reservationId.length !== 36 || reservationId[14] !== "8") return null;
  const hash = Number.parseInt(reservationId.slice(0, 8), 16);
  return Number.isNaN(hash) ? null : hash;
}
