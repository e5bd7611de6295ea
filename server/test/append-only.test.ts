// The ledger is append-only and is the record (DESIGN.md invariants 1, 2 and 6): the
// database itself refuses to change or remove entries, stored balances equal the sum of
// their entries, and a balance as of any past moment can be rebuilt from entries alone.
import { randomUUID } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type CreditBalance, EntryKind, GrantSource, type LedgerEntry, type Reservation } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runExpiryPass } from "../src/jobs/expiry-jobs.js";
import { invariantViolations } from "../../test-support/invariants.js";
import { type Clients, FakeClock, startTestServer, type TestServer } from "../../test-support/server.js";

const creditTypeId = "api_credits";
const secondMs = 1_000;
const minuteMs = 60 * secondMs;
const hourMs = 60 * minuteMs;
const dayMs = 24 * hourMs;
const passesMax = 20;
const pagesMax = 100;

let t: TestServer;
let clock: FakeClock;
let api: Clients;

beforeAll(async () => {
  clock = new FakeClock();
  t = await startTestServer({ clock });
  api = t.clients(t.adminToken);
  await api.admin.createCreditType({ creditType: { creditTypeId, displayName: "API", scale: 0 }, requestId: randomUUID() });
});
afterAll(async () => t.close());

function newCustomerId(label: string): string {
  return `${label}-${randomUUID()}`;
}

async function grant(customerId: string, amount: bigint, lot: { effectiveAt?: Date; expiresAt?: Date } = {}): Promise<string> {
  const response = await api.ledger.grant({
    customerId,
    creditTypeId,
    amount,
    source: GrantSource.PURCHASE,
    reasonCode: "test",
    effectiveTime: lot.effectiveAt && timestampFromDate(lot.effectiveAt),
    expireTime: lot.expiresAt && timestampFromDate(lot.expiresAt),
    requestId: randomUUID(),
  });
  return response.lot!.grantId;
}

async function reserve(customerId: string, amount: bigint, ttlMs: number): Promise<Reservation> {
  const response = await api.ledger.reserve({
    customerId,
    cost: { case: "credits", value: { creditTypeId, amount } },
    ttl: { seconds: BigInt(ttlMs / secondMs) },
    requestId: randomUUID(),
  });
  return response.reservation!;
}

async function burn(customerId: string, amount: bigint): Promise<void> {
  await api.ledger.burn({ customerId, cost: { case: "credits", value: { creditTypeId, amount } }, requestId: randomUUID() });
}

async function balanceOf(customerId: string): Promise<CreditBalance> {
  const response = await api.ledger.getBalance({ customerId, creditTypeId });
  expect(response.balances).toHaveLength(1);
  return response.balances[0];
}

async function drainExpiry(): Promise<void> {
  for (let pass = 0; pass < passesMax; pass++) {
    const done = await runExpiryPass(t.server.deps);
    if (done.reservationsExpired === 0 && done.balancesExpired === 0) return;
  }
  throw new Error(`the expiry job still had work after ${passesMax} passes`);
}

/** entriesUpTo reads, through the API, every entry effective at or before a moment. */
async function entriesUpTo(customerId: string, at: Date): Promise<LedgerEntry[]> {
  // end_time is exclusive and the fake clock moves in whole milliseconds, so "before
  // at + 1 ms" is "at or before at".
  const endTime = timestampFromDate(new Date(at.getTime() + 1));
  const entries: LedgerEntry[] = [];
  let pageToken = "";
  for (let page = 0; page < pagesMax; page++) {
    const response = await api.ledger.listLedgerEntries({ customerId, creditTypeId, endTime, pageSize: 1_000, pageToken });
    entries.push(...response.entries);
    pageToken = response.nextPageToken;
    if (pageToken === "") return entries;
  }
  throw new Error(`more than ${pagesMax} pages of entries`);
}

/** Totals are the parts of a balance that its entries determine. */
interface Totals {
  effectiveGranted: bigint;
  held: bigint;
  burned: bigint;
  expired: bigint;
  available: bigint;
}

/** rebuild sums entries the way EntryKind documents each kind's effect. */
function rebuild(entries: LedgerEntry[]): Totals {
  const sum = (kind: EntryKind) => entries.filter((entry) => entry.kind === kind).reduce((total, entry) => total + entry.amount, 0n);
  const effectiveGranted = sum(EntryKind.GRANT);
  const held = sum(EntryKind.HOLD) - sum(EntryKind.RELEASE);
  const burned = sum(EntryKind.BURN);
  const expired = sum(EntryKind.EXPIRE);
  return { effectiveGranted, held, burned, expired, available: effectiveGranted - held - burned - expired };
}

