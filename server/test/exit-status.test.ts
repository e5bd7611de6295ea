// `npm test` must exit non-zero when a test fails, with and without DATABASE_URL (an
// imported dependency once forced exit status 0). This test fails on purpose when
// BURNDOWN_FORCE_FAILURE=1, and .ci/run checks the exit status of such a run both ways.
import { expect, it } from "vitest";

it("fails when BURNDOWN_FORCE_FAILURE=1, so that CI can see npm test's exit status follow a failure", () => {
  expect(process.env.BURNDOWN_FORCE_FAILURE ?? "", "forced failure (BURNDOWN_FORCE_FAILURE=1)").not.toBe("1");
});
