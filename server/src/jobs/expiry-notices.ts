// credits.expiring: a pass that announces, once per lot, the free credits that expire
// within the deployment's notice window (BURNDOWN_CREDITS_EXPIRING_DAYS), so a vendor can
// remind its customer to use them. Each pass claims a bounded batch of lots and queues
// their events in one transaction: a lot is announced exactly when its notice commits,
// whichever replica runs the pass, and a failed pass is taken again by the next.
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { mapDriverErrors, withTransaction } from "../store/database.js";
import { claimExpiringLots, enqueueWebhookEvents } from "../store/webhook-store.js";

/** noticeExpiringCredits announces lots expiring within `withinMs` of now; returns how many it announced. */
export async function noticeExpiringCredits(deps: Deps, withinMs: number): Promise<number> {
  const now = deps.now();
  return mapDriverErrors(() =>
    withTransaction(deps.pool, async (tx) => {
      const lots = await claimExpiringLots(tx, { now, until: new Date(now.getTime() + withinMs), limit: limits.jobBatchSizeMax });
      await enqueueWebhookEvents(
        tx,
        "credits.expiring",
        lots.map((lot) => ({
          customerId: lot.customerId,
          payload: {
            grantId: lot.grantId,
            creditTypeId: lot.creditTypeId,
            amount: lot.amount.toString(),
            source: lot.source,
            expireTime: lot.expireTime,
          },
        })),
      );
      return lots.length;
    }),
  );
}
