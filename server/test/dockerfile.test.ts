// The Dockerfile cannot be built on the CI machine (it has the docker client but no engine),
// so this checks what can go stale without a build: every workspace's manifest is copied
// before `npm ci` (or the install fails), every COPY source exists and is not excluded by
// .dockerignore, the base image's Node satisfies package.json's engines, and the image runs
// the command `npm start` runs.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const repo = path.resolve(import.meta.dirname, "../..");
const read = (file: string) => readFileSync(path.join(repo, file), "utf8");
const dockerfile = read("Dockerfile");
const lines = dockerfile.split("\n").filter((line) => !line.startsWith("#"));
const ignored = read(".dockerignore").split("\n").map((line) => line.trim()).filter((line) => line !== "" && !line.startsWith("#"));
const rootPackage = JSON.parse(read("package.json")) as { workspaces: string[]; engines: { node: string }; scripts: { start: string } };

/** copies are the sources of the build stage's COPY lines (not --from ones). */
const copies = lines.filter((line) => /^COPY /.test(line) && !line.includes("--from=")).flatMap((line) => line.split(/\s+/).slice(1, -1));

describe("Dockerfile", () => {
  it("copies every workspace's manifest and the lockfile before npm ci", () => {
    const install = lines.findIndex((line) => line.startsWith("RUN npm ci"));
    expect(install).toBeGreaterThan(0);
    const before = lines.slice(0, install).join("\n");
    for (const manifest of ["package.json", "package-lock.json", ...rootPackage.workspaces.map((workspace) => `${workspace}/package.json`)]) {
      expect(before, `${manifest} is not copied before npm ci`).toMatch(new RegExp(`COPY [^\\n]*\\b${manifest.replaceAll(".", "\\.")}\\b`));
    }
  });

  it("copies every workspace, and each source exists and is not excluded by .dockerignore", () => {
    for (const workspace of rootPackage.workspaces) expect(copies, `${workspace} is not copied`).toContain(workspace);
    for (const source of copies) {
      expect(existsSync(path.join(repo, source)), `${source} does not exist`).toBe(true);
      expect(ignored, `${source} is excluded by .dockerignore`).not.toContain(source);
    }
    expect(ignored).toEqual(expect.arrayContaining(["**/node_modules", ".burndown", ".git"]));
  });

  it("uses a Node that package.json's engines allow, in both stages", () => {
    const bases = lines.filter((line) => line.startsWith("FROM ")).map((line) => /^FROM node:(\d+)/.exec(line)?.[1]);
    expect(bases).toHaveLength(2);
    const minimum = Number(/>=\s*(\d+)/.exec(rootPackage.engines.node)?.[1]);
    for (const major of bases) expect(Number(major)).toBeGreaterThanOrEqual(minimum);
  });

  it("builds the admin UI and runs the server as npm start does, listening beyond the container", () => {
    expect(dockerfile).toMatch(/RUN node admin-ui\/scripts\/build\.mjs --force/);
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]) as string[];
    expect(rootPackage.scripts.start).toContain(cmd.join(" "));
    expect(dockerfile).toMatch(/ENV [^\n]*HOST=0\.0\.0\.0/);
    expect(dockerfile).toMatch(/^USER node$/m);
  });
});
