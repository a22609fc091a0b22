// The wirecall runtime for TypeScript and JavaScript: JSON-RPC 2.0 over WebSocket, with the
// behaviour of the Rust client (see docs/PROTOCOL.md): call ids, per-call timeouts,
// cancellation through AbortSignal (`$/cancelRequest`), reconnect with backoff, resent
// `@idempotent` calls, resubscribing streams, and calls from the server to the client.
// Where a WebSocket cannot be opened it falls back to JSON-RPC over HTTP POST (streams as
// server-sent events), or uses HTTP when asked (`transport: "http"`).
//
// `wirecall gen ts` writes this file next to the generated code. It depends on nothing but
// a WebSocket implementation (the browser's, Node.js 22's, or one passed in `ClientOptions`,
// such as the `ws` package's on Node.js 20) and, for HTTP, `fetch`.
// Do not edit: change the generator's copy (wirecall-idl/src/ts/wirecall.ts) instead.

/** Any JSON value: what the IDL's `json` type carries. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** The IDL's `bytes`: a base64 string (standard alphabet, padded). See `toBase64`. */
export type Base64 = string;

/** Error codes the runtime uses (JSON-RPC 2.0's and wirecall's own). */
export const ErrorCode = {
  /** Invalid JSON was received. */
  ParseError: -32700,
  /** The JSON sent is not a valid request object. */
  InvalidRequest: -32600,
  /** The method does not exist. */
  MethodNotFound: -32601,
  /** Invalid method parameters; the message names the parameter. */
  InvalidParams: -32602,
  /** Internal error: the handler failed. */
  InternalError: -32603,
  /** The server is shutting down and takes no new calls. */
  ShuttingDown: -32001,
  /** A limit was exceeded (message size, subscriptions, …). */
  LimitExceeded: -32005,
  /** A subscription's buffer overflowed; the stream was closed. */
  Lagged: -32006,
  /** A call the server made while handling this one (e.g. back to a client) failed; `data.reason` says why. */
  PeerCallFailed: -32007,
  /** A publication to a topic failed; `data.reason` says why. */
  PublishFailed: -32008,
  /** Refused by the server's policy; the message says what was refused. */
  Forbidden: -32003,
  /** The call's deadline (`$timeout`) passed: the server stopped it. */
  DeadlineExceeded: -32004,
  /** Rate limited: `data.retry_after_ms` says when the next call is allowed. */
  RateLimited: -32029,
  /** The call was cancelled (`$/cancelRequest`). */
  Cancelled: -32800,
} as const;

/** The base of every error the runtime raises. */
export class WirecallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * An error answered by the peer: a JSON-RPC error object. Typed application errors
 * (the IDL's `error` types) are subclasses generated from the IDL.
 */
export class RpcError extends WirecallError {
  /** The JSON-RPC error code. */
  readonly code: number;
  /** The error object's `data`, if any. */
  readonly data: JsonValue | undefined;

  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.code = code;
    this.data = data as JsonValue | undefined;
  }

  /** The JSON-RPC error object. */
  toJSON(): { code: number; message: string; data?: JsonValue } {
    return this.data === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, data: this.data };
  }
}

/** The server's policy refused the call or subscription (`-32003`). */
export class ForbiddenError extends RpcError {}

/** The server's rate limit refused the call (`-32029`); try again after `retryAfterMs`. */
export class RateLimitedError extends RpcError {
  /** When the next call would be allowed, in milliseconds. */
  readonly retryAfterMs: number;

  constructor(code: number, message: string, data?: unknown) {
    super(code, message, data);
    const ms = (data as { retry_after_ms?: unknown } | undefined)?.retry_after_ms;
    this.retryAfterMs = typeof ms === "number" ? ms : 0;
  }
}

/** The call's time ran out (waiting for a connection included). */
export class TimeoutError extends WirecallError {}

/** The call was cancelled through its `AbortSignal`; the server was told to stop. */
export class CancelledError extends WirecallError {}

/**
 * The connection was lost while the call was in flight, so whether it ran is unknown.
 * `@idempotent` calls are sent again instead.
 */
export class DisconnectedError extends WirecallError {}

/** The client was closed, or gave up reconnecting. */
export class ClosedError extends WirecallError {}

/** The request is larger than `ClientOptions.maxMessageSize`; it was not sent. */
export class MessageTooLargeError extends WirecallError {}

/** Where a topic's publication stands: its key's epoch and its offset (1, 2, … per epoch). */
export interface Position {
  readonly epoch: string;
  readonly offset: number;
}

/**
 * A topic subscription lost publications (they left the server's history, or the hub lost
 * it): it goes on after `to`. Thrown by the subscription's iterator unless
 * `MethodOptions.onGap` takes it; the subscription stays open, so iterate it again.
 */
export class GapError extends WirecallError {
  constructor(
    /** The last position the subscription had, if any. */
    readonly from: Position | undefined,
    /** Where it continues: the next item has offset `to.offset + 1` in `to.epoch`. */
    readonly to: Position,
  ) {
    super(
      from === undefined
        ? `publications are lost; continuing after ${to.epoch}/${to.offset}`
        : `publications after ${from.epoch}/${from.offset} are lost; continuing after ${to.epoch}/${to.offset}`,
    );
  }
}

/** The parameters of a call: by name (what generated code sends) or by position. */
export type Params = { readonly [name: string]: unknown } | readonly unknown[];

/** Options of one call. */
export interface CallOptions {
  /** Time allowed for the call, waiting for a connection included (default: the client's). */
  timeoutMs?: number;
  /** Aborting it cancels the call: it fails with `CancelledError` and the server is told. */
  signal?: AbortSignalLike;
}

/**
 * Options of a stream (the IDL's `stream`): generated stream methods take them. A stream
 * lives until it ends, `break` leaves its loop, `close()` is called or `signal` fires.
 */
export interface StreamOptions extends CallOptions {
  /**
   * Time allowed for the subscribe call, waiting for a connection included: until the
   * server accepts the subscription (`ready`), and again for each resubscribe after a
   * reconnect. It does not limit how long the stream runs: for that, pass
   * `signal: AbortSignal.timeout(ms)`.
   */
  timeoutMs?: number;
  /**
   * Aborting it ends the stream: the server is told (the subscribe call is cancelled, or
   * the subscription unsubscribed), items not yet read are dropped, and the iteration (and
   * `ready`, if still pending) fails with `CancelledError`.
   */
  signal?: AbortSignalLike;
}

/** Options of a topic subscription (the IDL's `topic`): generated topic methods take them. */
export interface TopicOptions extends StreamOptions {
  /**
   * Takes the topic's gaps (`GapError`) instead of the iterator throwing them; either way
   * the subscription goes on after the gap.
   */
  onGap?: (gap: GapError) => void;
}

/** What generated code adds to `CallOptions`. */
export interface MethodOptions extends TopicOptions {
  /** Safe to send again after a reconnect (the IDL's `@idempotent`). */
  idempotent?: boolean;
  /** Turns an error answer into the method's typed error, if it is one. */
  mapError?: (error: RpcError) => RpcError | undefined;
  /**
   * A topic (the IDL's `topic`): its subscription's `ready` waits for the server's start
   * position, so that `position` is known once `ready` resolves.
   */
  topic?: boolean;
}

/** What generated client classes call through: a `Client`. */
export interface Caller {
  /** Calls `method` and resolves to its result. */
  call<T>(method: string, params: Params, options?: MethodOptions): Promise<T>;
  /** Sends a notification (no answer); resolves once it is handed to the socket. */
  notify(method: string, params: Params, options?: CallOptions): Promise<void>;
  /** Subscribes to a stream. */
  subscribe<T>(method: string, params: Params, options?: MethodOptions): Subscription<T>;
}

