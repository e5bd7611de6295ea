// gRPC transports side by side: one server, the same calls, served by connect-node on h2c
// (GRPC_PORT until grpc-js replaced it) and by grpc-js through rpc/grpc-js-server.ts
// (GRPC_PORT now), with a bare grpc-js server calling the same Check implementation as the floor.
// The calls: the gRPC health Check (no key, a cached probe) and an authenticated GetBalance
// against a real database. Load comes from h2load (Debian's nghttp2-client), another
// process, so this process's CPU is the servers' alone. Every answer is checked by its
// size: an error (trailers only, no data) fails the run. Each round runs the targets in a
// rotated order; the machine is shared and noisy, so compare the per-round ratios.
//   npx tsx bench/grpc-transport.ts [--quick] [--rounds <n>] [--seconds <s>]
import { execFile, execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { create, type DescMessage, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient, type HandlerContext } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService, GetBalanceRequestSchema, GrantSource, LedgerService } from "@burndown/sdk";
import * as grpc from "@grpc/grpc-js";
import type pg from "pg";
import { type HealthCheckRequest, type HealthCheckResponse, HealthService, healthService, ServingStatus } from "../server/src/rpc/health.js";
import { startServer } from "../server/src/server.js";
import { bootstrapAdminKey, newApiKeyToken } from "../server/src/service/api-keys.js";
import { createPool } from "../server/src/store/database.js";
import { migrate } from "../server/src/store/migrations.js";
import { bearer } from "../test-support/bearer.js";
import { benchDatabase, percentile } from "./bench-server.js";

const argValue = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const quick = process.argv.includes("--quick");
const rounds = Number(argValue("--rounds") ?? (quick ? 2 : 5));
const runSeconds = Number(argValue("--seconds") ?? (quick ? 1.5 : 3));
const load = { connections: 16, streamsPerConnection: 8 };
const run = promisify(execFile);

/** Target is one listener serving one RPC. */
interface Target {
  name: string;
  url: string;
  path: string;
  bodyFile: string;
  /** bytes of DATA in one successful answer: its gRPC frame. */
  answerBytes: number;
  token?: string;
  /** calls per run, calibrated for about runSeconds. */
  calls: number;
}

/** Measure is one run of h2load against a target. */
interface Measure {
  callsPerSecond: number;
  cpuMicrosPerCall: number;
}

function frame(desc: DescMessage, init: Record<string, unknown>): Uint8Array {
  const payload = toBinary(desc, create(desc, init));
  const out = new Uint8Array(5 + payload.byteLength);
  new DataView(out.buffer).setUint32(1, payload.byteLength);
  out.set(payload, 5);
  return out;
}

