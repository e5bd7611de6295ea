// The hot-path benchmark: a scenario matrix against a real server process on real
// PostgreSQL, with its baselines measured in the same run, written to docs/performance.md
// and docs/performance.json. Load comes from worker processes (hot-path-worker.ts), one per
// scenario and concurrency level, so the load generator's CPU is never the server's.
//   npx tsx bench/hot-path.ts [--quick] [--out <dir>] [--only <scenario,...>] [--levels <n,...>]
//                             [--profile-server <dir>] [--server-env K=V,...]
import { execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService, GrantSource, LedgerService, Role } from "@burndown/sdk";
import pg from "pg";
import { limits as serverLimits } from "../server/src/limits.js";
import { startBenchServer } from "./bench-server.js";
import { type HotPathRun, renderReport } from "./hot-path-report.js";
import { hotPathLimits, type OverheadResult, type ScenarioId, scenarios, type WorkerArgs, type WorkerResult } from "./hot-path-scenarios.js";

const quick = process.argv.includes("--quick");
const outIndex = process.argv.indexOf("--out");
const outDir = path.resolve(outIndex > 0 ? process.argv[outIndex + 1] : path.join(import.meta.dirname, "../docs"));
const onlyIndex = process.argv.indexOf("--only");
/** --only a,b: run just these scenarios (baselines included only when named), for investigating one figure. */
const only = onlyIndex > 0 ? new Set(process.argv[onlyIndex + 1].split(",")) : null;
const levelsIndex = process.argv.indexOf("--levels");
const levels = levelsIndex > 0 ? process.argv[levelsIndex + 1].split(",").map(Number) : quick ? [1, 64] : [1, 16, 64, 256];
const timing = quick ? { warmupMs: 300, windowMs: 1_200 } : { warmupMs: 1_000, windowMs: 4_000 };
/** --quick seeds fewer customers: granting 10,000 through the API alone takes most of two minutes here. */
const customersCount = quick ? hotPathLimits.quickCustomersCount : hotPathLimits.customersCount;
const featureKey = "bench-call";
const hotCustomerId = "bench-hot";
const grantAmount = 1_000_000_000_000n;
const startedAt = new Date();
const runStarted = performance.now();

function log(message: string): void {
  process.stderr.write(`[hot-path ${((performance.now() - runStarted) / 1000).toFixed(0)}s] ${message}\n`);
}

