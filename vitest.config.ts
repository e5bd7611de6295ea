import { defineConfig } from "vitest/config";

/**
 * The fault and load tests (processes killed, a bank test, a fuzzer) load the machine
 * heavily; run beside the core concurrency tests on two cores they starved them into
 * timeouts. They run as a second group, after everything else.
 */
const faultTests = [
  "server/test/server-crash.test.ts",
  "server/test/recharge-crash.test.ts",
  "server/test/database-crash.test.ts",
  "server/test/database-network.test.ts",
  "server/test/conservation.test.ts",
  "server/test/fuzz.test.ts",
  "server/test/schedule-crash.test.ts",
  "server/test/queue-usage-crash.test.ts",
];

// One run covers every package. The global setup provides PostgreSQL: DATABASE_URL when
// set, an embedded PostgreSQL otherwise. Database tests each get their own database.
export default defineConfig({
  test: {
    globalSetup: ["./test-support/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: files that start servers and PostgreSQL clusters compete for them.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: "ledger", include: ["server/**/*.test.ts", "sdk/**/*.test.ts"], exclude: faultTests, sequence: { groupOrder: 0 } } },
      // The admin UI and customer view in headless Chromium (test-support/browser.ts).
      // A browser's refetch on a loaded machine takes more than expect.poll's default second.
      { extends: true, test: { name: "ui", include: ["admin-ui/test/**/*.test.ts"], sequence: { groupOrder: 0 }, expect: { poll: { timeout: 15_000 } } } },
      { extends: true, test: { name: "faults", include: faultTests, sequence: { groupOrder: 1 } } },
    ],
  },
});
