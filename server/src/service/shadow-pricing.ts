// The shadow pricing report: a period's usage as the real pricing rated it, beside a
// candidate pricing version's rating of the same events, per customer and feature, with
// totals per credit type. What a platform or finance team reads before moving a cohort
// to a new version. It reads the stored events when asked, so ingestion does no extra
// work, and it writes nothing. Pages follow (customer, feature); a page token is bound to
// its request, and every page carries the totals of the whole report.
import { createHash } from "node:crypto";
import { invalid, LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { limits } from "../limits.js";
import { mapDriverErrors } from "../store/database.js";
import { selectMissingPricingVersionIds } from "../store/pricing-store.js";
import { type ShadowPricingFigures, type ShadowPricingFilter, selectShadowPricingPage } from "../store/shadow-pricing-store.js";
import type { Deps } from "./context.js";

/** ShadowPricingAmounts are the figures a row and a total share, in int64 range. */
export interface ShadowPricingAmounts {
  events: bigint;
  burnedCredits: bigint;
  shadowedCredits: bigint;
  notBilledCredits: bigint;
  currentCredits: bigint;
  candidateCredits: bigint;
}

/** ShadowPricingRow is one customer's usage of one feature in the period. */
export interface ShadowPricingRow extends ShadowPricingAmounts {
  customerId: string;
  featureKey: string;
  creditTypeId: string;
  quantity: bigint;
}

/** ShadowPricingTotal sums every row of one credit type. */
export interface ShadowPricingTotal extends ShadowPricingAmounts {
  creditTypeId: string;
}

/** ShadowPricingReport is a page of rows, the totals of all rows, and the token of the next page. */
export interface ShadowPricingReport {
  rows: ShadowPricingRow[];
  totals: ShadowPricingTotal[];
  nextPageToken: string;
}

/** ShadowPricingInput is a decoded request: the filter (period checked, lists without repeats) and the page. */
export interface ShadowPricingInput extends ShadowPricingFilter {
  pageSize: number;
  pageToken: string;
}

const tokenVersion = "s1";
const customerIdPattern = /^[\x21-\x7e]{1,128}$/;
const featureKeyPattern = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

/**
 * requestKey identifies a report's request (everything but the page), so that a token
 * from one report is refused by another instead of silently skipping its rows.
 */
function requestKey(filter: ShadowPricingFilter): string {
  const body = JSON.stringify([
    filter.candidatePricingVersionId,
    filter.startAt.getTime(),
    filter.endAt.getTime(),
    [...filter.customerIds].sort(),
    [...filter.featureKeys].sort(),
    filter.currentPricingVersionId,
  ]);
  return createHash("sha256").update(body).digest("base64url").slice(0, 16);
}

/** encodeToken makes the opaque token of the page after a row: version, request key, customer and feature, one a line. */
function encodeToken(key: string, last: { customerId: string; featureKey: string }): string {
  return Buffer.from([tokenVersion, key, last.customerId, last.featureKey].join("\n")).toString("base64url");
}

/** decodeToken reads a token of this request, or refuses it; "" is the first page. */
function decodeToken(token: string, key: string): { customerId: string; featureKey: string } | null {
  if (token === "") return null;
  const parts = token.length > limits.pageTokenLengthMax ? [] : Buffer.from(token, "base64url").toString("utf8").split("\n");
  const [version, tokenKey, customerId, featureKey] = parts;
  const valid = parts.length === 4 && version === tokenVersion && tokenKey === key && customerIdPattern.test(customerId) && featureKeyPattern.test(featureKey);
  if (!valid) throw invalid("INVALID_PAGE_TOKEN", "page_token", "not a token from a previous page of this report");
  return { customerId, featureKey };
}

/** int64Of reads a figure summed in numeric, refusing one past the int64 range. */
function int64Of(text: string): bigint {
  const value = BigInt(text);
  assert(value >= 0n, "a report's figures are never negative");
  if (value > limits.amountMax) {
    throw new LedgerError("invalid", "AMOUNT_OUT_OF_RANGE", "a figure of the report exceeds the int64 range; narrow the period or the customers");
  }
  return value;
}

function amountsOf(figures: ShadowPricingFigures): ShadowPricingAmounts {
  const amounts = {
    events: int64Of(figures.events),
    burnedCredits: int64Of(figures.burned),
    shadowedCredits: int64Of(figures.shadowed),
    notBilledCredits: int64Of(figures.notBilled),
    currentCredits: int64Of(figures.current),
    candidateCredits: int64Of(figures.candidate),
  };
  assert(amounts.currentCredits === amounts.burnedCredits + amounts.shadowedCredits + amounts.notBilledCredits, "current is the sum of the real pricing's columns");
  return amounts;
}

/**
 * getShadowPricingReport reads one page of the report and the totals of all of it. The
 * candidate version, and the cohort's version when given, must exist (NotFound). A figure
 * past int64, on any row (the totals include every row), refuses the whole request.
 */
export async function getShadowPricingReport(deps: Deps, input: ShadowPricingInput): Promise<ShadowPricingReport> {
  assert(input.endAt.getTime() > input.startAt.getTime(), "the period is checked");
  assert(input.pageSize >= 1 && input.pageSize <= limits.pageSizeMax, "the page size is checked");
  const key = requestKey(input);
  const after = decodeToken(input.pageToken, key);
  const versions = [input.candidatePricingVersionId, ...(input.currentPricingVersionId === null ? [] : [input.currentPricingVersionId])];
  const missing = await mapDriverErrors(() => selectMissingPricingVersionIds(deps.pool, versions));
  if (missing.length > 0) throw notFound("PRICING_VERSION_NOT_FOUND", "pricing version id", missing[0]);
  const read = await mapDriverErrors(() => selectShadowPricingPage(deps.pool, input, { after, limit: input.pageSize + 1 }));
  int64Of(read.quantityMax);
  const totals = read.totals.map((total) => ({ creditTypeId: total.creditTypeId, ...amountsOf(total) }));
  const rows = read.rows.slice(0, input.pageSize).map((row) => ({
    customerId: row.customerId,
    featureKey: row.featureKey,
    creditTypeId: row.creditTypeId,
    quantity: int64Of(row.quantity),
    ...amountsOf(row),
  }));
  const last = rows.at(-1);
  assert(after === null || last === undefined || last.customerId !== after.customerId || last.featureKey !== after.featureKey, "a page starts after its token");
  return { rows, totals, nextPageToken: read.rows.length > input.pageSize && last !== undefined ? encodeToken(key, last) : "" };
}
