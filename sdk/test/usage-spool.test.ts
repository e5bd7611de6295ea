// The spool keeps every acknowledged event across crashes, replaces an event by id,
// forgets acknowledged ones, and refuses past its bounds.
import { spawn } from "node:child_process";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { SpoolFullError, type SpooledEvent, UsageSpool } from "../src/usage-spool.js";

const directories: string[] = [];
afterAll(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

async function spoolPath(): Promise<string> {
  const directory = await mkdtemp(path.join(os.tmpdir(), "burndown-spool-"));
  directories.push(directory);
  return path.join(directory, "usage.spool");
}

const event = (eventId: string, quantity = "1"): SpooledEvent => ({ eventId, customerId: "c", featureKey: "f", quantity, eventTimeMs: 1_700_000_000_000 });
const bounds = { bytesMax: 1_000_000, eventsMax: 1_000 };

describe("UsageSpool", () => {
  it("keeps appended events across a reopen, the last record of an event id winning", async () => {
    const file = await spoolPath();
    const spool = new UsageSpool(file, bounds);
    await spool.open();
    await spool.append(event("a", "1"));
    await spool.append(event("b", "2"));
    await spool.append(event("a", "5"));
    await spool.close();
    const again = new UsageSpool(file, bounds);
    await again.open();
    expect(again.pending().map((e) => [e.eventId, e.quantity])).toEqual([["a", "5"], ["b", "2"]]);
    await again.close();
  });

  it("forgets acknowledged events, and compacts the file once nothing is pending", async () => {
    const file = await spoolPath();
    const spool = new UsageSpool(file, bounds);
    await spool.open();
    for (const id of ["a", "b", "c"]) await spool.append(event(id));
    await spool.acknowledge(["a"]);
    expect(spool.pending().map((e) => e.eventId)).toEqual(["b", "c"]);
    await spool.acknowledge(["b", "c"]);
    expect((await stat(file)).size).toBe(0);
    await spool.append(event("d"));
    await spool.close();
    const again = new UsageSpool(file, bounds);
    await again.open();
    expect(again.pending().map((e) => e.eventId)).toEqual(["d"]);
    await again.close();
  });

  it("ignores a torn last line (a crash mid-append) but refuses a corrupt earlier one", async () => {
    const torn = await spoolPath();
    await writeFile(torn, `${JSON.stringify({ e: event("a") })}\n{"e":{"eventId":"b","cus`);
    const spool = new UsageSpool(torn, bounds);
    await spool.open();
    expect(spool.pending().map((e) => e.eventId)).toEqual(["a"]);
    await spool.close();
    const corrupt = await spoolPath();
    await writeFile(corrupt, `garbage\n${JSON.stringify({ e: event("a") })}\n`);
    await expect(new UsageSpool(corrupt, bounds).open()).rejects.toThrow(/corrupt at line 1/);
  });

  it.each([
    { name: "more events than eventsMax", limits: { bytesMax: 1_000_000, eventsMax: 2 } },
    { name: "more bytes than bytesMax", limits: { bytesMax: 250, eventsMax: 1_000 } },
  ])("refuses $name with SpoolFullError and writes nothing", async ({ limits }) => {
    const file = await spoolPath();
    const spool = new UsageSpool(file, limits);
    await spool.open();
    await spool.append(event("a"));
    await spool.append(event("b"));
    const size = (await stat(file)).size;
    await expect(spool.append(event("c"))).rejects.toBeInstanceOf(SpoolFullError);
    expect((await stat(file)).size).toBe(size);
    expect(spool.size).toBe(2);
    await spool.close();
  });

  it("loses no acknowledged event when its process is killed mid-stream", async () => {
    const file = await spoolPath();
    const script = path.join(path.dirname(file), "writer.mts");
    await writeFile(script, `
      import { UsageSpool } from ${JSON.stringify(path.resolve(import.meta.dirname, "../src/usage-spool.ts"))};
      const spool = new UsageSpool(${JSON.stringify(file)}, { bytesMax: 10_000_000, eventsMax: 100_000 });
      await spool.open();
      for (let i = 0; ; i++) {
        await spool.append({ eventId: "e" + i, customerId: "c", featureKey: "f", quantity: "1", eventTimeMs: 0 });
        process.stdout.write("ok e" + i + "\\n");
      }
    `);
    const child = spawn(process.execPath, ["--import", "tsx", script], { stdio: ["ignore", "pipe", "inherit"] });
    const acknowledged: string[] = [];
    await new Promise<void>((resolve) => {
      readline.createInterface({ input: child.stdout! }).on("line", (line) => {
        acknowledged.push(line.slice(3));
        if (acknowledged.length === 200) child.kill("SIGKILL");
      });
      child.once("exit", () => resolve());
    });
    const spool = new UsageSpool(file, bounds);
    await spool.open();
    const kept = new Set(spool.pending().map((e) => e.eventId));
    expect(acknowledged.length).toBeGreaterThanOrEqual(200);
    expect(acknowledged.filter((id) => !kept.has(id))).toEqual([]);
    await spool.close();
  });
});
