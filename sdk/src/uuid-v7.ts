// Request ids and event ids: UUIDv7 (RFC 9562), a millisecond timestamp and then random
// bits, so ids made close in time sort and index close together. The random bits are
// node:crypto's randomUUID, which draws from a cached pool of random bytes; the uuid
// package's v7 fetched 16 fresh bytes (crypto.getRandomValues) for every id and took
// several times the CPU. Ids made in one millisecond are not ordered among themselves
// (RFC 9562 makes that optional); nothing here relies on it.
import { randomUUID } from "node:crypto";

let prefixMs = -1;
let prefix = "";

/** uuidV7 returns a new UUIDv7 in its canonical text form. */
export function uuidV7(): string {
  const nowMs = Date.now();
  if (nowMs !== prefixMs) {
    const time = nowMs.toString(16).padStart(12, "0");
    prefix = `${time.slice(0, 8)}-${time.slice(8)}-7`;
    prefixMs = nowMs;
  }
  // randomUUID's layout is xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx with RFC 9562's variant bits in V:
  // its first 48 bits give way to the timestamp and its version nibble to 7.
  return prefix + randomUUID().slice(15);
}
