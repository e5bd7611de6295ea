// Regenerates the screenshots in docs/screenshots/ that the README shows: a server in its
// own process on a scratch database (DATABASE_URL's server, or an embedded PostgreSQL),
// demo data through the public API, and headless Chromium on each main page.
//   npm run screenshots
import { randomUUID } from "node:crypto";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService, CorrectionService, EntryKind, GrantSource, LedgerService, Role, SupportService } from "@burndown/sdk";
import pg from "pg";
import { newApiKeyToken } from "../../server/src/service/api-keys.js";
import { migrate } from "../../server/src/store/migrations.js";
import { buildUi, launchBrowser } from "../../test-support/browser.js";
import { scratchDatabase } from "../../test-support/scratch-database.js";
import { startServerProcess } from "../../test-support/server-process.js";

const outDir = path.resolve(import.meta.dirname, "../../docs/screenshots");
const dayMs = 86_400_000;
const creditTypeId = "usd";

async function main(): Promise<void> {
  await buildUi();
  const db = await scratchDatabase("burndown_screenshots");
  const pool = new pg.Pool({ connectionString: db.url, max: 1 });
  await migrate(pool);
  await pool.end();
  const token = newApiKeyToken();
  const server = await startServerProcess({ DATABASE_URL: db.url, BURNDOWN_ADMIN_KEY: token, BURNDOWN_JOB_INTERVAL_MS: "0" });
  const browser = await launchBrowser();
  try {
    const bearer = (key: string): Interceptor => (next) => (req) => {
      req.header.set("authorization", `Bearer ${key}`);
      return next(req);
    };
    const transport = createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [bearer(token)] });
    const admin = createClient(AdminService, transport);
    const ledger = createClient(LedgerService, transport);
    const requestId = () => randomUUID();
    await admin.createCreditType({ creditType: { creditTypeId, displayName: "USD credits", scale: 2 }, requestId: requestId() });
    await admin.createFeature({ feature: { featureKey: "chat", displayName: "Chat completion", creditTypeId, burnRate: 150n }, requestId: requestId() });
    await admin.createFeature({ feature: { featureKey: "images", displayName: "Image generation", creditTypeId, burnRate: 500n }, requestId: requestId() });
    for (const [customerId, displayName] of [["acme", "Acme Corp"], ["acme-labs", "Acme Labs"], ["globex", "Globex Inc"]]) {
      await admin.createCustomer({ customer: { customerId, displayName }, requestId: requestId() });
    }
    const now = Date.now();
    const since = timestampFromDate(new Date(now - 7 * dayMs));
    await ledger.grant({ customerId: "acme", creditTypeId, amount: 50_000n, source: GrantSource.PROMOTION, reasonCode: "launch_promo", effectiveTime: since, expireTime: timestampFromDate(new Date(now + 40 * dayMs)), requestId: requestId() });
    await ledger.grant({ customerId: "acme", creditTypeId, amount: 200_000n, source: GrantSource.PURCHASE, reasonCode: "purchase", costBasisMicros: 1_000_000n, effectiveTime: since, requestId: requestId() });
    const serviceKey = (await admin.createApiKey({ name: "checkout service", role: Role.SERVICE, requestId: requestId() })).token;
    const service = createClient(LedgerService, createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [bearer(serviceKey)] }));
    const events = Array.from({ length: 24 }, (_, i) => ({
      eventId: `demo-${i}`,
      customerId: "acme",
      featureKey: i % 3 === 0 ? "images" : "chat",
      quantity: BigInt(1 + (i % 5)),
      eventTime: timestampFromDate(new Date(now - (i % 6) * dayMs - 3_600_000 * (i % 7))),
    }));
    await service.reportUsage({ events });
    await service.reserve({ customerId: "acme", cost: { case: "usage", value: { featureKey: "chat", quantity: 3n } }, requestId: requestId() });
    const supportKey = (await admin.createApiKey({ name: "Dana (support)", role: Role.SUPPORT, grantLimit: 10_000n, requestId: requestId() })).token;
    const customerKey = (await admin.createApiKey({ name: "acme portal", role: Role.CUSTOMER, customerId: "acme", requestId: requestId() })).token;
    const burn = (await ledger.listLedgerEntries({ customerId: "acme", kinds: [EntryKind.BURN] })).entries[0];
    // A dispute on that burn, and a support grant above the key's limit waiting for approval.
    await createClient(CorrectionService, transport).openDispute({ customerId: "acme", entryIds: [burn.entryId], description: "We never ran that job", requestId: requestId() });
    const supportTransport = createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [bearer(supportKey)] });
    await createClient(SupportService, supportTransport).requestGrant({
      grant: { customerId: "acme", creditTypeId, amount: 25_000n, source: GrantSource.SUPPORT, reasonCode: "goodwill", note: "outage on 3 March", requestId: requestId() },
    });

    await mkdir(outDir, { recursive: true });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const shoot = async (name: string) => {
      await page.waitForLoadState("networkidle");
      await page.screenshot({ path: path.join(outDir, `${name}.png`), fullPage: true });
      console.error(`wrote docs/screenshots/${name}.png`);
    };
    await page.goto(server.httpUrl);
    await page.getByLabel("API key").fill(supportKey);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByLabel("Find a customer by id or name").fill("acme");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("link", { name: "acme", exact: true }).waitFor();
    await shoot("customers");
    await page.getByRole("link", { name: "acme", exact: true }).click();
    await page.getByTestId("available-usd").waitFor();
    await shoot("customer");
    await page.getByRole("tab", { name: "Ledger" }).click();
    await page.getByRole("table", { name: "Ledger entries" }).waitFor();
    await shoot("ledger");
    await page.goto(`${server.httpUrl}/#/events/${burn.usageId}`);
    await page.getByRole("list", { name: "What happened" }).waitFor();
    await shoot("usage-event");
    await page.evaluate(() => sessionStorage.clear());
    await page.goto(server.httpUrl);
    await page.getByLabel("API key").fill(token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.goto(`${server.httpUrl}/#/platform/features`);
    await page.getByRole("heading", { name: "Platform" }).waitFor();
    await shoot("platform-features");
    await page.goto(`${server.httpUrl}/#/approvals`);
    await page.getByRole("heading", { name: "Approvals" }).waitFor();
    await shoot("approvals");
    await page.goto(`${server.httpUrl}/#/disputes`);
    await page.getByRole("heading", { name: "Disputes" }).waitFor();
    await shoot("disputes");
    await page.goto(`${server.httpUrl}/#/finance`);
    await page.getByRole("heading", { name: "Finance" }).waitFor();
    await page.getByRole("button", { name: "Run report" }).click();
    await page.getByRole("table").first().waitFor();
    await shoot("finance");
    await page.goto(`${server.httpUrl}/#/platform/verify`);
    await page.getByRole("button", { name: "Verify now" }).click();
    await page.getByRole("button", { name: "Verify now" }).waitFor();
    await shoot("platform-verify");
    await page.goto(`${server.httpUrl}/customer#key=${encodeURIComponent(customerKey)}`);
    await page.locator("svg g[data-bucket]").first().waitFor({ state: "attached" });
    await shoot("customer-view");
  } finally {
    await browser.close();
    await server.stop();
    await db.stop();
  }
}

await main();
