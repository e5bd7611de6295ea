// The reason codes support grants and grant requests are filed under.
import type { Db, Tx } from "./database.js";

/** ReasonCodeRow is a stored reason code. */
export interface ReasonCodeRow {
  code: string;
  label: string;
  description: string;
  disabledAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

const columns = "code, label, description, disabled_at, created_at, updated_at";

function toReasonCodeRow(row: Record<string, unknown>): ReasonCodeRow {
  return {
    code: row.code as string,
    label: row.label as string,
    description: row.description as string,
    disabledAt: row.disabled_at as Date | null,
    createdAt: row.created_at as Date,
    updatedAt: row.updated_at as Date,
  };
}

/** insertReasonCode adds a code; an existing one fails on reason_codes_pkey. */
export async function insertReasonCode(tx: Tx, row: { code: string; label: string; description: string }): Promise<ReasonCodeRow> {
  const result = await tx.query({
    name: "insert_reason_code",
    text: `insert into reason_codes (code, label, description) values ($1, $2, $3) returning ${columns}`,
    values: [row.code, row.label, row.description],
  });
  return toReasonCodeRow(result.rows[0]);
}

/**
 * seedReasonCodes inserts codes (each its own label) only when the list is empty: the
 * first start of a deployment keeps the codes BURNDOWN_GRANT_REASON_CODES named. Returns
 * how many it inserted.
 */
export async function seedReasonCodes(db: Db, codes: readonly string[]): Promise<number> {
  const result = await db.query({
    name: "seed_reason_codes",
    text: `insert into reason_codes (code, label)
           select code, code from unnest($1::text[]) as code
           where not exists (select 1 from reason_codes)
           on conflict (code) do nothing`,
    values: [codes],
  });
  return result.rowCount ?? 0;
}

/** updateReasonCode changes a code's label, description and whether it is disabled; null when there is none. */
export async function updateReasonCode(tx: Tx, row: { code: string; label: string; description: string; disabled: boolean }): Promise<ReasonCodeRow | null> {
  const result = await tx.query({
    name: "update_reason_code",
    text: `update reason_codes set label = $2, description = $3, updated_at = now(),
                  disabled_at = case when $4 then coalesce(disabled_at, now()) else null end
           where code = $1 returning ${columns}`,
    values: [row.code, row.label, row.description, row.disabled],
  });
  return result.rows.length === 0 ? null : toReasonCodeRow(result.rows[0]);
}

/** selectReasonCode reads one code, locking it when asked (an update's old value). */
export async function selectReasonCode(db: Db, code: string, lock: "none" | "update"): Promise<ReasonCodeRow | null> {
  const result = await db.query({
    name: `select_reason_code_${lock}`,
    text: `select ${columns} from reason_codes where code = $1${lock === "update" ? " for update" : ""}`,
    values: [code],
  });
  return result.rows.length === 0 ? null : toReasonCodeRow(result.rows[0]);
}

/** selectReasonCodes reads the codes, enabled first, then by code; disabled ones only when asked. No locks. */
export async function selectReasonCodes(db: Db, query: { includeDisabled: boolean; limit: number }): Promise<ReasonCodeRow[]> {
  const result = await db.query({
    name: "select_reason_codes",
    text: `select ${columns} from reason_codes where $1 or disabled_at is null
           order by disabled_at is not null, code limit $2`,
    values: [query.includeDisabled, query.limit],
  });
  return result.rows.map(toReasonCodeRow);
}
