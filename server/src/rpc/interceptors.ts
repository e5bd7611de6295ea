// The two interceptors: errors (domain errors to Connect codes with ErrorInfo, in one
// place) and auth (API key to caller, role checked against one table).
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import { ErrorInfoSchema, errorDomain } from "@burndown/sdk";
import { type ErrorKind, LedgerError, notFound } from "../errors.js";
import type { KeyVerifier } from "../service/api-keys.js";
import type { Caller, Role } from "../service/context.js";

const codes: Record<ErrorKind, Code> = {
  invalid: Code.InvalidArgument,
  not_found: Code.NotFound,
  exists: Code.AlreadyExists,
  rejected: Code.FailedPrecondition,
  forbidden: Code.PermissionDenied,
  unauthenticated: Code.Unauthenticated,
  conflict: Code.Aborted,
  unavailable: Code.Unavailable,
  overloaded: Code.ResourceExhausted,
};

/** toConnectError maps any error to a ConnectError; unknown errors become Internal with no detail leaked. */
export function toConnectError(error: unknown, log: (message: string) => void): ConnectError {
  if (error instanceof LedgerError) {
    const info = { reason: error.reason, domain: errorDomain, metadata: error.details };
    return new ConnectError(error.message, codes[error.kind], undefined, [{ desc: ErrorInfoSchema, value: info }], error);
  }
  if (error instanceof ConnectError) return error;
  log(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  const info = { reason: "INTERNAL", domain: errorDomain, metadata: {} };
  return new ConnectError("internal error", Code.Internal, undefined, [{ desc: ErrorInfoSchema, value: info }], error);
}

/** ItemError is one batch item's failure, as BatchItemError carries it. */
export interface ItemError {
  code: number;
  message: string;
  reason: string;
  metadata: Record<string, string>;
}

/** itemErrorOf maps an item's error the way toConnectError maps a call's: same code, same reason. */
export function itemErrorOf(error: unknown, log: (message: string) => void): ItemError {
  const mapped = toConnectError(error, log);
  const info = error instanceof LedgerError ? { reason: error.reason, metadata: error.details } : { reason: mapped.code === Code.Internal ? "INTERNAL" : "", metadata: {} };
  return { code: mapped.code, message: mapped.rawMessage, ...info };
}

/** errorInterceptor maps every error a handler throws. */
export function errorInterceptor(log: (message: string) => void): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (error) {
      throw toConnectError(error, log);
    }
  };
}

/**
 * ownCustomer refuses a customer key asking about any customer but its own with
 * NotFound, exactly as for a customer that does not exist: existence does not leak.
 */
export function ownCustomer(caller: Caller, customerId: string): string {
  if (caller.role === "customer" && customerId !== caller.customerId) {
    throw notFound("CUSTOMER_NOT_FOUND", "customer id", customerId);
  }
  return customerId;
}

/** callerKey carries the authenticated caller to handlers. */
export const callerKey = createContextKey<Caller | undefined>(undefined, { description: "authenticated caller" });

/**
 * requestIdKey carries the call's request id from observeInterceptor (which reads or makes
 * it) to authInterceptor, which puts it on the call's Caller: the one route by which it
 * reaches the audit records the call writes, in its own transaction or in a group's.
 */
export const requestIdKey = createContextKey<string | null>(null, { description: "the call's request id" });

const everyone: Role[] = ["service", "support", "admin"];
/** Reads a customer key may make, of its own customer only (ownCustomer enforces it). */
const everyoneAndCustomers: Role[] = [...everyone, "customer"];
const hotPath: Role[] = ["service", "admin"];
const staff: Role[] = ["support", "admin"];
/** Staff, and a customer key about its own customer only (the service checks it, answering NotFound otherwise). */
const staffAndCustomers: Role[] = [...staff, "customer"];
const admin: Role[] = ["admin"];
/**
 * The finance reports: finance keys, which may call nothing else (but GetCaller), and
 * admins. They read totals across customers, so support and service keys may not.
 */
const finance: Role[] = ["finance", "admin"];