async function listenH2c(server: http2.Http2Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

/**
 * bareGrpcJs is grpc-js with protobuf-es serializers calling the server's own Check
 * implementation (the same cached database probe) directly: no adapter, no interceptors.
 * What the adapter costs is the difference.
 */
async function bareGrpcJs(pool: pg.Pool): Promise<{ url: string; server: grpc.Server }> {
  const { input, output } = HealthService.method.check;
  const health = healthService(pool, [LedgerService, AdminService]);
  const server = new grpc.Server();
  server.register(
    "/grpc.health.v1.Health/Check",
    (call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, callback: grpc.sendUnaryData<HealthCheckResponse>) => {
      Promise.resolve(health.check(call.request, {} as HandlerContext)).then(
        (answer) => callback(null, create(output, answer)),
        (error: unknown) => callback({ code: grpc.status.INTERNAL, details: String(error) }),
      );
    },
    (value: HealthCheckResponse) => Buffer.from(toBinary(output, value)),
    (bytes: Buffer) => fromBinary(input, bytes),
    "unary",
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return { url: `http://127.0.0.1:${port}`, server };
}

/** h2load runs calls against a target and returns what it measured, failing on any answer that is not a success. */
async function h2load(target: Target, calls: number): Promise<Measure> {
  const headers = ["-H", "content-type: application/grpc", "-H", "te: trailers", ...(target.token ? ["-H", `authorization: Bearer ${target.token}`] : [])];
  const args = ["-n", String(calls), "-c", String(load.connections), "-m", String(load.streamsPerConnection), "-d", target.bodyFile, ...headers, `${target.url}${target.path}`];
  const cpuBefore = process.cpuUsage();
  const { stdout } = await run("h2load", args, { maxBuffer: 1 << 20 });
  const cpu = process.cpuUsage(cpuBefore);
  const succeeded = Number(/(\d+) succeeded/.exec(stdout)?.[1]);
  const dataBytes = Number(/\((\d+)\) data/.exec(stdout)?.[1]);
  const perSecond = Number(/finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(stdout)?.[1]);
  if (succeeded !== calls || dataBytes !== calls * target.answerBytes || !(perSecond > 0)) {
    throw new Error(`${target.name}: ${succeeded}/${calls} succeeded, ${dataBytes} bytes of answers where ${calls * target.answerBytes} were due:\n${stdout}`);
  }
  return { callsPerSecond: perSecond, cpuMicrosPerCall: (cpu.user + cpu.system) / calls };
}

function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/** targetsOf seeds a customer and returns the targets, grouped by RPC, connect-node first, then the adapter. */
async function targetsOf(urls: { h2c: string; grpcJs: string; bare: string }, token: string, dir: string): Promise<Target[][]> {
  const transport = createGrpcTransport({ baseUrl: urls.grpcJs, interceptors: [bearer(token)] });
  await createClient(AdminService, transport).createCreditType({ creditType: { creditTypeId: "credits", displayName: "Credits", scale: 0 }, requestId: randomUUID() });
  const ledger = createClient(LedgerService, transport);
  await ledger.grant({ customerId: "bench", creditTypeId: "credits", amount: 1_000n, source: GrantSource.PURCHASE, reasonCode: "bench", requestId: randomUUID() });
  const balance = await ledger.getBalance({ customerId: "bench", creditTypeId: "credits" });
  const { input, output } = HealthService.method.check;
  const checkFile = path.join(dir, "check.bin");
  writeFileSync(checkFile, frame(input, { service: "" }));
  const balanceFile = path.join(dir, "get-balance.bin");
  writeFileSync(balanceFile, frame(GetBalanceRequestSchema, { customerId: "bench", creditTypeId: "credits" }));
  const checkBytes = 5 + toBinary(output, create(output, { status: ServingStatus.SERVING })).byteLength;
  const check = { path: "/grpc.health.v1.Health/Check", bodyFile: checkFile, answerBytes: checkBytes, calls: 0 };
  const balanceBytes = 5 + toBinary(LedgerService.method.getBalance.output, balance).byteLength;
  const getBalance = { path: "/burndown.v1.LedgerService/GetBalance", bodyFile: balanceFile, answerBytes: balanceBytes, token, calls: 0 };
  return [
    [
      { name: "Check connect-node h2c", url: urls.h2c, ...check },
      { name: "Check grpc-js adapter", url: urls.grpcJs, ...check },
      { name: "Check bare grpc-js", url: urls.bare, ...check },
    ],
    [
      { name: "GetBalance connect-node h2c", url: urls.h2c, ...getBalance },
      { name: "GetBalance grpc-js adapter", url: urls.grpcJs, ...getBalance },
    ],
  ];
}

/** measureRounds warms each target up, sizes its runs to about runSeconds, and runs the rounds, each group in a rotated order. */
async function measureRounds(groups: Target[][]): Promise<Map<string, Measure[]>> {
  for (const target of groups.flat()) {
    const warm = await h2load(target, 4_000);
    target.calls = Math.max(2_000, Math.round((warm.callsPerSecond * runSeconds) / 1_000) * 1_000);
  }
  const results = new Map<string, Measure[]>(groups.flat().map((target) => [target.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const group of groups) {
      const order = group.map((_, i) => group[(i + round) % group.length]);
      for (const target of order) results.get(target.name)!.push(await h2load(target, target.calls));
    }
    process.stderr.write(`round ${round + 1}/${rounds} done\n`);
  }
  return results;
}

/** report prints each target's medians and every round's figures, then the per-round ratios. */
function report(groups: Target[][], results: Map<string, Measure[]>): void {
  console.log(`h2load, ${load.connections} connections x ${load.streamsPerConnection} streams, ${rounds} rounds of about ${runSeconds} s per target; CPU is this process's (all servers), per call`);
  const range = (values: number[]) => `median ${median(values).toFixed(2)}x, ${Math.min(...values).toFixed(2)}-${Math.max(...values).toFixed(2)}x`;
  for (const group of groups) {
    const [old, adapter, bare] = group.map((target) => results.get(target.name)!);
    for (const target of group) {
      const measures = results.get(target.name)!;
      const perSecond = measures.map((m) => m.callsPerSecond);
      const micros = measures.map((m) => m.cpuMicrosPerCall);
      const line = `${target.name.padEnd(28)} ${median(perSecond).toFixed(0).padStart(7)} calls/s  ${median(micros).toFixed(0).padStart(5)} µs CPU/call`;
      console.log(`${line}  (calls/s ${perSecond.map((v) => v.toFixed(0)).join(", ")}; µs ${micros.map((v) => v.toFixed(0)).join(", ")})`);
    }
    const throughput = old.map((m, i) => adapter[i].callsPerSecond / m.callsPerSecond);
    const cpu = old.map((m, i) => m.cpuMicrosPerCall / adapter[i].cpuMicrosPerCall);
    console.log(`  grpc-js adapter vs connect-node, per round: calls/s ${range(throughput)}; CPU per call ${range(cpu)} less`);
    if (bare !== undefined) {
      const overhead = adapter.map((m, i) => m.cpuMicrosPerCall - bare[i].cpuMicrosPerCall);
      console.log(`  adapter over bare grpc-js, per round: ${median(overhead).toFixed(0)} µs CPU per call (${overhead.map((v) => v.toFixed(0)).join(", ")})`);
    }
  }
}

try {
  execFileSync("h2load", ["--version"], { stdio: "ignore" });
} catch (error) {
  throw new Error(`h2load is missing: apt-get install -y nghttp2-client (${String(error)})`);
}
const db = await benchDatabase();
const owner = createPool(db.url, 2);
await migrate(owner);
await owner.end();
const pool = createPool(db.url);
const server = await startServer({ pool, host: "127.0.0.1", httpPort: 0, grpcPort: 0, jobIntervalMs: 0, log: (message) => process.stderr.write(`server: ${message}\n`) });
// The old GRPC_PORT: the same Connect handler the HTTP/1.1 listener uses, on h2c.
const h2c = http2.createServer(server.connectHandler);
const h2cUrl = `http://127.0.0.1:${await listenH2c(h2c)}`;
const bare = await bareGrpcJs(pool);
const dir = mkdtempSync(path.join(os.tmpdir(), "burndown-grpc-bench-"));
try {
  const token = newApiKeyToken();
  await bootstrapAdminKey(server.deps, token);
  const groups = await targetsOf({ h2c: h2cUrl, grpcJs: server.grpcUrl, bare: bare.url }, token, dir);
  report(groups, await measureRounds(groups));
} finally {
  rmSync(dir, { recursive: true, force: true });
  bare.server.forceShutdown();
  await new Promise((resolve) => h2c.close(resolve));
  await server.close();
  await pool.end();
  await db.stop();
}
