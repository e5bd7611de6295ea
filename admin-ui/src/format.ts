// Amounts are int64 in the smallest unit: bigint end to end, shown with the credit
// type's scale (scale 2: 12345n is "123.45"). Never a number, never a float.

/** formatAmount writes an amount at a scale, with thousands separators: 1234567n, 2 → "12,345.67". */
export function formatAmount(amount: bigint, scale = 0): string {
  const negative = amount < 0n;
  const digits = (negative ? -amount : amount).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const fraction = scale > 0 ? `.${digits.slice(digits.length - scale)}` : "";
  return `${negative ? "-" : ""}${whole}${fraction}`;
}

/**
 * parseAmount reads what a person typed ("1,250.5" at scale 2 is 125050n). It refuses
 * more decimals than the scale allows rather than rounding money.
 */
export function parseAmount(text: string, scale = 0): bigint {
  const cleaned = text.trim().replace(/[,_\s]/g, "");
  const match = /^(-?)(\d*)(?:\.(\d*))?$/.exec(cleaned);
  if (match === null || (match[2] === "" && (match[3] ?? "") === "")) throw new Error("Enter a number, such as 1,000 or 12.50.");
  const fraction = match[3] ?? "";
  if (fraction.length > scale) {
    throw new Error(scale === 0 ? "This credit type has no fractional units." : `At most ${scale} decimal places for this credit type.`);
  }
  const units = BigInt(`${match[2] || "0"}${fraction.padEnd(scale, "0")}`);
  return match[1] === "-" ? -units : units;
}

const dateFormat = new Intl.DateTimeFormat("en-US", { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" });
const timeFormat = new Intl.DateTimeFormat("en-US", { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false, timeZone: "UTC" });

/** formatDate is a day ("Jan 31, 2027"), in UTC like the ledger's days. */
export function formatDate(date: Date | undefined): string {
  return date === undefined ? "never" : dateFormat.format(date);
}

/** formatTime is a moment to the second, UTC. */
export function formatTime(date: Date | undefined): string {
  return date === undefined ? "" : `${timeFormat.format(date)} UTC`;
}

/** Lot-like: what expirySummary needs of a lot. */
export interface Expiring {
  remaining: bigint;
  expireTime?: { seconds: bigint; nanos: number };
}

/**
 * expirySummary groups what is left of the lots by expiry day, soonest first, never last:
 * "500 expiring Jan 31, 2027 · 1,000 never expiring".
 */
export function expirySummary(lots: Expiring[], scale: number): { label: string; amount: bigint; expireTime?: Date }[] {
  const byDay = new Map<string, { amount: bigint; expireTime?: Date }>();
  for (const lot of lots) {
    if (lot.remaining <= 0n) continue;
    const expireTime = dateOf(lot.expireTime);
    const key = expireTime === undefined ? "never" : expireTime.toISOString().slice(0, 10);
    const entry = byDay.get(key) ?? { amount: 0n, expireTime };
    entry.amount += lot.remaining;
    if (entry.expireTime !== undefined && expireTime !== undefined && expireTime < entry.expireTime) entry.expireTime = expireTime;
    byDay.set(key, entry);
  }
  return [...byDay.entries()]
    .sort(([a], [b]) => (a === "never" ? 1 : b === "never" ? -1 : a.localeCompare(b)))
    .map(([key, { amount, expireTime }]) => ({
      label: `${formatAmount(amount, scale)} ${key === "never" ? "never expiring" : `expiring ${formatDate(expireTime)}`}`,
      amount,
      expireTime,
    }));
}

/** dateOf converts a protobuf Timestamp (or none) to a Date (or undefined). */
export function dateOf(timestamp: { seconds: bigint; nanos: number } | undefined): Date | undefined {
  if (timestamp === undefined) return undefined;
  return new Date(Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1_000_000));
}

/** formatPrice shows an amount of money in minor units in its currency: "25.00 USD", "500 JPY". */
export function formatPrice(minor: bigint, currency: string): string {
  const zeroDecimal = new Set(["JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF", "PYG", "RWF"]);
  return `${formatAmount(minor, zeroDecimal.has(currency) ? 0 : 2)} ${currency}`;
}

/**
 * formatMicros writes micro-units exactly as a decimal of whole units, without trailing
 * zeros: 10_000_000_000n is "10,000" and 1_234_500n is "1.2345". Never a float.
 */
export function formatMicros(micros: bigint): string {
  const [whole, fraction] = formatAmount(micros, 6).split(".");
  const kept = fraction.replace(/0+$/, "");
  return kept === "" ? whole : `${whole}.${kept}`;
}
