// AdminService.VerifyLedger and `npm run verify`, on real PostgreSQL: a ledger worked
// through the public API verifies clean; the same ledger with a projection corrupted
// directly in SQL (as the database owner, in this file's scratch database) is reported
// row by row and column by column, stored beside rebuilt, and the command exits non-zero;
// and who may run it.
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import { errorInfoOf, GrantSource, Role } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invariantViolations } from "../../test-support/invariants.js";
import { type Clients, startTestServer, type TestServer } from "../../test-support/server.js";
import { databaseSnapshot, errorOf } from "../../test-support/snapshot.js";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");
const creditTypeId = "credits";

let t: TestServer;
let admin: Clients;

beforeAll(async () => {
  t = await startTestServer();
  admin = t.clients(t.adminToken);
  await admin.admin.createCreditType({ creditType: { creditTypeId, displayName: "Credits", scale: 0 }, requestId: randomUUID() });
});
afterAll(async () => t?.close());

/** customerWithHistory makes a customer with a lot, an open reservation, a commit and a burn, all through the API. */
async function customerWithHistory(label: string): Promise<{ customerId: string; grantId: string; reservationId: string }> {
  const customerId = `${label}-${randomUUID()}`;
  await admin.admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
  const granted = await admin.ledger.grant({ customerId, creditTypeId, amount: 100n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
  const cost = (amount: bigint) => ({ case: "credits" as const, value: { creditTypeId, amount } });
  const committed = await admin.ledger.reserve({ customerId, cost: cost(20n), requestId: randomUUID() });
  await admin.ledger.commit({ reservationId: committed.reservation!.reservationId, amount: 15n, requestId: randomUUID() });
  const open = await admin.ledger.reserve({ customerId, cost: cost(30n), requestId: randomUUID() });
  await admin.ledger.burn({ customerId, cost: cost(10n), requestId: randomUUID() });
  return { customerId, grantId: granted.lot!.grantId, reservationId: open.reservation!.reservationId };
}

/** verifyCommand runs `npm run verify`'s script against this file's database, as the server's least-privileged role. */
async function verifyCommand(): Promise<{ code: number; stdout: string }> {
  const env = { ...process.env, DATABASE_URL: t.database.serverUrl };
  try {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "server/src/verify.ts"], { cwd: root, env });
    return { code: 0, stdout };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout + failed.stderr };
  }
}

describe("VerifyLedger", () => {
  it("finds nothing on a ledger written through the API, and counts what it checked (all customers or one)", async () => {
    const { customerId } = await customerWithHistory("clean");
    await customerWithHistory("clean-too");
    const all = await admin.admin.verifyLedger({});
    expect([all.differenceCount, all.differences]).toEqual([0n, []]);
    expect(all.balancesChecked).toBeGreaterThanOrEqual(2n);
    expect(all.duration).toBeDefined();
    const one = await admin.admin.verifyLedger({ customerId });
    expect([one.balancesChecked, one.lotsChecked, one.reservationsChecked, one.entriesChecked, one.differenceCount]).toEqual([1n, 1n, 2n, 6n, 0n]);
  });

  it("names each corrupted projection row and column, stored beside rebuilt, and the command exits non-zero", async () => {
    const { customerId, grantId, reservationId } = await customerWithHistory("corrupt");
    const owner = t.database.pool;
    await owner.query("update balances set burned = burned + 1 where customer_id = $1", [customerId]);
    await owner.query("update grants set remaining = remaining - 2, held = held - 2 where grant_id = $1", [grantId]);
    await owner.query("update reservations set status = 'released', resolved_at = now() where reservation_id = $1", [reservationId]);
    try {
      const res = await admin.admin.verifyLedger({ customerId });
      const found = res.differences.map((d) => [d.table, d.row, d.column, d.stored, d.rebuilt]);
      expect(found).toEqual([
        ["balances", `${customerId}/${creditTypeId}`, "burned", "26", "25"],
        ["grants", `${customerId}/${grantId}`, "held", "28", "30"],
        ["grants", `${customerId}/${grantId}`, "remaining", "73", "75"],
        ["reservations", `${customerId}/${reservationId}`, "held", "0", "30"],
      ]);
      expect(res.differenceCount).toBe(4n);
      expect((await admin.admin.verifyLedger({})).differenceCount).toBe(4n);
      expect((await invariantViolations(owner)).join("\n")).toMatch(/VerifyLedger.*burned/);

      const command = await verifyCommand();
      expect(command.code).toBe(1);
      expect(command.stdout).toContain(`balances ${customerId}/${creditTypeId} burned: stored 26, rebuilt from entries 25`);
      expect(command.stdout).toContain(`reservations ${customerId}/${reservationId} held: stored 0, rebuilt from entries 30`);
      expect(command.stdout).toContain("4 differences");
    } finally {
      await owner.query("update balances set burned = burned - 1 where customer_id = $1", [customerId]);
      await owner.query("update grants set remaining = remaining + 2, held = held + 2 where grant_id = $1", [grantId]);
      await owner.query("update reservations set status = 'held', resolved_at = null where reservation_id = $1", [reservationId]);
    }
    const repaired = await verifyCommand();
    expect([repaired.code, repaired.stdout.trim().split("\n").at(-1)]).toEqual([0, "no differences: every projection equals its entries"]);
  }, 60_000);

  it("reports a lot's hold that the reservation's stored holds do not carry", async () => {
    const { customerId, reservationId, grantId } = await customerWithHistory("holds");
    const owner = t.database.pool;
    await owner.query("update reservations set holds = jsonb_build_array(jsonb_build_object('grantId', null, 'amount', '30')) where reservation_id = $1", [reservationId]);
    try {
      const res = await admin.admin.verifyLedger({ customerId });
      expect(res.differences.map((d) => [d.table, d.column, d.stored, d.rebuilt])).toEqual([["reservations", "holds", "overdraft=30", `${grantId}=30`]]);
    } finally {
      await owner.query("update reservations set holds = jsonb_build_array(jsonb_build_object('grantId', $2::text, 'amount', '30')) where reservation_id = $1", [reservationId, grantId]);
    }
    expect((await admin.admin.verifyLedger({ customerId })).differenceCount).toBe(0n);
  });

  it("refuses bad input, other roles and no key, changing nothing", async () => {
    const { customerId } = await customerWithHistory("roles");
    const refused = async (call: () => Promise<unknown>, code: Code, reason: string) => {
      const before = await databaseSnapshot(t.database.pool);
      const error = await errorOf(call());
      expect([Code[error.code], errorInfoOf(error)?.reason]).toEqual([Code[code], reason]);
      expect(await databaseSnapshot(t.database.pool)).toEqual(before);
    };
    await refused(() => admin.admin.verifyLedger({ customerId: "x".repeat(129) }), Code.InvalidArgument, "INVALID_ID");
    await refused(() => admin.admin.verifyLedger({ customerId: `nobody-${randomUUID()}` }), Code.NotFound, "CUSTOMER_NOT_FOUND");
    for (const role of ["service", "support"] as const) {
      const clients = t.clients(await t.createKey(role));
      await refused(() => clients.admin.verifyLedger({}), Code.PermissionDenied, "ROLE_NOT_ALLOWED");
    }
    const customerKey = await admin.admin.createApiKey({ name: "portal", role: Role.CUSTOMER, customerId, requestId: randomUUID() });
    await refused(() => t.clients(customerKey.token).admin.verifyLedger({ customerId }), Code.PermissionDenied, "ROLE_NOT_ALLOWED");
    await refused(() => t.clients(null).admin.verifyLedger({}), Code.Unauthenticated, "MISSING_API_KEY");
  });
});