/** A method the server may call on this client (the IDL's `client { … }` block). */
export interface Handler {
  /** Parameter names in IDL order, each with whether it may be absent. */
  readonly params: readonly (readonly [name: string, optional: boolean])[];
  /** Runs the method with its arguments in IDL order; the result is the answer. */
  run(args: unknown[]): unknown;
}

/** Handlers by wire method name; generated by `XClient.callbacks(impl)`. */
export type Handlers = { readonly [method: string]: Handler };

/** The state of a client's connection. */
export type ConnectionState = "connecting" | "connected" | "reconnecting" | "closed";

/** When and how often to reconnect. */
export interface ReconnectOptions {
  /** First delay (default 100 ms); it doubles after each failed attempt. */
  initialBackoffMs?: number;
  /** Longest delay (default 30 s). */
  maxBackoffMs?: number;
  /**
   * Wait a random time between zero and the delay ("full jitter", default true), so that
   * clients dropped at once do not come back at once.
   */
  jitter?: boolean;
  /**
   * How long a connection must stay up before the delay starts again from
   * `initialBackoffMs` (default 5 s); one that drops sooner counts as a failed attempt, so
   * a server that accepts and drops every connection is retried ever more slowly.
   */
  stableAfterMs?: number;
  /** Give up after this many failed attempts in a row (default: never). */
  maxAttempts?: number;
}

/**
 * The wait before a reconnect attempt after `failures` failed ones in a row:
 * `initialBackoffMs` doubled per failure, at most `maxBackoffMs`; with jitter (the
 * default), a uniformly random time between zero and that.
 */
export function backoff(options: ReconnectOptions, failures: number): number {
  const initial = options.initialBackoffMs ?? DEFAULTS.initialBackoffMs;
  const maxDelay = options.maxBackoffMs ?? DEFAULTS.maxBackoffMs;
  const ceiling = Math.min(initial * 2 ** Math.min(failures, 30), maxDelay);
  return options.jitter === false ? ceiling : Math.random() * ceiling;
}

/**
 * The WebSocket subprotocol that carries `token`: `bearer.` and the token's UTF-8 bytes in
 * unpadded base64url. The server selects `jsonrpc-2.0` and never echoes it.
 */
export function bearerSubprotocol(token: string): string {
  const bytes: number[] = [];
  for (const ch of token) {
    const c = ch.codePointAt(0) as number;
    if (c < 0x80) bytes.push(c);
    else if (c < 0x800) bytes.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else bytes.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  let out = "bearer.";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let k = 0; k < chars; k++) out += alphabet[(n >> (18 - 6 * k)) & 63];
  }
  return out;
}

/** Options of `connect`. */
export interface ClientOptions {
  /** Default call timeout (30 s). */
  timeoutMs?: number;
  /** Reconnect settings, or `false` for a client that ends with its first connection. */
  reconnect?: ReconnectOptions | false;
  /** Subprotocols to offer (default `["jsonrpc-2.0"]`). */
  protocols?: string[];
  /** Time allowed for the WebSocket handshake (10 s). */
  handshakeTimeoutMs?: number;
  /** Largest request sent, in bytes (10 MiB); larger calls fail with `MessageTooLargeError`. */
  maxMessageSize?: number;
  /** Items a subscription buffers before it closes with a lagged error (1 024). */
  subscriptionBuffer?: number;
  /** Methods the server may call on this client. */
  handlers?: Handlers | Handlers[];
  /** Called on every state change; `error` says why a connection ended, when known. */
  onStateChange?: (state: ConnectionState, error?: Error) => void;
  /**
   * The WebSocket class to use (default: `globalThis.WebSocket`). Node.js 20 has none
   * unless started with `--experimental-websocket`: pass the `ws` package's
   * (`import WebSocket from "ws"`, then `{ WebSocket }`).
   */
  WebSocket?: WebSocketConstructor;
  /**
   * How to reach the server: `"auto"` (default) opens a WebSocket and, when one cannot be
   * opened, falls back to HTTP POST for that connection (once a WebSocket has opened, the
   * client keeps to WebSockets: a failed reconnect then means the server is away, not
   * that WebSockets are blocked); `"websocket"` never uses HTTP; `"http"` always does.
   * An `http(s)://` URL means `"http"`; `ws(s)://` URLs map to `http(s)://` for HTTP.
   * `Client.transport` says which one a connection uses.
   *
   * Over HTTP the server cannot call the client, so `handlers` with `"http"` (or where
   * there is no WebSocket class at all) are refused with a `TypeError`; with `"auto"` and
   * no WebSocket class, a `ws(s)://` URL is reached over HTTP with a warning on the console.
   */
  transport?: Transport;
  /** The `fetch` function to use over HTTP (default: `globalThis.fetch`). */
  fetch?: FetchLike;
  /**
   * A bearer token, or a function that returns a fresh one; called before every
   * (re)connect, e.g. after the server closed with 4401 because the last one expired.
   * Over WebSocket it is offered as the subprotocol `bearer.BASE64URL(TOKEN)` next to
   * `jsonrpc-2.0` (browsers cannot set headers on a WebSocket); over HTTP it is sent as
   * `Authorization: Bearer TOKEN`.
   */
  token?: string | (() => string | Promise<string>);
}

/** The part of `fetch` the runtime uses (the browser's, Node.js 18+'s). */
export type FetchLike = (
  url: string,
  init: { method: string; headers: { [name: string]: string }; body: string; signal?: unknown },
) => Promise<FetchResponseLike>;

/** The part of a `fetch` response the runtime uses. */
export interface FetchResponseLike {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  readonly body: { getReader(): ByteReader } | null;
  text(): Promise<string>;
}

/** The part of a `ReadableStreamDefaultReader` the runtime uses. */
export interface ByteReader {
  read(): Promise<{ done: boolean; value?: Uint8Array }>;
  cancel(): Promise<void>;
}

/** The part of `AbortSignal` the runtime uses. */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}

/**
 * An event handler property of `WebSocketLike`. Written as a method's type, which
 * TypeScript compares both ways, so that classes whose handlers take richer events (the
 * `ws` package's `WebSocket`, whose `onmessage` takes its own `MessageEvent`) fit as they
 * are, without a cast.
 */
export type SocketHandler<E> = { handle(event: E): void }["handle"];

/** The part of the WebSocket API the runtime uses (the browser's, Node.js's, `ws`). */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: SocketHandler<unknown> | null;
  onclose: SocketHandler<{ code: number; reason: string }> | null;
  onerror: SocketHandler<unknown> | null;
  onmessage: SocketHandler<{ data: unknown }> | null;
}

/** A WebSocket class. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** How a client reaches the server (`ClientOptions.transport`). */
export type Transport = "auto" | "websocket" | "http";

/** What a connection runs over (`Client.transport`). */
export type ConnectionTransport = "websocket" | "http";

/** How to give a runtime without a WebSocket class one (in error messages and warnings). */
const HOW_TO_GET_A_WEBSOCKET =
  "pass one as `options.WebSocket` (e.g. `import WebSocket from \"ws\"`, then `{ WebSocket }`), " +
  "or run Node.js 22+ (Node.js 20: `node --experimental-websocket`)";

const DEFAULTS = {
  timeoutMs: 30_000,
  handshakeTimeoutMs: 10_000,
  maxMessageSize: 10 * 1024 * 1024,
  subscriptionBuffer: 1024,
  initialBackoffMs: 100,
  maxBackoffMs: 30_000,
  stableAfterMs: 5_000,
} as const;

