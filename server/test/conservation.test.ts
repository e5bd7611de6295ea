// Conservation under load, the bank test adapted to a credit ledger: two server replicas,
// concurrent grants, reserves, commits, releases, burns, batches and usage reports across
// 100 customers (some with overdraft), while a reader takes frequent consistent snapshots
// (REPEATABLE READ, read only) and checks every invariant in each: stored balances equal
// the sum of their entries, lots agree with their entries, no overdraft past its limit
// unless flagged, every reservation resolved at most once.
//   BURNDOWN_BANK_SECONDS=60 npx vitest run server/test/conservation.test.ts   (the long profile)
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { errorInfoOf, GrantSource } from "@burndown/sdk";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invariantViolations } from "../../test-support/invariants.js";
import { type ReplicaProcesses, startReplicaProcesses } from "../../test-support/replicas.js";

const seconds = Number(process.env.BURNDOWN_BANK_SECONDS ?? 8);
const workersCount = 16;
const customersCount = 100;
const creditTypeId = "credits";
const featureKey = "chat";
/** Refusals a well-formed operation may meet under contention; anything else is a failure of the test. */
const expectedRefusals = new Set(["INSUFFICIENT_CREDITS", "RESERVATION_NOT_HELD", "RESERVATION_EXPIRED", "OVERLOADED"]);

let r: ReplicaProcesses;

beforeAll(async () => {
  r = await startReplicaProcesses({ jobIntervalMs: 200 });
}, 120_000);
afterAll(() => r?.stop());

describe("conservation under load", () => {
  it(`${seconds} s of mixed operations on two replicas: every consistent read finds every invariant intact`, async () => {
    const { ledgers: replicas, admin } = r;
    await admin.createCreditType({ creditType: { creditTypeId, displayName: "Credits", scale: 0 }, requestId: randomUUID() });
    await admin.createFeature({ feature: { featureKey, displayName: "Chat", creditTypeId, burnRate: 3n }, requestId: randomUUID() });
    const customers = Array.from({ length: customersCount }, (_, i) => `bank-${i}`);
    for (const [i, customerId] of customers.entries()) {
      await admin.createCustomer({ customer: { customerId, overdraftLimits: i % 5 === 0 ? [{ creditTypeId, amount: 50n }] : [] }, requestId: randomUUID() });
      await replicas[i % 2].grant({ customerId, creditTypeId, amount: 60n, source: GrantSource.PURCHASE, reasonCode: "seed", requestId: randomUUID() });
    }

    const counts = { operations: 0, refused: 0, reads: 0, inconsistentReads: 0 };
    const byKind: Record<string, number> = {};
    const unexpected: string[] = [];
    const held: string[] = [];
    const deadline = performance.now() + seconds * 1_000;
    const pick = <T>(items: readonly T[]) => items[Math.floor(Math.random() * items.length)];
    const credits = (amount: bigint) => ({ case: "credits" as const, value: { creditTypeId, amount } });

    const operations: Record<string, (ledger: (typeof replicas)[number]) => Promise<unknown>> = {
      grant: (ledger) => ledger.grant({ customerId: pick(customers), creditTypeId, amount: BigInt(1 + Math.floor(Math.random() * 15)), source: GrantSource.PROMOTION, reasonCode: "load", expireTime: Math.random() < 0.3 ? { seconds: BigInt(Math.floor(Date.now() / 1000) + 2), nanos: 0 } : undefined, requestId: randomUUID() }),
      reserve: async (ledger) => {
        const res = await ledger.reserve({ customerId: pick(customers), cost: credits(BigInt(1 + Math.floor(Math.random() * 40))), ttl: { seconds: 1n + BigInt(Math.floor(Math.random() * 3)), nanos: 0 }, requestId: randomUUID() });
        held.push(res.reservation!.reservationId);
      },
      commit: async (ledger) => {
        const reservationId = held.shift();
        if (reservationId !== undefined) await ledger.commit({ reservationId, amount: BigInt(Math.floor(Math.random() * 45)), requestId: randomUUID() });
      },
      release: async (ledger) => {
        const reservationId = held.shift();
        if (reservationId !== undefined) await ledger.release({ reservationId, requestId: randomUUID() });
      },
      burn: (ledger) => ledger.burn({ customerId: pick(customers), cost: { case: "usage", value: { featureKey, quantity: BigInt(1 + Math.floor(Math.random() * 5)) } }, requestId: randomUUID() }),
      batch: async (ledger) => {
        const customerId = pick(customers);
        const res = await ledger.reserveBatch({ requests: Array.from({ length: 5 }, () => ({ customerId, cost: credits(BigInt(1 + Math.floor(Math.random() * 20))), requestId: randomUUID() })) });
        const ids = res.results.flatMap((result) => (result.result.case === "response" ? [result.result.value.reservation!.reservationId] : []));
        if (ids.length > 0) await ledger.commitBatch({ requests: ids.map((reservationId) => ({ reservationId, amount: 1n, requestId: randomUUID() })) });
      },
      usage: (ledger) => ledger.reportUsage({ events: Array.from({ length: 20 }, () => ({ eventId: randomUUID(), customerId: pick(customers), featureKey, quantity: BigInt(1 + Math.floor(Math.random() * 3)) })) }),
    };
    const kinds = Object.keys(operations);

    const worker = async (index: number) => {
      while (performance.now() < deadline) {
        const kind = pick(kinds);
        try {
          await operations[kind](replicas[index % 2]);
        } catch (error) {
          const reason = errorInfoOf(error)?.reason ?? "";
          if (expectedRefusals.has(reason)) counts.refused++;
          else unexpected.push(`${kind}: ${Code[ConnectError.from(error).code]} ${reason} ${ConnectError.from(error).rawMessage}`);
        }
        counts.operations++;
        byKind[kind] = (byKind[kind] ?? 0) + 1;
      }
    };
    const reader = async () => {
      while (performance.now() < deadline) {
        const client = await r.database.pool.connect();
        try {
          await client.query("begin isolation level repeatable read read only");
          const violations = await invariantViolations(client as unknown as pg.Pool);
          await client.query("commit");
          counts.reads++;
          if (violations.length > 0) {
            counts.inconsistentReads++;
            unexpected.push(`inconsistent read: ${violations.join("; ")}`);
          }
        } finally {
          client.release();
        }
        await sleep(20);
      }
    };
    await Promise.all([...Array.from({ length: workersCount }, (_, i) => worker(i)), reader()]);

    console.log(`bank test (${seconds} s, 2 replicas, ${customersCount} customers): ${JSON.stringify({ ...counts, byKind })}`);
    expect(unexpected.slice(0, 5)).toEqual([]);
    expect(counts.inconsistentReads).toBe(0);
    expect(counts.reads).toBeGreaterThan(0);
    // Demand passed supply: limits were really contended.
    expect(counts.refused).toBeGreaterThan(0);
    // Let the expiry jobs settle what the load left open, then check once more.
    await sleep(3_500);
    expect(await invariantViolations(r.database.pool)).toEqual([]);
  }, 300_000);
});
