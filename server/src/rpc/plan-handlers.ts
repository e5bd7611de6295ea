// PlanService handlers: decode, call one service, encode.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Duration, durationFromMs, type Timestamp, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type AllotmentSchema,
  CancelGrantScheduleRequestSchema,
  CancelSubscriptionRequestSchema,
  CreateGrantScheduleRequestSchema,
  CreatePlanRequestSchema,
  type GrantScheduleSchema,
  GrantSource,
  MoveSubscriptionRequestSchema,
  PeriodUnit,
  type PlanSchema,
  type PlanService,
  type RolloverSchema,
  SubscribeCustomerRequestSchema,
  type SubscriptionSchema,
  SubscriptionState,
} from "@burndown/sdk";
import type { ServiceImpl } from "@connectrpc/connect";
import { invalid } from "../errors.js";
import type { PeriodUnit as DomainPeriodUnit } from "../ledger/schedule-periods.js";
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { cancelGrantSchedule, createGrantSchedule, listGrantSchedules, listRollovers } from "../service/grant-schedules.js";
import { createPlan, getPlan, listPlans } from "../service/plans.js";
import { cancelSubscription, listSubscriptions, moveSubscription, subscribeCustomer, type SubscriptionView } from "../service/subscriptions.js";
import type { Allotment, PlanRow, RolloverRow, ScheduleRow } from "../store/plan-store.js";
import { grantSourceOf, optionalTime, requireCode, requireGrantSource, requireId, requirePositive, requireText, requireUuid } from "./decode.js";
import { callerOf } from "./ledger-handlers.js";
import { idempotencyOf } from "./request-hash.js";

type AllotmentMessage = { creditTypeId: string; amount: bigint; period?: { unit: PeriodUnit; length: number }; lotExpiry: { case: "expireAtPeriodEnd"; value: boolean } | { case: "lotLifetime"; value: Duration } | { case: undefined; value?: undefined }; rollover?: { cap: { case: "maxAmount"; value: bigint } | { case: "maxPercent"; value: number } | { case: undefined; value?: undefined } } };

const units: Record<number, { unit: DomainPeriodUnit; lengthMax: number }> = {
  [PeriodUnit.DAY]: { unit: "day", lengthMax: 366 },
  [PeriodUnit.MONTH]: { unit: "month", lengthMax: 12 },
  [PeriodUnit.YEAR]: { unit: "year", lengthMax: 10 },
};

/** requireAllotment checks an allotment: a credit type, a positive amount, a period, a lot expiry and a rollover rule that fit. */
function requireAllotment(field: string, allotment: AllotmentMessage | undefined): Allotment {
  if (allotment === undefined) throw invalid("MISSING_FIELD", field, "is required");
  const unit = allotment.period === undefined ? undefined : units[allotment.period.unit];
  if (unit === undefined || allotment.period === undefined || allotment.period.length < 1 || allotment.period.length > unit.lengthMax) {
    throw invalid("INVALID_PERIOD", `${field}.period`, "needs a unit and a length of 1 to 366 days, 1 to 12 months or 1 to 10 years");
  }
  let lotExpiry: Allotment["lotExpiry"] = { kind: "never" };
  if (allotment.lotExpiry.case === "expireAtPeriodEnd" && allotment.lotExpiry.value) lotExpiry = { kind: "period_end" };
  if (allotment.lotExpiry.case === "lotLifetime") {
    const lifetime = allotment.lotExpiry.value;
    if (lifetime.nanos !== 0 || lifetime.seconds < 1n || lifetime.seconds > limits.creditExpirySecondsMax) {
      throw invalid("INVALID_LOT_LIFETIME", `${field}.lot_lifetime`, "must be whole seconds from 1 second to 100 years");
    }
    lotExpiry = { kind: "lifetime", seconds: lifetime.seconds };
  }
  return {
    creditTypeId: requireCode(`${field}.credit_type_id`, allotment.creditTypeId),
    amount: requirePositive(`${field}.amount`, allotment.amount),
    unit: unit.unit,
    length: allotment.period.length,
    lotExpiry,
    rollover: requireRollover(`${field}.rollover`, allotment.rollover?.cap, lotExpiry),
  };
}

function requireRollover(field: string, cap: NonNullable<AllotmentMessage["rollover"]>["cap"] | undefined, lotExpiry: Allotment["lotExpiry"]): Allotment["rollover"] {
  if (cap === undefined || cap.case === undefined) return null;
  if (lotExpiry.kind !== "period_end") throw invalid("INVALID_ROLLOVER", field, "needs lots that expire at the end of their period");
  if (cap.case === "maxAmount") {
    if (cap.value <= 0n) throw invalid("INVALID_ROLLOVER", `${field}.max_amount`, "must be positive");
    return { kind: "amount", amount: cap.value };
  }
  if (cap.value < 1 || cap.value > 100) throw invalid("INVALID_ROLLOVER", `${field}.max_percent`, "must be 1 to 100");
  return { kind: "percent", percent: cap.value };
}

