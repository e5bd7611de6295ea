// Builds admin-ui/dist when it is missing or older than its sources (the UI's own files,
// the generated contract and the lockfile), so `npm start` on a fresh clone serves the UI
// without a separate step and without built bundles in git. --force builds regardless.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const repo = path.resolve(root, "..");
const stamp = path.join(root, "dist", ".built");

/** newestMtime is the latest modification time of any file under the paths. */
function newestMtime(paths) {
  let newest = 0;
  const visit = (entry) => {
    if (!existsSync(entry)) return;
    const stat = statSync(entry);
    if (stat.isDirectory()) {
      for (const name of readdirSync(entry)) if (name !== "node_modules" && name !== "dist") visit(path.join(entry, name));
    } else newest = Math.max(newest, stat.mtimeMs);
  };
  for (const entry of paths) visit(entry);
  return newest;
}

const sources = [path.join(root, "src"), path.join(root, "index.html"), path.join(root, "vite.config.ts"), path.join(repo, "sdk/src/gen"), path.join(repo, "package-lock.json")];
const force = process.argv.includes("--force");
const builtAt = existsSync(stamp) ? Number(readFileSync(stamp, "utf8")) : 0;
if (!force && builtAt >= newestMtime(sources)) process.exit(0);

const started = performance.now();
process.stderr.write("burndown: building the admin UI...\n");
const { build } = await import("vite");
try {
  await build({ configFile: path.join(root, "vite.config.ts"), logLevel: "warn" });
} catch (error) {
  process.stderr.write(`burndown: the admin UI did not build: ${error?.message ?? error}\n`);
  process.exit(1);
}
writeFileSync(stamp, String(Date.now()));
process.stderr.write(`burndown: admin UI built in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
