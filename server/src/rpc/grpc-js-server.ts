// gRPC over @grpc/grpc-js, from the same connect-es service implementations and
// interceptors that connect-node serves over HTTP/1.1. connect-node's gRPC over h2c cost
// about six times the server CPU per call of grpc-js (NOTES.md), so the gRPC port is
// served by grpc-js, and this adapter does only what connect-es's handler does between the
// wire and the interceptors: decode with protobuf-es, build the UnaryRequest or
// StreamRequest the interceptors see (headers from the metadata; a signal that fires when
// the caller cancels or its deadline passes), run the interceptors and the implementation,
// encode the answer, and send a refusal as connect-node does: code, message and a
// grpc-status-details-bin trailer holding a google.rpc.Status with the error's details.
//
// grpc-js consumes two things connect-es hands on, and they are restored here: the
// caller's timeout (grpc-timeout is rebuilt from the call's deadline, so deadlineInterceptor
// sees it), and bodies that do not decode (grpc-js would answer Internal; here bodies arrive
// as bytes and a failure is marked for malformedInterceptor). A unary body with no complete
// message or more than one is refused by a grpc-js interceptor before any handler runs,
// with the same InvalidArgument MALFORMED_REQUEST.
//
// Supported: unary, server-streaming and bidi methods; response headers and trailers set
// by implementations or interceptors; compressed requests (grpc-js inflates them). Not
// supported: client-streaming methods and per-route router options (both refused at
// startup); compressed responses. Left to grpc-js, and so answered without ErrorInfo: a
// compressed body that does not inflate (Internal), a malformed grpc-timeout (Internal),
// a message over readMaxBytes (ResourceExhausted), an unknown method (Unimplemented).
// The listener speaks gRPC with protobuf bodies only: connect-node on h2c also took gRPC's
// JSON codec and the Connect and gRPC-Web protocols over HTTP/2; those go to the HTTP/1.1
// listener now (JSON as the Connect protocol).
import { once } from "node:events";
import { create, type DescMessage, type DescMethod, type DescService, fromBinary, isMessage, type Message, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type ContextKey,
  type ContextValues,
  createMethodImplSpec,
  createServiceImplSpec,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import * as grpc from "@grpc/grpc-js";
import { toConnectError } from "./interceptors.js";
import { malformedHeader, malformedRequest, markMalformed } from "./malformed-requests.js";

/** GrpcJsServerOptions say what a grpc-js server serves, and how. */
export interface GrpcJsServerOptions {
  /** registers the services, as connectNodeAdapter's routes do (without per-route options). */
  routes: (router: ConnectRouter) => void;
  /** the interceptors every call runs through, the first outermost, as in connectNodeAdapter. */
  interceptors: Interceptor[];
  /** the largest request message accepted, in bytes. */
  readMaxBytes: number;
  /** logs errors no interceptor mapped (they are answered Internal, without detail). */
  log: (message: string) => void;
}

type AnyFn = Parameters<Interceptor>[0];
type UnarySpec = Extract<MethodImplSpec, { kind: "unary" }>;
type StreamSpec = Extract<MethodImplSpec, { kind: "server_streaming" | "bidi_streaming" }>;
/** SurfaceCall is what callStateOf needs of any kind of grpc-js server call. */
interface SurfaceCall {
  readonly metadata: grpc.Metadata;
  getDeadline(): grpc.Deadline;
  getHost(): string;
  on(event: "cancelled", listener: () => void): unknown;
}
type GrpcStatus = { code: number; details: string; metadata: grpc.Metadata };

function pathOf(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** methodSpecs runs the routes against a router that records each method and its implementation. */
function methodSpecs(routes: GrpcJsServerOptions["routes"]): MethodImplSpec[] {
  const specs: MethodImplSpec[] = [];
  const noOptions = (options: object | undefined, what: string) => {
    if (options !== undefined) throw new Error(`grpc-js server: router options are not supported (${what})`);
  };
  const router: ConnectRouter = {
    handlers: [], // connect-es's universal handlers: grpc-js needs none
    service: (service, implementation, options) => {
      noOptions(options, service.typeName);
      specs.push(...Object.values(createServiceImplSpec(service, implementation).methods));
      return router;
    },
    rpc: (method, impl, options) => {
      noOptions(options, pathOf(method));
      specs.push(createMethodImplSpec(method, impl));
      return router;
    },
  };
  routes(router);
  return specs;
}

/** createGrpcJsServer builds a grpc-js server for every method the routes register; listenGrpcJs binds it. */
export function createGrpcJsServer(options: GrpcJsServerOptions): grpc.Server {
  const specs = methodSpecs(options.routes);
  if (specs.length === 0) throw new Error("createGrpcJsServer: the routes register no method");
  const inputs = new Map(specs.map((spec) => [pathOf(spec.method), spec.method.input]));
  // so_reuseport off: a second server on a taken port must fail, not quietly share it.
  const server = new grpc.Server({ "grpc.max_receive_message_length": options.readMaxBytes, "grpc.so_reuseport": 0, interceptors: [oneRequestMessage(inputs, options.log)] });
  const bytes = (data: Buffer) => data; // messages are decoded and encoded in the handlers
  for (const spec of specs) {
    const path = pathOf(spec.method);
    const registered =
      spec.kind === "unary"
        ? server.register(path, unaryHandler(spec, options), bytes, bytes, "unary")
        : spec.kind === "server_streaming"
          ? server.register(path, streamHandler(spec, options), bytes, bytes, "serverStream")
          : spec.kind === "bidi_streaming"
            ? server.register(path, streamHandler(spec, options), bytes, bytes, "bidi")
            : refuse(`createGrpcJsServer: ${path} is client-streaming, which this adapter does not serve`);
    if (!registered) throw new Error(`createGrpcJsServer: ${path} is registered twice`);
  }
  return server;
}

function refuse(message: string): never {
  throw new Error(message);
}

/** listenGrpcJs binds a server to host and port (0: a free one; an IPv6 literal as it is) and returns the port. */
export function listenGrpcJs(server: grpc.Server, host: string, port: number): Promise<number> {
  const address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound)));
  });
}

