// Server reflection in memory: what each kind of request answers, over v1 and v1alpha.
// Upstream clients (Python from Debian's reflection.proto, grpc-js calling with reflected
// descriptors) are in server/test/polyglot.test.ts.
import { createFileRegistry, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { AdminService, ErrorInfoSchema, errorInfoOf, LedgerService } from "@burndown/sdk";
import { describe, expect, it } from "vitest";
import { HealthService } from "./health.js";
import { errorInterceptor } from "./interceptors.js";
import { registerReflection, type ServerReflectionRequest, ServerReflectionV1, ServerReflectionV1alpha } from "./reflection.js";

const transport = createRouterTransport(
  (router) => registerReflection(router, [LedgerService.file, AdminService.file, HealthService.file, ErrorInfoSchema.file]),
  { router: { interceptors: [errorInterceptor(() => {})] } },
);
const v1 = createClient(ServerReflectionV1, transport);
const v1alpha = createClient(ServerReflectionV1alpha, transport);

type Question = ServerReflectionRequest["messageRequest"] & { case: string };

/** ask sends questions on one stream and returns the answers. */
async function ask(questions: Question[], client = v1) {
  async function* requests() {
    for (const messageRequest of questions) yield { host: "burndown.test", messageRequest };
  }
  const answers = [];
  for await (const answer of client.serverReflectionInfo(requests())) answers.push(answer);
  return answers;
}

/** fileNames returns the names of the files in an answer, or its error. */
function fileNames(answer: Awaited<ReturnType<typeof ask>>[number]): string[] | { errorCode: number } {
  const response = answer.messageResponse;
  if (response.case === "errorResponse") return { errorCode: response.value.errorCode };
  if (response.case !== "fileDescriptorResponse") throw new Error(`unexpected answer ${response.case}`);
  return response.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name);
}

const allServices = [
  "burndown.v1.AdminService",
  "burndown.v1.LedgerService",
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
];

describe("list_services", () => {
  it("lists every registered service, reflection itself included, over v1 and v1alpha alike", async () => {
    for (const client of [v1, v1alpha]) {
      const [answer] = await ask([{ case: "listServices", value: "" }], client);
      expect(answer.messageResponse.case).toBe("listServicesResponse");
      const listed = answer.messageResponse.case === "listServicesResponse" ? answer.messageResponse.value.service.map((service) => service.name) : [];
      expect(listed).toEqual(allServices);
    }
  });

  it("echoes the host and the original request", async () => {
    const [answer] = await ask([{ case: "listServices", value: "*" }]);
    expect(answer.validHost).toBe("burndown.test");
    expect(answer.originalRequest?.messageRequest).toEqual({ case: "listServices", value: "*" });
  });
});

describe("file_containing_symbol", () => {
  const rows = [
    { name: "finds a service", symbol: "burndown.v1.LedgerService", file: "burndown/v1/ledger_service.proto" },
    { name: "finds a method", symbol: "burndown.v1.LedgerService.Reserve", file: "burndown/v1/ledger_service.proto" },
    { name: "finds a message", symbol: "burndown.v1.Lot", file: "burndown/v1/types.proto" },
    { name: "finds a field", symbol: "burndown.v1.ReserveRequest.request_id", file: "burndown/v1/ledger_service.proto" },
    { name: "finds a top-level enum", symbol: "burndown.v1.GrantSource", file: "burndown/v1/types.proto" },
    { name: "finds an enum value beside its enum", symbol: "burndown.v1.GRANT_SOURCE_PURCHASE", file: "burndown/v1/types.proto" },
    { name: "finds a nested enum value", symbol: "grpc.health.v1.HealthCheckResponse.SERVING", file: "grpc/health/v1/health.proto" },
    { name: "accepts a leading dot", symbol: ".burndown.v1.AdminService", file: "burndown/v1/admin_service.proto" },
    { name: "finds an imported well-known type", symbol: "google.protobuf.Timestamp", file: "google/protobuf/timestamp.proto" },
    { name: "finds the ErrorInfo error detail", symbol: "google.rpc.ErrorInfo", file: "google/rpc/error_details.proto" },
  ];
  for (const row of rows) {
    it(row.name, async () => {
      const [answer] = await ask([{ case: "fileContainingSymbol", value: row.symbol }]);
      expect((fileNames(answer) as string[])[0]).toBe(row.file);
    });
  }

  it("answers NOT_FOUND for an unknown symbol and keeps the stream open", async () => {
    const answers = await ask([
      { case: "fileContainingSymbol", value: "burndown.v1.NoSuchThing" },
      { case: "fileContainingSymbol", value: "burndown.v1.Lot" },
    ]);
    expect(fileNames(answers[0])).toEqual({ errorCode: Code.NotFound });
    expect(fileNames(answers[1])).toEqual(["burndown/v1/types.proto", "google/protobuf/timestamp.proto"]);
  });
});

