import { defineConfig } from "vitest/config";

// One run covers every package. The global setup provides PostgreSQL: DATABASE_URL when
// set, an embedded PostgreSQL otherwise. Database tests each get their own database.
export default defineConfig({
  test: {
    include: ["server/**/*.test.ts", "sdk/**/*.test.ts"],
    globalSetup: ["./test-support/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: files that start servers and PostgreSQL clusters compete for them.
    maxWorkers: 2,
  },
});
