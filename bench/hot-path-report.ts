// Renders a hot-path run as docs/performance.md: the targets with their gaps, the whole
// matrix with ratios to the baselines measured in the same run, the open-loop latency at
// half of peak, the SDK's own cost, and the profile notes kept in hot-path-profile.md.
import { readFileSync } from "node:fs";
import path from "node:path";
import { type OverheadResult, type ScenarioId, scenarioOf, scenarios, type WorkerResult } from "./hot-path-scenarios.js";

/** HotPathRun is everything one run measured; docs/performance.json is this, as JSON. */
export interface HotPathRun {
  startedAt: string;
  durationS: number;
  mode: "quick" | "full";
  command: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; postgres: string; database: string };
  levels: number[];
  windowMs: number;
  serverPoolSize: number;
  /** customers the many-customer scenarios spread over. */
  customersCount: number;
  /** settings the server ran with beyond the defaults. */
  serverEnv: Record<string, string>;
  results: WorkerResult[];
  halfPeak: WorkerResult[];
  overhead: OverheadResult;
}

/** overloadCodes are the answers of a server shedding load; a level that shows them is overloaded. */
const overloadCodes = ["ResourceExhausted", "Unavailable"];

const int = (x: number) => Math.round(x).toLocaleString("en-US");
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const ratio = (x: number | null) => (x === null || !Number.isFinite(x) ? "" : `${x.toFixed(2)}x`);

function find(run: HotPathRun, id: ScenarioId, concurrency: number): WorkerResult | undefined {
  return run.results.find((r) => r.scenario === id && r.concurrency === concurrency);
}

/** rpcsPerSecond is the calls a scenario put through the server stack. */
function rpcsPerSecond(r: WorkerResult): number {
  const scenario = scenarioOf(r.scenario);
  return r.operationsPerSecond * scenario.rpcsPerOperation;
}

function isOverloaded(r: WorkerResult): boolean {
  return Object.keys(r.errors).some((label) => overloadCodes.some((code) => label.startsWith(code)));
}

function errorsCell(r: WorkerResult): string {
  const parts = Object.entries(r.errors).map(([label, count]) => `${label} ${int(count)}`);
  return parts.join(", ");
}

/** ratioTo divides ours by a baseline at the same level; null when either is missing or zero. */
function ratioTo(run: HotPathRun, ours: WorkerResult, baseline: ScenarioId, measure: (r: WorkerResult) => number): number | null {
  const base = find(run, baseline, ours.concurrency);
  if (base === undefined || measure(base) === 0) return null;
  return measure(ours) / measure(base);
}

interface TargetRow {
  target: string;
  measured: string;
  met: boolean | null;
}

