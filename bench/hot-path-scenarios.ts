// The hot-path benchmark's vocabulary, shared by the orchestrator (hot-path.ts), the load
// generator (hot-path-worker.ts) and the report (hot-path-report.ts): which scenarios
// exist, what a worker is told, what it answers, and the bounds of a run.

/** ScenarioId names one load shape. */
export type ScenarioId =
  | "reserve-commit"
  | "reserve-commit-hot"
  | "sdk-with-credits-hot"
  | "sdk-with-credits"
  | "burn"
  | "check"
  | "get-balance"
  | "report-usage-100"
  | "report-usage-1000"
  | "sdk-report-usage"
  | "baseline-database-ceiling"
  | "baseline-database-ceiling-hot"
  | "baseline-naive"
  | "baseline-naive-hot"
  | "baseline-transport"
  | "baseline-bare-grpc"
  | "sdk-overhead";

/** Scenario describes a load shape for the report. */
export interface Scenario {
  id: ScenarioId;
  title: string;
  /** what one operation is, and what its throughput counts. */
  unit: "pair" | "call" | "event";
  /** RPCs one operation sends (0 for the baselines that bypass the server). */
  rpcsPerOperation: number;
  /** events per operation (ReportUsage batches); 1 otherwise. */
  itemsPerOperation: number;
  /** false: full mode only. */
  inQuick: boolean;
}

/** scenarios lists the matrix, in the order runs happen at each concurrency level: baselines first. */
export const scenarios: readonly Scenario[] = [
  { id: "baseline-bare-grpc", title: "bare HTTP/2 server: the same empty RPC on a bare @grpc/grpc-js server", unit: "call", rpcsPerOperation: 1, itemsPerOperation: 1, inQuick: true },
  { id: "baseline-transport", title: "transport ceiling: gRPC health Check (empty RPC)", unit: "call", rpcsPerOperation: 1, itemsPerOperation: 1, inQuick: true },
  { id: "baseline-database-ceiling", title: "database ceiling: the write path's grouped reserve + commit, no RPC", unit: "pair", rpcsPerOperation: 0, itemsPerOperation: 1, inQuick: true },
  { id: "baseline-database-ceiling-hot", title: "database ceiling, one hot customer", unit: "pair", rpcsPerOperation: 0, itemsPerOperation: 1, inQuick: false },
  { id: "baseline-naive", title: "naive ledger: SELECT FOR UPDATE, check, UPDATE, INSERT per debit", unit: "call", rpcsPerOperation: 0, itemsPerOperation: 1, inQuick: true },
  { id: "baseline-naive-hot", title: "naive ledger, one hot customer", unit: "call", rpcsPerOperation: 0, itemsPerOperation: 1, inQuick: true },
  { id: "reserve-commit", title: "Reserve + Commit, raw generated client", unit: "pair", rpcsPerOperation: 2, itemsPerOperation: 1, inQuick: true },
  { id: "sdk-with-credits", title: "SDK withCredits (Reserve + Commit, batched when callers overlap)", unit: "pair", rpcsPerOperation: 2, itemsPerOperation: 1, inQuick: true },
  { id: "reserve-commit-hot", title: "Reserve + Commit, one hot customer", unit: "pair", rpcsPerOperation: 2, itemsPerOperation: 1, inQuick: true },
  { id: "sdk-with-credits-hot", title: "SDK withCredits, one hot customer", unit: "pair", rpcsPerOperation: 2, itemsPerOperation: 1, inQuick: true },
  { id: "burn", title: "Burn by feature usage", unit: "call", rpcsPerOperation: 1, itemsPerOperation: 1, inQuick: true },
  { id: "check", title: "Check", unit: "call", rpcsPerOperation: 1, itemsPerOperation: 1, inQuick: true },
  { id: "get-balance", title: "GetBalance", unit: "call", rpcsPerOperation: 1, itemsPerOperation: 1, inQuick: true },
  { id: "report-usage-100", title: "ReportUsage, batches of 100", unit: "event", rpcsPerOperation: 1, itemsPerOperation: 100, inQuick: true },
  { id: "report-usage-1000", title: "ReportUsage, batches of 1,000", unit: "event", rpcsPerOperation: 1, itemsPerOperation: 1_000, inQuick: true },
  { id: "sdk-report-usage", title: "SDK reportUsage (background batches of 500)", unit: "event", rpcsPerOperation: 1, itemsPerOperation: 1, inQuick: true },
];

/** scenarioOf finds a scenario by id. */
export function scenarioOf(id: ScenarioId): Scenario {
  const found = scenarios.find((scenario) => scenario.id === id);
  if (found === undefined) throw new Error(`scenarioOf: unknown scenario ${id}`);
  return found;
}

