// The TypeScript runtime's behaviour under faults, in Node.js (its WebSocket; Node 20
// needs --experimental-websocket, which run.sh passes) against the Rust calculator server:
// idempotent resend, waiting calls, giving up, lagged streams, limits, close, and every
// call ending exactly once while the server is killed and restarted. Uses the committed
// build of the example page (examples/web/dist), which run.sh checks is current.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Calculator, freePort, waitFor } from "./harness.mjs";
import * as wirecall from "../../examples/web/dist/gen/wirecall.js";
import { CalculatorClient } from "../../examples/web/dist/gen/calculator.js";

let server;
const clients = [];

/** A client that reconnects fast; closed after the tests. */
function connect(options = {}) {
  const client = wirecall.connect(server.url, {
    reconnect: { initialBackoffMs: 20, maxBackoffMs: 200 },
    handlers: CalculatorClient.callbacks({ confirm: () => true }),
    ...options,
  });
  clients.push(client);
  return { client, calc: new CalculatorClient(client) };
}

/** Settles `promise` into `{ ok }` or `{ error }` (an Error). */
const outcome = (promise) => promise.then((ok) => ({ ok }), (error) => ({ error }));

before(async () => {
  server = new Calculator(await freePort());
  await server.start();
});

after(async () => {
  for (const c of clients) c.close();
  await server.kill();
});

test("an idempotent call in flight is sent again after a reconnect; others fail Disconnected", async () => {
  const { client, calc } = connect();
  await client.connected();
  const idempotent = outcome(client.call("Calculator.sleep", { ms: 300 }, { idempotent: true }));
  const plain = outcome(calc.sleep(300));
  await new Promise((r) => setTimeout(r, 50));
  await server.kill();
  await server.start();
  const [a, b] = await Promise.all([idempotent, plain]);
  assert.deepEqual(a, { ok: 300 });
  assert.ok(b.error instanceof wirecall.DisconnectedError, String(b.error));
  assert.equal(client.state, "connected");
});

test("calls made while disconnected wait for the connection, until their timeout", async () => {
  const { client, calc } = connect();
  await client.connected();
  await server.kill();
  await waitFor("reconnecting", () => client.state === "reconnecting");
  const started = Date.now();
  const late = await outcome(calc.add(1, 2, { timeoutMs: 200 }));
  assert.ok(late.error instanceof wirecall.TimeoutError, String(late.error));
  assert.ok(Date.now() - started >= 190);
  const waiting = outcome(calc.add(2, 3));
  const note = outcome(calc.log("queued while down"));
  await server.start();
  assert.deepEqual(await waiting, { ok: 5 });
  assert.deepEqual(await note, { ok: undefined });
  assert.equal((await calc.stats()).last_message, "queued while down");
});

test("with maxAttempts the client gives up: Closed, and everything ends", async () => {
  const { client, calc } = connect({ reconnect: { initialBackoffMs: 100, maxBackoffMs: 100, maxAttempts: 3 } });
  await client.connected();
  const states = [];
  client.onStateChange((s) => states.push(s));
  const sub = calc.ticks(1_000_000, 10);
  const iterator = sub[Symbol.asyncIterator]();
  assert.equal((await iterator.next()).value, 0);
  await server.kill();
  await waitFor("reconnecting", () => client.state === "reconnecting");
  // Made while disconnected: it waits, until the client gives up.
  const pending = outcome(calc.add(1, 1));
  await waitFor("closed", () => client.state === "closed");
  assert.deepEqual(states.filter((s, i) => s !== states[i - 1]), ["reconnecting", "closed"]);
  assert.ok((await pending).error instanceof wirecall.ClosedError);
  const rest = await outcome((async () => {
    for (;;) if ((await iterator.next()).done) return "done";
  })());
  assert.ok(rest.error instanceof wirecall.ClosedError, String(rest.error ?? rest.ok));
  await assert.rejects(client.connected(), wirecall.ClosedError);
  await server.start();
});

