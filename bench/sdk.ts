// SDK overhead: withCredits (reserve, run, commit, through the client's call path,
// breaker and request ids) against the same two RPCs on the raw generated client, one
// caller at a time, interleaved in rounds so that noise hits every scenario alike. The
// raw client runs over connect-node's gRPC transport and over the SDK's grpc-js
// transport, so the table shows what the transport saves and what the SDK adds on top.
// Then reportUsage batching against raw ReportUsage calls of the same batch size.
//   npx tsx bench/sdk.ts [--quick] [--rounds N] [--only raw-connect-node|raw-grpc-js|sdk] [--no-usage]
// With --only, one scenario runs alone: that is the run to profile (node --cpu-prof --import tsx bench/sdk.ts --only sdk).
import { randomUUID } from "node:crypto";
import v8 from "node:v8";
import vm from "node:vm";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService, GrantSource, LedgerService } from "@burndown/sdk";
import { createBurndownClient } from "../sdk/src/client.js";
import { createGrpcJsTransport } from "../sdk/src/grpc-js-transport.js";
import { percentile, startBenchServer } from "./bench-server.js";

const quick = process.argv.includes("--quick");
const argumentOf = (flag: string) => {
  const index = process.argv.indexOf(flag);
  return index >= 0 ? process.argv[index + 1] : undefined;
};
const rounds = Number(argumentOf("--rounds") ?? (quick ? 3 : 10));
const only = argumentOf("--only");
const callsPerRound = quick ? 200 : 500;
const eventsCount = quick ? 20_000 : 100_000;

v8.setFlagsFromString("--expose-gc");
/** collectGarbage runs a full collection, between measured blocks. */
const collectGarbage = vm.runInNewContext("gc") as () => void;

