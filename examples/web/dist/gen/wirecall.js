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
};
/** The base of every error the runtime raises. */
export class WirecallError extends Error {
    constructor(message) {
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
    code;
    /** The error object's `data`, if any. */
    data;
    constructor(code, message, data) {
        super(message);
        this.code = code;
        this.data = data;
    }
    /** The JSON-RPC error object. */
    toJSON() {
        return this.data === undefined
            ? { code: this.code, message: this.message }
            : { code: this.code, message: this.message, data: this.data };
    }
}
/** The server's policy refused the call or subscription (`-32003`). */
export class ForbiddenError extends RpcError {
}
/** The server's rate limit refused the call (`-32029`); try again after `retryAfterMs`. */
export class RateLimitedError extends RpcError {
    /** When the next call would be allowed, in milliseconds. */
    retryAfterMs;
    constructor(code, message, data) {
        super(code, message, data);
        const ms = data?.retry_after_ms;
        this.retryAfterMs = typeof ms === "number" ? ms : 0;
    }
}
/** The call's time ran out (waiting for a connection included). */
export class TimeoutError extends WirecallError {
}
/** The call was cancelled through its `AbortSignal`; the server was told to stop. */
export class CancelledError extends WirecallError {
}
/**
 * The connection was lost while the call was in flight, so whether it ran is unknown.
 * `@idempotent` calls are sent again instead.
 */
export class DisconnectedError extends WirecallError {
}
/** The client was closed, or gave up reconnecting. */
export class ClosedError extends WirecallError {
}
/** The request is larger than `ClientOptions.maxMessageSize`; it was not sent. */
export class MessageTooLargeError extends WirecallError {
}
/**
 * A topic subscription lost publications (they left the server's history, or the hub lost
 * it): it goes on after `to`. Thrown by the subscription's iterator unless
 * `MethodOptions.onGap` takes it; the subscription stays open, so iterate it again.
 */
export class GapError extends WirecallError {
    from;
    to;
    constructor(
    /** The last position the subscription had, if any. */
    from, 
    /** Where it continues: the next item has offset `to.offset + 1` in `to.epoch`. */
    to) {
        super(from === undefined
            ? `publications are lost; continuing after ${to.epoch}/${to.offset}`
            : `publications after ${from.epoch}/${from.offset} are lost; continuing after ${to.epoch}/${to.offset}`);
        this.from = from;
        this.to = to;
    }
}
/**
 * The wait before a reconnect attempt after `failures` failed ones in a row:
 * `initialBackoffMs` doubled per failure, at most `maxBackoffMs`; with jitter (the
 * default), a uniformly random time between zero and that.
 */
export function backoff(options, failures) {
    const initial = options.initialBackoffMs ?? DEFAULTS.initialBackoffMs;
    const maxDelay = options.maxBackoffMs ?? DEFAULTS.maxBackoffMs;
    const ceiling = Math.min(initial * 2 ** Math.min(failures, 30), maxDelay);
    return options.jitter === false ? ceiling : Math.random() * ceiling;
}
/**
 * The WebSocket subprotocol that carries `token`: `bearer.` and the token's UTF-8 bytes in
 * unpadded base64url. The server selects `jsonrpc-2.0` and never echoes it.
 */
export function bearerSubprotocol(token) {
    const bytes = [];
    for (const ch of token) {
        const c = ch.codePointAt(0);
        if (c < 0x80)
            bytes.push(c);
        else if (c < 0x800)
            bytes.push(0xc0 | (c >> 6), 0x80 | (c & 63));
        else if (c < 0x10000)
            bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
        else
            bytes.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    }
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let out = "bearer.";
    for (let i = 0; i < bytes.length; i += 3) {
        const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
        const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
        for (let k = 0; k < chars; k++)
            out += alphabet[(n >> (18 - 6 * k)) & 63];
    }
    return out;
}
/** How to give a runtime without a WebSocket class one (in error messages and warnings). */
const HOW_TO_GET_A_WEBSOCKET = "pass one as `options.WebSocket` (e.g. `import WebSocket from \"ws\"`, then `{ WebSocket }`), " +
    "or run Node.js 22+ (Node.js 20: `node --experimental-websocket`)";
const DEFAULTS = {
    timeoutMs: 30_000,
    handshakeTimeoutMs: 10_000,
    maxMessageSize: 10 * 1024 * 1024,
    subscriptionBuffer: 1024,
    initialBackoffMs: 100,
    maxBackoffMs: 30_000,
    stableAfterMs: 5_000,
};
const OPEN = 1;
/** The close code of a connection whose authentication expired (an event stream's `$/expired`, too). */
const EXPIRED_CLOSE_CODE = 4401;
const timers = globalThis;
/** Connects to `url` (or the first of several, rotating on failure) and returns the client. */
export function connect(url, options = {}) {
    return new Client(url, options);
}
/**
 * A client: one WebSocket connection at a time, reconnecting when it drops. Generated
 * classes (`new CalculatorClient(client)`) make typed calls through it.
 */
export class Client {
    #urls;
    #urlIndex = 0;
    #options;
    #WebSocket;
    #socket;
    /** What the open connection runs over. */
    #transport;
    /** A WebSocket opened once: later attempts do not fall back to HTTP. */
    #webSocketOpened = false;
    #state = "connecting";
    #attempts = 0;
    /** Failed attempts in a row, for the backoff: a connection that did not stay up counts. */
    #failures = 0;
    /** When the current connection opened (`Date.now()`), while it is open. */
    #openedAt;
    #nextId = 1;
    #retryTimer;
    /** Calls sent on the current connection, by id. */
    #inFlight = new Map();
    /** Calls waiting for a connection, in order. */
    #waiting = [];
    /** Notifications waiting for a connection. */
    #waitingNotes = [];
    /** Live subscriptions by server-side id (current connection). */
    #subsById = new Map();
    /** Every subscription not yet finished (resubscribed after a reconnect). */
    #subs = new Set();
    #handlers = new Map();
    #listeners = new Set();
    constructor(url, options = {}) {
        this.#urls = typeof url === "string" ? [url] : [...url];
        if (this.#urls.length === 0)
            throw new TypeError("connect: no URL given");
        this.#options = options;
        const ctor = options.WebSocket ?? globalThis.WebSocket;
        if (ctor === undefined && options.transport === "websocket") {
            throw new TypeError(`connect: no WebSocket class here: ${HOW_TO_GET_A_WEBSOCKET}`);
        }
        this.#WebSocket = ctor;
        const handlers = options.handlers;
        if (handlers !== undefined) {
            for (const h of Array.isArray(handlers) ? handlers : [handlers])
                this.handle(h);
        }
        if (ctor === undefined && options.transport !== "http") {
            const ws = this.#urls.find((u) => /^wss?:/i.test(u));
            if (ws !== undefined) {
                const console = globalThis.console;
                console?.warn(`wirecall: no WebSocket class here, so ${ws} is reached over HTTP POST instead; ${HOW_TO_GET_A_WEBSOCKET}. ` +
                    "Pass `transport: \"http\"` if HTTP is meant.");
            }
        }
        if (options.onStateChange !== undefined)
            this.#listeners.add(options.onStateChange);
        this.#open();
    }
    /** The connection's state. */
    get state() {
        return this.#state;
    }
    /**
     * What the current connection runs over: `"websocket"`, or `"http"` (asked for, or fallen
     * back to); `undefined` while not connected.
     */
    get transport() {
        return this.#transport;
    }
    /** Calls `listener` on every state change; returns a function that stops it. */
    onStateChange(listener) {
        this.#listeners.add(listener);
        return () => this.#listeners.delete(listener);
    }
    /** Resolves once connected (at once if connected now); rejects once the client is closed. */
    connected() {
        if (this.#state === "connected")
            return Promise.resolve();
        if (this.#state === "closed")
            return Promise.reject(new ClosedError("the client is closed"));
        return new Promise((resolve, reject) => {
            const stop = this.onStateChange((state) => {
                if (state === "connected") {
                    stop();
                    resolve();
                }
                else if (state === "closed") {
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
    handle(handlers) {
        if (Object.keys(handlers).length > 0) {
            if (this.#WebSocket === undefined) {
                throw new TypeError(`connect: the server's calls to this client (\`handlers\`) need a WebSocket, and there is no WebSocket class here: ${HOW_TO_GET_A_WEBSOCKET}`);
            }
            if (this.#options.transport === "http" || this.#urls.every((u) => /^https?:/i.test(u))) {
                throw new TypeError("connect: the server's calls to this client (`handlers`) need a WebSocket; over HTTP (`transport: \"http\"`, or an http(s):// URL) the server cannot call the client");
            }
        }
        for (const [method, handler] of Object.entries(handlers))
            this.#handlers.set(method, handler);
    }
    /**
     * Closes the connection for good: calls not yet answered fail with `ClosedError`,
     * subscriptions end with it.
     */
    close() {
        if (this.#state === "closed")
            return;
        this.#shutDown(new ClosedError("the client is closed"));
    }
    call(method, params, options = {}) {
        return new Promise((resolve, reject) => {
            this.#start(method, params, options, undefined, resolve, reject);
        });
    }
    notify(method, params, options = {}) {
        const frame = JSON.stringify({ jsonrpc: "2.0", method, params });
        return new Promise((resolve, reject) => {
            if (this.#state === "closed")
                return reject(new ClosedError("the client is closed"));
            if (!this.#fits(frame, reject))
                return;
            if (this.#isOpen()) {
                this.#send(frame);
                return resolve();
            }
            const entry = { frame, done: resolve, fail: reject };
            let timer;
            const finish = () => {
                if (timer !== undefined)
                    timers.clearTimeout(timer);
                const i = this.#waitingNotes.indexOf(entry);
                if (i >= 0)
                    this.#waitingNotes.splice(i, 1);
            };
            entry.done = () => {
                finish();
                resolve();
            };
            entry.fail = (e) => {
                finish();
                reject(e);
            };
            timer = timers.setTimeout(() => entry.fail(new TimeoutError(`${method}: no connection within the timeout`)), options.timeoutMs ?? this.#timeoutMs());
            this.#waitingNotes.push(entry);
        });
    }
    subscribe(method, params, options = {}) {
        const state = new SubscriptionState(this, method, params, options);
        if (this.#state === "closed") {
            state.fail(new ClosedError("the client is closed"));
        }
        else {
            this.#subs.add(state);
            this.subscribeOnce(state);
        }
        return state.subscription;
    }
    /** Sends the subscribe call of `state` (again, after a reconnect). @internal */
    subscribeOnce(state) {
        const onResult = (value) => {
            // Runs in the message handler, so no item of the new stream can come first.
            const id = subscriptionKey(value);
            if (id === undefined)
                return;
            if (state.finished) {
                this.#sendUnsubscribe(state.method, value);
                return;
            }
            state.serverId = value;
            this.#subsById.set(id, state);
        };
        this.#start(state.method, state.subscribeParams(), { ...state.options, idempotent: true }, onResult, () => state.subscribed(), (error) => state.fail(error));
    }
    /** Ends a subscription from the client side (unsubscribes on the server). @internal */
    unsubscribe(state) {
        this.#subs.delete(state);
        const id = subscriptionKey(state.serverId);
        if (id !== undefined && this.#subsById.get(id) === state) {
            this.#subsById.delete(id);
            this.#sendUnsubscribe(state.method, state.serverId);
        }
    }
    /** Forgets a subscription the server ended. @internal */
    forget(state) {
        this.#subs.delete(state);
        const id = subscriptionKey(state.serverId);
        if (id !== undefined && this.#subsById.get(id) === state)
            this.#subsById.delete(id);
    }
    /** The buffer size of subscriptions. @internal */
    get subscriptionBuffer() {
        return this.#options.subscriptionBuffer ?? DEFAULTS.subscriptionBuffer;
    }
    #sendUnsubscribe(method, id) {
        if (this.#isOpen()) {
            // A notification, as the Rust client sends it: nothing waits for an answer.
            this.#send(JSON.stringify({ jsonrpc: "2.0", method: `${method}.unsubscribe`, params: [id] }));
        }
    }
    #timeoutMs() {
        return this.#options.timeoutMs ?? DEFAULTS.timeoutMs;
    }
    #isOpen() {
        return this.#state === "connected" && this.#socket !== undefined && this.#socket.readyState === OPEN;
    }
    #send(frame) {
        this.#socket?.send(frame);
    }
    #fits(frame, reject) {
        const limit = this.#options.maxMessageSize ?? DEFAULTS.maxMessageSize;
        // A UTF-16 unit is 1 to 3 bytes of UTF-8, so count only when the bounds disagree.
        if (frame.length * 3 <= limit || (frame.length <= limit && utf8Length(frame) <= limit))
            return true;
        reject(new MessageTooLargeError(`the request is larger than the limit of ${limit} bytes; not sent`));
        return false;
    }
    /** Starts a call: sends it now, or queues it until connected; arms timeout and signal. */
    #start(method, params, options, onResult, resolve, reject) {
        if (this.#state === "closed")
            return reject(new ClosedError("the client is closed"));
        const signal = options.signal;
        if (signal?.aborted)
            return reject(new CancelledError(`${method}: cancelled before it was sent`));
        let timer;
        let done = false;
        const onAbort = () => this.#giveUp(call, new CancelledError(`${method}: cancelled`));
        const call = {
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
                if (done)
                    return;
                done = true;
                if (timer !== undefined)
                    timers.clearTimeout(timer);
                signal?.removeEventListener("abort", onAbort);
                if ("error" in outcome)
                    reject(outcome.error);
                else
                    resolve(outcome.value);
            },
        };
        timer = timers.setTimeout(() => this.#giveUp(call, new TimeoutError(`${method}: no answer within ${options.timeoutMs ?? this.#timeoutMs()} ms`)), options.timeoutMs ?? this.#timeoutMs());
        signal?.addEventListener("abort", onAbort, { once: true });
        if (this.#isOpen())
            this.#sendCall(call);
        else
            this.#waiting.push(call);
    }
    /** Ends a call from this side (timeout, abort): the server is told to stop it. */
    #giveUp(call, error) {
        if (call.id !== undefined && this.#inFlight.get(call.id) === call) {
            this.#inFlight.delete(call.id);
            if (this.#isOpen()) {
                this.#send(JSON.stringify({ jsonrpc: "2.0", method: "$/cancelRequest", params: { id: call.id } }));
            }
        }
        else {
            const i = this.#waiting.indexOf(call);
            if (i >= 0)
                this.#waiting.splice(i, 1);
        }
        call.settle({ error });
    }
    #sendCall(call) {
        const id = this.#nextId++;
        // The server learns how long this side waits: it stops the call by itself then.
        const $timeout = Math.max(0, Math.round(call.deadline - Date.now()));
        const frame = JSON.stringify({ jsonrpc: "2.0", method: call.method, params: call.params, id, $timeout });
        if (!this.#fits(frame, (error) => call.settle({ error })))
            return;
        call.id = id;
        this.#inFlight.set(id, call);
        this.#send(frame);
    }
    #setState(state, error) {
        if (this.#state === state)
            return;
        this.#state = state;
        for (const listener of [...this.#listeners]) {
            try {
                listener(state, error);
            }
            catch {
                // A listener's failure is its own; the client carries on.
            }
        }
    }
    #open() {
        const url = this.#urls[this.#urlIndex % this.#urls.length];
        this.#urlIndex++;
        const token = this.#options.token;
        if (typeof token !== "function") {
            this.#openWith(url, token);
            return;
        }
        // A fresh token for every attempt, within the handshake timeout (a fetch that hangs
        // fails this attempt; the next one asks again).
        let fetched;
        try {
            fetched = Promise.resolve(token());
        }
        catch (e) {
            fetched = Promise.reject(e);
        }
        const limitMs = this.#options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs;
        let settled = false;
        const settle = (then) => {
            if (settled)
                return;
            settled = true;
            timers.clearTimeout(limit);
            if (this.#state !== "closed")
                then();
        };
        const limit = timers.setTimeout(() => settle(() => this.#lost(new DisconnectedError(`cannot get a token within ${limitMs} ms`))), limitMs);
        fetched.then((t) => settle(() => this.#openWith(url, t)), (e) => settle(() => this.#lost(new DisconnectedError(`cannot get a token: ${String(e)}`))));
    }
    #openWith(url, token) {
        const transport = /^https?:/i.test(url) ? "http" : this.#options.transport ?? "auto";
        const option = this.#options.token;
        const refresh = typeof option === "function" ? async () => await option() : undefined;
        const http = () => new HttpSocket(httpUrl(url), this.#fetch(), token, refresh);
        if (transport === "http" || this.#WebSocket === undefined) {
            this.#attach(http(), url);
            return;
        }
        const protocols = [...(this.#options.protocols ?? ["jsonrpc-2.0"])];
        if (token !== undefined)
            protocols.push(bearerSubprotocol(token));
        let socket;
        try {
            socket = new this.#WebSocket(url, protocols);
        }
        catch (e) {
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
    #fetch() {
        const f = this.#options.fetch ?? globalThis.fetch;
        if (f === undefined)
            throw new TypeError("connect: HTTP needs `fetch`; pass one as `options.fetch`");
        return f;
    }
    /**
     * Runs the connection over `socket`. With `fallBack`, a WebSocket that cannot be opened
     * is replaced by the HTTP socket it makes, for this attempt.
     */
    #attach(socket, url, fallBack) {
        this.#socket = socket;
        let opened = false;
        const handshake = timers.setTimeout(() => {
            if (!opened)
                socket.close();
        }, this.#options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs);
        socket.onopen = () => {
            opened = true;
            timers.clearTimeout(handshake);
            if (this.#socket !== socket)
                return;
            this.#attempts = 0;
            this.#transport = socket instanceof HttpSocket ? "http" : "websocket";
            if (this.#transport === "websocket")
                this.#webSocketOpened = true;
            this.#openedAt = Date.now();
            this.#setState("connected");
            this.#flushWaiting();
        };
        socket.onmessage = (event) => {
            if (this.#socket === socket && typeof event.data === "string")
                this.#receive(event.data);
        };
        // The connection ends once, whichever event says so first: some WebSocket
        // implementations (Node.js 20's) report a refused connection with `error` and no `close`.
        const ended = (why) => {
            timers.clearTimeout(handshake);
            if (this.#socket !== socket)
                return;
            this.#socket = undefined;
            this.#transport = undefined;
            try {
                socket.close();
            }
            catch {
                // Already closed.
            }
            if (!opened && fallBack !== undefined) {
                this.#attach(fallBack(), url);
                return;
            }
            this.#lost(new DisconnectedError(why));
        };
        socket.onerror = () => ended(opened ? `connection to ${url} failed` : `cannot connect to ${url}`);
        socket.onclose = (event) => ended(opened
            ? `connection to ${url} closed (code ${event.code}${event.reason ? `: ${event.reason}` : ""})`
            : `cannot connect to ${url}`);
    }
    #flushWaiting() {
        for (const note of this.#waitingNotes.splice(0)) {
            this.#send(note.frame);
            note.done();
        }
        for (const call of this.#waiting.splice(0))
            this.#sendCall(call);
        for (const sub of this.#subs)
            if (sub.needsResubscribe)
                sub.resubscribe();
    }
    /** The connection dropped: fail or keep calls, then reconnect or close. */
    #lost(error) {
        const inFlight = [...this.#inFlight.values()];
        this.#inFlight.clear();
        this.#subsById.clear();
        for (const sub of this.#subs)
            sub.connectionLost();
        const reconnect = this.#options.reconnect;
        const max = reconnect === false ? 0 : reconnect?.maxAttempts ?? Infinity;
        const options = reconnect === false ? {} : reconnect ?? {};
        if (this.#openedAt !== undefined) {
            // The backoff starts again only after a connection that stayed up.
            const stable = options.stableAfterMs ?? DEFAULTS.stableAfterMs;
            if (Date.now() - this.#openedAt >= stable)
                this.#failures = 0;
            this.#openedAt = undefined;
        }
        if (this.#state === "closed")
            return;
        if (this.#attempts >= max) {
            for (const call of inFlight)
                call.settle({ error });
            this.#shutDown(new ClosedError(`gave up reconnecting: ${error.message}`));
            return;
        }
        // Calls whose sending is safe to repeat wait for the next connection; others failed.
        for (const call of inFlight) {
            if (call.idempotent) {
                call.id = undefined;
                this.#waiting.push(call);
            }
            else {
                call.settle({ error });
            }
        }
        this.#setState("reconnecting", error);
        const delay = backoff(options, this.#failures);
        this.#attempts++;
        this.#failures++;
        this.#retryTimer = timers.setTimeout(() => {
            this.#retryTimer = undefined;
            if (this.#state !== "closed")
                this.#open();
        }, delay);
    }
    #shutDown(error) {
        this.#transport = undefined;
        this.#setState("closed", error);
        if (this.#retryTimer !== undefined)
            timers.clearTimeout(this.#retryTimer);
        const socket = this.#socket;
        this.#socket = undefined;
        if (socket !== undefined) {
            try {
                socket.close(1000);
            }
            catch {
                // Already closing.
            }
        }
        for (const call of [...this.#inFlight.values(), ...this.#waiting.splice(0)])
            call.settle({ error });
        this.#inFlight.clear();
        for (const note of this.#waitingNotes.splice(0))
            note.fail(error);
        for (const sub of [...this.#subs])
            sub.fail(error);
        this.#subs.clear();
        this.#subsById.clear();
    }
    #receive(text) {
        let message;
        try {
            message = JSON.parse(text);
        }
        catch {
            return; // Not JSON: nothing in it can be answered or matched.
        }
        if (Array.isArray(message)) {
            const replies = [];
            let pending = 0;
            const finish = () => {
                if (replies.length > 0 && this.#isOpen())
                    this.#send(JSON.stringify(replies));
            };
            for (const item of message) {
                const reply = this.#dispatch(item);
                if (reply !== undefined) {
                    pending++;
                    void reply.then((r) => {
                        replies.push(r);
                        if (--pending === 0)
                            finish();
                    });
                }
            }
            return;
        }
        const reply = this.#dispatch(message);
        if (reply !== undefined) {
            void reply.then((r) => {
                if (this.#isOpen())
                    this.#send(JSON.stringify(r));
            });
        }
    }
    /** Handles one message; a request from the server gives a promise of its answer. */
    #dispatch(message) {
        if (typeof message !== "object" || message === null)
            return undefined;
        const m = message;
        if (typeof m.method === "string") {
            const params = m.params;
            if (!("id" in m) && typeof params === "object" && params !== null && "subscription" in params) {
                const key = subscriptionKey(params.subscription);
                const sub = key === undefined ? undefined : this.#subsById.get(key);
                if (sub !== undefined) {
                    if ("result" in params)
                        sub.push(params.result, toPosition(params));
                    else if ("error" in params)
                        sub.serverEnded(params.error === null ? undefined : toRpcError(params.error));
                    else if ("gap" in params)
                        sub.gap(toPosition(params.gap));
                    else if ("position" in params)
                        sub.startsAt(toPosition(params.position));
                    return undefined;
                }
            }
            return this.#serve(m.method, m.params, "id" in m, m.id);
        }
        if (typeof m.id !== "number")
            return undefined;
        const call = this.#inFlight.get(m.id);
        if (call === undefined)
            return undefined;
        this.#inFlight.delete(m.id);
        if ("error" in m) {
            const error = toRpcError(m.error);
            // An idempotent call that the rate limit refused waits as long as the server says
            // and tries once more, if that fits in its timeout.
            if (error instanceof RateLimitedError &&
                call.idempotent &&
                !call.retried &&
                Date.now() + error.retryAfterMs < call.deadline) {
                call.retried = true;
                call.id = undefined;
                timers.setTimeout(() => {
                    if (call.done())
                        return;
                    if (this.#isOpen())
                        this.#sendCall(call);
                    else
                        this.#waiting.push(call);
                }, error.retryAfterMs);
                return undefined;
            }
            call.settle({ error: call.mapError?.(error) ?? error });
        }
        else {
            const value = "result" in m ? m.result : null;
            call.onResult?.(value);
            call.settle({ value });
        }
        return undefined;
    }
    /** Runs a method the server called on this client; a notification gets no answer. */
    #serve(method, params, hasId, id) {
        const answer = (async () => {
            const handler = this.#handlers.get(method);
            if (handler === undefined)
                throw new RpcError(ErrorCode.MethodNotFound, "Method not found");
            return (await handler.run(decodeArgs(handler, params))) ?? null;
        })();
        if (!hasId) {
            answer.catch(() => undefined);
            return undefined;
        }
        return answer.then((result) => ({ jsonrpc: "2.0", result, id }), (e) => {
            const error = e instanceof RpcError ? e.toJSON() : { code: ErrorCode.InternalError, message: "Internal error", data: String(e) };
            return { jsonrpc: "2.0", error, id };
        });
    }
}
/** `ws://h/p` → `http://h/p`, `wss://` → `https://`; HTTP URLs as they are. */
function httpUrl(url) {
    return url.replace(/^ws(s?):/i, "http$1:");
}
const web = globalThis;
/**
 * JSON-RPC over HTTP behind the WebSocket interface the client uses: each request is one
 * POST whose answer comes back as a message; a stream's POST asks for server-sent events,
 * each event a message. `$/cancelRequest` aborts that POST; unsubscribing closes that
 * stream's response (which stops it on the server). It "opens" once the server answers a
 * probe, and "closes" when a POST fails or the server answers with an HTTP error.
 */
class HttpSocket {
    readyState = 0;
    protocol = "";
    onopen = null;
    onclose = null;
    onerror = null;
    onmessage = null;
    #url;
    #fetch;
    #headers;
    /** The client's token function: a POST refused with 401 is sent once more with a fresh token. */
    #refresh;
    /** The refresh under way: the POSTs refused meanwhile wait for it instead of each fetching one. */
    #refreshing;
    /** POSTs awaiting their answer, by request id. */
    #calls = new Map();
    /** Open event streams, by subscription id. */
    #streams = new Map();
    #all = new Set();
    /** Requests this side stopped on purpose: their abort is not a failure. */
    #dropped = new Set();
    /**
     * The POST of the last notification sent: each request waits for its answer (the server
     * answers a notification once its handler started), so the server sees a notification
     * before what the client sends after it, as over a WebSocket. Calls are not ordered
     * among themselves (each is a POST of its own), as a WebSocket server runs them at once.
     */
    #lastNote = Promise.resolve();
    constructor(url, fetch, token, refresh) {
        this.#url = url;
        this.#refresh = refresh;
        this.#headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
        if (token !== undefined)
            this.#headers["authorization"] = `Bearer ${token}`;
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
    send(frame) {
        if (this.readyState !== OPEN)
            return;
        let message;
        try {
            message = JSON.parse(frame);
        }
        catch {
            return;
        }
        const params = message?.params;
        if (message?.method === "$/cancelRequest" && typeof params === "object" && params !== null) {
            const id = params.id;
            const call = typeof id === "number" ? this.#calls.get(id) : undefined;
            if (call !== undefined)
                this.#drop(call);
            return;
        }
        if (typeof message?.method === "string" && message.method.endsWith(".unsubscribe") && Array.isArray(params)) {
            const key = subscriptionKey(params[0]);
            const stream = key === undefined ? undefined : this.#streams.get(key);
            if (stream !== undefined && key !== undefined) {
                this.#streams.delete(key);
                this.#drop(stream);
                if ("id" in message)
                    this.#deliver(JSON.stringify({ jsonrpc: "2.0", result: true, id: message.id }));
                return;
            }
        }
        const sent = this.#request(frame, typeof message?.id === "number" ? message.id : undefined, this.#lastNote);
        if (typeof message === "object" && message !== null && !("id" in message))
            this.#lastNote = sent;
    }
    close(code = 1000, reason = "") {
        if (this.readyState === 3)
            return;
        this.readyState = 3;
        for (const controller of [...this.#all])
            this.#drop(controller);
        timers.setTimeout(() => this.onclose?.({ code, reason }), 0);
    }
    /** POSTs `frame`; delivers its answer. `false` if the connection failed meanwhile. */
    async #request(frame, id, after) {
        const controller = new web.AbortController();
        this.#all.add(controller);
        if (id !== undefined)
            this.#calls.set(id, controller);
        try {
            if (after !== undefined) {
                await after;
                if (this.#dropped.has(controller))
                    return true; // Cancelled, or closed, meanwhile.
            }
            const post = () => this.#fetch(this.#url, { method: "POST", headers: this.#headers, body: frame, signal: controller.signal });
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
                        }
                        finally {
                            this.#refreshing = undefined;
                        }
                    })();
                    await this.#refreshing;
                }
                response = await post();
            }
            const type = response.headers.get("content-type") ?? "";
            if (response.status === 204)
                return true;
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
        }
        catch (e) {
            // Aborted on purpose (cancel, unsubscribe, close): not a failure.
            if (this.#dropped.has(controller))
                return true;
            this.#fail(`POST to ${this.#url} failed: ${String(e)}`);
            return false;
        }
        finally {
            this.#all.delete(controller);
            this.#dropped.delete(controller);
            if (id !== undefined && this.#calls.get(id) === controller)
                this.#calls.delete(id);
        }
    }
    #drop(controller) {
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
    async #events(reader, controller) {
        const decoder = new web.TextDecoder();
        const lines = new EventLines();
        const events = [];
        let key;
        let finished = false;
        let expired = false;
        try {
            reading: for (;;) {
                const { done, value } = await reader.read();
                if (done)
                    break;
                lines.push(decoder.decode(value, { stream: true }), events);
                for (const data of events.splice(0)) {
                    let message;
                    try {
                        message = JSON.parse(data);
                    }
                    catch {
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
                            if (key !== undefined)
                                this.#streams.set(key, controller);
                        }
                        else if ("error" in message) {
                            finished = true; // the subscribe call failed: nothing more comes
                        }
                    }
                    else if (key !== undefined && typeof message?.params === "object" && message.params !== null) {
                        const params = message.params;
                        if ("error" in params && subscriptionKey(params.subscription) === key)
                            finished = true;
                    }
                    this.#deliver(data);
                }
            }
        }
        finally {
            if (key !== undefined && this.#streams.get(key) === controller)
                this.#streams.delete(key);
            void reader.cancel().catch(() => undefined);
        }
        if (expired && !this.#dropped.has(controller)) {
            this.#fail("authentication expired", EXPIRED_CLOSE_CODE);
        }
        else if (!finished && !this.#dropped.has(controller)) {
            this.#fail(`the event stream from ${this.#url} ended ${key === undefined ? "before answering" : "before the stream's end"}`);
        }
    }
    #deliver(text) {
        if (this.readyState === OPEN)
            this.onmessage?.({ data: text });
    }
    #fail(reason, code) {
        if (this.readyState === 3)
            return;
        const opened = this.readyState === OPEN;
        this.readyState = 3;
        for (const controller of [...this.#all])
            this.#drop(controller);
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
    #data;
    /** The last chunk ended with CR: a LF at the start of the next belongs to it. */
    #afterCr = false;
    push(text, events) {
        let start = 0;
        if (this.#afterCr) {
            this.#afterCr = false;
            if (text.startsWith("\n"))
                start = 1;
        }
        for (let i = start; i < text.length; i++) {
            const c = text.charCodeAt(i);
            if (c !== 10 && c !== 13)
                continue;
            this.#endLine(this.#line + text.slice(start, i), events);
            this.#line = "";
            if (c === 13) {
                if (i + 1 === text.length)
                    this.#afterCr = true;
                else if (text.charCodeAt(i + 1) === 10)
                    i++;
            }
            start = i + 1;
        }
        this.#line += text.slice(start);
    }
    #endLine(line, events) {
        if (line === "") {
            if (this.#data !== undefined)
                events.push(this.#data.join("\n"));
            this.#data = undefined;
        }
        else if (line === "data" || line.startsWith("data:")) {
            const value = line.slice(5);
            (this.#data ??= []).push(value.startsWith(" ") ? value.slice(1) : value);
        }
    }
}
function decodeArgs(handler, params) {
    const names = handler.params;
    if (params === undefined || params === null)
        params = [];
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
    if (typeof params !== "object")
        throw new RpcError(ErrorCode.InvalidParams, "Invalid params: expected an object or an array");
    const byName = params;
    return names.map(([name, optional]) => {
        const value = byName[name];
        if ((value === undefined || value === null) && !optional) {
            throw new RpcError(ErrorCode.InvalidParams, `Invalid params: missing parameter \`${name}\``);
        }
        return value ?? undefined;
    });
}
function toRpcError(value) {
    if (typeof value === "object" && value !== null) {
        const e = value;
        if (typeof e.code === "number" && typeof e.message === "string") {
            if (e.code === ErrorCode.Forbidden)
                return new ForbiddenError(e.code, e.message, e.data);
            if (e.code === ErrorCode.RateLimited)
                return new RateLimitedError(e.code, e.message, e.data);
            return new RpcError(e.code, e.message, e.data);
        }
    }
    return new RpcError(ErrorCode.InternalError, "malformed error object", value);
}
/** A topic position from the wire (`{epoch, offset}`), if that is what `value` holds. */
function toPosition(value) {
    if (typeof value !== "object" || value === null)
        return undefined;
    const { epoch, offset } = value;
    return typeof epoch === "string" && typeof offset === "number" ? { epoch, offset } : undefined;
}
/** The map key of a subscription id (a number or a string on the wire). */
function subscriptionKey(id) {
    if (typeof id === "number")
        return `n${id}`;
    if (typeof id === "string")
        return `s${id}`;
    return undefined;
}
function utf8Length(text) {
    let bytes = 0;
    for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c < 0x80)
            bytes += 1;
        else if (c < 0x800)
            bytes += 2;
        else if (c >= 0xd800 && c <= 0xdbff) {
            bytes += 4;
            i++;
        }
        else
            bytes += 3;
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
export class Subscription {
    #state;
    /** @internal */
    constructor(state) {
        this.#state = state;
    }
    /**
     * Resolves once the server accepted the subscription (for a topic: once its start
     * position arrived, so `position` is set); rejects with its setup error.
     */
    get ready() {
        return this.#state.ready;
    }
    /** Stops the stream: the server is told, and iteration ends. */
    close() {
        this.#state.close();
    }
    /**
     * A topic's position: that of the last item iterated, or, before any, where the
     * subscription started (known once `ready` resolved, for the methods `gen ts` generates
     * and `subscribe(…, { topic: true })`). `undefined` for a stream.
     */
    get position() {
        return this.#state.position;
    }
    [Symbol.asyncIterator]() {
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
export class SubscriptionState {
    method;
    params;
    options;
    subscription;
    ready;
    serverId = undefined;
    needsResubscribe = false;
    finished = false;
    /** A topic's position as the reader sees it (the last item handed out). */
    position;
    /** A topic's position as received (buffered items included): resubscribe after it. */
    #received;
    #client;
    #items = [];
    #error;
    #waiter;
    #ready;
    #subscribing = false;
    /** Ends the stream when `options.signal` fires. */
    #onAbort;
    constructor(client, method, params, options) {
        this.method = method;
        this.params = params;
        this.options = options;
        this.#client = client;
        this.subscription = new Subscription(this);
        this.ready = new Promise((resolve, reject) => {
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
    subscribed() {
        this.#subscribing = false;
        // A topic's start position follows the answer: `ready` waits for it (or for what
        // comes instead: a gap, an item, the end).
        if (this.options.topic === true && this.#received === undefined)
            return;
        this.#settleReady();
    }
    #settleReady() {
        this.#ready?.resolve();
        this.#ready = undefined;
    }
    connectionLost() {
        this.serverId = undefined;
        // A subscribe call in flight is resent by the client itself (it is idempotent).
        if (!this.finished && !this.#subscribing)
            this.needsResubscribe = true;
    }
    /** The params of the subscribe call: a topic resumes after what it received. */
    subscribeParams() {
        const since = this.#received;
        if (since === undefined || Array.isArray(this.params))
            return this.params;
        return { ...this.params, $since: since };
    }
    /** A topic's start (before its first item). */
    startsAt(at) {
        if (at === undefined || this.finished)
            return;
        this.#received = at;
        // With nothing unread before it, the reader is there now.
        if (this.#items.length === 0)
            this.position = at;
        else
            this.#enqueue({ at });
        this.#settleReady();
    }
    /** A topic lost publications: continue after `to`. */
    gap(to) {
        if (to === undefined || this.finished)
            return;
        this.#received = to;
        this.#enqueue({ at: to, gap: true });
        this.#settleReady();
    }
    resubscribe() {
        this.needsResubscribe = false;
        this.#subscribing = true;
        this.#client.subscribeOnce(this);
    }
    push(item, at) {
        if (this.finished)
            return;
        if (at !== undefined)
            this.#received = at;
        this.#enqueue({ item, at });
        this.#settleReady();
    }
    #enqueue(entry) {
        if (this.#waiter !== undefined) {
            const delivered = this.#take(entry);
            if (delivered === undefined)
                return;
            const waiter = this.#waiter;
            this.#waiter = undefined;
            if (delivered instanceof GapError)
                waiter.reject(delivered);
            else
                waiter.resolve({ done: false, value: delivered.value });
            return;
        }
        if (this.#items.length >= this.#client.subscriptionBuffer) {
            this.#client.unsubscribe(this);
            this.#end(new RpcError(ErrorCode.Lagged, "Subscription lagged", `more than ${this.#client.subscriptionBuffer} items were not read`));
            return;
        }
        this.#items.push(entry);
    }
    /** Hands an entry to the reader: an item, a gap to throw, or nothing (a start note, or
     * a gap that `onGap` took). */
    #take(entry) {
        const from = this.position;
        if (entry.at !== undefined)
            this.position = entry.at;
        if ("item" in entry)
            return { value: entry.item };
        if (entry.gap !== true || entry.at === undefined)
            return undefined;
        const gap = new GapError(from, entry.at);
        if (this.options.onGap !== undefined) {
            this.options.onGap(gap);
            return undefined;
        }
        return gap;
    }
    /** The server ended the stream: cleanly, or with an error. */
    serverEnded(error) {
        this.#client.forget(this);
        this.#end(error === undefined ? undefined : this.options.mapError?.(error) ?? error);
    }
    fail(error) {
        this.#client.forget(this);
        this.#end(error);
    }
    close() {
        if (this.finished)
            return;
        this.#client.unsubscribe(this);
        this.#items.length = 0;
        this.#end(undefined);
    }
    /** The signal fired: unsubscribe, drop what is unread, fail the reader. */
    #cancel() {
        if (this.finished)
            return;
        this.#client.unsubscribe(this);
        this.#items.length = 0;
        this.#end(new CancelledError(`${this.method}: cancelled`));
    }
    next() {
        while (this.#items.length > 0) {
            const delivered = this.#take(this.#items.shift());
            if (delivered instanceof GapError)
                return Promise.reject(delivered);
            if (delivered !== undefined)
                return Promise.resolve({ done: false, value: delivered.value });
        }
        if (this.finished) {
            const error = this.#error;
            this.#error = undefined;
            return error === undefined ? Promise.resolve({ done: true, value: undefined }) : Promise.reject(error);
        }
        if (this.#waiter !== undefined)
            return Promise.reject(new TypeError("a subscription has one reader at a time"));
        return new Promise((resolve, reject) => {
            this.#waiter = { resolve, reject };
        });
    }
    #end(error) {
        if (this.finished)
            return;
        this.finished = true;
        this.#subscribing = false;
        if (this.#onAbort !== undefined)
            this.options.signal?.removeEventListener("abort", this.#onAbort);
        if (this.#ready !== undefined) {
            if (error === undefined)
                this.#ready.resolve();
            else
                this.#ready.reject(error);
            this.#ready = undefined;
        }
        const waiter = this.#waiter;
        this.#waiter = undefined;
        if (waiter !== undefined) {
            if (error === undefined)
                waiter.resolve({ done: true, value: undefined });
            else
                waiter.reject(error);
        }
        else {
            this.#error = error;
        }
    }
}
const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/** Encodes bytes for a `bytes` field (standard base64, padded). */
export function toBase64(bytes) {
    let out = "";
    for (let i = 0; i < bytes.length; i += 3) {
        const a = bytes[i];
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
export function fromBase64(text) {
    const clean = text.replace(/=+$/, "");
    if (clean.length % 4 === 1)
        throw new TypeError("invalid base64: bad length");
    const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
    let bits = 0;
    let value = 0;
    let o = 0;
    for (let i = 0; i < clean.length; i++) {
        const d = BASE64.indexOf(clean.charAt(i));
        if (d < 0)
            throw new TypeError(`invalid base64 character at ${i}`);
        value = (value << 6) | d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (value >> bits) & 0xff;
        }
    }
    return out;
}
