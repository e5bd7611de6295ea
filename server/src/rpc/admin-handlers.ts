// AdminService handlers: decode, call one service function, encode.
import type { ServiceImpl } from "@connectrpc/connect";
import {
  type AdminService,
  CreateApiKeyRequestSchema,
  CreateCreditTypeRequestSchema,
  CreateCustomerRequestSchema,
  CreateFeatureRequestSchema,
  RevokeApiKeyRequestSchema,
  SetOverdraftLimitRequestSchema,
} from "@burndown/sdk";
import { invalid } from "../errors.js";
import { limits } from "../limits.js";
import { createApiKey, listApiKeys, revokeApiKey } from "../service/api-keys.js";
import { createCreditType, createCustomer, createFeature, getCustomer, listCreditTypes, listFeatures, setOverdraftLimit } from "../service/catalog.js";
import type { Deps } from "../service/context.js";
import { searchCustomers } from "../service/search-customers.js";
import {
  optionalTime,
  requireCode,
  requireEnforcementMode,
  requireId,
  requireNonNegative,
  requirePageSize,
  requirePositive,
  requireRole,
  requireText,
} from "./decode.js";
import { encodeApiKey, encodeCreditType, encodeCustomer, encodeFeature } from "./encode.js";
import { callerOf } from "./ledger-handlers.js";
import { idempotencyOf } from "./request-hash.js";

function required<T>(field: string, value: T | undefined): T {
  if (value === undefined) throw invalid("MISSING_FIELD", field, "is required");
  return value;
}

/** adminHandlers implements AdminService's catalog, customer and key methods. */
export function adminHandlers(deps: Deps): Partial<ServiceImpl<typeof AdminService>> {
  return {
    async createCreditType(req, ctx) {
      const idempotency = idempotencyOf(CreateCreditTypeRequestSchema, "CreateCreditType", req);
      const type = required("credit_type", req.creditType);
      if (type.scale < 0 || type.scale > limits.scaleMax) throw invalid("INVALID_SCALE", "credit_type.scale", `must be between 0 and ${limits.scaleMax}`);
      const created = await createCreditType(deps, callerOf(ctx), idempotency, {
        creditTypeId: requireCode("credit_type.credit_type_id", type.creditTypeId),
        displayName: requireText("credit_type.display_name", type.displayName, limits.displayNameLengthMax),
        scale: type.scale,
      });
      return { creditType: encodeCreditType(created) };
    },
    async listCreditTypes() {
      return { creditTypes: (await listCreditTypes(deps)).map(encodeCreditType) };
    },
    async createFeature(req, ctx) {
      const idempotency = idempotencyOf(CreateFeatureRequestSchema, "CreateFeature", req);
      const feature = required("feature", req.feature);
      const created = await createFeature(deps, callerOf(ctx), idempotency, {
        featureKey: requireCode("feature.feature_key", feature.featureKey),
        displayName: requireText("feature.display_name", feature.displayName, limits.displayNameLengthMax),
        creditTypeId: requireCode("feature.credit_type_id", feature.creditTypeId),
        burnRate: requirePositive("feature.burn_rate", feature.burnRate),
        enforcementMode: feature.enforcementMode === 0 ? "enforce" : requireEnforcementMode("feature.enforcement_mode", feature.enforcementMode),
      });
      return { feature: encodeFeature(created) };
    },
    async listFeatures() {
      const { features, killSwitch } = await listFeatures(deps);
      return { features: features.map(encodeFeature), killSwitch };
    },
    async createCustomer(req, ctx) {
      const idempotency = idempotencyOf(CreateCustomerRequestSchema, "CreateCustomer", req);
      const customer = required("customer", req.customer);
      const overdraftLimits = customer.overdraftLimits.map((limit, index) => ({
        creditTypeId: requireCode(`customer.overdraft_limits[${index}].credit_type_id`, limit.creditTypeId),
        limit: requireNonNegative(`customer.overdraft_limits[${index}].amount`, limit.amount),
      }));
      if (new Set(overdraftLimits.map((limit) => limit.creditTypeId)).size !== overdraftLimits.length) {
        throw invalid("DUPLICATE_CREDIT_TYPE", "customer.overdraft_limits", "names a credit type twice");
      }
      const created = await createCustomer(deps, callerOf(ctx), idempotency, {
        customerId: requireId("customer.customer_id", customer.customerId),
        displayName: requireText("customer.display_name", customer.displayName, limits.displayNameLengthMax),
        overdraftLimits,
      });
      return { customer: encodeCustomer(created) };
    },
    async getCustomer(req) {
      return { customer: encodeCustomer(await getCustomer(deps, requireId("customer_id", req.customerId))) };
    },
    async searchCustomers(req) {
      const found = await searchCustomers(deps, {
        query: requireText("query", req.query, limits.searchQueryLengthMax, true),
        pageSize: requirePageSize(req.pageSize, { sizeDefault: limits.searchPageSizeDefault, sizeMax: limits.searchPageSizeMax }),
      });
      return { customers: found.customers.map(encodeCustomer), truncated: found.truncated };
    },
    async setOverdraftLimit(req, ctx) {
      const idempotency = idempotencyOf(SetOverdraftLimitRequestSchema, "SetOverdraftLimit", req);
      const limit = required("limit", req.limit);
      const customer = await setOverdraftLimit(deps, callerOf(ctx), idempotency, {
        customerId: requireId("customer_id", req.customerId),
        creditTypeId: requireCode("limit.credit_type_id", limit.creditTypeId),
        limit: requireNonNegative("limit.amount", limit.amount),
        reason: requireText("reason", req.reason, limits.noteLengthMax),
      });
      return { customer: encodeCustomer(customer) };
    },
    async createApiKey(req, ctx) {
      const idempotency = idempotencyOf(CreateApiKeyRequestSchema, "CreateApiKey", req);
      const role = requireRole(req.role);
      const grantLimit = requireNonNegative("grant_limit", req.grantLimit);
      if (role !== "support" && grantLimit !== 0n) throw invalid("INVALID_GRANT_LIMIT", "grant_limit", "only support keys have a grant limit");
      // A customer key is bound to one customer; no other key is.
      const customerId = role === "customer" ? requireId("customer_id", req.customerId) : null;
      if (role !== "customer" && req.customerId !== "") throw invalid("INVALID_CUSTOMER_ID", "customer_id", "only customer keys are bound to a customer");
      const expiresAt = optionalTime("expire_time", req.expireTime);
      if (expiresAt !== null && expiresAt.getTime() <= deps.now().getTime()) throw invalid("INVALID_EXPIRE_TIME", "expire_time", "must be in the future");
      const created = await createApiKey(deps, callerOf(ctx), idempotency, {
        name: requireText("name", req.name, limits.idLengthMax, true),
        role,
        grantLimit,
        expiresAt,
        reason: requireText("reason", req.reason, limits.noteLengthMax),
        customerId,
      });
      return { apiKey: encodeApiKey(created.apiKey), token: created.token };
    },
    async listApiKeys() {
      return { apiKeys: (await listApiKeys(deps)).map(encodeApiKey) };
    },
    async revokeApiKey(req, ctx) {
      const idempotency = idempotencyOf(RevokeApiKeyRequestSchema, "RevokeApiKey", req);
      const revoked = await revokeApiKey(deps, callerOf(ctx), idempotency, {
        keyId: requireId("key_id", req.keyId),
        reason: requireText("reason", req.reason, limits.noteLengthMax),
      });
      return { apiKey: encodeApiKey(revoked) };
    },
  };
}
