// Reason codes: create, update (label, description, disabled), list, and the seed of a
// deployment's first start. Each change is idempotent (runIdempotent) and audited.
import { LedgerError } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { isUniqueViolation, mapDriverErrors } from "../store/database.js";
import { insertReasonCode, type ReasonCodeRow, seedReasonCodes, selectReasonCode, selectReasonCodes, updateReasonCode as updateRow } from "../store/reason-code-store.js";
import type pg from "pg";
import type { Caller, Deps, Idempotency } from "./context.js";
import { runIdempotent } from "./run-idempotent.js";

/** ReasonCodeInput is a validated code with its label and description. */
export interface ReasonCodeInput {
  code: string;
  label: string;
  description: string;
}

const codeJson = (row: ReasonCodeRow | null) => (row === null ? null : { label: row.label, description: row.description, disabled: row.disabledAt !== null });

/** createReasonCode adds a code, audited. AlreadyExists REASON_CODE_EXISTS. */
export async function createReasonCode(deps: Deps, caller: Caller, idempotency: Idempotency, input: ReasonCodeInput): Promise<ReasonCodeRow> {
  assert(input.code !== "" && input.label !== "", "a code has its code and label");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const existing = await selectReasonCodes(tx, { includeDisabled: true, limit: limits.reasonCodesMax });
    if (existing.length >= limits.reasonCodesMax && !existing.some((row) => row.code === input.code)) {
      throw new LedgerError("rejected", "TOO_MANY_REASON_CODES", `a deployment keeps at most ${limits.reasonCodesMax} reason codes; disable or reuse one`, {});
    }
    const row = await insertReasonCode(tx, input).catch((error: unknown) => {
      if (isUniqueViolation(error, "reason_codes_pkey")) throw new LedgerError("exists", "REASON_CODE_EXISTS", `reason code ${input.code} exists already`, { code: input.code });
      throw error;
    });
    await insertAuditRecord(tx, { actor: caller.keyId, requestId: caller.requestId, action: "create_reason_code", target: `reason_code:${row.code}`, reason: row.label, details: { old: null, new: codeJson(row) } });
    return row;
  });
}

/** updateReasonCode changes a code, audited. NotFound REASON_CODE_UNKNOWN. */
export async function updateReasonCode(deps: Deps, caller: Caller, idempotency: Idempotency, input: ReasonCodeInput & { disabled: boolean }): Promise<ReasonCodeRow> {
  assert(input.code !== "" && input.label !== "", "a code has its code and label");
  return runIdempotent(deps, caller, idempotency, async (tx) => {
    const old = await selectReasonCode(tx, input.code, "update");
    const row = old === null ? null : await updateRow(tx, input);
    if (row === null) throw new LedgerError("not_found", "REASON_CODE_UNKNOWN", `reason code ${JSON.stringify(input.code)} not found`, { code: input.code });
    await insertAuditRecord(tx, { actor: caller.keyId, requestId: caller.requestId, action: "update_reason_code", target: `reason_code:${row.code}`, reason: row.label, details: { old: codeJson(old), new: codeJson(row) } });
    return row;
  });
}

/** listReasonCodes reads the codes, enabled first. */
export async function listReasonCodes(deps: Deps, includeDisabled: boolean): Promise<ReasonCodeRow[]> {
  const rows = await mapDriverErrors(() => selectReasonCodes(deps.pool, { includeDisabled, limit: limits.reasonCodesMax }));
  assert(includeDisabled || rows.every((row) => row.disabledAt === null), "disabled codes only when asked");
  return rows;
}

/** enabledReasonCodes are the codes a grant may name now (GetCaller's list). */
export async function enabledReasonCodes(deps: Deps): Promise<string[]> {
  return (await listReasonCodes(deps, false)).map((row) => row.code);
}

/** seedReasonCodeList gives an empty list the configured codes (BURNDOWN_GRANT_REASON_CODES): the first start keeps what deployments used. */
export async function seedReasonCodeList(pool: pg.Pool, codes: readonly string[]): Promise<number> {
  assert(codes.length > 0 && codes.length <= limits.reasonCodesMax, "the configured list has 1 to reasonCodesMax codes");
  const inserted = await mapDriverErrors(() => seedReasonCodes(pool, codes));
  assert(inserted === 0 || inserted <= codes.length, "the seed inserts at most the configured codes");
  return inserted;
}
