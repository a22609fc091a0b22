// The TypeScript client over TLS with a token, in Node.js (its WebSocket and fetch; run.sh
// passes the test CA as NODE_EXTRA_CA_CERTS and its certificate files as TLS_CERT/TLS_KEY)
// against `calculator serve --tls-cert … --tls-key … --token …`: wss:// with the token as
// the `bearer.…` subprotocol, https:// with `Authorization: Bearer`, refusals without it,
// and a fresh token from the token function after the server closes with 4401.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Calculator, freePort, waitFor } from "./harness.mjs";
import * as wirecall from "../../examples/web/dist/gen/wirecall.js";
import { CalculatorClient } from "../../examples/web/dist/gen/calculator.js";

const tls = { cert: process.env.TLS_CERT, key: process.env.TLS_KEY };
const TOKEN = "s3cret-token.42";
let server;
let expiring;
const clients = [];

function connect(url, options = {}) {
  const client = wirecall.connect(url, {
    reconnect: { initialBackoffMs: 20, maxBackoffMs: 200 },
    ...options,
  });
  clients.push(client);
  return { client, calc: new CalculatorClient(client) };
}

before(async () => {
  assert.ok(tls.cert && tls.key && process.env.NODE_EXTRA_CA_CERTS, "run.sh sets TLS_CERT, TLS_KEY and NODE_EXTRA_CA_CERTS");
  server = new Calculator(await freePort(), { tls, token: TOKEN });
  expiring = new Calculator(await freePort(), { tls, token: TOKEN, tokenTtlMs: 300 });
  await Promise.all([server.start(), expiring.start()]);
});

after(async () => {
  for (const c of clients) c.close();
  await Promise.all([server.kill(), expiring.kill()]);
});

test("the bearer subprotocol is base64url of the token's UTF-8", () => {
  assert.equal(wirecall.bearerSubprotocol("s3cret token ✓"), "bearer." + Buffer.from("s3cret token ✓").toString("base64url"));
  assert.equal(wirecall.bearerSubprotocol("a"), "bearer.YQ");
  assert.equal(wirecall.bearerSubprotocol("ab?>"), "bearer.YWI_Pg");
});

test("wss:// with the token as a subprotocol, and https:// with Authorization", async () => {
  const https = server.url.replace("wss://", "https://");
  for (const [url, token] of [
    [server.url, TOKEN],
    [server.url, () => Promise.resolve(TOKEN)],
    [https, TOKEN],
  ]) {
    const { client, calc } = connect(url, { token });
    await client.connected();
    assert.equal(await calc.add(40, 2), 42, url);
    assert.equal((await calc.stats()).caller, "token holder", url);
    const items = [];
    for await (const i of await calc.ticks(3, 1)) items.push(i);
    assert.deepEqual(items, [0, 1, 2], url);
    client.close();
  }
});

test("without the token, or with a wrong one, the client never connects", async () => {
  const https = server.url.replace("wss://", "https://");
  for (const [url, token] of [
    [server.url, undefined],
    [server.url, "wrong"],
    [https, undefined],
    [https, "wrong"],
  ]) {
    const { client, calc } = connect(url, { token, reconnect: false });
    await assert.rejects(client.connected(), wirecall.ClosedError, `${url} ${token}`);
    await assert.rejects(calc.add(1, 2), wirecall.ClosedError);
  }
});

test("over https://, a POST refused with 401 is sent again with a fresh token", async () => {
  // The first token is stale: the connect probe is refused, refreshed and sent again.
  const tokens = ["stale", TOKEN];
  let fetched = 0;
  const https = server.url.replace("wss://", "https://");
  const { client, calc } = connect(https, { token: async () => tokens[Math.min(fetched++, 1)] });
  await client.connected();
  assert.equal(await calc.add(2, 3), 5);
  assert.equal(fetched, 2);
  client.close();
});

test("after the server closes with 4401, the client reconnects with a fresh token", async () => {
  let fetched = 0;
  const errors = [];
  const { client, calc } = connect(expiring.url, {
    token: async () => {
      fetched++;
      return TOKEN;
    },
    onStateChange: (state, error) => {
      if (state === "reconnecting") errors.push(String(error?.message));
    },
  });
  await client.connected();
  // Calls keep succeeding through several expiries: `stats` is idempotent (resent after
  // the reconnect); an `add` in flight at the moment of a close fails Disconnected.
  const until = Date.now() + 1_000;
  let n = 0;
  let dropped = 0;
  while (Date.now() < until) {
    await calc.stats();
    try {
      assert.equal(await calc.add(n, 1), n + 1);
      n++;
    } catch (e) {
      assert.ok(e instanceof wirecall.DisconnectedError, String(e));
      dropped++;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(n > 10 * Math.max(dropped, 1), `${n} answered, ${dropped} dropped`);
  await waitFor("a few expiries", () => fetched >= 3);
  assert.ok(errors.some((e) => e.includes("4401")), errors.join("; "));
  assert.equal((await calc.stats()).caller, "token holder");
});
