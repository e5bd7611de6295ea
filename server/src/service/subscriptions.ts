// Subscriptions: a customer on a plan version, with one grant schedule per allotment and
// the plan's pricing version assigned. Moving to another version ends the subscription
// (and its schedules) now and starts one on the new version now, with the periods left;
// cancelling ends it now. Every change is audited and idempotent; due periods are
// granted after the change commits (a crash in between leaves them to the scheduler).
import { randomUUID } from "node:crypto";
import { LedgerError, notFound } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { periodStart } from "../ledger/schedule-periods.js";
import { limits } from "../limits.js";
import { insertAuditRecord } from "../store/audit-store.js";
import { insertCustomer, selectCustomer } from "../store/catalog-store.js";
import { mapDriverErrors, type Tx } from "../store/database.js";
import {
  endSubscription,
  insertSubscription,
  type PlanRow,
  type ScheduleRow,
  selectPlan,
  selectSchedule,
  selectSchedules,
  selectSubscription,
  selectSubscriptions,
  type SubscriptionRow,
} from "../store/plan-store.js";
import { moveCustomers } from "../store/pricing-store.js";
import type { Caller, Deps, Idempotency } from "./context.js";
import { endSchedules, grantDuePeriods, insertSchedules } from "./grant-schedules.js";
import { runIdempotent } from "./run-idempotent.js";

/** SubscriptionView is a subscription with its schedules. */
export interface SubscriptionView extends SubscriptionRow {
  schedules: ScheduleRow[];
}

/** planReasonCode is the reason code of a plan's lots. */
export const planReasonCode = "plan";

/** SubscribeInput is a validated SubscribeCustomer request. */
export interface SubscribeInput {
  customerId: string;
  planId: string;
  /** null: the latest. */
  planVersion: number | null;
  /** null: now. */
  startAt: Date | null;
  periodCount: number | null;
}

async function requirePlan(tx: Tx, planId: string, version: number | null): Promise<PlanRow> {
  const plan = await selectPlan(tx, planId, version);
  if (plan === null) throw notFound("PLAN_NOT_FOUND", "plan id", version === null ? planId : `${planId} version ${version}`);
  return plan;
}

/** startSubscription writes a subscription, its schedules, and its plan's pricing version. */
async function startSubscription(tx: Tx, caller: Caller, plan: PlanRow, input: { customerId: string; startAt: Date; periodCount: number | null; now: Date }): Promise<SubscriptionRow> {
  const subscriptionId = randomUUID();
  // The customer first: the subscription references it.
  await insertCustomer(tx, { customerId: input.customerId, displayName: "" });
  const subscription = await insertSubscription(tx, { subscriptionId, customerId: input.customerId, planId: plan.planId, planVersion: plan.version, startAt: input.startAt, periodCount: input.periodCount, createdBy: caller.keyId });
  await insertSchedules(tx, caller, { customerId: input.customerId, subscriptionId, allotments: plan.allotments, source: "plan", reasonCode: planReasonCode, startAt: input.startAt, periodCount: input.periodCount });
  if (plan.pricingVersionId !== null) {
    const customer = await selectCustomer(tx, input.customerId);
    assert(customer !== null, "the customer was created");
    if (customer.pricingVersionId !== plan.pricingVersionId) {
      await moveCustomers(tx, { from: customer.pricingVersionId, to: plan.pricingVersionId, customerIds: [input.customerId], at: input.now });
    }
  }
  return subscription;
}

/** subscribeCustomer subscribes a customer to a plan version, audited, and grants what is due. NotFound PLAN_NOT_FOUND. */
export async function subscribeCustomer(deps: Deps, caller: Caller, idempotency: Idempotency, input: SubscribeInput): Promise<SubscriptionView> {
  const subscription = await runIdempotent(deps, caller, idempotency, async (tx) => {
    const plan = await requirePlan(tx, input.planId, input.planVersion);
    const now = deps.now();
    const created = await startSubscription(tx, caller, plan, { customerId: input.customerId, startAt: input.startAt ?? now, periodCount: input.periodCount, now });
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "subscribe_customer",
      target: `customer:${input.customerId}`,
      reason: "",
      details: { old: null, new: { subscription_id: created.subscriptionId, plan_id: plan.planId, plan_version: plan.version, start_time: created.startAt.toISOString(), period_count: created.periodCount } },
    });
    return created;
  });
  return grantAndRead(deps, subscription.subscriptionId);
}

