// `npm run verify`: rebuild every balance, lot and reservation from the ledger entries of
// the database at DATABASE_URL (BURNDOWN_VERIFY_CUSTOMER_ID: one customer only) and
// compare them with the stored ones. Prints what it checked and every difference it
// found; exits 1 on any difference, 2 when it could not verify. Read-only.
import { createPool, endPool } from "./store/database.js";
import { describeVerification, verifyLedger } from "./service/verify-ledger.js";

async function main(): Promise<number> {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    console.error("verify: set DATABASE_URL to the ledger's database");
    return 2;
  }
  const pool = createPool(databaseUrl, 1);
  pool.on("error", (error) => console.error(`verify: ${error.message}`));
  try {
    const result = await verifyLedger(pool, { customerId: process.env.BURNDOWN_VERIFY_CUSTOMER_ID ?? "" });
    for (const line of describeVerification(result)) console.log(line);
    return result.counts.differences === 0n ? 0 : 1;
  } finally {
    await endPool(pool);
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`verify: could not verify: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  },
);
