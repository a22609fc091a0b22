// The example page: the generated TypeScript client against the calculator server.
// Served by the `web` example, it calls `/rpc` on its own origin; elsewhere open
// index.html?server=ws://HOST:PORT (default ws://127.0.0.1:9000). `&transport=http` makes
// the client use HTTP POST instead of a WebSocket. A server started with `--token` wants
// a bearer token: type it and sign in. See README.md.
import * as wirecall from "./gen/wirecall.js";
import { CalcError, CalculatorClient } from "./gen/calculator.js";

const query = new URLSearchParams(location.search);
const sameOrigin = location.protocol === "https:" ? `wss://${location.host}/rpc` : `ws://${location.host}/rpc`;
const server = query.get("server") ?? (location.protocol.startsWith("http") ? sameOrigin : "ws://127.0.0.1:9000");
const transport = query.get("transport") === "http" ? "http" : "auto";

/** A client of `server`, with `token` if signed in. */
function open(token?: string): wirecall.Client {
  return wirecall.connect(server, {
    transport,
    // The server's calls to this client (`client { confirm }` in calculator.wire); they need
    // a WebSocket, so a client that asks for HTTP cannot take them.
    handlers:
      transport === "http" ? [] : CalculatorClient.callbacks({ confirm: (question) => window.confirm(question) }),
    reconnect: { initialBackoffMs: 100, maxBackoffMs: 2_000 },
    ...(token === undefined ? {} : { token }),
  });
}

let client = open();
let calc = new CalculatorClient(client);

const $ = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`no #${id}`);
  return element as T;
};

function log(line: string): void {
  const out = $("log");
  out.textContent = `${line}\n${out.textContent ?? ""}`;
}

function show(state: wirecall.ConnectionState, error?: Error): void {
  const element = $("state");
  element.textContent = state;
  element.dataset["state"] = state;
  log(error === undefined ? `state: ${state}` : `state: ${state} (${error.message})`);
}

function describe(error: unknown): string {
  if (error instanceof CalcError) return `${error.name}.${error.variant.kind} (code ${error.code})`;
  // The server's policy said no: a refusal, not a failure.
  if (error instanceof wirecall.ForbiddenError) return `refused: ${error.message}`;
  if (error instanceof wirecall.RateLimitedError) return `refused: rate limited, try again in ${error.retryAfterMs} ms`;
  if (error instanceof wirecall.RpcError) return `error ${error.code}: ${error.message}`;
  return String(error);
}

async function run(label: string, action: () => Promise<unknown>): Promise<void> {
  const result = $("result");
  try {
    const value = await action();
    result.textContent = JSON.stringify(value);
    result.dataset["outcome"] = "ok";
    log(`${label} = ${JSON.stringify(value)}`);
  } catch (error) {
    result.textContent = describe(error);
    const refused = error instanceof wirecall.ForbiddenError || error instanceof wirecall.RateLimitedError;
    result.dataset["outcome"] = refused ? "refused" : "failed";
    log(`${label} ${refused ? "refused" : "failed"}: ${describe(error)}`);
  }
}

/** The server's HTTP URL (the same port serves JSON-RPC over POST). */
const httpUrl = server.replace(/^ws(s?):/, "http$1:");

function showSignIn(state: "anonymous" | "checking" | "signed-in" | "refused" | "unreachable", text: string): void {
  const element = $("signed-in");
  element.dataset["state"] = state;
  element.textContent = text;
  log(`sign in: ${text}`);
}

/**
 * Signs in with `token`. A browser does not tell a page why a WebSocket upgrade failed, so
 * the token is first shown to the server in a POST, whose 401 or 403 the page can read:
 * a refused token is told apart from a server that is away. Then the page's client
 * reconnects with it.
 */
async function signIn(token: string): Promise<void> {
  showSignIn("checking", "checking the token…");
  let response: Response;
  try {
    response = await fetch(httpUrl, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ jsonrpc: "2.0", method: "Calculator.stats", id: 1 }),
    });
  } catch (error) {
    showSignIn("unreachable", `the server cannot be reached (${String(error)})`);
    return;
  }
  const body = await response.text();
  if (response.status === 401 || response.status === 403) {
    showSignIn("refused", `refused (HTTP ${response.status}): ${body.trim() || response.statusText}`);
    return;
  }
  let caller: unknown;
  try {
    caller = (JSON.parse(body) as { result?: { caller?: unknown } }).result?.caller;
  } catch {
    caller = undefined;
  }
  const old = client;
  client = open(token);
  calc = new CalculatorClient(client);
  old.close();
  watch(client);
  window.wirecallDemo.client = client;
  window.wirecallDemo.calc = calc;
  showSignIn("signed-in", typeof caller === "string" ? `signed in as ${caller}` : "signed in");
}

const number = (id: string): number => Number($<HTMLInputElement>(id).value);

/** Shows `c`'s state as long as it is the page's client. */
function watch(c: wirecall.Client): void {
  show(c.state);
  c.onStateChange((state, error) => {
    if (c === client) show(state, error);
  });
}

$("server").textContent = server;
watch(client);

$("sign-in").addEventListener("click", () => void signIn($<HTMLInputElement>("token").value.trim()));

$("add").addEventListener("click", () => void run("add", () => calc.add(number("a"), number("b"))));
$("subtract").addEventListener("click", () => void run("subtract", () => calc.subtract(number("a"), number("b"))));
$("divide").addEventListener("click", () => void run("divide", () => calc.divide(number("a"), number("b"))));
$("ask").addEventListener("click", () => void run("ask", () => calc.ask("Are you sure?")));
$("log-stats").addEventListener("click", () =>
  void run("stats", async () => {
    await calc.log(`hello from ${navigator.userAgent.split(" ")[0] ?? "a browser"}`);
    return calc.stats();
  }),
);
$("ticks").addEventListener("click", () =>
  void run("ticks", async () => {
    const seen: number[] = [];
    for await (const tick of calc.ticks(5, 200)) {
      seen.push(tick);
      log(`tick ${tick}`);
    }
    return seen;
  }),
);

// Cancellation: aborting the signal fails the call with CancelledError and tells the server.
let sleeping: AbortController | undefined;
$("sleep").addEventListener("click", () => {
  sleeping?.abort();
  const controller = new AbortController();
  sleeping = controller;
  void run("sleep", () => calc.sleep(3_000, { signal: controller.signal }));
});
$("cancel").addEventListener("click", () => sleeping?.abort());

// For the end-to-end test (tests/browser) and the console: everything the page uses.
declare global {
  interface Window {
    wirecallDemo: { client: wirecall.Client; calc: CalculatorClient; wirecall: typeof wirecall; CalcError: typeof CalcError };
  }
}
window.wirecallDemo = { client, calc, wirecall, CalcError };
