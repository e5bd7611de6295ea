// The call path: the one place every RPC of the client goes through. A call runs its
// call interceptors, then attempts until one succeeds, the policy refuses a retry, the
// attempts or the deadline run out, or the caller cancels. Each attempt runs the attempt
// interceptors with a signal of its own (the attempt's timeout combined with the caller's
// signal), so a breaker, a failure policy or a trace plugs in here without touching the
// methods.
import { Code, ConnectError } from "@connectrpc/connect";
import { type Clock, startTimer } from "./clock.js";
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
  const { attemptInterceptors, callInterceptors } = options;
  return <T>(call: CallInfo, send: (signal: AbortSignal, timeoutMs: number) => Promise<T>, perCall?: CallOptions): Promise<T> => {
    try {
      // Without interceptors an attempt is the send itself; runAttempt turns its failure into the policy's view.
      const attempt: Attempt = attemptInterceptors.length === 0 ? (info) => send(info.signal, info.timeoutMs) : interceptedAttempt(attemptInterceptors, send);
      const settings = perCall?.retry === undefined && perCall?.timeoutMs === undefined ? options : settingsOf(options, perCall);
      let whole: Call = (info, signal) => runWithRetries(info, attempt, signal, settings);
      for (let i = callInterceptors.length - 1; i >= 0; i--) whole = callInterceptors[i](whole);
      return whole(call, perCall?.signal) as Promise<T>;
    } catch (error) {
      return Promise.reject(error);
    }
  };
}

/** interceptedAttempt wraps send in the attempt interceptors, which see failures as the policy does: a broken connection is already Unavailable. */
function interceptedAttempt(interceptors: readonly AttemptInterceptor[], send: (signal: AbortSignal, timeoutMs: number) => Promise<unknown>): Attempt {
  let attempt: Attempt = (info) => send(info.signal, info.timeoutMs).catch((error: unknown) => Promise.reject(attemptFailureOf(error, info.signal)));
  for (let i = interceptors.length - 1; i >= 0; i--) attempt = interceptors[i](attempt);
  return attempt;
}

/** settingsOf applies a call's own retry bounds and attempt timeout over the client's. */
function settingsOf(options: CallPathOptions, perCall: CallOptions): CallPathOptions {
  const retry = perCall.retry === undefined ? options.retry : retryOptionsOf(perCall.retry, options.retry, limits.attemptsMaxMax, limits.deadlineMsMax);
  return { ...options, retry, attemptTimeoutMs: attemptTimeoutMsOf(perCall.timeoutMs ?? options.attemptTimeoutMs) };
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
    if (signal?.aborted) throw burndownErrorOf(canceled(signal), { requestId: call.requestId, attempts: number - 1 });
    // At least 1 ms: a backoff never ends past the deadline, but a real timer may wake late.
    const timeoutMs = Math.max(1, Math.min(settings.attemptTimeoutMs, deadlineAtMs - clock.nowMs()));
    try {
      return await new AttemptRun(timeoutMs, signal).run(call, number, attempt, clock);
    } catch (error) {
      const failure = error as ConnectError;
      const context = { requestId: call.requestId, attempts: number };
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

/**
 * AttemptRun is one attempt in flight under its own signal, which aborts when the
 * attempt times out or the caller cancels; only this run aborts it, and it ends the
 * attempt as it does. It listens to the caller's signal itself (handleEvent), so an
 * attempt costs one AbortController, one timer and no closures beyond the promise's.
 */
class AttemptRun {
  private readonly controller = new AbortController();
  private reject: ((reason: unknown) => void) | null = null;
  private stopTimer: (() => void) | null = null;

  constructor(
    private readonly timeoutMs: number,
    private readonly callerSignal: AbortSignal | undefined,
  ) {}

  /** run sends the attempt and throws its failure as the policy sees it, as soon as its signal aborts even if the attempt ignores it. */
  run(call: CallInfo, number: number, attempt: Attempt, clock: Clock): Promise<unknown> {
    const signal = this.controller.signal;
    const info: AttemptInfo = { call, attempt: number, signal, timeoutMs: this.timeoutMs };
    const settled = new Promise<unknown>((resolve, reject) => {
      this.reject = reject;
      if (this.callerSignal?.aborted) this.abort(canceled(this.callerSignal));
      this.callerSignal?.addEventListener("abort", this);
      this.stopTimer = startTimer(clock, this.timeoutMs, "attempt timeout", () => this.abort(new ConnectError(`the attempt timed out after ${this.timeoutMs} ms`, Code.DeadlineExceeded)));
      attemptOnce(attempt, info).then(resolve, reject);
    });
    return settled.then(
      (value) => {
        this.finish();
        return value;
      },
      (error: unknown) => {
        this.finish();
        throw attemptFailureOf(error, signal);
      },
    );
  }

  /** handleEvent follows the caller's cancel into the attempt. */
  handleEvent(): void {
    this.abort(canceled(this.callerSignal));
  }

  private abort(reason: ConnectError): void {
    this.controller.abort(reason);
    this.reject?.(reason);
  }

  private finish(): void {
    this.stopTimer?.();
    this.callerSignal?.removeEventListener("abort", this);
  }
}

/** attemptOnce calls attempt, turning a synchronous throw into a rejection. */
function attemptOnce(attempt: Attempt, info: AttemptInfo): Promise<unknown> {
  try {
    return attempt(info);
  } catch (error) {
    return Promise.reject(error);
  }
}
