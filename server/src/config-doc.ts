// `npm run docs:config`: writes README.md's configuration table from the settings in
// config.ts, so the table and what the server reads cannot drift (config.test.ts checks it).
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { renderConfigTable } from "./config.js";

export const tableStart = "<!-- configuration table: written by `npm run docs:config` from server/src/config.ts -->";
export const tableEnd = "<!-- end of configuration table -->";
export const readmePath = path.join(import.meta.dirname, "../../README.md");

/** withConfigTable puts the rendered table between the README's markers. */
export function withConfigTable(readme: string): string {
  const start = readme.indexOf(tableStart);
  const end = readme.indexOf(tableEnd);
  if (start < 0 || end < start) throw new Error(`README.md lacks the configuration table markers (${tableStart} ... ${tableEnd})`);
  return `${readme.slice(0, start + tableStart.length)}\n${renderConfigTable()}\n${readme.slice(end)}`;
}

if (process.argv[1] === import.meta.filename) {
  const readme = await readFile(readmePath, "utf8");
  await writeFile(readmePath, withConfigTable(readme));
  console.log("README.md: configuration table written");
}