function requirePeriodCount(value: number): number | null {
  if (value < 0 || value > limits.periodCountMax) throw invalid("INVALID_PERIOD_COUNT", "period_count", `must be 0 (forever) to ${limits.periodCountMax}`);
  return value === 0 ? null : value;
}

function requirePlanVersion(value: number): number | null {
  if (value < 0) throw invalid("INVALID_PLAN_VERSION", "plan_version", "must be 0 (the latest) or a version");
  return value === 0 ? null : value;
}

const unitsBack: Record<DomainPeriodUnit, PeriodUnit> = { day: PeriodUnit.DAY, month: PeriodUnit.MONTH, year: PeriodUnit.YEAR };
const time = (at: Date | null): Timestamp | undefined => (at === null ? undefined : timestampFromDate(at));

/** encodeAllotment converts an allotment. */
function encodeAllotment(allotment: Allotment): MessageInitShape<typeof AllotmentSchema> {
  const expiry = allotment.lotExpiry;
  return {
    creditTypeId: allotment.creditTypeId,
    amount: allotment.amount,
    period: { unit: unitsBack[allotment.unit], length: allotment.length },
    lotExpiry:
      expiry.kind === "period_end"
        ? { case: "expireAtPeriodEnd", value: true }
        : expiry.kind === "lifetime"
          ? { case: "lotLifetime", value: durationFromMs(Number(expiry.seconds) * 1000) }
          : { case: undefined },
    rollover:
      allotment.rollover === null
        ? undefined
        : { cap: allotment.rollover.kind === "amount" ? { case: "maxAmount", value: allotment.rollover.amount } : { case: "maxPercent", value: allotment.rollover.percent } },
  };
}

function encodePlan(plan: PlanRow): MessageInitShape<typeof PlanSchema> {
  return {
    planId: plan.planId,
    version: plan.version,
    displayName: plan.displayName,
    allotments: plan.allotments.map(encodeAllotment),
    bundleIds: plan.bundleIds,
    pricingVersionId: plan.pricingVersionId ?? "",
    createTime: timestampFromDate(plan.createdAt),
  };
}

function encodeSchedule(schedule: ScheduleRow): MessageInitShape<typeof GrantScheduleSchema> {
  return {
    scheduleId: schedule.scheduleId,
    customerId: schedule.customerId,
    subscriptionId: schedule.subscriptionId ?? "",
    allotment: encodeAllotment(schedule),
    source: grantSourceOf(schedule.source),
    reasonCode: schedule.reasonCode,
    startTime: timestampFromDate(schedule.startAt),
    periodCount: schedule.periodCount ?? 0,
    endTime: time(schedule.endedAt),
    periodsGranted: schedule.nextPeriod - 1,
    nextGrantTime: time(schedule.nextDueAt),
    createTime: timestampFromDate(schedule.createdAt),
  };
}

const states = { active: SubscriptionState.ACTIVE, cancelled: SubscriptionState.CANCELLED, moved: SubscriptionState.MOVED };

function encodeSubscription(subscription: SubscriptionView): MessageInitShape<typeof SubscriptionSchema> {
  return {
    subscriptionId: subscription.subscriptionId,
    customerId: subscription.customerId,
    planId: subscription.planId,
    planVersion: subscription.planVersion,
    state: states[subscription.state],
    startTime: timestampFromDate(subscription.startAt),
    periodCount: subscription.periodCount ?? 0,
    endTime: time(subscription.endedAt),
    movedTo: subscription.movedTo ?? "",
    schedules: subscription.schedules.map(encodeSchedule),
    createTime: timestampFromDate(subscription.createdAt),
  };
}

function encodeRollover(rollover: RolloverRow): MessageInitShape<typeof RolloverSchema> {
  return {
    scheduleId: rollover.scheduleId,
    periodIndex: rollover.periodIndex,
    fromGrantId: rollover.fromGrantId,
    toGrantId: rollover.toGrantId ?? "",
    amount: rollover.amount,
    createTime: timestampFromDate(rollover.createdAt),
  };
}

