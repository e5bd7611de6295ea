// The invariant checker (test-support/invariants.ts) is what every other test trusts to
// find a broken ledger; here each check is shown a ledger broken its way, directly in the
// database as its owner, and must name it.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test-support/database.js";
import { invariantViolations } from "../../test-support/invariants.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await db.pool.query("insert into credit_types (credit_type_id, display_name, scale) values ('c', 'C', 0)");
  await db.pool.query("insert into customers (customer_id) values ('alice')");
  await db.pool.query("insert into balances (customer_id, credit_type_id, granted) values ('alice', 'c', 0)");
});
afterAll(() => db?.drop());

it("a healthy empty ledger has no violations", async () => {
  expect(await invariantViolations(db.pool)).toEqual([]);
});

it("finds an entry whose balance does not exist (the database no longer refuses one)", async () => {
  await db.pool.query(
    "insert into ledger_entries (customer_id, credit_type_id, kind, amount, actor, effective_at) values ('nobody', 'c', 'burn', 5, 'test', now())",
  );
  expect((await invariantViolations(db.pool)).join("\n")).toMatch(/^every entry and reservation belongs to a balance: .*nobody/m);
});

it("finds a reservation whose balance does not exist", async () => {
  await db.pool.query(
    `insert into reservations (customer_id, reservation_id, credit_type_id, amount, holds, status, expires_at, request_id, actor)
     values ('ghost', $1, 'c', 5, '[]', 'held', now(), 'r', 'test')`,
    [randomUUID()],
  );
  expect((await invariantViolations(db.pool)).join("\n")).toMatch(/^every entry and reservation belongs to a balance: .*ghost/m);
});

it("finds a stored balance that is not the sum of its entries", async () => {
  await db.pool.query("update balances set granted = 7 where customer_id = 'alice'");
  expect((await invariantViolations(db.pool)).join("\n")).toMatch(/^every balance, lot and reservation equals its entries \(VerifyLedger\): .*alice.*granted/m);
});
