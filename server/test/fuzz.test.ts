// A seeded, replayable fuzzer for every LedgerService and AdminService RPC. Requests are
// generated from the message descriptors themselves, field by field, with hostile values
// (empty, oversized, unicode and control characters, int64 limits, negative and zero
// amounts, absurd times and page sizes, unknown enum numbers, garbage page tokens, 1,001
// item lists) mixed with ids of real fixture entities so that deep paths are reached; a
// second property sends random bytes as request bodies. Every answer must be a success or
// a refusal with a known code and an ErrorInfo reason; a refused request must change
// nothing (a fingerprint of every table before and after). Figures are printed at the end.
//   BURNDOWN_FUZZ_SEED=<n> BURNDOWN_FUZZ_RUNS=<n> npx vitest run server/test/fuzz.test.ts
import { randomUUID } from "node:crypto";
import { create, fromBinary, type DescField, type DescMessage, type DescService, ScalarType } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService, CorrectionService, ErrorInfoSchema, errorInfoOf, FinanceService, GrantSource, LedgerService, PlanService, PromotionService, Role, SupportService, UsageOutcome, WebhookService } from "@burndown/sdk";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";

const seed = Number(process.env.BURNDOWN_FUZZ_SEED ?? 20261202);
const runs = Number(process.env.BURNDOWN_FUZZ_RUNS ?? 400);

/** Refusals a hostile request may get; each must carry an ErrorInfo reason. */
const refusalCodes = new Set([Code.InvalidArgument, Code.NotFound, Code.FailedPrecondition, Code.AlreadyExists, Code.PermissionDenied, Code.OutOfRange]);

let t: TestServer;
const fixture = { customerId: "", creditTypeId: "credits", featureKey: "chat", reservationId: "", keyId: "", pricingVersionId: "pv_base", eventId: "" };
const figures = { requests: 0, succeeded: 0, refused: 0, byCode: {} as Record<string, number>, internal: 0, withoutReason: 0, refusedButChanged: 0, bodies: 0, bodiesMalformed: 0 };

const services: DescService[] = [LedgerService, AdminService, WebhookService, PromotionService, PlanService, CorrectionService, FinanceService, SupportService];

// --- generators from descriptors ---------------------------------------------------------

const int64Edges = [0n, 1n, -1n, 2n, 1_000n, 9_223_372_036_854_775_807n, -9_223_372_036_854_775_808n, 4_611_686_018_427_387_904n];
const uint64Edges = [0n, 1n, 18_446_744_073_709_551_615n, 9_223_372_036_854_775_808n];
const int32Edges = [0, 1, -1, 2_147_483_647, -2_147_483_648, 1_000_000];

function stringArb(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(() => fixture.customerId, () => fixture.creditTypeId, () => fixture.featureKey, () => fixture.reservationId, () => fixture.keyId, () => fixture.pricingVersionId, () => fixture.eventId).map((id) => id()) },
    { weight: 2, arbitrary: fc.string({ maxLength: 24 }) },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 12 }) },
    { weight: 1, arbitrary: fc.constantFrom("", " ", "\u0000", "\u202e", "💥", "é", "a".repeat(129), "x".repeat(5_000), "' or 1=1 --", "../../etc/passwd", "NaN", "-1", randomUUID()) },
  );
}

function scalarArb(type: ScalarType): fc.Arbitrary<unknown> {
  switch (type) {
    case ScalarType.STRING:
      return stringArb();
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 40 });
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return fc.double();
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return fc.oneof(fc.constantFrom(...int64Edges), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.bigInt({ min: -5n, max: 2_000n }));
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return fc.oneof(fc.constantFrom(...uint64Edges), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.oneof(fc.constantFrom(0, 1, 4_294_967_295), fc.nat());
    default:
      return fc.oneof(fc.constantFrom(...int32Edges), fc.integer());
  }
}

