// Webhook delivery: a worker that sends due outbox deliveries, outside every ledger
// transaction. Each pass claims due deliveries (FOR UPDATE SKIP LOCKED, and a lease
// past the request's timeout, in one short statement), so any number of replicas share
// the work and no attempt is sent by two at once; then POSTs each, signed, with a
// timeout, and records the result, fenced by the attempt's number. A failure is retried
// with exponential backoff and jitter, up to attemptsMax, then the delivery is failed.
// At least once: a crash between sending and recording sends again when the lease ends.
// Each pass first announces lots coming due (credits.expiring, jobs/expiry-notices.ts).
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { signWebhook, webhookBodyOf } from "../service/webhook-signature.js";
import { mapDriverErrors } from "../store/database.js";
import { noticeExpiringCredits } from "./expiry-notices.js";
import { type ClaimedDelivery, claimDueDeliveries, recordAttempt } from "../store/webhook-store.js";
import { traceJob } from "../tracing.js";

/** WebhookPolicy shapes delivery: each attempt's timeout, the attempts, the first retry's delay; and the credits.expiring window. */
export interface WebhookPolicy {
  timeoutMs: number;
  attemptsMax: number;
  retryBaseMs: number;
  /** a lot is announced by credits.expiring this long before it expires (0: never). */
  expiringNoticeMs: number;
}

/** webhookPolicyOf fills a partial policy with the defaults of limits.ts. */
export function webhookPolicyOf(policy: Partial<WebhookPolicy> = {}): WebhookPolicy {
  return {
    timeoutMs: policy.timeoutMs ?? limits.webhookTimeoutMsDefault,
    attemptsMax: policy.attemptsMax ?? limits.webhookAttemptsMaxDefault,
    retryBaseMs: policy.retryBaseMs ?? limits.webhookRetryBaseMsDefault,
    expiringNoticeMs: policy.expiringNoticeMs ?? limits.creditsExpiringNoticeMsDefault,
  };
}

/** retryDelayMs is the wait after a failed attempt: doubling from retryBaseMs, capped, with jitter in its upper half. */
export function retryDelayMs(policy: WebhookPolicy, attempt: number, random: () => number = Math.random): number {
  const ceilingMs = Math.min(limits.webhookRetryDelayMsMax, policy.retryBaseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceilingMs / 2 + (random() * ceilingMs) / 2);
}

/** AttemptResult is what one POST came to. */
interface AttemptResult {
  delivered: boolean;
  httpStatus: number;
  error: string;
}

/** post sends one attempt; it never throws: a failure is a result. */
async function post(delivery: ClaimedDelivery, policy: WebhookPolicy, now: Date, stopping: AbortSignal): Promise<AttemptResult> {
  const body = webhookBodyOf(delivery);
  const timestamp = Math.floor(now.getTime() / 1000);
  try {
    const response = await fetch(delivery.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": "burndown-webhooks/1",
        "burndown-event-id": delivery.eventId,
        "burndown-timestamp": String(timestamp),
        "burndown-signature": signWebhook(delivery.secret, timestamp, body),
      },
      body,
      redirect: "manual",
      signal: AbortSignal.any([AbortSignal.timeout(policy.timeoutMs), stopping]),
    });
    // The answer's body is not needed: drop it, so the connection is freed.
    await response.body?.cancel().catch(() => undefined);
    const delivered = response.status >= 200 && response.status < 300;
    return { delivered, httpStatus: response.status, error: delivered ? "" : `HTTP ${response.status}` };
  } catch (error) {
    const cause = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { delivered: false, httpStatus: 0, error: cause.slice(0, limits.webhookErrorLengthMax) };
  }
}

/** deliver runs one claimed attempt and records its result (unless the worker is stopping: the lease then brings it back). */
async function deliver(deps: Deps, policy: WebhookPolicy, delivery: ClaimedDelivery, stopping: AbortSignal): Promise<void> {
  const result = await post(delivery, policy, deps.now(), stopping);
  if (stopping.aborted && !result.delivered) return;
  const retry = !result.delivered && delivery.attempt < policy.attemptsMax;
  const nextAttemptAt = retry ? new Date(deps.now().getTime() + retryDelayMs(policy, delivery.attempt)) : null;
  await mapDriverErrors(() => recordAttempt(deps.pool, { ...delivery, ...result, nextAttemptAt }));
}

/**
 * startWebhookDelivery runs the worker every intervalMs until stopped, with at most
 * limits.webhookInFlightMax attempts in flight; stop() aborts those in flight.
 */
export function startWebhookDelivery(deps: Deps, policy: WebhookPolicy, intervalMs: number, log: (message: string) => void): { stop: () => Promise<void> } {
  const inFlight = new Set<Promise<void>>();
  const stopping = new AbortController();
  let claiming = false;
  const pass = async () => {
    // Lots coming due are announced first, so their events go out in this same pass.
    if (policy.expiringNoticeMs > 0) {
      await noticeExpiringCredits(deps, policy.expiringNoticeMs).catch((error: unknown) =>
        log(`credits.expiring pass failed, retrying next tick: ${error instanceof Error ? error.message : String(error)}`),
      );
    }
    const now = deps.now();
    const claimed = await mapDriverErrors(() =>
      claimDueDeliveries(deps.pool, { now, leaseUntil: new Date(now.getTime() + policy.timeoutMs + intervalMs + 1_000), limit: limits.webhookInFlightMax - inFlight.size }),
    );
    for (const delivery of claimed) {
      const sending: Promise<void> = deliver(deps, policy, delivery, stopping.signal)
        .catch((error: unknown) => log(`webhook ${delivery.eventId} to ${delivery.endpointId}: recording failed, the lease brings it back: ${String(error)}`))
        .finally(() => inFlight.delete(sending));
      inFlight.add(sending);
    }
  };
  const timer = setInterval(() => {
    if (stopping.signal.aborted || claiming || inFlight.size >= limits.webhookInFlightMax) return;
    claiming = true;
    traceJob("webhooks", pass)
      .catch((error: unknown) => log(`webhook pass failed, retrying next tick: ${error instanceof Error ? error.message : String(error)}`))
      .finally(() => {
        claiming = false;
      });
  }, intervalMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      stopping.abort();
      while (claiming || inFlight.size > 0) await Promise.allSettled([...inFlight, new Promise((resolve) => setTimeout(resolve, 5))]);
    },
  };
}
