// A customer's pool. A pool owner sees its members, each with its limits and what it
// used this period, and (admin) attaches, detaches and limits them; a member sees that
// it burns from its owner's pool, with a link to the owner.
import { useQuery } from "@connectrpc/connect-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { type PoolMember, PoolPeriod, PoolService } from "@burndown/sdk/gen/burndown/v1/pools_pb.js";
import { Role } from "@burndown/sdk/gen/burndown/v1/types_pb.js";
import { type FormEvent, useState } from "react";
import { newRequestId } from "../api.js";
import { useCaller } from "../caller.js";
import { dateOf, formatDate, parseAmount } from "../format.js";
import { useChange } from "../mutations.js";
import { href } from "../router.js";
import { Amount, Confirm, CreditTypeSelect, ErrorNote, Loading, Section, useScales } from "../ui.js";

const periodNames: Record<PoolPeriod, string> = { [PoolPeriod.UNSPECIFIED]: "", [PoolPeriod.MONTH]: "month", [PoolPeriod.DAY]: "day" };

export function PoolSection({ customerId }: { customerId: string }) {
  const pool = useQuery(PoolService.method.listPoolMembers, { customerId });
  const me = useCaller();
  if (pool.isPending) return <Loading what="the pool" />;
  if (pool.error) return <ErrorNote error={pool.error} prefix="Pool" />;
  const { membership, members } = pool.data;
  if (membership) {
    return (
      <Section title="Pool">
        <p data-testid="pool-membership">
          Burns from the pool of <a href={href("customers", membership.parentCustomerId)}>{membership.parentCustomerId}</a>: its own credits wait until it
          leaves the pool.
        </p>
        <MemberFigures member={membership} />
      </Section>
    );
  }
  const admin = me.role === Role.ADMIN;
  return (
    <Section title="Pool">
      {members.length === 0 ? (
        <p className="muted">No members: this customer spends only its own credits.</p>
      ) : (
        <MembersTable members={members} admin={admin} />
      )}
      {admin && <AttachForm parentCustomerId={customerId} />}
      {admin && members.length > 0 && <LimitForm members={members} />}
    </Section>
  );
}

/** MemberFigures lists a member's limits and what it used this period, per credit type. */
function MemberFigures({ member }: { member: PoolMember }) {
  const scaleOf = useScales();
  const creditTypeIds = [...new Set([...member.limits.map((l) => l.creditTypeId), ...member.usage.map((u) => u.creditTypeId)])].sort();
  if (creditTypeIds.length === 0) return <span className="muted">No limit, nothing used this month</span>;
  return (
    <ul className="plain">
      {creditTypeIds.map((creditTypeId) => {
        const limit = member.limits.find((l) => l.creditTypeId === creditTypeId);
        const used = member.usage.find((u) => u.creditTypeId === creditTypeId);
        const scale = scaleOf(creditTypeId);
        return (
          <li key={creditTypeId} data-testid={`pool-${member.memberCustomerId}-${creditTypeId}`}>
            {creditTypeId}: <Amount value={used?.used ?? 0n} scale={scale} /> used
            {limit ? (
              <>
                {" "}of <Amount value={limit.limit} scale={scale} /> per {periodNames[limit.period]}
              </>
            ) : (
              " (no limit)"
            )}
            {used && <span className="muted"> since {formatDate(dateOf(used.periodStartTime))}</span>}
          </li>
        );
      })}
    </ul>
  );
}

