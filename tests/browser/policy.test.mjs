// The TypeScript client against the server's policy, in Node.js: `calculator serve --rate 1`
// (a RateLimitedError with retryAfterMs; an @idempotent call waits that long and tries
// once more, within its timeout) and `chat serve --users FILE` (a refusal is a
// ForbiddenError). Uses the committed build of the example page's runtime
// (examples/web/dist), which run.sh checks is current.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Calculator, ChatNode, freePort } from "./harness.mjs";
import * as wirecall from "../../examples/web/dist/gen/wirecall.js";
import { CalculatorClient } from "../../examples/web/dist/gen/calculator.js";

let calculator;
let chat;
let dir;
const clients = [];

function connect(url, options = {}) {
  const client = wirecall.connect(url, { reconnect: { initialBackoffMs: 20, maxBackoffMs: 200 }, ...options });
  clients.push(client);
  return client;
}

/** Settles `promise` into `{ ok }` or `{ error }` (an Error). */
const outcome = (promise) => promise.then((ok) => ({ ok }), (error) => ({ error }));

/** Spends the caller's budget (one call a second): calls `echo` until one is refused, at
 * most 5 times; returns the refusal. */
async function spend(calc) {
  for (let i = 0; i < 5; i++) {
    const { error } = await outcome(calc.echo(`spend ${i}`));
    if (error !== undefined) return error;
  }
  assert.fail("5 calls in a row were not refused at one call a second");
}

before(async () => {
  calculator = new Calculator(await freePort(), { rate: 1 });
  await calculator.start();
  dir = mkdtempSync(path.join(tmpdir(), "wirecall-users-"));
  const users = path.join(dir, "users.json");
  writeFileSync(
    users,
    JSON.stringify({
      users: [
        { token: "t-alice", name: "alice", rooms: ["lobby", "secret"] },
        { token: "t-bob", name: "bob", rooms: ["lobby"] },
      ],
    }),
  );
  chat = new ChatNode(await freePort(), { users });
  await chat.start();
});

after(async () => {
  for (const c of clients) c.close();
  await calculator?.kill();
  await chat?.kill();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

test("over the rate, a call fails with RateLimitedError and says when to come back", async () => {
  const calc = new CalculatorClient(connect(calculator.url));
  const error = await spend(calc);
  assert.ok(error instanceof wirecall.RateLimitedError, String(error));
  assert.ok(error instanceof wirecall.RpcError);
  assert.equal(error.code, wirecall.ErrorCode.RateLimited);
  assert.equal(error.code, -32029);
  assert.ok(error.retryAfterMs > 0 && error.retryAfterMs <= 1000, `retryAfterMs ${error.retryAfterMs}`);
});

test("an @idempotent call refused by the rate waits retryAfterMs and tries once more", async () => {
  const calc = new CalculatorClient(connect(calculator.url));
  assert.ok((await spend(calc)) instanceof wirecall.RateLimitedError);
  // `stats` is @idempotent in calculator.wire: refused, it waits and succeeds…
  const stats = await calc.stats();
  assert.equal(typeof stats.calls, "number");
  // …having spent the budget that came back: a plain call right after is refused, and
  // is not tried again.
  const { error } = await outcome(calc.echo("right after"));
  assert.ok(error instanceof wirecall.RateLimitedError, String(error));
});

test("an @idempotent call does not wait past its timeout: it fails RateLimited at once", async () => {
  const calc = new CalculatorClient(connect(calculator.url));
  const refused = await spend(calc);
  assert.ok(refused instanceof wirecall.RateLimitedError);
  // The budget comes back in about a second; 300 ms is too short to wait for it.
  const { error } = await outcome(calc.stats({ timeoutMs: 300 }));
  assert.ok(error instanceof wirecall.RateLimitedError, `not a TimeoutError: ${String(error)}`);
});

test("a call the server's policy refuses fails with ForbiddenError", async () => {
  const bob = connect(chat.url, { token: "t-bob" });
  const { error } = await outcome(bob.call("Chat.join", { room: "secret", name: "bob" }));
  assert.ok(error instanceof wirecall.ForbiddenError, String(error));
  assert.equal(error.code, -32003);
  assert.match(error.message, /secret/);
  assert.equal(await bob.call("Chat.join", { room: "lobby", name: "bob" }), 1);
  // Over HTTP POST the same.
  const overHttp = connect(chat.url.replace("ws://", "http://"), { token: "t-bob" });
  const refused = await outcome(overHttp.call("Chat.say", { room: "secret", text: "hi" }));
  assert.ok(refused.error instanceof wirecall.ForbiddenError, String(refused.error));
});
