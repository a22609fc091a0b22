// The TypeScript runtime against fake HTTP servers in Node.js (node:http): an event stream
// cut before its end, split mid-character and with CRLF line ends; a server that accepts
// every connection and fails what is sent on it (the backoff must keep growing); full
// jitter; a token function that hangs; a burst of 401s; an event stream ended by the
// server's `$/expired`; refusals as typed errors. Uses the committed build of the example page (examples/web/dist), as
// runtime.test.mjs does.

import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import * as wirecall from "../../examples/web/dist/gen/wirecall.js";

/** A server on a free loopback port: `handle(body, res, req)` answers each POST. */
async function fakeServer(handle) {
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => handle(body, res, req));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** The answer to the client's probe (an empty batch). */
function answerProbe(res) {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32600, message: "Invalid Request" }, id: null }));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test("an event stream cut before its end subscribes again; split characters and CRLF arrive intact", async () => {
  let subscribes = 0;
  const server = await fakeServer(async (body, res) => {
    const request = JSON.parse(body);
    if (Array.isArray(request)) return answerProbe(res);
    subscribes++;
    res.writeHead(200, { "content-type": "text/event-stream" });
    const event = (message) => Buffer.from(`data: ${JSON.stringify(message)}\r\n\r\n`);
    const item = (sub, result) => event({ jsonrpc: "2.0", method: "X.s", params: { subscription: sub, result } });
    res.write(event({ jsonrpc: "2.0", result: subscribes, id: request.id }));
    if (subscribes === 1) {
      // One item, cut inside "é" and inside the emoji and between CR and LF; then the
      // response ends without the stream's end.
      const bytes = item(1, "héllo 😀");
      const e = bytes.indexOf(Buffer.from("é"));
      const smile = bytes.indexOf(Buffer.from("😀"));
      for (const [from, to] of [[0, e + 1], [e + 1, smile + 2], [smile + 2, bytes.length - 1], [bytes.length - 1, bytes.length]]) {
        res.write(bytes.subarray(from, to));
        await sleep(20);
      }
      res.end();
      return;
    }
    res.write(item(subscribes, "again"));
    res.end(event({ jsonrpc: "2.0", method: "X.s", params: { subscription: subscribes, error: null } }));
  });
  const client = wirecall.connect(server.url, { reconnect: { initialBackoffMs: 10, maxBackoffMs: 50 } });
  try {
    const received = [];
    const read = (async () => {
      for await (const item of client.subscribe("X.s", {})) received.push(item);
    })();
    const timeout = sleep(10_000).then(() => "timeout");
    assert.notEqual(await Promise.race([read, timeout]), "timeout", `the subscription hangs after ${JSON.stringify(received)}`);
    assert.deepEqual(received, ["héllo 😀", "again"]);
    assert.equal(subscribes, 2);
  } finally {
    client.close();
    server.close();
  }
});

test("a server that accepts and then fails every request is retried ever more slowly", async () => {
  let probes = 0;
  const server = await fakeServer((body, res) => {
    if (Array.isArray(JSON.parse(body))) {
      probes++;
      return answerProbe(res);
    }
    res.writeHead(500, { "content-type": "text/plain" });
    res.end("down");
  });
  // The default backoff (100 ms → 30 s); an idempotent call is sent on every connection.
  const client = wirecall.connect(server.url);
  try {
    const call = client.call("X.stats", {}, { idempotent: true, timeoutMs: 3000 }).catch((e) => e);
    await sleep(3000);
    // 100, 200, 400, 800, 1 600 ms (each jittered down): at most ~8 in 3 s. When every
    // connection that opened reset the backoff: ~35.
    assert.ok(probes <= 12, `${probes} connections in 3 s`);
    assert.ok((await call) instanceof Error);
  } finally {
    client.close();
    server.close();
  }
});

test("the reconnect delay is fully jittered: anywhere between zero and the backoff", () => {
  const samples = Array.from({ length: 2000 }, () => wirecall.backoff({}, 0));
  assert.ok(samples.every((d) => d >= 0 && d <= 100));
  const belowHalf = samples.filter((d) => d < 50).length;
  assert.ok(belowHalf >= 700 && belowHalf <= 1300, `${belowHalf} of 2000 below half`);
  assert.equal(wirecall.backoff({ jitter: false }, 3), 800);
  assert.equal(wirecall.backoff({ jitter: false }, 40), 30_000);
});

test("a token function that hangs fails that attempt only: the client reconnects", async () => {
  let posts = 0;
  const server = await fakeServer((body, res) => {
    if (Array.isArray(JSON.parse(body))) return answerProbe(res);
    posts++;
    if (posts === 1) {
      // The first call: the server fails, so the client reconnects.
      res.writeHead(500, { "content-type": "text/plain" });
      return res.end("down");
    }
    const request = JSON.parse(body);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ jsonrpc: "2.0", result: 42, id: request.id }));
  });
  let fetches = 0;
  const client = wirecall.connect(server.url, {
    reconnect: { initialBackoffMs: 10, maxBackoffMs: 50 },
    handshakeTimeoutMs: 300,
    token: () => {
      fetches++;
      // The second fetch (the first reconnect) never ends.
      return fetches === 2 ? new Promise(() => {}) : Promise.resolve(`t${fetches}`);
    },
  });
  try {
    const answer = await client.call("X.get", {}, { idempotent: true, timeoutMs: 8000 });
    assert.equal(answer, 42);
    assert.ok(fetches >= 3, `${fetches} token fetches`);
  } finally {
    client.close();
    server.close();
  }
});