function MembersTable({ members, admin }: { members: PoolMember[]; admin: boolean }) {
  const detach = useChange(PoolService.method.detachPoolMember);
  const [leaving, setLeaving] = useState<string | null>(null);
  return (
    <>
      <table aria-label="Pool members">
        <thead>
          <tr>
            <th scope="col">Member</th>
            <th scope="col">Limits and use this period</th>
            <th scope="col">Attached</th>
            {admin && <th scope="col" />}
          </tr>
        </thead>
        <tbody>
          {members.map((member) => (
            <tr key={member.memberCustomerId}>
              <td><a href={href("customers", member.memberCustomerId)}>{member.memberCustomerId}</a></td>
              <td><MemberFigures member={member} /></td>
              <td>{formatDate(dateOf(member.attachTime))}</td>
              {admin && (
                <td>
                  <button type="button" className="danger" onClick={() => setLeaving(member.memberCustomerId)}>
                    Detach
                  </button>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      <Confirm
        open={leaving !== null}
        title="Detach from the pool?"
        confirmLabel="Detach"
        danger
        onCancel={() => setLeaving(null)}
        onConfirm={() => {
          if (leaving !== null) detach.mutate({ memberCustomerId: leaving, requestId: newRequestId() });
          setLeaving(null);
        }}
      >
        <p>{leaving} will spend only its own credits from now on. What it burned from the pool stays in this ledger.</p>
      </Confirm>
      <ErrorNote error={detach.error} prefix="Not detached" />
    </>
  );
}

function AttachForm({ parentCustomerId }: { parentCustomerId: string }) {
  const attach = useChange(PoolService.method.attachPoolMember);
  const [memberCustomerId, setMemberCustomerId] = useState("");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    attach.mutate({ parentCustomerId, memberCustomerId: memberCustomerId.trim(), requestId: newRequestId() }, { onSuccess: () => setMemberCustomerId("") });
  };
  return (
    <>
      <form onSubmit={submit} className="row" aria-label="Attach a member">
        <label>
          Member customer id
          <input value={memberCustomerId} onChange={(event) => setMemberCustomerId(event.target.value)} required />
        </label>
        <button type="submit" disabled={attach.isPending}>Attach</button>
      </form>
      <ErrorNote error={attach.error} prefix="Not attached" />
    </>
  );
}

function LimitForm({ members }: { members: PoolMember[] }) {
  const creditTypes = useQuery(AdminService.method.listCreditTypes, {});
  const change = useChange(PoolService.method.setPoolMemberLimit);
  const [memberCustomerId, setMemberCustomerId] = useState("");
  const [creditTypeId, setCreditTypeId] = useState("");
  const [period, setPeriod] = useState(PoolPeriod.MONTH);
  const [text, setText] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const types = creditTypes.data?.creditTypes ?? [];
  const member = memberCustomerId || members[0].memberCustomerId;
  const chosen = creditTypeId || types[0]?.creditTypeId || "";
  const scale = types.find((type) => type.creditTypeId === chosen)?.scale ?? 0;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setProblem(null);
    const unlimited = text.trim() === "";
    let limit = 0n;
    try {
      if (!unlimited) limit = parseAmount(text, scale);
    } catch (error) {
      setProblem((error as Error).message);
      return;
    }
    change.mutate({ memberCustomerId: member, creditTypeId: chosen, limit, period, unlimited, requestId: newRequestId() });
  };
  return (
    <>
      <form onSubmit={submit} className="row" aria-label="Set a member's limit">
        <label>
          Member
          <select value={member} onChange={(event) => setMemberCustomerId(event.target.value)}>
            {members.map((m) => (
              <option key={m.memberCustomerId} value={m.memberCustomerId}>{m.memberCustomerId}</option>
            ))}
          </select>
        </label>
        <CreditTypeSelect types={types} value={chosen} onChange={setCreditTypeId} />
        <label>
          Limit (empty: none)
          <input inputMode="decimal" value={text} onChange={(event) => setText(event.target.value)} />
        </label>
        <label>
          Per
          <select value={period} onChange={(event) => setPeriod(Number(event.target.value) as PoolPeriod)}>
            <option value={PoolPeriod.MONTH}>month</option>
            <option value={PoolPeriod.DAY}>day</option>
          </select>
        </label>
        <button type="submit" disabled={change.isPending}>Set limit</button>
      </form>
      {problem && <p className="error">{problem}</p>}
      <ErrorNote error={change.error} prefix="Not changed" />
    </>
  );
}
