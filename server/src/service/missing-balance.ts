// Why a balance row is missing, said precisely: unknown customer, unknown credit type,
// or a known pair that simply has no credits yet.
import { LedgerError, notFound } from "../errors.js";
import type { BalanceKey } from "../store/balance-store.js";
import type { WriteInputs } from "../store/write-inputs-store.js";

/** missingBalanceError is the error a request on a balance that does not exist deserves, from what a group read. */
export function missingBalanceError(inputs: WriteInputs, key: BalanceKey, required: bigint): LedgerError {
  if (!inputs.customers.has(key.customerId)) return notFound("CUSTOMER_NOT_FOUND", "customer id", key.customerId);
  if (!inputs.creditTypes.has(key.creditTypeId)) return notFound("CREDIT_TYPE_NOT_FOUND", "credit type id", key.creditTypeId);
  return insufficientCredits(key.customerId, key.creditTypeId, 0n, required);
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
