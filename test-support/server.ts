// A real server on real PostgreSQL for one test file, on free ports, with typed clients.
import { type DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { bearer } from "./bearer.js";
import { AdminService, BillingService, CorrectionService, FinanceService, LedgerService, PlanService, PoolService, PromotionService, Role, SupportService, WebhookService } from "@burndown/sdk";
import type { Fanout } from "../server/src/fanout.js";
import type { AdmissionLimits } from "../server/src/rpc/admission.js";
import { type RunningServer, type ServerOptions, startServer } from "../server/src/server.js";
import { bootstrapAdminKey, newApiKeyToken } from "../server/src/service/api-keys.js";
import { seedReasonCodeList } from "../server/src/service/reason-codes.js";
import { createTestDatabase, type TestDatabase } from "./database.js";

/** FakeClock is a clock tests move by hand. */
export class FakeClock {
  constructor(public ms = Date.parse("2030-01-01T00:00:00Z")) {}
  now = (): Date => new Date(this.ms);
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** Clients are typed clients for every service with one API key. */
export interface Clients {
  ledger: Client<typeof LedgerService>;
  admin: Client<typeof AdminService>;
  billing: Client<typeof BillingService>;
  webhooks: Client<typeof WebhookService>;
  promotions: Client<typeof PromotionService>;
  plans: Client<typeof PlanService>;
  pools: Client<typeof PoolService>;
  corrections: Client<typeof CorrectionService>;
  finance: Client<typeof FinanceService>;
  support: Client<typeof SupportService>;
}

/** TestServer is a running server with its database and an admin key. */
export interface TestServer {
  server: RunningServer;
  database: TestDatabase;
  adminToken: string;
  clock: FakeClock | null;
  /** clients for a token (or none), over Connect (HTTP/1.1) by default or gRPC (h2c). */
  clients: (token: string | null, protocol?: "connect" | "grpc") => Clients;
  /** createKey makes an API key of a role and returns its token. */
  createKey: (role: "service" | "support" | "admin" | "finance", grantLimit?: bigint) => Promise<string>;
  /** startReplica starts another server on the same database (another replica), closed with this one. */
  startReplica: () => Promise<RunningServer>;
  close: () => Promise<void>;
}


const roles = { service: Role.SERVICE, support: Role.SUPPORT, admin: Role.ADMIN, finance: Role.FINANCE };

/** startTestServer starts a server on a fresh database; with a clock, time is fake and jobs are off. */
export async function startTestServer(
  options: {
    clock?: FakeClock;
    jobIntervalMs?: number;
    admission?: Partial<AdmissionLimits>;
    fanout?: Fanout;
    writes?: ServerOptions["writes"];
    grantReasonCodes?: ServerOptions["grantReasonCodes"];
    grantRequestTtlMs?: ServerOptions["grantRequestTtlMs"];
    stripeWebhookSecret?: ServerOptions["stripeWebhookSecret"];
    webhooks?: ServerOptions["webhooks"];
    checkoutUrl?: ServerOptions["checkoutUrl"];
    disputeSla?: ServerOptions["disputeSla"];
    logger?: ServerOptions["logger"];
    corsOrigins?: ServerOptions["corsOrigins"];
  } = {},
): Promise<TestServer> {
  const database = await createTestDatabase();
  const start = () => startServer({
    // The server's own privileges, as in production: a statement needing more fails the test.
    pool: database.serverPool,
    host: "127.0.0.1",
    httpPort: 0,
    grpcPort: 0,
    jobIntervalMs: options.jobIntervalMs ?? 0,
    now: options.clock?.now,
    admission: options.admission,
    fanout: options.fanout,
    writes: options.writes,
    grantReasonCodes: options.grantReasonCodes,
    grantRequestTtlMs: options.grantRequestTtlMs,
    stripeWebhookSecret: options.stripeWebhookSecret,
    webhooks: options.webhooks,
    checkoutUrl: options.checkoutUrl,
    disputeSla: options.disputeSla,
    logger: options.logger,
    corsOrigins: options.corsOrigins,
    // BURNDOWN_TEST_LOG=1 shows server logs (internal errors with stacks) while debugging.
    log: process.env.BURNDOWN_TEST_LOG ? (message) => console.error(message) : () => {},
  });
  const server = await start();
  const replicas: RunningServer[] = [];
  const adminToken = newApiKeyToken();
  await bootstrapAdminKey(server.deps, adminToken);
  await seedReasonCodeList(server.deps.pool, server.deps.grantReasonCodes);
  const transports = new Map<string, Transport>();
  const clients = (token: string | null, protocol: "connect" | "grpc" = "connect"): Clients => {
    const interceptors = token === null ? [] : [bearer(token)];
    const transport =
      protocol === "grpc"
        ? createGrpcTransport({ baseUrl: server.grpcUrl, interceptors })
        : createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors });
    transports.set(`${protocol}:${token}`, transport);
    return {
      ledger: createClient(LedgerService as DescService as typeof LedgerService, transport),
      admin: createClient(AdminService, transport),
      billing: createClient(BillingService, transport),
      webhooks: createClient(WebhookService, transport),
      promotions: createClient(PromotionService, transport),
      plans: createClient(PlanService, transport),
      pools: createClient(PoolService, transport),
      corrections: createClient(CorrectionService, transport),
      finance: createClient(FinanceService, transport),
      support: createClient(SupportService, transport),
    };
  };
  let keyCount = 0;
  const createKey = async (role: "service" | "support" | "admin" | "finance", grantLimit = 0n) => {
    const response = await clients(adminToken).admin.createApiKey({ name: `${role} key`, role: roles[role], grantLimit, requestId: `test-key-${++keyCount}-${Date.now()}` });
    return response.token;
  };
  return {
    server,
    database,
    adminToken,
    clock: options.clock ?? null,
    clients,
    createKey,
    startReplica: async () => {
      const replica = await start();
      replicas.push(replica);
      return replica;
    },
    close: async () => {
      await Promise.all(replicas.map((replica) => replica.close()));
      await server.close();
      await database.drop();
    },
  };
}
