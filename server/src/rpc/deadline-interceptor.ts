// The caller's timeout, as the protocols send it (gRPC and gRPC-Web: grpc-timeout;
// Connect: connect-timeout-ms), becomes the call's deadline for everything under it
// (deadline.ts): the admission queue, the wait for a database connection and each
// statement end early enough for the caller to receive a real answer (OVERLOADED,
// DATABASE_UNAVAILABLE) instead of its own timer firing on a call still waiting.
import type { Interceptor } from "@connectrpc/connect";
import { answerBudgetMs, withDeadline } from "../deadline.js";
import { publicMethods } from "./interceptors.js";

const grpcUnitsMs: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 };

/**
 * timeoutMsOf reads a call's timeout from its headers, or undefined when it has none.
 * A malformed header is connect-es's to refuse; here it counts as none.
 */
export function timeoutMsOf(header: Headers): number | undefined {
  const grpc = header.get("grpc-timeout");
  if (grpc !== null) {
    const match = /^(\d{1,8})([HMSmun])$/.exec(grpc);
    return match === null ? undefined : Number(match[1]) * grpcUnitsMs[match[2]];
  }
  const connect = header.get("connect-timeout-ms");
  if (connect !== null) return /^\d{1,10}$/.test(connect) ? Number(connect) : undefined;
  return undefined;
}

/** deadlineInterceptor runs each call (but health and reflection) under its caller's deadline. */
export function deadlineInterceptor(): Interceptor {
  return (next) => (req) => {
    if (publicMethods.has(`${req.service.typeName}/${req.method.name}`)) return next(req);
    const timeoutMs = timeoutMsOf(req.header);
    if (timeoutMs === undefined) return next(req);
    return withDeadline(Date.now() + answerBudgetMs(timeoutMs), () => next(req));
  };
}
