// The real NATS JetStream of this machine (NATS_URL, 127.0.0.1:4222 by default) for the
// usage-queue tests: a stream, subject and dead-letter stream of their own per test, with
// a random suffix, deleted after. Without NATS the tests skip loudly, unless CI is set:
// NATS runs in CI, so there a missing NATS fails them.
import { randomBytes } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { type UsageEventInit } from "@burndown/sdk";
import { UsageEventSchema } from "@burndown/sdk";
import { type Consumer, type JetStreamClient, type JetStreamManager, type JsMsg, AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import type { UsageQueueConfig } from "../server/src/config.js";

/** natsUrl is where the tests find NATS. */
export const natsUrl = process.env.NATS_URL ?? "127.0.0.1:4222";

/** natsReachable says whether NATS with JetStream answers; under CI the tests run regardless, and fail without it. */
export async function natsReachable(): Promise<boolean> {
  try {
    const nc = await connect({ servers: natsUrl, timeout: 2_000, maxReconnectAttempts: 0 });
    try {
      await (await jetstreamManager(nc)).getAccountInfo();
      return true;
    } finally {
      await nc.close();
    }
  } catch (error) {
    console.warn(`NATS JetStream at ${natsUrl} is not reachable: ${error instanceof Error ? error.message : String(error)}`);
    return false;
  }
}

/** TestQueue is a usage stream and a dead-letter stream of a test's own, on one connection. */
export interface TestQueue {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  subject: string;
  deadLetterStream: string;
  deadLetterSubject: string;
  /** the consumer settings for these streams, acting as apiKeyId. */
  config: (apiKeyId: string, overrides?: Partial<UsageQueueConfig>) => UsageQueueConfig;
  /** publish sends one event (binary protobuf by default) or raw bytes, and waits for JetStream to store it. */
  publish: (event: UsageEventInit | Uint8Array, options?: { contentType?: string; msgId?: string }) => Promise<void>;
  /** deadLetters reads every message on the dead-letter stream so far. */
  deadLetters: () => Promise<JsMsg[]>;
  close: () => Promise<void>;
}

/** createTestQueue makes the streams (the dead-letter one unless withoutDeadLetterStream). */
export async function createTestQueue(options: { withoutDeadLetterStream?: boolean } = {}): Promise<TestQueue> {
  const suffix = randomBytes(5).toString("hex");
  const nc = await connect({ servers: natsUrl });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const stream = `usage_test_${suffix}`;
  const subject = `usage.test.${suffix}`;
  const deadLetterStream = `usage_dead_${suffix}`;
  const deadLetterSubject = `usage.dead.${suffix}`;
  await jsm.streams.add({ name: stream, subjects: [subject] });
  if (!options.withoutDeadLetterStream) await jsm.streams.add({ name: deadLetterStream, subjects: [deadLetterSubject] });
  return {
    nc,
    js,
    jsm,
    stream,
    subject,
    deadLetterStream,
    deadLetterSubject,
    config: (apiKeyId, overrides = {}) => ({
      natsUrl, stream, subject, durable: "burndown-usage", deadLetterSubject, batchSize: 64, ackWaitMs: 30_000, apiKeyId, createStream: false, ...overrides,
    }),
    publish: async (event, publishOptions = {}) => {
      const data = event instanceof Uint8Array ? event : toBinary(UsageEventSchema, create(UsageEventSchema, event));
      const h = headers();
      if (publishOptions.contentType) h.set("Content-Type", publishOptions.contentType);
      await js.publish(subject, data, { headers: h, ...(publishOptions.msgId ? { msgID: publishOptions.msgId } : {}) });
    },
    deadLetters: async () => {
      const info = await jsm.streams.info(deadLetterStream);
      const total = info.state.messages;
      if (total === 0) return [];
      return fetchUpTo(await js.consumers.get(deadLetterStream, { deliver_policy: DeliverPolicy.All }), total, 5_000);
    },
    close: async () => {
      await jsm.streams.delete(stream).catch(() => false);
      await jsm.streams.delete(deadLetterStream).catch(() => false);
      await nc.close();
    },
  };
}

/** takeWithoutAck pulls up to count messages through the durable consumer and never acknowledges them, as a replica that died holding them. */
export async function takeWithoutAck(queue: TestQueue, durable: string, count: number): Promise<JsMsg[]> {
  return fetchUpTo(await queue.js.consumers.get(queue.stream, durable), count, 2_000);
}

/** fetchUpTo pulls up to count messages from a consumer, waiting at most expiresMs for them; none is acknowledged. */
async function fetchUpTo(consumer: Consumer, count: number, expiresMs: number): Promise<JsMsg[]> {
  const taken: JsMsg[] = [];
  for await (const message of await consumer.fetch({ max_messages: count, expires: expiresMs })) {
    taken.push(message);
    if (taken.length === count) break;
  }
  return taken;
}

/** addDurable creates the durable consumer a test's server will use, with its ack wait. */
export async function addDurable(queue: TestQueue, durable: string, ackWaitMs: number): Promise<void> {
  await queue.jsm.consumers.add(queue.stream, { durable_name: durable, ack_policy: AckPolicy.Explicit, ack_wait: ackWaitMs * 1_000_000, filter_subject: queue.subject });
}
