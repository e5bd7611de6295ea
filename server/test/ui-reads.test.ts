// The reads the admin UI and the customer's own view are built on, through the public
// clients on real PostgreSQL and a fake clock: GetCaller (and the grant reason codes it
// lists, which support keys' grants must use), ListReservations, GetUsageSummary,
// GetBalanceForecast, SearchCustomers, ListRateOverrides, and ExplainUsageEvent for a
// customer key. Each with figures worked out by hand, who may call it (a customer key
// reads its own customer only, answered NotFound for any other), and the bad input it
// refuses without changing anything.
import { randomUUID } from "node:crypto";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { errorInfoOf, GrantSource, type Reservation, ReservationStatus, Role, UsageGranularity, UsageOutcome } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invariantViolations } from "../../test-support/invariants.js";
import { type Clients, FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";
import { databaseSnapshot, errorOf } from "../../test-support/snapshot.js";

const credits = "credits";
const tokens = "tokens";
const dayMs = 86_400_000;
const hourMs = 3_600_000;
/** This deployment's grant reason codes (BURNDOWN_GRANT_REASON_CODES), not the default list. */
const reasonCodes = ["goodwill", "outage_credit"];

let t: TestServer;
let clock: FakeClock;
let admin: Clients;
let service: Clients;
let support: Clients;
let serviceKeyId: string;

const keyIdOf = (token: string) => token.split("_")[1];
const at = (iso: string) => Date.parse(iso);
const isoOf = (timestamp: { seconds: bigint; nanos: number } | undefined) => (timestamp === undefined ? undefined : new Date(timestampMs(timestamp as never)).toISOString());

/** customerKey makes a customer key for an existing customer and returns clients with it. */
async function customerKey(customerId: string, name = "portal"): Promise<Clients> {
  const created = await admin.admin.createApiKey({ name, role: Role.CUSTOMER, customerId, requestId: randomUUID() });
  return t.clients(created.token);
}

async function grant(customerId: string, amount: bigint, options: { creditTypeId?: string; expireAtMs?: number; priority?: number } = {}): Promise<void> {
  await admin.ledger.grant({
    customerId,
    creditTypeId: options.creditTypeId ?? credits,
    amount,
    source: GrantSource.PURCHASE,
    reasonCode: "purchase",
    priority: options.priority ?? 0,
    expireTime: options.expireAtMs === undefined ? undefined : timestampFromMs(options.expireAtMs),
    requestId: randomUUID(),
  });
}

async function burnCredits(customerId: string, amount: bigint): Promise<void> {
  await service.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId: credits, amount } }, requestId: randomUUID() });
}

/** report sends one usage event with the service key at an event time; it must burn. */
async function report(customerId: string, featureKey: string, quantity: bigint, eventIso: string, clients = service, eventId: string = randomUUID()): Promise<string> {
  const res = await clients.ledger.reportUsage({ events: [{ eventId, customerId, featureKey, quantity, eventTime: timestampFromMs(at(eventIso)) }] });
  expect(res.results.map((result) => result.outcome)).toEqual([UsageOutcome.BURNED]);
  return eventId;
}

/** refused checks that a call fails with a code and reason (and field, when given), and that nothing changed. */
async function refused(call: () => Promise<unknown>, code: Code, reason: string, metadata?: Record<string, string>): Promise<void> {
  const before = await databaseSnapshot(t.database.pool);
  const error = await errorOf(call());
  expect([Code[error.code], errorInfoOf(error)?.reason]).toEqual([Code[code], reason]);
  if (metadata !== undefined) expect(errorInfoOf(error)?.metadata).toEqual(metadata);
  expect(await databaseSnapshot(t.database.pool)).toEqual(before);
}

beforeAll(async () => {
  clock = new FakeClock(at("2030-01-07T06:00:00Z"));
  t = await startTestServer({ clock, grantReasonCodes: reasonCodes });
  admin = t.clients(t.adminToken);
  const serviceToken = await t.createKey("service");
  service = t.clients(serviceToken);
  serviceKeyId = keyIdOf(serviceToken);
  support = t.clients(await t.createKey("support", 500n));
  await admin.admin.createCreditType({ creditType: { creditTypeId: credits, displayName: "Credits", scale: 0 }, requestId: randomUUID() });
  await admin.admin.createCreditType({ creditType: { creditTypeId: tokens, displayName: "Tokens", scale: 0 }, requestId: randomUUID() });
  for (const [featureKey, creditTypeId, burnRate] of [["chat", credits, 2n], ["image", credits, 5n], ["embed", tokens, 1n]] as const) {
    await admin.admin.createFeature({ feature: { featureKey, displayName: featureKey, creditTypeId, burnRate }, requestId: randomUUID() });
  }
});
afterAll(async () => t?.close());

