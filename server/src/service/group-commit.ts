// Group commit: concurrent balance changes share transactions. Customers are spread over
// lanes by hash (customer-hash.ts); each lane runs one group transaction at a time
// (write-group.ts), and every op that arrives while it runs joins the lane's next one, up
// to groupWeightMax. A lone call starts at once (on the next microtask, so that a batch's
// items submitted together go together): no timer adds latency. One customer's ops run in
// the order they were submitted. A lane's customers are all in one customer-hash
// partition, so a group never spans two partitions (lanes is a multiple of partitions).
//
// A caller with a deadline (deadline.ts) waits only that long: an op still queued then is
// withdrawn, one already in a transaction is answered Unavailable and may still commit
// (retrying with the same request id is safe). Groups run outside any caller's deadline.
//
// Traces: a group serves many calls, and a span has one parent. Each traced call gets a
// span "burndown.write" under its RPC span, from its submit to its answer (the wait in the
// lane and its group's transaction). The group's span "burndown.write_group", under which
// its transaction and statements sit, is a child of the first traced op's write span and
// links to the write spans of the group's other traced ops; each of those links back to
// it. A lone call (the common case below saturation) so reads RPC → write → group →
// transaction → statements in one trace; a call that joined a busy group finds the group
// by its link. Groups run in no caller's context, so a group never parents itself to
// whichever call happened to wake the lane.
import { ROOT_CONTEXT, type Link, type Span, SpanStatusCode, context, trace } from "@opentelemetry/api";
import { outsideDeadline, remainingMs } from "../deadline.js";
import { LedgerError } from "../errors.js";
import { assert } from "../ledger/balance-state.js";
import { recording } from "../store/traced-queries.js";
import { tracer } from "../tracing.js";
import { customerHash } from "./customer-hash.js";
import { type GroupDeps, type GroupOutcome, runWriteGroup } from "./write-group.js";
import type { Outcome, WriteOp } from "./write-op.js";

/** GroupCommitOptions shape the lanes. */
export interface GroupCommitOptions {
  lanes: number;
  /** customer-hash partitions; lanes must be a multiple of it. */
  partitions: number;
  /** items per group transaction. */
  groupWeightMax: number;
}

/** Pending is an op waiting for (or in) a group, with the caller's answer. */
interface Pending {
  op: WriteOp<unknown>;
  /** the caller's deadline, epoch ms. */
  deadlineAtMs: number | undefined;
  started: boolean;
  answer: (outcome: Outcome<unknown>) => void;
  /** the op's write span, when its call is traced. */
  span: Span | undefined;
}

interface Lane {
  index: number;
  queue: Pending[];
  running: boolean;
}

function deadlinePassed(): LedgerError {
  return new LedgerError("unavailable", "DATABASE_UNAVAILABLE", "the database did not answer within the call's deadline (waiting for a write group); retry", {});
}

/** endWriteSpan ends an op's write span with its outcome. */
function endWriteSpan(span: Span, outcome: Outcome<unknown>): void {
  if (!outcome.ok) span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error instanceof Error ? outcome.error.message : String(outcome.error) });
  span.end();
}

/**
 * startGroupSpan starts a group's span when any of its ops is traced: the first traced op's
 * write span is its parent, the others' are linked both ways (see the top of this file).
 */
function startGroupSpan(lane: Lane, group: readonly Pending[]): Span | undefined {
  const traced = group.filter((pending) => pending.span !== undefined);
  if (traced.length === 0) return undefined;
  const [first, ...others] = traced.map((pending) => pending.span!);
  const links: Link[] = others.map((other) => ({ context: other.spanContext() }));
  const attributes = { "burndown.write.lane": lane.index, "burndown.write.ops": group.length };
  const span = tracer.startSpan("burndown.write_group", { attributes, links }, trace.setSpan(ROOT_CONTEXT, first));
  for (const other of others) other.addLink({ context: span.spanContext() });
  for (const pending of traced) pending.span!.setAttribute("burndown.write.group_ops", group.length);
  return span;
}

/** GroupCommit runs every balance change of this process through its lanes. */
export class GroupCommit {
  private readonly lanes: Lane[];

  constructor(
    private readonly deps: GroupDeps,
    readonly options: GroupCommitOptions,
  ) {
    const { lanes, partitions, groupWeightMax } = options;
    if (!(Number.isInteger(lanes) && lanes >= 1 && Number.isInteger(partitions) && partitions >= 1 && lanes % partitions === 0 && groupWeightMax >= 1)) {
      throw new Error(`GroupCommit: lanes (${lanes}) must be a positive multiple of partitions (${partitions})`);
    }
    this.lanes = Array.from({ length: lanes }, (_, index) => ({ index, queue: [], running: false }));
  }

