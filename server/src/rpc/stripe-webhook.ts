// POST /webhooks/stripe: Stripe's events confirm and refund top-up orders. The signature
// is checked with the official stripe package against the deployment's signing secret
// (no secret: the route does not exist, 404); a bad signature or a timestamp older than
// the tolerance is 400 and changes nothing. Each event acts once: its id is the request id
// of the confirmation or refund it makes, scoped to the webhook's own principal, so a
// redelivery replays the first answer; and an order is paid by one payment reference and
// refunded once per refund reference whatever the request id.
//
// Events: checkout.session.completed (when paid) and payment_intent.succeeded confirm the
// order named by metadata.burndown_order_id, for the amount and currency Stripe
// received; charge.refunded claws back up to the charge's refunded total;
// charge.dispute.created claws back the disputed amount like a refund;
// charge.dispute.closed with status won gives back what that clawback took, as a new lot
// (restore-won-dispute.ts);
// payment_intent.payment_failed reports a failed payment of the order (FailTopUp, with
// last_payment_error's code as the reason), so that a recharge is retried. Other events, and
// events about no order of ours, are acknowledged and ignored.
import { createHash } from "node:crypto";
import type http from "node:http";
import Stripe from "stripe";
import { LedgerError } from "../errors.js";
import { limits } from "../limits.js";
import { confirmTopUp } from "../service/confirm-top-up.js";
import type { Caller, Deps, Idempotency } from "../service/context.js";
import { failTopUp } from "../service/fail-top-up.js";
import { findTopUpByPaymentReference } from "../service/get-top-ups.js";
import { refundTopUp, type RefundAmount } from "../service/refund-top-up.js";
import { restoreWonDispute } from "../service/restore-won-dispute.js";

/** stripeWebhookPath is where Stripe posts events. */
export const stripeWebhookPath = "/webhooks/stripe";

/**
 * stripeCaller is the principal the webhook acts as: its request ids and audit records are its
 * own. A webhook is no RPC call (no request log line, no x-request-id): its audit records carry
 * no call's request id; their details name the Stripe event.
 */
const stripeCaller: Caller = { keyId: "stripe-webhook", name: "Stripe webhook", role: "service", grantLimit: 0n, requestId: null };

/** Answer is the webhook's HTTP answer. */
interface Answer {
  status: number;
  body: Record<string, string>;
}

type StripeObject = Record<string, unknown> & { metadata?: Record<string, string> | null };

/**
 * handleStripeWebhook answers one request to the webhook path. Refusals of the ledger
 * (an amount that does not match, an order cancelled) are 422 with their reason, so that
 * they show in Stripe's dashboard; faults worth retrying are 503, which Stripe retries.
 */
