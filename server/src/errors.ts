// Domain errors: a closed set of kinds, each with an UPPER_SNAKE reason and string
// details. The rpc layer maps kinds to Connect codes in one place; nothing below it
// knows about transports.

/** ErrorKind is the closed set of ways a request can fail. */
export type ErrorKind =
  | "invalid" // the request is malformed: InvalidArgument
  | "not_found" // the thing does not exist, or the caller may not see it: NotFound
  | "exists" // the thing already exists: AlreadyExists
  | "rejected" // the state forbids the action: FailedPrecondition
  | "forbidden" // the caller's role may not do this: PermissionDenied
  | "unauthenticated" // no valid credential: Unauthenticated
  | "conflict" // a concurrent change won; retry with the same request id: Aborted
  | "unavailable" // a transient fault; retry: Unavailable
  | "overloaded"; // too much work queued; back off: ResourceExhausted

/** LedgerError is a failure the caller should see, with a reason and details. */
export class LedgerError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly reason: string,
    message: string,
    readonly details: Record<string, string> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "LedgerError";
  }
}

/** invalid builds an InvalidArgument error for one field. */
export function invalid(reason: string, field: string, message: string): LedgerError {
  return new LedgerError("invalid", reason, `${field}: ${message}`, { field });
}

/** notFound builds a NotFound error for one thing. */
export function notFound(reason: string, what: string, id: string): LedgerError {
  return new LedgerError("not_found", reason, `${what} ${JSON.stringify(id)} not found`, { [what.replace(/ /g, "_")]: id });
}
