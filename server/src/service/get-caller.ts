// GetCaller: who the calling key is, and what the deployment lets it grant with; what a
// screen asks first, before it offers a grant form or a customer's own view. No IO: the
// auth interceptor has already read the key.
import { assert } from "../ledger/balance-state.js";
import type { Caller, Deps, Role } from "./context.js";

/** CallerView is the calling key as it may see itself (never its secret). */
export interface CallerView {
  keyId: string;
  name: string;
  role: Role;
  /** the most one Grant may give: a support key's own limit; 0 for other roles, which have none. */
  grantLimit: bigint;
  /** a customer key's customer; null for other roles. */
  customerId: string | null;
  grantReasonCodes: readonly string[];
}

/** getCaller describes the calling key. */
export function getCaller(deps: Deps, caller: Caller): CallerView {
  assert((caller.role === "customer") === (caller.customerId !== undefined), "a customer key, and only one, is bound to a customer");
  assert(deps.grantReasonCodes.length > 0, "the deployment lists at least one grant reason code");
  return {
    keyId: caller.keyId,
    name: caller.name,
    role: caller.role,
    grantLimit: caller.role === "support" ? caller.grantLimit : 0n,
    customerId: caller.customerId ?? null,
    grantReasonCodes: deps.grantReasonCodes,
  };
}
