// Request and event ids: UUIDv7 with the current millisecond in front, fresh every time.
import { describe, expect, it } from "vitest";
import { uuidV7 } from "../src/uuid-v7.js";

const uuidv7Pattern = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("uuidV7", () => {
  it("is a UUIDv7 whose first 48 bits are the millisecond it was made", () => {
    const beforeMs = Date.now();
    const id = uuidV7();
    const afterMs = Date.now();
    expect(id).toMatch(uuidv7Pattern);
    const timeMs = parseInt(id.replaceAll("-", "").slice(0, 12), 16);
    expect(timeMs).toBeGreaterThanOrEqual(beforeMs);
    expect(timeMs).toBeLessThanOrEqual(afterMs);
  });

  it("never repeats, also within one millisecond", () => {
    const ids = Array.from({ length: 10_000 }, () => uuidV7());
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(uuidv7Pattern);
  });
});
