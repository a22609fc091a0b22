// The TypeScript runtime as an npm package (clients/typescript): run.sh packs it, installs
// the tarball offline into a scratch project (PKG_USER) and generates the calculator's
// client there with `--runtime-import @wirecall/client`; this test calls the Rust
// calculator server through that build.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Calculator, freePort } from "./harness.mjs";

const project = process.env.PKG_USER;
let server;
let client;

before(async () => {
  assert.ok(project, "run.sh sets PKG_USER");
  server = new Calculator(await freePort());
  await server.start();
});

after(async () => {
  client?.close();
  await server.kill();
});

test("generated code imports the installed package, and calls work", async () => {
  assert.equal(existsSync(path.join(project, "src/wirecall.ts")), false, "no copy of the runtime");
  // The same module the generated code resolves `@wirecall/client` to.
  const url = (p) => pathToFileURL(path.join(project, p)).href;
  const wirecall = await import(url("node_modules/@wirecall/client/dist/wirecall.js"));
  const { CalculatorClient, CalcError } = await import(url("dist/calculator.js"));
  client = wirecall.connect(server.url);
  const calc = new CalculatorClient(client);
  assert.equal(await calc.add(40, 2), 42);
  await assert.rejects(calc.divide(1, 0), (e) => e instanceof CalcError && e.code === 1001);
  const items = [];
  for await (const i of await calc.ticks(3, 1)) items.push(i);
  assert.deepEqual(items, [0, 1, 2]);
});