/** totalsOf is what GetBalance said; a lot not yet effective has no effect on the entries up to now. */
function totalsOf(balance: CreditBalance): Totals {
  return { effectiveGranted: balance.granted - balance.pending, held: balance.held, burned: balance.burned, expired: balance.expired, available: balance.available };
}

/** Moments records what GetBalance returned at several fake times, for rebuilding later. */
class Moments {
  readonly seen: { label: string; at: Date; totals: Totals }[] = [];

  constructor(private readonly customerId: string) {}

  /** record reads the balance now, then moves the clock on so that later changes are strictly later. */
  async record(label: string): Promise<void> {
    this.seen.push({ label, at: clock.now(), totals: totalsOf(await balanceOf(this.customerId)) });
    clock.advance(secondMs);
  }

  /** mismatches rebuilds every recorded moment from the entries and lists where they differ. */
  async mismatches(): Promise<{ label: string; seen: Totals; rebuilt: Totals }[]> {
    const found = [];
    for (const moment of this.seen) {
      const rebuilt = rebuild(await entriesUpTo(this.customerId, moment.at));
      if (JSON.stringify(rebuilt, bigintText) !== JSON.stringify(moment.totals, bigintText)) found.push({ label: moment.label, seen: moment.totals, rebuilt });
    }
    return found;
  }
}

