// Stored results keep their bigints and dates exactly: JSON with tagged values.

/** encodeResult serializes a service result, keeping bigint and Date values exact. */
export function encodeResult(value: unknown): Uint8Array {
  const text = JSON.stringify(value, function replacer(this: Record<string, unknown>, key, current) {
    const raw = this[key];
    if (typeof raw === "bigint") return { $bigint: raw.toString() };
    if (raw instanceof Date) return { $date: raw.toISOString() };
    return current;
  });
  return Buffer.from(text, "utf8");
}

/** decodeResult reverses encodeResult. */
export function decodeResult<T>(bytes: Uint8Array): T {
  return JSON.parse(Buffer.from(bytes).toString("utf8"), (_key, value) => {
    if (value !== null && typeof value === "object") {
      if (typeof value.$bigint === "string") return BigInt(value.$bigint);
      if (typeof value.$date === "string") return new Date(value.$date);
    }
    return value;
  }) as T;
}
