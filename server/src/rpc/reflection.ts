// gRPC server reflection (grpc.reflection.v1.ServerReflection and its v1alpha twin), so
// grpcurl, buf curl, Postman and grpcui can list the services and describe the messages
// without a copy of proto/. No npm package implements it for connect-es v2, and the Buf
// Schema Registry is out of reach, so its descriptors are built here, the way
// sdk/src/error-info.ts builds google.rpc.ErrorInfo; the answers are the generated files'
// own descriptors (their GenFile exports) and their dependencies.
import { create, createFileRegistry, type DescFile, type Message, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import type { GenMessage, GenService } from "@bufbuild/protobuf/codegenv2";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { FieldDescriptorProto_Label, FieldDescriptorProto_Type, type FileDescriptorProto, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import { LedgerError } from "../errors.js";
import { limits } from "../limits.js";
import { toConnectError } from "./interceptors.js";

/** ExtensionRequest is grpc.reflection.v1.ExtensionRequest. */
export type ExtensionRequest = Message & { containingType: string; extensionNumber: number };

/** ServerReflectionRequest is grpc.reflection.v1(alpha).ServerReflectionRequest: one question. */
export type ServerReflectionRequest = Message & {
  host: string;
  messageRequest:
    | { case: "fileByFilename"; value: string }
    | { case: "fileContainingSymbol"; value: string }
    | { case: "fileContainingExtension"; value: ExtensionRequest }
    | { case: "allExtensionNumbersOfType"; value: string }
    | { case: "listServices"; value: string }
    | { case: undefined; value?: undefined };
};

/** ServerReflectionResponse is grpc.reflection.v1(alpha).ServerReflectionResponse: one answer. */
export type ServerReflectionResponse = Message & {
  validHost: string;
  originalRequest?: ServerReflectionRequest;
  messageResponse:
    | { case: "fileDescriptorResponse"; value: Message & { fileDescriptorProto: Uint8Array[] } }
    | { case: "allExtensionNumbersResponse"; value: Message & { baseTypeName: string; extensionNumber: number[] } }
    | { case: "listServicesResponse"; value: Message & { service: (Message & { name: string })[] } }
    | { case: "errorResponse"; value: Message & { errorCode: number; errorMessage: string } }
    | { case: undefined; value?: undefined };
};

/** ServerReflectionService is the shape both reflection versions share. */
export type ServerReflectionService = GenService<{
  serverReflectionInfo: {
    methodKind: "bidi_streaming";
    input: GenMessage<ServerReflectionRequest>;
    output: GenMessage<ServerReflectionResponse>;
  };
}>;

const { OPTIONAL, REPEATED } = FieldDescriptorProto_Label;
const { STRING, INT32, BYTES, MESSAGE } = FieldDescriptorProto_Type;

function field(name: string, number: number, type: FieldDescriptorProto_Type, more: { repeated?: boolean; typeName?: string; oneofIndex?: number } = {}) {
  const jsonName = name.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
  return { name, number, jsonName, type, label: more.repeated ? REPEATED : OPTIONAL, typeName: more.typeName, oneofIndex: more.oneofIndex };
}

function message(name: string, fields: ReturnType<typeof field>[], oneof?: string) {
  return { name, field: fields, oneofDecl: oneof === undefined ? [] : [{ name: oneof }] };
}

/** reflectionFileProto builds grpc/reflection/<version>/reflection.proto; v1 and v1alpha differ only in package. */
function reflectionFileProto(version: "v1" | "v1alpha"): FileDescriptorProto {
  const pkg = `grpc.reflection.${version}`;
  const ref = (name: string) => ({ typeName: `.${pkg}.${name}` });
  return create(FileDescriptorProtoSchema, {
    name: `grpc/reflection/${version}/reflection.proto`,
    package: pkg,
    syntax: "proto3",
    messageType: [
      message(
        "ServerReflectionRequest",
        [
          field("host", 1, STRING),
          field("file_by_filename", 3, STRING, { oneofIndex: 0 }),
          field("file_containing_symbol", 4, STRING, { oneofIndex: 0 }),
          field("file_containing_extension", 5, MESSAGE, { ...ref("ExtensionRequest"), oneofIndex: 0 }),
          field("all_extension_numbers_of_type", 6, STRING, { oneofIndex: 0 }),
          field("list_services", 7, STRING, { oneofIndex: 0 }),
        ],
        "message_request",
      ),
      message("ExtensionRequest", [field("containing_type", 1, STRING), field("extension_number", 2, INT32)]),
      message(
        "ServerReflectionResponse",
        [
          field("valid_host", 1, STRING),
          field("original_request", 2, MESSAGE, ref("ServerReflectionRequest")),
          field("file_descriptor_response", 4, MESSAGE, { ...ref("FileDescriptorResponse"), oneofIndex: 0 }),
          field("all_extension_numbers_response", 5, MESSAGE, { ...ref("ExtensionNumberResponse"), oneofIndex: 0 }),
          field("list_services_response", 6, MESSAGE, { ...ref("ListServiceResponse"), oneofIndex: 0 }),
          field("error_response", 7, MESSAGE, { ...ref("ErrorResponse"), oneofIndex: 0 }),
        ],
        "message_response",
      ),
      message("FileDescriptorResponse", [field("file_descriptor_proto", 1, BYTES, { repeated: true })]),
      message("ExtensionNumberResponse", [field("base_type_name", 1, STRING), field("extension_number", 2, INT32, { repeated: true })]),
      message("ListServiceResponse", [field("service", 1, MESSAGE, { ...ref("ServiceResponse"), repeated: true })]),
      message("ServiceResponse", [field("name", 1, STRING)]),
      message("ErrorResponse", [field("error_code", 1, INT32), field("error_message", 2, STRING)]),
    ],
    service: [
      {
        name: "ServerReflection",
        method: [
          {
            name: "ServerReflectionInfo",
            inputType: `.${pkg}.ServerReflectionRequest`,
            outputType: `.${pkg}.ServerReflectionResponse`,
            clientStreaming: true,
            serverStreaming: true,
          },
        ],
      },
    ],
  });
}

function reflectionService(version: "v1" | "v1alpha"): ServerReflectionService {
  const registry = createFileRegistry(reflectionFileProto(version), () => undefined);
  return registry.getService(`grpc.reflection.${version}.ServerReflection`) as ServerReflectionService;
}

/** ServerReflectionV1 describes grpc.reflection.v1.ServerReflection. */
export const ServerReflectionV1 = reflectionService("v1");

/** ServerReflectionV1alpha describes grpc.reflection.v1alpha.ServerReflection, which older tools still call. */
export const ServerReflectionV1alpha = reflectionService("v1alpha");

/** ReflectionIndex is what reflection answers from: files by name, and the file defining each symbol. */
interface ReflectionIndex {
  files: Map<string, DescFile>;
  encoded: Map<DescFile, Uint8Array>;
  symbols: Map<string, DescFile>;
  messageTypes: Set<string>;
  /** extensions by "<extendee>/<number>". */
  extensions: Map<string, DescFile>;
  services: string[];
}

/** withDependencies lists the roots and their transitive imports, breadth first, each once. */
function withDependencies(roots: readonly DescFile[]): DescFile[] {
  const seen = new Set<DescFile>();
  const queue = [...roots];
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (seen.has(file)) continue;
    seen.add(file);
    queue.push(...file.dependencies);
  }
  return [...seen];
}

function indexSymbols(file: DescFile, index: ReflectionIndex): void {
  const add = (name: string) => index.symbols.set(name, file);
  for (const type of nestedTypes(file)) {
    add(type.typeName);
    if (type.kind === "message") index.messageTypes.add(type.typeName);
    if (type.kind === "message") for (const member of [...type.fields, ...type.oneofs]) add(`${type.typeName}.${member.name}`);
    if (type.kind === "service") for (const method of type.methods) add(`${type.typeName}.${method.name}`);
    if (type.kind === "extension") index.extensions.set(`${type.extendee.typeName}/${type.number}`, file);
    if (type.kind === "enum") {
      // Enum values are scoped beside their enum, not inside it.
      const scope = type.parent?.typeName ?? file.proto.package;
      for (const value of type.values) add(scope === "" ? value.name : `${scope}.${value.name}`);
    }
  }
}

/** reflectionIndex indexes the files and everything they import. */
export function reflectionIndex(roots: readonly DescFile[]): ReflectionIndex {
  const index: ReflectionIndex = { files: new Map(), encoded: new Map(), symbols: new Map(), messageTypes: new Set(), extensions: new Map(), services: [] };
  for (const file of withDependencies(roots)) {
    index.files.set(file.proto.name, file);
    index.encoded.set(file, toBinary(FileDescriptorProtoSchema, file.proto));
    indexSymbols(file, index);
    index.services.push(...file.services.map((service) => service.typeName));
  }
  index.services.sort();
  // Two descriptors of one file name (say, two copies of @bufbuild/protobuf) would answer inconsistently.
  if (index.files.size !== index.encoded.size) throw new Error("reflectionIndex: two different files share a name");
  return index;
}

type ResponseInit = Exclude<MessageInitShape<GenMessage<ServerReflectionResponse>>, ServerReflectionResponse>;
type Answer = NonNullable<ResponseInit["messageResponse"]>;

function notFound(message: string): Answer {
  return { case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: message } };
}