function targets(run: HotPathRun): TargetRow[] {
  const rows: TargetRow[] = [];
  const perLevel = (id: ScenarioId, baseline: ScenarioId, wanted: number, label: string) => {
    const cells: string[] = [];
    let met: boolean | null = null;
    for (const level of run.levels) {
      const ours = find(run, id, level);
      if (ours === undefined) continue;
      const value = ratioTo(run, ours, baseline, (r) => r.operationsPerSecond);
      if (value === null) continue;
      cells.push(`${level}: ${ratio(value)}${value >= wanted ? "" : ` (short by ${int((1 - value / wanted) * 100)}%)`}`);
      met = (met ?? true) && value >= wanted;
    }
    rows.push({ target: label, measured: cells.join("; ") || "not measured", met });
  };
  perLevel("sdk-with-credits", "baseline-database-ceiling", 0.7, "Many customers: SDK withCredits ≥ 0.70x the database ceiling (by callers)");
  perLevel("sdk-with-credits-hot", "baseline-naive-hot", 5, "One hot customer: SDK withCredits pairs ≥ 5x the naive ledger's debits (by callers)");
  perLevel("reserve-commit-hot", "baseline-naive-hot", 5, "(for reference) one hot customer, raw unary Reserve + Commit, against the same");
  rows[rows.length - 1].met = null;
  for (const half of run.halfPeak) {
    rows.push({
      target: `p99 < 5 ms at half of peak (${scenarioOf(half.scenario).title}, open loop at ${int(half.targetRatePerSecond ?? 0)}/s)`,
      measured: `p99 ${ms(half.latency.p99Ms)} ms, max ${ms(half.latency.maxMs)} ms, achieved ${int(half.operationsPerSecond)}/s${Object.keys(half.errors).length ? `, errors: ${errorsCell(half)}` : ""}`,
      met: half.latency.p99Ms < 5 && Object.keys(half.errors).length === 0,
    });
  }
  // "Not overloaded": one caller, and the open-loop runs at half of peak. Every closed-loop
  // level from 16 callers up already saturates this machine (throughput stops growing), so
  // its latency is queueing by construction; it is in the matrix below.
  const unloaded = [...run.results.filter((r) => r.concurrency === 1), ...run.halfPeak].filter(
    (r) => scenarioOf(r.scenario).rpcsPerOperation > 0 && r.scenario !== "sdk-report-usage",
  );
  const slow = unloaded.filter((r) => r.latency.maxMs > 100).map((r) => `${r.scenario}${r.targetRatePerSecond === null ? "@1" : " at half of peak"} ${ms(r.latency.maxMs)} ms`);
  const worst = unloaded.reduce((a, b) => (b.latency.maxMs > a.latency.maxMs ? b : a), unloaded[0]);
  rows.push({
    target: "No request over 100 ms when not overloaded (one caller; half of peak)",
    measured: slow.length ? `over 100 ms: ${slow.join("; ")}` : `none; the slowest was ${worst?.scenario} at ${ms(worst?.latency.maxMs ?? 0)} ms`,
    met: slow.length === 0,
  });
  const shed = run.results.filter((r) => isOverloaded(r)).map((r) => `${r.scenario}@${r.concurrency}`);
  rows.push({ target: "Overload shed with ResourceExhausted/Unavailable", measured: shed.length ? `shed at: ${shed.join(", ")}` : "no level shed load", met: null });
  const o = run.overhead;
  rows.push({
    target: "SDK withCredits overhead < 50 µs of client CPU per call",
    measured: `${int(o.overheadCpuUsPerCall)} µs (raw ${int(o.rawCpuUsPerCall)} µs, SDK ${int(o.sdkCpuUsPerCall)} µs per call; medians ${ms(o.rawMedianMs)} / ${ms(o.sdkMedianMs)} ms)`,
    met: o.overheadCpuUsPerCall < 50,
  });
  return rows;
}

function matrix(run: HotPathRun): string {
  const lines = [
    "| scenario | callers | conns | ops/s | items/s | p50 ms | p99 ms | p99.9 ms | max ms | server CPU µs/op | DB CPU µs/op | server cores | vs transport | vs DB ceiling | vs naive | errors |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const level of run.levels) {
    for (const scenario of scenarios) {
      const r = find(run, scenario.id, level);
      if (r === undefined) continue;
      const isPair = scenario.unit === "pair" && scenario.rpcsPerOperation > 0;
      const hot = scenario.id.endsWith("-hot");
      const vsTransport = scenario.rpcsPerOperation > 0 && scenario.id !== "baseline-transport" ? ratioTo(run, r, "baseline-transport", (x) => (x === r ? rpcsPerSecond(x) : x.operationsPerSecond)) : null;
      const vsCeiling = isPair ? ratioTo(run, r, hot ? "baseline-database-ceiling-hot" : "baseline-database-ceiling", (x) => x.operationsPerSecond) : null;
      const vsNaive = isPair ? ratioTo(run, r, hot ? "baseline-naive-hot" : "baseline-naive", (x) => x.operationsPerSecond) : null;
      lines.push(
        `| ${scenario.title} | ${level} | ${r.connections} | ${int(r.operationsPerSecond)} | ${scenario.unit === "event" ? int(r.itemsPerSecond) : ""} | ${ms(r.latency.p50Ms)} | ${ms(r.latency.p99Ms)} | ${ms(r.latency.p999Ms)} | ${ms(r.latency.maxMs)} | ${scenario.rpcsPerOperation > 0 ? int(r.serverCpuUsPerOperation) : ""} | ${int(r.databaseCpuUsPerOperation)} | ${r.serverCpuCores.toFixed(2)} | ${ratio(vsTransport)} | ${ratio(vsCeiling)} | ${ratio(vsNaive)} | ${errorsCell(r)} |`,
      );
    }
  }
  return lines.join("\n");
}

