// google.rpc.ErrorInfo, the standard error detail (AIP-193). The Buf Schema Registry is
// out of reach offline, so its descriptor is built here instead of imported; the wire
// format and type name are the standard ones, so any gRPC client can decode it.
import { create, createFileRegistry, type DescMessage } from "@bufbuild/protobuf";
import { FieldDescriptorProto_Label, FieldDescriptorProto_Type, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

const stringField = (name: string, number: number) => ({
  name,
  number,
  jsonName: name,
  type: FieldDescriptorProto_Type.STRING,
  label: FieldDescriptorProto_Label.OPTIONAL,
});

const errorDetailsFile = create(FileDescriptorProtoSchema, {
  name: "google/rpc/error_details.proto",
  package: "google.rpc",
  syntax: "proto3",
  messageType: [
    {
      name: "ErrorInfo",
      field: [
        stringField("reason", 1),
        stringField("domain", 2),
        {
          name: "metadata",
          number: 3,
          jsonName: "metadata",
          type: FieldDescriptorProto_Type.MESSAGE,
          label: FieldDescriptorProto_Label.REPEATED,
          typeName: ".google.rpc.ErrorInfo.MetadataEntry",
        },
      ],
      nestedType: [{ name: "MetadataEntry", field: [stringField("key", 1), stringField("value", 2)], options: { mapEntry: true } }],
    },
  ],
});

/** ErrorInfoSchema describes google.rpc.ErrorInfo: reason, domain and metadata. */
export const ErrorInfoSchema: DescMessage = createFileRegistry(errorDetailsFile, () => undefined).getMessage("google.rpc.ErrorInfo")!;

/** ErrorInfo is a decoded google.rpc.ErrorInfo. */
export interface ErrorInfo {
  reason: string;
  domain: string;
  metadata: Record<string, string>;
}

/** errorDomain is the ErrorInfo domain of every Burndown error. */
export const errorDomain = "burndown.dev";