/** closeGrpcJs stops taking calls, lets those in flight finish for up to graceMs, then cancels the rest. */
export function closeGrpcJs(server: grpc.Server, graceMs: number): Promise<void> {
  if (!(graceMs >= 0)) throw new Error(`closeGrpcJs: graceMs must not be negative, got ${graceMs}`);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * oneRequestMessage refuses a unary or server-streaming call whose body holds no complete
 * message, or more than one, with InvalidArgument MALFORMED_REQUEST, as connect-node does
 * (grpc-js alone answers Unimplemented). The refusal needs no key, like every malformed body.
 */
function oneRequestMessage(inputs: ReadonlyMap<string, DescMessage>, log: (message: string) => void): grpc.ServerInterceptor {
  return (definition, call) => {
    const input = inputs.get(definition.path);
    if (definition.requestStream || input === undefined) return new grpc.ServerInterceptingCall(call);
    let messages = 0;
    // Method shorthand throughout: these closures are made per call, and named arrows would each cost a defineProperty under tsx.
    return new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMessage(message, nextMessage) {
            messages++;
            if (messages === 1) nextMessage(message);
            else if (messages === 2) call.sendStatus(malformedStatus(input, "2 or more", log)); // later ones are never read
          },
          onReceiveHalfClose(nextHalfClose) {
            if (messages === 1) nextHalfClose();
            else if (messages === 0) call.sendStatus(malformedStatus(input, "0", log));
          },
        });
      },
    });
  };
}

function malformedStatus(input: DescMessage, count: string, log: (message: string) => void): GrpcStatus {
  return grpcStatusOf(toConnectError(malformedRequest(input.typeName, `the method takes one request message, not ${count}`), log), log);
}

