//! The codec layer: JSON-RPC 2.0 messages ([`message`]) and method params ([`params`]);
//! with the feature `otel`, a request's W3C trace context (`trace`).
//! Text in, text out: no I/O, no tasks, no connection state.

pub(crate) mod json;
pub(crate) mod message;
pub(crate) mod params;
pub(crate) mod text;
#[cfg(feature = "otel")]
pub(crate) mod trace;
