// Lot upkeep as an op of the write path (write-op.ts): the free part of every lot past
// its expiry time expires, and debt is settled from lots that became effective (dated
// when they did). The expiry job runs it for balances with lots due to expire or newly
// effective; any change to a balance runs the same upkeep first anyway.
import { planUpkeep } from "../ledger/plan.js";
import type { DueBalance } from "../store/balance-store.js";
import { loadedState, type WriteOp } from "./write-op.js";

/**
 * expireLotsOp brings one balance up to now, and takes its newly effective lots off the
 * job's list; false when nothing changed or the balance was busy (it stays due).
 */
export function expireLotsOp(due: DueBalance): WriteOp<boolean> {
  const { key, activatedGrantIds } = due;
  return {
    lane: { customerId: key.customerId },
    weight: 1,
    request: () => {},
    prepare: () => ({ keys: [key], customerIds: [key.customerId] }),
    plan: (ctx) => {
      const slot = ctx.balance(key);
      if (slot.kind === "busy") return { value: false };
      for (const grantId of activatedGrantIds) ctx.draft.activated({ customerId: key.customerId, grantId });
      if (slot.kind === "missing") return { value: false };
      const planned = planUpkeep(loadedState(slot, key), ctx.now.getTime());
      if (planned.entries.length === 0) return { value: false };
      ctx.draft.change(key, planned, { reservationId: null, requestId: null, actor: "system", reasonCode: "lot_expired", effectiveAt: ctx.now });
      return { value: true };
    },
  };
}
