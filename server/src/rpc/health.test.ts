// The health service in memory: Check and Watch over a probe the test controls, the
// shared probe cache, and the database probe's timeout. The real server, the upstream
// health.proto and an unreachable database are in server/test/polyglot.test.ts.
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { AdminService, errorInfoOf, LedgerService } from "@burndown/sdk";
import { describe, expect, it } from "vitest";
import { cachedProbe, databaseProbe, type HealthOptions, HealthService, healthHandlers, ServingStatus } from "./health.js";
import { errorInterceptor } from "./interceptors.js";

/** healthClient serves the health service in memory, with the server's error interceptor. */
function healthClient(options: Partial<HealthOptions> & { probe: HealthOptions["probe"] }) {
  const transport = createRouterTransport(
    (router) => router.service(HealthService, healthHandlers({ services: [LedgerService, AdminService], watchIntervalMs: 1, ...options })),
    { router: { interceptors: [errorInterceptor(() => {})] } },
  );
  return createClient(HealthService, transport);
}

async function connectErrorOf(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("expected the call to fail");
}

describe("Check", () => {
  it("answers SERVING for the server and each service while the probe is up, NOT_SERVING while it is down", async () => {
    let up = true;
    const health = healthClient({ probe: async () => up });
    for (const service of ["", "burndown.v1.LedgerService", "burndown.v1.AdminService"]) {
      expect((await health.check({ service })).status, service).toBe(ServingStatus.SERVING);
    }
    up = false;
    expect((await health.check({ service: "" })).status).toBe(ServingStatus.NOT_SERVING);
    expect((await health.check({ service: "burndown.v1.LedgerService" })).status).toBe(ServingStatus.NOT_SERVING);
  });

  it("fails an unknown service with NOT_FOUND and reason SERVICE_NOT_FOUND, whatever the probe says", async () => {
    const health = healthClient({ probe: async () => true });
    const error = await connectErrorOf(health.check({ service: "burndown.v1.NoSuchService" }));
    expect(error.code).toBe(Code.NotFound);
    expect(errorInfoOf(error)?.reason).toBe("SERVICE_NOT_FOUND");
  });
});

describe("Watch", () => {
  it("sends the status at once, then again only when it changes", async () => {
    let up = true;
    const health = healthClient({ probe: async () => up });
    const stop = new AbortController();
    const stream = health.watch({ service: "burndown.v1.LedgerService" }, { signal: stop.signal })[Symbol.asyncIterator]();
    expect((await stream.next()).value?.status).toBe(ServingStatus.SERVING);
    up = false;
    expect((await stream.next()).value?.status).toBe(ServingStatus.NOT_SERVING);
    up = true;
    expect((await stream.next()).value?.status).toBe(ServingStatus.SERVING);
    stop.abort();
  });

  it("sends SERVICE_UNKNOWN for an unknown service instead of failing", async () => {
    const health = healthClient({ probe: async () => true });
    const stop = new AbortController();
    const stream = health.watch({ service: "burndown.v1.NoSuchService" }, { signal: stop.signal })[Symbol.asyncIterator]();
    expect((await stream.next()).value?.status).toBe(ServingStatus.SERVICE_UNKNOWN);
    stop.abort();
  });

  it("refuses a watch beyond watchersMax with RESOURCE_EXHAUSTED and reason TOO_MANY_WATCHERS", async () => {
    const health = healthClient({ probe: async () => true, watchersMax: 1 });
    const stop = new AbortController();
    const first = health.watch({ service: "" }, { signal: stop.signal })[Symbol.asyncIterator]();
    expect((await first.next()).value?.status).toBe(ServingStatus.SERVING);
    const error = await connectErrorOf(health.watch({ service: "" })[Symbol.asyncIterator]().next());
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(errorInfoOf(error)?.reason).toBe("TOO_MANY_WATCHERS");
    stop.abort();
  });
});

describe("cachedProbe", () => {
  it("runs one probe for concurrent callers and reuses its answer until ttlMs has passed", async () => {
    let nowMs = 0;
    let runs = 0;
    let release: (up: boolean) => void = () => {};
    const probe = cachedProbe(() => {
      runs++;
      return new Promise<boolean>((resolve) => (release = resolve));
    }, 1_000, () => nowMs);
    const concurrent = [probe(), probe(), probe()];
    release(false);
    expect(await Promise.all(concurrent)).toEqual([false, false, false]);
    nowMs = 999;
    expect(await probe()).toBe(false);
    expect(runs).toBe(1);
    nowMs = 1_000;
    const again = probe();
    release(true);
    expect(await again).toBe(true);
    expect(runs).toBe(2);
  });

  it("counts a probe that throws as down", async () => {
    const probe = cachedProbe(() => Promise.reject(new Error("boom")), 0);
    expect(await probe()).toBe(false);
  });
});

describe("databaseProbe", () => {
  const rowsOf = (count: number) => ({ rows: Array.from({ length: count }, () => ({ up: 1 })) });

  it("is up when select 1 answers", async () => {
    expect(await databaseProbe({ query: (async () => rowsOf(1)) as never }, 1_000)()).toBe(true);
  });

  it("is down when the query fails", async () => {
    expect(await databaseProbe({ query: (async () => Promise.reject(new Error("ECONNREFUSED"))) as never }, 1_000)()).toBe(false);
  });

  it("is down when the query does not answer within the timeout", async () => {
    const never = () => new Promise(() => {});
    expect(await databaseProbe({ query: never as never }, 5)()).toBe(false);
  });
});
