// The example page: the generated TypeScript client against the calculator server.
// Served by the `web` example, it calls `/rpc` on its own origin; elsewhere open
// index.html?server=ws://HOST:PORT (default ws://127.0.0.1:9000). `&transport=http` makes
// the client use HTTP POST instead of a WebSocket. See README.md.
import * as wirecall from "./gen/wirecall.js";
import { CalcError, CalculatorClient } from "./gen/calculator.js";
const query = new URLSearchParams(location.search);
const sameOrigin = location.protocol === "https:" ? `wss://${location.host}/rpc` : `ws://${location.host}/rpc`;
const server = query.get("server") ?? (location.protocol.startsWith("http") ? sameOrigin : "ws://127.0.0.1:9000");
const transport = query.get("transport") === "http" ? "http" : "auto";
const client = wirecall.connect(server, {
    transport,
    // The server's calls to this client (`client { confirm }` in calculator.wire); they need
    // a WebSocket, so a client that asks for HTTP cannot take them.
    handlers: transport === "http" ? [] : CalculatorClient.callbacks({ confirm: (question) => window.confirm(question) }),
    reconnect: { initialBackoffMs: 100, maxBackoffMs: 2_000 },
});
const calc = new CalculatorClient(client);
const $ = (id) => {
    const element = document.getElementById(id);
    if (element === null)
        throw new Error(`no #${id}`);
    return element;
};
function log(line) {
    const out = $("log");
    out.textContent = `${line}\n${out.textContent ?? ""}`;
}
function show(state, error) {
    const element = $("state");
    element.textContent = state;
    element.dataset["state"] = state;
    log(error === undefined ? `state: ${state}` : `state: ${state} (${error.message})`);
}
function describe(error) {
    if (error instanceof CalcError)
        return `${error.name}.${error.variant.kind} (code ${error.code})`;
    if (error instanceof wirecall.RpcError)
        return `error ${error.code}: ${error.message}`;
    return String(error);
}
async function run(label, action) {
    try {
        const value = await action();
        $("result").textContent = JSON.stringify(value);
        log(`${label} = ${JSON.stringify(value)}`);
    }
    catch (error) {
        $("result").textContent = describe(error);
        log(`${label} failed: ${describe(error)}`);
    }
}
const number = (id) => Number($(id).value);
$("server").textContent = server;
show(client.state);
client.onStateChange(show);
$("add").addEventListener("click", () => void run("add", () => calc.add(number("a"), number("b"))));
$("subtract").addEventListener("click", () => void run("subtract", () => calc.subtract(number("a"), number("b"))));
$("divide").addEventListener("click", () => void run("divide", () => calc.divide(number("a"), number("b"))));
$("ask").addEventListener("click", () => void run("ask", () => calc.ask("Are you sure?")));
$("log-stats").addEventListener("click", () => void run("stats", async () => {
    await calc.log(`hello from ${navigator.userAgent.split(" ")[0] ?? "a browser"}`);
    return calc.stats();
}));
$("ticks").addEventListener("click", () => void run("ticks", async () => {
    const seen = [];
    for await (const tick of calc.ticks(5, 200)) {
        seen.push(tick);
        log(`tick ${tick}`);
    }
    return seen;
}));
// Cancellation: aborting the signal fails the call with CancelledError and tells the server.
let sleeping;
$("sleep").addEventListener("click", () => {
    sleeping?.abort();
    const controller = new AbortController();
    sleeping = controller;
    void run("sleep", () => calc.sleep(3_000, { signal: controller.signal }));
});
$("cancel").addEventListener("click", () => sleeping?.abort());
window.wirecallDemo = { client, calc, wirecall, CalcError };
