// SearchCustomers: find a customer by id (exact, then prefix) or by part of its display
// name, for support's first screen.
import { assert } from "../ledger/balance-state.js";
import { type CustomerRow, selectCustomerMatches } from "../store/catalog-store.js";
import { mapDriverErrors } from "../store/database.js";
import type { Deps } from "./context.js";

/**
 * namePatternOf makes an ILIKE pattern that matches query anywhere in a name, with LIKE's
 * own characters in query (%, _ and the escape character \\) matched as themselves.
 */
export function namePatternOf(query: string): string {
  return `%${query.replace(/[\\%_]/g, (character) => `\\${character}`)}%`;
}

/** searchCustomers reads up to pageSize matches, and whether more matched. */
export async function searchCustomers(deps: Deps, input: { query: string; pageSize: number }): Promise<{ customers: CustomerRow[]; truncated: boolean }> {
  assert(input.query.length > 0 && input.pageSize > 0, "the search is decoded");
  const rows = await mapDriverErrors(() => selectCustomerMatches(deps.pool, { query: input.query, namePattern: namePatternOf(input.query), limit: input.pageSize + 1 }));
  assert(new Set(rows.map((row) => row.customerId)).size === rows.length, "each customer is listed once");
  return { customers: rows.slice(0, input.pageSize), truncated: rows.length > input.pageSize };
}