const OPEN = 1;

/** The close code of a connection whose authentication expired (an event stream's `$/expired`, too). */
const EXPIRED_CLOSE_CODE = 4401;

type TimerHandle = unknown;
const timers = globalThis as unknown as {
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
};

/** Connects to `url` (or the first of several, rotating on failure) and returns the client. */
export function connect(url: string | string[], options: ClientOptions = {}): Client {
  return new Client(url, options);
}

/** One call, from the caller's first `await` to its single ending. */
interface CallState {
  readonly method: string;
  readonly params: Params;
  readonly idempotent: boolean;
  readonly mapError: ((error: RpcError) => RpcError | undefined) | undefined;
  /** When the caller stops waiting (ms, the clock of `Date.now()`): sent as `$timeout`. */
  readonly deadline: number;
  /** The id of the attempt on the wire, if it was sent. */
  id: number | undefined;
  /** Sent again after a rate limit's `retry_after_ms` already. */
  retried: boolean;
  /** Settled already (by its answer, timeout or abort)? */
  done(): boolean;
  /** Runs when the result arrives, before the caller sees it (subscriptions use it). */
  onResult: ((value: unknown) => void) | undefined;
  settle(outcome: { value: unknown } | { error: Error }): void;
}

/**
 * A client: one WebSocket connection at a time, reconnecting when it drops. Generated
 * classes (`new CalculatorClient(client)`) make typed calls through it.
 */
export class Client implements Caller {
  readonly #urls: string[];
  #urlIndex = 0;
  readonly #options: ClientOptions;
  readonly #WebSocket: WebSocketConstructor | undefined;
  #socket: WebSocketLike | undefined;
  /** What the open connection runs over. */
  #transport: ConnectionTransport | undefined;
  /** A WebSocket opened once: later attempts do not fall back to HTTP. */
  #webSocketOpened = false;
  #state: ConnectionState = "connecting";
  #attempts = 0;
  /** Failed attempts in a row, for the backoff: a connection that did not stay up counts. */
  #failures = 0;
  /** When the current connection opened (`Date.now()`), while it is open. */
  #openedAt: number | undefined;
  #nextId = 1;
  #retryTimer: TimerHandle | undefined;
  /** Calls sent on the current connection, by id. */
  readonly #inFlight = new Map<number, CallState>();
  /** Calls waiting for a connection, in order. */
  readonly #waiting: CallState[] = [];
  /** Notifications waiting for a connection. */
  readonly #waitingNotes: { frame: string; done: () => void; fail: (e: Error) => void }[] = [];
  /** Live subscriptions by server-side id (current connection). */
  readonly #subsById = new Map<string, SubscriptionState<unknown>>();
  /** Every subscription not yet finished (resubscribed after a reconnect). */
  readonly #subs = new Set<SubscriptionState<unknown>>();
  readonly #handlers = new Map<string, Handler>();
  readonly #listeners = new Set<(state: ConnectionState, error?: Error) => void>();

  constructor(url: string | string[], options: ClientOptions = {}) {
    this.#urls = typeof url === "string" ? [url] : [...url];
    if (this.#urls.length === 0) throw new TypeError("connect: no URL given");
    this.#options = options;
    const ctor =
      options.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (ctor === undefined && options.transport === "websocket") {
      throw new TypeError(`connect: no WebSocket class here: ${HOW_TO_GET_A_WEBSOCKET}`);
    }
    this.#WebSocket = ctor;
    const handlers = options.handlers;
    if (handlers !== undefined) {
      for (const h of Array.isArray(handlers) ? handlers : [handlers]) this.handle(h);
    }
    if (ctor === undefined && options.transport !== "http") {
      const ws = this.#urls.find((u) => /^wss?:/i.test(u));
      if (ws !== undefined) {
        const console = (globalThis as unknown as { console?: { warn(message: string): void } }).console;
        console?.warn(
          `wirecall: no WebSocket class here, so ${ws} is reached over HTTP POST instead; ${HOW_TO_GET_A_WEBSOCKET}. ` +
            "Pass `transport: \"http\"` if HTTP is meant.",
        );
      }
    }
    if (options.onStateChange !== undefined) this.#listeners.add(options.onStateChange);
    this.#open();
  }

  /** The connection's state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /**
   * What the current connection runs over: `"websocket"`, or `"http"` (asked for, or fallen
   * back to); `undefined` while not connected.
   */
  get transport(): ConnectionTransport | undefined {
    return this.#transport;
  }

  /** Calls `listener` on every state change; returns a function that stops it. */
  onStateChange(listener: (state: ConnectionState, error?: Error) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves once connected (at once if connected now); rejects once the client is closed. */
  connected(): Promise<void> {
    if (this.#state === "connected") return Promise.resolve();
    if (this.#state === "closed") return Promise.reject(new ClosedError("the client is closed"));
    return new Promise((resolve, reject) => {
      const stop = this.onStateChange((state) => {
        if (state === "connected") {
          stop();
          resolve();
        } else if (state === "closed") {
          stop();
          reject(new ClosedError("the client is closed"));
        }
      });
    });
  }

  /**
   * Adds methods the server may call on this client (generated `XClient.callbacks(impl)`).
   * Throws `TypeError` where the client can only use HTTP (`transport: "http"`, `http(s)://`
   * URLs, or no WebSocket class), over which the server cannot call it.
   */
  handle(handlers: Handlers): void {
    if (Object.keys(handlers).length > 0) {
      if (this.#WebSocket === undefined) {
        throw new TypeError(
          `connect: the server's calls to this client (\`handlers\`) need a WebSocket, and there is no WebSocket class here: ${HOW_TO_GET_A_WEBSOCKET}`,
        );
      }
      if (this.#options.transport === "http" || this.#urls.every((u) => /^https?:/i.test(u))) {
        throw new TypeError(
          "connect: the server's calls to this client (`handlers`) need a WebSocket; over HTTP (`transport: \"http\"`, or an http(s):// URL) the server cannot call the client",
        );
      }
    }
    for (const [method, handler] of Object.entries(handlers)) this.#handlers.set(method, handler);
  }

  /**
   * Closes the connection for good: calls not yet answered fail with `ClosedError`,
   * subscriptions end with it.
   */
  close(): void {
    if (this.#state === "closed") return;
    this.#shutDown(new ClosedError("the client is closed"));
  }

  call<T>(method: string, params: Params, options: MethodOptions = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#start(method, params, options, undefined, resolve as (value: unknown) => void, reject);
    });
  }

  notify(method: string, params: Params, options: CallOptions = {}): Promise<void> {
    const frame = JSON.stringify({ jsonrpc: "2.0", method, params });
    return new Promise<void>((resolve, reject) => {
      if (this.#state === "closed") return reject(new ClosedError("the client is closed"));
      if (!this.#fits(frame, reject)) return;
      if (this.#isOpen()) {
        this.#send(frame);
        return resolve();
      }
      const entry = { frame, done: resolve, fail: reject };
      let timer: TimerHandle | undefined;
      const finish = () => {
        if (timer !== undefined) timers.clearTimeout(timer);
        const i = this.#waitingNotes.indexOf(entry);
        if (i >= 0) this.#waitingNotes.splice(i, 1);
      };
      entry.done = () => {
        finish();
        resolve();
      };
      entry.fail = (e) => {
        finish();
        reject(e);
      };
      timer = timers.setTimeout(
        () => entry.fail(new TimeoutError(`${method}: no connection within the timeout`)),
        options.timeoutMs ?? this.#timeoutMs(),
      );
      this.#waitingNotes.push(entry);
    });
  }

  subscribe<T>(method: string, params: Params, options: MethodOptions = {}): Subscription<T> {
    const state = new SubscriptionState<T>(this, method, params, options);
    if (this.#state === "closed") {
      state.fail(new ClosedError("the client is closed"));
    } else {
      this.#subs.add(state as SubscriptionState<unknown>);
      this.subscribeOnce(state as SubscriptionState<unknown>);
    }
    return state.subscription;
  }

  /** Sends the subscribe call of `state` (again, after a reconnect). @internal */
  subscribeOnce(state: SubscriptionState<unknown>): void {
    const onResult = (value: unknown) => {
      // Runs in the message handler, so no item of the new stream can come first.
      const id = subscriptionKey(value);
      if (id === undefined) return;
      if (state.finished) {
        this.#sendUnsubscribe(state.method, value);
        return;
      }
      state.serverId = value;
      this.#subsById.set(id, state);
    };
    this.#start(
      state.method,
      state.subscribeParams(),
      { ...state.options, idempotent: true },
      onResult,
      () => state.subscribed(),
      (error: Error) => state.fail(error),
    );
  }

  /** Ends a subscription from the client side (unsubscribes on the server). @internal */
  unsubscribe(state: SubscriptionState<unknown>): void {
    this.#subs.delete(state);
    const id = subscriptionKey(state.serverId);
    if (id !== undefined && this.#subsById.get(id) === state) {
      this.#subsById.delete(id);
      this.#sendUnsubscribe(state.method, state.serverId);
    }
  }

  /** Forgets a subscription the server ended. @internal */
  forget(state: SubscriptionState<unknown>): void {
    this.#subs.delete(state);
    const id = subscriptionKey(state.serverId);
    if (id !== undefined && this.#subsById.get(id) === state) this.#subsById.delete(id);
  }

  /** The buffer size of subscriptions. @internal */
  get subscriptionBuffer(): number {
    return this.#options.subscriptionBuffer ?? DEFAULTS.subscriptionBuffer;
  }

  #sendUnsubscribe(method: string, id: unknown): void {
    if (this.#isOpen()) {
      // A notification, as the Rust client sends it: nothing waits for an answer.
      this.#send(JSON.stringify({ jsonrpc: "2.0", method: `${method}.unsubscribe`, params: [id] }));
    }
  }

  #timeoutMs(): number {
    return this.#options.timeoutMs ?? DEFAULTS.timeoutMs;
  }

  #isOpen(): boolean {
    return this.#state === "connected" && this.#socket !== undefined && this.#socket.readyState === OPEN;
  }

  #send(frame: string): void {
    this.#socket?.send(frame);
  }

  #fits(frame: string, reject: (e: Error) => void): boolean {
    const limit = this.#options.maxMessageSize ?? DEFAULTS.maxMessageSize;
    // A UTF-16 unit is 1 to 3 bytes of UTF-8, so count only when the bounds disagree.
    if (frame.length * 3 <= limit || (frame.length <= limit && utf8Length(frame) <= limit)) return true;
    reject(new MessageTooLargeError(`the request is larger than the limit of ${limit} bytes; not sent`));
    return false;
  }

