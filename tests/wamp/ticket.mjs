// Autobahn|JS's `ticket` authentication against a wirecall server (tests/tests/wamp.rs).
//
//   node --experimental-websocket ticket.mjs URL TICKET
//
// The same as ticket.py: joins `realm1` with authmethods ["ticket"] as authid `alice`,
// prints `joined: authid=… authrole=… authmethod=…` and the `caller` that
// `Calculator.stats` sees, and `left: <reason URI>` when the server ends the session.

import autobahn from "autobahn";

const [url, ticket] = process.argv.slice(2);
const connection = new autobahn.Connection({
  url,
  realm: "realm1",
  max_retries: 0,
  authmethods: ["ticket"],
  authid: "alice",
  onchallenge: (session, method) => {
    if (method !== "ticket") throw new Error(`unexpected challenge ${method}`);
    return ticket;
  },
});
connection.onopen = async (session, details) => {
  console.log(`joined: authid=${details.authid} authrole=${details.authrole} authmethod=${details.authmethod}`);
  const stats = await session.call("Calculator.stats");
  console.log(`caller: ${stats.caller}`);
};
connection.onclose = (reason, details) => {
  console.log(`left: ${details?.reason}`);
  process.exit(0);
};
setTimeout(() => process.exit(1), 20000);
connection.open();
