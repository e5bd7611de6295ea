// Authorization: every RPC of both services against every kind of caller, from one
// expected table written here (not imported from the server, so a wrong server table
// fails). Allowed cells send a valid request and must succeed; refused cells must fail
// with the right code and reason and change nothing. Then the edges of a key's life:
// support grant limits, revocation before first use, expiry, and the actor on entries.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  AdminService,
  BillingService,
  EnforcementMode,
  EntryKind,
  errorInfoOf,
  FailurePolicy,
  FinanceService,
  GrantSource,
  LedgerService,
  PeriodUnit,
  ReportGranularity,
  PlanService,
  PoolPeriod,
  PromotionService,
  CorrectionService,
  DisputeStatus,
  ReservationStatus,
  Role,
  TopUpState,
  UsageGranularity,
  UsageOutcome,
  PoolService,
  SupportService,
  WebhookService,
} from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { limits } from "../src/limits.js";
import { invariantViolations } from "../../test-support/invariants.js";
import { databaseSnapshot, errorOf } from "../../test-support/snapshot.js";
import { type Clients, FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";

type RoleName = "service" | "support" | "admin" | "finance";

/** expectedRoles is the access policy this test holds the server to, one row per RPC. */
const expectedRoles: Record<string, readonly RoleName[]> = {
  "LedgerService/Grant": ["service", "support", "admin"],
  "LedgerService/Reserve": ["service", "admin"],
  "LedgerService/Commit": ["service", "admin"],
  "LedgerService/Release": ["service", "admin"],
  "LedgerService/Burn": ["service", "admin"],
  "LedgerService/GetBalance": ["service", "support", "admin"],
  "LedgerService/ListLedgerEntries": ["service", "support", "admin"],
  "LedgerService/ReportUsage": ["service", "admin"],
  "LedgerService/Check": ["service", "support", "admin"],
  "LedgerService/ReserveBatch": ["service", "admin"],
  "LedgerService/CommitBatch": ["service", "admin"],
  "LedgerService/GetCaller": ["service", "support", "admin", "finance"],
  "LedgerService/ListReservations": ["service", "support", "admin"],
  "LedgerService/GetUsageSummary": ["service", "support", "admin"],
  "LedgerService/GetBalanceForecast": ["service", "support", "admin"],
  "AdminService/ListUnratedEvents": ["support", "admin"],
  "AdminService/ListUsageConflicts": ["support", "admin"],
  "AdminService/ReplayUnratedEvents": ["admin"],
  "AdminService/CreateCreditType": ["admin"],
  "AdminService/ListCreditTypes": ["service", "support", "admin"],
  "AdminService/CreateFeature": ["admin"],
  "AdminService/ListFeatures": ["service", "support", "admin"],
  "AdminService/CreateCustomer": ["admin"],
  "AdminService/GetCustomer": ["support", "admin"],
  "AdminService/SetOverdraftLimit": ["admin"],
  "AdminService/CreateApiKey": ["admin"],
  "AdminService/ListApiKeys": ["admin"],
  "AdminService/RevokeApiKey": ["admin"],
  "AdminService/CreatePricingVersion": ["admin"],
  "AdminService/ListPricingVersions": ["service", "support", "admin"],
  "AdminService/SetDefaultPricingVersion": ["admin"],
  "AdminService/MoveCustomersToPricingVersion": ["admin"],
  "AdminService/GetShadowPricingReport": ["support", "admin"],
  "AdminService/SetRateOverride": ["admin"],
  "AdminService/SetEnforcementMode": ["admin"],
  "AdminService/SetEnforcementRollout": ["admin"],
  "AdminService/SetKillSwitch": ["admin"],
  "AdminService/SetFailurePolicy": ["admin"],
  "AdminService/ListAuditRecords": ["support", "admin"],
  "AdminService/VerifyLedger": ["admin"],
  "AdminService/ExplainUsageEvent": ["support", "admin"],
  "AdminService/CorrectUsageEvent": ["admin"],
  "AdminService/SearchCustomers": ["support", "admin"],
  "AdminService/ListRateOverrides": ["support", "admin"],
  "BillingService/CreateBundle": ["admin"],
  "BillingService/ListBundles": ["service", "support", "admin"],
  "BillingService/CreateTopUp": ["service", "support", "admin"],
  "BillingService/ConfirmTopUp": ["service", "admin"],
  "BillingService/CancelTopUp": ["service", "admin"],
  "BillingService/RefundTopUp": ["service", "admin"],
  "BillingService/GetTopUp": ["service", "support", "admin"],
  "BillingService/ListTopUps": ["service", "support", "admin"],
  "PlanService/CreatePlan": ["admin"],
  "PlanService/ListPlans": ["service", "support", "admin"],
  "PlanService/GetPlan": ["service", "support", "admin"],
  "PlanService/SubscribeCustomer": ["admin"],
  "PlanService/MoveSubscription": ["admin"],
  "PlanService/CancelSubscription": ["admin"],
  "PlanService/ListSubscriptions": ["support", "admin"],
  "PlanService/CreateGrantSchedule": ["admin"],
  "PlanService/CancelGrantSchedule": ["admin"],
  "PlanService/ListGrantSchedules": ["support", "admin"],
  "PlanService/ListRollovers": ["support", "admin"],
  "BillingService/FailTopUp": ["service", "admin"],
  "BillingService/SetAutoRecharge": ["support", "admin"],
  "BillingService/GetAutoRecharge": ["service", "support", "admin"],
  "BillingService/ListAutoRecharges": ["service", "support", "admin"],
  "WebhookService/CreateWebhookEndpoint": ["admin"],
  "WebhookService/ListWebhookEndpoints": ["support", "admin"],
  "WebhookService/DisableWebhookEndpoint": ["admin"],
  "WebhookService/RotateWebhookSecret": ["admin"],
  "WebhookService/ListWebhookEvents": ["support", "admin"],
  "WebhookService/ReplayWebhookEvents": ["admin"],
  "PromotionService/CreatePromoCode": ["admin"],
  "PromotionService/ListPromoCodes": ["support", "admin"],
  "PromotionService/DisablePromoCode": ["admin"],
  "PromotionService/RedeemPromoCode": ["service", "support", "admin"],
  "PoolService/AttachPoolMember": ["admin"],
  "PoolService/DetachPoolMember": ["admin"],
  "PoolService/SetPoolMemberLimit": ["admin"],
  "PoolService/ListPoolMembers": ["support", "admin"],
  "CorrectionService/VoidGrant": ["support", "admin"],
  "CorrectionService/RefundCharge": ["support", "admin"],
  "CorrectionService/OpenDispute": ["support", "admin"],
  "CorrectionService/GetDispute": ["support", "admin"],
  "CorrectionService/ListDisputes": ["support", "admin"],
  "CorrectionService/AssignDispute": ["support", "admin"],
  "CorrectionService/AddDisputeNote": ["support", "admin"],
  "CorrectionService/ResolveDispute": ["support", "admin"],
  "FinanceService/GetRevenueRollForward": ["finance", "admin"],
  "FinanceService/ExportRevenueRollForward": ["finance", "admin"],
  "SupportService/SetGrantLimit": ["admin"],
  "SupportService/ListGrantLimits": ["support", "admin"],
  "SupportService/DeleteGrantLimit": ["admin"],
  "SupportService/SetGrantSources": ["admin"],
  "SupportService/ListGrantSources": ["support", "admin"],
  "SupportService/CreateReasonCode": ["admin"],
  "SupportService/UpdateReasonCode": ["admin"],
  "SupportService/ListReasonCodes": ["support", "admin"],
  "SupportService/RequestGrant": ["service", "support", "admin"],
  "SupportService/ApproveGrantRequest": ["support", "admin"],
  "SupportService/RejectGrantRequest": ["support", "admin"],
  "SupportService/ListGrantRequests": ["support", "admin"],
};

/** The callers without a working key, and the reason each must be refused with. */
const unauthenticatedCallers = {
  "no key": "MISSING_API_KEY",
  "a malformed key": "INVALID_API_KEY",
  "an unknown key": "INVALID_API_KEY",
  "a known key id with a forged secret": "INVALID_API_KEY",
  "an admin key revoked before its first use": "INVALID_API_KEY",
} as const;
type UnauthenticatedCaller = keyof typeof unauthenticatedCallers;
/** A customer key, bound to a customer of its own: every customer the matrix's calls name is another one. */
const customerCaller = "a customer key of another customer";
/**
 * What a customer key may ask with success whoever the matrix names: about itself
 * (GetCaller), the credit types' names and scales, which its own view shows amounts in,
 * and the catalog of bundles its view sells.
 */
const customerAllowed = new Set(["LedgerService/GetCaller", "AdminService/ListCreditTypes", "BillingService/ListBundles"]);
/**
 * The reads a customer key may make (of its own customer), with the reason they answer
 * about anything else: NotFound, as if the other customer or its event did not exist.
 */
const customerReadable: Record<string, string> = {
  "LedgerService/GetBalance": "CUSTOMER_NOT_FOUND",
  "LedgerService/ListLedgerEntries": "CUSTOMER_NOT_FOUND",
  "LedgerService/Check": "CUSTOMER_NOT_FOUND",
  "LedgerService/ListReservations": "CUSTOMER_NOT_FOUND",
  "LedgerService/GetUsageSummary": "CUSTOMER_NOT_FOUND",
  "LedgerService/GetBalanceForecast": "CUSTOMER_NOT_FOUND",
  "AdminService/ExplainUsageEvent": "USAGE_EVENT_NOT_FOUND",
  "BillingService/CreateTopUp": "CUSTOMER_NOT_FOUND",
  "BillingService/GetTopUp": "TOPUP_NOT_FOUND",
  "BillingService/ListTopUps": "CUSTOMER_NOT_FOUND",
  // Not a read, but the same rule: redeeming for another customer is as if it did not exist.
  "PromotionService/RedeemPromoCode": "CUSTOMER_NOT_FOUND",
  "BillingService/GetAutoRecharge": "CUSTOMER_NOT_FOUND",
  "BillingService/ListAutoRecharges": "CUSTOMER_NOT_FOUND",
  "CorrectionService/OpenDispute": "CUSTOMER_NOT_FOUND",
  "CorrectionService/GetDispute": "DISPUTE_NOT_FOUND",
  "CorrectionService/ListDisputes": "CUSTOMER_NOT_FOUND",
};
type CallerName = UnauthenticatedCaller | RoleName | typeof customerCaller;

const creditTypeId = "api_credits";
const roleNames: RoleName[] = ["service", "support", "admin", "finance"];

let t: TestServer;
const tokens = new Map<CallerName, string | null>();
const clientCache = new Map<string, Clients>();

/** fresh makes a unique, valid id or code with a prefix. */
const fresh = (prefix: string) => `${prefix}_${randomBytes(6).toString("hex")}`;

/** keyIdOf reads the key id out of a token: the 20 hex characters after "bd_". */
function keyIdOf(token: string): string {
  const match = /^bd_([0-9a-f]{20})_/.exec(token);
  expect(match, "a token is bd_<20 hex>_<secret>").not.toBeNull();
  return match![1];
}

/** wellFormedToken makes a token of the right shape that no key was ever created with. */
function wellFormedToken(keyId = randomBytes(10).toString("hex")): string {
  return `bd_${keyId}_${randomBytes(32).toString("base64url")}`;
}

function clientsOf(caller: CallerName, protocol: "connect" | "grpc"): Clients {
  const cacheKey = `${caller}:${protocol}`;
  let cached = clientCache.get(cacheKey);
  if (cached === undefined) {
    cached = t.clients(tokens.get(caller)!, protocol);
    clientCache.set(cacheKey, cached);
  }
  return cached;
}

const admin = () => clientsOf("admin", "connect");

/** fundedCustomer makes a customer holding credits, granted by the admin key. */
async function fundedCustomer(amount = 1_000n): Promise<string> {
  const customerId = fresh("cust");
  await admin().ledger.grant({ customerId, creditTypeId, amount, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
  return customerId;
}

/** heldReservation makes a funded customer with an open reservation of 300. */
async function heldReservation(): Promise<string> {
  const customerId = await fundedCustomer();
  const reserved = await admin().ledger.reserve({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 300n } }, requestId: randomUUID() });
  return reserved.reservation!.reservationId;
}

/** freshFeature makes a feature on the matrix's credit type, created by the admin key. */
async function freshFeature(): Promise<string> {
  const featureKey = fresh("feature");
  await admin().admin.createFeature({ feature: { featureKey, displayName: "Feature", creditTypeId, burnRate: 5n }, requestId: randomUUID() });
  return featureKey;
}

/** unratedEvent reports usage of a feature that does not exist, which is kept unrated. */
async function unratedEvent(): Promise<string> {
  const eventId = randomUUID();
  const customerId = await fundedCustomer();
  const res = await admin().ledger.reportUsage({ events: [{ eventId, customerId, featureKey: fresh("missing"), quantity: 1n }] });
  expect(res.results[0].outcome).toBe(UsageOutcome.UNRATED);
  return eventId;
}

/** freshPricingVersion publishes a version with no rates (so it prices like the base rates), not as the default. */
async function freshPricingVersion(): Promise<string> {
  const pricingVersionId = fresh("pv");
  await admin().admin.createPricingVersion({ pricingVersion: { pricingVersionId, displayName: "Version" }, requestId: randomUUID() });
  return pricingVersionId;
}

/** burnedEvent reports usage (by the admin key) that burns 10 credits, and returns its event id. */
async function burnedEvent(): Promise<string> {
  const eventId = randomUUID();
  const customerId = await fundedCustomer();
  const featureKey = await freshFeature();
  const res = await admin().ledger.reportUsage({ events: [{ eventId, customerId, featureKey, quantity: 2n }] });
  expect(res.results.map((result) => [result.outcome, result.credits])).toEqual([[UsageOutcome.BURNED, 10n]]);
  return eventId;
}

/**
 * The matrix's webhook endpoint (to nowhere: no test here runs the delivery worker), made
 * once, with one grant.created event, so cells do not pile up enabled endpoints.
 */
let sharedEndpoint: Promise<{ endpointId: string; eventId: string }> | null = null;
function webhookEndpoint(): Promise<{ endpointId: string; eventId: string }> {
  sharedEndpoint ??= (async () => {
    const created = await admin().webhooks.createWebhookEndpoint({ url: "http://127.0.0.1:9/matrix", eventTypes: ["grant.created"], requestId: randomUUID() });
    const customerId = await fundedCustomer();
    const events = await admin().webhooks.listWebhookEvents({ endpointId: created.endpoint!.endpointId });
    const event = events.events.find((candidate) => candidate.customerId === customerId);
    expect(event?.type).toBe("grant.created");
    return { endpointId: created.endpoint!.endpointId, eventId: event!.eventId };
  })();
  return sharedEndpoint;
}

/** A Send calls one RPC with a valid request and checks the success response. */
type Send = (c: Clients) => Promise<void>;

/** validCalls prepares, for each RPC, whatever state a valid request needs and returns the call. */
const monthlyAllotment = { creditTypeId, amount: 10n, period: { unit: PeriodUnit.MONTH, length: 1 }, lotExpiry: { case: "expireAtPeriodEnd" as const, value: true } };

/** freshPlan makes a plan of 10 credits a month. */
async function freshPlan(): Promise<string> {
  const planId = fresh("plan");
  await admin().plans.createPlan({ planId, displayName: "Plan", allotments: [monthlyAllotment], requestId: randomUUID() });
  return planId;
}

/** freshSubscription subscribes a new customer to a new plan. */
async function freshSubscription(): Promise<{ subscriptionId: string; customerId: string }> {
  const customerId = fresh("sub");
  const res = await admin().plans.subscribeCustomer({ customerId, planId: await freshPlan(), requestId: randomUUID() });
  return { subscriptionId: res.subscription!.subscriptionId, customerId };
}

/** reportQuery asks for a month before any of the matrix's entries: every month opens and closes at 0. */
const reportQuery = {
  creditTypeId,
  startTime: { seconds: BigInt(Date.parse("2020-01-01T00:00:00Z") / 1000) },
  endTime: { seconds: BigInt(Date.parse("2020-02-01T00:00:00Z") / 1000) },
  granularity: ReportGranularity.MONTH,
};

const validCalls: Record<string, () => Promise<Send>> = {
  "LedgerService/Grant": async () => {
    const customerId = fresh("cust");
    return async (c) => {
      const res = await c.ledger.grant({ customerId, creditTypeId, amount: 100n, source: GrantSource.SUPPORT, reasonCode: "goodwill", requestId: randomUUID() });
      expect(res.lot?.amount).toBe(100n);
      expect(res.balance?.available).toBe(100n);
    };
  },
  "LedgerService/Reserve": async () => {
    const customerId = await fundedCustomer();
    return async (c) => {
      const res = await c.ledger.reserve({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 300n } }, requestId: randomUUID() });
      expect(res.reservation?.status).toBe(ReservationStatus.HELD);
      expect(res.balance).toMatchObject({ available: 700n, held: 300n });
    };
  },
  "LedgerService/Commit": async () => {
    const reservationId = await heldReservation();
    return async (c) => {
      const res = await c.ledger.commit({ reservationId, amount: 120n, requestId: randomUUID() });
      expect(res.reservation).toMatchObject({ status: ReservationStatus.COMMITTED, committedAmount: 120n });
      expect(res.balance).toMatchObject({ available: 880n, held: 0n, burned: 120n });
    };
  },
  "LedgerService/Release": async () => {
    const reservationId = await heldReservation();
    return async (c) => {
      const res = await c.ledger.release({ reservationId, requestId: randomUUID() });
      expect(res.reservation?.status).toBe(ReservationStatus.RELEASED);
      expect(res.balance).toMatchObject({ available: 1_000n, held: 0n });
    };
  },
  "LedgerService/ReserveBatch": async () => {
    const customerId = await fundedCustomer();
    return async (c) => {
      const res = await c.ledger.reserveBatch({ requests: [{ customerId, cost: { case: "credits", value: { creditTypeId, amount: 300n } }, requestId: randomUUID() }] });
      const result = res.results[0].result;
      expect(result.case === "response" && result.value.balance).toMatchObject({ available: 700n, held: 300n });
    };
  },
  "LedgerService/CommitBatch": async () => {
    const reservationId = await heldReservation();
    return async (c) => {
      const res = await c.ledger.commitBatch({ requests: [{ reservationId, amount: 120n, requestId: randomUUID() }] });
      const result = res.results[0].result;
      expect(result.case === "response" && result.value.reservation).toMatchObject({ status: ReservationStatus.COMMITTED, committedAmount: 120n });
    };
  },
  "LedgerService/Burn": async () => {
    const customerId = await fundedCustomer();
    return async (c) => {
      const res = await c.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 80n } }, requestId: randomUUID() });
      expect(res.amount).toBe(80n);
      expect(res.balance).toMatchObject({ available: 920n, burned: 80n });
    };
  },
  "LedgerService/GetBalance": async () => {
    const customerId = await fundedCustomer();
    return async (c) => {
      const res = await c.ledger.getBalance({ customerId });
      expect(res.balances.map((balance) => [balance.creditTypeId, balance.available])).toEqual([[creditTypeId, 1_000n]]);
    };
  },
  "LedgerService/ListLedgerEntries": async () => {
    const customerId = await fundedCustomer();
    return async (c) => {
      const res = await c.ledger.listLedgerEntries({ customerId });
      expect(res.entries.map((entry) => [entry.kind, entry.amount])).toEqual([[EntryKind.GRANT, 1_000n]]);
    };
  },
  "LedgerService/ReportUsage": async () => {
    const customerId = await fundedCustomer();
    const featureKey = await freshFeature();
    return async (c) => {
      const res = await c.ledger.reportUsage({ events: [{ eventId: randomUUID(), customerId, featureKey, quantity: 2n }] });
      expect(res.results.map((result) => [result.outcome, result.credits])).toEqual([[UsageOutcome.BURNED, 10n]]);
    };
  },
  "LedgerService/Check": async () => {
    const customerId = await fundedCustomer();
    const featureKey = await freshFeature();
    return async (c) => {
      const res = await c.ledger.check({ customerId, featureKey, quantity: 3n });
      expect(res).toMatchObject({ allowed: true, credits: 15n });
    };
  },
  "LedgerService/GetCaller": async () => async (c) => {
    const res = await c.ledger.getCaller({});
    expect(res.keyId).toMatch(/^[0-9a-f]{20}$/);
    expect(res.role).not.toBe(Role.UNSPECIFIED);
    expect(res.grantReasonCodes).toEqual(expect.arrayContaining([...limits.grantReasonCodesDefault]));
  },
  "FinanceService/GetRevenueRollForward": async () => async (c) => {
    const res = await c.finance.getRevenueRollForward({ query: reportQuery });
    expect(res.creditTypes.map((type) => [type.creditTypeId, type.periods.length])).toEqual([[creditTypeId, 1]]);
    expect(res.creditTypes[0].periods[0].credits?.closing).toBe(res.creditTypes[0].periods[0].credits?.opening);
  },
  "FinanceService/ExportRevenueRollForward": async () => async (c) => {
    const res = await c.finance.exportRevenueRollForward({ query: reportQuery });
    expect(res.csv.split("\r\n")[1]).toMatch(new RegExp(`^${creditTypeId},2020-01-01T00:00:00.000Z,2020-02-01T00:00:00.000Z,0,`));
  },
  "LedgerService/ListReservations": async () => {
    const reservationId = await heldReservation();
    const customerId = (await t.database.pool.query("select customer_id from reservations where reservation_id = $1", [reservationId])).rows[0].customer_id as string;
    return async (c) => {
      const res = await c.ledger.listReservations({ customerId });
      expect(res.reservations.map((reservation) => [reservation.reservationId, reservation.amount, reservation.status])).toEqual([[reservationId, 300n, ReservationStatus.HELD]]);
    };
  },
  "LedgerService/GetUsageSummary": async () => {
    const customerId = await fundedCustomer();
    await admin().ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 80n } }, requestId: randomUUID() });
    const startTime = timestampFromMs(Date.now() - 86_400_000);
    return async (c) => {
      const res = await c.ledger.getUsageSummary({ customerId, startTime, granularity: UsageGranularity.WEEK });
      expect(res.buckets.map((bucket) => [bucket.creditTypeId, bucket.featureKey, bucket.credits, bucket.count])).toEqual([[creditTypeId, "", 80n, 1n]]);
    };
  },
  "LedgerService/GetBalanceForecast": async () => {
    const customerId = await fundedCustomer();
    await admin().ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 140n } }, requestId: randomUUID() });
    return async (c) => {
      // 140 over 14 days: 10 a day; 860 left lasts 86 days.
      const res = await c.ledger.getBalanceForecast({ customerId });
      expect(res.forecasts.map((f) => [f.creditTypeId, f.available, f.dailyBurn, f.daysUntilEmpty])).toEqual([[creditTypeId, 860n, 10n, 86]]);
    };
  },
  "AdminService/ListUnratedEvents": async () => {
    const eventId = await unratedEvent();
    return async (c) => {
      const res = await c.admin.listUnratedEvents({ pageSize: 1_000 });
      expect(res.events.map((unrated) => unrated.event?.eventId)).toContain(eventId);
    };
  },
  "AdminService/ListUsageConflicts": async () => {
    const eventId = await unratedEvent();
    const customerId = await fundedCustomer();
    const res = await admin().ledger.reportUsage({ events: [{ eventId, customerId, featureKey: fresh("missing"), quantity: 2n }] });
    expect(res.results[0].reason).toBe("EVENT_ID_REUSED");
    return async (c) => {
      const listed = await c.admin.listUsageConflicts({ customerId });
      expect(listed.conflicts.map((conflict) => conflict.event?.eventId)).toEqual([eventId]);
    };
  },
  "AdminService/ReplayUnratedEvents": async () => {
    const eventId = await unratedEvent();
    return async (c) => {
      const res = await c.admin.replayUnratedEvents({});
      expect(res.results.find((result) => result.eventId === eventId)?.outcome).toBe(UsageOutcome.UNRATED);
    };
  },
  "AdminService/SetFailurePolicy": async () => {
    const featureKey = await freshFeature();
    return async (c) => {
      const res = await c.admin.setFailurePolicy({ featureKey, failurePolicy: FailurePolicy.FAIL_OPEN, offlineBudget: { creditsMax: 10n }, reason: "matrix", requestId: randomUUID() });
      expect(res.feature).toMatchObject({ featureKey, failurePolicy: FailurePolicy.FAIL_OPEN });
    };
  },
  "AdminService/CreateCreditType": async () => {
    const id = fresh("ct");
    return async (c) => {
      const res = await c.admin.createCreditType({ creditType: { creditTypeId: id, displayName: "Credits", scale: 2 }, requestId: randomUUID() });
      expect(res.creditType).toMatchObject({ creditTypeId: id, scale: 2 });
    };
  },
  "AdminService/ListCreditTypes": async () => async (c) => {
    const res = await c.admin.listCreditTypes({});
    expect(res.creditTypes.map((type) => type.creditTypeId)).toContain(creditTypeId);
  },
  "AdminService/CreateFeature": async () => {
    const featureKey = fresh("feature");
    return async (c) => {
      const res = await c.admin.createFeature({ feature: { featureKey, displayName: "Feature", creditTypeId, burnRate: 5n }, requestId: randomUUID() });
      expect(res.feature).toMatchObject({ featureKey, creditTypeId, burnRate: 5n });
    };
  },
  "AdminService/ListFeatures": async () => {
    const featureKey = fresh("feature");
    await admin().admin.createFeature({ feature: { featureKey, displayName: "Feature", creditTypeId, burnRate: 5n }, requestId: randomUUID() });
    return async (c) => {
      const res = await c.admin.listFeatures({});
      expect(res.features.map((feature) => feature.featureKey)).toContain(featureKey);
    };
  },
  "AdminService/CreateCustomer": async () => {
    const customerId = fresh("cust");
    return async (c) => {
      const res = await c.admin.createCustomer({ customer: { customerId, displayName: "Acme" }, requestId: randomUUID() });
      expect(res.customer).toMatchObject({ customerId, displayName: "Acme" });
    };
  },
  "AdminService/GetCustomer": async () => {
    const customerId = fresh("cust");
    await admin().admin.createCustomer({ customer: { customerId, displayName: "Acme" }, requestId: randomUUID() });
    return async (c) => {
      const res = await c.admin.getCustomer({ customerId });
      expect(res.customer).toMatchObject({ customerId, displayName: "Acme" });
    };
  },
  "AdminService/SetOverdraftLimit": async () => {
    const customerId = fresh("cust");
    await admin().admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
    return async (c) => {
      const res = await c.admin.setOverdraftLimit({ customerId, limit: { creditTypeId, amount: 500n }, requestId: randomUUID() });
      expect(res.customer?.overdraftLimits.map((limit) => [limit.creditTypeId, limit.amount])).toEqual([[creditTypeId, 500n]]);
    };
  },
  "AdminService/CreateApiKey": async () => async (c) => {
    const res = await c.admin.createApiKey({ name: "checkout", role: Role.SERVICE, requestId: randomUUID() });
    expect(res.apiKey?.role).toBe(Role.SERVICE);
    expect(keyIdOf(res.token)).toBe(res.apiKey?.keyId);
  },
  "AdminService/ListApiKeys": async () => {
    const keyId = keyIdOf(await t.createKey("service"));
    return async (c) => {
      const res = await c.admin.listApiKeys({});
      expect(res.apiKeys.map((key) => key.keyId)).toContain(keyId);
    };
  },
  "AdminService/RevokeApiKey": async () => {
    const keyId = keyIdOf(await t.createKey("service"));
    return async (c) => {
      const res = await c.admin.revokeApiKey({ keyId, requestId: randomUUID() });
      expect(res.apiKey?.keyId).toBe(keyId);
      expect(res.apiKey?.revokeTime).toBeDefined();
    };
  },
  "AdminService/CreatePricingVersion": async () => {
    const featureKey = await freshFeature();
    const pricingVersionId = fresh("pv");
    return async (c) => {
      const res = await c.admin.createPricingVersion({
        pricingVersion: { pricingVersionId, displayName: "Version", rates: [{ featureKey, rate: { credits: 2n, perUnits: 5n } }] },
        requestId: randomUUID(),
      });
      expect(res.pricingVersion?.pricingVersionId).toBe(pricingVersionId);
      expect(res.pricingVersion?.rates.map((rate) => [rate.featureKey, rate.rate?.credits, rate.rate?.perUnits])).toEqual([[featureKey, 2n, 5n]]);
    };
  },
  "AdminService/ListPricingVersions": async () => {
    const pricingVersionId = await freshPricingVersion();
    return async (c) => {
      const res = await c.admin.listPricingVersions({});
      expect(res.pricingVersions.map((version) => version.pricingVersionId)).toContain(pricingVersionId);
    };
  },
  "AdminService/SetDefaultPricingVersion": async () => {
    // A version without rates prices like the base rates, so other cells are unaffected.
    const pricingVersionId = await freshPricingVersion();
    return async (c) => {
      const res = await c.admin.setDefaultPricingVersion({ pricingVersionId, reason: "matrix", requestId: randomUUID() });
      expect(res.pricingVersionId).toBe(pricingVersionId);
    };
  },
  "AdminService/MoveCustomersToPricingVersion": async () => {
    const customerId = fresh("cust");
    await admin().admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
    const from = (await admin().admin.getCustomer({ customerId })).customer!.pricingVersionId;
    const to = await freshPricingVersion();
    return async (c) => {
      const res = await c.admin.moveCustomersToPricingVersion({
        fromPricingVersionId: from,
        toPricingVersionId: to,
        customerIds: [customerId],
        reason: "matrix",
        requestId: randomUUID(),
      });
      expect(res.movedCount).toBe(1n);
    };
  },
  "AdminService/GetShadowPricingReport": async () => {
    // One event of 2 units at the base rate 5 burns 10; a candidate without rates prices it the same.
    const customerId = await fundedCustomer();
    const featureKey = await freshFeature();
    await admin().ledger.reportUsage({ events: [{ eventId: randomUUID(), customerId, featureKey, quantity: 2n }] });
    const candidate = await freshPricingVersion();
    const now = Date.now();
    return async (c) => {
      const res = await c.admin.getShadowPricingReport({
        candidatePricingVersionId: candidate,
        startTime: timestampFromMs(now - 3_600_000),
        endTime: timestampFromMs(now + 3_600_000),
        customerIds: [customerId],
      });
      expect(res.rows.map((row) => [row.customerId, row.featureKey, row.events, row.burnedCredits, row.candidateCredits])).toEqual([[customerId, featureKey, 1n, 10n, 10n]]);
      expect(res.totals.map((total) => [total.creditTypeId, total.currentCredits, total.candidateCredits])).toEqual([[creditTypeId, 10n, 10n]]);
    };
  },
  "AdminService/SetRateOverride": async () => {
    const customerId = fresh("cust");
    await admin().admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
    const featureKey = await freshFeature();
    return async (c) => {
      const res = await c.admin.setRateOverride({ customerId, featureKey, rate: { credits: 1n, perUnits: 3n }, reason: "matrix", requestId: randomUUID() });
      expect(res.rate).toMatchObject({ credits: 1n, perUnits: 3n });
    };
  },
  "AdminService/SetEnforcementMode": async () => {
    const featureKey = await freshFeature();
    return async (c) => {
      const res = await c.admin.setEnforcementMode({ featureKey, mode: EnforcementMode.OBSERVE, reason: "matrix", requestId: randomUUID() });
      expect(res.feature).toMatchObject({ featureKey, enforcementMode: EnforcementMode.OBSERVE });
    };
  },
  "AdminService/SetEnforcementRollout": async () => {
    const featureKey = await freshFeature();
    return async (c) => {
      const res = await c.admin.setEnforcementRollout({ featureKey, rollout: { mode: EnforcementMode.OBSERVE, percent: 10 }, reason: "matrix", requestId: randomUUID() });
      expect(res.feature?.rollout).toMatchObject({ mode: EnforcementMode.OBSERVE, percent: 10 });
    };
  },
  "AdminService/SetKillSwitch": async () => async (c) => {
    // Off: a valid request that leaves enforcement as the other cells expect it.
    const res = await c.admin.setKillSwitch({ enabled: false, reason: "matrix", requestId: randomUUID() });
    expect(res.enabled).toBe(false);
  },
  "AdminService/ListAuditRecords": async () => {
    const reason = fresh("reason");
    await admin().admin.setKillSwitch({ enabled: false, reason, requestId: randomUUID() });
    return async (c) => {
      const res = await c.admin.listAuditRecords({ pageSize: 1 });
      expect(res.auditRecords.map((record) => [record.action, record.target, record.reason])).toEqual([["set_kill_switch", "kill_switch", reason]]);
    };
  },
  "AdminService/VerifyLedger": async () => {
    const customerId = fresh("cust");
    await admin().admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
    return async (c) => {
      const res = await c.admin.verifyLedger({ customerId });
      expect([res.balancesChecked, res.differenceCount]).toEqual([0n, 0n]);
    };
  },
  "AdminService/ExplainUsageEvent": async () => {
    const eventId = await burnedEvent();
    return async (c) => {
      const res = await c.admin.explainUsageEvent({ eventId });
      expect(res).toMatchObject({ reporterKeyId: keyIdOf(t.adminToken), outcome: UsageOutcome.BURNED, creditTypeId });
      expect(res.entries.map((entry) => [entry.kind, entry.amount])).toEqual([[EntryKind.BURN, 10n]]);
    };
  },
  "AdminService/SearchCustomers": async () => {
    const customerId = fresh("searched");
    await admin().admin.createCustomer({ customer: { customerId, displayName: "Searched" }, requestId: randomUUID() });
    return async (c) => {
      const res = await c.admin.searchCustomers({ query: customerId });
      expect(res.customers.map((customer) => [customer.customerId, customer.displayName])).toEqual([[customerId, "Searched"]]);
      expect(res.truncated).toBe(false);
    };
  },
  "AdminService/ListRateOverrides": async () => {
    const customerId = fresh("cust");
    await admin().admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
    const featureKey = await freshFeature();
    await admin().admin.setRateOverride({ customerId, featureKey, rate: { credits: 1n, perUnits: 3n }, reason: "matrix", requestId: randomUUID() });
    return async (c) => {
      const res = await c.admin.listRateOverrides({ customerId });
      expect(res.overrides.map((override) => [override.featureKey, override.rate?.credits, override.rate?.perUnits])).toEqual([[featureKey, 1n, 3n]]);
    };
  },
  "PlanService/CreatePlan": async () => async (c) => {
    const res = await c.plans.createPlan({ planId: fresh("plan"), displayName: "Plan", allotments: [monthlyAllotment], requestId: randomUUID() });
    expect(res.plan?.version).toBe(1);
  },
  "PlanService/ListPlans": async () => {
    const planId = await freshPlan();
    return async (c) => {
      const res = await c.plans.listPlans({});
      expect(res.plans.map((plan) => plan.planId)).toContain(planId);
    };
  },
  "PlanService/GetPlan": async () => {
    const planId = await freshPlan();
    return async (c) => {
      const res = await c.plans.getPlan({ planId });
      expect(res.plan?.allotments[0].amount).toBe(10n);
    };
  },
  "PlanService/SubscribeCustomer": async () => {
    const planId = await freshPlan();
    return async (c) => {
      const res = await c.plans.subscribeCustomer({ customerId: fresh("sub"), planId, requestId: randomUUID() });
      expect(res.subscription?.schedules[0].periodsGranted).toBe(1);
    };
  },
  "PlanService/MoveSubscription": async () => {
    const { subscriptionId } = await freshSubscription();
    return async (c) => {
      const res = await c.plans.moveSubscription({ subscriptionId, requestId: randomUUID() });
      expect(res.subscription?.subscriptionId).not.toBe(subscriptionId);
    };
  },
  "PlanService/CancelSubscription": async () => {
    const { subscriptionId } = await freshSubscription();
    return async (c) => {
      const res = await c.plans.cancelSubscription({ subscriptionId, requestId: randomUUID() });
      expect(res.subscription?.endTime).toBeDefined();
    };
  },
  "PlanService/ListSubscriptions": async () => {
    const { subscriptionId, customerId } = await freshSubscription();
    return async (c) => {
      const res = await c.plans.listSubscriptions({ customerId });
      expect(res.subscriptions.map((subscription) => subscription.subscriptionId)).toEqual([subscriptionId]);
    };
  },
  "PlanService/CreateGrantSchedule": async () => async (c) => {
    const res = await c.plans.createGrantSchedule({ customerId: fresh("sched"), allotment: monthlyAllotment, source: GrantSource.PROMOTION, reasonCode: "promo", requestId: randomUUID() });
    expect(res.schedule?.periodsGranted).toBe(1);
  },
  "PlanService/CancelGrantSchedule": async () => {
    const created = await admin().plans.createGrantSchedule({ customerId: fresh("sched"), allotment: monthlyAllotment, source: GrantSource.PROMOTION, reasonCode: "promo", requestId: randomUUID() });
    return async (c) => {
      const res = await c.plans.cancelGrantSchedule({ scheduleId: created.schedule!.scheduleId, requestId: randomUUID() });
      expect(res.schedule?.endTime).toBeDefined();
    };
  },
  "PlanService/ListGrantSchedules": async () => {
    const { customerId } = await freshSubscription();
    return async (c) => {
      const res = await c.plans.listGrantSchedules({ customerId });
      expect(res.schedules).toHaveLength(1);
    };
  },
  "PlanService/ListRollovers": async () => {
    const { customerId } = await freshSubscription();
    return async (c) => {
      const res = await c.plans.listRollovers({ customerId });
      expect(res.rollovers).toEqual([]);
    };
  },
  "WebhookService/CreateWebhookEndpoint": async () => async (c) => {
    const res = await c.webhooks.createWebhookEndpoint({ url: "https://example.com/hooks", eventTypes: ["pricing_version.moved"], requestId: randomUUID() });
    expect(res.endpoint?.url).toBe("https://example.com/hooks");
    expect(res.secret).toMatch(/^whsec_/);
    // Leaves the matrix's count of enabled endpoints as it found it.
    await admin().webhooks.disableWebhookEndpoint({ endpointId: res.endpoint!.endpointId, requestId: randomUUID() });
  },
  "WebhookService/ListWebhookEndpoints": async () => {
    const { endpointId } = await webhookEndpoint();
    return async (c) => {
      const res = await c.webhooks.listWebhookEndpoints({});
      expect(res.endpoints.map((endpoint) => endpoint.endpointId)).toContain(endpointId);
    };
  },
  "WebhookService/DisableWebhookEndpoint": async () => {
    const created = await admin().webhooks.createWebhookEndpoint({ url: "https://example.com/disable", eventTypes: ["pricing_version.moved"], requestId: randomUUID() });
    const endpointId = created.endpoint!.endpointId;
    return async (c) => {
      const res = await c.webhooks.disableWebhookEndpoint({ endpointId, requestId: randomUUID() });
      expect(res.endpoint?.disableTime).toBeDefined();
    };
  },
  "WebhookService/RotateWebhookSecret": async () => {
    const { endpointId } = await webhookEndpoint();
    return async (c) => {
      const res = await c.webhooks.rotateWebhookSecret({ endpointId, requestId: randomUUID() });
      expect(res.secret).toMatch(/^whsec_/);
    };
  },
  "WebhookService/ListWebhookEvents": async () => {
    const { endpointId, eventId } = await webhookEndpoint();
    return async (c) => {
      const res = await c.webhooks.listWebhookEvents({ endpointId, pageSize: 1_000 });
      expect(res.events.map((event) => event.eventId)).toContain(eventId);
    };
  },
  "WebhookService/ReplayWebhookEvents": async () => {
    const { endpointId, eventId } = await webhookEndpoint();
    return async (c) => {
      const res = await c.webhooks.replayWebhookEvents({ endpointId, eventIds: [eventId], requestId: randomUUID() });
      expect(res.replayedCount).toBe(1n);
    };
  },
  "PoolService/AttachPoolMember": async () => {
    const [parentCustomerId, memberCustomerId] = [await freshCustomer(), await freshCustomer()];
    return async (c) => {
      const res = await c.pools.attachPoolMember({ parentCustomerId, memberCustomerId, requestId: randomUUID() });
      expect(res.member?.parentCustomerId).toBe(parentCustomerId);
    };
  },
  "PoolService/DetachPoolMember": async () => {
    const { parentCustomerId, memberCustomerId } = await freshPoolMember();
    return async (c) => {
      const res = await c.pools.detachPoolMember({ memberCustomerId, requestId: randomUUID() });
      expect(res.parentCustomerId).toBe(parentCustomerId);
    };
  },
  "PoolService/SetPoolMemberLimit": async () => {
    const { memberCustomerId } = await freshPoolMember();
    return async (c) => {
      const res = await c.pools.setPoolMemberLimit({ memberCustomerId, creditTypeId, limit: 10n, period: PoolPeriod.DAY, requestId: randomUUID() });
      expect(res.member?.limits.map((limit) => limit.limit)).toEqual([10n]);
    };
  },
  "PoolService/ListPoolMembers": async () => {
    const { parentCustomerId, memberCustomerId } = await freshPoolMember();
    return async (c) => {
      const res = await c.pools.listPoolMembers({ customerId: parentCustomerId });
      expect(res.members.map((member) => member.memberCustomerId)).toEqual([memberCustomerId]);
    };
  },
  "AdminService/CorrectUsageEvent": async () => {
    const eventId = await burnedEvent();
    return async (c) => {
      const res = await c.admin.correctUsageEvent({ eventId, reasonCode: "wrong_rate", requestId: randomUUID() });
      expect(res.correction).toMatchObject({ reasonCode: "wrong_rate", credits: 10n });
      expect(res.entries.map((entry) => [entry.kind, entry.amount])).toEqual([[EntryKind.REFUND, 10n]]);
    };
  },
  "BillingService/CreateBundle": async () => {
    const bundleId = fresh("bundle");
    return async (c) => {
      const res = await c.billing.createBundle({ bundleId, displayName: "Matrix", creditTypeId, credits: 100n, currency: "USD", priceMinor: 500n, requestId: randomUUID() });
      expect([res.bundle?.bundleId, res.bundle?.version]).toEqual([bundleId, 1]);
    };
  },
  "BillingService/ListBundles": async () => {
    const bundleId = await freshBundle();
    return async (c) => {
      const res = await c.billing.listBundles({});
      expect(res.bundles.map((bundle) => bundle.bundleId)).toContain(bundleId);
    };
  },
  "BillingService/CreateTopUp": async () => {
    const bundleId = await freshBundle();
    const customerId = fresh("cust");
    return async (c) => {
      const res = await c.billing.createTopUp({ customerId, item: { case: "bundleId", value: bundleId }, requestId: randomUUID() });
      expect([res.topUp?.state, res.topUp?.credits]).toEqual([TopUpState.PENDING, 100n]);
    };
  },
  "BillingService/ConfirmTopUp": async () => {
    const orderId = await pendingTopUp();
    return async (c) => {
      const res = await c.billing.confirmTopUp({ orderId, paymentReference: fresh("pi"), amountMinor: 500n, currency: "USD", requestId: randomUUID() });
      expect(res.topUp?.state).toBe(TopUpState.PAID);
    };
  },
  "BillingService/CancelTopUp": async () => {
    const orderId = await pendingTopUp();
    return async (c) => {
      const res = await c.billing.cancelTopUp({ orderId, requestId: randomUUID() });
      expect(res.topUp?.state).toBe(TopUpState.CANCELLED);
    };
  },
  "BillingService/RefundTopUp": async () => {
    const orderId = await pendingTopUp();
    await admin().billing.confirmTopUp({ orderId, paymentReference: fresh("pi"), amountMinor: 500n, currency: "USD", requestId: randomUUID() });
    return async (c) => {
      const res = await c.billing.refundTopUp({ orderId, amountMinor: 500n, currency: "USD", reasonCode: "refund", paymentReference: fresh("re"), requestId: randomUUID() });
      expect(res.topUp?.state).toBe(TopUpState.REFUNDED);
      expect(res.entries.map((entry) => [entry.kind, entry.amount])).toEqual([[EntryKind.CLAWBACK, 100n]]);
    };
  },
  "BillingService/GetTopUp": async () => {
    const orderId = await pendingTopUp();
    return async (c) => {
      const res = await c.billing.getTopUp({ orderId });
      expect(res.topUp?.orderId).toBe(orderId);
    };
  },
  "PromotionService/CreatePromoCode": async () => {
    const code = freshPromoCodeText();
    return async (c) => {
      const res = await c.promotions.createPromoCode({ code, creditTypeId, amount: 10n, creditValidity: { seconds: 86_400n }, requestId: randomUUID() });
      expect(res.promoCode?.code).toBe(code);
    };
  },
  "PromotionService/ListPromoCodes": async () => {
    const code = await freshPromoCode();
    return async (c) => {
      const res = await c.promotions.listPromoCodes({ pageSize: 1_000 });
      expect(res.promoCodes.map((promoCode) => promoCode.code)).toContain(code);
    };
  },
  "PromotionService/DisablePromoCode": async () => {
    const code = await freshPromoCode();
    return async (c) => {
      const res = await c.promotions.disablePromoCode({ code, requestId: randomUUID() });
      expect(res.promoCode?.disableTime).toBeDefined();
    };
  },
  "PromotionService/RedeemPromoCode": async () => {
    const code = await freshPromoCode();
    const customerId = fresh("cust");
    return async (c) => {
      const res = await c.promotions.redeemPromoCode({ customerId, code, requestId: randomUUID() });
      expect([res.lot?.source, res.lot?.amount]).toEqual([GrantSource.PROMOTION, 10n]);
    };
  },
  "BillingService/ListTopUps": async () => {
    const orderId = await pendingTopUp();
    const customerId = (await admin().billing.getTopUp({ orderId })).topUp!.customerId;
    return async (c) => {
      const res = await c.billing.listTopUps({ customerId });
      expect(res.topUps.map((order) => order.orderId)).toEqual([orderId]);
    };
  },
  "BillingService/FailTopUp": async () => {
    const orderId = await pendingTopUp();
    return async (c) => {
      const res = await c.billing.failTopUp({ orderId, reason: "card_declined", requestId: randomUUID() });
      expect(res.topUp?.state).toBe(TopUpState.FAILED);
    };
  },
  "BillingService/SetAutoRecharge": async () => {
    const bundleId = await freshBundle();
    const customerId = fresh("cust");
    return async (c) => {
      const res = await c.billing.setAutoRecharge({ customerId, creditTypeId, enabled: true, threshold: 10n, item: { case: "bundleId", value: bundleId }, requestId: randomUUID() });
      expect([res.autoRecharge?.enabled, res.autoRecharge?.threshold]).toEqual([true, 10n]);
    };
  },
  "BillingService/GetAutoRecharge": async () => {
    const customerId = await autoRecharge();
    return async (c) => {
      const res = await c.billing.getAutoRecharge({ customerId, creditTypeId });
      expect(res.autoRecharge?.customerId).toBe(customerId);
    };
  },
  "BillingService/ListAutoRecharges": async () => {
    const customerId = await autoRecharge();
    return async (c) => {
      const res = await c.billing.listAutoRecharges({ customerId });
      expect(res.autoRecharges.map((settings) => settings.creditTypeId)).toEqual([creditTypeId]);
    };
  },
  "SupportService/SetGrantLimit": async () => {
    const keyId = keyIdOf(await t.createKey("support"));
    return async (c) => {
      const res = await c.support.setGrantLimit({ requestId: randomUUID(), limit: { keyId, creditTypeId, perCallMax: 10n, periodMax: 20n, period: { seconds: 86_400n } } });
      expect([res.limit?.keyId, res.limit?.perCallMax]).toEqual([keyId, 10n]);
    };
  },
  "SupportService/ListGrantLimits": async () => async (c) => {
    const res = await c.support.listGrantLimits({});
    expect(res.limits.some((limit) => limit.role === Role.SUPPORT && limit.creditTypeId === "")).toBe(true);
  },
  "SupportService/DeleteGrantLimit": async () => {
    const keyId = keyIdOf(await t.createKey("support"));
    await admin().support.setGrantLimit({ requestId: randomUUID(), limit: { keyId, creditTypeId, perCallMax: 10n, periodMax: 20n, period: { seconds: 86_400n } } });
    return async (c) => {
      const res = await c.support.deleteGrantLimit({ requestId: randomUUID(), keyId, creditTypeId });
      expect(res.limit?.keyId).toBe(keyId);
    };
  },
  "SupportService/SetGrantSources": async () => async (c) => {
    const res = await c.support.setGrantSources({ requestId: randomUUID(), grantSources: { role: Role.SUPPORT, sources: [GrantSource.SUPPORT, GrantSource.PROMOTION] } });
    expect(res.grantSources?.sources).toEqual([GrantSource.SUPPORT, GrantSource.PROMOTION]);
  },
  "SupportService/ListGrantSources": async () => async (c) => {
    const res = await c.support.listGrantSources({});
    expect(res.grantSources.map((sources) => sources.role)).toEqual([Role.SUPPORT]);
  },
  "SupportService/CreateReasonCode": async () => {
    const code = fresh("code");
    return async (c) => {
      const res = await c.support.createReasonCode({ requestId: randomUUID(), code, label: "Matrix" });
      expect(res.reasonCode?.code).toBe(code);
    };
  },
  "SupportService/UpdateReasonCode": async () => {
    const code = fresh("code");
    await admin().support.createReasonCode({ requestId: randomUUID(), code, label: "Matrix" });
    return async (c) => {
      const res = await c.support.updateReasonCode({ requestId: randomUUID(), code, label: "Renamed" });
      expect(res.reasonCode?.label).toBe("Renamed");
    };
  },
  "SupportService/ListReasonCodes": async () => async (c) => {
    const res = await c.support.listReasonCodes({});
    expect(res.reasonCodes.map((code) => code.code)).toContain("goodwill");
  },
  "SupportService/RequestGrant": async () => {
    const customerId = fresh("cust");
    return async (c) => {
      const res = await c.support.requestGrant({ grant: { customerId, creditTypeId, amount: 10n, source: GrantSource.SUPPORT, reasonCode: "goodwill", requestId: randomUUID() } });
      expect(res.granted?.lot?.amount).toBe(10n);
    };
  },
  "SupportService/ApproveGrantRequest": async () => {
    const grantRequestId = await pendingGrantRequest();
    return async (c) => {
      const res = await c.support.approveGrantRequest({ requestId: randomUUID(), grantRequestId, reason: "ok" });
      expect(res.granted?.lot?.amount).toBe(10n);
    };
  },
  "SupportService/RejectGrantRequest": async () => {
    const grantRequestId = await pendingGrantRequest();
    return async (c) => {
      const res = await c.support.rejectGrantRequest({ requestId: randomUUID(), grantRequestId, reason: "no" });
      expect(res.grantRequest?.grantRequestId).toBe(grantRequestId);
    };
  },
  "SupportService/ListGrantRequests": async () => {
    const grantRequestId = await pendingGrantRequest();
    return async (c) => {
      const res = await c.support.listGrantRequests({ pageSize: 1 });
      expect(res.grantRequests.map((request) => request.grantRequestId)).toEqual([grantRequestId]);
    };
  },
};

