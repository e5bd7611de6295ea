// Why a balance row is missing, said precisely: unknown customer, unknown credit type,
// or a known pair that simply has no credits yet.
import { LedgerError, notFound } from "../errors.js";
import { customerExists, selectCreditType } from "../store/catalog-store.js";
import type { Db } from "../store/database.js";

/** explainMissingBalance throws the error a request on a balance that does not exist deserves. */
export async function explainMissingBalance(db: Db, customerId: string, creditTypeId: string, required: bigint): Promise<never> {
  if (!(await customerExists(db, customerId))) throw notFound("CUSTOMER_NOT_FOUND", "customer id", customerId);
  if ((await selectCreditType(db, creditTypeId)) === null) throw notFound("CREDIT_TYPE_NOT_FOUND", "credit type id", creditTypeId);
  throw insufficientCredits(customerId, creditTypeId, 0n, required);
}

/** insufficientCredits is the rejection when available + overdraft cannot cover an amount. */
export function insufficientCredits(customerId: string, creditTypeId: string, available: bigint, required: bigint): LedgerError {
  return new LedgerError("rejected", "INSUFFICIENT_CREDITS", `customer has ${available} available, ${required} required`, {
    customer_id: customerId,
    credit_type_id: creditTypeId,
    available: available.toString(),
    required: required.toString(),
  });
}
