// What the client does when the ledger is slow or down. One circuit breaker per feature
// fails calls fast once the ledger stops answering; withCredits then follows the
// feature's failure policy: fail closed (a typed OfflineDeniedError) or fail open within
// the offline budget, recording the action as an offline usage event that is replayed
// through ReportUsage when the ledger is back. With a spool file, offline usage and every
// reportUsage event are written (fsync'ed) before they are accepted, so a crash loses
// nothing accepted; the spool is then the usage queue, drained in batches.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { uuidV7 } from "./uuid-v7.js";
import type { CallInterceptor } from "./call-path.js";
import { OfflineDeniedError } from "./errors.js";
import { failClosed, FailurePolicies, OfflineBudgets, type Policy } from "./failure-policies.js";
import { breakerDefaults, type BreakerOptions, BreakerOpenError, FeatureBreakers, isUnreachable } from "./feature-breakers.js";
import type { Feature } from "./gen/burndown/v1/admin_service_pb.js";
import { ReservationSchema } from "./gen/burndown/v1/ledger_service_pb.js";
import { type UsageEvent, type UsageEventResult, UsageEventSchema, UsageOutcome } from "./gen/burndown/v1/usage_pb.js";
import { limits } from "./limits.js";
import { SpoolDrain } from "./spool-drain.js";
import { type SpooledEvent, SpoolFullError, UsageSpool } from "./usage-spool.js";
import type { CreditsSpec, Hold } from "./with-credits.js";

/** ResilienceOptions configure breakers, failure policies and the spool. */
export interface ResilienceOptions {
  /** a file for the durable usage spool. Without one, offline and reported usage wait in memory and a crash loses them. */
  spoolPath?: string;
  spoolBytesMax?: number;
  spoolEventsMax?: number;
  /** how often the spool is drained when nothing else triggers it. */
  spoolDrainIntervalMs?: number;
  /** the policy until the server's policies have been fetched once; fail closed by default. */
  defaultPolicy?: Policy;
  /** per-feature policies that win over the server's, for emergencies. */
  policyOverrides?: Record<string, Policy>;
  policyRefreshMs?: number;
  breaker?: Partial<BreakerOptions>;
}

/** ResilienceDeps are what the resilience layer needs from the client. */
export interface ResilienceDeps {
  listFeatures: () => Promise<Feature[]>;
  /** sends one batch through ReportUsage (with the client's retries). */
  reportUsageBatch: (events: UsageEvent[]) => Promise<UsageEventResult[]>;
  /** queues an event in memory, when there is no spool. */
  queueInMemory: (event: UsageEvent) => void;
  nowMs: () => number;
  onError: (error: unknown) => void;
}

/** toUsageEvent makes a spooled event a ReportUsage event. */
export function toUsageEvent(event: SpooledEvent): UsageEvent {
  return create(UsageEventSchema, {
    eventId: event.eventId,
    customerId: event.customerId,
    featureKey: event.featureKey,
    quantity: BigInt(event.quantity),
    eventTime: timestampFromMs(event.eventTimeMs),
    properties: event.properties ?? {},
    offline: event.offline ?? false,
  });
}

/** Resilience holds a client's breakers, policies, offline budgets and spool. */
export class Resilience {
  readonly breakers: FeatureBreakers;
  readonly policies: FailurePolicies;
  readonly spool: UsageSpool | null;
  readonly drain: SpoolDrain | null;
  private readonly budgets = new OfflineBudgets();
  private readonly opened: Promise<void>;

  constructor(
    options: ResilienceOptions,
    private readonly deps: ResilienceDeps,
  ) {
    this.breakers = new FeatureBreakers({ ...breakerDefaults, ...options.breaker }, deps.nowMs);
    this.policies = new FailurePolicies({
      fetch: deps.listFeatures,
      refreshMs: options.policyRefreshMs ?? limits.policyRefreshMsDefault,
      defaultPolicy: options.defaultPolicy ?? failClosed,
      overrides: options.policyOverrides ?? {},
      nowMs: deps.nowMs,
    });
    this.spool = options.spoolPath
      ? new UsageSpool(options.spoolPath, { bytesMax: options.spoolBytesMax ?? limits.spoolBytesMaxDefault, eventsMax: options.spoolEventsMax ?? limits.spoolEventsMaxDefault })
      : null;
    this.drain = this.spool
      ? new SpoolDrain(this.spool, {
          send: async (events) => (await deps.reportUsageBatch(events.map(toUsageEvent))).map((r) => ({ eventId: r.eventId, rejected: r.outcome === UsageOutcome.REJECTED })),
          batchSizeMax: limits.usageBatchSizeMaxDefault,
          intervalMs: options.spoolDrainIntervalMs ?? limits.spoolDrainIntervalMsDefault,
          onError: deps.onError,
        })
      : null;
    this.opened = this.spool ? this.spool.open() : Promise.resolve();
    this.breakers.onClose((featureKey) => {
      this.budgets.reset(featureKey);
      void this.drain?.drain().catch(deps.onError);
    });
  }

