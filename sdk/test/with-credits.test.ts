// withCredits against a real server: the whole hold commits by default, the action may
// report less or more, a throwing action releases its hold, and an unaffordable hold
// throws a typed error before the action runs.
import { type BurndownClient, createBurndownClient, InsufficientCreditsError, ReservationStatus } from "@burndown/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LedgerFixture, startLedgerFixture } from "../../test-support/ledger-fixture.js";

let f: LedgerFixture;
let client: BurndownClient;

beforeAll(async () => {
  f = await startLedgerFixture();
  client = createBurndownClient({ baseUrl: f.t.server.grpcUrl, apiKey: f.serviceToken });
});
afterAll(async () => {
  await client.close();
  await f.close();
});

describe("withCredits", () => {
  it("commits the whole hold when the action reports nothing, and returns the action's result", async () => {
    const customerId = await f.customer(100n);
    const result = await client.withCredits({ customerId, featureKey: f.featureKey, quantity: 5n }, async (hold) => {
      expect(hold.reservation.amount).toBe(5n * f.featureRate);
      expect(hold.reservation.status).toBe(ReservationStatus.HELD);
      return "answer";
    });
    expect(result).toBe("answer");
    expect(await f.balanceOf(customerId)).toMatchObject({ burned: 10n, held: 0n, available: 90n });
  });

  it("hold.use reports less than held: only what was used burns and the rest returns", async () => {
    const customerId = await f.customer(100n);
    await client.withCredits({ customerId, creditTypeId: f.creditTypeId, amount: 50n }, async (hold) => {
      hold.use(12n);
      hold.use(8n);
    });
    expect(await f.balanceOf(customerId)).toMatchObject({ burned: 20n, held: 0n, available: 80n });
  });

  it("hold.setActual may report more than held, and the excess burns too", async () => {
    const customerId = await f.customer(100n);
    await client.withCredits({ customerId, creditTypeId: f.creditTypeId, amount: 30n }, async (hold) => {
      hold.setActual(45n);
    });
    expect(await f.balanceOf(customerId)).toMatchObject({ burned: 45n, held: 0n, available: 55n });
  });

  it("hold.setActual(0) commits nothing: every held credit returns", async () => {
    const customerId = await f.customer(100n);
    await client.withCredits({ customerId, creditTypeId: f.creditTypeId, amount: 30n }, async (hold) => hold.setActual(0n));
    expect(await f.balanceOf(customerId)).toMatchObject({ burned: 0n, held: 0n, available: 100n });
  });

  it("an action that throws has its hold released, and its own error is rethrown", async () => {
    const customerId = await f.customer(100n);
    const failure = new Error("the model call failed");
    let reservationId = "";
    const caught = await client
      .withCredits({ customerId, creditTypeId: f.creditTypeId, amount: 60n }, async (hold) => {
        reservationId = hold.reservation.reservationId;
        throw failure;
      })
      .then(
        () => null,
        (error: unknown) => error,
      );
    expect(caught).toBe(failure);
    expect(await f.balanceOf(customerId)).toMatchObject({ burned: 0n, held: 0n, available: 100n });
    const stored = await f.t.database.pool.query("select status from reservations where reservation_id = $1", [reservationId]);
    expect(stored.rows[0].status).toBe("released");
  });

  it("a hold the customer cannot afford throws InsufficientCreditsError, and the action never runs", async () => {
    const customerId = await f.customer(7n);
    let ran = false;
    const caught = await client
      .withCredits({ customerId, featureKey: f.featureKey, quantity: 4n }, async () => {
        ran = true;
      })
      .then(
        () => null,
        (error: unknown) => error,
      );
    expect(caught).toBeInstanceOf(InsufficientCreditsError);
    expect(caught).toMatchObject({ available: 7n, required: 8n });
    expect(ran).toBe(false);
    expect(await f.balanceOf(customerId)).toMatchObject({ burned: 0n, held: 0n, available: 7n });
  });
});
