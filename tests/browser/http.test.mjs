// The TypeScript client over HTTP in a real browser: headless Chromium opens the example
// page served by the `web` example (axum), with the page's WebSocket made to fail as a
// network that blocks WebSockets would. The client falls back to JSON-RPC over HTTP POST
// (streams as server-sent events) on `/rpc`; every kind of call works except the server's
// calls to the page, which fail saying they need a WebSocket. Run by run.sh.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { WebApp, freePort, inPage as inPageOf, launchChromium, waitFor } from "./harness.mjs";


let web;
let browser;
let page;
/** POST bodies the page sent to /rpc (parsed), and the ones whose request was aborted. */
const posts = [];
const aborted = [];
let webSocketsOpened = 0;

const inPage = (expression) => inPageOf(page, expression);

const state = () => page.locator("#state").getAttribute("data-state");
const posted = (method) => posts.filter((m) => m.method === method);

before(async () => {
  web = new WebApp(await freePort());
  await web.start();
  browser = await launchChromium(chromium);
  page = await browser.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e}`));
  page.on("websocket", () => webSocketsOpened++);
  page.on("request", (req) => {
    if (req.method() === "POST" && req.url().endsWith("/rpc")) posts.push(JSON.parse(req.postData()));
  });
  page.on("requestfailed", (req) => {
    if (req.method() === "POST" && req.url().endsWith("/rpc")) aborted.push(JSON.parse(req.postData()));
  });
  // A network that blocks WebSockets: every socket fails before it opens.
  await page.addInitScript(() => {
    window.WebSocket = class BlockedWebSocket {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        this.protocol = "";
        setTimeout(() => {
          this.readyState = 3;
          this.onerror?.({});
          this.onclose?.({ code: 1006, reason: "" });
        }, 10);
      }
      send() {
        throw new Error("not open");
      }
      close() {}
    };
  });
  await page.goto(`${web.origin}/`);
  await waitFor("the page to connect over HTTP", async () => (await state()) === "connected");
});

after(async () => {
  await browser?.close();
  await web?.kill();
});

test("the client fell back to HTTP POST on /rpc", async () => {
  assert.equal(webSocketsOpened, 0, "no WebSocket reached the network");
  assert.ok(posts.length >= 1, "the probe was POSTed");
  await page.fill("#a", "20");
  await page.fill("#b", "22");
  await page.click("#add");
  await waitFor("the sum", async () => (await page.textContent("#result")) === "42");
  assert.deepEqual(posted("Calculator.add").at(-1).params, { a: 20, b: 22 });
});

test("rpc calls and typed errors", async () => {
  assert.deepEqual(await inPage("calc.add(1, 2)"), { ok: 3 });
  assert.deepEqual(await inPage("calc.subtract(42, 23)"), { ok: 19 });
  assert.deepEqual(await inPage(`calc.echo("héllo ✓")`), { ok: "héllo ✓" });
  const { error } = await inPage("calc.divide(1, 0)");
  assert.equal(error.calc, true, JSON.stringify(error));
  assert.equal(error.code, 1001);
  assert.deepEqual(error.variant, { kind: "DivideByZero" });
  const unknown = await inPage(`client.call("Calculator.nope", {})`);
  assert.equal(unknown.error.code, -32601);
  const bad = await inPage(`client.call("Calculator.add", { a: 1 })`);
  assert.equal(bad.error.code, -32602);
});

test("a notification, then stats shows it", async () => {
  assert.equal((await inPage(`calc.log("over http")`)).error, undefined);
  const { ok: stats } = await waitFor("the notification to be handled", async () => {
    const r = await inPage("calc.stats()");
    return r.ok?.last_message === "over http" ? r : undefined;
  });
  assert.equal(stats.last_message, "over http");
  assert.equal("id" in posted("Calculator.log").at(-1), false);
});

test("streams arrive as server-sent events; breaking out closes the response", async () => {
  const { ok } = await inPage(`(async () => {
    const seen = [];
    for await (const tick of calc.ticks(5, 10)) seen.push(tick);
    return seen;
  })()`);
  assert.deepEqual(ok, [0, 1, 2, 3, 4]);
  const early = await inPage(`(async () => {
    const seen = [];
    for await (const tick of calc.ticks(100000, 5)) {
      seen.push(tick);
      if (seen.length === 3) break;
    }
    return seen;
  })()`);
  assert.deepEqual(early.ok, [0, 1, 2]);
  await waitFor("the stream's POST to be aborted", () =>
    aborted.find((m) => m.method === "Calculator.ticks" && m.params.count === 100000),
  );
});

test("a timeout and an AbortSignal abort the POST", async () => {
  const timedOut = await inPage("calc.sleep(5000, { timeoutMs: 100 })");
  assert.equal(timedOut.error.timeout, true, JSON.stringify(timedOut.error));
  await waitFor("the timed-out POST to be aborted", () => aborted.find((m) => m.method === "Calculator.sleep" && m.params.ms === 5000));
  const cancelled = await inPage(`(() => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    return calc.sleep(6000, { signal: controller.signal });
  })()`);
  assert.equal(cancelled.error.cancelled, true, JSON.stringify(cancelled.error));
  await waitFor("the cancelled POST to be aborted", () => aborted.find((m) => m.method === "Calculator.sleep" && m.params.ms === 6000));
  assert.deepEqual(await inPage("calc.add(2, 2)"), { ok: 4 });
});

test("the server's calls to the page need a WebSocket", async () => {
  const { error } = await inPage(`calc.ask("Are you sure?")`);
  assert.equal(error.rpc, true, JSON.stringify(error));
  assert.equal(error.code, -32007);
  assert.equal(error.data.reason, "no_connection", JSON.stringify(error));
  assert.match(String(error.data.message), /need a WebSocket/);
  assert.equal(await state(), "connected");
});
