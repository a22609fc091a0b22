// Socket.IO 4 broadcaster for bench/fanout.sh: every "pub" event a client emits is
// broadcast as "msg" to every other client (WebSocket transport only, as the load
// generator connects). Prints `listening on ws://127.0.0.1:PORT` when ready.
//
//   node bench/socketio/server.mjs PORT

import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2] ?? 0);
const http = createServer();
const io = new Server(http, { transports: ["websocket"], maxHttpBufferSize: 1e6 });
io.on("connection", (socket) => {
  socket.on("pub", (payload) => socket.broadcast.emit("msg", payload));
});
http.listen(port, "127.0.0.1", () => {
  console.log(`listening on ws://127.0.0.1:${http.address().port}`);
});
