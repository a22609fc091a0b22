// End to end in a real browser: headless Chromium (Debian's `chromium`, driven by
// playwright-core) opens the example page (examples/web, its committed build), whose
// generated TypeScript client talks to the Rust calculator server. Run by run.sh.
//
// Environment: CHROMIUM (default /usr/bin/chromium), and harness.mjs's.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { Calculator, freePort, inPage as inPageOf, launchChromium, serveExampleWeb, waitFor } from "./harness.mjs";


let httpServer;
let calculator;
let browser;
let page;
/** Text frames the page sent and received, in order. */
const sent = [];
const received = [];
/** Messages of the `confirm` dialogs the page opened. */
const dialogs = [];

/**
 * Runs `expression` (an expression over `client`, `calc`, `wirecall`, `CalcError` and `window`)
 * in the page; resolves to `{ ok: value }` or `{ error: {…what the error is…} }`.
 */
const inPage = (expression) => inPageOf(page, expression);

const state = () => page.locator("#state").getAttribute("data-state");

/** The parsed frames the page sent whose method is `method`. */
const sentCalls = (method) => sent.map((f) => JSON.parse(f)).filter((m) => m.method === method);

before(async () => {
  httpServer = await serveExampleWeb();
  const httpOrigin = `http://127.0.0.1:${httpServer.address().port}`;
  calculator = new Calculator(await freePort(), { allowOrigin: httpOrigin });
  await calculator.start();
  browser = await launchChromium(chromium);
  page = await browser.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") console.error(`page: ${m.text()}`);
  });
  page.on("pageerror", (e) => console.error(`page error: ${e}`));
  page.on("websocket", (ws) => {
    ws.on("framesent", (f) => typeof f.payload === "string" && sent.push(f.payload));
    ws.on("framereceived", (f) => typeof f.payload === "string" && received.push(f.payload));
  });
  page.on("dialog", async (dialog) => {
    dialogs.push(dialog.message());
    if (dialog.message().includes("sure")) await dialog.accept();
    else await dialog.dismiss();
  });
  await page.goto(`${httpOrigin}/?server=${calculator.url}`);
  await waitFor("the page to connect", async () => (await state()) === "connected");
});

after(async () => {
  await browser?.close();
  await calculator?.kill();
  httpServer?.close();
});

test("the page's buttons call the server", async () => {
  await page.fill("#a", "20");
  await page.fill("#b", "22");
  await page.click("#add");
  await waitFor("the sum", async () => (await page.textContent("#result")) === "42");
  await page.click("#divide");
  await waitFor("the quotient", async () => (await page.textContent("#result")) === String(20 / 22));
});

test("rpc calls resolve to their typed results", async () => {
  assert.deepEqual(await inPage("calc.add(1, 2)"), { ok: 3 });
  assert.deepEqual(await inPage("calc.subtract(42, 23)"), { ok: 19 });
  assert.deepEqual(await inPage("calc.divide(1, 4)"), { ok: 0.25 });
  assert.deepEqual(await inPage(`calc.echo("héllo ✓ \\"quoted\\" \\u0000")`), { ok: 'héllo ✓ "quoted" \u0000' });
  assert.deepEqual(await inPage("calc.sleep(10)"), { ok: 10 });
  // Named params, keyed by the IDL names, as DESIGN §3 says.
  const add = sentCalls("Calculator.add").at(-1);
  assert.deepEqual(add.params, { a: 1, b: 2 });
  assert.equal(add.jsonrpc, "2.0");
  assert.equal(typeof add.id, "number");
});

test("a typed application error arrives as its error class", async () => {
  const { error } = await inPage("calc.divide(1, 0)");
  assert.equal(error.calc, true, "instanceof CalcError");
  assert.equal(error.rpc, true, "instanceof RpcError");
  assert.equal(error.name, "CalcError");
  assert.equal(error.code, 1001);
  assert.equal(error.message, "DivideByZero");
  assert.deepEqual(error.variant, { kind: "DivideByZero" });
});

test("a notification is delivered; stats shows it", async () => {
  const sentLog = await inPage(`calc.log("from chromium")`);
  assert.equal(sentLog.error, undefined, JSON.stringify(sentLog.error));
  const { ok: stats } = await inPage("calc.stats()");
  assert.equal(stats.last_message, "from chromium");
  assert.equal(typeof stats.calls, "number");
  const log = sentCalls("Calculator.log").at(-1);
  assert.equal("id" in log, false, "a notification carries no id");
});

test("the server calls the client: confirm answers through the page", async () => {
  assert.deepEqual(await inPage(`calc.ask("Are you sure?")`), { ok: true });
  assert.deepEqual(await inPage(`calc.ask("Delete everything?")`), { ok: false });
  assert.deepEqual(dialogs.slice(-2), ["Are you sure?", "Delete everything?"]);
  // The server's request and the page's answer, as JSON-RPC.
  const request = received.map((f) => JSON.parse(f)).filter((m) => m.method === "Calculator.confirm").at(-1);
  const answer = sent.map((f) => JSON.parse(f)).find((m) => m.id === request.id && "result" in m && !("method" in m));
  assert.deepEqual(answer, { jsonrpc: "2.0", result: false, id: request.id });
});

