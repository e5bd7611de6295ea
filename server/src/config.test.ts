// Configuration read from the environment: what BURNDOWN_GRANT_REASON_CODES accepts, and
// that a bad value stops the start with a message naming the setting.
import { describe, expect, it } from "vitest";
import { readFile } from "node:fs/promises";
import { ConfigError, configWarnings, readConfig, settings } from "./config.js";
import { readmePath, withConfigTable } from "./config-doc.js";
import { limits } from "./limits.js";

const codesOf = (value: string | undefined) => readConfig({ BURNDOWN_GRANT_REASON_CODES: value }).grantReasonCodes;

describe("BURNDOWN_GRANT_REASON_CODES", () => {
  it.each([undefined, "", "  "])("unset (%j) is the default list", (value) => {
    expect(codesOf(value)).toEqual(limits.grantReasonCodesDefault);
    expect(limits.grantReasonCodesDefault).toEqual(["goodwill", "service_credit", "promotion", "migration", "sales_deal", "correction"]);
  });

  it("is a comma-separated list of codes, spaces around them ignored, a repeat counted once", () => {
    expect(codesOf("goodwill, outage.credit ,sla-breach,goodwill")).toEqual(["goodwill", "outage.credit", "sla-breach"]);
  });

  it.each([
    ["an uppercase code", "goodwill,Outage"],
    ["an empty code", "goodwill,,outage"],
    ["a trailing comma", "goodwill,"],
    ["a code starting with an underscore", "_goodwill"],
    ["a code of 65 characters", "a".repeat(65)],
    ["a code with a space inside", "good will"],
  ])("refuses %s, naming the setting", (_name, value) => {
    expect(() => codesOf(value)).toThrow(/^BURNDOWN_GRANT_REASON_CODES must be a comma-separated list of codes/);
  });

  it(`refuses more than ${limits.grantReasonCodesMax} codes`, () => {
    const many = Array.from({ length: limits.grantReasonCodesMax + 1 }, (_, i) => `code_${i}`).join(",");
    expect(() => codesOf(many)).toThrow(`BURNDOWN_GRANT_REASON_CODES may list at most ${limits.grantReasonCodesMax} codes`);
    expect(codesOf(many.slice(0, many.lastIndexOf(",")))).toHaveLength(limits.grantReasonCodesMax);
  });
});

describe("webhook settings", () => {
  it("default to a 10 s attempt, 20 attempts and a 7-day credits.expiring window", () => {
    expect(readConfig({}).webhooks).toEqual({ timeoutMs: 10_000, attemptsMax: 20, expiringNoticeMs: 7 * 86_400_000 });
  });

  it("read each setting; 0 days turns credits.expiring off", () => {
    const env = { BURNDOWN_WEBHOOK_TIMEOUT_MS: "2500", BURNDOWN_WEBHOOK_ATTEMPTS: "5", BURNDOWN_CREDITS_EXPIRING_DAYS: "0" };
    expect(readConfig(env).webhooks).toEqual({ timeoutMs: 2_500, attemptsMax: 5, expiringNoticeMs: 0 });
    expect(readConfig({ BURNDOWN_CREDITS_EXPIRING_DAYS: "30" }).webhooks.expiringNoticeMs).toBe(30 * 86_400_000);
  });

  it.each([
    ["BURNDOWN_WEBHOOK_TIMEOUT_MS", "50"],
    ["BURNDOWN_WEBHOOK_TIMEOUT_MS", "1e4"],
    ["BURNDOWN_WEBHOOK_ATTEMPTS", "0"],
    ["BURNDOWN_WEBHOOK_ATTEMPTS", "51"],
    ["BURNDOWN_CREDITS_EXPIRING_DAYS", "-1"],
    ["BURNDOWN_CREDITS_EXPIRING_DAYS", "1.5"],
    ["BURNDOWN_CREDITS_EXPIRING_DAYS", "366"],
  ])("refuses %s=%s, naming the setting and what it allows", (name, value) => {
    expect(() => readConfig({ [name]: value })).toThrow(new RegExp(`^${name} must be an integer from \\d+ to \\d+, got "${value.replace(".", "\\.")}"`));
  });
});