describe("file_by_filename", () => {
  it("sends a file with its imports, and later only the imports not sent yet on the stream", async () => {
    const answers = await ask([
      { case: "fileByFilename", value: "burndown/v1/types.proto" },
      { case: "fileByFilename", value: "burndown/v1/ledger_service.proto" },
      { case: "fileByFilename", value: "burndown/v1/types.proto" },
    ]);
    expect(fileNames(answers[0])).toEqual(["burndown/v1/types.proto", "google/protobuf/timestamp.proto"]);
    expect(fileNames(answers[1])).toEqual(["burndown/v1/ledger_service.proto", "burndown/v1/usage.proto", "google/protobuf/duration.proto"]);
    expect(fileNames(answers[2])).toEqual(["burndown/v1/types.proto"]);
  });

  it("sends the generated descriptor byte for byte, complete enough to build a registry", async () => {
    const [answer] = await ask([{ case: "fileByFilename", value: "burndown/v1/ledger_service.proto" }]);
    if (answer.messageResponse.case !== "fileDescriptorResponse") throw new Error(answer.messageResponse.case);
    const [ledger, ...imports] = answer.messageResponse.value.fileDescriptorProto;
    expect(ledger).toEqual(toBinary(FileDescriptorProtoSchema, LedgerService.file.proto));
    // A registry wants imports first; reflection sends the asked-for file first, as grpc-go does.
    const files = [ledger, ...imports].map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes)).reverse();
    const registry = createFileRegistry({ $typeName: "google.protobuf.FileDescriptorSet", file: files });
    expect(registry.getService("burndown.v1.LedgerService")?.methods.map((method) => method.name)).toEqual(LedgerService.methods.map((method) => method.name));
  });

  it("answers NOT_FOUND for an unknown file", async () => {
    const [answer] = await ask([{ case: "fileByFilename", value: "burndown/v1/nothing.proto" }]);
    expect(fileNames(answer)).toEqual({ errorCode: Code.NotFound });
  });
});

describe("extensions", () => {
  it("lists no extension numbers for a known message, and NOT_FOUND for an unknown one", async () => {
    const [known, unknown] = await ask([
      { case: "allExtensionNumbersOfType", value: "burndown.v1.Lot" },
      { case: "allExtensionNumbersOfType", value: "burndown.v1.Nothing" },
    ]);
    expect(known.messageResponse.case === "allExtensionNumbersResponse" && known.messageResponse.value).toMatchObject({ baseTypeName: "burndown.v1.Lot", extensionNumber: [] });
    expect(fileNames(unknown)).toEqual({ errorCode: Code.NotFound });
  });

  it("answers NOT_FOUND for an extension nobody defines", async () => {
    const [answer] = await ask([{ case: "fileContainingExtension", value: { $typeName: "grpc.reflection.v1.ExtensionRequest", containingType: "burndown.v1.Lot", extensionNumber: 1000 } }]);
    expect(fileNames(answer)).toEqual({ errorCode: Code.NotFound });
  });
});

it("fails a request that asks nothing with INVALID_ARGUMENT", async () => {
  try {
    await ask([{ case: undefined } as never]);
    throw new Error("expected the stream to fail");
  } catch (error) {
    const connectError = ConnectError.from(error);
    expect(connectError.code).toBe(Code.InvalidArgument);
    expect(errorInfoOf(connectError)?.reason).toBe("INVALID_REFLECTION_REQUEST");
  }
});
