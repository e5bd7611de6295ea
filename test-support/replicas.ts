// Two server processes on one fresh database, as two replicas behind a load balancer:
// the setup of the tests that race replicas (concurrency, batch, the bank test). The
// servers run as the least-privilege role; replica 0 is reached over gRPC (h2c),
// replica 1 over Connect (HTTP/1.1), and the admin client over Connect on replica 0.
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService, LedgerService, PlanService } from "@burndown/sdk";
import { newApiKeyToken } from "../server/src/service/api-keys.js";
import { bearer } from "./bearer.js";
import { createTestDatabase, type TestDatabase } from "./database.js";
import { type ServerProcess, startServerProcess } from "./server-process.js";

/** ReplicaProcesses are two running servers on one database, with clients for both. */
export interface ReplicaProcesses {
  database: TestDatabase;
  servers: ServerProcess[];
  /** one ledger client per replica: [gRPC to replica 0, Connect to replica 1]. */
  ledgers: Client<typeof LedgerService>[];
  admin: Client<typeof AdminService>;
  /** a PlanService client on replica 1. */
  plans: Client<typeof PlanService>;
  stop: () => Promise<void>;
}

/** startReplicaProcesses starts two servers with an admin key; jobIntervalMs paces their expiry jobs, env adds to their environment. */
export async function startReplicaProcesses(options: { jobIntervalMs: number; env?: Record<string, string> }): Promise<ReplicaProcesses> {
  const database = await createTestDatabase();
  const token = newApiKeyToken();
  const env = { ...options.env, DATABASE_URL: database.serverUrl, BURNDOWN_ADMIN_KEY: token, BURNDOWN_JOB_INTERVAL_MS: String(options.jobIntervalMs) };
  let servers: ServerProcess[];
  try {
    servers = await Promise.all([startServerProcess(env), startServerProcess(env)]);
  } catch (error) {
    await database.drop();
    throw error;
  }
  const auth = bearer(token);
  return {
    database,
    servers,
    ledgers: [
      createClient(LedgerService, createGrpcTransport({ baseUrl: servers[0].grpcUrl, interceptors: [auth] })),
      createClient(LedgerService, createConnectTransport({ baseUrl: servers[1].httpUrl, httpVersion: "1.1", interceptors: [auth] })),
    ],
    admin: createClient(AdminService, createConnectTransport({ baseUrl: servers[0].httpUrl, httpVersion: "1.1", interceptors: [auth] })),
    plans: createClient(PlanService, createConnectTransport({ baseUrl: servers[1].httpUrl, httpVersion: "1.1", interceptors: [auth] })),
    stop: async () => {
      await Promise.all(servers.map((server) => server.stop()));
      await database.drop();
    },
  };
}
