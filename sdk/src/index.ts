// @burndown/sdk: the generated Burndown contract and helpers shared by its clients.
export * from "./gen/burndown/v1/types_pb.js";
export * from "./gen/burndown/v1/usage_pb.js";
export * from "./gen/burndown/v1/ledger_service_pb.js";
export * from "./gen/burndown/v1/admin_service_pb.js";
export { ErrorInfoSchema, errorDomain, type ErrorInfo } from "./error-info.js";
export { errorInfoOf } from "./error-reason.js";