/** planHandlers implements PlanService. */
export function planHandlers(deps: Deps): ServiceImpl<typeof PlanService> {
  return {
    async createPlan(req, ctx) {
      const idempotency = idempotencyOf(CreatePlanRequestSchema, "CreatePlan", req);
      if (req.allotments.length === 0 || req.allotments.length > limits.allotmentsPerPlanMax) {
        throw invalid("INVALID_ALLOTMENTS", "allotments", `must be 1 to ${limits.allotmentsPerPlanMax}`);
      }
      const plan = await createPlan(deps, callerOf(ctx), idempotency, {
        planId: requireCode("plan_id", req.planId),
        displayName: requireText("display_name", req.displayName, limits.displayNameLengthMax, true),
        allotments: req.allotments.map((allotment, index) => requireAllotment(`allotments[${index}]`, allotment)),
        bundleIds: [...new Set(req.bundleIds.map((bundleId, index) => requireCode(`bundle_ids[${index}]`, bundleId)))],
        pricingVersionId: req.pricingVersionId === "" ? null : requireCode("pricing_version_id", req.pricingVersionId),
      });
      return { plan: encodePlan(plan) };
    },
    async listPlans(req) {
      return { plans: (await listPlans(deps, { allVersions: req.allVersions })).map(encodePlan) };
    },
    async getPlan(req) {
      if (req.version < 0) throw invalid("INVALID_PLAN_VERSION", "version", "must be 0 (the latest) or a version");
      return { plan: encodePlan(await getPlan(deps, { planId: requireCode("plan_id", req.planId), version: req.version === 0 ? null : req.version })) };
    },
    async subscribeCustomer(req, ctx) {
      const idempotency = idempotencyOf(SubscribeCustomerRequestSchema, "SubscribeCustomer", req);
      const subscription = await subscribeCustomer(deps, callerOf(ctx), idempotency, {
        customerId: requireId("customer_id", req.customerId),
        planId: requireCode("plan_id", req.planId),
        planVersion: requirePlanVersion(req.planVersion),
        startAt: optionalTime("start_time", req.startTime),
        periodCount: requirePeriodCount(req.periodCount),
      });
      return { subscription: encodeSubscription(subscription) };
    },
    async moveSubscription(req, ctx) {
      const idempotency = idempotencyOf(MoveSubscriptionRequestSchema, "MoveSubscription", req);
      const subscription = await moveSubscription(deps, callerOf(ctx), idempotency, {
        subscriptionId: requireUuid("subscription_id", req.subscriptionId),
        planVersion: requirePlanVersion(req.planVersion),
      });
      return { subscription: encodeSubscription(subscription) };
    },
    async cancelSubscription(req, ctx) {
      const idempotency = idempotencyOf(CancelSubscriptionRequestSchema, "CancelSubscription", req);
      const subscription = await cancelSubscription(deps, callerOf(ctx), idempotency, {
        subscriptionId: requireUuid("subscription_id", req.subscriptionId),
        note: requireText("note", req.note, limits.noteLengthMax),
      });
      return { subscription: encodeSubscription(subscription) };
    },
    async listSubscriptions(req) {
      return { subscriptions: (await listSubscriptions(deps, requireId("customer_id", req.customerId))).map(encodeSubscription) };
    },
    async createGrantSchedule(req, ctx) {
      const idempotency = idempotencyOf(CreateGrantScheduleRequestSchema, "CreateGrantSchedule", req);
      const source = requireGrantSource(req.source);
      if (req.source === GrantSource.ROLLOVER) throw invalid("INVALID_ENUM", "source", "a schedule's own lots are not rollovers");
      const schedule = await createGrantSchedule(deps, callerOf(ctx), idempotency, {
        customerId: requireId("customer_id", req.customerId),
        allotment: requireAllotment("allotment", req.allotment),
        source,
        reasonCode: requireCode("reason_code", req.reasonCode),
        startAt: optionalTime("start_time", req.startTime),
        periodCount: requirePeriodCount(req.periodCount),
      });
      return { schedule: encodeSchedule(schedule) };
    },
    async cancelGrantSchedule(req, ctx) {
      const idempotency = idempotencyOf(CancelGrantScheduleRequestSchema, "CancelGrantSchedule", req);
      const schedule = await cancelGrantSchedule(deps, callerOf(ctx), idempotency, {
        scheduleId: requireUuid("schedule_id", req.scheduleId),
        note: requireText("note", req.note, limits.noteLengthMax),
      });
      return { schedule: encodeSchedule(schedule) };
    },
    async listGrantSchedules(req) {
      return { schedules: (await listGrantSchedules(deps, requireId("customer_id", req.customerId))).map(encodeSchedule) };
    },
    async listRollovers(req) {
      return { rollovers: (await listRollovers(deps, requireId("customer_id", req.customerId))).map(encodeRollover) };
    },
  };
}
