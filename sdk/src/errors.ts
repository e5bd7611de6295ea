// Typed errors for the failures callers act on. Every error the client throws is a
// ConnectError (so `instanceof ConnectError`, `.code`, errorInfoOf and ConnectError.from
// keep working, and code that judges errors by code needs nothing new), carrying the
// ErrorInfo reason, the request id and the attempts made; the subclasses add the fields
// that matter for their reason, parsed (amounts as bigint). The original error is kept
// as `cause`, for logs.
import { Code, ConnectError } from "@connectrpc/connect";
import type { ErrorInfo } from "./error-info.js";
import { errorInfoOf } from "./error-reason.js";

/** FailureContext is what the client knows about the call that failed. */
export interface FailureContext {
  /** the request id the call carried, for a mutation; retry later with the same id. */
  requestId?: string;
  /** how many attempts were made. */
  attempts: number;
}

/** BurndownError is a failed call of the client: a ConnectError with its ErrorInfo (reason empty when the server gave none). */
export class BurndownError extends ConnectError {
  readonly info: ErrorInfo;
  readonly requestId: string | undefined;
  readonly attempts: number;

  constructor(cause: ConnectError, context: FailureContext) {
    super(cause.rawMessage, cause.code, cause.metadata, undefined, cause);
    // ConnectError recognises its instances by this name (its Symbol.hasInstance), so it stays.
    this.name = "ConnectError";
    this.details = cause.details;
    this.info = errorInfoOf(cause) ?? { reason: "", domain: "", metadata: {} };
    this.requestId = context.requestId;
    this.attempts = context.attempts;
  }

  /** reason is the ErrorInfo reason, such as INSUFFICIENT_CREDITS; empty when the server gave none. */
  get reason(): string {
    return this.info.reason;
  }

  // ConnectError's own check accepts any ConnectError-shaped value; the typed errors need
  // the ordinary prototype check, or every ConnectError would pass for every subclass.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

function amountOf(info: ErrorInfo, key: string): bigint {
  const text = info.metadata[key];
  return text !== undefined && /^-?\d+$/.test(text) ? BigInt(text) : 0n;
}

/** InsufficientCreditsError is INSUFFICIENT_CREDITS: available plus overdraft is less than required. */
export class InsufficientCreditsError extends BurndownError {
  readonly customerId = this.info.metadata.customer_id ?? "";
  readonly creditTypeId = this.info.metadata.credit_type_id ?? "";
  readonly available = amountOf(this.info, "available");
  readonly required = amountOf(this.info, "required");
}

/** NotFoundError is a NotFound answer; reason says what is missing (CUSTOMER_NOT_FOUND, FEATURE_NOT_FOUND...). */
export class NotFoundError extends BurndownError {}

/** ReservationNotHeldError is RESERVATION_NOT_HELD: the reservation was already committed, released or expired. */
export class ReservationNotHeldError extends BurndownError {
  readonly reservationId = this.info.metadata.reservation_id ?? "";
  readonly status = this.info.metadata.status ?? "";
}

/** ReservationExpiredError is RESERVATION_EXPIRED: the hold's time to live ran out before it was resolved. */
export class ReservationExpiredError extends BurndownError {
  readonly reservationId = this.info.metadata.reservation_id ?? "";
}

/** RequestIdReusedError is REQUEST_ID_REUSED: the request id was already used for a different request. */
export class RequestIdReusedError extends BurndownError {}

/**
 * UnavailableError is a call that got no answer: its last attempt failed with a transient
 * fault (Unavailable, DeadlineExceeded or Aborted) and the attempts or the deadline ran
 * out. For a mutation the outcome is unknown: retry later with the same requestId.
 */
export class UnavailableError extends BurndownError {}

/** OfflineDeniedReason says why an action was denied while the ledger was unreachable. */
export type OfflineDeniedReason = "FAIL_CLOSED" | "OFFLINE_BUDGET_EXCEEDED" | "SPOOL_FULL";

/**
 * OfflineDeniedError is an action denied while the ledger was unreachable: the feature
 * fails closed, its offline budget is spent, or the spool is full. Code Unavailable.
 */
export class OfflineDeniedError extends BurndownError {
  constructor(
    readonly featureKey: string,
    reason: OfflineDeniedReason,
    cause: unknown,
  ) {
    super(new ConnectError(`the ledger is unreachable and feature ${featureKey} may not proceed: ${reason}`, Code.Unavailable, undefined, undefined, cause), { attempts: 0 });
    this.info.reason = reason;
    this.info.metadata.feature_key = featureKey;
  }
}

const byReason: Record<string, new (cause: ConnectError, context: FailureContext) => BurndownError> = {
  INSUFFICIENT_CREDITS: InsufficientCreditsError,
  RESERVATION_NOT_HELD: ReservationNotHeldError,
  RESERVATION_EXPIRED: ReservationExpiredError,
  REQUEST_ID_REUSED: RequestIdReusedError,
};

const transientCodes = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Aborted]);

/** burndownErrorOf turns the last failure of a call into the typed error callers see. */
export function burndownErrorOf(error: unknown, context: FailureContext): BurndownError {
  if (error instanceof BurndownError) return error;
  const cause = ConnectError.from(error);
  const typed = byReason[errorInfoOf(cause)?.reason ?? ""];
  if (typed !== undefined) return new typed(cause, context);
  if (cause.code === Code.NotFound) return new NotFoundError(cause, context);
  if (transientCodes.has(cause.code)) return new UnavailableError(cause, context);
  return new BurndownError(cause, context);
}
