// Every change goes through a public RPC; after it lands every query refetches, so no
// screen shows a balance from before the change.
import { useMutation } from "@connectrpc/connect-query";
import type { DescMessage, DescMethodUnary } from "@bufbuild/protobuf";
import { useQueryClient } from "@tanstack/react-query";

export function useChange<I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>) {
  const queryClient = useQueryClient();
  return useMutation(method, {
    onSettled: () => queryClient.invalidateQueries(),
  });
}
