// The API key on every call of a raw Connect client, as the SDK sends it.
import type { Interceptor } from "@connectrpc/connect";

/** bearer sends token as "Authorization: Bearer <token>". */
export function bearer(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}