  /** submit runs one op in the next group of its lane; it resolves with the op's result or rejects with its error. */
  async submit<T>(op: WriteOp<T>): Promise<T> {
    const [outcome] = await this.submitAll([op]);
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /** submitAll queues ops together (a batch: one customer's in order) and answers each. */
  submitAll<T>(ops: readonly WriteOp<T>[]): Promise<Outcome<T>[]> {
    const budgetMs = remainingMs();
    return Promise.all(ops.map((op) => this.enqueue(op as WriteOp<unknown>, budgetMs) as Promise<Outcome<T>>));
  }

  /** laneOfCustomer is the index of a customer's lane (a batch that spans lanes splits by it). */
  laneOfCustomer(customerId: string): number {
    return customerHash(customerId) % this.lanes.length;
  }

  private laneOf(op: WriteOp<unknown>): Lane {
    const hash = "customerId" in op.lane ? customerHash(op.lane.customerId) : op.lane.customerHash;
    return this.lanes[hash % this.lanes.length];
  }

  private enqueue(op: WriteOp<unknown>, budgetMs: number | undefined): Promise<Outcome<unknown>> {
    if (budgetMs !== undefined && budgetMs <= 0) return Promise.resolve({ ok: false, error: deadlinePassed() });
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const lane = this.laneOf(op);
      const span = recording() ? tracer.startSpan("burndown.write", { attributes: { "burndown.write.lane": lane.index } }) : undefined;
      const pending: Pending = {
        op,
        deadlineAtMs: budgetMs === undefined ? undefined : Date.now() + budgetMs,
        started: false,
        answer: (outcome) => {
          clearTimeout(timer);
          if (span !== undefined) endWriteSpan(span, outcome);
          resolve(outcome);
        },
        span,
      };
      if (budgetMs !== undefined) {
        timer = setTimeout(() => {
          const index = lane.queue.indexOf(pending);
          if (index >= 0) lane.queue.splice(index, 1);
          pending.answer({ ok: false, error: deadlinePassed() });
          pending.answer = () => {};
        }, budgetMs);
      }
      this.push(lane, pending);
    });
  }

  private push(lane: Lane, pending: Pending, front = false): void {
    if (front) lane.queue.unshift(pending);
    else lane.queue.push(pending);
    if (lane.running) return;
    lane.running = true;
    queueMicrotask(() => void outsideDeadline(() => this.drain(lane)));
  }

  /** drain runs the lane's groups until its queue is empty. */
  private async drain(lane: Lane): Promise<void> {
    while (lane.queue.length > 0) {
      const group = this.take(lane);
      const span = startGroupSpan(lane, group);
      const run = () =>
        runWriteGroup(this.deps, group.map((pending) => pending.op), {
          partition: { index: lane.index % this.options.partitions, count: this.options.partitions },
          deadlinesAtMs: group.map((pending) => pending.deadlineAtMs),
        });
      const outcomes = await context.with(span === undefined ? ROOT_CONTEXT : trace.setSpan(ROOT_CONTEXT, span), run);
      span?.end();
      const deferred: Pending[] = [];
      group.forEach((pending, i) => this.settle(lane, pending, outcomes[i], deferred));
      // Deferred ops go first in the next group, in their order.
      for (const pending of deferred.reverse()) this.push(lane, pending, true);
    }
    lane.running = false;
  }

  private take(lane: Lane): Pending[] {
    const group: Pending[] = [];
    let weight = 0;
    const fits = (op: WriteOp<unknown>) => group.length === 0 || (op.load === undefined && group[0].op.load === undefined && weight + op.weight <= this.options.groupWeightMax);
    while (lane.queue.length > 0 && fits(lane.queue[0].op)) {
      const pending = lane.queue.shift()!;
      pending.started = true;
      weight += pending.op.weight;
      group.push(pending);
    }
    assert(group.length > 0, "a group takes at least one op");
    return group;
  }

  private settle(lane: Lane, pending: Pending, outcome: GroupOutcome<unknown>, deferred: Pending[]): void {
    if (!("deferred" in outcome)) return pending.answer(outcome);
    pending.started = false;
    if (outcome.customerId === undefined) return void deferred.push(pending);
    // Its customer belongs to another lane's partition (a reservation id not made here).
    const target = this.lanes[customerHash(outcome.customerId) % this.lanes.length];
    assert(target !== lane, "an op deferred to its customer's lane moves");
    this.push(target, pending);
  }
}