/** grpcStatusOf says an error as connect-node's gRPC handler does: its code, its message and its trailers (grpc-status-details-bin). */
function grpcStatusOf(error: ConnectError, log: (message: string) => void): GrpcStatus {
  const metadata = new grpc.Metadata();
  setTrailerStatus(new Headers(), error).forEach((value, key) => {
    if (key === "grpc-status" || key === "grpc-message") return; // grpc-js writes these from code and details
    try {
      metadata.add(key, key.endsWith("-bin") ? Buffer.from(value, "base64") : value);
    } catch (problem) {
      log(`gRPC trailer ${key} of a ${Code[error.code]} answer left out: ${String(problem)}`);
    }
  });
  return { code: error.code, details: error.rawMessage, metadata };
}

/** grpcTimeoutOf writes the time left to a deadline as a grpc-timeout header, or null when there is none. */
function grpcTimeoutOf(deadlineMs: number): string | null {
  if (!Number.isFinite(deadlineMs)) return null;
  const leftMs = Math.max(0, Math.floor(deadlineMs - Date.now()));
  return leftMs < 100_000_000 ? `${leftMs}m` : `${Math.min(99_999_999, Math.floor(leftMs / 1_000))}S`;
}

/** headerOf is the request's headers as connect-es shows them: the metadata, and the timeout grpc-js took out. */
function headerOf(metadata: grpc.Metadata, deadlineMs: number): Headers {
  const header = new Headers();
  const entries = metadata.toHttp2Headers();
  for (const key in entries) {
    if (key === malformedHeader) continue; // only a transport may mark a body malformed
    const value = entries[key];
    if (Array.isArray(value)) for (const each of value) header.append(key, each);
    else if (value !== undefined) header.append(key, String(value));
  }
  const timeout = grpcTimeoutOf(deadlineMs);
  if (timeout !== null) header.set("grpc-timeout", timeout);
  return header;
}

function cancelReason(deadlineMs: number): ConnectError {
  return Date.now() >= deadlineMs ? new ConnectError("the operation timed out", Code.DeadlineExceeded) : new ConnectError("the client cancelled the call", Code.Canceled);
}

/**
 * CallState is what one call's request, context and handler share. Its signal aborts when
 * grpc-js cancels the call (the client went away, or its deadline passed) before it was
 * answered; grpc-js also emits "cancelled" after every answered call, which changes
 * nothing. The signal is made when first read: an AbortController costs about as much as
 * the rest of the adapter's own work on a call, and most calls never look at it.
 */
class CallState {
  private controller: AbortController | undefined;
  private cancelled = false;
  private finished = false;

  constructor(
    readonly header: Headers,
    readonly deadlineMs: number,
    readonly url: string,
  ) {}

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.cancelled) this.controller.abort(cancelReason(this.deadlineMs));
    }
    return this.controller.signal;
  }

  cancel(): void {
    if (this.finished || this.cancelled) return;
    this.cancelled = true;
    this.controller?.abort(cancelReason(this.deadlineMs));
  }

  finish(): void {
    this.finished = true;
  }
}

/**
 * CallValues are a call's context values, as connect-es's createContextValues makes them,
 * with shared methods instead of three new ones per call; they also carry the call's state
 * to the implementation's context.
 */
class CallValues implements ContextValues {
  constructor(readonly call: CallState) {}

  get<T>(key: ContextKey<T>): T {
    const values = this as unknown as Record<symbol, T>;
    return key.id in values ? values[key.id] : key.defaultValue;
  }

  set<T>(key: ContextKey<T>, value: T): this {
    (this as unknown as Record<symbol, T>)[key.id] = value;
    return this;
  }

  delete(key: ContextKey<unknown>): this {
    delete (this as unknown as Record<symbol, unknown>)[key.id];
    return this;
  }
}

function callStateOf(call: SurfaceCall, method: DescMethod): CallState {
  const deadlineMs = Number(call.getDeadline());
  const state = new CallState(headerOf(call.metadata, deadlineMs), deadlineMs, `http://${call.getHost()}${pathOf(method)}`);
  call.on("cancelled", () => state.cancel()); // "on", not "once": cheaper, and cancel is idempotent
  return state;
}

/**
 * CallRequest is the UnaryRequest or StreamRequest the interceptors see. Its signal is a
 * getter, so that reading it is what makes it: an interceptor that copies the request by
 * spreading it passes no signal on (the implementation's context still has it).
 */