test("a subscription that is not read closes with the lagged error after its buffer", async () => {
  const { client, calc } = connect({ subscriptionBuffer: 4 });
  await client.connected();
  const sub = calc.ticks(50, 1);
  await sub.ready;
  await new Promise((r) => setTimeout(r, 300));
  const seen = [];
  const end = await outcome((async () => {
    for await (const tick of sub) seen.push(tick);
  })());
  assert.deepEqual(seen, [0, 1, 2, 3], "the buffered items come first");
  assert.ok(end.error instanceof wirecall.RpcError);
  assert.equal(end.error.code, wirecall.ErrorCode.Lagged);
  // The connection carries on.
  assert.equal(await calc.add(1, 2), 3);
});

test("a stream's setup error rejects `ready` and the iteration", async () => {
  const { client } = connect();
  const sub = client.subscribe("Calculator.nope", {});
  const ready = await outcome(sub.ready);
  assert.equal(ready.error.code, -32601);
  const iteration = await outcome((async () => {
    for await (const _ of sub) return "item";
  })());
  assert.equal(iteration.error.code, -32601);
});

/** A WebSocket class that records the frames the client sends. */
function spyingWebSocket(sent) {
  return class extends globalThis.WebSocket {
    send(frame) {
      sent.push(JSON.parse(frame));
      super.send(frame);
    }
  };
}

