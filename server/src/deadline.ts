// A call's deadline, carried from the RPC layer to every wait under it (the admission
// queue, the wait for a database connection, each statement) without threading it through
// every service function: AsyncLocalStorage follows the call's async work. Code outside
// a call (jobs, startup) has no deadline and keeps the server's own bounds.
import { AsyncLocalStorage } from "node:async_hooks";
import { limits } from "./limits.js";

const deadlines = new AsyncLocalStorage<number>();

/**
 * answerBudgetMs is how much of a caller's timeout the server may spend before it must
 * answer: the rest carries the answer back, so a caller sees the server's Unavailable
 * (which it may retry, or apply its failure policy to) rather than its own timer firing.
 */
export function answerBudgetMs(timeoutMs: number): number {
  return timeoutMs - Math.min(limits.deadlineReplyMsMax, Math.ceil(timeoutMs / 10));
}

/** withDeadline runs work with every wait under it bounded to end by deadlineAtMs (epoch ms). */
export function withDeadline<T>(deadlineAtMs: number, work: () => T): T {
  return deadlines.run(deadlineAtMs, work);
}

/** remainingMs is the time left to the current call's deadline, or undefined outside a call with one. */
export function remainingMs(): number | undefined {
  const deadlineAtMs = deadlines.getStore();
  return deadlineAtMs === undefined ? undefined : deadlineAtMs - Date.now();
}

/**
 * outsideDeadline runs work with no call's deadline: shared work that serves many calls (a
 * group transaction) is bounded by the server's own limits, never by whichever caller
 * happened to start it.
 */
export function outsideDeadline<T>(work: () => T): T {
  return deadlines.exit(work);
}
