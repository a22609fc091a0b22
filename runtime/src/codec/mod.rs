//! The codec layer: JSON-RPC 2.0 messages ([`message`]) and method params ([`params`]).
//! Text in, text out: no I/O, no tasks, no connection state.

pub(crate) mod json;
pub(crate) mod message;
pub(crate) mod params;
pub(crate) mod text;
