// The example page (examples/web) in headless Chromium against `calculator serve --token
// s3cret --rate 3`: it signs in with a token, shows a refused token as refused (not as a
// server that is away), and shows calls over the rate as refused. Run by run.sh.
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

const attribute = (selector, name) => page.locator(selector).getAttribute(name);
const text = (selector) => page.textContent(selector);

async function signIn(token) {
  await page.fill("#token", token);
  await page.click("#sign-in");
  return waitFor("the sign-in to settle", async () => {
    const state = await attribute("#signed-in", "data-state");
    return state === "checking" ? undefined : { state, text: await text("#signed-in") };
  });
}

before(async () => {
  httpServer = await serveExampleWeb();
  const origin = `http://127.0.0.1:${httpServer.address().port}`;
  calculator = new Calculator(await freePort(), { allowOrigin: origin, token: "s3cret", rate: 3 });
  await calculator.start();
  browser = await launchChromium(chromium);
  page = await browser.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e}`));
  await page.goto(`${origin}/?server=${calculator.url}`);
});

after(async () => {
  await browser?.close();
  await calculator?.kill();
  httpServer?.close();
});

test("without signing in the page does not connect", async () => {
  assert.equal(await attribute("#signed-in", "data-state"), "anonymous");
  await new Promise((r) => setTimeout(r, 300));
  assert.notEqual(await attribute("#state", "data-state"), "connected");
});

test("a wrong or missing token is shown as refused, with the server's status", async () => {
  const wrong = await signIn("not-the-token");
  assert.equal(wrong.state, "refused", wrong.text);
  assert.match(wrong.text, /refused \(HTTP 403\): wrong token/);
  const none = await signIn("");
  assert.equal(none.state, "refused", none.text);
  assert.match(none.text, /refused \(HTTP 401\)/);
  assert.notEqual(await attribute("#state", "data-state"), "connected");
});

test("the right token signs in: the client connects with it and calls go through", async () => {
  const signed = await signIn("s3cret");
  assert.deepEqual(signed, { state: "signed-in", text: "signed in as token holder" });
  await waitFor("the page to connect", async () => (await attribute("#state", "data-state")) === "connected");
  // Let the budget (3 a second) come back after the sign-in's own call.
  await new Promise((r) => setTimeout(r, 1100));
  await page.fill("#a", "20");
  await page.fill("#b", "22");
  await page.click("#add");
  await waitFor("the sum", async () => (await text("#result")) === "42");
  assert.equal(await attribute("#result", "data-outcome"), "ok");
  const { ok: stats } = await inPageOf(page, "calc.stats()");
  assert.equal(stats.caller, "token holder");
});

test("calls over the rate are shown as refused", async () => {
  // Ten clicks at once: three a second pass, the rest are refused with -32029.
  await page.evaluate(() => {
    for (let i = 0; i < 10; i++) document.getElementById("add").click();
  });
  await waitFor("a refusal in the log", async () => (await text("#log")).includes("add refused: refused: rate limited"));
  await waitFor("the result to show the refusal", async () => (await attribute("#result", "data-outcome")) === "refused");
  assert.match(await text("#result"), /^refused: rate limited, try again in \d+ ms$/);
});
