// Autobahn|JS (npm `autobahn`, on Node.js) against a wirecall server speaking WAMP
// (tests/tests/wamp.rs). Node 20 needs --experimental-websocket (Autobahn|JS uses the
// native WebSocket).
//
//   node --experimental-websocket client.mjs URL [json|msgpack|cbor]
//
// The same checks as client.py, with the serializer it names (JSON if none); prints `ok: <check>` per check, READY once subscribed to
// the lobby, and exits 0 when all pass.

import assert from "node:assert/strict";
import autobahn from "autobahn";

const url = process.argv[2];
const serializer = {
  json: () => new autobahn.serializer.JSONSerializer(),
  msgpack: () => new autobahn.serializer.MsgpackSerializer(),
  cbor: () => new autobahn.serializer.CBORSerializer(),
}[process.argv[3] ?? "json"]();
const ok = (name) => console.log(`ok: ${name}`);

async function expectError(promise, uri, contains) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.error, uri, JSON.stringify(e));
    if (contains !== undefined) assert.ok(JSON.stringify(e.args).includes(contains), JSON.stringify(e.args));
    return e;
  }
  throw new Error(`expected ${uri}`);
}

async function checks(session) {
  assert.equal(await session.call("Calculator.add", [1, 2]), 3);
  assert.equal(await session.call("Calculator.add", [], { a: 40, b: 2 }), 42);
  assert.equal(await session.call("Calculator.subtract", [42, 23]), 19);
  assert.equal(await session.call("Calculator.divide", [1, 4]), 0.25);
  assert.equal(await session.call("Calculator.echo", ["héllo"]), "héllo");
  assert.equal(await session.call("Calculator.sleep", [10]), 10);
  await session.call("Calculator.log", ["from autobahn-js"]);
  const stats = await session.call("Calculator.stats");
  assert.equal(stats.last_message, "from autobahn-js");
  ok("every calculator method");

  const e = await expectError(session.call("Calculator.divide", [1, 0]), "CalcError.DivideByZero");
  assert.deepEqual(e.args, [1001]);
  ok("typed error: CalcError.DivideByZero, args [1001]");
  await expectError(session.call("Calculator.add", ["x", 2]), "wamp.error.invalid_argument", "invalid parameter");
  await expectError(session.call("Calculator.nope"), "wamp.error.no_such_procedure");
  ok("protocol errors");

  const started = Date.now();
  const sleeping = session.call("Calculator.sleep", [5000]);
  setTimeout(() => sleeping.cancel({ mode: "kill" }), 100);
  await expectError(sleeping, "wamp.error.canceled");
  await expectError(session.call("Calculator.sleep", [5000], {}, { timeout: 100 }), "wamp.error.canceled");
  assert.ok(Date.now() - started < 3000, "the sleeps were not stopped");
  ok("CANCEL (kill) and the call timeout stop a sleep");

  const ticks = [];
  await session.call("Calculator.ticks", [3, 10], {}, { receive_progress: true }).then(
    (final) => assert.ok(final === undefined || final === null, `final result ${JSON.stringify(final)}`),
    (err) => {
      throw err;
    },
    (tick) => ticks.push(tick),
  );
  assert.deepEqual(ticks, [0, 1, 2]);
  ok("a stream as progressive results");

  const said = [];
  let heardAll;
  const done = new Promise((resolve) => (heardAll = resolve));
  await session.subscribe("Chat.room.lobby", ([message]) => {
    said.push(message.text);
    if (said.length === 3) heardAll();
  });
  await session.publish(
    "Chat.room.lobby",
    [{ room: "lobby", from: "autobahn-js", text: "hello from WAMP" }],
    {},
    { acknowledge: true },
  );
  console.log("READY");
  await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error("no events")), 20000))]);
  assert.deepEqual(said, ["m1", "m2", "m3"]);
  ok("topic events from JSON-RPC clients, own publication excluded");
}

const connection = new autobahn.Connection({ url, realm: "realm1", max_retries: 0, serializers: [serializer] });
let passed = false;
connection.onopen = async (session) => {
  try {
    await checks(session);
    passed = true;
  } catch (e) {
    console.log(`FAILED: ${e.stack ?? e}`);
  }
  connection.close();
};
connection.onclose = (reason, details) => {
  if (!passed) console.log(`closed: ${reason} ${JSON.stringify(details)}`);
  process.exit(passed ? 0 : 1);
};
connection.open();
