// The hot-path benchmark's load generator: one scenario at one concurrency level, in a
// process of its own so that its client CPU, heap and connections are its own. N caller
// loops (closed loop: each waits for its answer before the next call) share one HTTP/2
// session per hotPathLimits.callersPerSessionMax callers, or a pg pool for the baselines
// that bypass the server. A warm-up fills pools and JITs the code; then a measured window;
// then a bounded drain. Only operations that complete inside the window count, and the
// server's and the database's CPU is read from /proc at the window's two edges. Prints one
// JSON line (WorkerResult, or OverheadResult for sdk-overhead) on stdout.
//   node --import tsx bench/hot-path-worker.ts '<WorkerArgs as JSON>'
import { createHash, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { GroupCommit } from "../server/src/service/group-commit.js";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcJsTransport, errorInfoOf, LedgerService, type UsageEventResult, UsageOutcome } from "@burndown/sdk";
import pg from "pg";
import { type BurndownClient, createBurndownClient } from "../sdk/src/client.js";
import { LedgerError } from "../server/src/errors.js";
import { limits as serverLimits } from "../server/src/limits.js";
import { HealthService } from "../server/src/rpc/health.js";
import type { Caller, Deps, Idempotency } from "../server/src/service/context.js";
import { commit } from "../server/src/service/resolve-reservation.js";
import { reserve } from "../server/src/service/reserve.js";
import { createPool } from "../server/src/store/database.js";
import { LocalFanout } from "../server/src/fanout.js";
import { percentile } from "./bench-server.js";
import { hotPathLimits, type LatencySummary, type OverheadResult, scenarioOf, type WorkerArgs, type WorkerResult } from "./hot-path-scenarios.js";

/** Recorder times the RPCs inside one operation (both halves of a pair). */
interface Recorder {
  rpc: <T>(call: () => Promise<T>) => Promise<T>;
}

/** Operation is one unit of a caller's loop; it resolves to the items it did (events for ReportUsage). */
type Operation = (callerIndex: number, recorder: Recorder) => Promise<number>;

/** Load is a scenario ready to run: its operation, its connection count, and how to let go of its resources. */
interface Load {
  operation: Operation;
  connections: number;
  close: () => Promise<void>;
}

const args = JSON.parse(process.argv[2] ?? "null") as WorkerArgs;
if (args === null || !(args.concurrency >= 1) || !(args.windowMs > 0) || !(args.clockTicksPerSecond > 0)) {
  throw new Error(`hot-path-worker: bad arguments ${process.argv[2]}`);
}

function sessionsFor(concurrency: number): number {
  return Math.max(1, Math.ceil(concurrency / hotPathLimits.callersPerSessionMax));
}

function pickCustomer(): string {
  return `bench-${Math.floor(Math.random() * args.customersCount)}`;
}

/** errorLabel names a failure by its code and ErrorInfo reason, the way a caller would branch on it. */
function errorLabel(error: unknown): string {
  if (error instanceof ConnectError) {
    const reason = errorInfoOf(error)?.reason;
    return reason ? `${Code[error.code]}:${reason}` : Code[error.code];
  }
  if (error instanceof LedgerError) return `${error.kind}:${error.reason}`;
  const code = (error as { code?: unknown })?.code;
  if (typeof code === "string") return `driver:${code}`;
  return error instanceof Error ? error.name : "unknown";
}

function summarize(latenciesMs: number[]): LatencySummary {
  const sorted = Float64Array.from(latenciesMs).sort();
  const count = sorted.length;
  const mean = count === 0 ? 0 : sorted.reduce((sum, x) => sum + x, 0) / count;
  const at = (p: number) => percentile(sorted as unknown as number[], p);
  return { count, meanMs: mean, p50Ms: at(50), p99Ms: at(99), p999Ms: at(99.9), maxMs: count === 0 ? 0 : sorted[count - 1] };
}

// --- CPU from /proc -----------------------------------------------------------------

/** processTicks reads utime + stime of a process, in clock ticks; 0 when it is gone. */
function processTicks(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return 0; // the process ended between listing and reading: it no longer costs anything.
  }
  // Fields after the parenthesised command name start at field 3; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/** CpuSnapshot is the CPU time of the server, the database and this process at one instant. */
