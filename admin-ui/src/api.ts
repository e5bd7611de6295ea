// The UI talks to the server only through the public RPCs, on the same origin, with the
// signed-in person's own API key: no private API. The key lives in sessionStorage (gone
// when the tab closes) unless a host page hands one in (the embeddable view).
import { createConnectTransport } from "@connectrpc/connect-web";
import { Code, ConnectError, type Interceptor, type Transport } from "@connectrpc/connect";
import { QueryClient } from "@tanstack/react-query";

const storageKey = "burndown.apiKey";

export function storedKey(): string | null {
  try {
    return sessionStorage.getItem(storageKey);
  } catch {
    return null;
  }
}

export function storeKey(key: string | null): void {
  try {
    if (key === null) sessionStorage.removeItem(storageKey);
    else sessionStorage.setItem(storageKey, key);
  } catch {
    // storage may be off (a sandboxed iframe): the key then lives in memory only.
  }
}

/** transportFor speaks Connect (JSON) to baseUrl with the key as a bearer token. */
export function transportFor(apiKey: string, baseUrl = window.location.origin): Transport {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${apiKey}`);
    return next(req);
  };
  // JSON keeps int64 as strings on the wire; the generated types give bigint to the screens.
  return createConnectTransport({ baseUrl, interceptors: [bearer], useBinaryFormat: false });
}

/** newRequestId is a request id for one submission of a form (kept across its retries). */
export function newRequestId(): string {
  // randomUUID needs a secure context; a deployment served over plain HTTP on an internal
  // host is not one, so build a v4 UUID from getRandomValues, which works everywhere.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * newQueryClient: balances are never stale for long (refetch on focus, and after every
 * mutation: see mutations.ts). A read is retried once, and only when the failure is
 * transient: a refusal (no permission, not found) is shown at once.
 */
export function newQueryClient(): QueryClient {
  const transient = new Set([Code.Unavailable, Code.ResourceExhausted, Code.DeadlineExceeded, Code.Aborted]);
  return new QueryClient({
    defaultOptions: {
      queries: { refetchOnWindowFocus: true, staleTime: 5_000, retry: (failures, error) => failures < 1 && transient.has(ConnectError.from(error).code) },
    },
  });
}
