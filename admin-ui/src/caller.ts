// Who is signed in: the key's role, grant limit and the deployment's grant reason codes.
import type { GetCallerResponse } from "@burndown/sdk/gen/burndown/v1/ledger_service_pb.js";
import { createContext, useContext } from "react";

export const CallerContext = createContext<GetCallerResponse | null>(null);

export function useCaller(): GetCallerResponse {
  const caller = useContext(CallerContext);
  if (caller === null) throw new Error("useCaller outside a signed-in screen");
  return caller;
}
