//! The server: one port, several doors. A hyper HTTP/1.1 listener whose every request goes
//! to one endpoint (`transport/http.rs`): WebSocket upgrades, JSON-RPC over HTTP
//! POST, and server-sent events for streams. [`ServerBuilder::into_service`] gives the same
//! endpoint as a `tower::Service`, to mount in an application (axum, hyper, tonic…).
//!
//! The same shape as `client/`: `builder.rs` (every setting), `listen.rs` (bind, accept,
//! one connection, the running server's handle), `service.rs` (the tower service).

mod builder;
pub(crate) mod listen;
mod service;

pub use builder::ServerBuilder;
pub use listen::ServerHandle;
pub use service::RpcService;

pub use crate::session::context::ConnectionId;
pub use crate::transport::http::{RemoteAddr, ResponseBody};

/// HTTP types (the `http` crate) of handshakes ([`crate::auth::Handshake`]) and of
/// [`RpcService`]'s requests and responses.
pub use http;
