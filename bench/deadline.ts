// The cost of a caller's deadline on the hot path: the same Reserve + Commit pair on the
// raw generated client, with a timeout (so the server parses it, runs the call under
// it and bounds every wait and statement by it) and without, one caller at a time,
// interleaved in rounds so that this machine's noise hits both alike.
//   npx tsx bench/deadline.ts [--quick]
import { randomUUID } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService, GrantSource, LedgerService } from "@burndown/sdk";
import { bearer } from "../test-support/bearer.js";
import { percentile, startBenchServer } from "./bench-server.js";

const quick = process.argv.includes("--quick");
const rounds = quick ? 4 : 10;
const pairsPerRound = quick ? 200 : 500;

const bench = await startBenchServer();
try {
  const transport = createGrpcTransport({ baseUrl: bench.server.grpcUrl, interceptors: [bearer(bench.token)] });
  const ledger = createClient(LedgerService, transport);
  const admin = createClient(AdminService, transport);
  await admin.createCreditType({ creditType: { creditTypeId: "c", displayName: "C", scale: 0 }, requestId: randomUUID() });
  const customers = Array.from({ length: 100 }, (_, i) => `deadline-bench-${i}`);
  for (const customerId of customers) await ledger.grant({ customerId, creditTypeId: "c", amount: 1_000_000_000n, source: GrantSource.PURCHASE, reasonCode: "bench", requestId: randomUUID() });

  const pair = async (i: number, timeoutMs: number | undefined) => {
    const customerId = customers[i % customers.length];
    const { reservation } = await ledger.reserve({ customerId, cost: { case: "credits", value: { creditTypeId: "c", amount: 1n } }, requestId: randomUUID() }, { timeoutMs });
    await ledger.commit({ reservationId: reservation!.reservationId, amount: 1n, requestId: randomUUID() }, { timeoutMs });
  };
  const timings = { without: [] as number[], with: [] as number[] };
  const elapsedMs = { without: 0, with: 0 };
  for (let i = 0; i < 50; i++) await pair(i, 5_000); // warm up both paths' code
  for (let round = 0; round < rounds; round++) {
    for (const kind of round % 2 === 0 ? (["without", "with"] as const) : (["with", "without"] as const)) {
      const started = performance.now();
      for (let i = 0; i < pairsPerRound; i++) {
        const t0 = performance.now();
        await pair(i, kind === "with" ? 5_000 : undefined);
        timings[kind].push(performance.now() - t0);
      }
      elapsedMs[kind] += performance.now() - started;
    }
  }
  for (const list of Object.values(timings)) list.sort((a, b) => a - b);
  const line = (kind: "without" | "with") =>
    `${kind.padEnd(8)} ${timings[kind].length} pairs  p50 ${percentile(timings[kind], 50).toFixed(2)} ms  p99 ${percentile(timings[kind], 99).toFixed(2)} ms  ${((timings[kind].length / elapsedMs[kind]) * 1000).toFixed(0)} pairs/s`;
  console.log("Reserve + Commit, one caller, raw gRPC client, with and without a 5 s timeout (interleaved rounds)");
  console.log(line("without"));
  console.log(line("with"));
  console.log(`with / without: p50 ${(percentile(timings.with, 50) / percentile(timings.without, 50)).toFixed(3)}x, throughput ${(elapsedMs.without / elapsedMs.with).toFixed(3)}x`);
} finally {
  await bench.stop();
}
