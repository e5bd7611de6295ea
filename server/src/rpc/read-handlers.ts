// LedgerService's reads for the admin UI and the customer's own view: who the calling key
// is. Decode, call one service function, encode.
import type { ServiceImpl } from "@connectrpc/connect";
import type { LedgerService } from "@burndown/sdk";
import type { Deps } from "../service/context.js";
import { getCaller } from "../service/get-caller.js";
import { roleOf } from "./decode.js";
import { callerOf } from "./ledger-handlers.js";

/** readHandlers implements LedgerService's GetCaller. */
export function readHandlers(deps: Deps): Partial<ServiceImpl<typeof LedgerService>> {
  return {
    async getCaller(_req, ctx) {
      const caller = getCaller(deps, callerOf(ctx));
      return { ...caller, role: roleOf(caller.role), customerId: caller.customerId ?? "", grantReasonCodes: [...caller.grantReasonCodes] };
    },
  };
}
