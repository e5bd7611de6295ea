// Random sequences of grant/reserve/commit/release/burn/time passing, run against the
// real server on PostgreSQL and against a deliberately simple in-memory model written
// independently of the ledger core. After every step: same outcome, same balance, same
// lots, and the database invariants hold. Seeded and replayable (see SEED below).
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { errorInfoOf, GrantSource } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runExpiryPass } from "../../server/src/jobs/expiry-jobs.js";
import { invariantViolations } from "../../test-support/invariants.js";
import { Model, type ModelReservation } from "../../test-support/ledger-model.js";
import { FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";

const SEED = Number(process.env.MODEL_SEED ?? 20261125);
const RUNS = Number(process.env.MODEL_RUNS ?? 25);

// ---- the commands ----

type Command =
  | { kind: "grant"; amount: bigint; priority: number; ttlMs: number | null }
  | { kind: "reserve"; amount: bigint; ttlMs: number }
  | { kind: "commit"; pick: number; percent: number }
  | { kind: "release"; pick: number }
  | { kind: "burn"; amount: bigint }
  | { kind: "advance"; ms: number; runJobs: boolean };

const amount = fc.bigInt({ min: 1n, max: 300n });
const command: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant("grant" as const), amount, priority: fc.integer({ min: 0, max: 2 }), ttlMs: fc.option(fc.integer({ min: 1, max: 60 }).map((s) => s * 1000)) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant("reserve" as const), amount, ttlMs: fc.integer({ min: 1, max: 60 }).map((s) => s * 1000) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("commit" as const), pick: fc.nat(), percent: fc.integer({ min: 0, max: 150 }) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("burn" as const), amount }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 1, max: 40 }).map((s) => s * 1000), runJobs: fc.boolean() }), weight: 2 },
);

// ---- running both ----

let t: TestServer;
const clock = new FakeClock();
beforeAll(async () => {
  t = await startTestServer({ clock });
  await t.clients(t.adminToken).admin.createCreditType({ creditType: { creditTypeId: "c", displayName: "C", scale: 0 }, requestId: randomUUID() });
});
afterAll(async () => t.close());

function outcomeOf(error: unknown): string {
  const reason = errorInfoOf(error)?.reason;
  const map: Record<string, string> = { INSUFFICIENT_CREDITS: "insufficient", RESERVATION_NOT_HELD: "not_held", RESERVATION_EXPIRED: "expired" };
  if (reason && map[reason]) return map[reason];
  throw error;
}

async function runScenario(limit: bigint, commands: Command[]): Promise<void> {
  const customerId = `model-${randomUUID()}`;
  const { ledger, admin } = t.clients(t.adminToken);
  await admin.createCustomer({ customer: { customerId, overdraftLimits: limit > 0n ? [{ creditTypeId: "c", amount: limit }] : [] }, requestId: randomUUID() });
  const model = new Model(limit);
  const reservations: { id: string; model: ModelReservation }[] = [];
  const credits = (value: bigint) => ({ case: "credits" as const, value: { creditTypeId: "c", amount: value } });
  for (const [step, cmd] of commands.entries()) {
    const now = clock.ms;
    let expected: string;
    let actual: string;
    switch (cmd.kind) {
      case "grant": {
        const expiresAt = cmd.ttlMs === null ? null : now + cmd.ttlMs;
        model.grant(cmd.amount, cmd.priority, expiresAt, now);
        await ledger.grant({ customerId, creditTypeId: "c", amount: cmd.amount, priority: cmd.priority, source: GrantSource.PURCHASE, reasonCode: "model", expireTime: expiresAt === null ? undefined : timestampFromMs(expiresAt), requestId: randomUUID() });
        expected = actual = "ok";
        break;
      }
      case "reserve": {
        const result = model.reserve(cmd.amount, cmd.ttlMs, now);
        expected = result === "insufficient" ? result : "ok";
        try {
          const response = await ledger.reserve({ customerId, cost: credits(cmd.amount), ttl: durationFromMs(cmd.ttlMs), requestId: randomUUID() });
          if (result !== "insufficient") reservations.push({ id: response.reservation!.reservationId, model: result });
          actual = "ok";
        } catch (error) {
          actual = outcomeOf(error);
        }
        break;
      }
      case "commit":
      case "release": {
        if (reservations.length === 0) continue;
        const target = reservations[cmd.pick % reservations.length];
        const heldTotal = target.model.holds.reduce((sum, hold) => sum + hold.amount, 0n);
        const used = cmd.kind === "commit" ? (heldTotal * BigInt(cmd.percent)) / 100n : null;
        expected = model.resolve(target.model, used, now);
        try {
          if (used === null) await ledger.release({ reservationId: target.id, requestId: randomUUID() });
          else await ledger.commit({ reservationId: target.id, amount: used, requestId: randomUUID() });
          actual = "ok";
        } catch (error) {
          actual = outcomeOf(error);
        }
        break;
      }
      case "burn": {
        expected = model.burn(cmd.amount, now);
        try {
          await ledger.burn({ customerId, cost: credits(cmd.amount), requestId: randomUUID() });
          actual = "ok";
        } catch (error) {
          actual = outcomeOf(error);
        }
        break;
      }
      case "advance": {
        clock.advance(cmd.ms);
        if (cmd.runJobs) {
          model.expireReservations(clock.ms);
          // Other scenarios' due items are processed too; loop until this pass finds none.
          while ((await runExpiryPass(t.server.deps)).reservationsExpired > 0);
        }
        expected = actual = "ok";
        break;
      }
    }
    const context = `step ${step} ${JSON.stringify(cmd, (_k, v) => (typeof v === "bigint" ? v.toString() : v))}`;
    expect(actual, context).toBe(expected);
    const balance = (await ledger.getBalance({ customerId, creditTypeId: "c" })).balances[0];
    const nowAfter = clock.ms;
    model.tidy(nowAfter);
    if (balance === undefined) {
      expect(model.granted, context).toBe(0n);
      continue;
    }
    expect({ available: balance.available, held: balance.held, granted: balance.granted, burned: balance.burned, expired: balance.expired }, context).toEqual({
      available: model.available(nowAfter),
      held: model.held,
      granted: model.granted,
      burned: model.burned,
      expired: model.expired,
    });
  }
}

describe("the server agrees with a simple model", () => {
  it(`on ${RUNS} random sequences (seed ${SEED}), with and without overdraft`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(0n, 100n), fc.array(command, { minLength: 5, maxLength: 30 }), (limit, commands) => runScenario(limit, commands)),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  }, 180_000);
});
