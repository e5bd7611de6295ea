// A customer's plan subscriptions and grant schedules: which plan version they are on,
// what each schedule grants and when it grants next; for admins, subscribe, move to the
// plan's latest version, cancel (behind a confirmation), and add a recurring grant of the
// customer's own (a promotion, goodwill).
import { useQuery } from "@connectrpc/connect-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { GrantSource } from "@burndown/sdk/gen/burndown/v1/types_pb.js";
import { PlanService, type Subscription, SubscriptionState } from "@burndown/sdk/gen/burndown/v1/plans_pb.js";
import { type FormEvent, useState } from "react";
import { newRequestId } from "../api.js";
import { dateOf, formatTime } from "../format.js";
import { useChange } from "../mutations.js";
import { Confirm, ErrorNote, Loading, Section, useScales } from "../ui.js";
import { AllotmentFields, allotmentOf, allotmentText, initialAllotment } from "./platform/PlansPage.js";
import { useForm } from "./platform/forms.js";

const stateNames: Record<SubscriptionState, string> = {
  [SubscriptionState.UNSPECIFIED]: "unknown",
  [SubscriptionState.ACTIVE]: "active",
  [SubscriptionState.CANCELLED]: "cancelled",
  [SubscriptionState.MOVED]: "moved",
};

