// The catalog and customers: credit types, features, customers and overdraft limits.
import { LedgerError, notFound } from "../errors.js";
import { limits } from "../limits.js";
import { setOverdraftLimit as storeOverdraftLimit } from "../store/balance-store.js";
import {
  type CreditTypeRow,
  type CustomerRow,
  type FailurePolicyRow,
  type FeatureRow,
  insertCreditType,
  insertCustomer,
  insertFeature,
  selectCreditType,
  selectCreditTypes,
  selectCustomer,
  selectFeatures,
} from "../store/catalog-store.js";
import { type Db, mapDriverErrors, type Tx } from "../store/database.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { selectSetting } from "../store/rate-store.js";
import { runIdempotent } from "./run-idempotent.js";

const catalogListMax = limits.pageSizeMax;

/** createCreditType adds a credit type; AlreadyExists when the id is taken. */
export async function createCreditType(deps: Deps, caller: Caller, idempotency: Idempotency, input: Omit<CreditTypeRow, "createdAt">): Promise<CreditTypeRow> {
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const created = await insertCreditType(tx, input);
    if (created === null) throw new LedgerError("exists", "CREDIT_TYPE_EXISTS", `credit type ${JSON.stringify(input.creditTypeId)} exists`, { credit_type_id: input.creditTypeId });
    await audit(tx, caller, "create_credit_type", `credit_type:${input.creditTypeId}`, "", { display_name: input.displayName, scale: input.scale });
    return created;
  });
}

/** listCreditTypes reads every credit type. */
export async function listCreditTypes(deps: Deps): Promise<CreditTypeRow[]> {
  return mapDriverErrors(() => selectCreditTypes(deps.pool, catalogListMax));
}

/** createFeature adds a feature on an existing credit type; AlreadyExists when the key is taken. */
export async function createFeature(deps: Deps, caller: Caller, idempotency: Idempotency, input: Omit<FeatureRow, "createdAt" | "rollout" | keyof FailurePolicyRow>): Promise<FeatureRow> {
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    await requireCreditType(tx, input.creditTypeId);
    const created = await insertFeature(tx, input);
    if (created === null) throw new LedgerError("exists", "FEATURE_EXISTS", `feature ${JSON.stringify(input.featureKey)} exists`, { feature_key: input.featureKey });
    await audit(tx, caller, "create_feature", `feature:${input.featureKey}`, "", {
      display_name: input.displayName,
      credit_type_id: input.creditTypeId,
      burn_rate: created.burnRate.toString(),
      enforcement_mode: created.enforcementMode,
    });
    return created;
  });
}

/** listFeatures reads every feature. */
export async function listFeatures(deps: Deps): Promise<{ features: FeatureRow[]; killSwitch: boolean }> {
  return mapDriverErrors(async () => {
    const [features, killSwitch] = await Promise.all([selectFeatures(deps.pool, catalogListMax), selectSetting(deps.pool, "kill_switch")]);
    return { features, killSwitch: killSwitch === "on" };
  });
}

/** createCustomer adds a customer with optional overdraft limits; AlreadyExists when the id is taken. */
export async function createCustomer(
  deps: Deps,
  caller: Caller,
  idempotency: Idempotency,
  input: { customerId: string; displayName: string; overdraftLimits: { creditTypeId: string; limit: bigint }[] },
): Promise<CustomerRow> {
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    if (!(await insertCustomer(tx, input))) throw new LedgerError("exists", "CUSTOMER_EXISTS", `customer ${JSON.stringify(input.customerId)} exists`, { customer_id: input.customerId });
    for (const limit of input.overdraftLimits) {
      await requireCreditType(tx, limit.creditTypeId);
      await storeOverdraftLimit(tx, { customerId: input.customerId, creditTypeId: limit.creditTypeId }, limit.limit);
    }
    const customer = await requireCustomer(tx, input.customerId);
    await audit(tx, caller, "create_customer", `customer:${input.customerId}`, "", {
      display_name: input.displayName,
      overdraft_limits: Object.fromEntries(customer.overdraftLimits.map((limit) => [limit.creditTypeId, limit.limit.toString()])),
      pricing_version_id: customer.pricingVersionId,
    });
    return customer;
  });
}

/** getCustomer reads a customer. */
export async function getCustomer(deps: Deps, customerId: string): Promise<CustomerRow> {
  return mapDriverErrors(() => requireCustomer(deps.pool, customerId));
}

/** setOverdraftLimit changes how far below zero a balance may go; refused below what is in use. */
export async function setOverdraftLimit(
  deps: Deps,
  caller: Caller,
  idempotency: Idempotency,
  input: { customerId: string; creditTypeId: string; limit: bigint; reason: string },
): Promise<CustomerRow> {
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const before = await requireCustomer(tx, input.customerId);
    await requireCreditType(tx, input.creditTypeId);
    if (!(await storeOverdraftLimit(tx, input, input.limit))) {
      throw new LedgerError("rejected", "OVERDRAFT_IN_USE", "the balance is further below zero than the new limit allows", {
        customer_id: input.customerId,
        credit_type_id: input.creditTypeId,
      });
    }
    const previous = before.overdraftLimits.find((limit) => limit.creditTypeId === input.creditTypeId)?.limit ?? 0n;
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "set_overdraft_limit",
      target: `customer:${input.customerId}`,
      reason: input.reason,
      details: { old: previous.toString(), new: input.limit.toString(), credit_type_id: input.creditTypeId },
    });
    return requireCustomer(tx, input.customerId);
  });
}

/** audit records the creation of a catalog entry: nothing before, these values after. */
async function audit(tx: Tx, caller: Caller, action: string, target: string, reason: string, created: Record<string, unknown>): Promise<void> {
  await insertAuditRecord(tx, { actor: caller.keyId, requestId: caller.requestId, action, target, reason, details: { old: null, new: created } });
}

async function requireCreditType(db: Db | Tx, creditTypeId: string): Promise<CreditTypeRow> {
  const type = await selectCreditType(db, creditTypeId);
  if (type === null) throw notFound("CREDIT_TYPE_NOT_FOUND", "credit type id", creditTypeId);
  return type;
}

/** requireCustomer reads a customer, or fails NotFound CUSTOMER_NOT_FOUND. */
export async function requireCustomer(db: Db | Tx, customerId: string): Promise<CustomerRow> {
  const customer = await selectCustomer(db, customerId);
  if (customer === null) throw notFound("CUSTOMER_NOT_FOUND", "customer id", customerId);
  return customer;
}