describe("GetCaller", () => {
  it("describes each kind of key: id, name, role, a support key's grant limit, a customer key's customer, and the deployment's reason codes", async () => {
    await admin.admin.createCustomer({ customer: { customerId: "caller-own" }, requestId: randomUUID() });
    const portal = await customerKey("caller-own", "caller portal");
    const serviceToken = await t.createKey("service");
    const supportToken = await t.createKey("support", 750n);
    const described = async (clients: Clients) => {
      const res = await clients.ledger.getCaller({});
      return { keyId: res.keyId, name: res.name, role: res.role, grantLimit: res.grantLimit, customerId: res.customerId, grantReasonCodes: res.grantReasonCodes };
    };
    const portalKeyId = (await admin.admin.listApiKeys({})).apiKeys.find((key) => key.name === "caller portal")!.keyId;
    expect(await described(admin)).toEqual({ keyId: keyIdOf(t.adminToken), name: "configured admin", role: Role.ADMIN, grantLimit: 0n, customerId: "", grantReasonCodes: reasonCodes });
    expect(await described(t.clients(serviceToken))).toEqual({ keyId: keyIdOf(serviceToken), name: "service key", role: Role.SERVICE, grantLimit: 0n, customerId: "", grantReasonCodes: reasonCodes });
    expect(await described(t.clients(supportToken))).toEqual({ keyId: keyIdOf(supportToken), name: "support key", role: Role.SUPPORT, grantLimit: 750n, customerId: "", grantReasonCodes: reasonCodes });
    expect(await described(portal)).toEqual({ keyId: portalKeyId, name: "caller portal", role: Role.CUSTOMER, grantLimit: 0n, customerId: "caller-own", grantReasonCodes: reasonCodes });
  });

  it("needs a key: Unauthenticated MISSING_API_KEY without one", async () => {
    const error = await errorOf(t.clients(null).ledger.getCaller({}));
    expect([error.code, errorInfoOf(error)?.reason]).toEqual([Code.Unauthenticated, "MISSING_API_KEY"]);
  });
});

describe("grant reason codes", () => {
  const grantWith = (clients: Clients, customerId: string, reasonCode: string) =>
    clients.ledger.grant({ customerId, creditTypeId: credits, amount: 100n, source: GrantSource.SUPPORT, reasonCode, requestId: randomUUID() });

  it("a support key's grant with a reason code off the deployment's list is InvalidArgument INVALID_REASON_CODE and changes nothing", async () => {
    // "promotion" is on the default list, but not on this deployment's.
    for (const reasonCode of ["promotion", "purchase"]) {
      await refused(() => grantWith(support, "reasons-support", reasonCode), Code.InvalidArgument, "INVALID_REASON_CODE", { field: "reason_code" });
    }
    const error = await errorOf(grantWith(support, "reasons-support", "promotion"));
    expect(error.rawMessage).toBe("reason_code: support keys grant with one of the reason codes goodwill, outage_credit");
    // Refused as invalid before its amount is weighed against the key's limit.
    await refused(
      () => support.ledger.grant({ customerId: "reasons-support", creditTypeId: credits, amount: 501n, source: GrantSource.SUPPORT, reasonCode: "nope", requestId: randomUUID() }),
      Code.InvalidArgument,
      "INVALID_REASON_CODE",
    );
  });

  it("a support key may grant with a listed code; service and admin keys with any code", async () => {
    for (const reasonCode of reasonCodes) expect((await grantWith(support, "reasons-support", reasonCode)).balance?.available).toBeGreaterThan(0n);
    expect((await grantWith(service, "reasons-service", "promotion")).balance?.available).toBe(100n);
    expect((await grantWith(admin, "reasons-admin", "anything_else")).balance?.available).toBe(100n);
    expect((await admin.ledger.getBalance({ customerId: "reasons-support" })).balances[0].available).toBe(200n);
  });
});

