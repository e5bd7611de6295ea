// Pricing versions, rate overrides and enforcement switches, end to end over a real
// server and PostgreSQL: versions with fractional rates, default pinning and
// grandfathering, cohort moves, overrides, enforcement modes and the kill switch, each
// audited in its own transaction; pricing immutability in the database itself; bad
// input that changes nothing; and replays that return the first result.
import { randomBytes, randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { type AuditRecord, EnforcementMode, errorInfoOf, GrantSource } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectRates, selectSetting } from "../src/store/rate-store.js";
import { invariantViolations } from "../../test-support/invariants.js";
import { databaseSnapshot, errorOf } from "../../test-support/snapshot.js";
import { type Clients, startTestServer, type TestServer } from "../../test-support/server.js";

const creditTypeId = "api_credits";

let t: TestServer;
let c: Clients;
let adminKeyId: string;
/** customers created before any default version exists: the "base" cohort. */
const baseCustomers: string[] = [];

/** fresh makes a unique, valid id or code with a prefix. */
const fresh = (prefix: string) => `${prefix}_${randomBytes(5).toString("hex")}`;

async function createFeature(burnRate = 10n): Promise<string> {
  const featureKey = fresh("feature");
  await c.admin.createFeature({ feature: { featureKey, displayName: "Feature", creditTypeId, burnRate }, requestId: randomUUID() });
  return featureKey;
}

async function createVersion(rates: { featureKey: string; credits: bigint; perUnits: bigint }[] = [], makeDefault = false): Promise<string> {
  const pricingVersionId = fresh("pv");
  await c.admin.createPricingVersion({
    pricingVersion: { pricingVersionId, displayName: "Version", rates: rates.map(({ featureKey, credits, perUnits }) => ({ featureKey, rate: { credits, perUnits } })) },
    makeDefault,
    requestId: randomUUID(),
  });
  return pricingVersionId;
}

async function createCustomer(): Promise<string> {
  const customerId = fresh("cust");
  await c.admin.createCustomer({ customer: { customerId, displayName: "Customer" }, requestId: randomUUID() });
  return customerId;
}

async function pinOf(customerId: string): Promise<string> {
  return (await c.admin.getCustomer({ customerId })).customer!.pricingVersionId;
}

/** latestAudit reads the newest audit record, with its details parsed. */
async function latestAudit(): Promise<AuditRecord & { details: Record<string, unknown> }> {
  const res = await c.admin.listAuditRecords({ pageSize: 1 });
  expect(res.auditRecords).toHaveLength(1);
  return { ...res.auditRecords[0], details: JSON.parse(res.auditRecords[0].detailsJson) };
}

async function auditCount(): Promise<number> {
  return (await t.database.pool.query("select count(*)::int as n from audit_log")).rows[0].n;
}

/** snapshot extends the shared snapshot with every table these RPCs write. */
async function snapshot(): Promise<Record<string, unknown>> {
  const rows = async (sql: string) => (await t.database.pool.query(sql)).rows;
  return {
    ...(await databaseSnapshot(t.database.pool)),
    versions: await rows("select pricing_version_id, display_name from pricing_versions order by 1"),
    rates: await rows("select pricing_version_id, feature_key, credits, per_units from pricing_rates order by 1, 2"),
    pins: await rows("select customer_id, pricing_version_id from customers order by 1"),
    overrides: await rows("select customer_id, feature_key, credits, per_units from rate_overrides order by 1, 2"),
    settings: await rows("select key, value from settings order by 1"),
    modes: await rows("select feature_key, enforcement_mode from features order by 1"),
    audit: await rows("select count(*)::int as n from audit_log"),
  };
}

beforeAll(async () => {
  t = await startTestServer();
  c = t.clients(t.adminToken);
  adminKeyId = /^bd_([0-9a-f]{20})_/.exec(t.adminToken)![1];
  await c.admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 2 }, requestId: randomUUID() });
  // No default version exists yet, so these are pinned to none: the base cohort.
  for (let index = 0; index < 3; index++) baseCustomers.push(await createCustomer());
});
afterAll(async () => {
  await t?.close();
});

