//! The transport layer: the doors through which a [`crate::session::Session`]'s frames
//! travel.
//!
//! - [`ws`]: a WebSocket connection, either side (reader and writer tasks);
//! - [`http`]: the server's HTTP endpoint: routing, JSON-RPC over POST, CORS;
//! - `ws_upgrade`: the endpoint's WebSocket upgrade (subprotocol, admission, 101), then [`ws`];
//! - [`http_client`]: a client's requests as POSTs (streams as server-sent events);
//! - [`event_reader`]: splits a server-sent event stream's bytes into events;
//! - [`sse`]: the body of a POST answered with server-sent events (one stream);
//! - [`gate`]: the server listener's door before a whole request (handshake cap, pending
//!   bodies cap, per-IP limit);
//! - [`body`] and [`deadline`]: a request body read whole, and the deadline of a body or a
//!   WebSocket message that a peer has started and not finished;
//! - [`wamp`]: WAMP v2 over a WebSocket (JSON, msgpack, CBOR): an adapter with its own codec
//!   and request table over the session's decoded-message entry and encoder.

mod body;
pub(crate) mod deadline;
pub(crate) mod event_reader;
pub(crate) mod gate;
mod headers;
pub(crate) mod http;
pub(crate) mod http_client;
pub(crate) mod sse;
pub(crate) mod wamp;
pub(crate) mod ws;
mod ws_upgrade;
