// Topics in the TypeScript runtime, in Node.js against `chat serve` processes: a topic
// subscription survives its server being killed and restarted — with `$since` it resumes
// after the last message it received and misses nothing (history in Redis, while another
// node took the messages), and when the server lost the history (a memory hub restarted)
// the gap is reported, as a `GapError` from the iterator or to `onGap`.

import { after, test } from "node:test";
import assert from "node:assert/strict";
import { ChatNode, freePort, startRedis, waitFor } from "./harness.mjs";
import * as wirecall from "../../examples/web/dist/gen/wirecall.js";

const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

function connect(url) {
  const client = wirecall.connect(url, { reconnect: { initialBackoffMs: 20, maxBackoffMs: 200 } });
  cleanup.push(async () => client.close());
  return client;
}

/** A member of `lobby` on `url` that says things. */
async function speaker(url) {
  const client = connect(url);
  await client.call("Chat.join", { room: "lobby", name: "speaker" });
  return (text) => client.call("Chat.say", { room: "lobby", text });
}

/** Reads `n` items from `iterator`, with their positions. */
async function read(iterator, sub, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const { value, done } = await iterator.next();
    assert.equal(done, false);
    out.push([value.text, sub.position.offset]);
  }
  return out;
}

const said = (from, to) => Array.from({ length: to - from + 1 }, (_, k) => [`m${from + k}`, from + k]);

test("a topic resumes with $since after its server restarts: nothing missed, nothing twice", async (t) => {
  const redis = await startRedis(t.name);
  if (redis === undefined) return t.skip("redis-server is not installed");
  cleanup.push(() => redis.kill());
  const a = new ChatNode(await freePort(), { redis: redis.url });
  const b = new ChatNode(await freePort(), { redis: redis.url });
  await a.start();
  await b.start();
  cleanup.push(() => a.kill(), () => b.kill());

  const listener = connect(a.url);
  const sub = listener.subscribe("Chat.room", { room: "lobby" });
  await sub.ready;
  const items = sub[Symbol.asyncIterator]();
  const sayB = await speaker(b.url);
  for (let i = 1; i <= 10; i++) await sayB(`m${i}`);
  assert.deepEqual(await read(items, sub, 10), said(1, 10));

  // The listener's server dies; messages go on through the other node meanwhile.
  await a.kill();
  await waitFor("reconnecting", () => listener.state === "reconnecting");
  for (let i = 11; i <= 20; i++) await sayB(`m${i}`);
  await a.start();
  await waitFor("connected", () => listener.state === "connected");
  for (let i = 21; i <= 25; i++) await sayB(`m${i}`);
  assert.deepEqual(await read(items, sub, 15), said(11, 25));
  sub.close();
});

test("a server that lost the history reports the gap: GapError from the iterator, or onGap", async () => {
  const node = new ChatNode(await freePort());
  await node.start();
  cleanup.push(() => node.kill());
  const listener = connect(node.url);
  const thrown = listener.subscribe("Chat.room", { room: "lobby" });
  const gaps = [];
  const taken = listener.subscribe("Chat.room", { room: "lobby" }, { onGap: (g) => gaps.push(g) });
  await thrown.ready;
  await taken.ready;
  let say = await speaker(node.url);
  for (let i = 1; i <= 3; i++) await say(`m${i}`);
  const first = thrown[Symbol.asyncIterator]();
  const second = taken[Symbol.asyncIterator]();
  assert.deepEqual(await read(first, thrown, 3), said(1, 3));
  assert.deepEqual(await read(second, taken, 3), said(1, 3));
  const before = thrown.position;

  // Restarted, the memory hub is new: the old position's epoch is gone.
  await node.kill();
  await node.start();
  await waitFor("connected", () => listener.state === "connected");
  say = await speaker(node.url);
  await say("m4");
  await assert.rejects(first.next(), (e) => {
    assert.ok(e instanceof wirecall.GapError, String(e));
    assert.deepEqual(e.from, before);
    assert.notEqual(e.to.epoch, before.epoch);
    return true;
  });
  // The subscription goes on after the gap.
  assert.deepEqual(await read(first, thrown, 1), [["m4", 1]]);
  assert.deepEqual(await read(second, taken, 1), [["m4", 1]]);
  assert.equal(gaps.length, 1);
  assert.ok(gaps[0] instanceof wirecall.GapError);
});

test("a topic's position is where it started once `ready` resolves, before any item", async () => {
  const node = new ChatNode(await freePort());
  await node.start();
  cleanup.push(() => node.kill());
  const say = await speaker(node.url);
  await say("m1");
  await say("m2");
  const listener = connect(node.url);
  // As the generated topic methods subscribe (`{ topic: true }`).
  const sub = listener.subscribe("Chat.room", { room: "lobby" }, { topic: true });
  await sub.ready;
  assert.equal(sub.position?.offset, 2, "started after the two publications");
  assert.equal(typeof sub.position.epoch, "string");
  // Without the flag, `ready` does not wait, but the start position is taken as it
  // arrives, without reading.
  const plain = listener.subscribe("Chat.room", { room: "lobby" });
  await plain.ready;
  await waitFor("the start position", () => plain.position !== undefined);
  assert.deepEqual(plain.position, sub.position);
  await say("m3");
  assert.deepEqual(await read(sub[Symbol.asyncIterator](), sub, 1), [["m3", 3]]);
  assert.deepEqual(await read(plain[Symbol.asyncIterator](), plain, 1), [["m3", 3]]);
});