class CallRequest {
  readonly service: DescService;
  readonly requestMethod = "POST";
  readonly url: string;
  readonly header: Headers;
  readonly contextValues: CallValues;

  constructor(
    readonly stream: boolean,
    readonly method: DescMethod,
    readonly message: unknown,
    private readonly state: CallState,
  ) {
    this.service = method.parent;
    this.url = state.url;
    this.header = state.header;
    this.contextValues = new CallValues(state);
  }

  get signal(): AbortSignal {
    return this.state.signal;
  }
}

function requestOf<R extends UnaryRequest | StreamRequest>(state: CallState, method: R["method"], message: R["message"]): R {
  return new CallRequest(method.methodKind !== "unary", method, message, state) as unknown as R;
}

/** CallContext is the HandlerContext an implementation gets, from the request the interceptors passed on. */
class CallContext implements HandlerContext {
  readonly method: DescMethod;
  readonly service: DescService;
  readonly requestMethod: string;
  readonly requestHeader: Headers;
  readonly responseHeader = new Headers();
  readonly responseTrailer = new Headers();
  readonly protocolName = "grpc";
  readonly values: CallValues;
  readonly url: string;

  constructor(private readonly req: UnaryRequest | StreamRequest) {
    if (!(req.contextValues instanceof CallValues)) throw new Error("grpc-js server: an interceptor replaced the call's context values");
    this.method = req.method;
    this.service = req.service;
    this.requestMethod = req.requestMethod;
    this.requestHeader = req.header;
    this.values = req.contextValues;
    this.url = req.url;
  }

  get signal(): AbortSignal {
    return (this.req.signal as AbortSignal | undefined) ?? this.values.call.signal;
  }

  timeoutMs(): number | undefined {
    const { deadlineMs } = this.values.call;
    return Number.isFinite(deadlineMs) ? deadlineMs - Date.now() : undefined;
  }
}

/** applyInterceptors wraps next in the interceptors, the first outermost, as connect-es does; once per method, not per call. */
function applyInterceptors(next: AnyFn, interceptors: readonly Interceptor[]): AnyFn {
  return interceptors.reduceRight((inner, interceptor) => interceptor(inner), next);
}

function normalize<Desc extends DescMessage>(desc: Desc, value: MessageInitShape<Desc>): Message {
  return isMessage(value, desc) ? value : create(desc, value);
}