describe("pricing versions", () => {
  it("a version with fractional rates is stored exactly, listed in creation order, and is what its customers are rated by", async () => {
    const chat = await createFeature(3n);
    const image = await createFeature(10n);
    const first = await createVersion([{ featureKey: chat, credits: 1n, perUnits: 1n }]);
    const pricingVersionId = fresh("pv");
    const res = await c.admin.createPricingVersion({
      pricingVersion: {
        pricingVersionId,
        displayName: "2030 prices",
        rates: [
          { featureKey: image, rate: { credits: 0n, perUnits: 0n } },
          { featureKey: chat, rate: { credits: 2n, perUnits: 5n } },
        ],
      },
      requestId: randomUUID(),
    });
    // 0.4 credit per call is 2 per 5; per_units 0 means 1; rates come back by feature key.
    const expected = [
      [chat, 2n, 5n],
      [image, 0n, 1n],
    ].sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    expect(res.pricingVersion?.displayName).toBe("2030 prices");
    expect(res.pricingVersion?.createTime).toBeDefined();
    expect(res.pricingVersion?.rates.map((rate) => [rate.featureKey, rate.rate?.credits, rate.rate?.perUnits])).toEqual(expected);

    const listed = await c.admin.listPricingVersions({});
    const ids = listed.pricingVersions.map((version) => version.pricingVersionId);
    expect(ids.indexOf(first)).toBeLessThan(ids.indexOf(pricingVersionId));
    expect(listed.pricingVersions.find((version) => version.pricingVersionId === pricingVersionId)).toEqual(res.pricingVersion);
    expect(listed.defaultPricingVersionId).toBe("");

    const customerId = baseCustomers[0];
    await c.admin.moveCustomersToPricingVersion({ toPricingVersionId: pricingVersionId, customerIds: [customerId], reason: "try 2030 prices", requestId: randomUUID() });
    const [rate] = await selectRates(t.database.pool, [{ customerId, featureKey: chat }]);
    expect(rate).toMatchObject({ credits: 2n, perUnits: 5n, pricingVersionId, override: false });
    baseCustomers.shift();
  });

  it("a version's rates and row cannot be changed, added to, deleted or truncated, even with direct SQL", async () => {
    const chat = await createFeature();
    const pricingVersionId = await createVersion([{ featureKey: chat, credits: 4n, perUnits: 3n }]);
    const pool = t.database.pool;
    const statements = [
      ["update pricing_rates set credits = 1 where pricing_version_id = $1", [pricingVersionId]],
      ["delete from pricing_rates where pricing_version_id = $1", [pricingVersionId]],
      ["update pricing_versions set display_name = 'changed' where pricing_version_id = $1", [pricingVersionId]],
      ["delete from pricing_versions where pricing_version_id = $1", [pricingVersionId]],
    ] as const;
    for (const [sql, values] of statements) {
      await expect(pool.query(sql, [...values]), sql).rejects.toThrow(/pricing versions are immutable/);
    }
    const other = await createFeature();
    await expect(pool.query("insert into pricing_rates values ($1, $2, 1, 1)", [pricingVersionId, other])).rejects.toThrow(/is published: its rates cannot change/);
    for (const table of ["pricing_rates", "pricing_versions"]) {
      await expect(pool.query(`truncate ${table} cascade`), table).rejects.toThrow(/pricing versions are immutable/);
    }
    const listed = await c.admin.listPricingVersions({});
    const version = listed.pricingVersions.find((candidate) => candidate.pricingVersionId === pricingVersionId);
    expect(version?.displayName).toBe("Version");
    expect(version?.rates.map((rate) => [rate.featureKey, rate.rate?.credits, rate.rate?.perUnits])).toEqual([[chat, 4n, 3n]]);
  });

  it("a version of exactly 1,000 rates is accepted", async () => {
    // ListFeatures returns at most 1,000 features by key, so these sort after every other.
    const prefix = fresh("zz_bulk");
    await t.database.pool.query(
      "insert into features (feature_key, display_name, credit_type_id, burn_rate) select $1 || '_' || g, 'Bulk', $2, 1 from generate_series(1, 1000) as g",
      [prefix, creditTypeId],
    );
    const rates = Array.from({ length: 1_000 }, (_, index) => ({ featureKey: `${prefix}_${index + 1}`, rate: { credits: BigInt(index), perUnits: 7n } }));
    const res = await c.admin.createPricingVersion({ pricingVersion: { pricingVersionId: fresh("pv"), rates }, requestId: randomUUID() });
    expect(res.pricingVersion?.rates).toHaveLength(1_000);
  });
});