interface CpuSnapshot {
  atMs: number;
  serverTicks: number;
  databaseTicks: Map<number, number>;
  client: NodeJS.CpuUsage;
}

async function databasePids(monitor: pg.Client): Promise<number[]> {
  // This database's backends and the cluster's background processes (null datname):
  // other databases on a shared cluster are someone else's load.
  const result = await monitor.query("select pid from pg_stat_activity where datname = current_database() or datname is null");
  return result.rows.map((row) => row.pid as number);
}

async function snapshot(monitor: pg.Client): Promise<CpuSnapshot> {
  const pids = await databasePids(monitor);
  const databaseTicks = new Map(pids.map((pid) => [pid, processTicks(pid)]));
  const serverPid = args.scenario === "baseline-bare-grpc" ? args.bareServerPid : args.serverPid;
  return { atMs: performance.now(), serverTicks: processTicks(serverPid), databaseTicks, client: process.cpuUsage() };
}

function cpuUsBetween(start: CpuSnapshot, end: CpuSnapshot): { serverUs: number; databaseUs: number; clientUs: number } {
  const tickUs = 1_000_000 / args.clockTicksPerSecond;
  let databaseTicks = 0;
  for (const [pid, ticks] of end.databaseTicks) databaseTicks += ticks - (start.databaseTicks.get(pid) ?? 0);
  const client = process.cpuUsage(start.client);
  return { serverUs: (end.serverTicks - start.serverTicks) * tickUs, databaseUs: databaseTicks * tickUs, clientUs: client.user + client.system };
}

// --- the closed loop ----------------------------------------------------------------

/** WindowState is what the callers record; only completions inside the window count. */
class WindowState {
  phase: "warmup" | "window" | "drain" = "warmup";
  /** false when completions are counted elsewhere (SDK reportUsage counts answered events). */
  countsCompletions = true;
  operations = 0;
  items = 0;
  readonly latenciesMs: number[] = [];
  readonly rpcLatenciesMs: number[] = [];
  readonly errors: Record<string, number> = {};
  readonly errorSamples: Record<string, string> = {};
  errorsOutsideWindow = 0;

  readonly recorder: Recorder = {
    rpc: async (call) => {
      const t0 = performance.now();
      const result = await call();
      if (this.phase === "window") this.rpcLatenciesMs.push(performance.now() - t0);
      return result;
    },
  };

  completed(t0: number, items: number): void {
    if (this.phase !== "window" || !this.countsCompletions) return;
    this.operations++;
    this.items += items;
    this.latenciesMs.push(performance.now() - t0);
  }

  failed(error: unknown): void {
    if (this.phase !== "window") {
      this.errorsOutsideWindow++;
      return;
    }
    const label = error instanceof Error && error.message === "client:backlog" ? "client:backlog" : errorLabel(error);
    this.errors[label] = (this.errors[label] ?? 0) + 1;
    this.errorSamples[label] ??= (error instanceof Error ? error.message : String(error)).slice(0, 300);
  }
}

async function callerLoop(index: number, operation: Operation, state: WindowState): Promise<void> {
  while (state.phase !== "drain") {
    const t0 = performance.now();
    try {
      state.completed(t0, await operation(index, state.recorder));
    } catch (error) {
      state.failed(error);
      // A failure can be instant (refused connection): yield so the loop cannot starve the timers.
      await sleep(1);
    }
  }
}

/**
 * openLoop starts operations on a fixed schedule, ratePerSecond of them, each on its own,
 * until the drain. Latency counts from the scheduled start: a server that stalls shows
 * the wait of every operation that should have started meanwhile (no coordinated omission).
 */
async function openLoop(operation: Operation, state: WindowState, ratePerSecond: number): Promise<void> {
  const intervalMs = 1000 / ratePerSecond;
  const inFlight = new Set<Promise<void>>();
  const origin = performance.now();
  let started = 0;
  while (state.phase !== "drain") {
    const due = origin + started * intervalMs;
    const now = performance.now();
    if (due > now) {
      await sleep(Math.max(0, due - now));
      continue;
    }
    // Start every operation that is due (a late timer starts several at once).
    while (origin + started * intervalMs <= performance.now()) {
      const scheduledAt = origin + started * intervalMs;
      const index = started++;
      if (inFlight.size >= hotPathLimits.openLoopInFlightMax) {
        state.failed(new Error("client:backlog"));
        continue;
      }
      const run = operation(index, state.recorder).then(
        (items) => state.completed(scheduledAt, items),
        (error) => state.failed(error),
      );
      const tracked = run.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
    }
  }
  await Promise.all(inFlight);
}

