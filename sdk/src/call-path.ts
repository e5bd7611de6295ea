// The call path: the one place every RPC of the client goes through. A call runs its
// call interceptors, then attempts until one succeeds, the policy refuses a retry, the
// attempts or the deadline run out, or the caller cancels. Each attempt runs the attempt
// interceptors with a signal of its own (the attempt's timeout combined with the caller's
// signal), so a breaker, a failure policy or a trace plugs in here without touching the
// methods.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Clock } from "./clock.js";
import { burndownErrorOf } from "./errors.js";
import { limits } from "./limits.js";
import { attemptFailureOf, backoffDelayMs, type CallKind, type RetryOptions, retryOptionsOf, shouldRetry } from "./retry-policy.js";

/** CallInfo describes one logical call; every attempt of it sees the same object. */
export interface CallInfo {
  /** the RPC's name as in the proto: "Reserve", "ReportUsage". */
  method: string;
  kind: CallKind;
  /** a mutation's request id, made before the first attempt and sent by every retry. */
  requestId?: string;
  customerId?: string;
  /** the feature the call is for, when it names one (a breaker keys on it). */
  featureKey?: string;
}

/** AttemptInfo is one attempt of a call. */
export interface AttemptInfo {
  call: CallInfo;
  /** 1 for the first attempt. */
  attempt: number;
  /** aborts when this attempt times out or the caller cancels; never shared with another attempt. */
  signal: AbortSignal;
  timeoutMs: number;
}

/** Attempt sends one attempt of a call. */
export type Attempt = (attempt: AttemptInfo) => Promise<unknown>;

/** AttemptInterceptor wraps every attempt, like a Connect interceptor that also sees the call. */
export type AttemptInterceptor = (next: Attempt) => Attempt;

/** Call runs a whole call, retries included. */
export type Call = (call: CallInfo, signal: AbortSignal | undefined) => Promise<unknown>;

/** CallInterceptor wraps a whole call, retries included (a failure policy decides here). */
export type CallInterceptor = (next: Call) => Call;

/** CallOptions are the per-call settings a caller may pass to any method. */
export interface CallOptions {
  /** cancels the call, between attempts as well as during one. */
  signal?: AbortSignal;
  /** the timeout of each attempt of this call. */
  timeoutMs?: number;
  /** overrides of the client's retry bounds for this call. */
  retry?: Partial<RetryOptions>;
}

/** CallPathOptions configure a call path. */
export interface CallPathOptions {
  retry: RetryOptions;
  attemptTimeoutMs: number;
  clock: Clock;
  random: () => number;
  attemptInterceptors: readonly AttemptInterceptor[];
  callInterceptors: readonly CallInterceptor[];
}

/**
 * Invoke runs one call through the call path; send makes one attempt with the attempt's
 * signal and timeout (sent to the server, which then answers within it).
 */
export type Invoke = <T>(call: CallInfo, send: (signal: AbortSignal, timeoutMs: number) => Promise<T>, options?: CallOptions) => Promise<T>;

/** createCallPath returns the invoke function of a client. */
export function createCallPath(options: CallPathOptions): Invoke {
  return async <T>(call: CallInfo, send: (signal: AbortSignal, timeoutMs: number) => Promise<T>, perCall: CallOptions = {}) => {
    // Interceptors see failures as the policy does: a broken connection is already Unavailable.
    const sendOne: Attempt = (info) => send(info.signal, info.timeoutMs).catch((error: unknown) => Promise.reject(attemptFailureOf(error, info.signal)));
    const attempt = options.attemptInterceptors.reduceRight<Attempt>((next, interceptor) => interceptor(next), sendOne);
    const retry = perCall.retry === undefined ? options.retry : retryOptionsOf(perCall.retry, options.retry, limits.attemptsMaxMax, limits.deadlineMsMax);
    const settings = { ...options, retry, attemptTimeoutMs: attemptTimeoutMsOf(perCall.timeoutMs ?? options.attemptTimeoutMs) };
    const innermost: Call = (info, signal) => runWithRetries(info, attempt, signal, settings);
    const whole = options.callInterceptors.reduceRight<Call>((next, interceptor) => interceptor(next), innermost);
    return (await whole(call, perCall.signal)) as T;
  };
}

