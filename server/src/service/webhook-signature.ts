// What a webhook request carries: the body built from an outbox event, and its signature
// (see WebhookService in webhooks.proto for how receivers verify it). Pure.
import { createHmac } from "node:crypto";

/** WebhookBody is the JSON object POSTed for an event. */
export interface WebhookBody {
  id: string;
  type: string;
  createTime: string;
  customerId: string;
  data: unknown;
}

/** webhookBodyOf builds the body of an event, the same on every attempt. */
export function webhookBodyOf(event: { eventId: string; type: string; customerId: string; payload: unknown; createdAt: Date }): string {
  const body: WebhookBody = { id: event.eventId, type: event.type, createTime: event.createdAt.toISOString(), customerId: event.customerId, data: event.payload };
  return JSON.stringify(body);
}

/** signWebhook is the burndown-signature header: "v1=" and the hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret. */
export function signWebhook(secret: string, timestampSeconds: number, body: string): string {
  if (!(secret.length > 0 && Number.isInteger(timestampSeconds) && timestampSeconds > 0)) throw new Error("assertion failed: a signature needs a secret and a timestamp");
  return `v1=${createHmac("sha256", secret).update(`${timestampSeconds}.${body}`).digest("hex")}`;
}
