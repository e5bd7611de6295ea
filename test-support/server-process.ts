// A Burndown server in a child process, started the way `npm start` starts it, for tests
// that need several replicas or a server they can kill.
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import readline from "node:readline";

/** ServerProcess is a running child server. */
export interface ServerProcess {
  child: ChildProcess;
  httpUrl: string;
  grpcUrl: string;
  /** lines the process printed, for failure messages. */
  output: string[];
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

const root = path.resolve(import.meta.dirname, "..");

/**
 * startServerProcess runs server/src/main.ts with env (and node flags) and waits for its
 * "listening" line. nodeArgs "npm" runs the README's `npm start` instead, as a process
 * manager would: the child is the npm process.
 */
export async function startServerProcess(env: Record<string, string>, startTimeoutMs = 60_000, nodeArgs: string[] | "npm" = []): Promise<ServerProcess> {
  const [command, args] = nodeArgs === "npm" ? ["npm", ["start"]] : [process.execPath, [...nodeArgs, "--import", "tsx", "server/src/main.ts"]];
  const child = spawn(command, args, {
    cwd: root,
    env: { ...process.env, PORT: "0", GRPC_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  readline.createInterface({ input: child.stderr! }).on("line", (line) => output.push(line));
  const listening = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${startTimeoutMs} ms:\n${output.join("\n")}`)), startTimeoutMs);
    readline.createInterface({ input: child.stdout! }).on("line", (line) => {
      output.push(line);
      if (line.startsWith("listening ")) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${output.join("\n")}`));
    });
  });
  const match = /http=(\S+) grpc=(\S+)/.exec(listening)!;
  return {
    child,
    httpUrl: match[1],
    grpcUrl: match[2],
    output,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