/** moveSubscription moves an active subscription to another version of its plan from now. */
export async function moveSubscription(deps: Deps, caller: Caller, idempotency: Idempotency, input: { subscriptionId: string; planVersion: number | null }): Promise<SubscriptionView> {
  const moved = await runIdempotent(deps, caller, idempotency, async (tx) => {
    const old = await requireActive(tx, input.subscriptionId);
    const plan = await requirePlan(tx, old.planId, input.planVersion);
    const now = deps.now();
    const granted = await endSchedulesOf(tx, old, now);
    const left = old.periodCount === null ? null : old.periodCount - granted;
    if (left !== null && left <= 0) throw new LedgerError("rejected", "SUBSCRIPTION_NOT_ACTIVE", "the subscription has no period left", { subscription_id: old.subscriptionId });
    const started = await startSubscription(tx, caller, plan, { customerId: old.customerId, startAt: now > old.startAt ? now : old.startAt, periodCount: left, now });
    await endSubscription(tx, { subscriptionId: old.subscriptionId, state: "moved", endedAt: now, movedTo: started.subscriptionId });
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "move_subscription",
      target: `customer:${old.customerId}`,
      reason: "",
      details: {
        old: { subscription_id: old.subscriptionId, plan_version: old.planVersion },
        new: { subscription_id: started.subscriptionId, plan_version: plan.version, period_count: left },
      },
    });
    return started;
  });
  return grantAndRead(deps, moved.subscriptionId);
}

/** cancelSubscription ends an active subscription now, audited. */
export async function cancelSubscription(deps: Deps, caller: Caller, idempotency: Idempotency, input: { subscriptionId: string; note: string }): Promise<SubscriptionView> {
  const cancelled = await runIdempotent(deps, caller, idempotency, async (tx) => {
    const old = await requireActive(tx, input.subscriptionId);
    const now = deps.now();
    await endSchedulesOf(tx, old, now);
    const ended = await endSubscription(tx, { subscriptionId: old.subscriptionId, state: "cancelled", endedAt: now, movedTo: null });
    await insertAuditRecord(tx, {
      actor: caller.keyId,
      requestId: caller.requestId,
      action: "cancel_subscription",
      target: `customer:${old.customerId}`,
      reason: input.note,
      details: { old: { state: old.state }, new: { state: ended.state, end_time: now.toISOString() }, subscription_id: old.subscriptionId },
    });
    return ended;
  });
  return readSubscription(deps, cancelled.subscriptionId);
}

async function requireActive(tx: Tx, subscriptionId: string): Promise<SubscriptionRow> {
  const subscription = await selectSubscription(tx, subscriptionId, "update");
  if (subscription === null) throw notFound("SUBSCRIPTION_NOT_FOUND", "subscription id", subscriptionId);
  if (subscription.state !== "active") {
    throw new LedgerError("rejected", "SUBSCRIPTION_NOT_ACTIVE", `subscription ${subscriptionId} is ${subscription.state}`, { subscription_id: subscriptionId, state: subscription.state });
  }
  return subscription;
}

/** endSchedulesOf ends a subscription's schedules now; returns the most periods any of them started before now. */
async function endSchedulesOf(tx: Tx, subscription: SubscriptionRow, now: Date): Promise<number> {
  const listed = await selectSchedules(tx, { customerId: subscription.customerId, subscriptionId: subscription.subscriptionId, limit: limits.allotmentsPerPlanMax });
  // Locked as the scheduler locks them, so that no period of them is granted meanwhile.
  const schedules: ScheduleRow[] = [];
  for (const { scheduleId } of listed) {
    const locked = await selectSchedule(tx, scheduleId, "update");
    assert(locked !== null, "a schedule is never deleted");
    schedules.push(locked);
  }
  await endSchedules(tx, schedules, now);
  return Math.max(0, ...schedules.map((schedule) => periodsStartedBefore(schedule, now)));
}

/** periodsStartedBefore counts a schedule's periods that start before at, within its count. */
function periodsStartedBefore(schedule: ScheduleRow, at: Date): number {
  const countMax = schedule.periodCount ?? limits.periodCountMax;
  let started = 0;
  while (started < countMax && periodStart(schedule, started + 1) < at) started++;
  return started;
}

async function grantAndRead(deps: Deps, subscriptionId: string): Promise<SubscriptionView> {
  const view = await readSubscription(deps, subscriptionId);
  if (view.state === "active") await grantDuePeriods(deps, view.schedules.map((schedule) => schedule.scheduleId));
  return readSubscription(deps, subscriptionId);
}

async function readSubscription(deps: Deps, subscriptionId: string): Promise<SubscriptionView> {
  const subscription = await mapDriverErrors(() => selectSubscription(deps.pool, subscriptionId, "none"));
  assert(subscription !== null, "a subscription is never deleted");
  const schedules = await mapDriverErrors(() => selectSchedules(deps.pool, { customerId: subscription.customerId, subscriptionId, limit: limits.allotmentsPerPlanMax }));
  return { ...subscription, schedules };
}

/** listSubscriptions reads a customer's subscriptions with their schedules, newest first. */
export async function listSubscriptions(deps: Deps, customerId: string): Promise<SubscriptionView[]> {
  const subscriptions = await mapDriverErrors(() => selectSubscriptions(deps.pool, customerId, limits.customerPlanRowsListedMax));
  const schedules = await mapDriverErrors(() => selectSchedules(deps.pool, { customerId, subscriptionId: null, limit: limits.customerPlanRowsListedMax * limits.allotmentsPerPlanMax }));
  return subscriptions.map((subscription) => ({ ...subscription, schedules: schedules.filter((schedule) => schedule.subscriptionId === subscription.subscriptionId) }));
}
