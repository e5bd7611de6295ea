// What may be retried, and how long to wait: pure functions, tested as tables.
import { Code, ConnectError } from "@connectrpc/connect";
import { errorInfoOf } from "./error-reason.js";

/**
 * CallKind says what a retry may assume. A mutation always carries an idempotency key
 * (its request id, or for ReportUsage each event's id), so sending it again cannot
 * apply it twice; a read changes nothing.
 */
export type CallKind = "mutation" | "read";

/** RetryOptions bound the attempts of one call. */
export interface RetryOptions {
  /** attempts in all, the first included. */
  attemptsMax: number;
  /** the cap of the first backoff; each later cap doubles. */
  backoffMsInitial: number;
  /** no backoff cap grows past this. */
  backoffMsMax: number;
  /** the whole call, every attempt and wait included. */
  deadlineMs: number;
}

/** retryOptionsOf merges overrides into base and checks every bound; a bad bound is a programmer error and throws. */
export function retryOptionsOf(overrides: Partial<RetryOptions> | undefined, base: RetryOptions, attemptsMaxMax: number, deadlineMsMax: number): RetryOptions {
  const retry = { ...base, ...overrides };
  const checks: [boolean, string][] = [
    [Number.isInteger(retry.attemptsMax) && retry.attemptsMax >= 1 && retry.attemptsMax <= attemptsMaxMax, `attemptsMax must be an integer from 1 to ${attemptsMaxMax}`],
    [retry.backoffMsInitial >= 0 && retry.backoffMsInitial <= retry.backoffMsMax, "need 0 <= backoffMsInitial <= backoffMsMax"],
    [retry.deadlineMs > 0 && retry.deadlineMs <= deadlineMsMax, `deadlineMs must be above 0 and at most ${deadlineMsMax}`],
  ];
  for (const [ok, message] of checks) if (!ok) throw new RangeError(`retry: ${message}, got ${JSON.stringify(retry)}`);
  return retry;
}

/**
 * shouldRetry says whether an attempt that failed with code may be sent again (AIP-194).
 * Unavailable is retried always. Aborted (a concurrent change won) only for mutations,
 * whose request id makes the retry safe. DeadlineExceeded is an attempt that timed out
 * with its outcome unknown: a mutation is sent again with the same request id, which
 * returns the first result if the first attempt did apply; a read is simply repeated.
 * Nothing else is retried: the server gave its answer.
 */
export function shouldRetry(code: Code, kind: CallKind): boolean {
  if (code === Code.Unavailable || code === Code.DeadlineExceeded) return true;
  return code === Code.Aborted && kind === "mutation";
}

/** backoffDelayMs is the full-jitter wait after the failedAttempts-th failure: random in [0, min(max, initial * 2^(n-1))). */
export function backoffDelayMs(failedAttempts: number, retry: RetryOptions, random: () => number): number {
  if (!(failedAttempts >= 1)) throw new RangeError(`failedAttempts must be at least 1, got ${failedAttempts}`);
  const capMs = Math.min(retry.backoffMsMax, retry.backoffMsInitial * 2 ** Math.min(failedAttempts - 1, 30));
  const draw = random();
  if (!(draw >= 0 && draw < 1)) throw new RangeError(`random() must return a number in [0, 1), got ${draw}`);
  return Math.floor(draw * capMs);
}

/**
 * attemptFailureOf turns what one attempt threw into the ConnectError the policy judges.
 * An error the Burndown server did not answer (it always attaches an ErrorInfo) that is
 * Canceled, Aborted, Internal or Unknown without our own abort is a broken connection
 * (connect-node reports a reset as Aborted, a destroyed HTTP/2 session as Canceled, a
 * broken pipe as Internal): it becomes Unavailable, with the original kept as cause.
 */
export function attemptFailureOf(error: unknown, attemptSignal: AbortSignal): ConnectError {
  if (attemptSignal.aborted && attemptSignal.reason instanceof ConnectError) return attemptSignal.reason;
  const failure = ConnectError.from(error);
  if (errorInfoOf(failure) !== null) return failure;
  const transportCodes = [Code.Canceled, Code.Aborted, Code.Internal, Code.Unknown];
  if (!transportCodes.includes(failure.code)) return failure;
  return new ConnectError(`connection failed: ${failure.rawMessage}`, Code.Unavailable, failure.metadata, undefined, failure);
}
