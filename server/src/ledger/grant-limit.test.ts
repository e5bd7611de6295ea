import { describe, expect, it } from "vitest";
import { checkGrantLimit, type GrantLimitRule, resolveGrantLimit } from "./grant-limit.js";

const day = 86_400;
const fallback = { perCallMax: 100_000n, periodMax: 1_000_000n, periodSeconds: day };
const rule = (subjectKind: "role" | "key", subject: string, creditTypeId: string, perCallMax: bigint): GrantLimitRule => ({
  subjectKind,
  subject,
  creditTypeId,
  perCallMax,
  periodMax: perCallMax * 10n,
  periodSeconds: day,
});
const rules = [rule("role", "support", "", 100n), rule("role", "support", "ai", 200n), rule("key", "k1", "", 300n), rule("key", "k1", "ai", 400n)];
const grant = (keyId: string, creditTypeId: string, keyPerCallMax = 0n) => ({ keyId, role: "support", creditTypeId, keyPerCallMax });

describe("which grant limit applies", () => {
  it.each([
    ["the key's own limit for the credit type comes first", grant("k1", "ai"), 400n],
    ["then the key's own limit for every type", grant("k1", "api"), 300n],
    ["then the role's limit for the credit type", grant("k2", "ai"), 200n],
    ["then the role's limit for every type", grant("k2", "api"), 100n],
  ])("%s", (_name, which, perCallMax) => {
    expect(resolveGrantLimit(rules, which, fallback).perCallMax).toBe(perCallMax);
  });

  it("with no rule at all the fallback applies: a support key is never unlimited", () => {
    expect(resolveGrantLimit([], grant("k2", "api"), fallback)).toEqual(fallback);
  });

  it("the key's own per-call cap applies on top when lower, never raises the limit", () => {
    expect(resolveGrantLimit(rules, grant("k2", "api", 50n), fallback).perCallMax).toBe(50n);
    expect(resolveGrantLimit(rules, grant("k2", "api", 5_000n), fallback).perCallMax).toBe(100n);
  });
});

describe("whether a grant fits", () => {
  const limit = { perCallMax: 100n, periodMax: 250n, periodSeconds: day };
  it.each([
    ["exactly the per-call maximum fits", 100n, 0n, { kind: "within" }],
    ["one more than the per-call maximum does not", 101n, 0n, { kind: "over_per_call" }],
    ["the period sum up to its maximum fits", 50n, 200n, { kind: "within" }],
    ["past the period maximum does not, saying what was used", 51n, 200n, { kind: "over_period", used: 200n }],
  ])("%s", (_name, amount, used, outcome) => {
    expect(checkGrantLimit(limit, amount, used)).toEqual(outcome);
  });
});