/** runWindow drives load for warm-up + window, then drains, and measures the window. */
async function runWindow(load: Load, monitor: pg.Client, state: WindowState): Promise<WorkerResult> {
  const loops =
    args.ratePerSecond === undefined
      ? Array.from({ length: args.concurrency }, (_, index) => callerLoop(index, load.operation, state))
      : [openLoop(load.operation, state, args.ratePerSecond)];
  await sleep(args.warmupMs);
  const start = await snapshot(monitor);
  state.phase = "window";
  await sleep(args.windowMs);
  state.phase = "drain";
  const end = await snapshot(monitor);
  const drainStarted = performance.now();
  let undrained = loops.length;
  const drained = Promise.all(loops.map((loop) => loop.then(() => undrained--)));
  await Promise.race([drained, sleep(hotPathLimits.drainMsMax)]);
  return resultOf(load, state, start, end, { undrainedCallers: undrained, drainMs: performance.now() - drainStarted });
}

function resultOf(load: Load, state: WindowState, start: CpuSnapshot, end: CpuSnapshot, drain: { undrainedCallers: number; drainMs: number }): WorkerResult {
  const windowS = (end.atMs - start.atMs) / 1000;
  const cpu = cpuUsBetween(start, end);
  const perOperation = (us: number) => (state.operations === 0 ? 0 : us / state.operations);
  const scenario = scenarioOf(args.scenario);
  return {
    scenario: args.scenario,
    concurrency: args.concurrency,
    connections: load.connections,
    windowS,
    operations: state.operations,
    items: state.items,
    operationsPerSecond: state.operations / windowS,
    itemsPerSecond: state.items / windowS,
    latency: summarize(state.latenciesMs),
    rpcLatency: scenario.unit === "pair" ? summarize(state.rpcLatenciesMs) : null,
    errors: state.errors,
    errorsOutsideWindow: state.errorsOutsideWindow,
    errorSamples: state.errorSamples,
    serverCpuUsPerOperation: perOperation(cpu.serverUs),
    serverCpuUsPerItem: state.items === 0 ? 0 : cpu.serverUs / state.items,
    serverCpuCores: cpu.serverUs / 1e6 / windowS,
    databaseCpuUsPerOperation: perOperation(cpu.databaseUs),
    databaseCpuCores: cpu.databaseUs / 1e6 / windowS,
    clientCpuUsPerOperation: perOperation(cpu.clientUs),
    clientCpuCores: cpu.clientUs / 1e6 / windowS,
    targetRatePerSecond: args.ratePerSecond ?? null,
    ...drain,
  };
}

// --- transports and clients -----------------------------------------------------------