describe("BURNDOWN_CHECKOUT_URL", () => {
  it("is unset by default: the customer view sells nothing itself", () => {
    expect(readConfig({}).checkoutUrl).toBeNull();
    expect(readConfig({ BURNDOWN_CHECKOUT_URL: " " }).checkoutUrl).toBeNull();
  });

  it("is an http(s) URL with {order_id} in it", () => {
    const url = "https://shop.example/pay?order={order_id}&who={customer_id}";
    expect(readConfig({ BURNDOWN_CHECKOUT_URL: url }).checkoutUrl).toBe(url);
  });

  it.each([
    ["no {order_id}", "https://shop.example/pay"],
    ["not http", "javascript:alert(1)//{order_id}"],
    ["not a URL", "shop.example/pay/{order_id}"],
    ["too long", `https://shop.example/${"a".repeat(2_000)}{order_id}`],
  ])("refuses %s, naming the setting", (_name, value) => {
    expect(() => readConfig({ BURNDOWN_CHECKOUT_URL: value })).toThrow(/^BURNDOWN_CHECKOUT_URL must be an http or https URL/);
  });
});

describe("BURNDOWN_CORS_ORIGINS", () => {
  it("is unset by default: no origin may call from a browser page", () => {
    expect(readConfig({}).corsOrigins).toEqual([]);
    expect(readConfig({ BURNDOWN_CORS_ORIGINS: " " }).corsOrigins).toEqual([]);
  });

  it("is a comma-separated list of origins as browsers send them, a repeat counted once", () => {
    expect(readConfig({ BURNDOWN_CORS_ORIGINS: "https://app.example.com, http://localhost:5173,https://app.example.com" }).corsOrigins).toEqual(["https://app.example.com", "http://localhost:5173"]);
  });

  it.each([
    ["a wildcard", "*"],
    ["a trailing slash", "https://app.example.com/"],
    ["a path", "https://app.example.com/app"],
    ["no scheme", "app.example.com"],
    ["another scheme", "ftp://app.example.com"],
    ["an uppercase host (browsers send it lowercase)", "https://App.example.com"],
    ["a default port written out (browsers leave it out)", "https://app.example.com:443"],
  ])("refuses %s, naming the setting", (_name, value) => {
    expect(() => readConfig({ BURNDOWN_CORS_ORIGINS: value })).toThrow(/BURNDOWN_CORS_ORIGINS: .* is not an origin as browsers send it/);
  });

  it("refuses more than 50 origins", () => {
    const many = Array.from({ length: 51 }, (_, i) => `https://app${i}.example.com`).join(",");
    expect(() => readConfig({ BURNDOWN_CORS_ORIGINS: many })).toThrow(/at most 50/);
  });
});

describe("BURNDOWN_RECHARGE_RETRY_DELAYS_MS", () => {
  const delaysOf = (value: string | undefined) => readConfig({ BURNDOWN_RECHARGE_RETRY_DELAYS_MS: value }).rechargeRetryDelaysMs;

  it("unset is 1 h, 6 h and 24 h; a list replaces it", () => {
    expect(delaysOf(undefined)).toEqual([3_600_000, 21_600_000, 86_400_000]);
    expect(delaysOf("60000, 120000")).toEqual([60_000, 120_000]);
  });

  it.each([
    ["a delay under a second", "999"],
    ["a word", "1h"],
    ["an empty delay", "60000,,60000"],
    ["eleven delays", Array.from({ length: 11 }, () => "60000").join(",")],
  ])("refuses %s, naming the setting", (_name, value) => {
    expect(() => delaysOf(value)).toThrow(/^BURNDOWN_RECHARGE_RETRY_DELAYS_MS must list 1 to 10 delays/);
  });
});

describe("BURNDOWN_GRANT_REQUEST_TTL_MINUTES", () => {
  const ttlOf = (value: string | undefined) => readConfig({ BURNDOWN_GRANT_REQUEST_TTL_MINUTES: value }).grantRequestTtlMs;

  it("is 7 days by default; a number of minutes replaces it", () => {
    expect(ttlOf(undefined)).toBe(7 * 86_400_000);
    expect(ttlOf("60")).toBe(3_600_000);
  });

  it.each(["0", "-5", "abc", String(91 * 24 * 60)])("refuses %s", (value) => {
    expect(() => ttlOf(value)).toThrow(/^BURNDOWN_GRANT_REQUEST_TTL_MINUTES must be an integer from 1 to 129600/);
  });
});

