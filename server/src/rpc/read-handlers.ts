// LedgerService's reads for the admin UI and the customer's own view: who the calling key
// is, and a customer's reservations. Decode, call one service function, encode. A
// customer key reads its own customer only (ownCustomer), as for GetBalance.
import type { ServiceImpl } from "@connectrpc/connect";
import type { LedgerService } from "@burndown/sdk";
import { limits } from "../limits.js";
import type { Deps } from "../service/context.js";
import { getCaller } from "../service/get-caller.js";
import { listReservations } from "../service/list-reservations.js";
import { requireId, requirePageSize, requireText, roleOf } from "./decode.js";
import { encodeReservation } from "./encode.js";
import { ownCustomer } from "./interceptors.js";
import { callerOf } from "./ledger-handlers.js";

/** readHandlers implements LedgerService's GetCaller and ListReservations. */
export function readHandlers(deps: Deps): Partial<ServiceImpl<typeof LedgerService>> {
  return {
    async getCaller(_req, ctx) {
      const caller = getCaller(deps, callerOf(ctx));
      return { ...caller, role: roleOf(caller.role), customerId: caller.customerId ?? "", grantReasonCodes: [...caller.grantReasonCodes] };
    },
    async listReservations(req, ctx) {
      const page = await listReservations(deps, {
        customerId: ownCustomer(callerOf(ctx), requireId("customer_id", req.customerId)),
        includeResolved: req.includeResolved,
        pageSize: requirePageSize(req.pageSize),
        pageToken: requireText("page_token", req.pageToken, limits.pageTokenLengthMax),
      });
      return { reservations: page.reservations.map(encodeReservation), nextPageToken: page.nextPageToken };
    },
  };
}