/** burnedEntry makes a funded customer with a burn of 100 and returns the customer and the burn's entry id. */
async function burnedEntry(): Promise<{ customerId: string; entryId: string }> {
  const customerId = await fundedCustomer();
  const res = await admin().ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 100n } }, requestId: randomUUID() });
  return { customerId, entryId: res.entries[0].entryId };
}

/** openDispute makes a dispute of a fresh burn, opened by the admin key. */
async function openDispute(): Promise<{ customerId: string; entryId: string; disputeId: string }> {
  const burned = await burnedEntry();
  const res = await admin().corrections.openDispute({ ...burned, entryIds: [burned.entryId], description: "not mine", requestId: randomUUID() });
  return { ...burned, disputeId: res.dispute!.disputeId };
}

const correctionCalls: Record<string, () => Promise<Send>> = {
  "CorrectionService/VoidGrant": async () => {
    const customerId = fresh("cust");
    const granted = await admin().ledger.grant({ customerId, creditTypeId, amount: 100n, source: GrantSource.SUPPORT, reasonCode: "goodwill", requestId: randomUUID() });
    return async (c) => {
      const res = await c.corrections.voidGrant({ customerId, grantId: granted.lot!.grantId, reasonCode: "mistake", requestId: randomUUID() });
      expect([res.voided, res.remaining]).toEqual([100n, 0n]);
    };
  },
  "CorrectionService/RefundCharge": async () => {
    const { customerId, entryId } = await burnedEntry();
    return async (c) => {
      const res = await c.corrections.refundCharge({ customerId, charge: { charge: { case: "entryId", value: entryId } }, amount: 40n, reasonCode: "goodwill", requestId: randomUUID() });
      expect([res.refund?.amount, res.refund?.charged]).toEqual([40n, 100n]);
    };
  },
  "CorrectionService/OpenDispute": async () => {
    const { customerId, entryId } = await burnedEntry();
    return async (c) => {
      const res = await c.corrections.openDispute({ customerId, entryIds: [entryId], description: "not mine", requestId: randomUUID() });
      expect(res.dispute?.status).toBe(DisputeStatus.OPEN);
    };
  },
  "CorrectionService/GetDispute": async () => {
    const { disputeId } = await openDispute();
    return async (c) => {
      const res = await c.corrections.getDispute({ disputeId });
      expect(res.dispute?.disputeId).toBe(disputeId);
    };
  },
  "CorrectionService/ListDisputes": async () => {
    const { customerId, disputeId } = await openDispute();
    return async (c) => {
      const res = await c.corrections.listDisputes({ customerId });
      expect(res.disputes.map((dispute) => dispute.disputeId)).toEqual([disputeId]);
    };
  },
  "CorrectionService/AssignDispute": async () => {
    const { disputeId } = await openDispute();
    return async (c) => {
      const res = await c.corrections.assignDispute({ disputeId, owner: "dana", requestId: randomUUID() });
      expect([res.dispute?.status, res.dispute?.owner]).toEqual([DisputeStatus.INVESTIGATING, "dana"]);
    };
  },
  "CorrectionService/AddDisputeNote": async () => {
    const { disputeId } = await openDispute();
    return async (c) => {
      const res = await c.corrections.addDisputeNote({ disputeId, text: "looking", requestId: randomUUID() });
      expect(res.dispute?.notes.map((note) => note.text)).toEqual(["looking"]);
    };
  },
  "CorrectionService/ResolveDispute": async () => {
    const { disputeId, entryId } = await openDispute();
    return async (c) => {
      const res = await c.corrections.resolveDispute({ disputeId, resolution: { case: "refund", value: { entryId, amount: 0n, reasonCode: "upheld" } }, requestId: randomUUID() });
      expect([res.dispute?.status, res.dispute?.refunds[0]?.amount]).toEqual([DisputeStatus.RESOLVED_REFUNDED, 100n]);
    };
  },
};
Object.assign(validCalls, correctionCalls);

