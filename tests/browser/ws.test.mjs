// Node.js without a WebSocket class of its own (Node.js 20 without --experimental-websocket,
// which is how run.sh runs this file), against the Rust calculator server: a client that
// registers handlers is refused, one given a ws:// URL warns that it uses HTTP, and the
// `ws` package's WebSocket, passed as `options.WebSocket`, does everything — including
// reconnecting through a proxy that resets connections while the server is away.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import WebSocket from "ws";
import { Calculator, freePort, waitFor } from "./harness.mjs";
import * as wirecall from "../../examples/web/dist/gen/wirecall.js";
import { CalculatorClient } from "../../examples/web/dist/gen/calculator.js";

let server;
const clients = [];
const handlers = CalculatorClient.callbacks({ confirm: (question) => question === "sure?" });

function connect(url, options = {}) {
  const client = wirecall.connect(url, { reconnect: { initialBackoffMs: 20, maxBackoffMs: 200 }, ...options });
  clients.push(client);
  return { client, calc: new CalculatorClient(client) };
}

/** Runs `body` as in a runtime without a global WebSocket (Node.js 20's default). */
async function withoutGlobalWebSocket(body) {
  const saved = Object.getOwnPropertyDescriptor(globalThis, "WebSocket");
  Object.defineProperty(globalThis, "WebSocket", { value: undefined, configurable: true, writable: true });
  try {
    return await body();
  } finally {
    if (saved === undefined) delete globalThis.WebSocket;
    else Object.defineProperty(globalThis, "WebSocket", saved);
  }
}

/** Calls `body` with console.warn captured; resolves to what it warned. */
async function warnings(body) {
  const saved = console.warn;
  const said = [];
  console.warn = (...args) => said.push(args.join(" "));
  try {
    await body();
  } finally {
    console.warn = saved;
  }
  return said;
}

before(async () => {
  server = new Calculator(await freePort());
  await server.start();
});

after(async () => {
  for (const c of clients) c.close();
  await server.kill();
});

test("without a WebSocket class, a client with handlers is refused, naming the ways to get one", async () => {
  await withoutGlobalWebSocket(() => {
    for (const url of [server.url, `http://127.0.0.1:${server.port}`]) {
      assert.throws(
        () => wirecall.connect(url, { handlers }),
        (e) => e instanceof TypeError && /need a WebSocket/.test(e.message) && /"ws"/.test(e.message) && /--experimental-websocket/.test(e.message),
      );
    }
    assert.throws(() => wirecall.connect(server.url, { transport: "websocket" }), /options\.WebSocket/);
  });
});

test("over HTTP (asked for), handlers are refused too: the server cannot call the client there", () => {
  for (const [url, options] of [
    [server.url, { transport: "http" }],
    [`http://127.0.0.1:${server.port}`, {}],
  ]) {
    assert.throws(
      () => wirecall.connect(url, { WebSocket, handlers, ...options }),
      (e) => e instanceof TypeError && /over HTTP/.test(e.message),
    );
  }
  // Also when added later.
  const { client } = connect(server.url, { transport: "http" });
  assert.throws(() => client.handle(handlers), TypeError);
});

test("without a WebSocket class, a ws:// URL is reached over HTTP with a warning; `transport` says so", async () => {
  let client;
  let calc;
  const said = await warnings(() =>
    withoutGlobalWebSocket(() => {
      ({ client, calc } = connect(server.url));
    }),
  );
  assert.equal(said.length, 1, JSON.stringify(said));
  assert.match(said[0], /no WebSocket class/);
  assert.match(said[0], new RegExp(`${server.url}.*HTTP`));
  assert.match(said[0], /"ws"/);
  assert.equal(client.transport, undefined, "not connected yet");
  await client.connected();
  assert.equal(client.transport, "http");
  assert.equal(await calc.add(1, 2), 3);
  // Asking for HTTP says it is meant: no warning.
  const quiet = await warnings(() =>
    withoutGlobalWebSocket(() => {
      connect(server.url, { transport: "http" });
    }),
  );
  assert.deepEqual(quiet, []);
});

test("the `ws` package's WebSocket: calls, the server's calls to the client, streams", async () => {
  await withoutGlobalWebSocket(async () => {
    const { client, calc } = connect(server.url, { WebSocket, handlers });
    await client.connected();
    assert.equal(client.transport, "websocket");
    assert.equal(await calc.add(2, 3), 5);
    assert.equal(await calc.ask("sure?"), true);
    const items = [];
    for await (const i of calc.ticks(3, 1)) items.push(i);
    assert.deepEqual(items, [0, 1, 2]);
    client.close();
    assert.equal(client.transport, undefined);
  });
});

/**
 * A TCP proxy in front of `target`: while `target` is down, it accepts each connection and
 * resets it at once (as a proxy or load balancer with no backend does). Counts the
 * connections whose first bytes are an HTTP POST.
 */
async function resettingProxy(targetPort) {
  const stats = { posts: 0 };
  const sockets = new Set();
  const proxy = net.createServer((inbound) => {
    sockets.add(inbound);
    inbound.on("close", () => sockets.delete(inbound));
    inbound.once("data", (chunk) => {
      if (chunk.toString("latin1").startsWith("POST ")) stats.posts++;
    });
    inbound.on("error", () => undefined);
    const outbound = net.connect(targetPort, "127.0.0.1");
    outbound.on("error", () => inbound.resetAndDestroy());
    outbound.on("close", () => inbound.destroy());
    inbound.on("close", () => outbound.destroy());
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  proxy.listen(0, "127.0.0.1");
  await new Promise((resolve) => proxy.once("listening", resolve));
  return {
    url: `ws://127.0.0.1:${proxy.address().port}`,
    stats,
    close() {
      for (const s of sockets) s.destroy();
      proxy.close();
    },
  };
}

test("with `ws` and transport auto, reconnects through a proxy that resets while the server is away", async () => {
  const proxy = await resettingProxy(server.port);
  try {
    await withoutGlobalWebSocket(async () => {
      const { client, calc } = connect(proxy.url, {
        WebSocket,
        transport: "auto",
        // Long enough that a client stuck in a handshake cannot pass by waiting it out.
        handshakeTimeoutMs: 60_000,
        reconnect: { initialBackoffMs: 50, maxBackoffMs: 200 },
      });
      await client.connected();
      const states = [];
      client.onStateChange((s) => states.push(s));
      assert.equal(await calc.add(1, 1), 2);
      const postsBefore = proxy.stats.posts;
      await server.kill();
      await waitFor("reconnecting", () => client.state === "reconnecting");
      // Several attempts meet the reset (backoff 50, 100, 200, 200… ms).
      await new Promise((r) => setTimeout(r, 1_500));
      await server.start();
      const started = Date.now();
      await waitFor("connected again", () => client.state === "connected", 20_000);
      const took = Date.now() - started;
      assert.ok(took < 10_000, `reconnected ${took} ms after the server came back`);
      assert.equal(client.transport, "websocket");
      assert.equal(await calc.add(2, 2), 4);
      // A WebSocket had opened: a failed reconnect is the server away, not WebSockets
      // blocked, so the client never fell back to HTTP (whose POST Node.js 20's fetch may
      // leave pending forever against a reset).
      assert.equal(proxy.stats.posts, postsBefore, "no HTTP fallback while reconnecting");
      assert.deepEqual(states.filter((s, i) => s !== states[i - 1]), ["reconnecting", "connected"]);
    });
  } finally {
    proxy.close();
  }
});
