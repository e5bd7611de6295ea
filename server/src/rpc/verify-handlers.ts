// AdminService.VerifyLedger: decode, verify, encode.
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { AdminService } from "@burndown/sdk";
import type { Deps } from "../service/context.js";
import { verifyLedger } from "../service/verify-ledger.js";
import { optionalId } from "./decode.js";

/** verifyHandlers implements AdminService.VerifyLedger. */
export function verifyHandlers(deps: Deps): Partial<ServiceImpl<typeof AdminService>> {
  return {
    async verifyLedger(req) {
      const result = await verifyLedger(deps.pool, { customerId: optionalId("customer_id", req.customerId) });
      return {
        balancesChecked: result.counts.balances,
        lotsChecked: result.counts.lots,
        reservationsChecked: result.counts.reservations,
        entriesChecked: result.counts.entries,
        differenceCount: result.counts.differences,
        differences: result.differences,
        duration: durationFromMs(Math.max(1, Math.round(result.durationMs))),
      };
    },
  };
}
