// The delivery worker's pure parts: the retry schedule (doubling, capped, jittered in its
// upper half) and the signature a receiver recomputes.
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { limits } from "../limits.js";
import { signWebhook, webhookBodyOf } from "../service/webhook-signature.js";
import { retryDelayMs, webhookPolicyOf } from "./webhook-delivery.js";

const policy = webhookPolicyOf({ retryBaseMs: 1_000 });

describe("retryDelayMs", () => {
  it.each([
    { name: "the first retry waits between half and all of the base", attempt: 1, low: 500, high: 1_000 },
    { name: "each attempt doubles the ceiling", attempt: 4, low: 4_000, high: 8_000 },
    { name: "the ceiling stops at webhookRetryDelayMsMax", attempt: 40, low: limits.webhookRetryDelayMsMax / 2, high: limits.webhookRetryDelayMsMax },
  ])("$name", ({ attempt, low, high }) => {
    expect(retryDelayMs(policy, attempt, () => 0)).toBe(low);
    expect(retryDelayMs(policy, attempt, () => 0.999_999)).toBeLessThanOrEqual(high);
    expect(retryDelayMs(policy, attempt, () => 0.999_999)).toBeGreaterThan(high * 0.999);
  });

  it("the default attempts wait at most about a day and a half in all", () => {
    const totalMs = Array.from({ length: limits.webhookAttemptsMaxDefault - 1 }, (_, i) => retryDelayMs(webhookPolicyOf(), i + 1, () => 1)).reduce((a, b) => a + b, 0);
    expect(totalMs / 3_600_000).toBeGreaterThan(30);
    expect(totalMs / 3_600_000).toBeLessThan(40);
  });
});

describe("signWebhook", () => {
  it('is "v1=" and the hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret', () => {
    const body = webhookBodyOf({ eventId: "e1", type: "grant.created", customerId: "acme", payload: { amount: "5" }, createdAt: new Date("2030-01-01T00:00:00Z") });
    expect(JSON.parse(body)).toEqual({ id: "e1", type: "grant.created", createTime: "2030-01-01T00:00:00.000Z", customerId: "acme", data: { amount: "5" } });
    const expected = createHmac("sha256", "whsec_test").update(`1893456000.${body}`).digest("hex");
    expect(signWebhook("whsec_test", 1_893_456_000, body)).toBe(`v1=${expected}`);
    expect(signWebhook("whsec_test", 1_893_456_001, body)).not.toBe(`v1=${expected}`);
  });
});
