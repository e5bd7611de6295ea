// What this process believes about pool membership before a write group takes its locks:
// which customers spend a pool owner's balance (the balance to lock). A belief is only a
// guess: the group reads every spending customer's membership in its lock statement, and
// an op whose guess was wrong is deferred to the next group, which guesses from what this
// one read. A customer never seen as a member is guessed to spend its own balance, so a
// deployment without pools keeps nothing here, and a membership changed by another
// replica costs one deferral.
import { limits } from "../limits.js";
import type { PoolParents } from "../store/write-inputs-store.js";

/** PoolCache remembers the pool owners of members seen by this process's write groups, bounded. */
export class PoolCache implements PoolParents {
  private readonly parents = new Map<string, string>();

  parentOf(customerId: string): string | undefined {
    return this.parents.get(customerId);
  }

  /**
   * learn records what a group read: every customer asked about is a member of the pool
   * found for it, or of none. Past the bound, the oldest entries are forgotten.
   */
  learn(asked: readonly string[], found: ReadonlyMap<string, { parentCustomerId: string }>): void {
    for (const customerId of asked) {
      const membership = found.get(customerId);
      if (membership === undefined) this.parents.delete(customerId);
      else this.parents.set(customerId, membership.parentCustomerId);
    }
    for (const oldest of this.parents.keys()) {
      if (this.parents.size <= limits.poolMembersCachedMax) break;
      this.parents.delete(oldest);
    }
  }
}

/** sharedPoolCache serves write groups whose deps bring no cache of their own (jobs, tests). */
export const sharedPoolCache = new PoolCache();
