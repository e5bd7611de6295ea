// What to do for a feature while the ledger is unreachable, as platform teams set it on
// the server (AdminService.SetFailurePolicy), fetched through ListFeatures, cached and
// refreshed. Until the first fetch succeeds, the documented default applies (fail
// closed unless the client is configured otherwise); a local override in code wins
// over both, for emergencies.
import type { Feature } from "./gen/burndown/v1/admin_service_pb.js";
import { FailurePolicy } from "./gen/burndown/v1/usage_pb.js";

/** Policy is a feature's failure policy as the SDK applies it. */
export type Policy =
  | { kind: "fail_closed" }
  | { kind: "fail_open"; offlineCreditsMax: bigint | null; offlineMsMax: number | null; burnRate: bigint | null };

/** failClosed is the default policy. */
export const failClosed: Policy = { kind: "fail_closed" };

/** policyOf converts a Feature from ListFeatures to the SDK's policy. */
export function policyOf(feature: Feature): Policy {
  if (feature.failurePolicy !== FailurePolicy.FAIL_OPEN) return failClosed;
  const budget = feature.offlineBudget;
  const ms = budget?.durationMax ? Number(budget.durationMax.seconds) * 1000 + Math.floor(budget.durationMax.nanos / 1e6) : 0;
  return {
    kind: "fail_open",
    offlineCreditsMax: budget && budget.creditsMax > 0n ? budget.creditsMax : null,
    offlineMsMax: ms > 0 ? ms : null,
    burnRate: feature.burnRate > 0n ? feature.burnRate : null,
  };
}

/** FailurePolicies caches the server's policies per feature. */
export class FailurePolicies {
  private policies = new Map<string, Policy>();
  private fetchedAtMs: number | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly options: {
      /** reads every feature from the server (ListFeatures). */
      fetch: () => Promise<Feature[]>;
      refreshMs: number;
      /** the policy until the server has been reached. */
      defaultPolicy: Policy;
      /** per-feature policies that win over the server's. */
      overrides: Record<string, Policy>;
      nowMs: () => number;
    },
  ) {}

  /** get returns a feature's policy: override, then the server's, then the default. */
  get(featureKey: string): Policy {
    return this.options.overrides[featureKey] ?? this.policies.get(featureKey) ?? this.options.defaultPolicy;
  }

  /** refresh fetches the policies now; on failure the cached ones stay. Returns whether it succeeded. */
  async refresh(): Promise<boolean> {
    try {
      const features = await this.options.fetch();
      this.policies = new Map(features.map((feature) => [feature.featureKey, policyOf(feature)]));
      this.fetchedAtMs = this.options.nowMs();
      return true;
    } catch (error) {
      // The ledger may be down: that is exactly when cached policies matter. Keep them.
      void error;
      return false;
    }
  }

  /** lastFetchMs is when the policies were last fetched, or null if never. */
  get lastFetchMs(): number | null {
    return this.fetchedAtMs;
  }

  /** start refreshes now and then every refreshMs, until stop. */
  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.options.refreshMs);
    this.timer.unref();
  }

  /** stop ends the refreshes. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/** OfflineBudgets counts what each customer consumed offline per feature, for the current outage. */
export class OfflineBudgets {
  private readonly used = new Map<string, bigint>();

  /** allows says whether an offline use fits the policy's budget; when it does, it is counted. */
  take(input: { policy: Policy & { kind: "fail_open" }; customerId: string; featureKey: string; credits: bigint; outageStartMs: number | null; nowMs: number }): boolean {
    const { policy } = input;
    if (policy.offlineMsMax !== null && input.outageStartMs !== null && input.nowMs - input.outageStartMs > policy.offlineMsMax) return false;
    const key = `${input.featureKey}\u0000${input.customerId}`;
    const used = this.used.get(key) ?? 0n;
    if (policy.offlineCreditsMax !== null && used + input.credits > policy.offlineCreditsMax) return false;
    this.used.set(key, used + input.credits);
    return true;
  }

  /** reset forgets a feature's counts when its outage ends. */
  reset(featureKey: string): void {
    for (const key of [...this.used.keys()]) if (key.startsWith(`${featureKey}\u0000`)) this.used.delete(key);
  }
}
