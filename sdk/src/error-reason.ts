// Reading the ErrorInfo of a Connect error.
import { ConnectError } from "@connectrpc/connect";
import { type ErrorInfo, ErrorInfoSchema } from "./error-info.js";

/** errorInfoOf returns the ErrorInfo detail of an error, or null when it has none. */
export function errorInfoOf(error: unknown): ErrorInfo | null {
  const connectError = ConnectError.from(error);
  const [info] = connectError.findDetails(ErrorInfoSchema) as unknown as { reason: string; domain: string; metadata: Record<string, string> }[];
  return info ? { reason: info.reason, domain: info.domain, metadata: { ...info.metadata } } : null;
}
