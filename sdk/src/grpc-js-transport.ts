// A connect-es Transport over a @grpc/grpc-js channel. connect-node's gRPC transport
// spent two and a half times the client CPU per call of a plain grpc-js client here (64
// calls in flight); this one
// keeps everything above the transport as it is (generated clients, Connect interceptors,
// ConnectError with the same codes and ErrorInfo details) and lets grpc-js speak HTTP/2.
// Messages are (de)serialized by protobuf-es; Connect interceptors wrap every call;
// request headers become grpc Metadata; timeoutMs becomes the call's deadline, which
// grpc-js enforces and sends; the signal cancels the call. grpc-js's own retries are
// off: the client's call path owns retries. A channel that failed to connect is replaced
// on the next call, so every attempt of the caller's retry policy tries a fresh
// connection, as connect-node does, instead of failing fast until grpc-js's reconnect
// backoff (up to two minutes) ends. Unary and server-streaming methods are supported;
// client-streaming and bidi methods are refused with Unimplemented.
import { create, type DescMessage, type DescMethod, type DescMethodStreaming, type DescMethodUnary, fromBinary, type MessageInitShape, type MessageShape, toBinary } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { createMethodUrl, runStreamingCall } from "@connectrpc/connect/protocol";
import * as grpc from "@grpc/grpc-js";
import { limits } from "./limits.js";
import { type RpcStatus, RpcStatusSchema } from "./rpc-status.js";

/** GrpcJsTransportOptions configure a transport; only baseUrl is required. */
export interface GrpcJsTransportOptions {
  /** the server's gRPC URL: http://host:port for h2c, https://host:port for TLS; no path. */
  baseUrl: string;
  /** Connect interceptors, run for every call, the first in the list outermost. */
  interceptors?: Interceptor[];
  /** the timeout of a call that names none; none by default. */
  defaultTimeoutMs?: number;
  /** TLS credentials for an https baseUrl; the system's roots by default. */
  credentials?: grpc.ChannelCredentials;
  /** grpc-js channel options, over this transport's defaults. */
  channelOptions?: grpc.ChannelOptions;
}

/** GrpcJsTransport is a Transport with a channel to close. */
export interface GrpcJsTransport extends Transport {
  /** close cancels the calls in flight (Canceled) and closes the channel; later calls fail with Unavailable. */
  close: () => void;
}

/** MethodWire is what grpc-js needs to call one method: its path and (de)serializers; url is what interceptors see. */
interface MethodWire {
  path: string;
  url: string;
  serialize: (message: never) => Buffer;
  deserialize: (bytes: Buffer) => unknown;
}

const statusDetailsKey = "grpc-status-details-bin";

/** Headers that HTTP/2 or grpc-js set themselves; a caller's copy is not sent as metadata. */
const reservedHeaders = new Set(["content-type", "content-length", "te", "user-agent", "host", "connection", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding"]);

/** targetOf turns a base URL into a grpc-js target and says whether it needs TLS. */
function targetOf(baseUrl: string): { target: string; tls: boolean } {
  const url = new URL(baseUrl);
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new TypeError(`baseUrl must be http: or https:, got ${baseUrl}`);
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "") throw new TypeError(`a gRPC baseUrl has no path, query or fragment, got ${baseUrl}`);
  const tls = url.protocol === "https:";
  return { target: `${url.hostname}:${url.port || (tls ? "443" : "80")}`, tls };
}

/** channelDefaults are the channel options this transport sets unless the caller overrides them. */
function channelDefaults(): grpc.ChannelOptions {
  return {
    // Retries belong to the caller's policy (attempts, deadline, idempotency); none here.
    "grpc.enable_retries": 0,
    // Replaced channels must not share subchannels (and their reconnect backoff).
    "grpc.use_local_subchannel_pool": 1,
    // Pings only while calls are out, so an idle client never draws a server's ping strikes.
    "grpc.keepalive_time_ms": limits.channelKeepaliveMs,
    "grpc.keepalive_timeout_ms": limits.channelKeepaliveTimeoutMs,
    "grpc.keepalive_permit_without_calls": 0,
    "grpc.max_receive_message_length": limits.responseBytesMax,
  };
}

/**
 * Channel owns the grpc-js client of a transport: it replaces a channel that failed to
 * connect, tracks the calls in flight so that close can cancel them, and closes.
 */
class Channel {
  private client: grpc.Client;
  private readonly calls = new Set<{ cancel: () => void }>();
  private closed = false;

  constructor(private readonly open: () => grpc.Client) {
    this.client = open();
  }

  /** current is the client for a new call. */
  current(): grpc.Client {
    if (this.closed) throw new ConnectError("the transport is closed", Code.Unavailable);
    if (this.client.getChannel().getConnectivityState(false) === grpc.connectivityState.TRANSIENT_FAILURE) {
      // Nothing is in flight on a channel that could not connect; a fresh one connects at once.
      this.client.close();
      this.client = this.open();
    }
    return this.client;
  }

  track(call: { cancel: () => void }): void {
    this.calls.add(call);
  }

  untrack(call: { cancel: () => void }): void {
    this.calls.delete(call);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const call of [...this.calls]) call.cancel();
    this.calls.clear();
    this.client.close();
  }
}

