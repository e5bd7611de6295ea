// A vendor's page on its own origin calls Burndown from the browser, in headless Chromium,
// as the embeddable customer view does when its baseUrl is Burndown's origin: with the
// vendor's origin in BURNDOWN_CORS_ORIGINS the call (a Connect JSON GetBalance with a
// customer key, preflighted) succeeds and the page reads the answer and its request id; a
// page from an origin not listed gets nothing, the browser blocks it.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { GrantSource, Role } from "@burndown/sdk";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithBrowser, launchBrowser } from "../../test-support/browser.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";

/** vendorSite serves one blank page, as a vendor's app would, on a port (an origin) of its own. */
async function vendorSite(): Promise<{ origin: string; close: () => Promise<void> }> {
  const server = http.createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>Vendor app</title><h1>Vendor app</h1>"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

let test: TestServer;
let browser: Browser;
let listed: Awaited<ReturnType<typeof vendorSite>>;
let unlisted: Awaited<ReturnType<typeof vendorSite>>;
let customerKey: string;
const customerId = `acme-${randomUUID()}`;

beforeAll(async () => {
  listed = await vendorSite();
  unlisted = await vendorSite();
  test = await startTestServer({ corsOrigins: [listed.origin] });
  const { admin, ledger } = test.clients(test.adminToken);
  await admin.createCreditType({ creditType: { creditTypeId: "api", displayName: "API credits", scale: 0 }, requestId: randomUUID() });
  await admin.createCustomer({ customer: { customerId }, requestId: randomUUID() });
  await ledger.grant({ customerId, creditTypeId: "api", amount: 4_200n, source: GrantSource.PURCHASE, reasonCode: "purchase", requestId: randomUUID() });
  customerKey = (await admin.createApiKey({ name: "vendor page", role: Role.CUSTOMER, customerId, requestId: randomUUID() })).token;
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await test?.close();
  await listed?.close();
  await unlisted?.close();
});

/** balanceFrom opens the vendor page at origin and, from its script, asks Burndown for the customer's balance. */
async function balanceFrom(origin: string): Promise<{ ok: true; status: number; available: string; requestId: string | null } | { ok: false; error: string }> {
  const page = await browser.newPage();
  try {
    await page.goto(`${origin}/`);
    return await page.evaluate(
      async ({ ledgerUrl, key, customer }) => {
        try {
          const res = await fetch(`${ledgerUrl}/burndown.v1.LedgerService/GetBalance`, {
            method: "POST",
            headers: { "content-type": "application/json", "connect-protocol-version": "1", authorization: `Bearer ${key}`, "x-request-id": "vendor-page-1" },
            body: JSON.stringify({ customerId: customer }),
          });
          const body = (await res.json()) as { balances?: { available?: string }[] };
          return { ok: true as const, status: res.status, available: body.balances?.[0]?.available ?? "", requestId: res.headers.get("x-request-id") };
        } catch (error) {
          return { ok: false as const, error: String(error) };
        }
      },
      { ledgerUrl: test.server.httpUrl, key: customerKey, customer: customerId },
    );
  } finally {
    await page.close();
  }
}

describeWithBrowser("a vendor's page calling Burndown across origins", () => {
  it("gets the balance from a listed origin, and reads the request id", async () => {
    expect(await balanceFrom(listed.origin)).toEqual({ ok: true, status: 200, available: "4200", requestId: "vendor-page-1" });
  });

  it("is blocked by the browser from an origin not listed", async () => {
    expect(await balanceFrom(unlisted.origin)).toEqual({ ok: false, error: expect.stringContaining("Failed to fetch") });
  });
});