function bigintText(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

describe("the database refuses to change ledger entries", () => {
  let customerId: string;
  let before: unknown[];

  beforeAll(async () => {
    customerId = newCustomerId("append-only");
    await grant(customerId, 100n);
    await burn(customerId, 30n);
    before = (await t.database.pool.query("select * from ledger_entries where customer_id = $1 order by entry_id", [customerId])).rows;
    expect(before).toHaveLength(2);
  });

  it("the role the server connects as owns the table, so a refusal is the trigger and not a missing privilege", async () => {
    const result = await t.database.pool.query("select tableowner = current_user as owns from pg_tables where tablename = 'ledger_entries'");
    expect(result.rows).toEqual([{ owns: true }]);
  });

  it.each([
    ["UPDATE", "update ledger_entries set amount = amount + 1 where customer_id = $1", true],
    ["UPDATE", "update ledger_entries set kind = 'grant', actor = 'someone' where customer_id = $1 and kind = 'burn'", true],
    ["DELETE", "delete from ledger_entries where customer_id = $1", true],
    ["TRUNCATE", "truncate ledger_entries", false],
    ["TRUNCATE", "truncate ledger_entries cascade", false],
  ])("refuses %s even from the table owner: %s", async (operation, sql, withCustomer) => {
    const statement = t.database.pool.query(sql, withCustomer ? [customerId] : []);
    await expect(statement).rejects.toMatchObject({ code: "42501", message: `ledger entries are append-only: ${operation} refused` });
    const after = (await t.database.pool.query("select * from ledger_entries where customer_id = $1 order by entry_id", [customerId])).rows;
    expect(after).toEqual(before);
  });

  it("refuses a change inside a transaction too, and the transaction can only roll back", async () => {
    const client = await t.database.pool.connect();
    try {
      await client.query("begin");
      await expect(client.query("delete from ledger_entries where customer_id = $1", [customerId])).rejects.toMatchObject({ code: "42501" });
      await expect(client.query("select 1")).rejects.toMatchObject({ code: "25P02" }); // in failed transaction
      await client.query("rollback");
    } finally {
      client.release();
    }
    expect((await t.database.pool.query("select * from ledger_entries where customer_id = $1 order by entry_id", [customerId])).rows).toEqual(before);
  });
});

describe("balances are their entries", () => {
  it("after a mixed sequence, stored balances equal their entries and each recorded moment can be rebuilt from entries alone", async () => {
    const customerId = newCustomerId("rebuild");
    const moments = new Moments(customerId);
    const start = clock.ms;

    await grant(customerId, 1_000n);
    await moments.record("granted a lasting lot");
    await grant(customerId, 500n, { expiresAt: new Date(start + hourMs) });
    await moments.record("granted an expiring lot");
    await grant(customerId, 200n, { effectiveAt: new Date(start + 2 * hourMs), expiresAt: new Date(start + dayMs) });
    await moments.record("granted a pending lot");
    const first = await reserve(customerId, 300n, 30 * minuteMs);
    await moments.record("reserved");
    await api.ledger.commit({ reservationId: first.reservationId, amount: 250n, requestId: randomUUID() });
    await moments.record("committed less than held");
    await burn(customerId, 100n);
    await moments.record("burned");
    await reserve(customerId, 120n, 10 * minuteMs);
    await moments.record("reserved again");
    clock.advance(10 * minuteMs);
    await moments.record("the reservation's time to live ran out, before the job");
    await drainExpiry();
    await moments.record("the job expired the reservation");
    await api.admin.setOverdraftLimit({ customerId, limit: { creditTypeId, amount: 300n }, requestId: randomUUID() });
    await moments.record("set an overdraft limit");
    clock.ms = start + hourMs + minuteMs;
    await moments.record("the expiring lot expired, before the job");
    await drainExpiry();
    await moments.record("the job expired the lot");
    await burn(customerId, 1_100n);
    await moments.record("burned into the overdraft");
    clock.ms = start + 2 * hourMs;
    await moments.record("the pending lot took effect, debt not yet settled");
    await burn(customerId, 50n);
    await moments.record("burned, settling the debt from the new lot first");
    const last = await reserve(customerId, 40n, minuteMs);
    await api.ledger.release({ reservationId: last.reservationId, requestId: randomUUID() });
    await moments.record("reserved and released");

    expect(moments.seen.at(-1)?.totals).toEqual({ effectiveGranted: 1_700n, held: 0n, burned: 1_500n, expired: 150n, available: 50n });
    expect(await moments.mismatches()).toEqual([]);
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });

  it("a stored balance is the sum of its entries, checked directly in SQL", async () => {
    const result = await t.database.pool.query(`
      select b.customer_id, b.granted, b.held, b.burned, b.expired,
             coalesce(sum(e.amount) filter (where e.kind = 'grant'), 0) as e_granted,
             coalesce(sum(e.amount) filter (where e.kind = 'hold'), 0) - coalesce(sum(e.amount) filter (where e.kind = 'release'), 0) as e_held,
             coalesce(sum(e.amount) filter (where e.kind = 'burn'), 0) as e_burned,
             coalesce(sum(e.amount) filter (where e.kind = 'expire'), 0) as e_expired
        from balances b left join ledger_entries e using (customer_id, credit_type_id)
       group by b.customer_id, b.credit_type_id, b.granted, b.held, b.burned, b.expired`);
    expect(result.rows.length).toBeGreaterThan(0);
    for (const row of result.rows) {
      expect([row.granted, row.held, row.burned, row.expired]).toEqual([row.e_granted, row.e_held, row.e_burned, row.e_expired].map(String));
    }
  });

  // When a lot expires while part of it is held, the unused rest of the hold expires when
  // the reservation resolves, dated then: dated at the lot's expiry, a rebuild between the
  // two would count those credits as both held and expired.
  it.each(["commit", "release", "expire"] as const)(
    "a balance can be rebuilt between a held lot's expiry and the reservation's end (%s)",
    async (resolution) => {
      const customerId = newCustomerId(`held-expiry-${resolution}`);
      const moments = new Moments(customerId);
      await grant(customerId, 100n, { expiresAt: new Date(clock.ms + hourMs) });
      const reservation = await reserve(customerId, 60n, 2 * hourMs);
      await moments.record("reserved on the expiring lot");
      clock.advance(hourMs + minuteMs);
      await moments.record("the lot expired while held");
      await drainExpiry(); // writes the free part's expiry, correctly as of the lot's expiry
      await moments.record("the job expired the free part");

      if (resolution === "commit") await api.ledger.commit({ reservationId: reservation.reservationId, amount: 45n, requestId: randomUUID() });
      if (resolution === "release") await api.ledger.release({ reservationId: reservation.reservationId, requestId: randomUUID() });
      if (resolution === "expire") {
        clock.advance(hourMs);
        await drainExpiry();
      }
      await moments.record("the reservation resolved");

      expect(await invariantViolations(t.database.pool)).toEqual([]);
      expect(await moments.mismatches()).toEqual([]);
    },
  );
});

describe("after every test above", () => {
  it("every ledger invariant holds in the database", async () => {
    expect(await invariantViolations(t.database.pool)).toEqual([]);
  });
});