/** wireOf makes a method's path and protobuf-es (de)serializers. */
function wireOf(baseUrl: string, method: DescMethod): MethodWire {
  const input = method.input;
  const output = method.output;
  return {
    path: `/${method.parent.typeName}/${method.name}`,
    url: createMethodUrl(baseUrl, method),
    serialize: (message: MessageShape<DescMessage>) => {
      const bytes = toBinary(input, message);
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    deserialize: (bytes: Buffer) => fromBinary(output, bytes),
  } as MethodWire;
}

/** metadataOf copies request headers into grpc Metadata; -bin values are base64 in Headers and bytes in Metadata. */
export function metadataOf(header: Headers): grpc.Metadata {
  const metadata = new grpc.Metadata();
  header.forEach((value, key) => {
    if (reservedHeaders.has(key)) return;
    if (!key.endsWith("-bin")) return metadata.add(key, value);
    for (const part of value.split(",")) metadata.add(key, Buffer.from(part.trim(), "base64"));
  });
  return metadata;
}

/** headersOf copies grpc Metadata into Headers, binary values as unpadded base64, as Connect carries them. */
function headersOf(metadata: grpc.Metadata | undefined, into: Headers = new Headers()): Headers {
  if (metadata === undefined) return into;
  for (const [key, values] of Object.entries(metadata.toJSON())) {
    for (const value of values) into.append(key, typeof value === "string" ? value : Buffer.from(value).toString("base64").replace(/=+$/, ""));
  }
  return into;
}

/**
 * grpcMessageOf finishes decoding a grpc-message: grpc-js decodes it with decodeURI, which
 * leaves the escapes of reserved characters (":", "/", ",") that servers encode.
 */
function grpcMessageOf(details: string): string {
  return details.replace(/%(2[346BCF]|3[ABDF]|40)/gi, (escape) => decodeURIComponent(escape));
}

/**
 * connectErrorOf turns a failed call's status into the ConnectError connect-node would
 * throw: the same code, the message, the details from grpc-status-details-bin (so
 * findDetails works), and the trailers and headers as metadata.
 */
function connectErrorOf(status: grpc.StatusObject, header: grpc.Metadata | undefined): ConnectError {
  const metadata = headersOf(header, headersOf(status.metadata));
  const code = status.code in Code && status.code !== grpc.status.OK ? (status.code as number as Code) : Code.Internal;
  const [detailsBin] = status.metadata.get(statusDetailsKey);
  if (!(detailsBin instanceof Buffer)) return new ConnectError(grpcMessageOf(status.details), code, metadata);
  const decoded = fromBinary(RpcStatusSchema, detailsBin) as unknown as RpcStatus;
  const error = new ConnectError(decoded.message, code, metadata);
  error.details = decoded.details.map((any) => ({ type: any.typeUrl.substring(any.typeUrl.lastIndexOf("/") + 1), value: any.value }));
  return error;
}

/** unaryResponseOf is the response of a call, with headers and trailers converted only when read. */
function unaryResponseOf<I extends DescMessage, O extends DescMessage>(
  req: UnaryRequest<I, O>,
  message: MessageShape<O>,
  header: grpc.Metadata | undefined,
  trailer: grpc.Metadata,
): UnaryResponse<I, O> {
  let headers: Headers | undefined;
  let trailers: Headers | undefined;
  return {
    stream: false,
    service: req.service,
    method: req.method,
    message,
    get header() {
      return (headers ??= headersOf(header));
    },
    get trailer() {
      return (trailers ??= headersOf(trailer));
    },
  };
}

/** callOptionsOf gives grpc-js the call's deadline; the server hears it as grpc-timeout. */
function callOptionsOf(timeoutMs: number | undefined): grpc.CallOptions {
  return timeoutMs === undefined ? {} : { deadline: Date.now() + timeoutMs };
}

/** cancelerOf is an abort listener that cancels call (an object with a method: under tsx, whose esbuild keeps names, a named closure costs a defineProperty each time). */
function cancelerOf(call: { cancel: () => void }): EventListenerObject {
  return {
    handleEvent() {
      call.cancel();
    },
  };
}

/** sendUnary makes one unary call on the channel; it settles when grpc-js reports the status. */
function sendUnary<I extends DescMessage, O extends DescMessage>(channel: Channel, wire: MethodWire, req: UnaryRequest<I, O>, timeoutMs: number | undefined): Promise<UnaryResponse<I, O>> {
  const signal = req.signal;
  if (signal.aborted) return Promise.reject(signal.reason);
  const client = channel.current();
  return new Promise((resolve, reject) => {
    let header: grpc.Metadata | undefined;
    let message: MessageShape<O> | undefined;
    const call = client.makeUnaryRequest(wire.path, wire.serialize, wire.deserialize, req.message as never, metadataOf(req.header), callOptionsOf(timeoutMs), (_error, value) => {
      // The status event that follows carries the outcome, the error included, and the trailers.
      message = value as MessageShape<O> | undefined;
    });
    const onAbort = cancelerOf(call);
    signal.addEventListener("abort", onAbort);
    channel.track(call);
    call.on("metadata", (received: grpc.Metadata) => (header = received));
    call.on("status", (status: grpc.StatusObject) => {
      signal.removeEventListener("abort", onAbort);
      channel.untrack(call);
      if (status.code !== grpc.status.OK) return reject(connectErrorOf(status, header));
      if (message === undefined) return reject(new ConnectError("protocol error: missing output message for unary method", Code.Unimplemented));
      resolve(unaryResponseOf(req, message, header, status.metadata));
    });
  });
}

/**
 * runUnary runs a unary call through the interceptors, as connect's runUnaryCall does, with
 * two differences that save a timer, two AbortControllers and a DOMException per call: the
 * request's signal is the caller's own (it aborts when the caller cancels, not at the
 * deadline or at the end of the call), and the deadline is grpc-js's. A failure is a
 * ConnectError; after the caller's abort, its reason as Canceled, as with runUnaryCall.
 */
function runUnary<I extends DescMessage, O extends DescMessage>(
  interceptors: readonly Interceptor[],
  req: UnaryRequest<I, O>,
  next: (req: UnaryRequest<I, O>) => Promise<UnaryResponse<I, O>>,
): Promise<UnaryResponse<I, O>> {
  let run = next as unknown as AnyFn;
  for (let i = interceptors.length - 1; i >= 0; i--) run = interceptors[i](run);
  const signal = req.signal;
  return (run(req as unknown as UnaryRequest) as Promise<UnaryResponse<I, O>>).then(undefined, (error: unknown) =>
    Promise.reject(signal.aborted ? ConnectError.from(signal.reason ?? new DOMException("This operation was aborted", "AbortError"), Code.Canceled) : ConnectError.from(error)),
  );
}

/** AnyFn is what an interceptor wraps. */
type AnyFn = Parameters<Interceptor>[0];

/** onlyMessageOf reads the single request message of a server-streaming call. */
async function onlyMessageOf<T>(messages: AsyncIterable<T>): Promise<T> {
  let only: { value: T } | undefined;
  for await (const message of messages) {
    if (only !== undefined) throw new ConnectError("protocol error: a server-streaming call sends one request message", Code.Internal);
    only = { value: message };
  }
  if (only === undefined) throw new ConnectError("protocol error: a server-streaming call sends one request message", Code.Internal);
  return only.value;
}

/**
 * responseMessagesOf reads a server stream's messages, pausing grpc-js while
 * streamBufferMessagesMax are unread, and throws the call's error at the end; trailer is
 * filled when the status arrives.
 */
function responseMessagesOf<T>(call: grpc.ClientReadableStream<T>, header: () => grpc.Metadata | undefined, trailer: Headers): AsyncIterable<T> {
  const buffered: T[] = [];
  let failure: ConnectError | null = null;
  let ended = false;
  let wake: (() => void) | null = null;
  const notify = () => {
    wake?.();
    wake = null;
  };
  call.on("data", (message: T) => {
    buffered.push(message);
    if (buffered.length >= limits.streamBufferMessagesMax) call.pause();
    notify();
  });
  // grpc-js emits "error" (the failure) and then "status" (the trailers, and the end) for a failed call.
  call.on("error", (error: grpc.ServiceError) => (failure = connectErrorOf(error, header())));
  call.on("status", (status: grpc.StatusObject) => {
    headersOf(status.metadata, trailer);
    ended = true;
    notify();
  });
  return {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const next = buffered.shift();
        if (next !== undefined) {
          if (buffered.length === 0 && call.isPaused()) call.resume();
          yield next;
        } else if (ended) {
          if (failure !== null) throw failure;
          return;
        } else {
          await new Promise<void>((resolve) => (wake = resolve));
        }
      }
    },
  };
}

