// GetCaller: who the calling key is, and what the deployment lets it grant with; what a
// screen asks first, before it offers a grant form or a customer's own view. The auth
// interceptor has already read the key; the reason codes and a restricted role's sources
// are read from their lists.
import { assert } from "../ledger/balance-state.js";
import type { Caller, Deps, Role } from "./context.js";
import { listGrantSources } from "./grant-limits.js";
import { enabledReasonCodes } from "./reason-codes.js";

/** CallerView is the calling key as it may see itself (never its secret). */
export interface CallerView {
  keyId: string;
  name: string;
  role: Role;
  /** the most one Grant may give: a support key's own limit; 0 for other roles, which have none. */
  grantLimit: bigint;
  /** a customer key's customer; null for other roles. */
  customerId: string | null;
  /** the enabled reason codes (SupportService's list). */
  grantReasonCodes: readonly string[];
  /** the sources a restricted role may grant with; empty for roles that may use any. */
  grantSources: readonly string[];
}

/** getCaller describes the calling key. */
export async function getCaller(deps: Deps, caller: Caller): Promise<CallerView> {
  assert((caller.role === "customer") === (caller.customerId !== undefined), "a customer key, and only one, is bound to a customer");
  const codes = await enabledReasonCodes(deps);
  const sources = caller.role === "support" ? ((await listGrantSources(deps)).find((row) => row.role === caller.role)?.sources ?? []) : [];
  assert(caller.role !== "support" || sources.length > 0, "a restricted role grants with at least one source");
  return {
    keyId: caller.keyId,
    name: caller.name,
    role: caller.role,
    grantLimit: caller.role === "support" ? caller.grantLimit : 0n,
    customerId: caller.customerId ?? null,
    grantReasonCodes: codes,
    grantSources: sources,
  };
}