/** the benchmark's server prefers fast refusals to slow answers: see BURNDOWN_QUEUE_WAIT_MS in the README. */
const serverEnv: Record<string, string> = { BURNDOWN_MAX_IN_FLIGHT: "64", BURNDOWN_QUEUE_WAIT_MS: "100" };
/** --server-env K=V[,K=V]: more settings for the server (for comparing them); the report lists them. */
const serverEnvIndex = process.argv.indexOf("--server-env");
if (serverEnvIndex > 0) {
  for (const pair of process.argv[serverEnvIndex + 1].split(",")) {
    const [key, value] = pair.split("=");
    serverEnv[key] = value;
  }
}
const profileIndex = process.argv.indexOf("--profile-server");
/** --profile-server <dir>: the server writes a V8 CPU profile there when it stops (open it in Chrome DevTools). */
const profileArgs = profileIndex > 0 ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(process.argv[profileIndex + 1])}`] : [];
const bench = await startBenchServer(serverEnv, profileArgs);
const bare = await startBareGrpcServer();
try {
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${bench.token}`);
    return next(req);
  };
  const transport = createGrpcTransport({ baseUrl: bench.server.grpcUrl, interceptors: [auth] });
  const admin = createClient(AdminService, transport);
  const ledger = createClient(LedgerService, transport);

  // --- setup: catalog, a service key, 10,000 funded customers and one hot one, the naive ledger's tables
  await admin.createCreditType({ creditType: { creditTypeId: "credits", displayName: "Credits", scale: 0 }, requestId: randomUUID() });
  await admin.createFeature({ feature: { featureKey, displayName: "Bench call", creditTypeId: "credits", burnRate: 1n }, requestId: randomUUID() });
  const serviceKey = await admin.createApiKey({ name: "hot-path bench", role: Role.SERVICE, requestId: randomUUID() });
  const customerIds = [...Array.from({ length: customersCount }, (_, i) => `bench-${i}`), hotCustomerId];
  log(`seeding ${customerIds.length} customers`);
  let next = 0;
  await Promise.all(
    Array.from({ length: hotPathLimits.seedGrantsInFlightMax }, async () => {
      while (next < customerIds.length) {
        const customerId = customerIds[next++];
        await ledger.grant({ customerId, creditTypeId: "credits", amount: grantAmount, source: GrantSource.PURCHASE, reasonCode: "bench", requestId: randomUUID() });
      }
    }),
  );
  // A steady-state database has history and statistics: a few thousand reservations made
  // and committed before the statistics are taken, so that no plan is chosen for an
  // empty reservations table (a sequential scan that grows with every reservation).
  log(`warming up: ${hotPathLimits.warmupPairs} reserve + commit pairs`);
  for (let done = 0; done < hotPathLimits.warmupPairs; done += hotPathLimits.warmupBatchSize) {
    const held = await ledger.reserveBatch({
      requests: Array.from({ length: hotPathLimits.warmupBatchSize }, (_, i) => ({
        customerId: customerIds[(done + i) % customerIds.length], cost: { case: "credits" as const, value: { creditTypeId: "credits", amount: 1n } }, requestId: randomUUID(),
      })),
    });
    const ids = held.results.flatMap((r) => (r.result.case === "response" ? [r.result.value.reservation!.reservationId] : []));
    await ledger.commitBatch({ requests: ids.map((reservationId) => ({ reservationId, amount: 1n, requestId: randomUUID() })) });
  }
  const db = new pg.Client({ connectionString: bench.databaseUrl });
  await db.connect();
  await db.query(`
    create table bench_naive_balances (customer_id text primary key, available bigint not null);
    create table bench_naive_entries (entry_id bigserial primary key, customer_id text not null, amount bigint not null,
      request_id uuid not null unique, recorded_at timestamptz not null default now())`);
  await db.query(`insert into bench_naive_balances select unnest($1::text[]), $2::bigint`, [customerIds, grantAmount.toString()]);
  await db.query("vacuum analyze");
  await db.end();

  const clockTicksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
  const baseArgs = {
    grpcUrl: bench.server.grpcUrl,
    bareGrpcUrl: bare.url,
    bareServerPid: bare.pid,
    token: serviceKey.token,
    databaseUrl: bench.databaseUrl,
    serverPid: bench.server.child.pid!,
    clockTicksPerSecond,
    customersCount,
    hotCustomerId,
    featureKey,
    ceilingKeyId: serviceKey.apiKey!.keyId,
    baselinePoolSize: serverLimits.poolSizeMax,
    writeLanes: Number(serverEnv.BURNDOWN_WRITE_LANES ?? serverLimits.writeLanesDefault),
    ...timing,
  };

  const runWorker = <T>(workerArgs: WorkerArgs): Promise<T> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", path.join(import.meta.dirname, "hot-path-worker.ts"), JSON.stringify(workerArgs)], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let stdout = "";
      child.stdout.on("data", (chunk) => (stdout += chunk));
      const budgetMs = workerArgs.scenario === "sdk-overhead" ? hotPathLimits.overheadRunMsMax : workerArgs.warmupMs + workerArgs.windowMs;
      const overrun = setTimeout(() => child.kill("SIGKILL"), budgetMs + hotPathLimits.workerOverrunMsMax);
      child.once("exit", (code) => {
        clearTimeout(overrun);
        const line = stdout.trim().split("\n").at(-1) ?? "";
        if (code !== 0 || line === "") reject(new Error(`worker ${workerArgs.scenario}@${workerArgs.concurrency} exited ${code}: ${stdout.slice(-500)}`));
        else resolve(JSON.parse(line) as T);
      });
    });

  // --- the matrix: at each level, the baselines first, then our scenarios
  const results: WorkerResult[] = [];
  for (const concurrency of levels) {
    for (const scenario of scenarios) {
      if (quick && !scenario.inQuick) continue;
      if (only !== null && !only.has(scenario.id)) continue;
      if (scenario.itemsPerOperation * concurrency > hotPathLimits.eventsInFlightMax) {
        log(`${scenario.id} @ ${concurrency}: skipped (${scenario.itemsPerOperation * concurrency} events in flight)`);
        continue;
      }
      const result = await runWorker<WorkerResult>({ ...baseArgs, scenario: scenario.id, concurrency });
      results.push(result);
      log(`${scenario.id} @ ${concurrency}: ${result.operationsPerSecond.toFixed(0)} ops/s, p99 ${result.latency.p99Ms.toFixed(1)} ms, errors ${JSON.stringify(result.errors)}`);
    }
  }

  // --- half of peak, open loop: latency when the server is not saturated
  const halfPeak: WorkerResult[] = [];
  for (const id of ["reserve-commit", "sdk-with-credits"] as ScenarioId[]) {
    const peak = Math.max(...results.filter((r) => r.scenario === id).map((r) => r.operationsPerSecond));
    if (!(peak > 0)) continue;
    const result = await runWorker<WorkerResult>({ ...baseArgs, scenario: id, concurrency: 64, ratePerSecond: Math.max(1, Math.round(peak / 2)) });
    halfPeak.push(result);
    log(`${id} open loop at ${result.targetRatePerSecond}/s: p99 ${result.latency.p99Ms.toFixed(1)} ms, max ${result.latency.maxMs.toFixed(1)} ms`);
  }

  const overhead = await runWorker<OverheadResult>({
    ...baseArgs,
    scenario: "sdk-overhead",
    concurrency: 1,
    overheadRounds: quick ? 6 : 40,
    overheadCallsPerRound: 25,
  });
  log(`sdk overhead: ${overhead.overheadCpuUsPerCall.toFixed(0)} µs client CPU per call`);

  const run: HotPathRun = {
    startedAt: startedAt.toISOString(),
    durationS: (performance.now() - runStarted) / 1000,
    mode: quick ? "quick" : "full",
    command: quick ? "npm run bench:quick" : "npm run bench",
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? "unknown",
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      postgres: await postgresVersion(bench.databaseUrl),
      database: process.env.DATABASE_URL ? "DATABASE_URL (the machine's PostgreSQL)" : "embedded PostgreSQL",
    },
    levels,
    windowMs: timing.windowMs,
    serverPoolSize: serverLimits.poolSizeMax,
    customersCount,
    serverEnv,
    results,
    halfPeak,
    overhead,
  };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, "performance.json"), `${JSON.stringify(run, null, 2)}\n`);
  writeFileSync(path.join(outDir, "performance.md"), renderReport(run));
  log(`wrote ${path.join(outDir, "performance.md")} and performance.json in ${run.durationS.toFixed(0)} s`);
} finally {
  bare.stop();
  await bench.stop();
}

/** startBareGrpcServer starts bench/bare-grpc-server.ts in a process of its own. */
async function startBareGrpcServer(): Promise<{ url: string; pid: number; stop: () => void }> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(import.meta.dirname, "bare-grpc-server.ts")], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const match = /listening (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once("exit", (code) => reject(new Error(`the bare gRPC server exited ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, stop: () => child.kill("SIGTERM") };
}

async function postgresVersion(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query("show server_version");
  await client.end();
  return rows[0].server_version as string;
}