const bench = await startBenchServer();
try {
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${bench.token}`);
    return next(req);
  };
  const connectNode = createGrpcTransport({ baseUrl: bench.server.grpcUrl, interceptors: [auth] });
  const grpcJs = createGrpcJsTransport({ baseUrl: bench.server.grpcUrl, interceptors: [auth] });
  const raw = createClient(LedgerService, connectNode);
  const admin = createClient(AdminService, connectNode);
  await admin.createCreditType({ creditType: { creditTypeId: "c", displayName: "C", scale: 0 }, requestId: randomUUID() });
  await admin.createFeature({ feature: { featureKey: "chat", displayName: "Chat", creditTypeId: "c", burnRate: 1n }, requestId: randomUUID() });
  const customers = Array.from({ length: 100 }, (_, i) => `sdk-bench-${i}`);
  for (const customerId of customers) await raw.grant({ customerId, creditTypeId: "c", amount: 1_000_000_000n, source: GrantSource.PURCHASE, reasonCode: "bench", requestId: randomUUID() });
  const sdk = createBurndownClient({ baseUrl: bench.server.grpcUrl, apiKey: bench.token });
  const pick = (i: number) => customers[i % customers.length];

  const rawCallOver = (transport: Transport) => {
    const ledger: Client<typeof LedgerService> = createClient(LedgerService, transport);
    return async (i: number) => {
      const { reservation } = await ledger.reserve({ customerId: pick(i), cost: { case: "usage", value: { featureKey: "chat", quantity: 1n } }, requestId: randomUUID() });
      await ledger.commit({ reservationId: reservation!.reservationId, amount: reservation!.amount, requestId: randomUUID() });
    };
  };
  const allScenarios = [
    { key: "raw-connect-node", name: "raw Reserve + Commit, connect-node gRPC transport (baseline)", call: rawCallOver(connectNode) },
    { key: "raw-grpc-js", name: "raw Reserve + Commit, grpc-js transport", call: rawCallOver(grpcJs) },
    { key: "sdk", name: "SDK withCredits (its default transport)", call: (i: number) => sdk.withCredits({ customerId: pick(i), featureKey: "chat", quantity: 1n }, async () => undefined) },
  ];
  const scenarios = allScenarios.filter((scenario) => only === undefined || scenario.key === only);
  if (scenarios.length === 0) throw new Error(`--only: no scenario ${only}`);
  const timings = new Map<string, number[]>(scenarios.map((scenario) => [scenario.key, []]));
  // Client CPU is the real cost of a client: the server runs in another process.
  const cpuUs = new Map<string, number>(scenarios.map((scenario) => [scenario.key, 0]));
  for (let i = 0; i < 50; i++) for (const scenario of scenarios) await scenario.call(i);
  for (let round = 0; round < rounds; round++) {
    // Each round starts with another scenario, and the heap is collected before each block, so
    // no scenario is charged for collecting the garbage of the one before it.
    for (let turn = 0; turn < scenarios.length; turn++) {
      const scenario = scenarios[(round + turn) % scenarios.length];
      collectGarbage();
      const cpu0 = process.cpuUsage();
      for (let i = 0; i < callsPerRound; i++) {
        const t0 = performance.now();
        await scenario.call(i);
        timings.get(scenario.key)!.push(performance.now() - t0);
      }
      const cpu = process.cpuUsage(cpu0);
      cpuUs.set(scenario.key, cpuUs.get(scenario.key)! + cpu.user + cpu.system);
    }
  }
  const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

  const calls = rounds * callsPerRound;
  const cpuPerCallUs = (key: string) => (cpuUs.get(key) ?? NaN) / calls;
  console.log(`\nSDK vs raw generated client over gRPC, one caller, ${rounds} interleaved rounds of ${callsPerRound} calls each\n`);
  console.log("| scenario | client CPU per call | × baseline CPU | median | mean | p99 |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  for (const scenario of scenarios) {
    const xs = timings.get(scenario.key)!;
    const sorted = [...xs].sort((a, b) => a - b);
    const ratio = cpuPerCallUs(scenario.key) / cpuPerCallUs("raw-connect-node");
    console.log(`| ${scenario.name} | ${cpuPerCallUs(scenario.key).toFixed(0)} µs | ${Number.isFinite(ratio) ? ratio.toFixed(2) : "–"} | ${median(xs).toFixed(3)} ms | ${mean(xs).toFixed(3)} ms | ${percentile(sorted, 99).toFixed(3)} ms |`);
  }
  if (only === undefined) {
    const overheadUs = cpuPerCallUs("sdk") - cpuPerCallUs("raw-grpc-js");
    const wallUs = (median(timings.get("sdk")!) - median(timings.get("raw-grpc-js")!)) * 1000;
    console.log(`\nwithCredits overhead over the raw client on the grpc-js transport: ${overheadUs.toFixed(0)} µs of client CPU per call (target < 200 µs, toward 50 µs); wall-clock median difference ${wallUs.toFixed(0)} µs (noise on a shared machine)`);
  }

  if (!process.argv.includes("--no-usage") && only === undefined) await benchUsage(raw, sdk, pick);
  await sdk.close();
  grpcJs.close();
} finally {
  await bench.stop();
}

/** benchUsage sends the same events as raw ReportUsage batches and through the SDK's background batching. */
async function benchUsage(raw: Client<typeof LedgerService>, sdk: ReturnType<typeof createBurndownClient>, pick: (i: number) => string): Promise<void> {
  const batchSize = 500;
  const rawBatchStart = performance.now();
  for (let sent = 0; sent < eventsCount; sent += batchSize) {
    await raw.reportUsage({ events: Array.from({ length: batchSize }, (_, i) => ({ eventId: randomUUID(), customerId: pick(sent + i), featureKey: "chat", quantity: 1n })) });
  }
  const rawBatchSeconds = (performance.now() - rawBatchStart) / 1000;
  const sdkBatchStart = performance.now();
  for (let i = 0; i < eventsCount; i++) sdk.reportUsage({ customerId: pick(i), featureKey: "chat", quantity: 1n });
  const flushed = await sdk.flush({ timeoutMs: 300_000 });
  const sdkBatchSeconds = (performance.now() - sdkBatchStart) / 1000;
  if (!flushed.drained) throw new Error("reportUsage did not drain");
  console.log("\n| usage reporting | events | events/s | × baseline |");
  console.log("| --- | ---: | ---: | ---: |");
  const rawRate = eventsCount / rawBatchSeconds;
  console.log(`| raw ReportUsage, batches of ${batchSize}, one at a time (baseline) | ${eventsCount} | ${Math.round(rawRate)} | 1.0 |`);
  console.log(`| SDK reportUsage + flush (background batching) | ${eventsCount} | ${Math.round(eventsCount / sdkBatchSeconds)} | ${(eventsCount / sdkBatchSeconds / rawRate).toFixed(2)} |`);
}
