// The audit trail: every administrative action leaves exactly one record (who, what, to
// what, why, old and new values) in the transaction of the action itself, a refused action
// or a replay leaves none, and an action whose record cannot be written does not happen.
import { randomUUID } from "node:crypto";
import { AdminService, GrantSource, Role, UsageOutcome } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorOf } from "../../test-support/snapshot.js";
import { type Clients, startTestServer, type TestServer } from "../../test-support/server.js";

let t: TestServer;
let c: Clients;
let adminKeyId: string;
const creditTypeId = "api_credits";
const fresh = (prefix: string) => `${prefix}_${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  t = await startTestServer();
  c = t.clients(t.adminToken);
  adminKeyId = /^bd_([0-9a-f]{20})_/.exec(t.adminToken)![1];
  await c.admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 0 }, requestId: randomUUID() });
});
afterAll(() => t?.close());

async function auditRows(): Promise<{ action: string; target: string; reason: string; actor: string; details: { old: unknown; new: unknown } & Record<string, unknown> }[]> {
  const result = await t.database.pool.query("select actor, action, target, reason, details from audit_log order by audit_id");
  return result.rows;
}

interface Case {
  /** sends a valid request; returns what the record must show. */
  act: () => Promise<{ action: string; target: string; reason: string; details: Record<string, unknown> }>;
}

const cases: Record<string, Case> = {
  Grant: {
    act: async () => {
      const customerId = fresh("cust");
      const res = await c.ledger.grant({ customerId, creditTypeId, amount: 250n, source: GrantSource.SUPPORT, reasonCode: "goodwill", note: "outage on the 3rd", requestId: randomUUID() });
      return {
        action: "grant",
        target: `customer:${customerId}`,
        reason: "goodwill: outage on the 3rd",
        details: { old: null, new: expect.objectContaining({ grant_id: res.lot!.grantId, credit_type_id: creditTypeId, amount: "250", source: "support" }), reason_code: "goodwill" },
      };
    },
  },
  CreateCreditType: {
    act: async () => {
      const id = fresh("ct");
      await c.admin.createCreditType({ creditType: { creditTypeId: id, displayName: "Tokens", scale: 2 }, requestId: randomUUID() });
      return { action: "create_credit_type", target: `credit_type:${id}`, reason: "", details: { old: null, new: { display_name: "Tokens", scale: 2 } } };
    },
  },
  CreateFeature: {
    act: async () => {
      const key = fresh("feat");
      await c.admin.createFeature({ feature: { featureKey: key, displayName: "Chat", creditTypeId, burnRate: 7n }, requestId: randomUUID() });
      return { action: "create_feature", target: `feature:${key}`, reason: "", details: { old: null, new: expect.objectContaining({ credit_type_id: creditTypeId, burn_rate: "7" }) } };
    },
  },
  CreateCustomer: {
    act: async () => {
      const customerId = fresh("cust");
      await c.admin.createCustomer({ customer: { customerId, displayName: "Acme", overdraftLimits: [{ creditTypeId, amount: 40n }] }, requestId: randomUUID() });
      return { action: "create_customer", target: `customer:${customerId}`, reason: "", details: { old: null, new: expect.objectContaining({ display_name: "Acme", overdraft_limits: { [creditTypeId]: "40" } }) } };
    },
  },
  SetOverdraftLimit: {
    act: async () => {
      const customerId = fresh("cust");
      await c.admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
      await c.admin.setOverdraftLimit({ customerId, limit: { creditTypeId, amount: 500n }, reason: "enterprise contract", requestId: randomUUID() });
      return { action: "set_overdraft_limit", target: `customer:${customerId}`, reason: "enterprise contract", details: { old: "0", new: "500", credit_type_id: creditTypeId } };
    },
  },
  CreateApiKey: {
    act: async () => {
      const res = await c.admin.createApiKey({ name: "billing", role: Role.SUPPORT, grantLimit: 900n, reason: "new support hire", requestId: randomUUID() });
      // The new key's secret (after "bd_<20 hex>_") is nowhere in the trail.
      expect(JSON.stringify(await auditRows())).not.toContain(res.token.slice("bd_".length + 20 + 1));
      return {
        action: "create_api_key",
        target: `api_key:${res.apiKey!.keyId}`,
        reason: "new support hire",
        details: { old: null, new: { name: "billing", role: "support", grant_limit: "900", expire_time: null, customer_id: null } },
      };
    },
  },
  RevokeApiKey: {
    act: async () => {
      const created = await c.admin.createApiKey({ name: "leaving", role: Role.SERVICE, requestId: randomUUID() });
      const keyId = created.apiKey!.keyId;
      await c.admin.revokeApiKey({ keyId, reason: "key leaked in a log", requestId: randomUUID() });
      return { action: "revoke_api_key", target: `api_key:${keyId}`, reason: "key leaked in a log", details: { old: null, new: { revoke_time: expect.any(String) } } };
    },
  },
  CreatePricingVersion: {
    act: async () => {
      const featureKey = fresh("feat");
      await c.admin.createFeature({ feature: { featureKey, displayName: "F", creditTypeId, burnRate: 1n }, requestId: randomUUID() });
      const id = fresh("pv");
      await c.admin.createPricingVersion({ pricingVersion: { pricingVersionId: id, displayName: "2027", rates: [{ featureKey, rate: { credits: 3n, perUnits: 4n } }] }, requestId: randomUUID() });
      return {
        action: "create_pricing_version",
        target: `pricing_version:${id}`,
        reason: "",
        details: { old: null, new: { display_name: "2027", rates: { [featureKey]: { credits: "3", per_units: "4" } }, make_default: false } },
      };
    },
  },
  ReplayUnratedEvents: {
    act: async () => {
      const customerId = fresh("cust");
      await c.ledger.grant({ customerId, creditTypeId, amount: 100n, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() });
      const featureKey = fresh("late");
      const eventId = randomUUID();
      const [reported] = (await c.ledger.reportUsage({ events: [{ eventId, customerId, featureKey, quantity: 2n }] })).results;
      expect(reported.outcome).toBe(UsageOutcome.UNRATED);
      await c.admin.createFeature({ feature: { featureKey, displayName: "Late", creditTypeId, burnRate: 5n }, requestId: randomUUID() });
      const replayed = (await c.admin.replayUnratedEvents({ reason: "feature created after launch" })).results;
      expect(replayed.find((result) => result.eventId === eventId)).toMatchObject({ outcome: UsageOutcome.BURNED, credits: 10n });
      const usageId = (await t.database.pool.query("select usage_id::text from usage_events where event_id = $1", [eventId])).rows[0].usage_id;
      return { action: "replay_unrated_events", target: "usage_events", reason: "feature created after launch", details: { old: null, new: { rated: 1, usage_ids: [usageId] } } };
    },
  },
};

/**
 * Administrative actions whose records are asserted in the tests of their feature, where
 * their setup lives. Every other administrative RPC must have a case above.
 */
const auditedElsewhere: Record<string, string> = {
  SetDefaultPricingVersion: "server/test/pricing.test.ts",
  MoveCustomersToPricingVersion: "server/test/pricing.test.ts",
  SetRateOverride: "server/test/pricing.test.ts",
  SetEnforcementMode: "server/test/pricing.test.ts",
  SetKillSwitch: "server/test/pricing.test.ts",
  SetEnforcementRollout: "server/test/enforcement.test.ts",
  SetFailurePolicy: "server/test/failure-policy.test.ts",
  CorrectUsageEvent: "server/test/explain.test.ts",
};

describe("the audited actions", () => {
  it("are every AdminService RPC that changes something, and Grant: a new one cannot go unaudited", () => {
    // VerifyLedger reads the ledger and compares it with its projections; it changes nothing.
    const reads = /^(List|Get|Explain|Search|Verify)/;
    const administrative = [...AdminService.methods.filter((method) => !reads.test(method.name)).map((method) => method.name), "Grant"].sort();
    expect([...Object.keys(cases), ...Object.keys(auditedElsewhere)].sort()).toEqual(administrative);
  });
});

describe("every administrative action is audited", () => {
  it.each(Object.keys(cases))("%s leaves one record: who, what, to what, why, old and new", async (name) => {
    const before = (await auditRows()).length;
    const expected = await cases[name].act();
    const rows = await auditRows();
    const record = rows.filter((row) => row.action === expected.action).at(-1);
    expect(record).toEqual({ actor: adminKeyId, action: expected.action, target: expected.target, reason: expected.reason, details: expected.details });
    expect(rows.slice(before).filter((row) => row.action === expected.action)).toHaveLength(1);
    // The secret of a key is never in the trail.
    // (The secret is everything after "bd_<key id>_"; it may itself contain underscores.)
    expect(JSON.stringify(rows)).not.toContain(t.adminToken.slice("bd_".length + adminKeyId.length + 1));
  });

  it("a refused action leaves no record, and a replay no second one", async () => {
    const before = (await auditRows()).length;
    await errorOf(c.admin.createCreditType({ creditType: { creditTypeId, displayName: "again", scale: 0 }, requestId: randomUUID() }));
    await errorOf(c.admin.revokeApiKey({ keyId: "00000000000000000000", reason: "typo", requestId: randomUUID() }));
    await errorOf(c.admin.setOverdraftLimit({ customerId: fresh("nobody"), limit: { creditTypeId, amount: 1n }, requestId: randomUUID() }));
    expect((await auditRows()).length).toBe(before);
    const request = { customerId: fresh("cust"), creditTypeId, amount: 5n, source: GrantSource.PURCHASE, reasonCode: "buy", requestId: randomUUID() };
    await c.ledger.grant(request);
    await c.ledger.grant(request);
    expect((await auditRows()).length).toBe(before + 1);
  });

  it("an action whose audit record cannot be written does not happen", async () => {
    const customerId = fresh("cust");
    // A real fault in PostgreSQL: the audit insert for this customer fails.
    await t.database.pool.query(`
      create or replace function test_refuse_audit() returns trigger language plpgsql as $$
      begin
        if new.target = 'customer:${customerId}' then raise exception 'audit log unavailable'; end if;
        return new;
      end $$;
      create trigger test_refuse_audit before insert on audit_log for each row execute function test_refuse_audit();`);
    try {
      await errorOf(c.ledger.grant({ customerId, creditTypeId, amount: 100n, source: GrantSource.SUPPORT, reasonCode: "goodwill", requestId: randomUUID() }));
      const lots = await t.database.pool.query("select count(*)::int as n from grants where customer_id = $1", [customerId]);
      const entries = await t.database.pool.query("select count(*)::int as n from ledger_entries where customer_id = $1", [customerId]);
      expect([lots.rows[0].n, entries.rows[0].n]).toEqual([0, 0]);
    } finally {
      await t.database.pool.query("drop trigger test_refuse_audit on audit_log; drop function test_refuse_audit()");
    }
  });
});
