// Two server processes on one PostgreSQL, many concurrent callers on one customer:
// never overspend, never resolve a reservation twice, never lose a grant.
import { randomUUID } from "node:crypto";
import { errorInfoOf, GrantSource } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invariantViolations } from "../../test-support/invariants.js";
import { type ReplicaProcesses, startReplicaProcesses } from "../../test-support/replicas.js";

const callersCount = 200;
const initialCredits = 3_000n;

let r: ReplicaProcesses;

beforeAll(async () => {
  r = await startReplicaProcesses({ jobIntervalMs: 50 });
}, 120_000);

afterAll(() => r?.stop());

describe("two replicas, one hot customer", () => {
  it(`${callersCount} concurrent reserve+commit callers never overspend and resolve each reservation once`, async () => {
    await r.admin.createCreditType({ creditType: { creditTypeId: "api_credits", displayName: "API", scale: 0 }, requestId: randomUUID() });
    const replicas = r.ledgers;
    await replicas[0].grant({ customerId: "hot", creditTypeId: "api_credits", amount: initialCredits, source: GrantSource.PURCHASE, reasonCode: "seed", requestId: randomUUID() });

    let committed = 0n;
    let grantedDuring = 0n;
    let rejected = 0;
    let doubleResolutions = 0;
    // Each caller reserves 1-100 on one replica, then races a commit on that replica
    // against a release on the other; exactly one of the two may win. Every tenth caller
    // also grants, so grants race the holds.
    await Promise.all(
      Array.from({ length: callersCount }, async (_, index) => {
        const home = replicas[index % 2];
        const away = replicas[(index + 1) % 2];
        if (index % 10 === 0) {
          await away.grant({ customerId: "hot", creditTypeId: "api_credits", amount: 50n, source: GrantSource.PROMOTION, reasonCode: "race", requestId: randomUUID() });
          grantedDuring += 50n;
        }
        const amount = BigInt(1 + ((index * 37) % 100));
        let reservationId: string;
        try {
          const reserved = await home.reserve({ customerId: "hot", cost: { case: "credits", value: { creditTypeId: "api_credits", amount } }, requestId: randomUUID() });
          reservationId = reserved.reservation!.reservationId;
        } catch (error) {
          expect(errorInfoOf(error)?.reason).toBe("INSUFFICIENT_CREDITS");
          rejected++;
          return;
        }
        const used = amount - BigInt(index % 3);
        const [commitOutcome, releaseOutcome] = await Promise.allSettled([
          home.commit({ reservationId, amount: used, requestId: randomUUID() }),
          index % 4 === 0 ? away.release({ reservationId, requestId: randomUUID() }) : Promise.reject(new Error("no race")),
        ]);
        const wins = [commitOutcome, releaseOutcome].filter((outcome) => outcome.status === "fulfilled").length;
        if (wins !== 1) doubleResolutions++;
        for (const outcome of [commitOutcome, releaseOutcome]) {
          if (outcome.status === "rejected" && outcome.reason instanceof Error && outcome.reason.message !== "no race") {
            expect(errorInfoOf(outcome.reason)?.reason).toBe("RESERVATION_NOT_HELD");
          }
        }
        if (commitOutcome.status === "fulfilled") committed += used;
      }),
    );

    expect(doubleResolutions).toBe(0);
    const balance = (await replicas[1].getBalance({ customerId: "hot" })).balances[0];
    expect(balance.granted).toBe(initialCredits + grantedDuring);
    expect(balance.burned).toBe(committed);
    expect(balance.held).toBe(0n);
    expect(balance.available).toBe(initialCredits + grantedDuring - committed);
    expect(balance.available >= 0n).toBe(true);
    // Demand (about 10,000 in holds) far exceeds supply (about 4,000), so the limit was
    // really contended; every caller was either refused or resolved, none lost between.
    expect(rejected).toBeGreaterThan(0);
    expect(rejected + (await reservationCount())).toBe(callersCount);
    expect(await invariantViolations(r.database.pool)).toEqual([]);
  });
});

async function reservationCount(): Promise<number> {
  const result = await r.database.pool.query("select count(*)::int as n from reservations where status <> 'held'");
  return result.rows[0].n;
}