/** methodRoles says which roles may call each method; a method not listed is refused. */
export const methodRoles: Record<string, Role[]> = {
  "burndown.v1.LedgerService/Grant": everyone,
  "burndown.v1.LedgerService/Reserve": hotPath,
  "burndown.v1.LedgerService/Commit": hotPath,
  "burndown.v1.LedgerService/Release": hotPath,
  "burndown.v1.LedgerService/Burn": hotPath,
  "burndown.v1.LedgerService/GetBalance": everyoneAndCustomers,
  "burndown.v1.LedgerService/ListLedgerEntries": everyoneAndCustomers,
  "burndown.v1.LedgerService/ReportUsage": hotPath,
  "burndown.v1.LedgerService/Check": everyoneAndCustomers,
  "burndown.v1.LedgerService/ReserveBatch": hotPath,
  "burndown.v1.LedgerService/CommitBatch": hotPath,
  // Every key may ask who it is: a screen asks before it shows anything.
  "burndown.v1.LedgerService/GetCaller": [...everyoneAndCustomers, "finance"],
  "burndown.v1.LedgerService/ListReservations": everyoneAndCustomers,
  "burndown.v1.LedgerService/GetUsageSummary": everyoneAndCustomers,
  "burndown.v1.LedgerService/GetBalanceForecast": everyoneAndCustomers,
  "burndown.v1.AdminService/CreateCreditType": admin,
  // A credit type's id, name and scale are what a customer's own view needs to show its amounts.
  "burndown.v1.AdminService/ListCreditTypes": everyoneAndCustomers,
  "burndown.v1.AdminService/CreateFeature": admin,
  "burndown.v1.AdminService/ListFeatures": everyone,
  "burndown.v1.AdminService/CreateCustomer": admin,
  "burndown.v1.AdminService/GetCustomer": staff,
  "burndown.v1.AdminService/SetOverdraftLimit": admin,
  "burndown.v1.AdminService/CreateApiKey": admin,
  "burndown.v1.AdminService/ListApiKeys": admin,
  "burndown.v1.AdminService/RevokeApiKey": admin,
  "burndown.v1.AdminService/SetFailurePolicy": admin,
  "burndown.v1.AdminService/ListUnratedEvents": staff,
  "burndown.v1.AdminService/ListUsageConflicts": staff,
  "burndown.v1.AdminService/ReplayUnratedEvents": admin,
  "burndown.v1.AdminService/CreatePricingVersion": admin,
  "burndown.v1.AdminService/ListPricingVersions": everyone,
  "burndown.v1.AdminService/SetDefaultPricingVersion": admin,
  "burndown.v1.AdminService/MoveCustomersToPricingVersion": admin,
  "burndown.v1.AdminService/GetShadowPricingReport": staff,
  "burndown.v1.AdminService/SetRateOverride": admin,
  "burndown.v1.AdminService/SetEnforcementMode": admin,
  "burndown.v1.AdminService/SetEnforcementRollout": admin,
  "burndown.v1.AdminService/SetKillSwitch": admin,
  "burndown.v1.AdminService/ListAuditRecords": staff,
  "burndown.v1.AdminService/VerifyLedger": admin,
  "burndown.v1.AdminService/ExplainUsageEvent": staffAndCustomers,
  "burndown.v1.AdminService/CorrectUsageEvent": admin,
  "burndown.v1.AdminService/SearchCustomers": staff,
  "burndown.v1.AdminService/ListRateOverrides": staff,
  // The catalog is the admin's, like pricing versions; orders are made by the vendor's
  // backend (service) or by support on a customer's behalf; paying and refunding them
  // moves money, so support may not.
  "burndown.v1.BillingService/CreateBundle": admin,
  // A customer key may read the catalog and buy a bundle for its own customer (the
  // customer view's purchase flow), and see its own orders.
  "burndown.v1.BillingService/ListBundles": everyoneAndCustomers,
  "burndown.v1.BillingService/CreateTopUp": everyoneAndCustomers,
  "burndown.v1.BillingService/ConfirmTopUp": hotPath,
  "burndown.v1.BillingService/CancelTopUp": hotPath,
  "burndown.v1.BillingService/RefundTopUp": hotPath,
  "burndown.v1.BillingService/GetTopUp": everyoneAndCustomers,
  "burndown.v1.BillingService/ListTopUps": everyoneAndCustomers,
  // Plans are catalog and subscriptions give credits away on a schedule: the admin's, as
  // pricing versions and bundles are; staff may read them.
  "burndown.v1.PlanService/CreatePlan": admin,
  "burndown.v1.PlanService/ListPlans": everyone,
  "burndown.v1.PlanService/GetPlan": everyone,
  "burndown.v1.PlanService/SubscribeCustomer": admin,
  "burndown.v1.PlanService/MoveSubscription": admin,
  "burndown.v1.PlanService/CancelSubscription": admin,
  "burndown.v1.PlanService/ListSubscriptions": staff,
  "burndown.v1.PlanService/CreateGrantSchedule": admin,
  "burndown.v1.PlanService/CancelGrantSchedule": admin,
  "burndown.v1.PlanService/ListGrantSchedules": staff,
  "burndown.v1.PlanService/ListRollovers": staff,
  // A failed payment is reported by whoever confirms payments. Auto-recharge spends the
  // customer's money on its own, so only staff set it; a customer may read its own.
  "burndown.v1.BillingService/FailTopUp": hotPath,
  "burndown.v1.BillingService/SetAutoRecharge": staff,
  "burndown.v1.BillingService/GetAutoRecharge": everyoneAndCustomers,
  "burndown.v1.BillingService/ListAutoRecharges": everyoneAndCustomers,
  "burndown.v1.WebhookService/CreateWebhookEndpoint": admin,
  "burndown.v1.WebhookService/ListWebhookEndpoints": staff,
  "burndown.v1.WebhookService/DisableWebhookEndpoint": admin,
  "burndown.v1.WebhookService/RotateWebhookSecret": admin,
  "burndown.v1.WebhookService/ListWebhookEvents": staff,
  "burndown.v1.WebhookService/ReplayWebhookEvents": admin,
  // Codes give credits away, so only admins make and stop them; a customer redeems one
  // with its own key, the vendor's backend or staff for a customer.
  "burndown.v1.PromotionService/CreatePromoCode": admin,
  "burndown.v1.PromotionService/ListPromoCodes": staff,
  "burndown.v1.PromotionService/DisablePromoCode": admin,
  "burndown.v1.PromotionService/RedeemPromoCode": everyoneAndCustomers,
  // Who shares whose credits is the admin's to change; support may look.
  "burndown.v1.PoolService/AttachPoolMember": admin,
  "burndown.v1.PoolService/DetachPoolMember": admin,
  "burndown.v1.PoolService/SetPoolMemberLimit": admin,
  "burndown.v1.PoolService/ListPoolMembers": staff,
  // Voids and refunds give credits back or take them away: staff (support's own limits
  // on them are its role's to add). A customer key may open a dispute of its own ledger
  // lines and read its own disputes; working the queue is staff's.
  "burndown.v1.CorrectionService/VoidGrant": staff,
  "burndown.v1.CorrectionService/RefundCharge": staff,
  "burndown.v1.CorrectionService/OpenDispute": staffAndCustomers,
  "burndown.v1.CorrectionService/GetDispute": staffAndCustomers,
  "burndown.v1.CorrectionService/ListDisputes": staffAndCustomers,
  "burndown.v1.CorrectionService/AssignDispute": staff,
  "burndown.v1.CorrectionService/AddDisputeNote": staff,
  "burndown.v1.CorrectionService/ResolveDispute": staff,
  "burndown.v1.FinanceService/GetRevenueRollForward": finance,
  "burndown.v1.FinanceService/ExportRevenueRollForward": finance,
  // Limits, sources and reason codes are the admin's to set and staff's to read. A grant
  // request is filed by whoever may Grant; it is decided by staff (a support approver
  // only within its own limit, support-grant-op.ts), never by the key that filed it.
  "burndown.v1.SupportService/SetGrantLimit": admin,
  "burndown.v1.SupportService/ListGrantLimits": staff,
  "burndown.v1.SupportService/DeleteGrantLimit": admin,
  "burndown.v1.SupportService/SetGrantSources": admin,
  "burndown.v1.SupportService/ListGrantSources": staff,
  "burndown.v1.SupportService/CreateReasonCode": admin,
  "burndown.v1.SupportService/UpdateReasonCode": admin,
  "burndown.v1.SupportService/ListReasonCodes": staff,
  "burndown.v1.SupportService/RequestGrant": everyone,
  "burndown.v1.SupportService/ApproveGrantRequest": staff,
  "burndown.v1.SupportService/RejectGrantRequest": staff,
  "burndown.v1.SupportService/ListGrantRequests": staff,
};

