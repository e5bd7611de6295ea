// Grant limits and the sources a restricted role may grant with: set, list, delete. Each
// change is idempotent (runIdempotent) and audited with its old and new value.
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { selectCreditType } from "../store/catalog-store.js";
import { selectApiKeySecret as selectApiKey } from "../store/api-key-store.js";
import { mapDriverErrors } from "../store/database.js";
import {
  deleteGrantLimit as deleteLimitRow,
  type GrantLimitRow,
  type GrantSourcesRow,
  selectGrantLimits,
  selectGrantSources,
  upsertGrantLimit,
  upsertGrantSources,
} from "../store/grant-limit-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { runIdempotent } from "./run-idempotent.js";
import { supportSourcesDefault } from "./support-grant-op.js";

/** LimitSubject names what a limit applies to: a role's keys or one key, and a credit type ("" for every one). */
export interface LimitSubject {
  subjectKind: "role" | "key";
  subject: string;
  creditTypeId: string;
}

/** GrantLimitInput is a validated limit to set. */
export interface GrantLimitInput extends LimitSubject {
  perCallMax: bigint;
  periodMax: bigint;
  periodSeconds: number;
}

const limitJson = (row: GrantLimitRow | null) =>
  row === null ? null : { per_call_max: row.perCallMax.toString(), period_max: row.periodMax.toString(), period_seconds: row.periodSeconds };
const targetOf = (subject: LimitSubject) => `grant_limit:${subject.subjectKind}:${subject.subject}:${subject.creditTypeId === "" ? "*" : subject.creditTypeId}`;

/** setGrantLimit sets a limit, audited. NotFound CREDIT_TYPE_NOT_FOUND, API_KEY_NOT_FOUND. */
export async function setGrantLimit(deps: Deps, caller: Caller, idempotency: Idempotency, input: GrantLimitInput): Promise<GrantLimitRow> {
  assert(input.perCallMax > 0n && input.periodMax > 0n, "a limit's maxima are positive");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    if (input.creditTypeId !== "" && (await selectCreditType(tx, input.creditTypeId)) === null) {
      throw notFound("CREDIT_TYPE_NOT_FOUND", "credit type id", input.creditTypeId);
    }
    if (input.subjectKind === "key") {
      const key = await selectApiKey(tx, input.subject);
      if (key === null) throw notFound("API_KEY_NOT_FOUND", "key id", input.subject);
      if (key.role !== "support") throw new LedgerError("invalid", "INVALID_GRANT_LIMIT", "key_id: only support keys have grant limits", { field: "key_id" });
    }
    const old = (await selectGrantLimits(tx, { keyId: null, role: null })).find(
      (row) => row.subjectKind === input.subjectKind && row.subject === input.subject && row.creditTypeId === input.creditTypeId,
    );
    const row = await upsertGrantLimit(tx, input);
    await insertAuditRecord(tx, { actor: caller.keyId, requestId: caller.requestId, action: "set_grant_limit", target: targetOf(input), reason: "grant limit set", details: { old: limitJson(old ?? null), new: limitJson(row) } });
    return row;
  });
}

/** deleteGrantLimit removes a limit, audited. NotFound GRANT_LIMIT_NOT_FOUND. */
export async function deleteGrantLimit(deps: Deps, caller: Caller, idempotency: Idempotency, subject: LimitSubject): Promise<GrantLimitRow> {
  assert(subject.subject !== "", "a limit names its role or key");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const row = await deleteLimitRow(tx, subject);
    if (row === null) throw new LedgerError("not_found", "GRANT_LIMIT_NOT_FOUND", `no grant limit for ${targetOf(subject)}`, { target: targetOf(subject) });
    await insertAuditRecord(tx, { actor: caller.keyId, requestId: caller.requestId, action: "delete_grant_limit", target: targetOf(subject), reason: "grant limit removed", details: { old: limitJson(row), new: null } });
    return row;
  });
}

/** listGrantLimits reads every limit, or those that may apply to one key (its own and its role's). */
export async function listGrantLimits(deps: Deps, keyId: string): Promise<GrantLimitRow[]> {
  if (keyId === "") return mapDriverErrors(() => selectGrantLimits(deps.pool, { keyId: null, role: null }));
  const key = await mapDriverErrors(() => selectApiKey(deps.pool, keyId));
  if (key === null) throw notFound("API_KEY_NOT_FOUND", "key id", keyId);
  const rows = await mapDriverErrors(() => selectGrantLimits(deps.pool, { keyId, role: key.role }));
  assert(rows.every((row) => row.subject === keyId || row.subject === key.role), "only the key's and its role's limits");
  return rows;
}

/** setGrantSources sets the sources a restricted role may grant with, audited. */
export async function setGrantSources(deps: Deps, caller: Caller, idempotency: Idempotency, input: GrantSourcesRow): Promise<GrantSourcesRow> {
  assert(input.sources.length > 0 && !input.sources.includes("purchase") && !input.sources.includes("recharge"), "sources were checked");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const old = (await selectGrantSources(tx, input.role))[0] ?? null;
    const row = await upsertGrantSources(tx, input);
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "set_grant_sources",
      target: `grant_sources:${input.role}`,
      reason: "grant sources set",
      details: { old: old?.sources ?? null, new: row.sources },
    });
    return row;
  });
}

/** listGrantSources reads each restricted role's sources; support's default when none is stored. */
export async function listGrantSources(deps: Deps): Promise<GrantSourcesRow[]> {
  const rows = await mapDriverErrors(() => selectGrantSources(deps.pool, null));
  return rows.some((row) => row.role === "support") ? rows : [{ role: "support", sources: [...supportSourcesDefault] }, ...rows];
}