function valueArb(field: DescField, depth: number): fc.Arbitrary<unknown> {
  switch (field.fieldKind) {
    case "scalar":
      return scalarArb(field.scalar);
    case "enum":
      return fc.oneof(fc.constantFrom(...field.enum.values.map((value) => value.number)), fc.integer({ min: -3, max: 50 }));
    case "message":
      return messageArb(field.message, depth + 1);
    case "list": {
      const element: fc.Arbitrary<unknown> =
        field.listKind === "scalar" ? scalarArb(field.scalar) : field.listKind === "enum" ? fc.integer({ min: -1, max: 10 }) : messageArb(field.message, depth + 1);
      return fc.oneof(
        { weight: 6, arbitrary: fc.array(element, { maxLength: 3 }) },
        // Past the 1,000-item bounds, cheaply: one element repeated.
        { weight: 1, arbitrary: element.map((item) => Array.from({ length: 1_001 }, () => item)) },
      );
    }
    case "map":
      return fc.dictionary(fc.string({ maxLength: 8 }), field.mapKind === "scalar" ? scalarArb(field.scalar) : fc.constant({}), { maxKeys: 3 });
  }
}

function messageArb(desc: DescMessage, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  if (depth > 3) return fc.constant({});
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const field of desc.fields) {
    if (field.oneof === undefined) parts[field.localName] = valueArb(field, depth);
  }
  for (const oneof of desc.oneofs) {
    parts[oneof.localName] = fc.oneof(fc.constant({ case: undefined }), ...oneof.fields.map((field) => valueArb(field, depth).map((value) => ({ case: field.localName, value }))));
  }
  return fc.record(parts, { requiredKeys: [] });
}

// --- the invariant ---------------------------------------------------------------------------

/** fingerprint is every public table's row count and a hash of its rows. */
async function fingerprint(): Promise<string> {
  const tables = (await t.database.pool.query("select tablename from pg_tables where schemaname = 'public' order by 1")).rows.map((row) => row.tablename as string);
  const query = tables.map((table) => `select '${table}' as t, count(*)::text || ':' || coalesce(sum(hashtext(x::text)::bigint), 0)::text as f from "${table}" x`).join(" union all ");
  const rows = (await t.database.pool.query(query)).rows;
  return rows.map((row) => `${row.t}=${row.f}`).join(",");
}