/** hotPathLimits are the benchmark's bounds, each with its unit in its name. */
export const hotPathLimits = {
  customersCount: 10_000,
  /** --quick: customers seeded (the hot customer comes on top). */
  quickCustomersCount: 2_000,
  /** callers sharing one HTTP/2 session; more callers get more sessions (transports). */
  callersPerSessionMax: 64,
  /** ReportUsage callers times batch size; a level past it is skipped, as it only measures queueing behind the per-call timeout. */
  eventsInFlightMax: 32_768,
  /** each raw RPC's timeout; a call past it counts as DeadlineExceeded. */
  callTimeoutMs: 10_000,
  /** how long a worker waits for in-flight calls after its window before it gives up on them. */
  drainMsMax: 12_000,
  /** the sdk-overhead run's rounds stop starting once this much time has passed. */
  overheadRunMsMax: 60_000,
  /** a worker that has not answered this long after its window is killed. */
  workerOverrunMsMax: 30_000,
  /** SDK reportUsage: accepted, unanswered events per client before callers wait. */
  sdkPendingEventsMax: 2_000,
  /** open loop: operations in flight past which the generator stops starting more (counted as "client:backlog"). */
  openLoopInFlightMax: 1_024,
  /** grants in flight while seeding. */
  seedGrantsInFlightMax: 64,
  /** reserve + commit pairs made before the statistics are taken, and how many per batch. */
  warmupPairs: 5_000,
  warmupBatchSize: 500,
} as const;

/** WorkerArgs is everything one worker run needs, passed as one JSON argument. */
export interface WorkerArgs {
  scenario: ScenarioId;
  concurrency: number;
  warmupMs: number;
  windowMs: number;
  grpcUrl: string;
  /** the bare gRPC server of baseline-bare-grpc, and its process (for its CPU). */
  bareGrpcUrl: string;
  bareServerPid: number;
  /** a service-role API key for the RPC scenarios. */
  token: string;
  databaseUrl: string;
  /** the server process, whose CPU time is read from /proc. */
  serverPid: number;
  /** `getconf CLK_TCK`: the unit of utime and stime in /proc/<pid>/stat. */
  clockTicksPerSecond: number;
  customersCount: number;
  hotCustomerId: string;
  featureKey: string;
  /** the key id of an API key row made for the database ceiling's caller. */
  ceilingKeyId: string;
  /** database connections of the driver baselines: the server's pool size, so both have the same budget. */
  baselinePoolSize: number;
  /** the server's write lanes, which the database ceiling's write path uses too. */
  writeLanes: number;
  /**
   * Open loop: start operations at this many per second whatever the answers (latency is
   * measured from each operation's scheduled start, so a stall is not hidden); unset: a
   * closed loop of `concurrency` callers.
   */
  ratePerSecond?: number;
  /** sdk-overhead only: interleaved rounds of raw and SDK calls. */
  overheadRounds?: number;
  overheadCallsPerRound?: number;
}

/** LatencySummary is a latency distribution in milliseconds. */
export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

/** WorkerResult is one run's measurements, over its window only (warm-up and drain excluded). */
export interface WorkerResult {
  scenario: ScenarioId;
  concurrency: number;
  /** HTTP/2 sessions (or pool connections for the driver baselines). */
  connections: number;
  windowS: number;
  operations: number;
  items: number;
  operationsPerSecond: number;
  itemsPerSecond: number;
  /** per operation as the caller sees it: a pair, a call, or (SDK reportUsage) one event from acceptance to answer. */
  latency: LatencySummary;
  /** per RPC (or per service call for the database ceiling); pairs only. */
  rpcLatency: LatencySummary | null;
  /** failures in the window, by code (and ErrorInfo reason when there is one). */
  errors: Record<string, number>;
  errorsOutsideWindow: number;
  errorSamples: Record<string, string>;
  serverCpuUsPerOperation: number;
  serverCpuUsPerItem: number;
  /** server CPU over the window, in cores (1.0 = one core busy). */
  serverCpuCores: number;
  /** PostgreSQL backends of this database plus the cluster's background processes. */
  databaseCpuUsPerOperation: number;
  databaseCpuCores: number;
  clientCpuUsPerOperation: number;
  clientCpuCores: number;
  /** open loop only: the rate asked for, in operations per second. */
  targetRatePerSecond: number | null;
  /** calls still in flight when the drain gave up. */
  undrainedCallers: number;
  drainMs: number;
}

/** OverheadResult is the sdk-overhead run: client CPU per call, raw client against SDK, interleaved. */
export interface OverheadResult {
  scenario: "sdk-overhead";
  calls: number;
  rawCpuUsPerCall: number;
  sdkCpuUsPerCall: number;
  overheadCpuUsPerCall: number;
  rawMedianMs: number;
  sdkMedianMs: number;
  errors: Record<string, number>;
}