/** sendServerStream starts a server-streaming call and resolves once the response headers (or an error) arrive. */
async function sendServerStream<I extends DescMessage, O extends DescMessage>(
  channel: Channel,
  wire: MethodWire,
  req: StreamRequest<I, O>,
  timeoutMs: number | undefined,
): Promise<StreamResponse<I, O>> {
  const message = await onlyMessageOf(req.message);
  const signal = req.signal;
  if (signal.aborted) throw signal.reason;
  const call = channel.current().makeServerStreamRequest(wire.path, wire.serialize, wire.deserialize, message as never, metadataOf(req.header), callOptionsOf(timeoutMs)) as grpc.ClientReadableStream<MessageShape<O>>;
  const onAbort = cancelerOf(call);
  signal.addEventListener("abort", onAbort);
  channel.track(call);
  let header: grpc.Metadata | undefined;
  const trailer = new Headers();
  const messages = responseMessagesOf(call, () => header, trailer);
  // A call that fails before its headers (trailers only) rejects here, as connect-node's does.
  const headersOrStatus = new Promise<void>((resolve, reject) => {
    call.once("metadata", (received: grpc.Metadata) => {
      header = received;
      resolve();
    });
    call.once("status", (status: grpc.StatusObject) => {
      signal.removeEventListener("abort", onAbort);
      channel.untrack(call);
      if (header === undefined && status.code !== grpc.status.OK) reject(connectErrorOf(status, undefined));
      resolve();
    });
  });
  await headersOrStatus;
  return { stream: true, service: req.service, method: req.method, header: headersOf(header), trailer, message: messages };
}

