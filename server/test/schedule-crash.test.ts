// Scheduled grants across processes. A server killed with SIGKILL while it catches up a
// year of missed daily periods of a grant schedule, then a new server that takes over with
// its scheduler; and two replicas whose schedulers race the call that creates schedules
// with months of missed periods. Every period is granted exactly once (no gap, no double),
// each as one lot with its grant entry, and the ledger's invariants hold.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService, GrantSource, PeriodUnit, PlanService } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newApiKeyToken } from "../src/service/api-keys.js";
import { bearer } from "../../test-support/bearer.js";
import { createTestDatabase, type TestDatabase } from "../../test-support/database.js";
import { invariantViolations } from "../../test-support/invariants.js";
import { startReplicaProcesses } from "../../test-support/replicas.js";
import { type ServerProcess, startServerProcess } from "../../test-support/server-process.js";

const dayMs = 86_400_000;
const token = newApiKeyToken();
let database: TestDatabase;
const servers: ServerProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
}, 120_000);
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop("SIGKILL")));
  await database?.drop();
});

async function start(jobIntervalMs: number): Promise<ServerProcess> {
  const server = await startServerProcess({ DATABASE_URL: database.serverUrl, BURNDOWN_ADMIN_KEY: token, BURNDOWN_JOB_INTERVAL_MS: String(jobIntervalMs) });
  servers.push(server);
  return server;
}

function clients(server: ServerProcess) {
  const transport = createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [bearer(token)] });
  return { admin: createClient(AdminService, transport), plans: createClient(PlanService, transport) };
}

async function grantedPeriods(scheduleId: string): Promise<number[]> {
  const result = await database.pool.query("select period_index from schedule_grants where schedule_id = $1 order by period_index", [scheduleId]);
  return result.rows.map((row) => row.period_index as number);
}

describe("a server killed while it grants scheduled periods", () => {
  it("neither loses nor doubles a period: the next server grants the rest, each once", async () => {
    const first = await start(0);
    const api = clients(first);
    await api.admin.createCreditType({ creditType: { creditTypeId: "credits", displayName: "Credits", scale: 0 }, requestId: randomUUID() });
    const customerId = `crash-${randomUUID()}`;
    // A year of daily periods already due: the call grants them one transaction each.
    const startAt = new Date(Date.now() - 365 * dayMs + 3_600_000);
    const call = api.plans
      .createGrantSchedule({
        requestId: randomUUID(),
        customerId,
        allotment: { creditTypeId: "credits", amount: 10n, period: { unit: PeriodUnit.DAY, length: 1 }, lotExpiry: { case: "expireAtPeriodEnd", value: true } },
        source: GrantSource.PROMOTION,
        reasonCode: "promo",
        startTime: timestampFromDate(startAt),
      })
      .catch(() => null);
    let scheduleId: string | null = null;
    for (let attempt = 0; attempt < 2_000 && scheduleId === null; attempt++) {
      const result = await database.pool.query("select s.schedule_id from grant_schedules s where s.customer_id = $1 and exists (select 1 from schedule_grants g where g.schedule_id = s.schedule_id and g.period_index >= 20)", [customerId]);
      scheduleId = result.rows[0]?.schedule_id ?? null;
      if (scheduleId === null) await sleep(5);
    }
    expect(scheduleId).not.toBeNull();
    await first.stop("SIGKILL");
    await call;
    const atKill = await grantedPeriods(scheduleId!);
    expect(atKill.length).toBeLessThan(365);
    // The next server's scheduler catches up the rest.
    await start(20);
    let periods = atKill;
    for (let attempt = 0; attempt < 3_000 && periods.length < 365; attempt++) {
      await sleep(20);
      periods = await grantedPeriods(scheduleId!);
    }
    expect(periods).toEqual(Array.from({ length: 365 }, (_, index) => index + 1));
    const lots = await database.pool.query(
      "select count(*)::int as lots, sum(amount)::text as amount, (select count(*)::int from ledger_entries where customer_id = $1 and kind = 'grant') as entries from grants where customer_id = $1",
      [customerId],
    );
    expect(lots.rows[0]).toEqual({ lots: 365, amount: "3650", entries: 365 });
    expect(await invariantViolations(database.pool)).toEqual([]);
  });
});

describe("two replicas running the scheduler while schedules are created", () => {
  it("grant each period once, whichever process gets there first", async () => {
    const r = await startReplicaProcesses({ jobIntervalMs: 10 });
    try {
      await r.admin.createCreditType({ creditType: { creditTypeId: "credits", displayName: "Credits", scale: 0 }, requestId: randomUUID() });
      const startAt = new Date(Date.now() - 90 * dayMs + 3_600_000);
      // Each call grants its schedule's missed periods on replica 1 while both schedulers take them too.
      const created = await Promise.all(
        Array.from({ length: 6 }, (_, index) =>
          r.plans.createGrantSchedule({
            requestId: randomUUID(),
            customerId: `race-${index}-${randomUUID()}`,
            allotment: { creditTypeId: "credits", amount: 3n, period: { unit: PeriodUnit.DAY, length: 1 }, lotExpiry: { case: "expireAtPeriodEnd", value: true } },
            source: GrantSource.PROMOTION,
            reasonCode: "promo",
            startTime: timestampFromDate(startAt),
          }),
        ),
      );
      for (const { schedule } of created) {
        const result = await r.database.pool.query(
          `select array_agg(s.period_index order by s.period_index) as periods, count(distinct g.grant_id)::int as lots,
             (select count(*)::int from grants where customer_id = $2) as all_lots
           from schedule_grants s join grants g on g.grant_id = s.grant_id where s.schedule_id = $1`,
          [schedule!.scheduleId, schedule!.customerId],
        );
        expect(result.rows[0]).toEqual({ periods: Array.from({ length: 90 }, (_, index) => index + 1), lots: 90, all_lots: 90 });
      }
      expect(await invariantViolations(r.database.pool)).toEqual([]);
    } finally {
      await r.stop();
    }
  });
});