function bearer(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

/**
 * grpcTransports opens one HTTP/2 connection per transport: the SDK's grpc-js transport,
 * the cheapest client the project has, so that the raw scenarios measure the server rather
 * than the load generator (connect-node's gRPC transport spent about 1 ms of client CPU per
 * call here and capped the raw scenarios near 1,000 calls/s).
 */
function grpcTransports(count: number, url = args.grpcUrl): { transports: Transport[]; close: () => void } {
  const transports = Array.from({ length: count }, () => createGrpcJsTransport({ baseUrl: url, interceptors: [bearer(args.token)] }));
  return { transports, close: () => transports.forEach((transport) => transport.close()) };
}

const callOptions = { timeoutMs: hotPathLimits.callTimeoutMs };

function usageEvents(size: number, customerOf: () => string) {
  return Array.from({ length: size }, () => ({ eventId: randomUUID(), customerId: customerOf(), featureKey: args.featureKey, quantity: 1n }));
}

/** rawLoad builds the scenarios that call the generated LedgerService client (and health). */
function rawLoad(): Load {
  const connections = sessionsFor(args.concurrency);
  const { transports, close } = grpcTransports(connections, args.scenario === "baseline-bare-grpc" ? args.bareGrpcUrl : args.grpcUrl);
  const ledgers = transports.map((transport) => createClient(LedgerService, transport));
  const healths = transports.map((transport) => createClient(HealthService, transport));
  const ledgerOf = (index: number) => ledgers[index % connections];
  const usage = (featureKey: string) => ({ case: "usage" as const, value: { featureKey, quantity: 1n } });
  const pair = (customerOf: () => string): Operation => async (index, recorder) => {
    const ledger = ledgerOf(index);
    const { reservation } = await recorder.rpc(() => ledger.reserve({ customerId: customerOf(), cost: usage(args.featureKey), requestId: randomUUID() }, callOptions));
    await recorder.rpc(() => ledger.commit({ reservationId: reservation!.reservationId, amount: reservation!.amount, requestId: randomUUID() }, callOptions));
    return 1;
  };
  const report = (size: number): Operation => async (index) => {
    const res = await ledgerOf(index).reportUsage({ events: usageEvents(size, pickCustomer) }, callOptions);
    const unburned = res.results.find((result) => result.outcome !== UsageOutcome.BURNED);
    if (unburned !== undefined) throw new Error(`an event was not burned: ${UsageOutcome[unburned.outcome]}`);
    return size;
  };
  const operations: Partial<Record<WorkerArgs["scenario"], Operation>> = {
    "reserve-commit": pair(pickCustomer),
    "reserve-commit-hot": pair(() => args.hotCustomerId),
    burn: async (index) => {
      await ledgerOf(index).burn({ customerId: pickCustomer(), cost: usage(args.featureKey), requestId: randomUUID() }, callOptions);
      return 1;
    },
    check: async (index) => {
      const res = await ledgerOf(index).check({ customerId: pickCustomer(), featureKey: args.featureKey, quantity: 1n }, callOptions);
      if (!res.allowed) throw new Error("Check denied a customer with credits");
      return 1;
    },
    "get-balance": async (index) => {
      const res = await ledgerOf(index).getBalance({ customerId: pickCustomer() }, callOptions);
      if (res.balances.length !== 1) throw new Error(`GetBalance returned ${res.balances.length} balances`);
      return 1;
    },
    "report-usage-100": report(100),
    "report-usage-1000": report(1_000),
    "baseline-transport": async (index) => {
      await healths[index % connections].check({ service: "" }, callOptions);
      return 1;
    },
    "baseline-bare-grpc": async (index) => {
      await healths[index % connections].check({ service: "" }, callOptions);
      return 1;
    },
  };
  const operation = operations[args.scenario];
  if (operation === undefined) throw new Error(`rawLoad: ${args.scenario} is not a raw-client scenario`);
  return { operation, connections, close: async () => close() };
}

function sdkClients(count: number, onUsageResults?: (results: UsageEventResult[]) => void): BurndownClient[] {
  return Array.from({ length: count }, () =>
    createBurndownClient({
      baseUrl: args.grpcUrl,
      apiKey: args.token,
      onUsageResults,
      onError: (error) => process.stderr.write(`hot-path-worker: sdk background error: ${errorLabel(error)}\n`),
    }),
  );
}

/** sdkWithCreditsLoad runs withCredits with an empty action: the two RPCs (or batch items) plus the SDK's own work. */
function sdkWithCreditsLoad(customerOf: () => string): Load {
  const connections = sessionsFor(args.concurrency);
  const clients = sdkClients(connections);
  return {
    operation: async (index) => {
      await clients[index % connections].withCredits({ customerId: customerOf(), featureKey: args.featureKey, quantity: 1n }, async () => undefined);
      return 1;
    },
    connections,
    close: async () => {
      await Promise.all(clients.map((client) => client.close({ timeoutMs: 1_000 })));
    },
  };
}

// --- the driver baselines ---------------------------------------------------------------

function idempotencyOf(method: string): Idempotency {
  const requestId = randomUUID();
  return { requestId, method, payloadHash: createHash("sha256").update(requestId).digest() };
}

/** databaseCeilingLoad runs the server's own reserve and commit on a pool: the same statements and transactions, no RPC. */
function databaseCeilingLoad(customerOf: () => string): Load {
  const connections = Math.min(args.concurrency, args.baselinePoolSize);
  const pool = createPool(args.databaseUrl, connections);
  const deps: Deps = {
    pool,
    now: () => new Date(),
    usage: { lateCutoffMs: serverLimits.usageLateCutoffMsDefault, dedupRetentionMs: serverLimits.usageDedupRetentionMsDefault },
    fanout: new LocalFanout(),
    grantReasonCodes: serverLimits.grantReasonCodesDefault,
    writes: new GroupCommit({ pool, now: () => new Date() }, { lanes: args.writeLanes, partitions: 1, groupWeightMax: serverLimits.groupWeightMax }),
  };
  const caller: Caller = { keyId: args.ceilingKeyId, name: "bench ceiling", role: "service", grantLimit: 0n, requestId: null };
  return {
    operation: async (_index, recorder) => {
      const cost = { kind: "usage" as const, featureKey: args.featureKey, quantity: 1n };
      const held = await recorder.rpc(() => reserve(deps, caller, idempotencyOf("Reserve"), { customerId: customerOf(), cost, ttlMs: serverLimits.reservationTtlMsDefault }));
      const { reservationId, amount } = held.reservation;
      await recorder.rpc(() => commit(deps, caller, idempotencyOf("Commit"), { reservationId, amount }));
      return 1;
    },
    connections,
    close: () => pool.end(),
  };
}

/** naiveLoad is the textbook ledger: per debit, lock the balance row, read, check, update, insert an entry, commit. */
function naiveLoad(customerOf: () => string): Load {
  const connections = Math.min(args.concurrency, args.baselinePoolSize);
  const pool = new pg.Pool({ connectionString: args.databaseUrl, max: connections });
  pool.on("error", () => undefined); // an idle connection dropped with the database; the run is over.
  const amount = 1n;
  return {
    operation: async () => {
      const customerId = customerOf();
      const client = await pool.connect();
      try {
        await client.query("begin");
        const locked = await client.query({ name: "naive_lock", text: "select available from bench_naive_balances where customer_id = $1 for update", values: [customerId] });
        if (locked.rows.length !== 1) throw new Error(`naive: no balance for ${customerId}`);
        if (BigInt(locked.rows[0].available as string) < amount) throw new Error("naive: insufficient credits");
        await client.query({ name: "naive_debit", text: "update bench_naive_balances set available = available - $2 where customer_id = $1", values: [customerId, amount.toString()] });
        await client.query({ name: "naive_entry", text: "insert into bench_naive_entries (customer_id, amount, request_id) values ($1, $2, $3)", values: [customerId, amount.toString(), randomUUID()] });
        await client.query("commit");
        return 1;
      } catch (error) {
        await client.query("rollback").catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    connections,
    close: () => pool.end(),
  };
}

function loadOf(): Load {
  switch (args.scenario) {
    case "sdk-with-credits":
      return sdkWithCreditsLoad(pickCustomer);
    case "sdk-with-credits-hot":
      return sdkWithCreditsLoad(() => args.hotCustomerId);
    case "baseline-database-ceiling":
      return databaseCeilingLoad(pickCustomer);
    case "baseline-database-ceiling-hot":
      return databaseCeilingLoad(() => args.hotCustomerId);
    case "baseline-naive":
      return naiveLoad(pickCustomer);
    case "baseline-naive-hot":
      return naiveLoad(() => args.hotCustomerId);
    default:
      return rawLoad();
  }
}

// --- SDK reportUsage: open loop into the background batcher ------------------------------

/**
 * sdkReportUsage: each caller hands events to reportUsage (which returns at once) as fast
 * as the client's pending bound allows, as an application would. Throughput counts events
 * the ledger answered inside the window; latency is per event, from acceptance to answer
 * (it includes the batcher's linger).
 */
async function sdkReportUsage(monitor: pg.Client): Promise<WorkerResult> {
  const state = new WindowState();
  state.countsCompletions = false;
  const acceptedAtMs = new Map<string, number>();
  const onUsageResults = (results: UsageEventResult[]) => {
    const now = performance.now();
    for (const result of results) {
      const t0 = acceptedAtMs.get(result.eventId);
      acceptedAtMs.delete(result.eventId);
      if (result.outcome !== UsageOutcome.BURNED) state.failed(new Error(`outcome ${UsageOutcome[result.outcome]}`));
      else if (t0 !== undefined && state.phase === "window") {
        state.operations++;
        state.items++;
        state.latenciesMs.push(now - t0);
      }
    }
  };
  const connections = sessionsFor(args.concurrency);
  const clients = sdkClients(connections, onUsageResults);
  const operation: Operation = async (index) => {
    const client = clients[index % connections];
    if (client.stats().pending >= hotPathLimits.sdkPendingEventsMax) {
      await sleep(1);
      return 0;
    }
    const receipt = client.reportUsage({ customerId: pickCustomer(), featureKey: args.featureKey, quantity: 1n });
    if (!receipt.accepted) throw new Error(`reportUsage refused: ${receipt.refusal}`);
    acceptedAtMs.set(receipt.eventId, performance.now());
    await new Promise<void>((resolve) => setImmediate(resolve));
    return 1;
  };
  const close = async () => void (await Promise.all(clients.map((client) => client.close({ timeoutMs: hotPathLimits.drainMsMax }))));
  const result = await runWindow({ operation, connections, close }, monitor, state);
  await close();
  return result;
}

// --- SDK overhead: client CPU per call, interleaved rounds (the approach of bench/sdk.ts) ----

async function sdkOverhead(): Promise<OverheadResult> {
  const rounds = args.overheadRounds ?? 3;
  const callsPerRound = args.overheadCallsPerRound ?? 100;
  const { transports, close } = grpcTransports(1);
  const raw = createClient(LedgerService, transports[0]);
  const [sdk] = sdkClients(1);
  const errors: Record<string, number> = {};
  const rawCall = async () => {
    const { reservation } = await raw.reserve({ customerId: pickCustomer(), cost: { case: "usage", value: { featureKey: args.featureKey, quantity: 1n } }, requestId: randomUUID() });
    await raw.commit({ reservationId: reservation!.reservationId, amount: reservation!.amount, requestId: randomUUID() });
  };
  const sdkCall = () => sdk.withCredits({ customerId: pickCustomer(), featureKey: args.featureKey, quantity: 1n }, async () => undefined);
  const timings = { raw: [] as number[], sdk: [] as number[] };
  const cpuUs = { raw: 0, sdk: 0 };
  for (let i = 0; i < 50; i++) await Promise.all([rawCall(), sdkCall()]);
  // Many short rounds, alternating: this machine's speed drifts, and both sides must see the same drift.
  const startedAt = performance.now();
  let roundsRun = 0;
  for (let round = 0; round < rounds && performance.now() - startedAt < hotPathLimits.overheadRunMsMax * 0.8; round++, roundsRun++) {
    for (const [name, call] of [["raw", rawCall], ["sdk", sdkCall]] as const) {
      const cpu0 = process.cpuUsage();
      for (let i = 0; i < callsPerRound; i++) {
        const t0 = performance.now();
        try {
          await call();
          timings[name].push(performance.now() - t0);
        } catch (error) {
          errors[errorLabel(error)] = (errors[errorLabel(error)] ?? 0) + 1;
        }
      }
      const cpu = process.cpuUsage(cpu0);
      cpuUs[name] += cpu.user + cpu.system;
    }
  }
  await sdk.close({ timeoutMs: 1_000 });
  close();
  const calls = roundsRun * callsPerRound;
  const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
  return {
    scenario: "sdk-overhead",
    calls,
    rawCpuUsPerCall: cpuUs.raw / calls,
    sdkCpuUsPerCall: cpuUs.sdk / calls,
    overheadCpuUsPerCall: (cpuUs.sdk - cpuUs.raw) / calls,
    rawMedianMs: median(timings.raw),
    sdkMedianMs: median(timings.sdk),
    errors,
  };
}

async function main(): Promise<void> {
  if (args.scenario === "sdk-overhead") {
    console.log(JSON.stringify(await sdkOverhead()));
    return;
  }
  const monitor = new pg.Client({ connectionString: args.databaseUrl, application_name: "hot-path-monitor" });
  monitor.on("error", () => undefined);
  await monitor.connect();
  try {
    if (args.scenario === "sdk-report-usage") {
      console.log(JSON.stringify(await sdkReportUsage(monitor)));
      return;
    }
    const load = loadOf();
    const result = await runWindow(load, monitor, new WindowState());
    await load.close();
    console.log(JSON.stringify(result));
  } finally {
    await monitor.end();
  }
}

await main();
// Calls abandoned by the drain, open sessions or SDK timers must not keep the process alive.
process.exit(0);