/**
 * publicMethods answer without an API key: health checks (load balancers and probes hold
 * no key) and server reflection (the contract is public, in proto/). They read no ledger
 * data. Only these exact methods pass; every other method needs a key and a role.
 */
export const publicMethods: ReadonlySet<string> = new Set([
  "grpc.health.v1.Health/Check",
  "grpc.health.v1.Health/Watch",
  "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
  "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
]);

/** authInterceptor verifies the bearer token and the caller's role for the method. */
export function authInterceptor(verifier: KeyVerifier): Interceptor {
  return (next) => async (req) => {
    if (publicMethods.has(`${req.service.typeName}/${req.method.name}`)) return next(req);
    const header = req.header.get("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (match === null) throw new LedgerError("unauthenticated", "MISSING_API_KEY", "send an API key as 'Authorization: Bearer <key>'");
    const caller = await verifier.verify(match[1]);
    const allowed = methodRoles[`${req.service.typeName}/${req.method.name}`] ?? [];
    if (!allowed.includes(caller.role)) {
      throw new LedgerError("forbidden", "ROLE_NOT_ALLOWED", `the ${caller.role} role may not call ${req.method.name}`, { role: caller.role, method: req.method.name });
    }
    // The verifier's caller is the key's, cached and shared by calls: each call gets its own copy.
    req.contextValues.set(callerKey, { ...caller, requestId: req.contextValues.get(requestIdKey) });
    return next(req);
  };
}
