// The message logger: JSON lines at the right level, and nothing secret in them even when
// a message quotes a token, a signing secret or a database password.
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, messageLog, scrub } from "./logger.js";

function capture(level: Parameters<typeof createLogger>[0]): { lines: Record<string, unknown>[]; log: (message: string) => void } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n")) if (line !== "") lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, log: messageLog(createLogger(level, stream)) };
}

describe("messageLog", () => {
  it("writes a JSON line per message: WARNING at warn, internal errors and failed starts at error, the rest at info", () => {
    const { lines, log } = capture("info");
    log("applied migrations 1, 2");
    log("WARNING: database user x is a superuser");
    log("internal error: boom");
    log("failed to start: connect ECONNREFUSED");
    expect(lines.map((line) => [line.level, line.msg])).toEqual([
      ["info", "applied migrations 1, 2"],
      ["warn", "WARNING: database user x is a superuser"],
      ["error", "internal error: boom"],
      ["error", "failed to start: connect ECONNREFUSED"],
    ]);
    expect(lines[0]).toMatchObject({ service: "burndown-server" });
    expect(Number.isNaN(Date.parse(String(lines[0].time)))).toBe(false);
  });

  it("masks secrets a message quotes before writing it", () => {
    const { lines, log } = capture("info");
    log("internal error: request with Authorization: Bearer bd_0123456789abcdef0123_c2VjcmV0c2VjcmV0 to postgres://app:hunter2@db/ledger");
    expect(JSON.stringify(lines)).not.toMatch(/c2VjcmV0c2VjcmV0|hunter2/);
    expect(lines[0].msg).toBe("internal error: request with Authorization: Bearer [redacted] to postgres://app:***@db/ledger");
  });

  it("writes nothing below its level", () => {
    const { lines, log } = capture("warn");
    log("applied migrations 1, 2");
    log("WARNING: something");
    expect(lines.map((line) => line.msg)).toEqual(["WARNING: something"]);
  });
});

describe("scrub", () => {
  it.each([
    ["a bearer token", "refused Authorization: Bearer bd_0123456789abcdef0123_c2VjcmV0c2VjcmV0", "c2VjcmV0c2VjcmV0"],
    ["an API key token", "key bd_0123456789abcdef0123_c2VjcmV0c2VjcmV0 revoked", "c2VjcmV0c2VjcmV0"],
    ["a webhook signing secret", "endpoint secret whsec_abcDEF123456789", "abcDEF123456789"],
    ["a password in a database URL", "could not reach postgres://app:hunter2@db:5432/ledger", "hunter2"],
  ])("masks %s", (_name, message, secret) => {
    expect(scrub(message)).not.toContain(secret);
  });

  it("keeps what identifies without granting: the key id, the URL's user and host", () => {
    expect(scrub("key bd_0123456789abcdef0123_c2VjcmV0c2VjcmV0")).toBe("key bd_0123456789abcdef0123_[redacted]");
    expect(scrub("postgres://app:hunter2@db:5432/ledger")).toBe("postgres://app:***@db:5432/ledger");
  });
});
