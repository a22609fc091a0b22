// Shared by the browser and Node.js tests: the calculator server as a child process.
//
// Environment: CALCULATOR_BIN (the `calculator` binary; default target/debug/calculator).

import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import fs from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const calculatorBin = process.env.CALCULATOR_BIN ?? path.join(root, "target/debug/calculator");

/** A free loopback port (the server restarts on the same one). */
export async function freePort() {
  const probe = net.createServer();
  probe.listen(0, "127.0.0.1");
  await once(probe, "listening");
  const { port } = probe.address();
  probe.close();
  await once(probe, "close");
  return port;
}

/** Starts `bin` with `args` and resolves with the child once its stdout says `ready`. */
async function startChild(bin, args, ready) {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${bin} did not start: ${output}`)), 30_000);
    child.stdout.on("data", (chunk) => {
      output += chunk;
      if (output.includes(ready)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${bin} exited with ${code}: ${output}`));
    });
  });
  return child;
}

/** Kills `child` at once (no graceful shutdown): connections just drop. */
async function killChild(child) {
  if (child === undefined || child.exitCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
}

/**
 * The calculator server on a fixed port; `start()` again after `kill()` restarts it. With
 * `tls` (`{ cert, key }` PEM paths) it serves `wss://localhost:PORT`; with `token` it
 * requires that bearer token (valid for `tokenTtlMs` per connection, if given); with `rate`
 * it allows each caller that many calls a second (`--rate`).
 */
export class Calculator {
  #child;

  constructor(port, { allowOrigin, tls, token, tokenTtlMs, rate } = {}) {
    this.port = port;
    this.url = tls === undefined ? `ws://127.0.0.1:${port}` : `wss://localhost:${port}`;
    this.allowOrigin = allowOrigin;
    this.tls = tls;
    this.token = token;
    this.tokenTtlMs = tokenTtlMs;
    this.rate = rate;
  }

  /** Starts the server and waits for its `listening on` line. */
  async start() {
    const args = ["serve", `127.0.0.1:${this.port}`];
    if (this.allowOrigin !== undefined) args.push("--allow-origin", this.allowOrigin);
    if (this.tls !== undefined) args.push("--tls-cert", this.tls.cert, "--tls-key", this.tls.key);
    if (this.token !== undefined) args.push("--token", this.token);
    if (this.tokenTtlMs !== undefined) args.push("--token-ttl", String(this.tokenTtlMs));
    if (this.rate !== undefined) args.push("--rate", String(this.rate));
    this.#child = await startChild(calculatorBin, args, "listening on ws");
  }

  /** Kills the server at once (no graceful shutdown): connections just drop. */
  async kill() {
    const child = this.#child;
    this.#child = undefined;
    await killChild(child);
  }
}

/** Polls `check` until it returns a truthy value (returned) or the time runs out. */
export async function waitFor(what, check, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const chatBin = process.env.CHAT_BIN ?? path.join(root, "target/debug/chat");

/** `chat serve` on a fixed port (with `redis`, its topics go through that Redis; with
 * `users`, the path of a users file, it serves those users only); `start()` again after
 * `kill()` restarts it. */
export class ChatNode {
  #child;

  constructor(port, { redis, users } = {}) {
    this.port = port;
    this.url = `ws://127.0.0.1:${port}`;
    this.redis = redis;
    this.users = users;
  }

  async start() {
    const args = ["serve", `127.0.0.1:${this.port}`];
    if (this.redis !== undefined) args.push("--redis", this.redis);
    if (this.users !== undefined) args.push("--users", this.users);
    this.#child = await startChild(chatBin, args, "listening on ws");
  }

  async kill() {
    const child = this.#child;
    this.#child = undefined;
    await killChild(child);
  }
}

/** `redis-server` without persistence on a free port, from a temp dir; `undefined` (and a
 * loud SKIPPED) when it is not installed. */
export async function startRedis(what) {
  const bin = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].find((p) => existsSync(p));
  if (bin === undefined) {
    console.log(`SKIPPED ${what}: redis-server is not installed (apt-get install redis-server; .ci/run installs it)`);
    return undefined;
  }
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), "wirecall-redis-"));
  const child = await startChild(
    bin,
    ["--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "notice"],
    "Ready to accept connections",
  );
  return {
    url: `redis://127.0.0.1:${port}/`,
    async kill() {
      await killChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const webBin = process.env.WEB_BIN ?? path.join(root, "target/debug/web");

/** The `web` example (axum: the page at `/`, the calculator at `/rpc`) as a child process. */
export class WebApp {
  #child;

  constructor(port) {
    this.port = port;
    this.origin = `http://127.0.0.1:${port}`;
  }

  /** Starts it and waits for its `listening on http://` line. */
  async start() {
    this.#child = await startChild(webBin, [`127.0.0.1:${this.port}`], `listening on ${this.origin}`);
  }

  async kill() {
    const child = this.#child;
    this.#child = undefined;
    await killChild(child);
  }
}

/** Headless Debian Chromium with the flags this machine needs (no sandbox as root, no
 * background networking: the network is closed). */
export function launchChromium(chromium) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * Runs `expression` (an expression over `client`, `calc`, `wirecall`, `CalcError` and
 * `window`) in the example page; resolves to `{ ok: value }` or `{ error: {…} }`.
 */
export function inPage(page, expression) {
  return page.evaluate(`(async () => {
    const { client, calc, wirecall, CalcError } = window.wirecallDemo;
    try {
      return { ok: await (${expression}) };
    } catch (e) {
      return { error: {
        name: e.name, message: e.message, code: e.code, data: e.data, variant: e.variant,
        calc: e instanceof CalcError, rpc: e instanceof wirecall.RpcError,
        timeout: e instanceof wirecall.TimeoutError, cancelled: e instanceof wirecall.CancelledError,
        disconnected: e instanceof wirecall.DisconnectedError,
      } };
    }
  })()`);
}

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".ts": "text/plain", ".css": "text/css" };

/** Serves examples/web, the folder a user would serve by hand, on a free loopback port. */
export async function serveExampleWeb() {
  const webRoot = path.join(root, "examples/web");
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://localhost");
    const file = path.normalize(path.join(webRoot, url.pathname === "/" ? "index.html" : url.pathname));
    if (!file.startsWith(webRoot)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await fs.readFile(file);
      res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return server;
}