/** timeoutMsOf applies the default timeout as connect-node does: none given takes the default, 0 or less means none. */
function timeoutMsOf(timeoutMs: number | undefined, defaultTimeoutMs: number | undefined): number | undefined {
  if (timeoutMs === undefined) return defaultTimeoutMs;
  return timeoutMs <= 0 ? undefined : timeoutMs;
}

/** createGrpcJsTransport connects a Transport to a gRPC server through a grpc-js channel; close() closes it. */
export function createGrpcJsTransport(options: GrpcJsTransportOptions): GrpcJsTransport {
  const { target, tls } = targetOf(options.baseUrl);
  const credentials = options.credentials ?? (tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure());
  const channelOptions = { ...channelDefaults(), ...options.channelOptions };
  const channel = new Channel(() => new grpc.Client(target, credentials, channelOptions));
  const interceptors = options.interceptors ?? [];
  const wires = new Map<DescMethod, MethodWire>();
  const wireFor = (method: DescMethod) => wires.get(method) ?? wires.set(method, wireOf(options.baseUrl, method)).get(method)!;
  return {
    unary<I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>, signal: AbortSignal | undefined, timeoutMs: number | undefined, header: HeadersInit | undefined, input: MessageInitShape<I>, contextValues?: ContextValues) {
      const timeout = timeoutMsOf(timeoutMs, options.defaultTimeoutMs);
      const req: UnaryRequest<I, O> = {
        stream: false,
        service: method.parent,
        method,
        requestMethod: "POST",
        url: wireFor(method).url,
        header: new Headers(header),
        contextValues: contextValues ?? createContextValues(),
        message: create(method.input, input),
        // A signal of its own when the caller gave none: interceptors may listen to it.
        signal: signal ?? new AbortController().signal,
      };
      // An interceptor may hand on another request; its method decides the wire.
      return runUnary(interceptors, req, (sent) => sendUnary(channel, wireFor(sent.method), sent, timeout));
    },
    stream<I extends DescMessage, O extends DescMessage>(method: DescMethodStreaming<I, O>, signal: AbortSignal | undefined, timeoutMs: number | undefined, header: HeadersInit | undefined, input: AsyncIterable<MessageInitShape<I>>, contextValues?: ContextValues) {
      if (method.methodKind !== "server_streaming") {
        return Promise.reject(new ConnectError(`${method.parent.typeName}.${method.name} is ${method.methodKind.replace("_", "-")}: this transport supports unary and server-streaming methods`, Code.Unimplemented));
      }
      const timeout = timeoutMsOf(timeoutMs, options.defaultTimeoutMs);
      const wire = wireFor(method);
      return runStreamingCall<I, O>({
        interceptors,
        signal,
        timeoutMs: timeout,
        req: {
          stream: true,
          service: method.parent,
          method,
          requestMethod: "POST",
          url: wireFor(method).url,
          header: new Headers(header),
          contextValues: contextValues ?? createContextValues(),
          message: input,
        },
        next: (req) => sendServerStream(channel, wire, req, timeout),
      });
    },
    close: () => channel.close(),
  };
}
