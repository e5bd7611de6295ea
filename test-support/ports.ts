// Ports for processes a test kills and starts again on the same port.
import net from "node:net";

/**
 * quietPort finds a free loopback port below the kernel's ephemeral range (32768 and up
 * on Linux). While a killed process is down its port is free, and a port that a listener
 * on port 0 may be handed could be taken by another test's server in that gap.
 */
export async function quietPort(): Promise<number> {
  for (let tries = 0; tries < 100; tries++) {
    const candidate = 20_000 + Math.floor(Math.random() * 10_000);
    const free = await new Promise<boolean>((resolve) => {
      const probe = net.createServer();
      probe.once("error", () => resolve(false));
      probe.listen(candidate, "127.0.0.1", () => probe.close(() => resolve(true)));
    });
    if (free) return candidate;
  }
  throw new Error("quietPort: no free port in 20000-29999");
}
