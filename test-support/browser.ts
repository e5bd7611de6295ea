// Headless Chromium for the UI's tests: Debian's chromium driven by playwright-core (no
// browser download), the UI built from admin-ui/ when its bundle is missing or stale, and
// an axe-core accessibility check. Like the Python tools, Chromium is a Debian package:
// under CI (which installs it) a missing browser fails the tests; elsewhere they are
// skipped with a loud notice naming the command.
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { promisify } from "node:util";
import { type Browser, chromium, type Page } from "playwright-core";
import { describe } from "vitest";
import { startTestServer, type TestServer } from "./server.js";

const chromiumPath = process.env.BURNDOWN_CHROMIUM ?? "/usr/bin/chromium";
const installCommand = "apt-get install -y --no-install-recommends chromium";
const root = path.resolve(import.meta.dirname, "..");

const required = Boolean(process.env.CI) && process.env.CI !== "false";
const missing = existsSync(chromiumPath) ? null : `${chromiumPath} is missing`;
if (missing !== null && !required) {
  console.warn(`\n*** SKIPPED: the browser tests (${missing}). Install with: ${installCommand} (CI always runs them) ***\n`);
}

/** describeWithBrowser runs the block when Chromium is there (always under CI, where its absence fails). */
export const describeWithBrowser = missing !== null && !required ? describe.skip : describe;

/** buildUi builds admin-ui/dist if it is missing or older than its sources. */
export async function buildUi(): Promise<void> {
  await promisify(execFile)(process.execPath, [path.join(root, "admin-ui/scripts/build.mjs")], { cwd: root, timeout: 120_000 });
}

/** launchBrowser starts headless Chromium with the flags this closed network needs. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(chromiumPath)) throw new Error(`the browser tests need Debian's chromium at ${chromiumPath}; install it with: ${installCommand}`);
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** AxeViolation is one rule axe-core found broken, with how many elements. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: number;
}

/** seriousViolations runs axe-core on the page and returns the serious and critical violations. */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  // Evaluated over the DevTools protocol, not as a <script> tag: the pages' CSP (script-src
  // 'self') rightly refuses injected scripts, and the check must run on the page as served.
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await (window as unknown as { axe: { run: (context: Document) => Promise<{ violations: { id: string; impact: string | null; help: string; nodes: unknown[] }[] }> } }).axe.run(document);
    return result.violations.map((violation) => ({ id: violation.id, impact: violation.impact, help: violation.help, nodes: violation.nodes.length }));
  });
  return violations.filter((violation) => violation.impact === "serious" || violation.impact === "critical");
}

/**
 * signIn opens the admin UI in a context of its own (its own sessionStorage) and signs in
 * with the key, as a person pastes it; it returns once the first screen (Customers, or
 * Finance for a finance key) is up.
 */
export async function signIn(browser: Browser, baseUrl: string, token: string, firstScreen = "Customers"): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${baseUrl}/`);
  await page.getByLabel("API key").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: firstScreen, exact: true }).waitFor();
  return page;
}

/**
 * startUi brings up what every browser test file needs: the UI built, a test server on a
 * database of its own, and Chromium. stopUi takes them down (either may be missing after a
 * failed start).
 */
export async function startUi(options: Parameters<typeof startTestServer>[0] = {}): Promise<{ test: TestServer; browser: Browser }> {
  await buildUi();
  const test = await startTestServer(options);
  try {
    return { test, browser: await launchBrowser() };
  } catch (error) {
    await test.close();
    throw error;
  }
}

export async function stopUi(test: TestServer | undefined, browser: Browser | undefined): Promise<void> {
  await browser?.close();
  await test?.close();
}
