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

/** targetLevel is the callers the issue's targets are stated at. */
const targetLevel = 64;

function targets(run: HotPathRun): TargetRow[] {
  const rows: TargetRow[] = [];
  /** versus: ours over a baseline at every level, judged at targetLevel (or the highest level run). */
  const versus = (id: ScenarioId, baseline: ScenarioId, wanted: number, label: string, measure: (r: WorkerResult) => number = (r) => r.operationsPerSecond) => {
    const cells: string[] = [];
    const judged = run.levels.includes(targetLevel) ? targetLevel : Math.max(...run.levels);
    let met: boolean | null = null;
    for (const level of run.levels) {
      const ours = find(run, id, level);
      if (ours === undefined) continue;
      const value = ratioTo(run, ours, baseline, measure);
      if (value === null) continue;
      cells.push(`${level}: ${ratio(value)}${level === judged ? (value >= wanted ? " (met)" : ` (short by ${int((1 - value / wanted) * 100)}%)`) : ""}`);
      if (level === judged) met = value >= wanted;
    }
    rows.push({ target: label, measured: cells.join("; ") || "not measured", met });
  };
  versus("sdk-with-credits", "baseline-naive", 2, `SDK withCredits, ${int(run.customersCount)} customers: ≥ 2x the naive ledger's debits at ${targetLevel} callers (pairs/s by callers)`);
  versus("sdk-with-credits-hot", "baseline-naive-hot", 5, `SDK withCredits, one hot customer: ≥ 5x the naive ledger on one hot row at ${targetLevel} callers`);
  versus("reserve-commit", "baseline-naive", 1, `raw unary Reserve + Commit (no SDK batching): ≥ 1x the naive ledger at ${targetLevel} callers`);
  const usage = run.results.filter((r) => r.scenario === "report-usage-1000");
  const best = usage.reduce<WorkerResult | undefined>((a, b) => (a === undefined || b.itemsPerSecond > a.itemsPerSecond ? b : a), undefined);
  rows.push({
    target: "ReportUsage, batches of 1,000: ≥ 10,000 events/s",
    measured: best === undefined ? "not measured" : usage.map((r) => `${r.concurrency}: ${int(r.itemsPerSecond)}/s`).join("; "),
    met: best === undefined ? null : best.itemsPerSecond >= 10_000,
  });
  // The empty RPC counts calls, so the ratio of operations is the ratio of calls.
  versus("baseline-transport", "baseline-bare-grpc", 0.5, `empty RPC over gRPC: ≥ 0.5x the bare HTTP/2 server at ${targetLevel} callers`);
  for (const half of run.halfPeak) {
    const sdk = half.scenario === "sdk-with-credits";
    rows.push({
      target: `p99 at half of peak < 30 ms: ${scenarioOf(half.scenario).title}, open loop at ${int(half.targetRatePerSecond ?? 0)}/s${sdk ? "" : " (for reference)"}`,
      measured: `p99 ${ms(half.latency.p99Ms)} ms, max ${ms(half.latency.maxMs)} ms, achieved ${int(half.operationsPerSecond)}/s${Object.keys(half.errors).length ? `, errors: ${errorsCell(half)}` : ""}`,
      met: sdk ? half.latency.p99Ms < 30 && Object.keys(half.errors).length === 0 : null,
    });
  }
  const o = run.overhead;
  rows.push({
    target: "SDK client CPU per withCredits over the raw client's: < 200 µs",
    measured: `${int(o.overheadCpuUsPerCall)} µs (raw ${int(o.rawCpuUsPerCall)} µs, SDK ${int(o.sdkCpuUsPerCall)} µs per call; medians ${ms(o.rawMedianMs)} / ${ms(o.sdkMedianMs)} ms)`,
    met: o.overheadCpuUsPerCall < 200,
  });
  const shed = run.results.filter((r) => isOverloaded(r)).map((r) => `${r.scenario}@${r.concurrency}`);
  rows.push({ target: "(for reference) overload shed with ResourceExhausted/Unavailable", measured: shed.length ? `shed at: ${shed.join(", ")}` : "no level shed load", met: null });
  return rows;
}

function matrix(run: HotPathRun): string {
  const lines = [
    "| scenario | callers | conns | ops/s | items/s | p50 ms | p99 ms | p99.9 ms | max ms | server CPU µs/op | DB CPU µs/op | server cores | vs bare gRPC | vs transport | vs DB ceiling | vs naive | errors |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const level of run.levels) {
    for (const scenario of scenarios) {
      const r = find(run, scenario.id, level);
      if (r === undefined) continue;
      const isPair = scenario.unit === "pair" && scenario.rpcsPerOperation > 0;
      const hot = scenario.id.endsWith("-hot");
      const transportOf = (baseline: ScenarioId) =>
        (scenario.rpcsPerOperation > 0 && !["baseline-transport", "baseline-bare-grpc"].includes(scenario.id)) || (baseline === "baseline-bare-grpc" && scenario.id === "baseline-transport")
          ? ratioTo(run, r, baseline, (x) => (x === r ? rpcsPerSecond(x) : x.operationsPerSecond))
          : null;
      const vsBare = transportOf("baseline-bare-grpc");
      const vsTransport = transportOf("baseline-transport");
      const vsCeiling = isPair ? ratioTo(run, r, hot ? "baseline-database-ceiling-hot" : "baseline-database-ceiling", (x) => x.operationsPerSecond) : null;
      const vsNaive = isPair ? ratioTo(run, r, hot ? "baseline-naive-hot" : "baseline-naive", (x) => x.operationsPerSecond) : null;
      lines.push(
        `| ${scenario.title} | ${level} | ${r.connections} | ${int(r.operationsPerSecond)} | ${scenario.unit === "event" ? int(r.itemsPerSecond) : ""} | ${ms(r.latency.p50Ms)} | ${ms(r.latency.p99Ms)} | ${ms(r.latency.p999Ms)} | ${ms(r.latency.maxMs)} | ${scenario.rpcsPerOperation > 0 ? int(r.serverCpuUsPerOperation) : ""} | ${int(r.databaseCpuUsPerOperation)} | ${r.serverCpuCores.toFixed(2)} | ${ratio(vsBare)} | ${ratio(vsTransport)} | ${ratio(vsCeiling)} | ${ratio(vsNaive)} | ${errorsCell(r)} |`,
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

- **bare HTTP/2 server**: the same empty RPC on a bare \`@grpc/grpc-js\` server in a process of its own, no
  interceptors, no authentication, no database: what a gRPC call costs before Burndown adds anything;
- **transport ceiling**: the gRPC health Check, an empty RPC through the same server stack;
- **database ceiling**: the server's own write path (its lanes, group commit and set-based statements) driven
  from the load process on a pool of the same size by the same number of callers: the best the database does
  with our SQL, with no RPC;
- **naive ledger**: per debit, \`BEGIN; SELECT ... FOR UPDATE; UPDATE; INSERT entry; COMMIT\` on its own
  two tables, the ledger a team would write in house (one debit, where our pair is a hold and a commit).

## Targets

| target | measured | status |
| --- | --- | --- |
${targetRows}

## The matrix

"vs bare gRPC" and "vs transport" are RPCs per second over the empty RPC's calls per second on the bare
server and on ours; "vs DB ceiling" and "vs naive" compare operations per second at the same number of callers.

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