/** pendingGrantRequest has a support key limited to 5 per call ask for 10, and returns the pending request's id. */
async function pendingGrantRequest(): Promise<string> {
  const requester = t.clients(await t.createKey("support", 5n));
  const res = await requester.support.requestGrant({
    grant: { customerId: fresh("cust"), creditTypeId, amount: 10n, source: GrantSource.SUPPORT, reasonCode: "goodwill", requestId: randomUUID() },
  });
  return res.pending!.grantRequestId;
}

/** freshPromoCodeText makes a code no promo code has. */
const freshPromoCodeText = () => `MATRIX-${randomBytes(6).toString("hex")}`;

/** freshPromoCode makes a code of 10 credits lasting a day, created by the admin key. */
async function freshPromoCode(): Promise<string> {
  const code = freshPromoCodeText();
  await admin().promotions.createPromoCode({ code, creditTypeId, amount: 10n, creditValidity: { seconds: 86_400n }, requestId: randomUUID() });
  return code;
}

/** autoRecharge sets a fresh customer's auto-recharge (disabled, with a balance-low alert) and returns the customer. */
async function autoRecharge(): Promise<string> {
  const customerId = fresh("cust");
  await admin().billing.setAutoRecharge({ customerId, creditTypeId, balanceLowThreshold: 5n, requestId: randomUUID() });
  return customerId;
}