function bufferOf(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** metadataOf is headers as grpc-js metadata, or undefined when there are none. */
function metadataOf(header: Headers): grpc.Metadata | undefined {
  let metadata: grpc.Metadata | undefined;
  header.forEach((value, key) => (metadata ??= new grpc.Metadata()).add(key, key.endsWith("-bin") ? Buffer.from(value, "base64") : value));
  return metadata;
}

/** decodeMarked decodes a request message; one that does not decode is marked for malformedInterceptor and read as empty. */
function decodeMarked(desc: DescMessage, bytes: Buffer, header: Headers): Message {
  try {
    return fromBinary(desc, bytes);
  } catch (error) {
    markMalformed(header, error instanceof Error ? error.message : String(error));
    return create(desc);
  }
}

/** invokeUnary is a unary method's implementation behind the interceptors. */
function invokeUnary(spec: UnarySpec): AnyFn {
  const { method } = spec;
  return async (req) => {
    const ctx = new CallContext(req);
    const output = await spec.impl(req.message as Message, ctx);
    return { stream: false, service: req.service, method, header: ctx.responseHeader, trailer: ctx.responseTrailer, message: normalize(method.output, output) };
  };
}

type UnaryAnswer = [error: GrpcStatus | null, value: Buffer | null, trailer: grpc.Metadata | undefined];

/** unaryHandler serves a unary method: decode, interceptors and implementation, encode. */
function unaryHandler(spec: UnarySpec, options: GrpcJsServerOptions): grpc.handleUnaryCall<Buffer, Buffer> {
  const { method } = spec;
  const chain = applyInterceptors(invokeUnary(spec), options.interceptors);
  async function answer(call: grpc.ServerUnaryCall<Buffer, Buffer>): Promise<UnaryAnswer> {
    let state: CallState | undefined;
    try {
      state = callStateOf(call, method);
      const message = decodeMarked(method.input, call.request, state.header);
      const res = (await chain(requestOf<UnaryRequest>(state, method, message))) as UnaryResponse;
      const encoded = bufferOf(toBinary(method.output, res.message));
      const header = metadataOf(res.header);
      if (header !== undefined) call.sendMetadata(header);
      return [null, encoded, metadataOf(res.trailer)];
    } catch (error) {
      return [grpcStatusOf(toConnectError(error, options.log), options.log), null, undefined];
    } finally {
      state?.finish();
    }
  }
  return (call, callback) => {
    answer(call).then(
      ([error, value, trailer]) => callback(error, value, trailer),
      (error: unknown) => options.log(`gRPC answer to ${pathOf(method)} failed: ${String(error)}`),
    );
  };
}

async function* single<T>(value: T): AsyncIterable<T> {
  yield value;
}

async function firstOf<T>(values: AsyncIterable<T>): Promise<T> {
  for await (const value of values) return value;
  throw new ConnectError("protocol error: missing input message", Code.Unimplemented);
}

/** decodeEach decodes a request stream; a message that does not decode fails the call with MALFORMED_REQUEST. */
async function* decodeEach(desc: DescMessage, call: grpc.ServerDuplexStream<Buffer, Buffer>): AsyncIterable<Message> {
  // A readable's plain iterator destroys the whole duplex when the requests end, and the
  // answers with it: this one leaves the writable side open.
  for await (const chunk of call.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    let message: Message;
    try {
      message = fromBinary(desc, chunk);
    } catch (error) {
      throw malformedRequest(desc.typeName, error instanceof Error ? error.message : String(error));
    }
    yield message;
  }
}

async function* normalizeEach(desc: DescMessage, values: AsyncIterable<MessageInitShape<DescMessage>>): AsyncIterable<Message> {
  for await (const value of values) yield normalize(desc, value);
}

/** invokeStream is a streaming method's implementation behind the interceptors. */
function invokeStream(spec: StreamSpec): AnyFn {
  const { method } = spec;
  return async (req) => {
    const ctx = new CallContext(req);
    const input = req.message as AsyncIterable<Message>;
    const output = spec.kind === "server_streaming" ? spec.impl(await firstOf(input), ctx) : spec.impl(input, ctx);
    return { stream: true, service: req.service, method, header: ctx.responseHeader, trailer: ctx.responseTrailer, message: normalizeEach(method.output, output) } as StreamResponse;
  };
}

type StreamCall = grpc.ServerWritableStream<Buffer, Buffer> | grpc.ServerDuplexStream<Buffer, Buffer>;

/** streamHandler serves a server-streaming or bidi method, writing each answer as it comes and waiting while the client is slow. */
function streamHandler(spec: StreamSpec, options: GrpcJsServerOptions): (call: StreamCall) => void {
  const { method } = spec;
  const chain = applyInterceptors(invokeStream(spec), options.interceptors);
  async function serve(call: StreamCall): Promise<void> {
    let state: CallState | undefined;
    try {
      state = callStateOf(call, method);
      const input = "request" in call ? single(decodeMarked(method.input, call.request, state.header)) : decodeEach(method.input, call);
      const res = (await chain(requestOf<StreamRequest>(state, method as StreamRequest["method"], input))) as StreamResponse;
      const header = metadataOf(res.header);
      if (header !== undefined) call.sendMetadata(header);
      for await (const message of res.message) {
        if (call.cancelled) break;
        if (!call.write(bufferOf(toBinary(method.output, message)))) await once(call, "drain", { signal: state.signal });
      }
      if (!call.cancelled) call.end(metadataOf(res.trailer));
    } catch (error) {
      // A cancelled call's errors (its streams destroyed under it) have no one to go to.
      if (!call.cancelled) call.emit("error", grpcStatusOf(toConnectError(error, options.log), options.log));
    } finally {
      state?.finish();
    }
  }
  return (call) => {
    serve(call).catch((error: unknown) => options.log(`gRPC stream ${pathOf(method)} failed: ${String(error)}`));
  };
}
