// Lot expiry as an op of the write path (write-op.ts): the free part of every lot past
// its expiry time expires, and debt is settled from what is live. The expiry job runs it
// for balances with lots due; any change to a balance runs the same upkeep first anyway.
import { planUpkeep } from "../ledger/plan.js";
import type { BalanceKey } from "../store/balance-store.js";
import { loadedState, type WriteOp } from "./write-op.js";

/** expireLotsOp expires what is due on one balance; false when nothing was due or the balance was busy. */
export function expireLotsOp(key: BalanceKey): WriteOp<boolean> {
  return {
    lane: { customerId: key.customerId },
    weight: 1,
    request: () => {},
    prepare: () => ({ keys: [key], customerIds: [key.customerId] }),
    plan: (ctx) => {
      const slot = ctx.balance(key);
      if (slot.kind === "busy" || slot.kind === "missing") return { value: false };
      const planned = planUpkeep(loadedState(slot, key), ctx.now.getTime());
      if (planned.entries.length === 0) return { value: false };
      ctx.draft.change(key, planned, { reservationId: null, requestId: null, actor: "system", reasonCode: "lot_expired", effectiveAt: ctx.now });
      return { value: true };
    },
  };
}