/** freshBundle makes a bundle of 100 credits for 500 minor units of USD. */
async function freshCustomer(): Promise<string> {
  const customerId = fresh("cust");
  await admin().admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
  return customerId;
}

async function freshPoolMember(): Promise<{ parentCustomerId: string; memberCustomerId: string }> {
  const [parentCustomerId, memberCustomerId] = [await freshCustomer(), await freshCustomer()];
  await admin().pools.attachPoolMember({ parentCustomerId, memberCustomerId, requestId: randomUUID() });
  return { parentCustomerId, memberCustomerId };
}

async function freshBundle(): Promise<string> {
  const bundleId = fresh("bundle");
  await admin().billing.createBundle({ bundleId, displayName: "Matrix", creditTypeId, credits: 100n, currency: "USD", priceMinor: 500n, requestId: randomUUID() });
  return bundleId;
}

/** pendingTopUp makes a pending order of a fresh bundle for a fresh customer. */
async function pendingTopUp(): Promise<string> {
  const bundleId = await freshBundle();
  const res = await admin().billing.createTopUp({ customerId: fresh("cust"), item: { case: "bundleId", value: bundleId }, requestId: randomUUID() });
  return res.topUp!.orderId;
}

beforeAll(async () => {
  t = await startTestServer();
  await t.clients(t.adminToken).admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 0 }, requestId: randomUUID() });
  for (const role of roleNames) tokens.set(role, role === "admin" ? t.adminToken : await t.createKey(role));
  const revoked = await t.createKey("admin");
  await t.clients(t.adminToken).admin.revokeApiKey({ keyId: keyIdOf(revoked), requestId: randomUUID() });
  tokens.set("no key", null);
  tokens.set("a malformed key", "not-a-burndown-key");
  tokens.set("an unknown key", wellFormedToken());
  tokens.set("a known key id with a forged secret", wellFormedToken(keyIdOf(t.adminToken)));
  tokens.set("an admin key revoked before its first use", revoked);
  await t.clients(t.adminToken).admin.createCustomer({ customer: { customerId: "matrix-own" }, requestId: randomUUID() });
  const customerKey = await t.clients(t.adminToken).admin.createApiKey({ name: "portal", role: Role.CUSTOMER, customerId: "matrix-own", requestId: randomUUID() });
  tokens.set(customerCaller, customerKey.token);
});
afterAll(async () => {
  await t?.close();
});