  /** Starts a call: sends it now, or queues it until connected; arms timeout and signal. */
  #start(
    method: string,
    params: Params,
    options: MethodOptions,
    onResult: ((value: unknown) => void) | undefined,
    resolve: (value: unknown) => void,
    reject: (error: Error) => void,
  ): void {
    if (this.#state === "closed") return reject(new ClosedError("the client is closed"));
    const signal = options.signal;
    if (signal?.aborted) return reject(new CancelledError(`${method}: cancelled before it was sent`));
    let timer: TimerHandle | undefined;
    let done = false;
    const onAbort = () => this.#giveUp(call, new CancelledError(`${method}: cancelled`));
    const call: CallState = {
      method,
      params,
      idempotent: options.idempotent === true,
      mapError: options.mapError,
      deadline: Date.now() + (options.timeoutMs ?? this.#timeoutMs()),
      id: undefined,
      retried: false,
      done: () => done,
      onResult,
      settle: (outcome) => {
        if (done) return;
        done = true;
        if (timer !== undefined) timers.clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if ("error" in outcome) reject(outcome.error);
        else resolve(outcome.value);
      },
    };
    timer = timers.setTimeout(
      () => this.#giveUp(call, new TimeoutError(`${method}: no answer within ${options.timeoutMs ?? this.#timeoutMs()} ms`)),
      options.timeoutMs ?? this.#timeoutMs(),
    );
    signal?.addEventListener("abort", onAbort, { once: true });
    if (this.#isOpen()) this.#sendCall(call);
    else this.#waiting.push(call);
  }

  /** Ends a call from this side (timeout, abort): the server is told to stop it. */
  #giveUp(call: CallState, error: Error): void {
    if (call.id !== undefined && this.#inFlight.get(call.id) === call) {
      this.#inFlight.delete(call.id);
      if (this.#isOpen()) {
        this.#send(JSON.stringify({ jsonrpc: "2.0", method: "$/cancelRequest", params: { id: call.id } }));
      }
    } else {
      const i = this.#waiting.indexOf(call);
      if (i >= 0) this.#waiting.splice(i, 1);
    }
    call.settle({ error });
  }

  #sendCall(call: CallState): void {
    const id = this.#nextId++;
    // The server learns how long this side waits: it stops the call by itself then.
    const $timeout = Math.max(0, Math.round(call.deadline - Date.now()));
    const frame = JSON.stringify({ jsonrpc: "2.0", method: call.method, params: call.params, id, $timeout });
    if (!this.#fits(frame, (error) => call.settle({ error }))) return;
    call.id = id;
    this.#inFlight.set(id, call);
    this.#send(frame);
  }

  #setState(state: ConnectionState, error?: Error): void {
    if (this.#state === state) return;
    this.#state = state;
    for (const listener of [...this.#listeners]) {
      try {
        listener(state, error);
      } catch {
        // A listener's failure is its own; the client carries on.
      }
    }
  }

  #open(): void {
    const url = this.#urls[this.#urlIndex % this.#urls.length] as string;
    this.#urlIndex++;
    const token = this.#options.token;
    if (typeof token !== "function") {
      this.#openWith(url, token);
      return;
    }
    // A fresh token for every attempt, within the handshake timeout (a fetch that hangs
    // fails this attempt; the next one asks again).
    let fetched: Promise<string>;
    try {
      fetched = Promise.resolve(token());
    } catch (e) {
      fetched = Promise.reject(e);
    }
    const limitMs = this.#options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs;
    let settled = false;
    const settle = (then: () => void) => {
      if (settled) return;
      settled = true;
      timers.clearTimeout(limit);
      if (this.#state !== "closed") then();
    };
    const limit = timers.setTimeout(
      () => settle(() => this.#lost(new DisconnectedError(`cannot get a token within ${limitMs} ms`))),
      limitMs,
    );
    fetched.then(
      (t) => settle(() => this.#openWith(url, t)),
      (e: unknown) => settle(() => this.#lost(new DisconnectedError(`cannot get a token: ${String(e)}`))),
    );
  }

  #openWith(url: string, token: string | undefined): void {
    const transport = /^https?:/i.test(url) ? "http" : this.#options.transport ?? "auto";
    const option = this.#options.token;
    const refresh = typeof option === "function" ? async () => await option() : undefined;
    const http = () => new HttpSocket(httpUrl(url), this.#fetch(), token, refresh);
    if (transport === "http" || this.#WebSocket === undefined) {
      this.#attach(http(), url);
      return;
    }
    const protocols = [...(this.#options.protocols ?? ["jsonrpc-2.0"])];
    if (token !== undefined) protocols.push(bearerSubprotocol(token));
    let socket: WebSocketLike;
    try {
      socket = new this.#WebSocket(url, protocols);
    } catch (e) {
      if (transport === "auto") {
        // No WebSocket here (blocked, or not allowed): HTTP instead.
        this.#attach(http(), url);
        return;
      }
      // A malformed URL: nothing to retry.
      this.#shutDown(new ClosedError(`cannot connect to ${url}: ${String(e)}`));
      return;
    }
    // Once a WebSocket has opened, one that cannot be opened means the server is away (and
    // Node.js 20's fetch may never settle against a server that resets the connection).
    this.#attach(socket, url, transport === "auto" && !this.#webSocketOpened ? http : undefined);
  }

  #fetch(): FetchLike {
    const f = this.#options.fetch ?? (globalThis as unknown as { fetch?: FetchLike }).fetch;
    if (f === undefined) throw new TypeError("connect: HTTP needs `fetch`; pass one as `options.fetch`");
    return f;
  }

  /**
   * Runs the connection over `socket`. With `fallBack`, a WebSocket that cannot be opened
   * is replaced by the HTTP socket it makes, for this attempt.
   */
  #attach(socket: WebSocketLike, url: string, fallBack?: () => WebSocketLike): void {
    this.#socket = socket;
    let opened = false;
    const handshake = timers.setTimeout(() => {
      if (!opened) socket.close();
    }, this.#options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs);
    socket.onopen = () => {
      opened = true;
      timers.clearTimeout(handshake);
      if (this.#socket !== socket) return;
      this.#attempts = 0;
      this.#transport = socket instanceof HttpSocket ? "http" : "websocket";
      if (this.#transport === "websocket") this.#webSocketOpened = true;
      this.#openedAt = Date.now();
      this.#setState("connected");
      this.#flushWaiting();
    };
    socket.onmessage = (event) => {
      if (this.#socket === socket && typeof event.data === "string") this.#receive(event.data);
    };
    // The connection ends once, whichever event says so first: some WebSocket
    // implementations (Node.js 20's) report a refused connection with `error` and no `close`.
    const ended = (why: string) => {
      timers.clearTimeout(handshake);
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      this.#transport = undefined;
      try {
        socket.close();
      } catch {
        // Already closed.
      }
      if (!opened && fallBack !== undefined) {
        this.#attach(fallBack(), url);
        return;
      }
      this.#lost(new DisconnectedError(why));
    };
    socket.onerror = () => ended(opened ? `connection to ${url} failed` : `cannot connect to ${url}`);
    socket.onclose = (event) =>
      ended(
        opened
          ? `connection to ${url} closed (code ${event.code}${event.reason ? `: ${event.reason}` : ""})`
          : `cannot connect to ${url}`,
      );
  }

  #flushWaiting(): void {
    for (const note of this.#waitingNotes.splice(0)) {
      this.#send(note.frame);
      note.done();
    }
    for (const call of this.#waiting.splice(0)) this.#sendCall(call);
    for (const sub of this.#subs) if (sub.needsResubscribe) sub.resubscribe();
  }

  /** The connection dropped: fail or keep calls, then reconnect or close. */
  #lost(error: DisconnectedError): void {
    const inFlight = [...this.#inFlight.values()];
    this.#inFlight.clear();
    this.#subsById.clear();
    for (const sub of this.#subs) sub.connectionLost();
    const reconnect = this.#options.reconnect;
    const max = reconnect === false ? 0 : reconnect?.maxAttempts ?? Infinity;
    const options = reconnect === false ? {} : reconnect ?? {};
    if (this.#openedAt !== undefined) {
      // The backoff starts again only after a connection that stayed up.
      const stable = options.stableAfterMs ?? DEFAULTS.stableAfterMs;
      if (Date.now() - this.#openedAt >= stable) this.#failures = 0;
      this.#openedAt = undefined;
    }
    if (this.#state === "closed") return;
    if (this.#attempts >= max) {
      for (const call of inFlight) call.settle({ error });
      this.#shutDown(new ClosedError(`gave up reconnecting: ${error.message}`));
      return;
    }
    // Calls whose sending is safe to repeat wait for the next connection; others failed.
    for (const call of inFlight) {
      if (call.idempotent) {
        call.id = undefined;
        this.#waiting.push(call);
      } else {
        call.settle({ error });
      }
    }
    this.#setState("reconnecting", error);
    const delay = backoff(options, this.#failures);
    this.#attempts++;
    this.#failures++;
    this.#retryTimer = timers.setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#state !== "closed") this.#open();
    }, delay);
  }

  #shutDown(error: ClosedError): void {
    this.#transport = undefined;
    this.#setState("closed", error);
    if (this.#retryTimer !== undefined) timers.clearTimeout(this.#retryTimer);
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket !== undefined) {
      try {
        socket.close(1000);
      } catch {
        // Already closing.
      }
    }
    for (const call of [...this.#inFlight.values(), ...this.#waiting.splice(0)]) call.settle({ error });
    this.#inFlight.clear();
    for (const note of this.#waitingNotes.splice(0)) note.fail(error);
    for (const sub of [...this.#subs]) sub.fail(error);
    this.#subs.clear();
    this.#subsById.clear();
  }

  #receive(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return; // Not JSON: nothing in it can be answered or matched.
    }
    if (Array.isArray(message)) {
      const replies: unknown[] = [];
      let pending = 0;
      const finish = () => {
        if (replies.length > 0 && this.#isOpen()) this.#send(JSON.stringify(replies));
      };
      for (const item of message) {
        const reply = this.#dispatch(item);
        if (reply !== undefined) {
          pending++;
          void reply.then((r) => {
            replies.push(r);
            if (--pending === 0) finish();
          });
        }
      }
      return;
    }
    const reply = this.#dispatch(message);
    if (reply !== undefined) {
      void reply.then((r) => {
        if (this.#isOpen()) this.#send(JSON.stringify(r));
      });
    }
  }

  /** Handles one message; a request from the server gives a promise of its answer. */
  #dispatch(message: unknown): Promise<unknown> | undefined {
    if (typeof message !== "object" || message === null) return undefined;
    const m = message as { method?: unknown; params?: unknown; id?: unknown; result?: unknown; error?: unknown };
    if (typeof m.method === "string") {
      const params = m.params as
        | { subscription?: unknown; result?: unknown; error?: unknown; epoch?: unknown; offset?: unknown; gap?: unknown; position?: unknown }
        | undefined;
      if (!("id" in m) && typeof params === "object" && params !== null && "subscription" in params) {
        const key = subscriptionKey(params.subscription);
        const sub = key === undefined ? undefined : this.#subsById.get(key);
        if (sub !== undefined) {
          if ("result" in params) sub.push(params.result, toPosition(params));
          else if ("error" in params) sub.serverEnded(params.error === null ? undefined : toRpcError(params.error));
          else if ("gap" in params) sub.gap(toPosition(params.gap));
          else if ("position" in params) sub.startsAt(toPosition(params.position));
          return undefined;
        }
      }
      return this.#serve(m.method, m.params, "id" in m, m.id);
    }
    if (typeof m.id !== "number") return undefined;
    const call = this.#inFlight.get(m.id);
    if (call === undefined) return undefined;
    this.#inFlight.delete(m.id);
    if ("error" in m) {
      const error = toRpcError(m.error);
      // An idempotent call that the rate limit refused waits as long as the server says
      // and tries once more, if that fits in its timeout.
      if (
        error instanceof RateLimitedError &&
        call.idempotent &&
        !call.retried &&
        Date.now() + error.retryAfterMs < call.deadline
      ) {
        call.retried = true;
        call.id = undefined;
        timers.setTimeout(() => {
          if (call.done()) return;
          if (this.#isOpen()) this.#sendCall(call);
          else this.#waiting.push(call);
        }, error.retryAfterMs);
        return undefined;
      }
      call.settle({ error: call.mapError?.(error) ?? error });
    } else {
      const value = "result" in m ? m.result : null;
      call.onResult?.(value);
      call.settle({ value });
    }
    return undefined;
  }

  /** Runs a method the server called on this client; a notification gets no answer. */
  #serve(method: string, params: unknown, hasId: boolean, id: unknown): Promise<unknown> | undefined {
    const answer = (async () => {
      const handler = this.#handlers.get(method);
      if (handler === undefined) throw new RpcError(ErrorCode.MethodNotFound, "Method not found");
      return (await handler.run(decodeArgs(handler, params))) ?? null;
    })();
    if (!hasId) {
      answer.catch(() => undefined);
      return undefined;
    }
    return answer.then(
      (result) => ({ jsonrpc: "2.0", result, id }),
      (e: unknown) => {
        const error =
          e instanceof RpcError ? e.toJSON() : { code: ErrorCode.InternalError, message: "Internal error", data: String(e) };
        return { jsonrpc: "2.0", error, id };
      },
    );
  }
}

/** `ws://h/p` → `http://h/p`, `wss://` → `https://`; HTTP URLs as they are. */
function httpUrl(url: string): string {
  return url.replace(/^ws(s?):/i, "http$1:");
}

interface AbortControllerLike {
  readonly signal: unknown;
  abort(): void;
}

interface TextDecoderLike {
  decode(bytes?: Uint8Array, options?: { stream?: boolean }): string;
}

const web = globalThis as unknown as {
  AbortController: new () => AbortControllerLike;
  TextDecoder: new () => TextDecoderLike;
};

/**
 * JSON-RPC over HTTP behind the WebSocket interface the client uses: each request is one
 * POST whose answer comes back as a message; a stream's POST asks for server-sent events,
 * each event a message. `$/cancelRequest` aborts that POST; unsubscribing closes that
 * stream's response (which stops it on the server). It "opens" once the server answers a
 * probe, and "closes" when a POST fails or the server answers with an HTTP error.
 */
class HttpSocket implements WebSocketLike {
  readyState = 0;
  readonly protocol = "";
  onopen: ((event: unknown) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  readonly #url: string;
  readonly #fetch: FetchLike;
  readonly #headers: { [name: string]: string };
  /** The client's token function: a POST refused with 401 is sent once more with a fresh token. */
  readonly #refresh: (() => Promise<string>) | undefined;
  /** The refresh under way: the POSTs refused meanwhile wait for it instead of each fetching one. */
  #refreshing: Promise<void> | undefined;
  /** POSTs awaiting their answer, by request id. */
  readonly #calls = new Map<number, AbortControllerLike>();
  /** Open event streams, by subscription id. */
  readonly #streams = new Map<string, AbortControllerLike>();
  readonly #all = new Set<AbortControllerLike>();
  /** Requests this side stopped on purpose: their abort is not a failure. */
  readonly #dropped = new Set<AbortControllerLike>();
  /**
   * The POST of the last notification sent: each request waits for its answer (the server
   * answers a notification once its handler started), so the server sees a notification
   * before what the client sends after it, as over a WebSocket. Calls are not ordered
   * among themselves (each is a POST of its own), as a WebSocket server runs them at once.
   */
  #lastNote: Promise<unknown> = Promise.resolve();

  constructor(url: string, fetch: FetchLike, token?: string, refresh?: () => Promise<string>) {
    this.#url = url;
    this.#refresh = refresh;
    this.#headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
    if (token !== undefined) this.#headers["authorization"] = `Bearer ${token}`;
    // Called as a plain function: a browser's `fetch` refuses any other `this`.
    this.#fetch = (target, init) => fetch(target, init);
    // The probe: an empty batch, which any JSON-RPC server answers with one error.
    void this.#request("[]", undefined).then((answered) => {
      if (answered && this.readyState === 0) {
        this.readyState = OPEN;
        this.onopen?.({});
      }
    });
  }

  send(frame: string): void {
    if (this.readyState !== OPEN) return;
    let message: { method?: unknown; params?: unknown; id?: unknown } | undefined;
    try {
      message = JSON.parse(frame) as typeof message;
    } catch {
      return;
    }
    const params = message?.params;
    if (message?.method === "$/cancelRequest" && typeof params === "object" && params !== null) {
      const id = (params as { id?: unknown }).id;
      const call = typeof id === "number" ? this.#calls.get(id) : undefined;
      if (call !== undefined) this.#drop(call);
      return;
    }
    if (typeof message?.method === "string" && message.method.endsWith(".unsubscribe") && Array.isArray(params)) {
      const key = subscriptionKey(params[0]);
      const stream = key === undefined ? undefined : this.#streams.get(key);
      if (stream !== undefined && key !== undefined) {
        this.#streams.delete(key);
        this.#drop(stream);
        if ("id" in message) this.#deliver(JSON.stringify({ jsonrpc: "2.0", result: true, id: message.id }));
        return;
      }
    }
    const sent = this.#request(frame, typeof message?.id === "number" ? message.id : undefined, this.#lastNote);
    if (typeof message === "object" && message !== null && !("id" in message)) this.#lastNote = sent;
  }

  close(code = 1000, reason = ""): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    for (const controller of [...this.#all]) this.#drop(controller);
    timers.setTimeout(() => this.onclose?.({ code, reason }), 0);
  }

  /** POSTs `frame`; delivers its answer. `false` if the connection failed meanwhile. */
  async #request(frame: string, id: number | undefined, after?: Promise<unknown>): Promise<boolean> {
    const controller = new web.AbortController();
    this.#all.add(controller);
    if (id !== undefined) this.#calls.set(id, controller);
    try {
      if (after !== undefined) {
        await after;
        if (this.#dropped.has(controller)) return true; // Cancelled, or closed, meanwhile.
      }
      const post = () =>
        this.#fetch(this.#url, { method: "POST", headers: this.#headers, body: frame, signal: controller.signal });
      const sentWith = this.#headers["authorization"];
      let response = await post();
      if (response.status === 401 && this.#refresh !== undefined) {
        // The token expired or was rotated: once more with a fresh one, fetched once for
        // all the POSTs refused together.
        await response.text().catch(() => "");
        if (this.#headers["authorization"] === sentWith) {
          const refresh = this.#refresh;
          this.#refreshing ??= (async () => {
            try {
              this.#headers["authorization"] = `Bearer ${await refresh()}`;
            } finally {
              this.#refreshing = undefined;
            }
          })();
          await this.#refreshing;
        }
        response = await post();
      }
      const type = response.headers.get("content-type") ?? "";
      if (response.status === 204) return true;
      if (response.status === 200 && type.startsWith("text/event-stream") && response.body !== null) {
        await this.#events(response.body.getReader(), controller);
        return true;
      }
      const text = await response.text();
      if (type.startsWith("application/json") && /^\s*[[{]/.test(text)) {
        this.#deliver(text);
        return true;
      }
      this.#fail(`${this.#url} answered HTTP ${response.status}${text.trim() ? `: ${text.trim()}` : ""}`);
      return false;
    } catch (e) {
      // Aborted on purpose (cancel, unsubscribe, close): not a failure.
      if (this.#dropped.has(controller)) return true;
      this.#fail(`POST to ${this.#url} failed: ${String(e)}`);
      return false;
    } finally {
      this.#all.delete(controller);
      this.#dropped.delete(controller);
      if (id !== undefined && this.#calls.get(id) === controller) this.#calls.delete(id);
    }
  }

  #drop(controller: AbortControllerLike): void {
    this.#dropped.add(controller);
    controller.abort();
  }

  /**
   * Reads a stream's events; the first answers the subscribe call with its id. A stream
   * that ends before its end notification (or before answering) was cut: the connection
   * counts as dropped, so that the client subscribes again (a topic with `$since`) and
   * the call does not wait for its timeout. One that ends with `$/expired` (the token
   * expired) counts as closed with 4401: the client reconnects with a fresh token.
   */
  async #events(reader: ByteReader, controller: AbortControllerLike): Promise<void> {
    const decoder = new web.TextDecoder();
    const lines = new EventLines();
    const events: string[] = [];
    let key: string | undefined;
    let finished = false;
    let expired = false;
    try {
      reading: for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        lines.push(decoder.decode(value, { stream: true }), events);
        for (const data of events.splice(0)) {
          let message:
            | { method?: unknown; result?: unknown; params?: { subscription?: unknown; error?: unknown } }
            | undefined;
          try {
            message = JSON.parse(data) as typeof message;
          } catch {
            // Not JSON: delivered as it is, and ignored by the client.
          }
          if (message?.method === "$/expired") {
            // The server ends the response: the token expired.
            expired = true;
            break reading;
          }
          if (key === undefined && message !== undefined && message !== null) {
            if ("result" in message) {
              key = subscriptionKey(message.result);
              if (key !== undefined) this.#streams.set(key, controller);
            } else if ("error" in message) {
              finished = true; // the subscribe call failed: nothing more comes
            }
          } else if (key !== undefined && typeof message?.params === "object" && message.params !== null) {
            const params = message.params;
            if ("error" in params && subscriptionKey(params.subscription) === key) finished = true;
          }
          this.#deliver(data);
        }
      }
    } finally {
      if (key !== undefined && this.#streams.get(key) === controller) this.#streams.delete(key);
      void reader.cancel().catch(() => undefined);
    }
    if (expired && !this.#dropped.has(controller)) {
      this.#fail("authentication expired", EXPIRED_CLOSE_CODE);
    } else if (!finished && !this.#dropped.has(controller)) {
      this.#fail(`the event stream from ${this.#url} ended ${key === undefined ? "before answering" : "before the stream's end"}`);
    }
  }

  #deliver(text: string): void {
    if (this.readyState === OPEN) this.onmessage?.({ data: text });
  }

  #fail(reason: string, code?: number): void {
    if (this.readyState === 3) return;
    const opened = this.readyState === OPEN;
    this.readyState = 3;
    for (const controller of [...this.#all]) this.#drop(controller);
    this.onclose?.({ code: code ?? (opened ? 1006 : 1002), reason });
  }
}

/**
 * Splits an event stream's text into events (the `data` of each): lines end with CRLF, LF
 * or CR, a blank line ends an event, `data:` lines join with "\n", other fields and
 * comments are skipped. Each character is looked at once, however the text is chunked.
 */
class EventLines {
  #line = "";
  #data: string[] | undefined;
  /** The last chunk ended with CR: a LF at the start of the next belongs to it. */
  #afterCr = false;

  push(text: string, events: string[]): void {
    let start = 0;
    if (this.#afterCr) {
      this.#afterCr = false;
      if (text.startsWith("\n")) start = 1;
    }
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.#endLine(this.#line + text.slice(start, i), events);
      this.#line = "";
      if (c === 13) {
        if (i + 1 === text.length) this.#afterCr = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    this.#line += text.slice(start);
  }

  #endLine(line: string, events: string[]): void {
    if (line === "") {
      if (this.#data !== undefined) events.push(this.#data.join("\n"));
      this.#data = undefined;
    } else if (line === "data" || line.startsWith("data:")) {
      const value = line.slice(5);
      (this.#data ??= []).push(value.startsWith(" ") ? value.slice(1) : value);
    }
  }
}

function decodeArgs(handler: Handler, params: unknown): unknown[] {
  const names = handler.params;
  if (params === undefined || params === null) params = [];
  if (Array.isArray(params)) {
    if (params.length > names.length) {
      throw new RpcError(ErrorCode.InvalidParams, `Invalid params: expected at most ${names.length}, got ${params.length}`);
    }
    names.forEach(([name, optional], i) => {
      if (!optional && (i >= params.length || params[i] === null)) {
        throw new RpcError(ErrorCode.InvalidParams, `Invalid params: missing parameter \`${name}\``);
      }
    });
    return [...params];
  }
  if (typeof params !== "object") throw new RpcError(ErrorCode.InvalidParams, "Invalid params: expected an object or an array");
  const byName = params as { [key: string]: unknown };
  return names.map(([name, optional]) => {
    const value = byName[name];
    if ((value === undefined || value === null) && !optional) {
      throw new RpcError(ErrorCode.InvalidParams, `Invalid params: missing parameter \`${name}\``);
    }
    return value ?? undefined;
  });
}

function toRpcError(value: unknown): RpcError {
  if (typeof value === "object" && value !== null) {
    const e = value as { code?: unknown; message?: unknown; data?: JsonValue };
    if (typeof e.code === "number" && typeof e.message === "string") {
      if (e.code === ErrorCode.Forbidden) return new ForbiddenError(e.code, e.message, e.data);
      if (e.code === ErrorCode.RateLimited) return new RateLimitedError(e.code, e.message, e.data);
      return new RpcError(e.code, e.message, e.data);
    }
  }
  return new RpcError(ErrorCode.InternalError, "malformed error object", value as JsonValue);
}

/** A topic position from the wire (`{epoch, offset}`), if that is what `value` holds. */
function toPosition(value: unknown): Position | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { epoch, offset } = value as { epoch?: unknown; offset?: unknown };
  return typeof epoch === "string" && typeof offset === "number" ? { epoch, offset } : undefined;
}

/** The map key of a subscription id (a number or a string on the wire). */
function subscriptionKey(id: unknown): string | undefined {
  if (typeof id === "number") return `n${id}`;
  if (typeof id === "string") return `s${id}`;
  return undefined;
}

function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * A stream from the server: iterate it with `for await`. Items are buffered from the
 * moment the call is made; breaking out of the loop (or `close()`, or the `signal` of its
 * options) unsubscribes. After a reconnect the stream is subscribed again and carries on
 * with the new stream's items; a topic resumes after the last item it received (`$since`),
 * so nothing is missed or repeated — or, when the server's history cannot cover it, a
 * `GapError` says so.
 */
export class Subscription<T> implements AsyncIterable<T> {
  readonly #state: SubscriptionState<T>;

  /** @internal */
  constructor(state: SubscriptionState<T>) {
    this.#state = state;
  }

  /**
   * Resolves once the server accepted the subscription (for a topic: once its start
   * position arrived, so `position` is set); rejects with its setup error.
   */
  get ready(): Promise<void> {
    return this.#state.ready;
  }

  /** Stops the stream: the server is told, and iteration ends. */
  close(): void {
    this.#state.close();
  }

  /**
   * A topic's position: that of the last item iterated, or, before any, where the
   * subscription started (known once `ready` resolved, for the methods `gen ts` generates
   * and `subscribe(…, { topic: true })`). `undefined` for a stream.
   */
  get position(): Position | undefined {
    return this.#state.position;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    const state = this.#state;
    return {
      next: () => state.next(),
      return: () => {
        state.close();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }
}

/** @internal The client-side state of one subscription. */
export class SubscriptionState<T> {
  readonly subscription: Subscription<T>;
  readonly ready: Promise<void>;
  serverId: unknown = undefined;
  needsResubscribe = false;
  finished = false;
  /** A topic's position as the reader sees it (the last item handed out). */
  position: Position | undefined;
  /** A topic's position as received (buffered items included): resubscribe after it. */
  #received: Position | undefined;
  readonly #client: Client;
  readonly #items: Queued<T>[] = [];
  #error: Error | undefined;
  #waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: Error) => void } | undefined;
  #ready: { resolve: () => void; reject: (e: Error) => void } | undefined;
  #subscribing = false;
  /** Ends the stream when `options.signal` fires. */
  readonly #onAbort: (() => void) | undefined;

  constructor(
    client: Client,
    readonly method: string,
    readonly params: Params,
    readonly options: MethodOptions,
  ) {
    this.#client = client;
    this.subscription = new Subscription(this);
    this.ready = new Promise<void>((resolve, reject) => {
      this.#ready = { resolve, reject };
    });
    this.ready.catch(() => undefined); // The iterator reports it too.
    this.#subscribing = true;
    const signal = options.signal;
    if (signal !== undefined && !signal.aborted) {
      // (Already aborted, the subscribe call fails at once with `CancelledError`.)
      this.#onAbort = () => this.#cancel();
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  subscribed(): void {
    this.#subscribing = false;
    // A topic's start position follows the answer: `ready` waits for it (or for what
    // comes instead: a gap, an item, the end).
    if (this.options.topic === true && this.#received === undefined) return;
    this.#settleReady();
  }

  #settleReady(): void {
    this.#ready?.resolve();
    this.#ready = undefined;
  }

  connectionLost(): void {
    this.serverId = undefined;
    // A subscribe call in flight is resent by the client itself (it is idempotent).
    if (!this.finished && !this.#subscribing) this.needsResubscribe = true;
  }

  /** The params of the subscribe call: a topic resumes after what it received. */
  subscribeParams(): Params {
    const since = this.#received;
    if (since === undefined || Array.isArray(this.params)) return this.params;
    return { ...(this.params as { readonly [name: string]: unknown }), $since: since };
  }

  /** A topic's start (before its first item). */
  startsAt(at: Position | undefined): void {
    if (at === undefined || this.finished) return;
    this.#received = at;
    // With nothing unread before it, the reader is there now.
    if (this.#items.length === 0) this.position = at;
    else this.#enqueue({ at });
    this.#settleReady();
  }

  /** A topic lost publications: continue after `to`. */
  gap(to: Position | undefined): void {
    if (to === undefined || this.finished) return;
    this.#received = to;
    this.#enqueue({ at: to, gap: true });
    this.#settleReady();
  }

  resubscribe(): void {
    this.needsResubscribe = false;
    this.#subscribing = true;
    this.#client.subscribeOnce(this as SubscriptionState<unknown>);
  }

  push(item: T, at?: Position): void {
    if (this.finished) return;
    if (at !== undefined) this.#received = at;
    this.#enqueue({ item, at });
    this.#settleReady();
  }

  #enqueue(entry: Queued<T>): void {
    if (this.#waiter !== undefined) {
      const delivered = this.#take(entry);
      if (delivered === undefined) return;
      const waiter = this.#waiter;
      this.#waiter = undefined;
      if (delivered instanceof GapError) waiter.reject(delivered);
      else waiter.resolve({ done: false, value: delivered.value });
      return;
    }
    if (this.#items.length >= this.#client.subscriptionBuffer) {
      this.#client.unsubscribe(this as SubscriptionState<unknown>);
      this.#end(
        new RpcError(ErrorCode.Lagged, "Subscription lagged", `more than ${this.#client.subscriptionBuffer} items were not read`),
      );
      return;
    }
    this.#items.push(entry);
  }

  /** Hands an entry to the reader: an item, a gap to throw, or nothing (a start note, or
   * a gap that `onGap` took). */
  #take(entry: Queued<T>): { value: T } | GapError | undefined {
    const from = this.position;
    if (entry.at !== undefined) this.position = entry.at;
    if ("item" in entry) return { value: entry.item as T };
    if (entry.gap !== true || entry.at === undefined) return undefined;
    const gap = new GapError(from, entry.at);
    if (this.options.onGap !== undefined) {
      this.options.onGap(gap);
      return undefined;
    }
    return gap;
  }

  /** The server ended the stream: cleanly, or with an error. */
  serverEnded(error: RpcError | undefined): void {
    this.#client.forget(this as SubscriptionState<unknown>);
    this.#end(error === undefined ? undefined : this.options.mapError?.(error) ?? error);
  }

  fail(error: Error): void {
    this.#client.forget(this as SubscriptionState<unknown>);
    this.#end(error);
  }

  close(): void {
    if (this.finished) return;
    this.#client.unsubscribe(this as SubscriptionState<unknown>);
    this.#items.length = 0;
    this.#end(undefined);
  }

  /** The signal fired: unsubscribe, drop what is unread, fail the reader. */
  #cancel(): void {
    if (this.finished) return;
    this.#client.unsubscribe(this as SubscriptionState<unknown>);
    this.#items.length = 0;
    this.#end(new CancelledError(`${this.method}: cancelled`));
  }

  next(): Promise<IteratorResult<T>> {
    while (this.#items.length > 0) {
      const delivered = this.#take(this.#items.shift() as Queued<T>);
      if (delivered instanceof GapError) return Promise.reject(delivered);
      if (delivered !== undefined) return Promise.resolve({ done: false, value: delivered.value });
    }
    if (this.finished) {
      const error = this.#error;
      this.#error = undefined;
      return error === undefined ? Promise.resolve({ done: true, value: undefined }) : Promise.reject(error);
    }
    if (this.#waiter !== undefined) return Promise.reject(new TypeError("a subscription has one reader at a time"));
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  #end(error: Error | undefined): void {
    if (this.finished) return;
    this.finished = true;
    this.#subscribing = false;
    if (this.#onAbort !== undefined) this.options.signal?.removeEventListener("abort", this.#onAbort);
    if (this.#ready !== undefined) {
      if (error === undefined) this.#ready.resolve();
      else this.#ready.reject(error);
      this.#ready = undefined;
    }
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter !== undefined) {
      if (error === undefined) waiter.resolve({ done: true, value: undefined });
      else waiter.reject(error);
    } else {
      this.#error = error;
    }
  }
}

/** What a subscription buffers: an item (with a topic's position), or a topic's note. */
type Queued<T> = { item: T; at?: Position | undefined } | { at: Position; gap?: boolean };

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Encodes bytes for a `bytes` field (standard base64, padded). */
export function toBase64(bytes: Uint8Array): Base64 {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i] as number;
    const b = bytes[i + 1];
    const c = bytes[i + 2];
    out += BASE64[a >> 2];
    out += BASE64[((a & 3) << 4) | ((b ?? 0) >> 4)];
    out += b === undefined ? "=" : BASE64[((b & 15) << 2) | ((c ?? 0) >> 6)];
    out += c === undefined ? "=" : BASE64[c & 63];
  }
  return out;
}

/** Decodes a `bytes` field; throws `TypeError` on text that is not base64. */
export function fromBase64(text: Base64): Uint8Array {
  const clean = text.replace(/=+$/, "");
  if (clean.length % 4 === 1) throw new TypeError("invalid base64: bad length");
  const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let o = 0;
  for (let i = 0; i < clean.length; i++) {
    const d = BASE64.indexOf(clean.charAt(i));
    if (d < 0) throw new TypeError(`invalid base64 character at ${i}`);
    value = (value << 6) | d;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (value >> bits) & 0xff;
    }
  }
  return out;
}