describe("ListReservations", () => {
  const customerId = "resv";
  /** r[0..4]: reservations of 1..5 credits in that order; r[1] committed, r[3] released. */
  const r: string[] = [];
  let portal: Clients;

  beforeAll(async () => {
    clock.ms = at("2030-02-10T00:00:00Z");
    await grant(customerId, 1_000n);
    await grant("resv-other", 1_000n);
    for (const amount of [1n, 2n, 3n, 4n, 5n]) {
      const res = await service.ledger.reserve({ customerId, cost: { case: "credits", value: { creditTypeId: credits, amount } }, requestId: randomUUID() });
      r.push(res.reservation!.reservationId);
    }
    await service.ledger.reserve({ customerId: "resv-other", cost: { case: "credits", value: { creditTypeId: credits, amount: 9n } }, requestId: randomUUID() });
    await service.ledger.commit({ reservationId: r[1], amount: 2n, requestId: randomUUID() });
    await service.ledger.release({ reservationId: r[3], requestId: randomUUID() });
    portal = await customerKey(customerId);
  });

  const shape = (reservation: Reservation) => [reservation.reservationId, reservation.amount, ReservationStatus[reservation.status]];

  async function pages(clients: Clients, request: { includeResolved?: boolean; pageSize: number }) {
    const seen: (string | bigint)[][][] = [];
    let pageToken = "";
    for (let page = 0; page < 20; page++) {
      const res = await clients.ledger.listReservations({ customerId, ...request, pageToken });
      seen.push(res.reservations.map(shape));
      pageToken = res.nextPageToken;
      if (pageToken === "") return seen;
    }
    throw new Error("paging did not end within 20 pages");
  }

  it("lists only the held reservations by default, newest first", async () => {
    const res = await admin.ledger.listReservations({ customerId });
    expect(res.reservations.map(shape)).toEqual([
      [r[4], 5n, "HELD"],
      [r[2], 3n, "HELD"],
      [r[0], 1n, "HELD"],
    ]);
    expect(res.nextPageToken).toBe("");
    expect(res.reservations[0]).toMatchObject({ customerId, creditTypeId: credits, featureKey: "", expireTime: timestampFromMs(clock.ms + 5 * 60_000) });
  });

  it("with include_resolved, lists every one, committed and released too", async () => {
    expect((await admin.ledger.listReservations({ customerId, includeResolved: true })).reservations.map(shape)).toEqual([
      [r[4], 5n, "HELD"],
      [r[3], 4n, "RELEASED"],
      [r[2], 3n, "HELD"],
      [r[1], 2n, "COMMITTED"],
      [r[0], 1n, "HELD"],
    ]);
  });

  it("pages cover every reservation once, in order, and the last page's token is empty", async () => {
    expect(await pages(admin, { includeResolved: true, pageSize: 2 })).toEqual([
      [[r[4], 5n, "HELD"], [r[3], 4n, "RELEASED"]],
      [[r[2], 3n, "HELD"], [r[1], 2n, "COMMITTED"]],
      [[r[0], 1n, "HELD"]],
    ]);
    expect(await pages(admin, { pageSize: 1 })).toEqual([[[r[4], 5n, "HELD"]], [[r[2], 3n, "HELD"]], [[r[0], 1n, "HELD"]]]);
    expect(await pages(admin, { pageSize: 3 })).toEqual([[[r[4], 5n, "HELD"], [r[2], 3n, "HELD"], [r[0], 1n, "HELD"]]]);
  });

  it("a page token works only for the query it came from: InvalidArgument INVALID_PAGE_TOKEN otherwise", async () => {
    const { nextPageToken } = await admin.ledger.listReservations({ customerId, includeResolved: true, pageSize: 1 });
    expect(nextPageToken).not.toBe("");
    const forged = Buffer.from(`r1:${Date.now() * 1000}:${r[0]}:AAAAAAAAAAAAAAAA`).toString("base64url");
    for (const [pageToken, request] of [
      ["not-a-token", { customerId }],
      [nextPageToken, { customerId }],
      [nextPageToken, { customerId: "resv-other", includeResolved: true }],
      [forged, { customerId }],
    ] as const) {
      await refused(() => admin.ledger.listReservations({ ...request, pageSize: 1, pageToken }), Code.InvalidArgument, "INVALID_PAGE_TOKEN", { field: "page_token" });
    }
  });

  it("takes a page size of 1 to 1,000 (0 is 100)", async () => {
    expect((await admin.ledger.listReservations({ customerId, includeResolved: true, pageSize: 1_000 })).reservations).toHaveLength(5);
    for (const pageSize of [-1, 1_001]) {
      await refused(() => admin.ledger.listReservations({ customerId, pageSize }), Code.InvalidArgument, "INVALID_PAGE_SIZE", { field: "page_size" });
    }
  });

  it("a customer key lists its own customer's reservations; any other customer, existing or not, is NotFound CUSTOMER_NOT_FOUND", async () => {
    expect((await portal.ledger.listReservations({ customerId })).reservations.map(shape)).toEqual(
      (await support.ledger.listReservations({ customerId })).reservations.map(shape),
    );
    for (const other of ["resv-other", "nobody-at-all"]) {
      await refused(() => portal.ledger.listReservations({ customerId: other }), Code.NotFound, "CUSTOMER_NOT_FOUND", { customer_id: other });
    }
    await refused(() => admin.ledger.listReservations({ customerId: "nobody-at-all" }), Code.NotFound, "CUSTOMER_NOT_FOUND");
  });
});

describe("after every case", () => {
  it("every ledger invariant holds in the database", async () => {
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });
});