describe("the expected table", () => {
  it("names every RPC of LedgerService, AdminService, BillingService, PlanService, WebhookService, PromotionService, PoolService, CorrectionService, FinanceService and SupportService, and has a valid call for each", () => {
    const rpcs = [LedgerService, AdminService, BillingService, PlanService, WebhookService, PromotionService, PoolService, CorrectionService, FinanceService, SupportService].flatMap((service) => service.methods.map((method) => `${service.name}/${method.name}`));
    expect(Object.keys(expectedRoles).sort()).toEqual([...rpcs].sort());
    expect(Object.keys(validCalls).sort()).toEqual([...rpcs].sort());
  });
});

const rpcNames = Object.keys(expectedRoles);
const cells = rpcNames.flatMap((rpc) => [
  ...roleNames.map((role) => {
    const allowed = expectedRoles[rpc].includes(role);
    return { rpc, caller: `a ${role} key` as string, key: role as CallerName, allowed, outcome: allowed ? "" : "PermissionDenied ROLE_NOT_ALLOWED" };
  }),
  {
    rpc,
    caller: customerCaller as string,
    key: customerCaller as CallerName,
    allowed: customerAllowed.has(rpc),
    outcome: customerAllowed.has(rpc) ? "" : rpc in customerReadable ? `NotFound ${customerReadable[rpc]}` : "PermissionDenied ROLE_NOT_ALLOWED",
  },
  ...(Object.keys(unauthenticatedCallers) as UnauthenticatedCaller[]).map((caller) => ({
    rpc,
    caller,
    key: caller as CallerName,
    allowed: false,
    outcome: `Unauthenticated ${unauthenticatedCallers[caller]}`,
  })),
]);