/** attemptTimeoutMsOf checks an attempt timeout against its bounds. */
export function attemptTimeoutMsOf(timeoutMs: number): number {
  if (!(timeoutMs > 0 && timeoutMs <= limits.attemptTimeoutMsMax)) throw new RangeError(`timeoutMs must be above 0 and at most ${limits.attemptTimeoutMsMax}, got ${timeoutMs}`);
  return timeoutMs;
}

/** runWithRetries attempts a call until it succeeds or may not go on; runAttempt throws ConnectErrors only. */
async function runWithRetries(call: CallInfo, attempt: Attempt, signal: AbortSignal | undefined, settings: CallPathOptions): Promise<unknown> {
  const { retry, clock } = settings;
  const deadlineAtMs = clock.nowMs() + retry.deadlineMs;
  for (let number = 1; ; number++) {
    const context = { requestId: call.requestId, attempts: number - 1 };
    if (signal?.aborted) throw burndownErrorOf(canceled(signal), context);
    // At least 1 ms: a backoff never ends past the deadline, but a real timer may wake late.
    const timeoutMs = Math.max(1, Math.min(settings.attemptTimeoutMs, deadlineAtMs - clock.nowMs()));
    try {
      return await runAttempt({ call, attempt: number, timeoutMs }, attempt, signal, clock);
    } catch (error) {
      const failure = error as ConnectError;
      context.attempts = number;
      if (!shouldRetry(failure.code, call.kind) || number >= retry.attemptsMax) throw burndownErrorOf(failure, context);
      const waitMs = backoffDelayMs(number, retry, settings.random);
      // A wait that would end at or past the deadline leaves no time for another attempt.
      if (clock.nowMs() + waitMs >= deadlineAtMs) throw burndownErrorOf(failure, context);
      if (!(await clock.sleep(waitMs, signal, "backoff"))) throw burndownErrorOf(canceled(signal), context);
    }
  }
}

function canceled(signal: AbortSignal | undefined): ConnectError {
  return new ConnectError("the caller canceled the call", Code.Canceled, undefined, undefined, signal?.reason);
}

/** attemptSettled stops an attempt's timer; a fixed reason spares building a DOMException per attempt. */
const attemptSettled = "attempt settled";

/** runAttempt runs one attempt under its own signal and throws its failure as the policy sees it. */
async function runAttempt(info: Omit<AttemptInfo, "signal">, attempt: Attempt, callerSignal: AbortSignal | undefined, clock: Clock): Promise<unknown> {
  const controller = new AbortController();
  const timerStop = new AbortController();
  const onCallerAbort = () => controller.abort(canceled(callerSignal));
  if (callerSignal?.aborted) onCallerAbort();
  callerSignal?.addEventListener("abort", onCallerAbort, { once: true });
  void clock.sleep(info.timeoutMs, timerStop.signal, "attempt timeout").then((elapsed) => {
    if (elapsed) controller.abort(new ConnectError(`the attempt timed out after ${info.timeoutMs} ms`, Code.DeadlineExceeded));
  });
  // The race makes the timeout hold even if something under the call path ignores the signal.
  const aborted = new Promise<never>((_, reject) => {
    if (controller.signal.aborted) reject(controller.signal.reason);
    controller.signal.addEventListener("abort", () => reject(controller.signal.reason), { once: true });
  });
  try {
    return await Promise.race([attempt({ ...info, signal: controller.signal }), aborted]);
  } catch (error) {
    throw attemptFailureOf(error, controller.signal);
  } finally {
    timerStop.abort(attemptSettled);
    callerSignal?.removeEventListener("abort", onCallerAbort);
  }
}