  /** start fetches policies and starts the periodic drain. */
  start(): void {
    this.policies.start();
    void this.opened.then(() => this.drain?.start(), this.deps.onError);
  }

  /** ready resolves once the spool (if any) is open. */
  ready(): Promise<void> {
    return this.opened;
  }

  /** breakerInterceptor routes every call that names a feature through that feature's breaker. */
  breakerInterceptor(): CallInterceptor {
    return (next) => (call, signal) => (call.featureKey === undefined ? next(call, signal) : this.breakers.run(call.featureKey, () => next(call, signal)));
  }

  /** spoolUsage writes an event to the spool durably; resolves when it is on disk. */
  async spoolUsage(event: SpooledEvent): Promise<void> {
    await this.opened;
    await this.spool!.append(event);
  }

  /**
   * whenUnreachable runs a withCredits action the ledger could not hold credits for, as
   * the feature's policy says: deny (fail closed, budget spent, spool full) or allow and
   * record the usage as an offline event (fail open). The event is written before the
   * action runs, so a crash during it still bills it; if the action throws, it is dropped.
   */
  async whenUnreachable<T>(spec: CreditsSpec, action: (hold: Hold) => Promise<T>, cause: unknown): Promise<T> {
    if (!(cause instanceof BreakerOpenError) && !isUnreachable(cause)) throw cause;
    if (!("featureKey" in spec)) throw new OfflineDeniedError("", "FAIL_CLOSED", cause);
    const policy = this.policies.get(spec.featureKey);
    if (policy.kind === "fail_closed") throw new OfflineDeniedError(spec.featureKey, "FAIL_CLOSED", cause);
    const rate = policy.burnRate ?? 1n;
    const credits = spec.quantity * rate;
    const allowed = this.budgets.take({ policy, customerId: spec.customerId, featureKey: spec.featureKey, credits, outageStartMs: this.breakers.outageStartMs(spec.featureKey), nowMs: this.deps.nowMs() });
    if (!allowed) throw new OfflineDeniedError(spec.featureKey, "OFFLINE_BUDGET_EXCEEDED", cause);
    const event: SpooledEvent = { eventId: uuidV7(), customerId: spec.customerId, featureKey: spec.featureKey, quantity: spec.quantity.toString(), eventTimeMs: Date.now(), offline: true };
    if (this.spool) {
      try {
        await this.spoolUsage({ ...event, inFlight: true });
      } catch (error) {
        if (error instanceof SpoolFullError) throw new OfflineDeniedError(spec.featureKey, "SPOOL_FULL", error);
        throw error;
      }
    }
    const hold = offlineHold(spec, credits);
    let result: T;
    try {
      result = await action(hold);
    } catch (error) {
      if (this.spool) await this.spool.acknowledge([event.eventId]).catch(this.deps.onError);
      throw error;
    }
    const used = hold.actual();
    const quantity = used === credits ? spec.quantity : (used + rate - 1n) / rate;
    if (quantity === 0n) {
      if (this.spool) await this.spool.acknowledge([event.eventId]);
    } else if (this.spool) {
      await this.spoolUsage({ ...event, quantity: quantity.toString() });
    } else {
      this.deps.queueInMemory(toUsageEvent({ ...event, quantity: quantity.toString() }));
    }
    return result;
  }

  /** stop ends the timers and breakers, drains once more and closes the spool. */
  async stop(): Promise<void> {
    this.policies.stop();
    this.breakers.shutdown();
    // A spool that failed to open was reported to onError already; there is nothing to drain.
    await this.opened.catch(() => undefined);
    if (this.drain) {
      await this.drain.stop();
      await this.drain.drain().catch(this.deps.onError);
    }
    await this.spool?.close();
  }
}

function offlineHold(spec: CreditsSpec & { featureKey: string }, credits: bigint): Hold & { actual: () => bigint } {
  let actual: bigint | null = null;
  const reservation = create(ReservationSchema, { customerId: spec.customerId, featureKey: spec.featureKey, amount: credits });
  return {
    reservation,
    offline: true,
    use: (more) => {
      actual = (actual ?? 0n) + more;
    },
    setActual: (value) => {
      actual = value;
    },
    actual: () => actual ?? credits,
  };
}