describe.each(["connect", "grpc"] as const)("over %s", (protocol) => {
  const allowedCells = cells.filter((cell) => cell.allowed);
  const refusedCells = cells.filter((cell) => !cell.allowed);

  it.each(allowedCells)("$rpc called with $caller succeeds", async ({ rpc, key }) => {
    const send = await validCalls[rpc]();
    await send(clientsOf(key, protocol));
  });

  it.each(refusedCells)("$rpc called with $caller is refused with $outcome and changes nothing", async ({ rpc, key }) => {
    const send = await validCalls[rpc]();
    const before = await databaseSnapshot(t.database.pool);
    const error = await errorOf(send(clientsOf(key, protocol)));
    const info = errorInfoOf(error);
    if (key in unauthenticatedCallers) {
      expect(error.code).toBe(Code.Unauthenticated);
      expect(info?.reason).toBe(unauthenticatedCallers[key as UnauthenticatedCaller]);
    } else if (key === customerCaller && rpc in customerReadable) {
      // Another customer's data: answered as if it did not exist.
      expect([error.code, info?.reason]).toEqual([Code.NotFound, customerReadable[rpc]]);
    } else if (key === customerCaller) {
      expect([error.code, info?.reason]).toEqual([Code.PermissionDenied, "ROLE_NOT_ALLOWED"]);
      expect(info?.metadata).toMatchObject({ role: "customer", method: rpc.split("/")[1] });
    } else {
      expect(error.code).toBe(Code.PermissionDenied);
      expect(info?.reason).toBe("ROLE_NOT_ALLOWED");
      expect(info?.metadata).toMatchObject({ role: key, method: rpc.split("/")[1] });
    }
    expect(info?.domain).toBe("burndown.dev");
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
  });
});

