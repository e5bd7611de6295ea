// Webhooks: the endpoints Burndown notifies (their secrets shown once, when made or
// rotated), and the outbox's events, newest first, with each delivery's status; admins
// make, rotate and disable endpoints and send events again. The secret lives only in this
// page's state (not in the query cache), so leaving the page forgets it for good.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { type WebhookEndpoint, WebhookDeliveryStatus, WebhookService } from "@burndown/sdk/gen/burndown/v1/webhooks_pb.js";
import { useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { dateOf, formatTime } from "../../format.js";
import { useChange } from "../../mutations.js";
import { Confirm, ErrorNote, Loading, Section } from "../../ui.js";
import { AdminOnly, Done, Pager, useForm, usePages } from "./forms.js";

/** The event types an endpoint may subscribe to (WebhookService in webhooks.proto). */
const eventTypes = ["grant.created", "balance.negative", "pricing_version.moved", "topup.paid", "topup.refunded", "credits.expiring"];

const statusNames: Record<WebhookDeliveryStatus, string> = {
  [WebhookDeliveryStatus.UNSPECIFIED]: "—",
  [WebhookDeliveryStatus.PENDING]: "Pending",
  [WebhookDeliveryStatus.DELIVERED]: "Delivered",
  [WebhookDeliveryStatus.FAILED]: "Failed",
};

interface NewSecret {
  url: string;
  secret: string;
}

/** WebhooksPage lists endpoints and events and, for admins, changes them. */
export function WebhooksPage({ isAdmin }: { isAdmin: boolean }) {
  const [secret, setSecret] = useState<NewSecret | null>(null);
  return (
    <>
      {secret && <SecretBox shown={secret} onDone={() => setSecret(null)} />}
      <EndpointsTable isAdmin={isAdmin} onSecret={setSecret} />
      {isAdmin ? <CreateEndpointForm onCreated={setSecret} /> : <AdminOnly what="add, rotate or disable endpoints and send events again" />}
      <EventsTable isAdmin={isAdmin} />
    </>
  );
}

function SecretBox({ shown, onDone }: { shown: NewSecret; onDone: () => void }) {
  return (
    <section className="token-box" aria-labelledby="new-secret-title">
      <h2 id="new-secret-title">The signing secret of {shown.url}</h2>
      <p className="warning">
        <strong>Copy this secret now: it will not be shown again.</strong> Your receiver checks each request's signature with it.
      </p>
      <div className="row">
        <input readOnly value={shown.secret} aria-label="Signing secret" data-testid="new-secret" onFocus={(event) => event.currentTarget.select()} />
        <button type="button" onClick={onDone}>I have stored it</button>
      </div>
    </section>
  );
}

function EndpointsTable({ isAdmin, onSecret }: { isAdmin: boolean; onSecret: (shown: NewSecret) => void }) {
  const queryClient = useQueryClient();
  const endpoints = useQuery(WebhookService.method.listWebhookEndpoints, {});
  const disable = useChange(WebhookService.method.disableWebhookEndpoint);
  // Not useChange: gcTime 0 drops the response (and its secret) from the mutation cache at once.
  const rotate = useMutation(WebhookService.method.rotateWebhookSecret, { gcTime: 0, onSettled: () => queryClient.invalidateQueries() });
  const [asking, setAsking] = useState<{ endpoint: WebhookEndpoint; action: "disable" | "rotate" } | null>(null);
  const form = useForm({});
  const confirm = () => {
    if (asking === null) return;
    const { endpoint, action } = asking;
    if (action === "disable") disable.mutate(form.submission({ endpointId: endpoint.endpointId }), { onSuccess: () => form.sent() });
    else {
      rotate.mutate(form.submission({ endpointId: endpoint.endpointId }), {
        onSuccess: (response) => {
          if (response.secret !== "") onSecret({ url: endpoint.url, secret: response.secret });
          form.sent();
          rotate.reset();
        },
      });
    }
    setAsking(null);
  };
  return (
    <Section title="Webhook endpoints">
      {endpoints.isPending ? (
        <Loading what="webhook endpoints" />
      ) : endpoints.error ? (
        <ErrorNote error={endpoints.error} prefix="Could not list webhook endpoints" />
      ) : endpoints.data.endpoints.length === 0 ? (
        <p className="muted">No endpoint yet: nothing is sent.</p>
      ) : (
        <table aria-label="Webhook endpoints">
          <thead>
            <tr>
              <th scope="col">URL</th>
              <th scope="col">Events</th>
              <th scope="col">Description</th>
              <th scope="col">Secret set</th>
              <th scope="col">State</th>
              {isAdmin && <th scope="col"><span className="sr-only">Actions</span></th>}
            </tr>
          </thead>
          <tbody>
            {endpoints.data.endpoints.map((endpoint) => (
              <tr key={endpoint.endpointId} data-endpoint-id={endpoint.endpointId}>
                <td><code>{endpoint.url}</code></td>
                <td>{endpoint.eventTypes.length === 0 ? "all" : endpoint.eventTypes.join(", ")}</td>
                <td>{endpoint.description}</td>
                <td>{formatTime(dateOf(endpoint.secretTime))}</td>
                <td data-testid="endpoint-state">{endpoint.disableTime ? `Disabled ${formatTime(dateOf(endpoint.disableTime))}` : "Enabled"}</td>
                {isAdmin && (
                  <td>
                    {!endpoint.disableTime && (
                      <>
                        <button type="button" onClick={() => setAsking({ endpoint, action: "rotate" })}>
                          Rotate secret<span className="sr-only"> of {endpoint.url}</span>
                        </button>
                        <button type="button" className="danger" onClick={() => setAsking({ endpoint, action: "disable" })}>
                          Disable<span className="sr-only"> {endpoint.url}</span>
                        </button>
                      </>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ErrorNote error={disable.error} prefix="Endpoint not disabled" />
      <ErrorNote error={rotate.error} prefix="Secret not rotated" />
      <Confirm
        open={asking !== null}
        title={asking?.action === "disable" ? `Disable ${asking.endpoint.url}?` : `Rotate the secret of ${asking?.endpoint.url ?? ""}?`}
        confirmLabel={asking?.action === "disable" ? "Disable" : "Rotate"}
        danger={asking?.action === "disable"}
        onConfirm={confirm}
        onCancel={() => setAsking(null)}
      >
        {asking?.action === "disable" ? (
          <p>Nothing more is sent to it, pending deliveries included. This cannot be undone: add the endpoint again instead.</p>
        ) : (
          <p>Every request from now on is signed with the new secret: have the receiver accept both until it has the new one.</p>
        )}
      </Confirm>
    </Section>
  );
}

function CreateEndpointForm({ onCreated }: { onCreated: (shown: NewSecret) => void }) {
  const queryClient = useQueryClient();
  const create = useMutation(WebhookService.method.createWebhookEndpoint, { gcTime: 0, onSettled: () => queryClient.invalidateQueries() });
  const initial = { url: "", description: "" };
  const form = useForm(initial);
  const [types, setTypes] = useState<string[]>([]);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const url = form.values.url.trim();
    create.mutate(form.submission({ url, eventTypes: types, description: form.values.description }), {
      onSuccess: (response) => {
        // A replayed request answers without the secret: there is nothing to show again.
        if (response.secret !== "") onCreated({ url, secret: response.secret });
        form.sent(initial);
        setTypes([]);
        create.reset();
      },
    });
  };
  return (
    <Section title="Add a webhook endpoint">
      <form className="stack" aria-label="Add a webhook endpoint" onSubmit={submit}>
        <label>
          URL (http or https)
          <input type="url" {...form.text("url")} required maxLength={2_000} />
        </label>
        <fieldset>
          <legend>Events (none checked: every event)</legend>
          {eventTypes.map((type) => (
            <label key={type}>
              <input
                type="checkbox"
                checked={types.includes(type)}
                onChange={(event) => setTypes(event.target.checked ? [...types, type] : types.filter((t) => t !== type))}
              />
              {type}
            </label>
          ))}
        </fieldset>
        <label>
          Description (optional)
          <input {...form.text("description")} maxLength={1_000} />
        </label>
        <button type="submit" className="primary" disabled={create.isPending}>
          Add endpoint
        </button>
        <ErrorNote error={create.error} prefix="No endpoint added" />
      </form>
    </Section>
  );
}

function EventsTable({ isAdmin }: { isAdmin: boolean }) {
  const pages = usePages();
  // Deliveries move on in the background (the worker), not through this page: read afresh on every visit, and every 10 s.
  const events = useQuery(WebhookService.method.listWebhookEvents, { pageSize: 50, pageToken: pages.token }, { refetchOnMount: "always", refetchInterval: 10_000 });
  const replay = useChange(WebhookService.method.replayWebhookEvents);
  const form = useForm({ endpointId: "", since: "" });
  const [done, setDone] = useState<string | null>(null);
  const resend = (endpointId: string, eventId: string) => {
    setDone(null);
    replay.mutate(form.submission({ endpointId, eventIds: [eventId] }), {
      onSuccess: () => {
        form.sent();
        setDone("Queued to be sent again.");
      },
    });
  };
  const replayFailed = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    const sinceTime = timestampFromDate(new Date(`${form.values.since}T00:00:00Z`));
    replay.mutate(form.submission({ endpointId: form.values.endpointId, sinceTime }), {
      onSuccess: (response) => {
        form.sent();
        setDone(`${response.replayedCount} failed deliveries queued to be sent again.`);
      },
    });
  };
  const endpoints = useQuery(WebhookService.method.listWebhookEndpoints, {});
  return (
    <Section title="Webhook events">
      {events.isPending ? (
        <Loading what="webhook events" />
      ) : events.error ? (
        <ErrorNote error={events.error} prefix="Could not list webhook events" />
      ) : events.data.events.length === 0 ? (
        <p className="muted">No event yet.</p>
      ) : (
        <table aria-label="Webhook events">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Type</th>
              <th scope="col">Customer</th>
              <th scope="col">Event id</th>
              <th scope="col">Deliveries</th>
            </tr>
          </thead>
          <tbody>
            {events.data.events.map((event) => (
              <tr key={event.eventId} data-event-id={event.eventId}>
                <td>{formatTime(dateOf(event.createTime))}</td>
                <td>{event.type}</td>
                <td>{event.customerId || "—"}</td>
                <td><code>{event.eventId}</code></td>
                <td>
                  <ul>
                    {event.deliveries.map((delivery) => (
                      <li key={delivery.endpointId} data-testid="delivery">
                        {statusNames[delivery.status]} after {delivery.attempts} {delivery.attempts === 1 ? "attempt" : "attempts"}
                        {delivery.lastHttpStatus !== 0 && ` (HTTP ${delivery.lastHttpStatus})`}
                        {delivery.lastError && delivery.status !== WebhookDeliveryStatus.DELIVERED && `: ${delivery.lastError}`}
                        {isAdmin && (
                          <button type="button" onClick={() => resend(delivery.endpointId, event.eventId)}>
                            Send again<span className="sr-only"> {event.eventId} to endpoint {delivery.endpointId}</span>
                          </button>
                        )}
                      </li>
                    ))}
                  </ul>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager pages={pages} nextToken={events.data?.nextPageToken} backLabel="Newer" nextLabel="Older" />
      {isAdmin && (
        <form className="stack" aria-label="Send failed events again" onSubmit={replayFailed}>
          <label>
            Endpoint
            <select {...form.text("endpointId")} required>
              <option value="">Choose an endpoint</option>
              {endpoints.data?.endpoints.filter((endpoint) => !endpoint.disableTime).map((endpoint) => (
                <option key={endpoint.endpointId} value={endpoint.endpointId}>{endpoint.url}</option>
              ))}
            </select>
          </label>
          <label>
            Failed since (UTC)
            <input type="date" {...form.text("since")} required />
          </label>
          <button type="submit" disabled={replay.isPending}>Send failed events again</button>
        </form>
      )}
      <Done text={done} />
      <ErrorNote error={replay.error} prefix="Nothing sent again" />
    </Section>
  );
}