/** fileAnswer sends a file and those of its transitive imports not yet sent on this stream, as grpc-go does. */
function fileAnswer(index: ReflectionIndex, file: DescFile | undefined, what: string, sent: Set<string>): Answer {
  if (file === undefined) return notFound(`${what} not found`);
  const encoded: Uint8Array[] = [];
  for (const each of withDependencies([file])) {
    if (each !== file && sent.has(each.proto.name)) continue;
    sent.add(each.proto.name);
    encoded.push(index.encoded.get(each)!);
  }
  return { case: "fileDescriptorResponse", value: { fileDescriptorProto: encoded } };
}

function answer(index: ReflectionIndex, request: ServerReflectionRequest["messageRequest"], sent: Set<string>): Answer {
  switch (request.case) {
    case "listServices":
      return { case: "listServicesResponse", value: { service: index.services.map((name) => ({ name })) } };
    case "fileByFilename":
      return fileAnswer(index, index.files.get(request.value), `file ${JSON.stringify(request.value)}`, sent);
    case "fileContainingSymbol": {
      const symbol = request.value.replace(/^\./, "");
      return fileAnswer(index, index.symbols.get(symbol), `symbol ${JSON.stringify(symbol)}`, sent);
    }
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = request.value;
      return fileAnswer(index, index.extensions.get(`${containingType}/${extensionNumber}`), `extension ${extensionNumber} of ${containingType}`, sent);
    }
    case "allExtensionNumbersOfType": {
      const type = request.value;
      if (!index.messageTypes.has(type)) return notFound(`type ${JSON.stringify(type)} not found`);
      const prefix = `${type}/`;
      const numbers = [...index.extensions.keys()].filter((key) => key.startsWith(prefix)).map((key) => Number(key.slice(prefix.length)));
      return { case: "allExtensionNumbersResponse", value: { baseTypeName: type, extensionNumber: numbers.sort((a, b) => a - b) } };
    }
    default:
      throw toConnectError(new LedgerError("invalid", "INVALID_REFLECTION_REQUEST", "the reflection request asks nothing"), () => {});
  }
}

/** reflectionHandlers answers reflection requests about the given files and their imports. */
export function reflectionHandlers(files: readonly DescFile[]): ServiceImpl<ServerReflectionService> {
  const index = reflectionIndex(files);
  return {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      let count = 0;
      for await (const request of requests) {
        // Errors thrown while streaming pass the error interceptor by, so they are mapped here.
        if (++count > limits.reflectionRequestsPerStreamMax) {
          const error = new LedgerError("overloaded", "TOO_MANY_REFLECTION_REQUESTS", `at most ${limits.reflectionRequestsPerStreamMax} requests per reflection stream; open another`);
          throw toConnectError(error, () => {});
        }
        const originalRequest = { host: request.host, messageRequest: request.messageRequest };
        yield { validHost: request.host, originalRequest, messageResponse: answer(index, request.messageRequest, sent) };
      }
    },
  };
}

/** registerReflection serves both reflection versions about the given files (and the reflection files themselves). */
export function registerReflection(router: ConnectRouter, files: readonly DescFile[]): void {
  const handlers = reflectionHandlers([...files, ServerReflectionV1.file, ServerReflectionV1alpha.file]);
  router.service(ServerReflectionV1, handlers);
  router.service(ServerReflectionV1alpha, handlers);
}