test("an event stream that ends with $/expired reconnects with a fresh token and subscribes again", async () => {
  const tokens = [];
  const server = await fakeServer((body, res, req) => {
    const request = JSON.parse(body);
    if (Array.isArray(request)) return answerProbe(res);
    tokens.push(req.headers["authorization"]);
    const n = tokens.length;
    res.writeHead(200, { "content-type": "text/event-stream" });
    const event = (message) => `data: ${JSON.stringify(message)}\n\n`;
    res.write(event({ jsonrpc: "2.0", result: n, id: request.id }));
    res.write(event({ jsonrpc: "2.0", method: "X.s", params: { subscription: n, result: `item ${n}` } }));
    if (n === 1) {
      // The token expired: the server's last event, then the end.
      const expired = { jsonrpc: "2.0", method: "$/expired", params: { subscription: n, reason: "authentication expired" } };
      res.end(`event: expired\n${event(expired)}`);
      return;
    }
    res.end(event({ jsonrpc: "2.0", method: "X.s", params: { subscription: n, error: null } }));
  });
  let fetches = 0;
  const why = [];
  const client = wirecall.connect(server.url, {
    token: () => `token-${++fetches}`,
    reconnect: { initialBackoffMs: 10, maxBackoffMs: 50 },
    onStateChange: (state, error) => error !== undefined && why.push(error.message),
  });
  try {
    const received = [];
    const read = (async () => {
      for await (const item of client.subscribe("X.s", {})) received.push(item);
    })();
    const timeout = sleep(10_000).then(() => "timeout");
    assert.notEqual(await Promise.race([read, timeout]), "timeout", `the subscription hangs after ${JSON.stringify(received)}`);
    assert.deepEqual(received, ["item 1", "item 2"]);
    assert.deepEqual(tokens, ["Bearer token-1", "Bearer token-2"], "subscribed again with a fresh token");
    // As a WebSocket closed with 4401, not as a stream cut short.
    assert.ok(why.some((m) => m.includes("code 4401: authentication expired")), JSON.stringify(why));
  } finally {
    client.close();
    server.close();
  }
});

test("refusals are typed: ForbiddenError for a call and a subscription, RateLimitedError", async () => {
  const server = await fakeServer((body, res) => {
    const request = JSON.parse(body);
    if (Array.isArray(request)) return answerProbe(res);
    const forbidden = { code: -32003, message: "Forbidden", data: "subscribing to X.room" };
    const limited = { code: -32029, message: "Rate limited", data: { retry_after_ms: 60_000 } };
    if (request.method === "X.room") {
      // A refused subscription: the event stream's first and only event.
      res.writeHead(200, { "content-type": "text/event-stream" });
      return res.end(`data: ${JSON.stringify({ jsonrpc: "2.0", error: forbidden, id: request.id })}\n\n`);
    }
    const error = request.method === "X.secret" ? forbidden : limited;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ jsonrpc: "2.0", error, id: request.id }));
  });
  const client = wirecall.connect(server.url, { reconnect: false });
  try {
    await assert.rejects(client.call("X.secret", {}), (e) => e instanceof wirecall.ForbiddenError && e.code === -32003);
    await assert.rejects(
      (async () => {
        for await (const _ of client.subscribe("X.room", { room: "secret" })) assert.fail("no item");
      })(),
      (e) => e instanceof wirecall.ForbiddenError && e.data === "subscribing to X.room",
    );
    await assert.rejects(
      client.call("X.busy", {}),
      (e) => e instanceof wirecall.RateLimitedError && e.retryAfterMs === 60_000 && e instanceof wirecall.RpcError,
    );
  } finally {
    client.close();
    server.close();
  }
});

test("a burst of 401s fetches one fresh token", async () => {
  const server = await fakeServer((body, res, req) => {
    if (Array.isArray(JSON.parse(body))) return answerProbe(res);
    if (req.headers["authorization"] !== "Bearer fresh") {
      res.writeHead(401, { "content-type": "text/plain" });
      return res.end("token expired");
    }
    const request = JSON.parse(body);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ jsonrpc: "2.0", result: request.params.n, id: request.id }));
  });
  let fetches = 0;
  const client = wirecall.connect(server.url, {
    token: async () => {
      fetches++;
      await sleep(50);
      return fetches === 1 ? "stale" : "fresh";
    },
  });
  try {
    const answers = await Promise.all(Array.from({ length: 20 }, (_, n) => client.call("X.echo", { n })));
    assert.deepEqual(answers, Array.from({ length: 20 }, (_, n) => n));
    assert.equal(fetches, 2, "one at connect, one refresh");
  } finally {
    client.close();
    server.close();
  }
});
