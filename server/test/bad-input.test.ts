// Bad input, table-driven, for every RPC that takes input: each case names the field it
// breaks, expects one gRPC code and one ErrorInfo reason, and shows that NOTHING changed
// by comparing a snapshot of the database before and after. Then the inclusive edges of
// each bound, commit after the time to live (on a fake clock), and ListLedgerEntries
// paging and filters.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import {
  type BurnRequestSchema,
  type ConfirmTopUpRequestSchema,
  type CreateApiKeyRequestSchema,
  type CreateBundleRequestSchema,
  type CreateTopUpRequestSchema,
  EntryKind,
  errorInfoOf,
  type GetUsageSummaryRequestSchema,
  type GrantRequestSchema,
  GrantSource,
  type LedgerEntry,
  type ListLedgerEntriesRequestSchema,
  type RefundTopUpRequestSchema,
  type ReserveRequestSchema,
  ReservationStatus,
  Role,
  UsageGranularity,
} from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invariantViolations } from "../../test-support/invariants.js";
import { databaseSnapshot, errorOf } from "../../test-support/snapshot.js";
import { type Clients, FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";

const apiCredits = "api_credits";
const otherCredits = "other_credits";
const int64Max = 9_223_372_036_854_775_807n;

let t: TestServer;
let c: Clients;

/** fixture holds the state the cases refer to; filled in beforeAll. */
const f = {
  /** has 1,000 api_credits granted, 100 held by `held`, 50 burned by `committed`, overdraft limit 200: available 850. */
  rich: "rich-customer",
  /** exists with no balances at all. */
  bare: "bare-customer",
  /** has drawn 60 on an overdraft limit of 100. */
  indebted: "indebted-customer",
  held: "",
  committed: "",
  released: "",
  /** an active service key, so a RevokeApiKey request is valid but for the field a case breaks. */
  keyId: "",
};

// Valid requests; each case breaks one field of one of these.
const grantRequest = (over: MessageInitShape<typeof GrantRequestSchema> = {}) =>
  c.ledger.grant({ customerId: f.rich, creditTypeId: apiCredits, amount: 10n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID(), ...over });
const credits = (amount: bigint, creditTypeId = apiCredits) => ({ case: "credits" as const, value: { creditTypeId, amount } });
const usage = (featureKey: string, quantity: bigint) => ({ case: "usage" as const, value: { featureKey, quantity } });
const reserveRequest = (over: MessageInitShape<typeof ReserveRequestSchema> = {}) =>
  c.ledger.reserve({ customerId: f.rich, cost: credits(10n), requestId: randomUUID(), ...over });
const burnRequest = (over: MessageInitShape<typeof BurnRequestSchema> = {}) => c.ledger.burn({ customerId: f.rich, cost: credits(10n), requestId: randomUUID(), ...over });
const commitRequest = (over: { reservationId?: string; amount?: bigint; requestId?: string } = {}) =>
  c.ledger.commit({ reservationId: f.held, amount: 10n, requestId: randomUUID(), ...over });
const releaseRequest = (over: { reservationId?: string; requestId?: string } = {}) => c.ledger.release({ reservationId: f.held, requestId: randomUUID(), ...over });
const listRequest = (over: MessageInitShape<typeof ListLedgerEntriesRequestSchema> = {}) => c.ledger.listLedgerEntries({ customerId: f.rich, ...over });
const createCreditTypeRequest = (type: { creditTypeId?: string; displayName?: string; scale?: number }, over: { requestId?: string } = {}) =>
  c.admin.createCreditType({ creditType: { creditTypeId: `ct_${randomBytes(4).toString("hex")}`, displayName: "Credits", scale: 0, ...type }, requestId: randomUUID(), ...over });
const createFeatureRequest = (feature: { featureKey?: string; displayName?: string; creditTypeId?: string; burnRate?: bigint }, over: { requestId?: string } = {}) =>
  c.admin.createFeature({ feature: { featureKey: `feature_${randomBytes(4).toString("hex")}`, displayName: "F", creditTypeId: apiCredits, burnRate: 1n, ...feature }, requestId: randomUUID(), ...over });
const createCustomerRequest = (
  customer: { customerId?: string; displayName?: string; overdraftLimits?: { creditTypeId: string; amount: bigint }[] },
  over: { requestId?: string } = {},
) =>
  c.admin.createCustomer({ customer: { customerId: `new-${randomUUID()}`, displayName: "New", ...customer }, requestId: randomUUID(), ...over });
const setOverdraftRequest = (over: { customerId?: string; limit?: { creditTypeId: string; amount: bigint }; requestId?: string } = {}) =>
  c.admin.setOverdraftLimit({ customerId: f.rich, limit: { creditTypeId: apiCredits, amount: 300n }, requestId: randomUUID(), ...over });
const usageSummaryRequest = (over: MessageInitShape<typeof GetUsageSummaryRequestSchema> = {}) =>
  c.ledger.getUsageSummary({ customerId: f.rich, startTime: timestampFromMs(Date.now() - 86_400_000), granularity: UsageGranularity.DAY, ...over });
const createApiKeyRequest = (over: MessageInitShape<typeof CreateApiKeyRequestSchema> = {}) =>
  c.admin.createApiKey({ name: "checkout", role: Role.SERVICE, requestId: randomUUID(), ...over });

/** BadCase is one refused request: what it breaks, and the code and reason it must get. */
interface BadCase {
  name: string;
  send: () => Promise<unknown>;
  code: Code;
  reason: string;
  metadata?: Record<string, string>;
}

const invalid = (name: string, reason: string, field: string | null, send: () => Promise<unknown>): BadCase => ({
  name,
  send,
  code: Code.InvalidArgument,
  reason,
  metadata: field === null ? undefined : { field },
});

/** Ids: 1-128 printable ASCII characters without spaces. */
const badIds = [
  { label: "empty", value: "", reason: "MISSING_FIELD" },
  { label: "with a space", value: "acme corp", reason: "INVALID_ID" },
  { label: "non-ASCII", value: "acmé", reason: "INVALID_ID" },
  { label: "129 characters long", value: "x".repeat(129), reason: "INVALID_ID" },
];
/** Codes: 1-64 characters of [a-z0-9_.-], starting with a letter or digit. */
const badCodes = [
  { label: "empty", value: "", reason: "MISSING_FIELD" },
  { label: "uppercase", value: "Api_Credits", reason: "INVALID_CODE" },
  { label: "65 characters long", value: "a".repeat(65), reason: "INVALID_CODE" },
  { label: "starting with an underscore", value: "_credits", reason: "INVALID_CODE" },
];
const nonEmptyBadCodes = badCodes.filter((bad) => bad.value !== "");
const reservationIds = [
  ...badIds.map((bad) => ({ ...bad, reason: bad.value === "" ? "MISSING_FIELD" : "INVALID_ID" })),
  { label: "not a UUID", value: "reservation-1", reason: "INVALID_ID" },
];

/** Every mutating RPC, with a valid request but for the request id it is given. */
const mutations: Record<string, (requestId: string) => Promise<unknown>> = {
  Grant: (requestId) => grantRequest({ requestId }),
  Reserve: (requestId) => reserveRequest({ requestId }),
  Commit: (requestId) => commitRequest({ requestId }),
  Release: (requestId) => releaseRequest({ requestId }),
  Burn: (requestId) => burnRequest({ requestId }),
  CreateCreditType: (requestId) => createCreditTypeRequest({}, { requestId }),
  CreateFeature: (requestId) => createFeatureRequest({}, { requestId }),
  CreateCustomer: (requestId) => createCustomerRequest({}, { requestId }),
  SetOverdraftLimit: (requestId) => setOverdraftRequest({ requestId }),
  CreateApiKey: (requestId) => createApiKeyRequest({ requestId }),
  RevokeApiKey: (requestId) => c.admin.revokeApiKey({ keyId: f.keyId, requestId }),
  CreateBundle: (requestId) => createBundleRequest({ requestId }),
  CreateTopUp: (requestId) => createTopUpRequest({ requestId }),
  ConfirmTopUp: (requestId) => confirmTopUpRequest({ requestId }),
  CancelTopUp: (requestId) => c.billing.cancelTopUp({ orderId: randomUUID(), requestId }),
  RefundTopUp: (requestId) => refundTopUpRequest({ requestId }),
};

const createBundleRequest = (over: MessageInitShape<typeof CreateBundleRequestSchema> = {}) =>
  c.billing.createBundle({ bundleId: "bad_input_bundle", displayName: "Bundle", creditTypeId: apiCredits, credits: 100n, currency: "USD", priceMinor: 500n, requestId: randomUUID(), ...over });
const createTopUpRequest = (over: MessageInitShape<typeof CreateTopUpRequestSchema> = {}) =>
  c.billing.createTopUp({ customerId: f.rich, item: { case: "amount", value: { creditTypeId: apiCredits, credits: 100n, currency: "USD", priceMinor: 500n } }, requestId: randomUUID(), ...over });
const confirmTopUpRequest = (over: MessageInitShape<typeof ConfirmTopUpRequestSchema> = {}) =>
  c.billing.confirmTopUp({ orderId: randomUUID(), paymentReference: "pi_bad_input", amountMinor: 500n, currency: "USD", requestId: randomUUID(), ...over });
const refundTopUpRequest = (over: MessageInitShape<typeof RefundTopUpRequestSchema> = {}) =>
  c.billing.refundTopUp({ orderId: randomUUID(), paymentReference: "re_bad_input", amountMinor: 500n, currency: "USD", reasonCode: "refund", requestId: randomUUID(), ...over });

/** Every RPC that takes a customer id, with a valid request but for that id. */
const customerIdFields: Record<string, { field: string; send: (customerId: string) => Promise<unknown> }> = {
  Grant: { field: "customer_id", send: (customerId) => grantRequest({ customerId }) },
  Reserve: { field: "customer_id", send: (customerId) => reserveRequest({ customerId }) },
  Burn: { field: "customer_id", send: (customerId) => burnRequest({ customerId }) },
  GetBalance: { field: "customer_id", send: (customerId) => c.ledger.getBalance({ customerId }) },
  ListLedgerEntries: { field: "customer_id", send: (customerId) => listRequest({ customerId }) },
  CreateCustomer: { field: "customer.customer_id", send: (customerId) => createCustomerRequest({ customerId }) },
  GetCustomer: { field: "customer_id", send: (customerId) => c.admin.getCustomer({ customerId }) },
  SetOverdraftLimit: { field: "customer_id", send: (customerId) => setOverdraftRequest({ customerId }) },
  ListReservations: { field: "customer_id", send: (customerId) => c.ledger.listReservations({ customerId }) },
  GetUsageSummary: { field: "customer_id", send: (customerId) => usageSummaryRequest({ customerId }) },
  GetBalanceForecast: { field: "customer_id", send: (customerId) => c.ledger.getBalanceForecast({ customerId }) },
  ListRateOverrides: { field: "customer_id", send: (customerId) => c.admin.listRateOverrides({ customerId }) },
  CreateTopUp: { field: "customer_id", send: (customerId) => createTopUpRequest({ customerId }) },
  ListTopUps: { field: "customer_id", send: (customerId) => c.billing.listTopUps({ customerId }) },
};

/** Every code field, required or optional, with a valid request but for that code. */
const codeFields: { rpc: string; field: string; required: boolean; send: (code: string) => Promise<unknown> }[] = [
  { rpc: "Grant", field: "credit_type_id", required: true, send: (code) => grantRequest({ creditTypeId: code }) },
  { rpc: "Grant", field: "reason_code", required: true, send: (code) => grantRequest({ reasonCode: code }) },
  { rpc: "Reserve", field: "credits.credit_type_id", required: true, send: (code) => reserveRequest({ cost: credits(10n, code) }) },
  { rpc: "Reserve", field: "usage.feature_key", required: true, send: (code) => reserveRequest({ cost: usage(code, 1n) }) },
  { rpc: "Burn", field: "credits.credit_type_id", required: true, send: (code) => burnRequest({ cost: credits(10n, code) }) },
  { rpc: "Burn", field: "usage.feature_key", required: true, send: (code) => burnRequest({ cost: usage(code, 1n) }) },
  { rpc: "GetBalance", field: "credit_type_id", required: false, send: (code) => c.ledger.getBalance({ customerId: f.rich, creditTypeId: code }) },
  { rpc: "ListLedgerEntries", field: "credit_type_id", required: false, send: (code) => listRequest({ creditTypeId: code }) },
  { rpc: "CreateCreditType", field: "credit_type.credit_type_id", required: true, send: (code) => createCreditTypeRequest({ creditTypeId: code }) },
  { rpc: "CreateFeature", field: "feature.feature_key", required: true, send: (code) => createFeatureRequest({ featureKey: code }) },
  { rpc: "CreateFeature", field: "feature.credit_type_id", required: true, send: (code) => createFeatureRequest({ creditTypeId: code }) },
  {
    rpc: "CreateCustomer",
    field: "customer.overdraft_limits[0].credit_type_id",
    required: true,
    send: (code) => createCustomerRequest({ overdraftLimits: [{ creditTypeId: code, amount: 5n }] }),
  },
  { rpc: "SetOverdraftLimit", field: "limit.credit_type_id", required: true, send: (code) => setOverdraftRequest({ limit: { creditTypeId: code, amount: 5n } }) },
  { rpc: "GetUsageSummary", field: "credit_type_id", required: false, send: (code) => usageSummaryRequest({ creditTypeId: code }) },
  { rpc: "GetBalanceForecast", field: "credit_type_id", required: false, send: (code) => c.ledger.getBalanceForecast({ customerId: f.rich, creditTypeId: code }) },
  { rpc: "CreateBundle", field: "bundle_id", required: true, send: (code) => createBundleRequest({ bundleId: code }) },
  { rpc: "CreateBundle", field: "credit_type_id", required: true, send: (code) => createBundleRequest({ creditTypeId: code }) },
  { rpc: "CreateTopUp", field: "bundle_id", required: true, send: (code) => createTopUpRequest({ item: { case: "bundleId", value: code } }) },
  {
    rpc: "CreateTopUp",
    field: "amount.credit_type_id",
    required: true,
    send: (code) => createTopUpRequest({ item: { case: "amount", value: { creditTypeId: code, credits: 1n, currency: "USD", priceMinor: 1n } } }),
  },
  { rpc: "RefundTopUp", field: "reason_code", required: true, send: (code) => refundTopUpRequest({ reasonCode: code }) },
];

const farFutureMs = Date.now() + 365 * 24 * 3_600_000;
const hourMs = 3_600_000;

const cases: BadCase[] = [
  // Request ids, on every mutating RPC.
  ...Object.entries(mutations).flatMap(([rpc, send]) =>
    badIds.map((bad) => invalid(`${rpc} with a request_id ${bad.label}`, bad.reason, "request_id", () => send(bad.value))),
  ),
  // Customer ids, on every RPC that takes one.
  ...Object.entries(customerIdFields).flatMap(([rpc, { field, send }]) =>
    badIds.map((bad) => invalid(`${rpc} with a customer id ${bad.label}`, bad.reason, field, () => send(bad.value))),
  ),
  // Codes, on every field that holds one.
  ...codeFields.flatMap(({ rpc, field, required, send }) =>
    (required ? badCodes : nonEmptyBadCodes).map((bad) => invalid(`${rpc} with ${field} ${bad.label}`, bad.reason, field, () => send(bad.value))),
  ),
  // Reservation ids, on Commit and Release.
  ...reservationIds.flatMap((bad) => [
    invalid(`Commit with a reservation id ${bad.label}`, bad.reason, "reservation_id", () => commitRequest({ reservationId: bad.value })),
    invalid(`Release with a reservation id ${bad.label}`, bad.reason, "reservation_id", () => releaseRequest({ reservationId: bad.value })),
  ]),

  // Bundles and top-ups.
  invalid("CreateBundle at a price of 0", "INVALID_PRICE", "price_minor", () => createBundleRequest({ priceMinor: 0n })),
  invalid("CreateBundle at a negative price", "INVALID_PRICE", "price_minor", () => createBundleRequest({ priceMinor: -1n })),
  invalid("CreateBundle of 0 credits", "INVALID_AMOUNT", "credits", () => createBundleRequest({ credits: 0n })),
  invalid("CreateBundle with -1 bonus credits", "INVALID_AMOUNT", "bonus_credits", () => createBundleRequest({ bonusCredits: -1n })),
  invalid("CreateBundle in a lower-case currency", "INVALID_CURRENCY", "currency", () => createBundleRequest({ currency: "usd" })),
  invalid("CreateBundle in a four-letter currency", "INVALID_CURRENCY", "currency", () => createBundleRequest({ currency: "USDT" })),
  invalid("CreateBundle without a display name", "MISSING_FIELD", "display_name", () => createBundleRequest({ displayName: "" })),
  invalid("CreateBundle with a credit expiry of half a second", "INVALID_CREDIT_EXPIRY", "credit_expiry", () => createBundleRequest({ creditExpiry: { seconds: 0n, nanos: 500_000_000 } })),
  invalid("CreateBundle with a negative credit expiry", "INVALID_CREDIT_EXPIRY", "credit_expiry", () => createBundleRequest({ creditExpiry: { seconds: -60n } })),
  { name: "CreateBundle on an unknown credit type", send: () => createBundleRequest({ creditTypeId: "no_such_credits" }), code: Code.NotFound, reason: "CREDIT_TYPE_NOT_FOUND" },
  invalid("CreateTopUp without a bundle or an amount", "MISSING_FIELD", "item", () => createTopUpRequest({ item: { case: undefined } })),
  invalid("CreateTopUp with a bundle version for an amount", "INVALID_BUNDLE_VERSION", "bundle_version", () => createTopUpRequest({ bundleVersion: 2 })),
  invalid("CreateTopUp of an amount at a price of 0", "INVALID_PRICE", "amount.price_minor", () =>
    createTopUpRequest({ item: { case: "amount", value: { creditTypeId: apiCredits, credits: 1n, currency: "USD", priceMinor: 0n } } }),
  ),
  invalid("CreateTopUp of 0 credits", "INVALID_AMOUNT", "amount.credits", () =>
    createTopUpRequest({ item: { case: "amount", value: { creditTypeId: apiCredits, credits: 0n, currency: "USD", priceMinor: 1n } } }),
  ),
  { name: "CreateTopUp of an unknown bundle", send: () => createTopUpRequest({ item: { case: "bundleId", value: "no_such_bundle" } }), code: Code.NotFound, reason: "BUNDLE_NOT_FOUND" },
  invalid("ConfirmTopUp of an order id that is not one", "INVALID_ID", "order_id", () => confirmTopUpRequest({ orderId: "order-1" })),
  invalid("ConfirmTopUp without a payment reference", "MISSING_FIELD", "payment_reference", () => confirmTopUpRequest({ paymentReference: "" })),
  invalid("ConfirmTopUp of 0 paid", "INVALID_PRICE", "amount_minor", () => confirmTopUpRequest({ amountMinor: 0n })),
  invalid("ConfirmTopUp in no currency", "INVALID_CURRENCY", "currency", () => confirmTopUpRequest({ currency: "" })),
  { name: "ConfirmTopUp of an unknown order", send: () => confirmTopUpRequest(), code: Code.NotFound, reason: "TOPUP_NOT_FOUND" },
  invalid("RefundTopUp of -1", "INVALID_PRICE", "amount_minor", () => refundTopUpRequest({ amountMinor: -1n })),
  { name: "RefundTopUp of an unknown order", send: () => refundTopUpRequest(), code: Code.NotFound, reason: "TOPUP_NOT_FOUND" },
  { name: "GetTopUp of an unknown order", send: () => c.billing.getTopUp({ orderId: randomUUID() }), code: Code.NotFound, reason: "TOPUP_NOT_FOUND" },
  invalid("ListTopUps with a page size of -1", "INVALID_PAGE_SIZE", "page_size", () => c.billing.listTopUps({ customerId: f.rich, pageSize: -1 })),

  // Grant.
  invalid("Grant of 0 credits", "INVALID_AMOUNT", "amount", () => grantRequest({ amount: 0n })),
  invalid("Grant of -5 credits", "INVALID_AMOUNT", "amount", () => grantRequest({ amount: -5n })),
  invalid("Grant of int64 min credits", "INVALID_AMOUNT", "amount", () => grantRequest({ amount: -int64Max - 1n })),
  invalid("Grant with source UNSPECIFIED", "INVALID_ENUM", "source", () => grantRequest({ source: GrantSource.UNSPECIFIED })),
  invalid("Grant with an unknown source value", "INVALID_ENUM", "source", () => grantRequest({ source: 99 as GrantSource })),
  invalid("Grant with a 1,001-character note", "TEXT_TOO_LONG", "note", () => grantRequest({ note: "n".repeat(1_001) })),
  invalid("Grant with priority -1", "INVALID_PRIORITY", "priority", () => grantRequest({ priority: -1 })),
  invalid("Grant with priority 1,001", "INVALID_PRIORITY", "priority", () => grantRequest({ priority: 1_001 })),
  invalid("Grant with a negative cost basis", "INVALID_AMOUNT", "cost_basis_micros", () => grantRequest({ costBasisMicros: -1n })),
  invalid("Grant with an expire_time in the past", "INVALID_EXPIRE_TIME", "expire_time", () => grantRequest({ expireTime: timestampFromMs(Date.now() - hourMs) })),
  invalid("Grant with an expire_time before its effective_time", "INVALID_EXPIRE_TIME", "expire_time", () =>
    grantRequest({ effectiveTime: timestampFromMs(farFutureMs + 2 * hourMs), expireTime: timestampFromMs(farFutureMs + hourMs) }),
  ),
  invalid("Grant with an expire_time equal to its effective_time", "INVALID_EXPIRE_TIME", "expire_time", () =>
    grantRequest({ effectiveTime: timestampFromMs(farFutureMs), expireTime: timestampFromMs(farFutureMs) }),
  ),
  invalid("Grant with an effective_time whose nanos are negative", "INVALID_TIME", "effective_time", () =>
    grantRequest({ effectiveTime: { seconds: BigInt(Math.floor(farFutureMs / 1000)), nanos: -1 } }),
  ),
  {
    name: "Grant of an unknown credit type to a new customer (the customer is not created)",
    send: () => grantRequest({ customerId: "never-created", creditTypeId: "no_such_credits" }),
    code: Code.NotFound,
    reason: "CREDIT_TYPE_NOT_FOUND",
    metadata: { credit_type_id: "no_such_credits" },
  },

  // Reserve.
  invalid("Reserve of 0 credits", "INVALID_AMOUNT", "credits.amount", () => reserveRequest({ cost: credits(0n) })),
  invalid("Reserve of -10 credits", "INVALID_AMOUNT", "credits.amount", () => reserveRequest({ cost: credits(-10n) })),
  invalid("Reserve of quantity 0 of a feature", "INVALID_QUANTITY", "usage.quantity", () => reserveRequest({ cost: usage("image_gen", 0n) })),
  invalid("Reserve of quantity -1 of a feature", "INVALID_QUANTITY", "usage.quantity", () => reserveRequest({ cost: usage("image_gen", -1n) })),
  invalid("Reserve without a cost", "MISSING_FIELD", "cost", () => reserveRequest({ cost: { case: undefined } })),
  invalid("Reserve with a TTL of 999 ms", "INVALID_TTL", "ttl", () => reserveRequest({ ttl: { seconds: 0n, nanos: 999_000_000 } })),
  invalid("Reserve with a TTL of 0", "INVALID_TTL", "ttl", () => reserveRequest({ ttl: { seconds: 0n, nanos: 0 } })),
  invalid("Reserve with a negative TTL", "INVALID_TTL", "ttl", () => reserveRequest({ ttl: { seconds: -60n, nanos: 0 } })),
  invalid("Reserve with a TTL of 24 h and 1 ms", "INVALID_TTL", "ttl", () => reserveRequest({ ttl: { seconds: 86_400n, nanos: 1_000_000 } })),
  invalid("Reserve with a TTL of 2^62 s", "INVALID_TTL", "ttl", () => reserveRequest({ ttl: { seconds: 2n ** 62n, nanos: 0 } })),
  invalid("Reserve with a TTL whose nanos are out of range (1.5e9)", "INVALID_TTL", "ttl", () => reserveRequest({ ttl: { seconds: 0n, nanos: 1_500_000_000 } })),
  invalid("Reserve of a quantity whose cost overflows int64 (burn rate 2^62 × 4)", "AMOUNT_OUT_OF_RANGE", "usage.quantity", () =>
    reserveRequest({ cost: usage("huge", 4n) }),
  ),
  invalid("Reserve of a quantity whose cost is just past int64 (burn rate 2^62 × 2)", "AMOUNT_OUT_OF_RANGE", "usage.quantity", () =>
    reserveRequest({ cost: usage("huge", 2n) }),
  ),
  { name: "Reserve for an unknown customer", send: () => reserveRequest({ customerId: "no-such-customer" }), code: Code.NotFound, reason: "CUSTOMER_NOT_FOUND" },
  {
    name: "Reserve of an unknown credit type",
    send: () => reserveRequest({ cost: credits(10n, "no_such_credits") }),
    code: Code.NotFound,
    reason: "CREDIT_TYPE_NOT_FOUND",
  },
  { name: "Reserve of an unknown feature", send: () => reserveRequest({ cost: usage("no_such_feature", 1n) }), code: Code.NotFound, reason: "FEATURE_NOT_FOUND" },
  {
    name: "Reserve of 1 over available + overdraft",
    send: () => reserveRequest({ cost: credits(1_051n) }),
    code: Code.FailedPrecondition,
    reason: "INSUFFICIENT_CREDITS",
    metadata: { customer_id: f.rich, credit_type_id: apiCredits, available: "850", required: "1051" },
  },
  {
    name: "Reserve of a feature's usage over available + overdraft",
    send: () => reserveRequest({ cost: usage("image_gen", 106n) }),
    code: Code.FailedPrecondition,
    reason: "INSUFFICIENT_CREDITS",
    metadata: { available: "850", required: "1060" },
  },
  {
    name: "Reserve of a credit type the customer has no balance in",
    send: () => reserveRequest({ cost: credits(1n, otherCredits) }),
    code: Code.FailedPrecondition,
    reason: "INSUFFICIENT_CREDITS",
    metadata: { available: "0", required: "1" },
  },

  // Commit and Release.
  invalid("Commit of -1", "INVALID_AMOUNT", "amount", () => commitRequest({ amount: -1n })),
  { name: "Commit of an unknown reservation", send: () => commitRequest({ reservationId: randomUUID() }), code: Code.NotFound, reason: "RESERVATION_NOT_FOUND" },
  { name: "Release of an unknown reservation", send: () => releaseRequest({ reservationId: randomUUID() }), code: Code.NotFound, reason: "RESERVATION_NOT_FOUND" },
  {
    name: "Commit of an already committed reservation",
    send: () => commitRequest({ reservationId: f.committed, amount: 50n }),
    code: Code.FailedPrecondition,
    reason: "RESERVATION_NOT_HELD",
    metadata: { status: "committed" },
  },
  {
    name: "Commit of a released reservation",
    send: () => commitRequest({ reservationId: f.released }),
    code: Code.FailedPrecondition,
    reason: "RESERVATION_NOT_HELD",
    metadata: { status: "released" },
  },
  {
    name: "Release of a committed reservation",
    send: () => releaseRequest({ reservationId: f.committed }),
    code: Code.FailedPrecondition,
    reason: "RESERVATION_NOT_HELD",
    metadata: { status: "committed" },
  },
  {
    name: "Release of an already released reservation",
    send: () => releaseRequest({ reservationId: f.released }),
    code: Code.FailedPrecondition,
    reason: "RESERVATION_NOT_HELD",
    metadata: { status: "released" },
  },
  {
    // Held 100 + available 850 + overdraft 200 = 1,150 at most.
    name: "Commit of more than held + available + overdraft",
    send: () => commitRequest({ amount: 1_151n }),
    code: Code.FailedPrecondition,
    reason: "INSUFFICIENT_CREDITS",
    metadata: { available: "950", required: "1151" },
  },

  // Burn.
  invalid("Burn of 0 credits", "INVALID_AMOUNT", "credits.amount", () => burnRequest({ cost: credits(0n) })),
  invalid("Burn of -10 credits", "INVALID_AMOUNT", "credits.amount", () => burnRequest({ cost: credits(-10n) })),
  invalid("Burn of quantity 0 of a feature", "INVALID_QUANTITY", "usage.quantity", () => burnRequest({ cost: usage("image_gen", 0n) })),
  invalid("Burn without a cost", "MISSING_FIELD", "cost", () => burnRequest({ cost: { case: undefined } })),
  invalid("Burn of a quantity whose cost overflows int64 (burn rate 2^62 × 4)", "AMOUNT_OUT_OF_RANGE", "usage.quantity", () => burnRequest({ cost: usage("huge", 4n) })),
  { name: "Burn for an unknown customer", send: () => burnRequest({ customerId: "no-such-customer" }), code: Code.NotFound, reason: "CUSTOMER_NOT_FOUND" },
  { name: "Burn of an unknown credit type", send: () => burnRequest({ cost: credits(10n, "no_such_credits") }), code: Code.NotFound, reason: "CREDIT_TYPE_NOT_FOUND" },
  { name: "Burn of an unknown feature", send: () => burnRequest({ cost: usage("no_such_feature", 1n) }), code: Code.NotFound, reason: "FEATURE_NOT_FOUND" },
  {
    name: "Burn of 1 over available + overdraft",
    send: () => burnRequest({ cost: credits(1_051n) }),
    code: Code.FailedPrecondition,
    reason: "INSUFFICIENT_CREDITS",
    metadata: { available: "850", required: "1051" },
  },

  // Check: a quantity of 0 means 1; a negative one is refused.
  invalid("Check of quantity -1", "INVALID_QUANTITY", "quantity", () => c.ledger.check({ customerId: f.rich, featureKey: "image_gen", quantity: -1n })),

  // GetBalance and ListLedgerEntries.
  { name: "GetBalance of an unknown customer", send: () => c.ledger.getBalance({ customerId: "no-such-customer" }), code: Code.NotFound, reason: "CUSTOMER_NOT_FOUND" },
  { name: "ListLedgerEntries of an unknown customer", send: () => listRequest({ customerId: "no-such-customer" }), code: Code.NotFound, reason: "CUSTOMER_NOT_FOUND" },
  invalid("ListLedgerEntries with page size -1", "INVALID_PAGE_SIZE", "page_size", () => listRequest({ pageSize: -1 })),
  invalid("ListLedgerEntries with page size 1,001", "INVALID_PAGE_SIZE", "page_size", () => listRequest({ pageSize: 1_001 })),
  invalid("ListLedgerEntries with kind UNSPECIFIED", "INVALID_ENUM", "kinds", () => listRequest({ kinds: [EntryKind.GRANT, EntryKind.UNSPECIFIED] })),
  invalid("ListLedgerEntries with an unknown kind value", "INVALID_ENUM", "kinds", () => listRequest({ kinds: [99 as EntryKind] })),
  invalid("ListLedgerEntries with a start_time whose nanos are out of range", "INVALID_TIME", "start_time", () =>
    listRequest({ startTime: { seconds: 0n, nanos: 1_000_000_000 } }),
  ),
  invalid("ListLedgerEntries with a made-up page token", "INVALID_PAGE_TOKEN", "page_token", () => listRequest({ pageToken: "not-a-token" })),
  invalid("ListLedgerEntries with a well-formed token whose filter hash is wrong", "INVALID_PAGE_TOKEN", "page_token", () =>
    listRequest({ pageToken: Buffer.from("v1:5:AAAAAAAAAAAAAAAA").toString("base64url") }),
  ),
  invalid("ListLedgerEntries with a forged token whose cursor is beyond int64", "INVALID_PAGE_TOKEN", "page_token", () => {
    const hash = createHash("sha256").update(JSON.stringify([f.rich, "", "", "", ""])).digest("base64url").slice(0, 16);
    return listRequest({ pageToken: Buffer.from(`v1:9999999999999999999:${hash}`).toString("base64url") });
  }),
  invalid("ListLedgerEntries with a 513-character page token", "TEXT_TOO_LONG", "page_token", () => listRequest({ pageToken: "a".repeat(513) })),
  invalid("ListLedgerEntries with a page token reused with another kind filter", "INVALID_PAGE_TOKEN", "page_token", async () => {
    const first = await listRequest({ pageSize: 1 });
    expect(first.nextPageToken).not.toBe("");
    return listRequest({ pageSize: 1, pageToken: first.nextPageToken, kinds: [EntryKind.BURN] });
  }),
  invalid("ListLedgerEntries with a page token reused with another credit type", "INVALID_PAGE_TOKEN", "page_token", async () => {
    const first = await listRequest({ pageSize: 1 });
    return listRequest({ pageSize: 1, pageToken: first.nextPageToken, creditTypeId: apiCredits });
  }),
  invalid("ListLedgerEntries with a page token reused for another customer", "INVALID_PAGE_TOKEN", "page_token", async () => {
    const first = await listRequest({ pageSize: 1 });
    return listRequest({ customerId: f.indebted, pageSize: 1, pageToken: first.nextPageToken });
  }),
  invalid("ListLedgerEntries with a page token reused with a start_time", "INVALID_PAGE_TOKEN", "page_token", async () => {
    const first = await listRequest({ pageSize: 1 });
    return listRequest({ pageSize: 1, pageToken: first.nextPageToken, startTime: timestampFromMs(0) });
  }),

  // CreateCreditType.
  invalid("CreateCreditType without a credit type", "MISSING_FIELD", "credit_type", () => c.admin.createCreditType({ requestId: randomUUID() })),
  invalid("CreateCreditType with scale -1", "INVALID_SCALE", "credit_type.scale", () => createCreditTypeRequest({ scale: -1 })),
  invalid("CreateCreditType with scale 13", "INVALID_SCALE", "credit_type.scale", () => createCreditTypeRequest({ scale: 13 })),
  invalid("CreateCreditType with a 201-character display name", "TEXT_TOO_LONG", "credit_type.display_name", () =>
    createCreditTypeRequest({ displayName: "d".repeat(201) }),
  ),
  {
    name: "CreateCreditType of an existing id",
    send: () => createCreditTypeRequest({ creditTypeId: apiCredits }),
    code: Code.AlreadyExists,
    reason: "CREDIT_TYPE_EXISTS",
  },

  // CreateFeature.
  invalid("CreateFeature without a feature", "MISSING_FIELD", "feature", () => c.admin.createFeature({ requestId: randomUUID() })),
  invalid("CreateFeature with burn rate 0", "INVALID_AMOUNT", "feature.burn_rate", () => createFeatureRequest({ burnRate: 0n })),
  invalid("CreateFeature with burn rate -3", "INVALID_AMOUNT", "feature.burn_rate", () => createFeatureRequest({ burnRate: -3n })),
  invalid("CreateFeature with a 201-character display name", "TEXT_TOO_LONG", "feature.display_name", () => createFeatureRequest({ displayName: "d".repeat(201) })),
  {
    name: "CreateFeature on an unknown credit type",
    send: () => createFeatureRequest({ creditTypeId: "no_such_credits" }),
    code: Code.NotFound,
    reason: "CREDIT_TYPE_NOT_FOUND",
  },
  { name: "CreateFeature of an existing key", send: () => createFeatureRequest({ featureKey: "image_gen" }), code: Code.AlreadyExists, reason: "FEATURE_EXISTS" },

  // CreateCustomer, GetCustomer and SetOverdraftLimit.
  invalid("CreateCustomer without a customer", "MISSING_FIELD", "customer", () => c.admin.createCustomer({ requestId: randomUUID() })),
  invalid("CreateCustomer with a negative overdraft limit", "INVALID_AMOUNT", "customer.overdraft_limits[0].amount", () =>
    createCustomerRequest({ overdraftLimits: [{ creditTypeId: apiCredits, amount: -1n }] }),
  ),
  invalid("CreateCustomer with one credit type's overdraft limit twice", "DUPLICATE_CREDIT_TYPE", "customer.overdraft_limits", () =>
    createCustomerRequest({ overdraftLimits: [{ creditTypeId: apiCredits, amount: 1n }, { creditTypeId: apiCredits, amount: 2n }] }),
  ),
  invalid("CreateCustomer with a 201-character display name", "TEXT_TOO_LONG", "customer.display_name", () => createCustomerRequest({ displayName: "d".repeat(201) })),
  {
    name: "CreateCustomer with an overdraft limit on an unknown credit type (the customer is not created)",
    send: () => createCustomerRequest({ overdraftLimits: [{ creditTypeId: "no_such_credits", amount: 5n }] }),
    code: Code.NotFound,
    reason: "CREDIT_TYPE_NOT_FOUND",
  },
  { name: "CreateCustomer of an existing id", send: () => createCustomerRequest({ customerId: f.bare }), code: Code.AlreadyExists, reason: "CUSTOMER_EXISTS" },
  { name: "GetCustomer of an unknown customer", send: () => c.admin.getCustomer({ customerId: "no-such-customer" }), code: Code.NotFound, reason: "CUSTOMER_NOT_FOUND" },
  invalid("SetOverdraftLimit without a limit", "MISSING_FIELD", "limit", () => c.admin.setOverdraftLimit({ customerId: f.rich, requestId: randomUUID() })),
  invalid("SetOverdraftLimit to -1", "INVALID_AMOUNT", "limit.amount", () => setOverdraftRequest({ limit: { creditTypeId: apiCredits, amount: -1n } })),
  { name: "SetOverdraftLimit for an unknown customer", send: () => setOverdraftRequest({ customerId: "no-such-customer" }), code: Code.NotFound, reason: "CUSTOMER_NOT_FOUND" },
  {
    name: "SetOverdraftLimit on an unknown credit type",
    send: () => setOverdraftRequest({ limit: { creditTypeId: "no_such_credits", amount: 5n } }),
    code: Code.NotFound,
    reason: "CREDIT_TYPE_NOT_FOUND",
  },
  {
    name: "SetOverdraftLimit below the overdraft in use",
    send: () => setOverdraftRequest({ customerId: f.indebted, limit: { creditTypeId: apiCredits, amount: 59n } }),
    code: Code.FailedPrecondition,
    reason: "OVERDRAFT_IN_USE",
  },

  // CreateApiKey and RevokeApiKey.
  invalid("CreateApiKey with role UNSPECIFIED", "INVALID_ENUM", "role", () => createApiKeyRequest({ role: Role.UNSPECIFIED })),
  invalid("CreateApiKey with an unknown role value", "INVALID_ENUM", "role", () => createApiKeyRequest({ role: 99 as Role })),
  invalid("CreateApiKey with an empty name", "MISSING_FIELD", "name", () => createApiKeyRequest({ name: "" })),
  invalid("CreateApiKey with a blank name", "MISSING_FIELD", "name", () => createApiKeyRequest({ name: "   " })),
  invalid("CreateApiKey with a 129-character name", "TEXT_TOO_LONG", "name", () => createApiKeyRequest({ name: "n".repeat(129) })),
  invalid("CreateApiKey of a support key with a negative grant limit", "INVALID_AMOUNT", "grant_limit", () =>
    createApiKeyRequest({ role: Role.SUPPORT, grantLimit: -1n }),
  ),
  invalid("CreateApiKey of a service key with a grant limit", "INVALID_GRANT_LIMIT", "grant_limit", () => createApiKeyRequest({ grantLimit: 10n })),
  invalid("CreateApiKey with an expire_time in the past", "INVALID_EXPIRE_TIME", "expire_time", () =>
    createApiKeyRequest({ expireTime: timestampFromMs(Date.now() - hourMs) }),
  ),
  invalid("RevokeApiKey without a key id", "MISSING_FIELD", "key_id", () => c.admin.revokeApiKey({ keyId: "", requestId: randomUUID() })),
  invalid("RevokeApiKey with a key id with a space", "INVALID_ID", "key_id", () => c.admin.revokeApiKey({ keyId: "key 1", requestId: randomUUID() })),
  {
    name: "RevokeApiKey of an unknown key",
    send: () => c.admin.revokeApiKey({ keyId: randomBytes(10).toString("hex"), requestId: randomUUID() }),
    code: Code.NotFound,
    reason: "API_KEY_NOT_FOUND",
  },
];

beforeAll(async () => {
  t = await startTestServer();
  c = t.clients(t.adminToken);
  for (const creditTypeId of [apiCredits, otherCredits]) {
    await c.admin.createCreditType({ creditType: { creditTypeId, displayName: creditTypeId, scale: 0 }, requestId: randomUUID() });
  }
  await c.admin.createFeature({ feature: { featureKey: "image_gen", displayName: "Images", creditTypeId: apiCredits, burnRate: 10n }, requestId: randomUUID() });
  await c.admin.createFeature({ feature: { featureKey: "huge", displayName: "Huge", creditTypeId: apiCredits, burnRate: 2n ** 62n }, requestId: randomUUID() });

  await c.admin.createCustomer({ customer: { customerId: f.rich, overdraftLimits: [{ creditTypeId: apiCredits, amount: 200n }] }, requestId: randomUUID() });
  await grantRequest({ amount: 1_000n });
  const reserve = async (amount: bigint) => (await reserveRequest({ cost: credits(amount) })).reservation!.reservationId;
  f.held = await reserve(100n);
  f.committed = await reserve(100n);
  await commitRequest({ reservationId: f.committed, amount: 50n });
  f.released = await reserve(100n);
  await releaseRequest({ reservationId: f.released });

  await c.admin.createCustomer({ customer: { customerId: f.bare }, requestId: randomUUID() });
  await c.admin.createCustomer({ customer: { customerId: f.indebted, overdraftLimits: [{ creditTypeId: apiCredits, amount: 100n }] }, requestId: randomUUID() });
  await burnRequest({ customerId: f.indebted, cost: credits(60n) });
  f.keyId = /^bd_([0-9a-f]{20})_/.exec(await t.createKey("service"))![1];

  const balance = await c.ledger.getBalance({ customerId: f.rich, creditTypeId: apiCredits });
  expect(balance.balances[0]).toMatchObject({ available: 850n, held: 100n, burned: 50n, overdraftLimit: 200n });
});
afterAll(async () => {
  await t?.close();
});

describe("a bad request is refused with its code and reason, and changes nothing", () => {
  const titled = cases.map((bad) => ({ ...bad, title: `${bad.name}: ${Code[bad.code]} ${bad.reason}` }));
  it.each(titled)("$title", async ({ send, code, reason, metadata }) => {
    const before = await databaseSnapshot(t.database.pool);
    const error = await errorOf(send());
    const info = errorInfoOf(error);
    expect({ code: Code[error.code], reason: info?.reason }, error.rawMessage).toEqual({ code: Code[code], reason });
    expect(info?.domain).toBe("burndown.dev");
    if (metadata !== undefined) expect(info?.metadata).toMatchObject(metadata);
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
  });

  it("a Grant that would push the balance's granted total past int64 is AMOUNT_OUT_OF_RANGE and changes nothing", async () => {
    const before = await databaseSnapshot(t.database.pool);
    const error = await errorOf(grantRequest({ amount: int64Max }));
    expect({ code: Code[error.code], reason: errorInfoOf(error)?.reason }).toEqual({ code: Code[Code.InvalidArgument], reason: "AMOUNT_OUT_OF_RANGE" });
    expect(await databaseSnapshot(t.database.pool)).toEqual(before);
  });
});

describe("the bounds are inclusive", () => {
  const fresh = () => `edge-${randomUUID()}`;

  it("a 128-character customer id, a 64-character code and a 1,000-character note are accepted", async () => {
    const customerId = "c".repeat(128);
    const res = await grantRequest({ customerId, reasonCode: "r".repeat(64), note: "n".repeat(1_000), requestId: "q".repeat(128) });
    expect(res.lot?.amount).toBe(10n);
    expect((await c.admin.getCustomer({ customerId })).customer?.customerId).toBe(customerId);
  });

  it("TTLs of exactly 1 s and exactly 24 h are accepted", async () => {
    for (const seconds of [1n, 86_400n]) {
      const res = await reserveRequest({ cost: credits(1n), ttl: { seconds, nanos: 0 } });
      expect(res.reservation?.status).toBe(ReservationStatus.HELD);
      await releaseRequest({ reservationId: res.reservation!.reservationId });
    }
  });

  it("page size 1,000 is accepted", async () => {
    expect((await listRequest({ pageSize: 1_000 })).entries.length).toBeGreaterThan(0);
  });

  it("a Reserve of exactly available + overdraft succeeds and leaves available at minus the limit", async () => {
    const customerId = fresh();
    await c.admin.createCustomer({ customer: { customerId, overdraftLimits: [{ creditTypeId: apiCredits, amount: 200n }] }, requestId: randomUUID() });
    await grantRequest({ customerId, amount: 100n });
    const res = await reserveRequest({ customerId, cost: credits(300n) });
    expect(res.balance).toMatchObject({ available: -200n, held: 300n });
  });

  it("a quantity × burn rate of exactly 2^62 passes the overflow check and is judged on credits", async () => {
    const error = await errorOf(reserveRequest({ cost: usage("huge", 1n) }));
    expect(errorInfoOf(error)).toMatchObject({ reason: "INSUFFICIENT_CREDITS", metadata: { required: (2n ** 62n).toString() } });
  });
});

describe("commit after the time to live", () => {
  const clock = new FakeClock();
  let timed: TestServer;
  let tc: Clients;
  beforeAll(async () => {
    timed = await startTestServer({ clock });
    tc = timed.clients(timed.adminToken);
    await tc.admin.createCreditType({ creditType: { creditTypeId: apiCredits, displayName: "API", scale: 0 }, requestId: randomUUID() });
    await tc.ledger.grant({ customerId: "timed", creditTypeId: apiCredits, amount: 1_000n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
  });
  afterAll(async () => {
    await timed?.close();
  });

  const reserveFor = async (ttlSeconds: bigint) =>
    (await tc.ledger.reserve({ customerId: "timed", cost: credits(100n), ttl: { seconds: ttlSeconds, nanos: 0 }, requestId: randomUUID() })).reservation!;

  it("a commit once the TTL has run out is FailedPrecondition RESERVATION_EXPIRED and changes nothing", async () => {
    const reservation = await reserveFor(10n);
    clock.advance(10_000);
    const before = await databaseSnapshot(timed.database.pool);
    const error = await errorOf(tc.ledger.commit({ reservationId: reservation.reservationId, amount: 40n, requestId: randomUUID() }));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(errorInfoOf(error)).toMatchObject({ reason: "RESERVATION_EXPIRED", metadata: { reservation_id: reservation.reservationId } });
    expect(await databaseSnapshot(timed.database.pool)).toEqual(before);
  });

  it("a commit 1 ms before the TTL runs out succeeds", async () => {
    const reservation = await reserveFor(10n);
    clock.advance(9_999);
    const res = await tc.ledger.commit({ reservationId: reservation.reservationId, amount: 40n, requestId: randomUUID() });
    expect(res.reservation).toMatchObject({ status: ReservationStatus.COMMITTED, committedAmount: 40n });
  });
});

describe("ListLedgerEntries paging and filters", () => {
  const customerId = "pager";
  /** expected lists the entries written, oldest first, as [kind, credit type, amount]. */
  const expected: [EntryKind, string, bigint][] = [];

  beforeAll(async () => {
    const grant = async (creditTypeId: string, amount: bigint, priority = 0) => {
      await grantRequest({ customerId, creditTypeId, amount, priority });
      expected.push([EntryKind.GRANT, creditTypeId, amount]);
    };
    const burn = async (creditTypeId: string, amount: bigint) => {
      await burnRequest({ customerId, cost: credits(amount, creditTypeId) });
      expected.push([EntryKind.BURN, creditTypeId, amount]);
    };
    await grant(apiCredits, 100n);
    await grant(otherCredits, 50n);
    await burn(apiCredits, 10n);
    const held = await reserveRequest({ customerId, cost: credits(20n) });
    expected.push([EntryKind.HOLD, apiCredits, 20n]);
    await releaseRequest({ reservationId: held.reservation!.reservationId });
    expected.push([EntryKind.RELEASE, apiCredits, 20n]);
    await burn(otherCredits, 5n);
    await grant(apiCredits, 30n, 1);
    await burn(apiCredits, 7n);
  });

  const shape = (entry: LedgerEntry): [EntryKind, string, bigint] => [entry.kind, entry.creditTypeId, entry.amount];

  async function pageThrough(request: MessageInitShape<typeof ListLedgerEntriesRequestSchema>, pageSize: number) {
    const pages: LedgerEntry[][] = [];
    let pageToken = "";
    for (let page = 0; page < 50; page++) {
      const res = await listRequest({ customerId, ...request, pageSize, pageToken });
      expect(res.entries.length).toBeLessThanOrEqual(pageSize);
      pages.push(res.entries);
      pageToken = res.nextPageToken;
      if (pageToken === "") return pages;
    }
    throw new Error("paging did not end within 50 pages");
  }

  it("pages of 2 cover every entry exactly once, newest first, and end with an empty token", async () => {
    const pages = await pageThrough({}, 2);
    expect(pages.length).toBe(Math.ceil(expected.length / 2));
    expect(pages.length).toBeGreaterThan(2);
    for (const page of pages) expect(page.length).toBeGreaterThan(0);
    const entries = pages.flat();
    const ids = entries.map((entry) => BigInt(entry.entryId));
    expect(new Set(ids).size).toBe(ids.length);
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBeLessThan(ids[i - 1]);
    expect(entries.map(shape)).toEqual([...expected].reverse());
    const all = await listRequest({ customerId, pageSize: 1_000 });
    expect(all.entries.map((entry) => entry.entryId)).toEqual(entries.map((entry) => entry.entryId));
    expect(all.nextPageToken).toBe("");
  });

  it("a kind filter returns only that kind, across pages", async () => {
    const burns = (await pageThrough({ kinds: [EntryKind.BURN] }, 1)).flat();
    expect(burns.map(shape)).toEqual(expected.filter(([kind]) => kind === EntryKind.BURN).reverse());
  });

  it("a credit type filter returns only that credit type", async () => {
    const other = (await pageThrough({ creditTypeId: otherCredits }, 2)).flat();
    expect(other.map(shape)).toEqual(expected.filter(([, creditTypeId]) => creditTypeId === otherCredits).reverse());
  });

  it("kind and credit type filters combine", async () => {
    const entries = (await pageThrough({ creditTypeId: apiCredits, kinds: [EntryKind.GRANT, EntryKind.HOLD] }, 2)).flat();
    expect(entries.map(shape)).toEqual(
      expected.filter(([kind, creditTypeId]) => creditTypeId === apiCredits && (kind === EntryKind.GRANT || kind === EntryKind.HOLD)).reverse(),
    );
  });
});

describe("after every case", () => {
  it("every ledger invariant holds in the database", async () => {
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });
});
