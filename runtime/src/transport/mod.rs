//! The transport layer: the doors through which a [`crate::session::Session`]'s frames
//! travel.
//!
//! - [`ws`]: a WebSocket connection, either side (reader and writer tasks);
//! - [`http`]: the server's HTTP endpoint: upgrades, JSON-RPC over POST, CORS;
//! - [`sse`]: the body of a POST answered with server-sent events (one stream).

pub(crate) mod http;
pub(crate) mod sse;
pub(crate) mod ws;
