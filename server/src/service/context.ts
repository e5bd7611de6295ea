// What every service function receives: the database, the clock and the caller.
import type pg from "pg";
import type { Fanout } from "../fanout.js";
import type { GroupCommit } from "./group-commit.js";
import type { WriteObserver } from "./write-observer.js";

/** Role is what an API key may do. */
export type Role = "service" | "support" | "admin" | "customer" | "finance";

/** Caller is the authenticated principal of a request. */
export interface Caller {
  keyId: string;
  /** the key's name, for people. */
  name: string;
  role: Role;
  /** for support keys: the largest amount one grant may add. */
  grantLimit: bigint;
  /** for customer keys: the one customer the key may read. */
  customerId?: string;
  /**
   * the request id of the call this caller is making: its log line's requestId and its
   * answer's x-request-id (observe-interceptor.ts), kept on the audit records the call
   * writes. Not a mutation's idempotency request id. Null outside a call: jobs, the usage
   * queue, the Stripe webhook, and a key as cached before a call takes it.
   */
  requestId: string | null;
}

/** UsagePolicy is the deployment's rules for usage events. */
export interface UsagePolicy {
  lateCutoffMs: number;
  dedupRetentionMs: number;
}

/** Deps are the services' dependencies. now() is injectable so tests can move time. */
export interface Deps {
  pool: pg.Pool;
  now: () => Date;
  usage: UsagePolicy;
  /** tells every replica what it would otherwise learn only when a cache entry expires. */
  fanout: Fanout;
  /** the write path: every balance change joins a group transaction of its lane. */
  writes: GroupCommit;
  /** the reason codes a support key's Grant may use (BURNDOWN_GRANT_REASON_CODES). */
  grantReasonCodes: readonly string[];
  /** how long a grant request waits for a decision; limits.grantRequestTtlMsDefault when unset. */
  grantRequestTtlMs?: number;
  /** kicks the recharge job: after a write group that flagged a balance below its recharge threshold (write-group.ts). */
  rechargeDue?: () => void;
  /** how long staff have to first act on a dispute and to resolve it; limits' defaults when unset. */
  disputeSla?: DisputeSla;
  /** auto-recharge's retry delays; limits.rechargeRetryDelaysMsDefault when unset. */
  recharge?: RechargePolicy;
  /** told what the write path committed and what became of usage (metrics); none when absent. Jobs' groups pass it on. */
  observer?: WriteObserver;
}

/** RechargePolicy is the deployment's schedule for failed recharge payments. */
export interface RechargePolicy {
  /** after the nth failed payment, ask again after retryDelaysMs[n-1]; after one more failure than delays, give up. */
  retryDelaysMs: readonly number[];
}

/** Idempotency identifies a mutation for replay: who, which id, which method, which payload. */
export interface Idempotency {
  requestId: string;
  method: string;
  /** SHA-256 of the request without its request id. */
  payloadHash: Buffer;
}

/** DisputeSla is the deployment's service levels for disputes. */
export interface DisputeSla {
  firstResponseMs: number;
  resolutionMs: number;
}