test("a stream is an AsyncIterable that ends", async () => {
  const { ok } = await inPage(`(async () => {
    const seen = [];
    for await (const tick of calc.ticks(5, 10)) seen.push(tick);
    return seen;
  })()`);
  assert.deepEqual(ok, [0, 1, 2, 3, 4]);
});

test("breaking out of a stream unsubscribes", async () => {
  const { ok } = await inPage(`(async () => {
    const seen = [];
    for await (const tick of calc.ticks(100000, 5)) {
      seen.push(tick);
      if (seen.length === 3) break;
    }
    return seen;
  })()`);
  assert.deepEqual(ok, [0, 1, 2]);
  const unsubscribe = await waitFor("the unsubscribe call", () => sentCalls("Calculator.ticks.unsubscribe").at(-1));
  assert.equal(unsubscribe.params.length, 1);
  assert.equal("id" in unsubscribe, false, "unsubscribe is a notification, as from the Rust client");
  // The server stopped the stream: no more of its items arrive (one every 5 ms before).
  const items = () =>
    received
      .map((f) => JSON.parse(f))
      .filter((m) => m.method === "Calculator.ticks" && m.params?.subscription === unsubscribe.params[0]).length;
  await new Promise((r) => setTimeout(r, 200));
  const settled = items();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(items(), settled, "items kept coming after the unsubscribe");
});

test("a per-call timeout fails the call and cancels it on the server", async () => {
  const started = Date.now();
  const { error } = await inPage("calc.sleep(5000, { timeoutMs: 100 })");
  assert.equal(error.timeout, true, JSON.stringify(error));
  assert.ok(Date.now() - started < 3000, "the timeout, not the handler, ended the call");
  const sleep = sentCalls("Calculator.sleep").at(-1);
  const cancel = await waitFor("$/cancelRequest", () => sentCalls("$/cancelRequest").find((c) => c.params.id === sleep.id));
  assert.equal("id" in cancel, false, "$/cancelRequest is a notification");
});

test("an AbortSignal cancels a call", async () => {
  const { error } = await inPage(`(() => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    return calc.sleep(5000, { signal: controller.signal });
  })()`);
  assert.equal(error.cancelled, true, JSON.stringify(error));
  const sleep = sentCalls("Calculator.sleep").at(-1);
  await waitFor("$/cancelRequest", () => sentCalls("$/cancelRequest").find((c) => c.params.id === sleep.id));
  // The connection carries on.
  assert.deepEqual(await inPage("calc.add(2, 2)"), { ok: 4 });
});

test("protocol errors arrive as RpcError", async () => {
  const unknown = await inPage(`client.call("Calculator.nope", {})`);
  assert.equal(unknown.error.rpc, true);
  assert.equal(unknown.error.code, -32601);
  const bad = await inPage(`client.call("Calculator.add", { a: 1 })`);
  assert.equal(bad.error.code, -32602);
  assert.match(bad.error.message, /\bb\b/, "the message names the missing parameter");
});

test("after the server restarts, the client reconnects, resends idempotent calls and resubscribes", async () => {
  // A long stream, read in the background.
  await inPage(`(() => {
    window.ticks = [];
    window.streamEnd = (async () => {
      try {
        for await (const tick of calc.ticks(1000000, 20)) window.ticks.push(tick);
        return "ended";
      } catch (e) {
        return "failed: " + e.message;
      }
    })();
  })()`);
  await waitFor("three ticks", async () => (await page.evaluate("window.ticks.length")) >= 3);
  // A non-idempotent call in flight when the connection drops.
  await inPage(`(() => { window.slow = calc.sleep(60000).then((v) => ({ ok: v }), (e) => ({ error: e.name })); })()`);
  await waitFor("the slow call to be sent", () => sentCalls("Calculator.sleep").find((c) => c.params.ms === 60000));

  await calculator.kill();
  await waitFor("reconnecting", async () => (await state()) === "reconnecting");
  assert.deepEqual(await page.evaluate("window.slow"), { error: "DisconnectedError" });
  const before = await page.evaluate("window.ticks.length");
  // An idempotent call made while disconnected waits for the connection.
  await inPage(`(() => { window.stats = calc.stats(); })()`);

  await calculator.start();
  await waitFor("connected again", async () => (await state()) === "connected", 15_000);
  const stats = await page.evaluate("window.stats");
  assert.equal(typeof stats.calls, "number");
  assert.equal(stats.last_message, undefined, "a fresh server answered");
  // The stream was subscribed again: new items arrive, counting from 0 again.
  const ticks = await waitFor("ticks from the new server", async () => {
    const t = await page.evaluate("window.ticks");
    return t.length >= before + 3 ? t : undefined;
  });
  assert.ok(ticks.lastIndexOf(0) >= before, `the new stream starts at 0 again: ${ticks.join(",")}`);
  assert.deepEqual(await inPage("calc.add(40, 2)"), { ok: 42 });
});