/** Subscriptions shows a customer's subscriptions and schedules, with the admin's actions. */
export function Subscriptions({ customerId, isAdmin }: { customerId: string; isAdmin: boolean }) {
  const subscriptions = useQuery(PlanService.method.listSubscriptions, { customerId });
  return (
    <Section title="Plan">
      {subscriptions.isPending ? (
        <Loading what="subscriptions" />
      ) : subscriptions.error ? (
        <ErrorNote error={subscriptions.error} prefix="Could not list subscriptions" />
      ) : subscriptions.data.subscriptions.length === 0 ? (
        <p className="muted">Not subscribed to a plan.</p>
      ) : (
        <table aria-label="Subscriptions">
          <thead>
            <tr>
              <th scope="col">Plan</th>
              <th scope="col">State</th>
              <th scope="col">Started</th>
              <th scope="col">Periods</th>
              <th scope="col">Ended</th>
              {isAdmin && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {subscriptions.data.subscriptions.map((subscription) => (
              <tr key={subscription.subscriptionId} data-subscription={subscription.subscriptionId}>
                <td>
                  <code>{subscription.planId}</code> v{subscription.planVersion}
                </td>
                <td>{stateNames[subscription.state]}</td>
                <td>{formatTime(dateOf(subscription.startTime))}</td>
                <td>{subscription.periodCount === 0 ? "forever" : subscription.periodCount}</td>
                <td>{formatTime(dateOf(subscription.endTime))}</td>
                {isAdmin && <td>{subscription.state === SubscriptionState.ACTIVE && <SubscriptionActions subscription={subscription} />}</td>}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {isAdmin && <SubscribeForm customerId={customerId} />}
      <Schedules customerId={customerId} isAdmin={isAdmin} />
    </Section>
  );
}

function SubscriptionActions({ subscription }: { subscription: Subscription }) {
  const move = useChange(PlanService.method.moveSubscription);
  const cancel = useChange(PlanService.method.cancelSubscription);
  const [confirming, setConfirming] = useState(false);
  const [requestId] = useState(newRequestId);
  const [moveRequestId] = useState(newRequestId);
  return (
    <>
      <button type="button" disabled={move.isPending} onClick={() => move.mutate({ subscriptionId: subscription.subscriptionId, planVersion: 0, requestId: moveRequestId })}>
        Move to latest version
      </button>{" "}
      <button type="button" className="danger" onClick={() => setConfirming(true)}>
        Cancel subscription
      </button>
      <Confirm
        open={confirming}
        title="Cancel this subscription?"
        confirmLabel="Cancel subscription"
        danger
        onCancel={() => setConfirming(false)}
        onConfirm={() => {
          setConfirming(false);
          cancel.mutate({ subscriptionId: subscription.subscriptionId, note: "cancelled in the admin UI", requestId });
        }}
      >
        <p>No period starting from now is granted. Credits granted already keep their dates.</p>
      </Confirm>
      <ErrorNote error={move.error ?? cancel.error} prefix="Not changed" />
    </>
  );
}

function SubscribeForm({ customerId }: { customerId: string }) {
  const plans = useQuery(PlanService.method.listPlans, {});
  const subscribe = useChange(PlanService.method.subscribeCustomer);
  const [planId, setPlanId] = useState("");
  const [periods, setPeriods] = useState("0");
  const [requestId, setRequestId] = useState(newRequestId);
  const [done, setDone] = useState<string | null>(null);
  const list = plans.data?.plans ?? [];
  const chosen = planId || list[0]?.planId || "";
  if (list.length === 0) return <p className="muted">No plans yet: add one under Platform, Plans.</p>;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    subscribe.mutate(
      { customerId, planId: chosen, planVersion: 0, periodCount: Number(periods) || 0, requestId },
      {
        onSuccess: (response) => {
          setDone(`Subscribed to ${response.subscription?.planId} version ${response.subscription?.planVersion}.`);
          setRequestId(newRequestId());
        },
      },
    );
  };
  return (
    <form className="stack" aria-label="Subscribe to a plan" onSubmit={submit}>
      <label>
        Plan
        <select
          value={chosen}
          onChange={(event) => {
            setPlanId(event.target.value);
            setRequestId(newRequestId());
          }}
        >
          {list.map((plan) => (
            <option key={plan.planId} value={plan.planId}>
              {plan.displayName} ({plan.planId} v{plan.version})
            </option>
          ))}
        </select>
      </label>
      <label>
        Periods (0: forever)
        <input
          inputMode="numeric"
          value={periods}
          onChange={(event) => {
            setPeriods(event.target.value);
            setRequestId(newRequestId());
          }}
        />
      </label>
      <button type="submit" disabled={subscribe.isPending}>
        Subscribe
      </button>
      <ErrorNote error={subscribe.error} prefix="Not subscribed" />
      {done && <p role="status">{done}</p>}
    </form>
  );
}

function Schedules({ customerId, isAdmin }: { customerId: string; isAdmin: boolean }) {
  const schedules = useQuery(PlanService.method.listGrantSchedules, { customerId });
  const scaleOf = useScales();
  return (
    <>
      <h3>Scheduled grants</h3>
      {schedules.isPending ? (
        <Loading what="schedules" />
      ) : schedules.error ? (
        <ErrorNote error={schedules.error} prefix="Could not list schedules" />
      ) : schedules.data.schedules.length === 0 ? (
        <p className="muted">No scheduled grants.</p>
      ) : (
        <table aria-label="Scheduled grants">
          <thead>
            <tr>
              <th scope="col">From</th>
              <th scope="col">Grants</th>
              <th scope="col" className="num">Periods granted</th>
              <th scope="col">Next grant</th>
            </tr>
          </thead>
          <tbody>
            {schedules.data.schedules.map((schedule) => (
              <tr key={schedule.scheduleId} data-schedule={schedule.scheduleId}>
                <td>{schedule.subscriptionId === "" ? schedule.reasonCode : "plan"}</td>
                <td>{schedule.allotment && allotmentText(schedule.allotment, scaleOf(schedule.allotment.creditTypeId))}</td>
                <td className="num">
                  {schedule.periodsGranted}
                  {schedule.periodCount === 0 ? "" : ` of ${schedule.periodCount}`}
                </td>
                <td>{schedule.nextGrantTime ? formatTime(dateOf(schedule.nextGrantTime)) : "none"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {isAdmin && <ScheduleForm customerId={customerId} />}
    </>
  );
}

function ScheduleForm({ customerId }: { customerId: string }) {
  const create = useChange(PlanService.method.createGrantSchedule);
  const types = useQuery(AdminService.method.listCreditTypes, {});
  const form = useForm({ reasonCode: "promotion", periods: "0" });
  const [allotment, setAllotment] = useState(initialAllotment);
  const [problem, setProblem] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const creditTypeId = allotment.creditTypeId || types.data?.creditTypes[0]?.creditTypeId || "";
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setProblem(null);
    setDone(null);
    try {
      const request = {
        customerId,
        allotment: allotmentOf(allotment, creditTypeId),
        source: GrantSource.PROMOTION,
        reasonCode: form.values.reasonCode.trim(),
        periodCount: Number(form.values.periods) || 0,
      };
      create.mutate(form.submission(request), {
        onSuccess: () => {
          setDone("Scheduled.");
          form.sent();
        },
      });
    } catch (error) {
      setProblem(error instanceof Error ? error.message : String(error));
    }
  };
  return (
    <form className="stack" aria-label="Schedule a recurring grant" onSubmit={submit}>
      <AllotmentFields
        values={allotment}
        set={(key, value) => setAllotment((current) => ({ ...current, [key]: value }))}
        creditTypeId={creditTypeId}
        onCreditType={(value) => setAllotment((current) => ({ ...current, creditTypeId: value }))}
      />
      <label>
        Reason code
        <input {...form.text("reasonCode")} required maxLength={64} />
      </label>
      <label>
        Periods (0: forever)
        <input inputMode="numeric" {...form.text("periods")} />
      </label>
      <button type="submit" disabled={create.isPending}>
        Schedule a recurring grant
      </button>
      {problem && <p className="error" role="alert">{problem}</p>}
      <ErrorNote error={create.error} prefix="Not scheduled" />
      {done && <p role="status">{done}</p>}
    </form>
  );
}