export async function handleStripeWebhook(
  deps: Deps,
  options: { secret: string | null; log: (message: string) => void },
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const answer = await answerOf(deps, options, req).catch((error: unknown): Answer => {
    if (error instanceof LedgerError && (error.kind === "unavailable" || error.kind === "conflict" || error.kind === "overloaded")) {
      return { status: 503, body: { error: error.reason } };
    }
    if (error instanceof LedgerError) return { status: 422, body: { error: error.reason, message: error.message } };
    options.log(`stripe webhook: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return { status: 500, body: { error: "INTERNAL" } };
  });
  res.writeHead(answer.status, { "content-type": "application/json" }).end(JSON.stringify(answer.body));
}

async function answerOf(deps: Deps, options: { secret: string | null }, req: http.IncomingMessage): Promise<Answer> {
  if (options.secret === null) return { status: 404, body: { error: "not found" } };
  if (req.method !== "POST") return { status: 405, body: { error: "POST only" } };
  const body = await readBody(req);
  if (body === null) return { status: 413, body: { error: "body too large" } };
  let event: { id: string; type: string; data: { object: StripeObject } };
  try {
    const signature = req.headers["stripe-signature"];
    event = Stripe.webhooks.constructEvent(body, typeof signature === "string" ? signature : "", options.secret, limits.stripeToleranceSecondsMax, undefined, deps.now().getTime()) as never;
  } catch (error) {
    // A forged, tampered or replayed-late delivery: nothing is read from it.
    return { status: 400, body: { error: "signature", message: error instanceof Error ? error.message : String(error) } };
  }
  const idempotency: Idempotency = {
    requestId: `stripe:${event.id}`.slice(0, limits.idLengthMax),
    method: `stripe:${event.type}`,
    payloadHash: createHash("sha256").update(body).digest(),
  };
  const outcome = await dispatch(deps, idempotency, event.type, event.data.object);
  return { status: 200, body: { received: event.id, outcome } };
}

/** dispatch acts on one verified event; returns what it did, for the answer. */
async function dispatch(deps: Deps, idempotency: Idempotency, type: string, object: StripeObject): Promise<string> {
  // A delayed payment method (a bank debit) completes the session unpaid, then succeeds later.
  if (type === "checkout.session.completed" || type === "checkout.session.async_payment_succeeded") {
    if (object.payment_status !== "paid") return "ignored: not paid yet";
    return confirm(deps, idempotency, object, { reference: stringOf(object.payment_intent) ?? stringOf(object.id)!, amount: object.amount_total });
  }
  if (type === "payment_intent.succeeded") return confirm(deps, idempotency, object, { reference: stringOf(object.id)!, amount: object.amount_received });
  if (type === "payment_intent.payment_failed") return fail(deps, idempotency, object);
  if (type === "charge.refunded") {
    return refund(deps, idempotency, object, { reference: `${stringOf(object.id)}:refunded:${String(object.amount_refunded)}`, amount: { kind: "total", minor: minorOf(object.amount_refunded) }, reasonCode: "refund" });
  }
  if (type === "charge.dispute.created") {
    return refund(deps, idempotency, object, { reference: stringOf(object.id)!, amount: { kind: "at_most", minor: minorOf(object.amount) }, reasonCode: "chargeback" });
  }
  if (type === "charge.dispute.closed") {
    if (object.status !== "won") return `ignored: dispute ${String(object.status)}`;
    return restore(deps, object);
  }
  return "ignored: event type";
}

/** restore gives back the credits a won dispute's clawback took, as a new lot. */
async function restore(deps: Deps, object: StripeObject): Promise<string> {
  let orderId = orderIdOf(object);
  const paymentIntent = stringOf(object.payment_intent);
  if (orderId === null && paymentIntent !== null) orderId = (await findTopUpByPaymentReference(deps, paymentIntent))?.orderId ?? null;
  const disputeId = stringOf(object.id);
  if (orderId === null || disputeId === null) return "ignored: no order of ours";
  const restored = await restoreWonDispute(deps, stripeCaller, { orderId, disputeReference: disputeId.slice(0, limits.paymentReferenceLengthMax) });
  return restored === null ? "ignored: nothing was clawed back" : `order ${orderId} dispute won: ${restored.credits} credits restored`;
}

async function confirm(deps: Deps, idempotency: Idempotency, object: StripeObject, payment: { reference: string; amount: unknown }): Promise<string> {
  const orderId = orderIdOf(object);
  if (orderId === null) return "ignored: no burndown_order_id";
  const order = await confirmTopUp(deps, stripeCaller, idempotency, {
    orderId,
    paymentReference: payment.reference,
    amountMinor: minorOf(payment.amount),
    currency: String(object.currency ?? "").toUpperCase(),
  });
  return `order ${order.orderId} ${order.state}`;
}

/** fail reports the failed payment of the order a payment intent names. */
async function fail(deps: Deps, idempotency: Idempotency, object: StripeObject): Promise<string> {
  const orderId = orderIdOf(object);
  if (orderId === null) return "ignored: no burndown_order_id";
  const error = (object.last_payment_error ?? null) as { code?: unknown; decline_code?: unknown } | null;
  const reason = String(error?.decline_code ?? error?.code ?? "payment_failed").slice(0, limits.noteLengthMax) || "payment_failed";
  const order = await failTopUp(deps, stripeCaller, idempotency, { orderId, reason });
  return `order ${order.orderId} ${order.state}`;
}

/** refund finds the order a charge or dispute is about: by its metadata, or by the payment intent that paid it. */
async function refund(deps: Deps, idempotency: Idempotency, object: StripeObject, refund: { reference: string; amount: RefundAmount; reasonCode: string }): Promise<string> {
  let orderId = orderIdOf(object);
  const paymentIntent = stringOf(object.payment_intent);
  if (orderId === null && paymentIntent !== null) orderId = (await findTopUpByPaymentReference(deps, paymentIntent))?.orderId ?? null;
  if (orderId === null) return "ignored: no order of ours";
  if (refund.amount.minor <= 0n) return "ignored: nothing refunded";
  const result = await refundTopUp(deps, stripeCaller, idempotency, {
    orderId,
    amount: refund.amount,
    currency: String(object.currency ?? "").toUpperCase(),
    reasonCode: refund.reasonCode,
    paymentReference: refund.reference.slice(0, limits.paymentReferenceLengthMax),
  });
  return `order ${result.topUp.orderId} ${result.topUp.state}`;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function orderIdOf(object: StripeObject): string | null {
  const orderId = object.metadata?.burndown_order_id;
  return typeof orderId === "string" && uuidPattern.test(orderId.toLowerCase()) ? orderId.toLowerCase() : null;
}

function stringOf(value: unknown): string | null {
  if (typeof value === "string" && value !== "") return value;
  // An expanded object carries its id.
  if (value !== null && typeof value === "object" && typeof (value as { id?: unknown }).id === "string") return (value as { id: string }).id;
  return null;
}

/** minorOf reads a Stripe amount (an integer of minor units) as bigint; anything else is 0, which every check refuses. */
function minorOf(value: unknown): bigint {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0 ? BigInt(value) : 0n;
}

/** readBody reads the raw body (the signature is over its exact bytes), or null past the bound. */
async function readBody(req: http.IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limits.requestBodyBytesMax) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