describe("every bad value at once", () => {
  const problemsOf = (env: NodeJS.ProcessEnv): readonly string[] => {
    try {
      readConfig(env);
    } catch (error) {
      if (error instanceof ConfigError) return error.problems;
      throw error;
    }
    return [];
  };

  it("reports one problem per bad value, each naming the variable, the value and what is allowed", () => {
    const problems = problemsOf({
      PORT: "http",
      BURNDOWN_WRITE_LANES: "3",
      BURNDOWN_CUSTOMER_PARTITIONS: "2",
      BURNDOWN_QUEUE_WAIT_MS: "-1",
      BURNDOWN_CHECKOUT_URL: "ftp://shop.example/{order_id}",
      REDIS_URL: "http://cache:6379",
      BURNDOWN_TEST_ONLY_ALLOW_UNSAFE_DURABILITY: "yes",
    });
    // In the order the server reads them.
    expect(problems).toEqual([
      "BURNDOWN_WRITE_LANES (3) must be a multiple of BURNDOWN_CUSTOMER_PARTITIONS (2)",
      'PORT must be a port number (0-65535), got "http"',
      'REDIS_URL must be a redis:// or rediss:// URL, got a value starting "http"',
      expect.stringMatching(/^BURNDOWN_CHECKOUT_URL must be an http or https URL .*got "ftp:/),
      'BURNDOWN_TEST_ONLY_ALLOW_UNSAFE_DURABILITY must be 1 or unset, got "yes"',
      'BURNDOWN_QUEUE_WAIT_MS must be an integer from 0 to 60000, got "-1"',
    ]);
    expect(() => readConfig({ PORT: "http", BURNDOWN_QUEUE_WAIT_MS: "-1" })).toThrow(ConfigError);
  });

  it("checks values that only make sense together", () => {
    expect(problemsOf({ PORT: "7000", GRPC_PORT: "7000" })).toEqual(["PORT and GRPC_PORT must differ (HTTP/1.1 and gRPC listen apart), both are 7000"]);
    expect(problemsOf({ PORT: "0", GRPC_PORT: "0" })).toEqual([]);
    expect(problemsOf({ BURNDOWN_MIGRATION_DATABASE_URL: "postgres://owner@db/burndown" })).toEqual([
      "BURNDOWN_MIGRATION_DATABASE_URL needs DATABASE_URL (the embedded database sets up its own roles)",
    ]);
  });

  it("never repeats a secret it refuses", () => {
    const secret = "bd_0123456789abcdef0123_notquiteakey";
    const problems = problemsOf({ BURNDOWN_ADMIN_KEY: secret, DATABASE_URL: "mysql://root:hunter2@db/ledger", BURNDOWN_STRIPE_WEBHOOK_SECRET: "sk_live_hunter2" });
    expect(problems).toHaveLength(3);
    expect(problems.join("\n")).not.toMatch(/notquiteakey|hunter2/);
    expect(problems[0]).toMatch(/^DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL/);
  });

  it("accepts what the defaults and the documented forms are", () => {
    expect(problemsOf({})).toEqual([]);
    const config = readConfig({
      DATABASE_URL: "postgresql://burndown_server:pw@db:5432/burndown",
      REDIS_URL: "rediss://cache:6380",
      HOST: "::",
      BURNDOWN_ADMIN_KEY: `bd_${"a".repeat(20)}_${"B".repeat(43)}`,
      BURNDOWN_JOB_INTERVAL_MS: "0",
    });
    expect(config).toMatchObject({ databaseUrl: "postgresql://burndown_server:pw@db:5432/burndown", redisUrl: "rediss://cache:6380", host: "::", jobIntervalMs: 0 });
  });
});

describe("the configuration table", () => {
  it("is what README.md shows (npm run docs:config writes it)", async () => {
    const readme = await readFile(readmePath, "utf8");
    expect(readme, "README.md's configuration table is out of date: run npm run docs:config").toBe(withConfigTable(readme));
  });

  it("lists exactly the variables the server reads", () => {
    const read = new Set<string>();
    const env = new Proxy({} as NodeJS.ProcessEnv, {
      get: (_target, name) => {
        if (typeof name === "string") read.add(name);
        return undefined;
      },
    });
    readConfig(env);
    expect([...read].sort()).toEqual(settings.map((setting) => setting.name).sort());
  });

  it("warns about a variable that looks like a misspelt setting, and only then", () => {
    expect(configWarnings({ BURNDOWN_WRITE_LANE: "1", BURNDOWN_FUZZ_SEED: "7", PATH: "/bin", BURNDOWN_WRITE_LANES: "2" })).toEqual([
      "BURNDOWN_WRITE_LANE is not a setting and is ignored: did you mean BURNDOWN_WRITE_LANES?",
    ]);
  });
});
