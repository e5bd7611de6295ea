// The usage queue's settings (BURNDOWN_NATS_*): off without BURNDOWN_NATS_URL, defaults
// when on, and a bad value stops the start with a message naming the setting.
import { describe, expect, it } from "vitest";
import { readConfig, subjectMatches } from "../config.js";

const keyId = "0123456789abcdef0123";
const on = { BURNDOWN_NATS_URL: "nats://127.0.0.1:4222", BURNDOWN_NATS_STREAM: "USAGE", BURNDOWN_NATS_DEAD_LETTER_SUBJECT: "usage_dead.events", BURNDOWN_NATS_API_KEY_ID: keyId };
const queueOf = (env: Record<string, string | undefined>) => readConfig({ ...on, ...env }).usageQueue;

describe("BURNDOWN_NATS_*", () => {
  it("without BURNDOWN_NATS_URL there is no consumer", () => {
    expect(readConfig({}).usageQueue).toBeNull();
    expect(readConfig({ BURNDOWN_NATS_URL: "" }).usageQueue).toBeNull();
  });

  it("with it, the stream, dead-letter subject and key are taken as given and the rest defaults", () => {
    expect(queueOf({})).toEqual({
      natsUrl: "nats://127.0.0.1:4222", stream: "USAGE", subject: null, durable: "burndown-usage", deadLetterSubject: "usage_dead.events",
      batchSize: 256, ackWaitMs: 30_000, apiKeyId: keyId, createStream: false,
    });
    expect(queueOf({ BURNDOWN_NATS_SUBJECT: "usage.>", BURNDOWN_NATS_DURABLE: "ledger-1", BURNDOWN_NATS_BATCH_SIZE: "1000", BURNDOWN_NATS_ACK_WAIT_MS: "1000", BURNDOWN_NATS_CREATE_STREAM: "1" })).toMatchObject({
      subject: "usage.>", durable: "ledger-1", batchSize: 1_000, ackWaitMs: 1_000, createStream: true,
    });
    expect(queueOf({ BURNDOWN_NATS_URL: "a:4222, b:4222" })?.natsUrl).toBe("a:4222, b:4222");
  });

  it.each([
    ["a setting without BURNDOWN_NATS_URL", { BURNDOWN_NATS_URL: undefined }, /^BURNDOWN_NATS_STREAM, BURNDOWN_NATS_DEAD_LETTER_SUBJECT, BURNDOWN_NATS_API_KEY_ID configure usage from a queue, which needs BURNDOWN_NATS_URL/],
    ["a URL with a path", { BURNDOWN_NATS_URL: "http://host/x" }, /^BURNDOWN_NATS_URL must be NATS servers/],
    ["no stream", { BURNDOWN_NATS_STREAM: undefined }, /^BURNDOWN_NATS_STREAM must be set when BURNDOWN_NATS_URL is/],
    ["a stream with a dot", { BURNDOWN_NATS_STREAM: "usage.events" }, /^BURNDOWN_NATS_STREAM must be 1-64 characters/],
    ["a durable with a space", { BURNDOWN_NATS_DURABLE: "my consumer" }, /^BURNDOWN_NATS_DURABLE must be 1-64 characters/],
    ["a subject with an inner >", { BURNDOWN_NATS_SUBJECT: "usage.>.x" }, /^BURNDOWN_NATS_SUBJECT must be a NATS subject/],
    ["no dead-letter subject", { BURNDOWN_NATS_DEAD_LETTER_SUBJECT: undefined }, /^BURNDOWN_NATS_DEAD_LETTER_SUBJECT must be a NATS subject/],
    ["a wildcard dead-letter subject", { BURNDOWN_NATS_DEAD_LETTER_SUBJECT: "dead.*" }, /^BURNDOWN_NATS_DEAD_LETTER_SUBJECT must be a NATS subject/],
    ["dead letters the consumer would read", { BURNDOWN_NATS_SUBJECT: "usage.>", BURNDOWN_NATS_DEAD_LETTER_SUBJECT: "usage.dead" }, /^BURNDOWN_NATS_DEAD_LETTER_SUBJECT \(usage.dead\) must not match BURNDOWN_NATS_SUBJECT/],
    ["a token instead of a key id", { BURNDOWN_NATS_API_KEY_ID: `bd_${keyId}_secret` }, /^BURNDOWN_NATS_API_KEY_ID must be the id of a service API key/],
    ["a batch past ReportUsage's", { BURNDOWN_NATS_BATCH_SIZE: "1001" }, /^BURNDOWN_NATS_BATCH_SIZE must be an integer from 1 to 1000/],
    ["an ack wait under a second", { BURNDOWN_NATS_ACK_WAIT_MS: "999" }, /^BURNDOWN_NATS_ACK_WAIT_MS must be an integer from 1000 to 3600000/],
    ["creating a stream without its subject", { BURNDOWN_NATS_CREATE_STREAM: "1" }, /^BURNDOWN_NATS_CREATE_STREAM=1 needs BURNDOWN_NATS_SUBJECT/],
    ["a yes for create", { BURNDOWN_NATS_CREATE_STREAM: "yes" }, /^BURNDOWN_NATS_CREATE_STREAM must be 1/],
  ])("refuses %s, naming the setting", (_name, env, message) => {
    expect(() => queueOf(env)).toThrow(message);
  });
});

describe("subjectMatches", () => {
  it.each([
    ["usage.>", "usage.dead", true],
    ["usage.>", "usage", false],
    ["usage.*", "usage.dead", true],
    ["usage.*", "usage.dead.x", false],
    ["usage.events", "usage.events", true],
    ["usage.events", "usage.dead", false],
    ["*.events", "usage.events", true],
  ])("%s takes %s: %s", (filter, subject, matches) => {
    expect(subjectMatches(filter, subject)).toBe(matches);
  });
});