describe("the authorization header", () => {
  it("a scheme other than Bearer counts as no key: Unauthenticated MISSING_API_KEY", async () => {
    const basic: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Basic ${Buffer.from(`user:${t.adminToken}`).toString("base64")}`);
      return next(req);
    };
    const transport = createConnectTransport({ baseUrl: t.server.httpUrl, httpVersion: "1.1", interceptors: [basic] });
    const error = await errorOf(createClient(AdminService, transport).listCreditTypes({}));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(errorInfoOf(error)?.reason).toBe("MISSING_API_KEY");
  });
});

describe("support grant limits", () => {
  async function availableOf(customerId: string): Promise<bigint> {
    const res = await admin().ledger.getBalance({ customerId, creditTypeId });
    return res.balances[0].available;
  }

  it("a support grant above the key's limit is PermissionDenied GRANT_LIMIT_EXCEEDED and changes nothing", async () => {
    const support = t.clients(await t.createKey("support", 500n));
    const customerId = await fundedCustomer(1_000n);
    const before = await databaseSnapshot(t.database.pool);
    const error = await errorOf(
      support.ledger.grant({ customerId, creditTypeId, amount: 501n, source: GrantSource.SUPPORT, reasonCode: "goodwill", requestId: randomUUID() }),
    );
    expect(error.code).toBe(Code.PermissionDenied);
    expect(errorInfoOf(error)).toMatchObject({ reason: "GRANT_LIMIT_EXCEEDED", metadata: { grant_limit: "500" } });
    expect(await availableOf(customerId)).toBe(1_000n);
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
  });

  it("a support grant of exactly the key's limit succeeds", async () => {
    const support = t.clients(await t.createKey("support", 500n));
    const customerId = await fundedCustomer(1_000n);
    const res = await support.ledger.grant({ customerId, creditTypeId, amount: 500n, source: GrantSource.SUPPORT, reasonCode: "goodwill", requestId: randomUUID() });
    expect(res.lot?.amount).toBe(500n);
    expect(await availableOf(customerId)).toBe(1_500n);
  });

  it("a support key created without a limit gets the server default, inclusive", async () => {
    const support = t.clients(await t.createKey("support"));
    const customerId = fresh("cust");
    const grant = (amount: bigint) =>
      support.ledger.grant({ customerId, creditTypeId, amount, source: GrantSource.SUPPORT, reasonCode: "goodwill", requestId: randomUUID() });
    const error = await errorOf(grant(limits.supportGrantLimitDefault + 1n));
    expect(error.code).toBe(Code.PermissionDenied);
    expect(errorInfoOf(error)?.reason).toBe("GRANT_LIMIT_EXCEEDED");
    expect((await grant(limits.supportGrantLimitDefault)).lot?.amount).toBe(limits.supportGrantLimitDefault);
  });

  it("service and admin keys have no grant limit", async () => {
    for (const role of ["service", "admin"] as const) {
      const res = await clientsOf(role, "connect").ledger.grant({
        customerId: fresh("cust"),
        creditTypeId,
        amount: 1_000_000_000_000n,
        source: GrantSource.PURCHASE,
        reasonCode: "purchase",
        requestId: randomUUID(),
      });
      expect(res.balance?.available).toBe(1_000_000_000_000n);
    }
  });
});

describe("revocation", () => {
  it("a key revoked before its first use is refused at once, and listed with its revoke time", async () => {
    const token = await t.createKey("service");
    const keyId = keyIdOf(token);
    await admin().admin.revokeApiKey({ keyId, requestId: randomUUID() });
    const error = await errorOf(t.clients(token).ledger.getBalance({ customerId: await fundedCustomer() }));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(errorInfoOf(error)?.reason).toBe("INVALID_API_KEY");
    const listed = (await admin().admin.listApiKeys({})).apiKeys.find((key) => key.keyId === keyId);
    expect(listed?.revokeTime).toBeDefined();
  });
});

describe("key storage", () => {
  it("keeps only SHA-256 of a key's secret: neither the token nor the secret is anywhere in the database, replays included", async () => {
    const requestId = randomUUID();
    const created = await admin().admin.createApiKey({ name: "stored", role: Role.SERVICE, requestId, reason: "storage check" });
    const replayed = await admin().admin.createApiKey({ name: "stored", role: Role.SERVICE, requestId, reason: "storage check" });
    expect(replayed.token).toBe(""); // a replay never hands the token out again
    const [, keyId, secret] = /^bd_([0-9a-f]{20})_(.+)$/.exec(created.token)!;
    const stored = await t.database.pool.query<{ secret_hash: Buffer }>("select secret_hash from api_keys where key_id = $1", [keyId]);
    expect(stored.rows[0].secret_hash.equals(createHash("sha256").update(secret).digest())).toBe(true);
    // Every row of every table, as text and as hex (bytea), searched for the secret.
    const tables = await t.database.pool.query<{ tablename: string }>("select tablename from pg_tables where schemaname = current_schema()");
    const secretHex = Buffer.from(secret).toString("hex");
    for (const { tablename } of tables.rows) {
      const found = await t.database.pool.query(`select 1 from ${tablename} t where position($1 in t::text) > 0 or position($2 in t::text) > 0 limit 1`, [secret, secretHex]);
      expect(found.rows, `the secret is in ${tablename}`).toEqual([]);
    }
  });
});

describe("expiry", () => {
  const clock = new FakeClock();
  let timed: TestServer;
  beforeAll(async () => {
    timed = await startTestServer({ clock });
    await timed.clients(timed.adminToken).admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 0 }, requestId: randomUUID() });
  });
  afterAll(async () => {
    await timed?.close();
  });

  async function keyExpiringIn(ms: number): Promise<string> {
    const res = await timed.clients(timed.adminToken).admin.createApiKey({
      name: "short-lived",
      role: Role.SERVICE,
      expireTime: timestampFromMs(clock.ms + ms),
      requestId: randomUUID(),
    });
    expect(res.apiKey?.expireTime).toBeDefined();
    return res.token;
  }

  const listCreditTypes = (token: string) => timed.clients(token).admin.listCreditTypes({});

  it("a key works until its expire time and is refused from that instant, even while cached", async () => {
    const token = await keyExpiringIn(60_000);
    expect((await listCreditTypes(token)).creditTypes.map((type) => type.creditTypeId)).toEqual([creditTypeId]);
    clock.advance(59_999);
    await listCreditTypes(token);
    clock.advance(1);
    const error = await errorOf(listCreditTypes(token));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(errorInfoOf(error)?.reason).toBe("INVALID_API_KEY");
  });

  it("an expired key never used before is refused", async () => {
    const token = await keyExpiringIn(1_000);
    clock.advance(5_000);
    const error = await errorOf(listCreditTypes(token));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(errorInfoOf(error)?.reason).toBe("INVALID_API_KEY");
  });

  it("a key revoked after use is refused once the verification cache lapses (at most apiKeyCacheMsMax)", async () => {
    const token = await keyExpiringIn(3_600_000);
    await listCreditTypes(token);
    const keyId = token.split("_")[1];
    await timed.clients(timed.adminToken).admin.revokeApiKey({ keyId, requestId: randomUUID() });
    clock.advance(limits.apiKeyCacheMsMax);
    const error = await errorOf(listCreditTypes(token));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(errorInfoOf(error)?.reason).toBe("INVALID_API_KEY");
  });
});

describe("the actor", () => {
  // A finance key writes nothing (the matrix shows it refused every write).
  const writesBy: Record<Exclude<RoleName, "finance">, ("grant" | "reserve" | "commit" | "release" | "burn")[]> = {
    service: ["grant", "reserve", "commit", "release", "burn"],
    support: ["grant"],
    admin: ["grant", "reserve", "commit", "release", "burn"],
  };

  it.each(["service", "support", "admin"] as const)("every entry a %s key writes records that key's id as its actor", async (role) => {
    const token = tokens.get(role)!;
    const keyId = keyIdOf(token);
    const { ledger } = t.clients(token);
    const customerId = fresh(`actor_${role}`);
    await ledger.grant({ customerId, creditTypeId, amount: 1_000n, source: GrantSource.SUPPORT, reasonCode: "goodwill", requestId: randomUUID() });
    const burnActors: string[] = [];
    if (writesBy[role].includes("reserve")) {
      const first = await ledger.reserve({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 100n } }, requestId: randomUUID() });
      await ledger.commit({ reservationId: first.reservation!.reservationId, amount: 40n, requestId: randomUUID() });
      const second = await ledger.reserve({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 100n } }, requestId: randomUUID() });
      await ledger.release({ reservationId: second.reservation!.reservationId, requestId: randomUUID() });
      const burned = await ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount: 10n } }, requestId: randomUUID() });
      burnActors.push(...burned.entries.map((entry) => entry.actor));
    }
    expect(burnActors).toEqual(writesBy[role].includes("burn") ? [keyId] : []);

    const { entries } = await admin().ledger.listLedgerEntries({ customerId });
    const kinds = new Set(entries.map((entry) => entry.kind));
    const expectedKinds = role === "support" ? [EntryKind.GRANT] : [EntryKind.GRANT, EntryKind.HOLD, EntryKind.RELEASE, EntryKind.BURN];
    expect([...kinds].sort()).toEqual(expectedKinds.sort());
    expect(entries.length).toBeGreaterThan(0);
    for (const entry of entries) expect(entry.actor, `entry ${entry.entryId} (${EntryKind[entry.kind]})`).toBe(keyId);

    const rows = await t.database.pool.query(
      "select actor from grants where customer_id = $1 union all select actor from reservations where customer_id = $1",
      [customerId],
    );
    expect(rows.rows.map((row) => row.actor)).toEqual(rows.rows.map(() => keyId));
  });
});

describe("after the matrix", () => {
  it("every ledger invariant holds in the database", async () => {
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });
});