function bearer(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

beforeAll(async () => {
  t = await startTestServer();
  const { admin, ledger } = t.clients(t.adminToken);
  await admin.createCreditType({ creditType: { creditTypeId: fixture.creditTypeId, displayName: "Credits", scale: 0 }, requestId: randomUUID() });
  await admin.createFeature({ feature: { featureKey: fixture.featureKey, displayName: "Chat", creditTypeId: fixture.creditTypeId, burnRate: 3n }, requestId: randomUUID() });
  await admin.createPricingVersion({ pricingVersion: { pricingVersionId: fixture.pricingVersionId, displayName: "Base", rates: [{ featureKey: fixture.featureKey, rate: { credits: 2n, perUnits: 1n } }] }, requestId: randomUUID() });
  fixture.customerId = "fuzz-customer";
  await ledger.grant({ customerId: fixture.customerId, creditTypeId: fixture.creditTypeId, amount: 1_000_000n, source: GrantSource.PURCHASE, reasonCode: "seed", requestId: randomUUID() });
  const held = await ledger.reserve({ customerId: fixture.customerId, cost: { case: "credits", value: { creditTypeId: fixture.creditTypeId, amount: 10n } }, requestId: randomUUID() });
  fixture.reservationId = held.reservation!.reservationId;
  fixture.keyId = (await admin.createApiKey({ name: "fuzz", role: Role.SERVICE, requestId: randomUUID() })).apiKey!.keyId;
  fixture.eventId = randomUUID();
  await ledger.reportUsage({ events: [{ eventId: fixture.eventId, customerId: fixture.customerId, featureKey: fixture.featureKey, quantity: 1n }] });
});

afterAll(async () => {
  // The figures of this run, for docs/reliability.md.
  console.log(`fuzz (seed ${seed}, ${runs} runs per property): ${JSON.stringify(figures)}`);
  await t?.close();
});

describe("what the fuzzer found, kept as regressions", () => {
  it("a NUL character in free text is InvalidArgument INVALID_TEXT, not Internal (seed 7)", async () => {
    const error = await t.clients(t.adminToken).admin.createCreditType({ creditType: { creditTypeId: "nul_type", displayName: "\u0000" }, requestId: randomUUID() }).catch((e: unknown) => ConnectError.from(e));
    expect(error).toBeInstanceOf(ConnectError);
    expect([(error as ConnectError).code, errorInfoOf(error)?.reason]).toEqual([Code.InvalidArgument, "INVALID_TEXT"]);
  });

  it("a NUL character in a usage property rejects that event, not the batch", async () => {
    const res = await t.clients(t.adminToken).ledger.reportUsage({
      events: [{ eventId: randomUUID(), customerId: fixture.customerId, featureKey: fixture.featureKey, quantity: 1n, properties: { model: "a\u0000b" } }],
    });
    expect(res.results.map((result) => [UsageOutcome[result.outcome], result.reason])).toEqual([["REJECTED", "INVALID_PROPERTY"]]);
  });
});

describe("fuzzing every RPC", () => {
  it("answers hostile, well-formed requests with a success or a reasoned refusal, and a refusal changes nothing", async () => {
    const transport = createConnectTransport({ baseUrl: t.server.httpUrl, httpVersion: "1.1", interceptors: [bearer(t.adminToken)] });
    const methods = services.flatMap((service) => service.methods.map((method) => ({ service, method })));
    const request = fc.constantFrom(...methods).chain(({ service, method }) => messageArb(method.input).map((init) => ({ service, method, init })));
    await fc.assert(
      fc.asyncProperty(request, async ({ service, method, init }) => {
        let message;
        try {
          message = create(method.input, init as never);
        } catch {
          return true; // a value protobuf-es itself cannot hold (it would never reach the wire)
        }
        const before = await fingerprint();
        const client = createClient(service, transport) as unknown as Record<string, (req: unknown, options?: unknown) => Promise<unknown>>;
        figures.requests++;
        try {
          await client[method.localName](message, { timeoutMs: 10_000 });
          figures.succeeded++;
          return true;
        } catch (error) {
          const connectError = ConnectError.from(error);
          const label = Code[connectError.code];
          figures.byCode[label] = (figures.byCode[label] ?? 0) + 1;
          figures.refused++;
          const reason = errorInfoOf(connectError)?.reason ?? "";
          if (!refusalCodes.has(connectError.code)) figures.internal++;
          if (reason === "") figures.withoutReason++;
          const changed = (await fingerprint()) !== before;
          if (changed) figures.refusedButChanged++;
          expect.soft(refusalCodes.has(connectError.code), `${service.typeName}/${method.name} answered ${label}: ${connectError.rawMessage}`).toBe(true);
          return refusalCodes.has(connectError.code) && reason !== "" && !changed;
        }
      }),
      { seed, numRuns: runs, verbose: 1 },
    );
    expect(figures.internal).toBe(0);
    expect(figures.refusedButChanged).toBe(0);
  }, 600_000);

  it("refuses random bytes as a request body with InvalidArgument, and changes nothing", async () => {
    const methods = services.flatMap((service) => service.methods.map((method) => `${service.typeName}/${method.name}`));
    const before = await fingerprint();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...methods), fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.constantFrom("application/proto", "application/json"), async (path, body, contentType) => {
        figures.bodies++;
        const res = await fetch(`${t.server.httpUrl}/${path}`, { method: "POST", headers: { "content-type": contentType, authorization: `Bearer ${t.adminToken}` }, body });
        if (res.status === 200) return true; // bytes that happen to decode to a valid request (unknown fields are skipped)
        const payload = (await res.json()) as { code?: string; details?: { type: string; value: string }[] };
        const info = payload.details?.find((detail) => detail.type === "google.rpc.ErrorInfo");
        const reason = info === undefined ? "" : (fromBinary(ErrorInfoSchema, Buffer.from(info.value, "base64")) as unknown as { reason: string }).reason;
        if (reason === "MALFORMED_REQUEST") figures.bodiesMalformed++;
        return (payload.code === "invalid_argument" || payload.code === "not_found" || payload.code === "failed_precondition") && reason !== "";
      }),
      { seed, numRuns: Math.ceil(runs / 2) },
    );
    // Random bodies are refused before they reach the ledger, or decode to refused requests.
    expect(await fingerprint()).toBe(before);
  }, 600_000);
});