test("a signal given to a stream ends it: unsubscribed, unread items dropped, CancelledError", async () => {
  const sent = [];
  const { client, calc } = connect({ WebSocket: spyingWebSocket(sent) });
  await client.connected();
  const controller = new AbortController();
  const sub = calc.ticks(40, 5, { signal: controller.signal });
  const seen = [];
  const end = await outcome((async () => {
    for await (const tick of sub) {
      seen.push(tick);
      if (tick === 2) {
        controller.abort();
        // Items that arrive meanwhile are not handed out.
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  })());
  assert.ok(end.error instanceof wirecall.CancelledError, String(end.error ?? `ended after ${seen}`));
  assert.deepEqual(seen, [0, 1, 2]);
  const subscribed = sent.find((m) => m.method === "Calculator.ticks");
  assert.ok(subscribed !== undefined);
  await waitFor("the unsubscribe", () => sent.find((m) => m.method === "Calculator.ticks.unsubscribe"));
  // Aborted before the server answered: the subscribe call is cancelled, `ready` says so.
  const early = new AbortController();
  const cancelled = calc.ticks(5, 5, { signal: early.signal });
  early.abort();
  assert.ok((await outcome(cancelled.ready)).error instanceof wirecall.CancelledError);
  // A stream bounded in time: AbortSignal.timeout ends it (however far it got by then).
  const timedOut = await outcome((async () => {
    for await (const _ of calc.ticks(1_000_000, 10, { signal: AbortSignal.timeout(300) }));
  })());
  assert.ok(timedOut.error instanceof wirecall.CancelledError, String(timedOut.error));
  assert.equal(await calc.add(1, 2), 3, "the connection carries on");
});

test("a stream's timeoutMs covers its subscribe call, not how long it runs", async () => {
  const { client, calc } = connect();
  await client.connected();
  const items = [];
  for await (const tick of calc.ticks(4, 500, { timeoutMs: 1_000 })) items.push(tick);
  assert.deepEqual(items, [0, 1, 2, 3]);
  // While disconnected, the subscribe call waits for the connection within its timeout.
  await server.kill();
  await waitFor("reconnecting", () => client.state === "reconnecting");
  const late = calc.ticks(3, 1, { timeoutMs: 200 });
  assert.ok((await outcome(late.ready)).error instanceof wirecall.TimeoutError);
  await server.start();
  await client.connected();
});

test("over HTTP, a notification is handled before a call the client sends after it", async () => {
  // The network holds back the notification's POST: the call sent after it must wait.
  const held = [];
  const fetchHoldingNotes = async (url, init) => {
    const body = JSON.parse(init.body);
    if (!Array.isArray(body) && !("id" in body)) {
      held.push(body.method);
      await new Promise((r) => setTimeout(r, 300));
    }
    return fetch(url, init);
  };
  const { client, calc } = connect({ transport: "http", fetch: fetchHoldingNotes, handlers: [] });
  await client.connected();
  assert.equal(client.transport, "http");
  await calc.log("before");
  await calc.log("ordered over HTTP");
  assert.equal((await calc.stats()).last_message, "ordered over HTTP");
  assert.deepEqual(held, ["Calculator.log", "Calculator.log"]);
});

test("a request over maxMessageSize fails before it is sent; the connection carries on", async () => {
  const { client, calc } = connect({ maxMessageSize: 1000 });
  await client.connected();
  const big = await outcome(calc.echo("x".repeat(2000)));
  assert.ok(big.error instanceof wirecall.MessageTooLargeError, String(big.error));
  assert.equal(await calc.echo("small"), "small");
  // Near the limit, the size is counted in UTF-8 bytes, not estimated.
  assert.equal(await calc.echo("y".repeat(500)), "y".repeat(500));
  assert.equal(await calc.echo("é".repeat(400)), "é".repeat(400));
  const wide = await outcome(calc.echo("é".repeat(600)));
  assert.ok(wide.error instanceof wirecall.MessageTooLargeError, "1 200 bytes in 600 characters");
});

test("close() ends pending calls and streams with ClosedError, and later calls too", async () => {
  const { client, calc } = connect();
  await client.connected();
  const slow = outcome(calc.sleep(5000));
  const sub = calc.ticks(1_000_000, 10);
  await sub.ready;
  client.close();
  assert.ok((await slow).error instanceof wirecall.ClosedError);
  const iteration = await outcome((async () => {
    for await (const _ of sub);
  })());
  assert.ok(iteration.error instanceof wirecall.ClosedError, String(iteration.error));
  assert.ok((await outcome(calc.add(1, 2))).error instanceof wirecall.ClosedError);
  assert.equal(client.state, "closed");
});

test("every call ends exactly once while the server is killed and restarted", async (t) => {
  const { client, calc } = connect();
  await client.connected();
  const counts = new Map();
  let settledTwice = 0;
  const calls = [];
  for (let i = 0; i < 400; i++) {
    const idempotent = i % 2 === 0;
    const promise = idempotent
      ? client.call("Calculator.sleep", { ms: i % 50 }, { idempotent: true, timeoutMs: 10_000 })
      : calc.sleep(i % 50, { timeoutMs: 10_000 });
    let settled = 0;
    calls.push(
      promise.then(
        (v) => {
          if (++settled > 1) settledTwice++;
          assert.equal(v, i % 50);
          return idempotent ? "idempotent ok" : "ok";
        },
        (e) => {
          if (++settled > 1) settledTwice++;
          return idempotent ? `idempotent ${e.name}` : e.name;
        },
      ),
    );
    if (i === 100 || i === 250) {
      await server.kill();
      await server.start();
    }
    if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
  }
  for (const result of await Promise.all(calls)) counts.set(result, (counts.get(result) ?? 0) + 1);
  t.diagnostic(`outcomes: ${JSON.stringify([...counts])}`);
  assert.equal(settledTwice, 0);
  assert.equal(counts.get("idempotent ok"), 200, `idempotent calls all succeed: ${[...counts]}`);
  for (const key of counts.keys()) assert.ok(["ok", "DisconnectedError", "idempotent ok"].includes(key), key);
});

test("bytes travel as standard padded base64", () => {
  for (const length of [0, 1, 2, 3, 4, 5, 255]) {
    const bytes = Uint8Array.from({ length }, (_, i) => (i * 37 + 11) & 0xff);
    const text = wirecall.toBase64(bytes);
    assert.equal(text, Buffer.from(bytes).toString("base64"));
    assert.deepEqual(wirecall.fromBase64(text), bytes);
  }
  assert.throws(() => wirecall.fromBase64("a$=="), TypeError);
});
