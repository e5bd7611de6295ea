// An attempt interceptor that records every attempt of an SDK client, lets a test react
// when one ends (to make the "server" recover), and wait for the n-th to start.
import { type Code, ConnectError } from "@connectrpc/connect";
import type { AttemptInterceptor, CallInfo } from "@burndown/sdk";

/** AttemptRecord is one attempt as the recorder saw it; outcome is "ok", a code, or null while running. */
export interface AttemptRecord {
  call: CallInfo;
  attempt: number;
  signal: AbortSignal;
  outcome: "ok" | Code | null;
}

/** AttemptRecorder is a recording interceptor and what it recorded. */
export interface AttemptRecorder {
  interceptor: AttemptInterceptor;
  records: AttemptRecord[];
  /** untilStarted resolves once count attempts have started. */
  untilStarted: (count: number) => Promise<void>;
}

/** attemptRecorder records attempts; afterAttempt runs when each one ends. */
export function attemptRecorder(afterAttempt: (record: AttemptRecord) => void = () => {}): AttemptRecorder {
  const records: AttemptRecord[] = [];
  let watchers: (() => void)[] = [];
  const interceptor: AttemptInterceptor = (next) => async (info) => {
    const record: AttemptRecord = { call: info.call, attempt: info.attempt, signal: info.signal, outcome: null };
    records.push(record);
    for (const watcher of [...watchers]) watcher();
    try {
      const result = await next(info);
      record.outcome = "ok";
      return result;
    } catch (error) {
      record.outcome = ConnectError.from(error).code;
      throw error;
    } finally {
      afterAttempt(record);
    }
  };
  const untilStarted = (count: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (records.length < count) return;
        watchers = watchers.filter((watcher) => watcher !== check);
        resolve();
      };
      watchers.push(check);
      check();
    });
  return { interceptor, records, untilStarted };
}
