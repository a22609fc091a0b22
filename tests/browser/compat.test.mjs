// The compatibility matrix's TypeScript column (docs/EVOLUTION.md, tests/tests/compat.rs):
// the client generated from version 1 of a service (tests/compat/compat_v1.wire) against a
// server of version 2, which makes edits the rules call safe and one they call breaking.
//
// Environment (run.sh sets them): COMPAT_BIN, the `compat_server` example; COMPAT_JS, the
// directory of the compiled version 1 client (compat_v1.js, wirecall.js).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";

const js = process.env.COMPAT_JS;
const wirecall = await import(pathToFileURL(path.join(js, "wirecall.js")).href);
const { BoardClient, BoardError } = await import(pathToFileURL(path.join(js, "compat_v1.js")).href);

let server;
let client;
let board;

before(async () => {
  server = spawn(process.env.COMPAT_BIN, ["v2"], { stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    server.stdout.on("data", (chunk) => {
      out += chunk;
      const m = /listening on (ws:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    server.on("exit", (code) => reject(new Error(`compat_server exited with ${code}: ${out}`)));
  });
  client = wirecall.connect(url, { transport: "websocket" });
  board = new BoardClient(client);
});

after(() => {
  client?.close();
  server?.kill("SIGKILL");
});

test("a result with a new optional field: the old client reads its fields", async () => {
  const card = await board.get(1);
  assert.equal(card.title, "card 1");
});

test("typed errors both know stay typed; a new variant arrives as a plain RpcError with its code", async () => {
  await assert.rejects(board.get(0), (e) => e instanceof BoardError && e.variant.kind === "NoSuchCard");
  await assert.rejects(board.get(9), (e) => {
    assert.ok(!(e instanceof BoardError), "not one of version 1's variants");
    assert.ok(e instanceof wirecall.RpcError);
    assert.equal(e.code, 4002);
    assert.equal(e.message, "Archived");
    return true;
  });
});

test("a new variant of an @open enum arrives as its name (the type admits any string)", async () => {
  assert.equal(await board.column(1), "Todo");
  assert.equal(await board.column(2), "Doing");
});

test("a new variant of a closed enum: TypeScript does not check values, so it arrives as it is", async () => {
  // The rules call this breaking (ENUM_VARIANT_ADDED): Rust clients fail to decode it;
  // TypeScript code typed for "Small" | "Large" receives "Huge" unchecked.
  assert.equal(await board.size(3), "Huge");
});

test("unchanged params, and a stream whose items gained a field", async () => {
  assert.equal(await board.add("four", "Done"), 4);
  const titles = [];
  for await (const card of await board.watch(3)) titles.push(card.title);
  assert.deepEqual(titles, ["item 0", "item 1", "item 2"]);
});