/** renderReport is docs/performance.md for one run. */
export function renderReport(run: HotPathRun): string {
  const m = run.machine;
  const profile = readFileSync(path.join(import.meta.dirname, "hot-path-profile.md"), "utf8").trim();
  const targetRows = targets(run)
    .map((row) => `| ${row.target} | ${row.measured} | ${row.met === null ? "see note" : row.met ? "met" : "**missed**"} |`)
    .join("\n");
  return `# Hot-path performance

Generated by \`${run.command}\` on ${run.startedAt} (${run.mode} run, ${run.durationS.toFixed(0)} s). Do not edit by
hand: rerun the command. The same figures as JSON are in [performance.json](performance.json).

**Machine:** ${m.cpus} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Node.js ${m.node}, PostgreSQL ${m.postgres}
(${m.database}, synchronous commit on). Load generator, server and database share the machine, so every
figure below includes the others' CPU competing for the same ${m.cpus} cores; the ratios, measured in the same
run, are what survives that noise.

**How it runs.** One server process (\`server/src/main.ts\`, pool of ${run.serverPoolSize} connections,
${Object.entries(run.serverEnv).map(([k, v]) => `\`${k}=${v}\``).join(", ") || "default settings"}: a latency-first setting, where calls that
wait longer than that for an admission slot are refused with ResourceExhausted) on a fresh
database with ${int(run.customersCount)} funded customers and one hot customer. Each scenario at each level runs in a fresh load
process (\`bench/hot-path-worker.ts\`): closed-loop callers (each waits for its answer before its next call)
sharing one HTTP/2 session per 64 callers, ${run.windowMs / 1000} s measured after a warm-up. Latency is as the caller
sees it, per operation (a Reserve+Commit pair counts as one operation). Server and database CPU are read
from \`/proc\` at the window's edges. The baselines:

- **transport ceiling**: the gRPC health Check, an empty RPC through the same server stack;
- **database ceiling**: the server's own \`reserve\` and \`commit\` functions called from the load process on
  a pool of the same size: the same SQL and transactions with no RPC;
- **naive ledger**: per debit, \`BEGIN; SELECT ... FOR UPDATE; UPDATE; INSERT entry; COMMIT\` on its own
  two tables, the ledger a team would write in house (one debit, where our pair is a hold and a commit).

## Targets

| target | measured | status |
| --- | --- | --- |
${targetRows}

## The matrix

"vs transport" is RPCs per second over the empty RPC's calls per second; "vs DB ceiling" and "vs naive"
compare operations per second at the same number of callers.

${matrix(run)}

## SDK cost

${run.overhead.calls} calls each way, one caller, raw and SDK interleaved in rounds: the raw generated client's
Reserve + Commit took ${int(run.overhead.rawCpuUsPerCall)} µs of client CPU per call, \`withCredits\`
${int(run.overhead.sdkCpuUsPerCall)} µs: ${int(run.overhead.overheadCpuUsPerCall)} µs more.

${profile}
`;
}

// `npx tsx bench/hot-path-report.ts [docs/performance.json]` renders the Markdown again from
// a run's JSON, after the notes in hot-path-profile.md changed: the figures stay the run's.
if (process.argv[1]?.endsWith("hot-path-report.ts")) {
  const { readFileSync: read, writeFileSync } = await import("node:fs");
  const jsonPath = path.resolve(process.argv[2] ?? path.join(import.meta.dirname, "../docs/performance.json"));
  const run = JSON.parse(read(jsonPath, "utf8")) as HotPathRun;
  writeFileSync(path.join(path.dirname(jsonPath), "performance.md"), renderReport(run));
}