describe("default pinning", () => {
  it("customers are pinned to the default when created, by CreateCustomer or by Grant, and keep their version when it changes", async () => {
    const early = await createCustomer();
    expect(await pinOf(early)).toBe("");

    const first = await createVersion([], true);
    expect(await selectSetting(t.database.pool, "default_pricing_version_id")).toBe(first);
    expect(await latestAudit()).toMatchObject({
      actor: adminKeyId,
      action: "set_default_pricing_version",
      target: `pricing_version:${first}`,
      reason: "",
      details: { old: null, new: first, via: "create_pricing_version" },
    });
    const onFirst = await createCustomer();
    const granted = fresh("cust");
    await c.ledger.grant({ customerId: granted, creditTypeId, amount: 100n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
    expect(await pinOf(onFirst)).toBe(first);
    expect(await pinOf(granted)).toBe(first);

    const second = await createVersion();
    const res = await c.admin.setDefaultPricingVersion({ pricingVersionId: second, reason: "2031 price list", requestId: randomUUID() });
    expect(res.pricingVersionId).toBe(second);
    expect((await c.admin.listPricingVersions({})).defaultPricingVersionId).toBe(second);
    expect(await latestAudit()).toMatchObject({
      actor: adminKeyId,
      action: "set_default_pricing_version",
      target: `pricing_version:${second}`,
      reason: "2031 price list",
      details: { old: first, new: second, via: "set_default_pricing_version" },
    });

    const onSecond = await createCustomer();
    expect(await pinOf(onSecond)).toBe(second);
    // Grandfathering: nobody already pinned moves with the default.
    expect(await pinOf(early)).toBe("");
    expect(await pinOf(onFirst)).toBe(first);
    expect(await pinOf(granted)).toBe(first);
  });
});

describe("cohort moves", () => {
  it("moving the base cohort (empty from) re-pins every customer on no version, and is audited", async () => {
    const pool = t.database.pool;
    const baseCount = (await pool.query("select count(*)::int as n from customers where pricing_version_id is null")).rows[0].n;
    expect(baseCount).toBeGreaterThanOrEqual(baseCustomers.length);
    const target = await createVersion();
    const res = await c.admin.moveCustomersToPricingVersion({ toPricingVersionId: target, reason: "retire base rates", requestId: randomUUID() });
    expect(res.movedCount).toBe(BigInt(baseCount));
    expect((await pool.query("select count(*)::int as n from customers where pricing_version_id is null")).rows[0].n).toBe(0);
    for (const customerId of baseCustomers) expect(await pinOf(customerId)).toBe(target);
    expect(await latestAudit()).toMatchObject({
      actor: adminKeyId,
      action: "move_customers_to_pricing_version",
      target: `pricing_version:${target}`,
      reason: "retire base rates",
      details: { old: null, new: target, customer_ids: [], moved_count: String(baseCount) },
    });
  });

  it("moving a whole cohort moves only the customers on the from version", async () => {
    const from = await createVersion();
    const to = await createVersion();
    const cohort = [await createCustomer(), await createCustomer()];
    await c.admin.moveCustomersToPricingVersion({ toPricingVersionId: from, fromPricingVersionId: await pinOf(cohort[0]), customerIds: cohort, reason: "setup", requestId: randomUUID() });
    const bystander = await createCustomer();
    const bystanderPin = await pinOf(bystander);
    const res = await c.admin.moveCustomersToPricingVersion({ fromPricingVersionId: from, toPricingVersionId: to, reason: "upgrade cohort", requestId: randomUUID() });
    expect(res.movedCount).toBe(2n);
    for (const customerId of cohort) expect(await pinOf(customerId)).toBe(to);
    expect(await pinOf(bystander)).toBe(bystanderPin);
    expect((await latestAudit()).details).toEqual({ old: from, new: to, customer_ids: [], moved_count: "2" });
  });

  it("moving a subset by id moves only the named customers of the cohort; others named are skipped", async () => {
    const from = await createVersion();
    const to = await createVersion();
    const cohort = [await createCustomer(), await createCustomer(), await createCustomer()];
    await c.admin.moveCustomersToPricingVersion({ fromPricingVersionId: await pinOf(cohort[0]), toPricingVersionId: from, customerIds: cohort, reason: "setup", requestId: randomUUID() });
    const elsewhere = await createCustomer();
    const elsewherePin = await pinOf(elsewhere);
    const named = [cohort[0], cohort[2], elsewhere, fresh("nobody")];
    const res = await c.admin.moveCustomersToPricingVersion({ fromPricingVersionId: from, toPricingVersionId: to, customerIds: named, reason: "pilot", requestId: randomUUID() });
    expect(res.movedCount).toBe(2n);
    expect([await pinOf(cohort[0]), await pinOf(cohort[1]), await pinOf(cohort[2]), await pinOf(elsewhere)]).toEqual([to, from, to, elsewherePin]);
    expect(await latestAudit()).toMatchObject({
      actor: adminKeyId,
      action: "move_customers_to_pricing_version",
      target: `pricing_version:${to}`,
      reason: "pilot",
      details: { old: from, new: to, customer_ids: named, moved_count: "2" },
    });
  });
});

describe("rate overrides", () => {
  it("an override replaces the version's rate for one customer, and clearing it restores the version's rate; each change is audited", async () => {
    const chat = await createFeature(3n);
    const version = await createVersion([{ featureKey: chat, credits: 2n, perUnits: 5n }]);
    const customerId = await createCustomer();
    await c.admin.moveCustomersToPricingVersion({ fromPricingVersionId: await pinOf(customerId), toPricingVersionId: version, customerIds: [customerId], reason: "setup", requestId: randomUUID() });
    const rateOf = async () => (await selectRates(t.database.pool, [{ customerId, featureKey: chat }]))[0];

    const set = await c.admin.setRateOverride({ customerId, featureKey: chat, rate: { credits: 3n, perUnits: 7n }, reason: "enterprise deal", requestId: randomUUID() });
    expect(set.rate).toMatchObject({ credits: 3n, perUnits: 7n });
    expect(await rateOf()).toMatchObject({ credits: 3n, perUnits: 7n, override: true, pricingVersionId: null });
    expect(await latestAudit()).toMatchObject({
      actor: adminKeyId,
      action: "set_rate_override",
      target: `customer:${customerId}`,
      reason: "enterprise deal",
      details: { feature_key: chat, old: null, new: { credits: "3", per_units: "7" } },
    });

    const changed = await c.admin.setRateOverride({ customerId, featureKey: chat, rate: { credits: 1n, perUnits: 0n }, reason: "renegotiated", requestId: randomUUID() });
    expect(changed.rate).toMatchObject({ credits: 1n, perUnits: 1n });
    expect((await latestAudit()).details).toEqual({ feature_key: chat, old: { credits: "3", per_units: "7" }, new: { credits: "1", per_units: "1" } });

    const cleared = await c.admin.setRateOverride({ customerId, featureKey: chat, reason: "deal ended", requestId: randomUUID() });
    expect(cleared.rate).toBeUndefined();
    expect(await rateOf()).toMatchObject({ credits: 2n, perUnits: 5n, override: false, pricingVersionId: version });
    expect((await t.database.pool.query("select count(*)::int as n from rate_overrides where customer_id = $1", [customerId])).rows[0].n).toBe(0);
    expect(await latestAudit()).toMatchObject({ reason: "deal ended", details: { feature_key: chat, old: { credits: "1", per_units: "1" }, new: null } });
  });
});

describe("enforcement switches", () => {
  it("SetEnforcementMode changes a feature's mode, visible in ListFeatures, and audits old and new", async () => {
    const featureKey = await createFeature();
    const modeOf = async () => (await c.admin.listFeatures({})).features.find((feature) => feature.featureKey === featureKey)?.enforcementMode;
    expect(await modeOf()).toBe(EnforcementMode.ENFORCE);
    const steps = [
      [EnforcementMode.OBSERVE, "enforce", "observe"],
      [EnforcementMode.OFF, "observe", "off"],
      [EnforcementMode.ENFORCE, "off", "enforce"],
    ] as const;
    for (const [mode, old, now] of steps) {
      const res = await c.admin.setEnforcementMode({ featureKey, mode, reason: `to ${now}`, requestId: randomUUID() });
      expect(res.feature).toMatchObject({ featureKey, enforcementMode: mode, burnRate: 10n, creditTypeId });
      expect(await modeOf()).toBe(mode);
      expect(await latestAudit()).toMatchObject({
        actor: adminKeyId,
        action: "set_enforcement_mode",
        target: `feature:${featureKey}`,
        reason: `to ${now}`,
        details: { old, new: now },
      });
    }
  });

  it("SetKillSwitch turns enforcement off everywhere and back on, and audits old and new", async () => {
    const on = await c.admin.setKillSwitch({ enabled: true, reason: "incident 42", requestId: randomUUID() });
    expect(on.enabled).toBe(true);
    expect(await selectSetting(t.database.pool, "kill_switch")).toBe("on");
    expect(await latestAudit()).toMatchObject({ actor: adminKeyId, action: "set_kill_switch", target: "kill_switch", reason: "incident 42", details: { old: false, new: true } });

    const off = await c.admin.setKillSwitch({ enabled: false, reason: "incident 42 resolved", requestId: randomUUID() });
    expect(off.enabled).toBe(false);
    expect(await selectSetting(t.database.pool, "kill_switch")).toBe("off");
    expect(await latestAudit()).toMatchObject({ reason: "incident 42 resolved", details: { old: true, new: false } });
  });
});

describe("concurrent changes", () => {
  /** auditChain reads the details of a target's audit records in the order they were written. */
  async function auditChain(target: string, after: number): Promise<{ old: unknown; new: unknown }[]> {
    const result = await t.database.pool.query("select details from audit_log where target = $1 and audit_id > $2 order by audit_id", [target, after]);
    return result.rows.map((row) => row.details);
  }

  it("racing changes of one mode or switch each audit the value they replaced: every old is the new before it", async () => {
    const featureKey = await createFeature();
    const after = (await t.database.pool.query("select coalesce(max(audit_id), 0)::int as n from audit_log")).rows[0].n;
    const modes = [EnforcementMode.OBSERVE, EnforcementMode.OFF, EnforcementMode.ENFORCE];
    await Promise.all(
      Array.from({ length: 12 }, (_, index) => [
        c.admin.setEnforcementMode({ featureKey, mode: modes[index % 3], reason: "race", requestId: randomUUID() }),
        c.admin.setKillSwitch({ enabled: index % 2 === 0, reason: "race", requestId: randomUUID() }),
      ]).flat(),
    );
    for (const target of [`feature:${featureKey}`, "kill_switch"]) {
      const chain = await auditChain(target, after);
      expect(chain).toHaveLength(12);
      for (let index = 1; index < chain.length; index++) expect(chain[index].old, `${target} record ${index}`).toEqual(chain[index - 1].new);
    }
    const lastMode = (await auditChain(`feature:${featureKey}`, after)).at(-1)!.new;
    expect((await t.database.pool.query("select enforcement_mode from features where feature_key = $1", [featureKey])).rows[0].enforcement_mode).toBe(lastMode);
  });
});

describe("the audit log", () => {
  it("pages newest first without gaps or repeats, and support keys may read it", async () => {
    // The key first: making it is audited too.
    const support = t.clients(await t.createKey("support"));
    for (let index = 0; index < 5; index++) await c.admin.setKillSwitch({ enabled: index % 2 === 0, reason: `page ${index}`, requestId: randomUUID() });
    const all = (await support.admin.listAuditRecords({ pageSize: 1_000 })).auditRecords;
    expect(all.slice(0, 5).map((record) => record.reason)).toEqual(["page 4", "page 3", "page 2", "page 1", "page 0"]);
    const paged: string[] = [];
    let pageToken = "";
    for (let pages = 0; pages < 100; pages++) {
      const res = await support.admin.listAuditRecords({ pageSize: 2, pageToken });
      expect(res.auditRecords.length).toBeLessThanOrEqual(2);
      paged.push(...res.auditRecords.map((record) => record.auditId));
      pageToken = res.nextPageToken;
      if (pageToken === "") break;
    }
    expect(pageToken).toBe("");
    expect(paged).toEqual(all.map((record) => record.auditId));
    const ids = paged.map(BigInt);
    expect(ids.every((id, index) => index === 0 || id < ids[index - 1])).toBe(true);
  });
});

describe("bad input changes nothing", () => {
  interface BadCase {
    name: string;
    send: () => Promise<unknown>;
    code: Code;
    reason: string;
  }
  const fixture = { feature: "", version: "", customer: "" };
  beforeAll(async () => {
    fixture.feature = await createFeature();
    fixture.version = await createVersion([{ featureKey: fixture.feature, credits: 1n, perUnits: 2n }]);
    fixture.customer = await createCustomer();
  });

  const version = (over: Record<string, unknown> = {}) =>
    c.admin.createPricingVersion({
      pricingVersion: { pricingVersionId: fresh("pv"), displayName: "V", rates: [{ featureKey: fixture.feature, rate: { credits: 1n, perUnits: 1n } }], ...over },
      makeDefault: true,
      requestId: randomUUID(),
    });
  const move = (over: Record<string, unknown> = {}) =>
    c.admin.moveCustomersToPricingVersion({ toPricingVersionId: fixture.version, reason: "r", requestId: randomUUID(), ...over });
  const override = (over: Record<string, unknown> = {}) =>
    c.admin.setRateOverride({ customerId: fixture.customer, featureKey: fixture.feature, rate: { credits: 1n, perUnits: 1n }, reason: "r", requestId: randomUUID(), ...over });
  const mode = (over: Record<string, unknown> = {}) =>
    c.admin.setEnforcementMode({ featureKey: fixture.feature, mode: EnforcementMode.OFF, reason: "r", requestId: randomUUID(), ...over });
  const invalid = (name: string, reason: string, send: () => Promise<unknown>): BadCase => ({ name, send, code: Code.InvalidArgument, reason });
  const notFound = (name: string, reason: string, send: () => Promise<unknown>): BadCase => ({ name, send, code: Code.NotFound, reason });
  const reasonCases = (rpc: string, send: (reason: string) => Promise<unknown>): BadCase[] => [
    invalid(`${rpc} without a reason`, "MISSING_FIELD", () => send("")),
    invalid(`${rpc} with a blank reason`, "MISSING_FIELD", () => send("   ")),
    invalid(`${rpc} with a 1,001-character reason`, "TEXT_TOO_LONG", () => send("r".repeat(1_001))),
  ];

  const cases: BadCase[] = [
    invalid("CreatePricingVersion without a version", "MISSING_FIELD", () => c.admin.createPricingVersion({ requestId: randomUUID() })),
    invalid("CreatePricingVersion without a request id", "MISSING_FIELD", () => c.admin.createPricingVersion({ pricingVersion: { pricingVersionId: fresh("pv") } })),
    invalid("CreatePricingVersion with an uppercase id", "INVALID_CODE", () => version({ pricingVersionId: "V2" })),
    invalid("CreatePricingVersion with a feature listed twice", "DUPLICATE_FEATURE", () =>
      version({ rates: [1n, 2n].map((credits) => ({ featureKey: fixture.feature, rate: { credits, perUnits: 1n } })) }),
    ),
    notFound("CreatePricingVersion rating an unknown feature", "FEATURE_NOT_FOUND", () =>
      version({ rates: [{ featureKey: fixture.feature, rate: { credits: 1n } }, { featureKey: "no_such_feature", rate: { credits: 1n } }] }),
    ),
    invalid("CreatePricingVersion with negative credits", "INVALID_AMOUNT", () => version({ rates: [{ featureKey: fixture.feature, rate: { credits: -1n } }] })),
    invalid("CreatePricingVersion with negative per_units", "INVALID_AMOUNT", () => version({ rates: [{ featureKey: fixture.feature, rate: { credits: 1n, perUnits: -5n } }] })),
    invalid("CreatePricingVersion with a rate missing", "MISSING_FIELD", () => version({ rates: [{ featureKey: fixture.feature }] })),
    invalid("CreatePricingVersion with 1,001 rates", "TOO_MANY_RATES", () =>
      version({ rates: Array.from({ length: 1_001 }, (_, index) => ({ featureKey: `f${index}`, rate: { credits: 1n } })) }),
    ),
    { name: "CreatePricingVersion with an existing id", code: Code.AlreadyExists, reason: "PRICING_VERSION_EXISTS", send: () => version({ pricingVersionId: fixture.version }) },
    notFound("SetDefaultPricingVersion to an unknown version", "PRICING_VERSION_NOT_FOUND", () =>
      c.admin.setDefaultPricingVersion({ pricingVersionId: "no_such_version", reason: "r", requestId: randomUUID() }),
    ),
    invalid("SetDefaultPricingVersion without a version", "MISSING_FIELD", () => c.admin.setDefaultPricingVersion({ reason: "r", requestId: randomUUID() })),
    ...reasonCases("SetDefaultPricingVersion", (reason) => c.admin.setDefaultPricingVersion({ pricingVersionId: fixture.version, reason, requestId: randomUUID() })),
    invalid("MoveCustomersToPricingVersion without a target", "MISSING_FIELD", () => move({ toPricingVersionId: "" })),
    invalid("MoveCustomersToPricingVersion to the version it moves from", "SAME_PRICING_VERSION", () => move({ fromPricingVersionId: fixture.version })),
    notFound("MoveCustomersToPricingVersion to an unknown version", "PRICING_VERSION_NOT_FOUND", () => move({ toPricingVersionId: "no_such_version" })),
    notFound("MoveCustomersToPricingVersion from an unknown version", "PRICING_VERSION_NOT_FOUND", () => move({ fromPricingVersionId: "no_such_version" })),
    invalid("MoveCustomersToPricingVersion naming 1,001 customers", "TOO_MANY_CUSTOMER_IDS", () => move({ customerIds: Array.from({ length: 1_001 }, (_, index) => `c${index}`) })),
    invalid("MoveCustomersToPricingVersion naming a customer id with a space", "INVALID_ID", () => move({ customerIds: ["acme corp"] })),
    ...reasonCases("MoveCustomersToPricingVersion", (reason) => move({ reason })),
    notFound("SetRateOverride for an unknown customer", "CUSTOMER_NOT_FOUND", () => override({ customerId: "no-such-customer" })),
    notFound("SetRateOverride for an unknown feature", "FEATURE_NOT_FOUND", () => override({ featureKey: "no_such_feature" })),
    invalid("SetRateOverride with negative credits", "INVALID_AMOUNT", () => override({ rate: { credits: -1n, perUnits: 1n } })),
    invalid("SetRateOverride with negative per_units", "INVALID_AMOUNT", () => override({ rate: { credits: 1n, perUnits: -1n } })),
    ...reasonCases("SetRateOverride", (reason) => override({ reason })),
    invalid("SetEnforcementMode to UNSPECIFIED", "INVALID_ENUM", () => mode({ mode: EnforcementMode.UNSPECIFIED })),
    invalid("SetEnforcementMode to an unknown mode", "INVALID_ENUM", () => mode({ mode: 99 })),
    notFound("SetEnforcementMode of an unknown feature", "FEATURE_NOT_FOUND", () => mode({ featureKey: "no_such_feature" })),
    ...reasonCases("SetEnforcementMode", (reason) => mode({ reason })),
    ...reasonCases("SetKillSwitch", (reason) => c.admin.setKillSwitch({ enabled: true, reason, requestId: randomUUID() })),
    invalid("SetKillSwitch without a request id", "MISSING_FIELD", () => c.admin.setKillSwitch({ enabled: true, reason: "r" })),
    invalid("ListAuditRecords with a forged page token", "INVALID_PAGE_TOKEN", () => c.admin.listAuditRecords({ pageToken: Buffer.from("audit1:abc").toString("base64url") })),
    invalid("ListAuditRecords with page size 1,001", "INVALID_PAGE_SIZE", () => c.admin.listAuditRecords({ pageSize: 1_001 })),
  ];

  it.each(cases)("$name is refused with $reason", async ({ send, code, reason }) => {
    const before = await snapshot();
    const error = await errorOf(send());
    expect(error.code).toBe(code);
    expect(errorInfoOf(error)?.reason).toBe(reason);
    expect(await snapshot()).toEqual(before);
  });

  it("a reason of exactly 1,000 characters is accepted", async () => {
    const res = await c.admin.setKillSwitch({ enabled: false, reason: "r".repeat(1_000), requestId: randomUUID() });
    expect(res.enabled).toBe(false);
    expect((await latestAudit()).reason).toHaveLength(1_000);
  });
});

describe("replays", () => {
  /** Each mutation, prepared: the request it returns is sent twice. */
  const mutations: Record<string, () => Promise<() => Promise<unknown>>> = {
    CreatePricingVersion: async () => {
      const featureKey = await createFeature();
      const request = { pricingVersion: { pricingVersionId: fresh("pv"), rates: [{ featureKey, rate: { credits: 3n, perUnits: 4n } }] }, makeDefault: true, requestId: randomUUID() };
      return () => c.admin.createPricingVersion(request);
    },
    SetDefaultPricingVersion: async () => {
      const request = { pricingVersionId: await createVersion(), reason: "replay", requestId: randomUUID() };
      return () => c.admin.setDefaultPricingVersion(request);
    },
    MoveCustomersToPricingVersion: async () => {
      const customerId = await createCustomer();
      const request = { fromPricingVersionId: await pinOf(customerId), toPricingVersionId: await createVersion(), customerIds: [customerId], reason: "replay", requestId: randomUUID() };
      return () => c.admin.moveCustomersToPricingVersion(request);
    },
    SetRateOverride: async () => {
      const request = { customerId: await createCustomer(), featureKey: await createFeature(), rate: { credits: 5n, perUnits: 2n }, reason: "replay", requestId: randomUUID() };
      return () => c.admin.setRateOverride(request);
    },
    SetEnforcementMode: async () => {
      const request = { featureKey: await createFeature(), mode: EnforcementMode.OBSERVE, reason: "replay", requestId: randomUUID() };
      return () => c.admin.setEnforcementMode(request);
    },
    SetKillSwitch: async () => {
      const request = { enabled: true, reason: "replay", requestId: randomUUID() };
      return () => c.admin.setKillSwitch(request);
    },
  };

  it.each(Object.keys(mutations))("a replayed %s returns the first response, changes nothing and audits once", async (rpc) => {
    const send = await mutations[rpc]();
    const auditsBefore = await auditCount();
    const first = await send();
    // CreatePricingVersion with make_default is two actions: the version, and the new default.
    expect(await auditCount()).toBe(auditsBefore + (rpc === "CreatePricingVersion" ? 2 : 1));
    const before = await snapshot();
    expect(await send()).toEqual(first);
    expect(await snapshot()).toEqual(before);
  });

  it("a replay returns the first result even after a later change, and does not undo the change", async () => {
    const request = { enabled: true, reason: "first", requestId: randomUUID() };
    expect((await c.admin.setKillSwitch(request)).enabled).toBe(true);
    await c.admin.setKillSwitch({ enabled: false, reason: "second", requestId: randomUUID() });
    expect((await c.admin.setKillSwitch(request)).enabled).toBe(true);
    expect(await selectSetting(t.database.pool, "kill_switch")).toBe("off");
  });

  it("a replayed CreatePricingVersion returns the version, not PRICING_VERSION_EXISTS; a new request id for the same version is refused", async () => {
    const pricingVersionId = fresh("pv");
    const request = { pricingVersion: { pricingVersionId }, requestId: randomUUID() };
    const first = await c.admin.createPricingVersion(request);
    expect(await c.admin.createPricingVersion(request)).toEqual(first);
    const error = await errorOf(c.admin.createPricingVersion({ ...request, requestId: randomUUID() }));
    expect(error.code).toBe(Code.AlreadyExists);
    expect(errorInfoOf(error)?.reason).toBe("PRICING_VERSION_EXISTS");
  });

  it("the same request id with another payload is REQUEST_ID_REUSED and changes nothing", async () => {
    const requestId = randomUUID();
    await c.admin.setKillSwitch({ enabled: true, reason: "reuse", requestId });
    const before = await snapshot();
    const error = await errorOf(c.admin.setKillSwitch({ enabled: false, reason: "reuse", requestId }));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(errorInfoOf(error)?.reason).toBe("REQUEST_ID_REUSED");
    expect(await snapshot()).toEqual(before);
  });
});

describe("afterwards", () => {
  it("leaves every ledger invariant intact", async () => {
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });
});
