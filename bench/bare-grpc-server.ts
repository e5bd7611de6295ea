// The "bare HTTP/2 server" baseline of the hot-path benchmark: the same empty RPC as the
// transport ceiling (grpc.health.v1.Health/Check, protobuf-es encoding) on a bare
// @grpc/grpc-js server with no interceptors, no admission, no authentication and no
// database, in a process of its own. Whatever the real server's empty RPC costs beyond
// this is the price of Burndown's own RPC stack. Prints "listening <port>" and serves until
// SIGTERM or SIGINT.
//   npx tsx bench/bare-grpc-server.ts
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { type HealthCheckRequest, type HealthCheckResponse, HealthService, ServingStatus } from "../server/src/rpc/health.js";

const check = HealthService.method.check;
const server = new grpc.Server();
server.addService(
  {
    Check: {
      path: `/${HealthService.typeName}/${check.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (message: HealthCheckRequest) => Buffer.from(toBinary(check.input, message)),
      requestDeserialize: (bytes: Buffer) => fromBinary(check.input, bytes),
      responseSerialize: (message: HealthCheckResponse) => Buffer.from(toBinary(check.output, message)),
      responseDeserialize: (bytes: Buffer) => fromBinary(check.output, bytes),
    },
  },
  {
    Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      callback(null, create(check.output, { status: ServingStatus.SERVING }));
    },
  },
);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  console.log(`listening ${port}`);
});
const stop = () => server.tryShutdown(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
