// google.rpc.Status, the message a gRPC server puts in the grpc-status-details-bin trailer
// to carry an error's details (AIP-193). Its descriptor is built here, the way
// error-info.ts builds google.rpc.ErrorInfo, because the Buf Schema Registry is out of
// reach offline; the type name and field numbers are the standard ones.
import { create, createFileRegistry, type DescMessage } from "@bufbuild/protobuf";
import { FieldDescriptorProto_Label, FieldDescriptorProto_Type, file_google_protobuf_any, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

const optional = FieldDescriptorProto_Label.OPTIONAL;

const statusFile = create(FileDescriptorProtoSchema, {
  name: "google/rpc/status.proto",
  package: "google.rpc",
  syntax: "proto3",
  dependency: ["google/protobuf/any.proto"],
  messageType: [
    {
      name: "Status",
      field: [
        { name: "code", number: 1, jsonName: "code", type: FieldDescriptorProto_Type.INT32, label: optional },
        { name: "message", number: 2, jsonName: "message", type: FieldDescriptorProto_Type.STRING, label: optional },
        {
          name: "details",
          number: 3,
          jsonName: "details",
          type: FieldDescriptorProto_Type.MESSAGE,
          label: FieldDescriptorProto_Label.REPEATED,
          typeName: ".google.protobuf.Any",
        },
      ],
    },
  ],
});

/** RpcStatusSchema describes google.rpc.Status: code, message and details packed as Any. */
export const RpcStatusSchema: DescMessage = createFileRegistry(statusFile, (name) => (name === file_google_protobuf_any.proto.name ? file_google_protobuf_any : undefined)).getMessage(
  "google.rpc.Status",
)!;

/** RpcStatus is a decoded google.rpc.Status. */
export interface RpcStatus {
  code: number;
  message: string;
  details: { typeUrl: string; value: Uint8Array }[];
}
