// SDK overhead: withCredits (reserve, run, commit, through the client's call path,
// breaker and request ids) against the same two RPCs on the raw generated client, one
// caller at a time, interleaved in rounds so that noise hits both alike; and reportUsage
// batching against raw ReportUsage calls of the same batch size.
//   npx tsx bench/sdk.ts [--quick]
import { randomUUID } from "node:crypto";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService, GrantSource, LedgerService } from "@burndown/sdk";
import { createBurndownClient } from "../sdk/src/client.js";
import { percentile, startBenchServer } from "./bench-server.js";

const quick = process.argv.includes("--quick");
const rounds = quick ? 3 : 10;
const callsPerRound = quick ? 200 : 500;
const eventsCount = quick ? 20_000 : 100_000;

const bench = await startBenchServer();
try {
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${bench.token}`);
    return next(req);
  };
  const raw = createClient(LedgerService, createGrpcTransport({ baseUrl: bench.server.grpcUrl, interceptors: [auth] }));
  const admin = createClient(AdminService, createGrpcTransport({ baseUrl: bench.server.grpcUrl, interceptors: [auth] }));
  await admin.createCreditType({ creditType: { creditTypeId: "c", displayName: "C", scale: 0 }, requestId: randomUUID() });
  await admin.createFeature({ feature: { featureKey: "chat", displayName: "Chat", creditTypeId: "c", burnRate: 1n }, requestId: randomUUID() });
  const customers = Array.from({ length: 100 }, (_, i) => `sdk-bench-${i}`);
  for (const customerId of customers) await raw.grant({ customerId, creditTypeId: "c", amount: 1_000_000_000n, source: GrantSource.PURCHASE, reasonCode: "bench", requestId: randomUUID() });
  const sdk = createBurndownClient({ baseUrl: bench.server.grpcUrl, apiKey: bench.token });
  const pick = (i: number) => customers[i % customers.length];

  const rawCall = async (i: number) => {
    const { reservation } = await raw.reserve({ customerId: pick(i), cost: { case: "usage", value: { featureKey: "chat", quantity: 1n } }, requestId: randomUUID() });
    await raw.commit({ reservationId: reservation!.reservationId, amount: reservation!.amount, requestId: randomUUID() });
  };
  const sdkCall = (i: number) => sdk.withCredits({ customerId: pick(i), featureKey: "chat", quantity: 1n }, async () => undefined);
  const timings = { raw: [] as number[], sdk: [] as number[] };
  // Client CPU is the SDK's real cost: the server runs in another process.
  const cpuUs = { raw: 0, sdk: 0 };
  for (let i = 0; i < 50; i++) {
    await rawCall(i);
    await sdkCall(i);
  }
  for (let round = 0; round < rounds; round++) {
    for (const [name, call] of [["raw", rawCall], ["sdk", sdkCall]] as const) {
      const cpu0 = process.cpuUsage();
      for (let i = 0; i < callsPerRound; i++) {
        const t0 = performance.now();
        await call(i);
        timings[name].push(performance.now() - t0);
      }
      const cpu = process.cpuUsage(cpu0);
      cpuUs[name] += cpu.user + cpu.system;
    }
  }
  const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

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
  await sdk.close();

  const overheadUs = (median(timings.sdk) - median(timings.raw)) * 1000;
  console.log(`\nSDK vs raw generated client over gRPC, one caller, ${rounds} interleaved rounds of ${callsPerRound} calls each\n`);
  const calls = rounds * callsPerRound;
  console.log("| scenario | client CPU per call | median | mean | p99 |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const [name, key] of [["raw Reserve + Commit (baseline)", "raw"], ["SDK withCredits", "sdk"]] as const) {
    const xs = timings[key];
    const sorted = [...xs].sort((a, b) => a - b);
    console.log(`| ${name} | ${(cpuUs[key] / calls).toFixed(0)} µs | ${median(xs).toFixed(3)} ms | ${mean(xs).toFixed(3)} ms | ${percentile(sorted, 99).toFixed(3)} ms |`);
  }
  const cpuOverheadUs = (cpuUs.sdk - cpuUs.raw) / calls;
  console.log(`\nwithCredits overhead: ${cpuOverheadUs.toFixed(0)} µs of client CPU per call (target < 50 µs); wall-clock median difference ${overheadUs.toFixed(0)} µs (noise on a shared machine)\n`);
  console.log("| usage reporting | events | events/s | × baseline |");
  console.log("| --- | ---: | ---: | ---: |");
  const rawRate = eventsCount / rawBatchSeconds;
  console.log(`| raw ReportUsage, batches of ${batchSize}, one at a time (baseline) | ${eventsCount} | ${Math.round(rawRate)} | 1.0 |`);
  console.log(`| SDK reportUsage + flush (background batching) | ${eventsCount} | ${Math.round(eventsCount / sdkBatchSeconds)} | ${(eventsCount / sdkBatchSeconds / rawRate).toFixed(2)} |`);
} finally {
  await bench.stop();
}
