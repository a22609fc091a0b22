//! # wirecall: typed RPC over WebSocket
//!
//! wirecall speaks [JSON-RPC 2.0] over WebSocket, in both directions: a client calls the
//! server's methods, and the server may call methods of a connected client. A service is
//! written once — in a `.wire` interface file (compiled by `wirecall-idl` in `build.rs`,
//! then [`include_idl!`]) or as a Rust trait with [`macro@service`] — and becomes a server
//! trait to implement and a typed client to call.
//!
//! ## A typed service in three steps
//!
//! ```
//! use wirecall::{Client, Context, Fault, Server};
//!
//! // 1. Describe it (or write `idl/greeter.wire` and use build.rs: same generated code).
//! /// Why a greeting failed.
//! #[wirecall::error]
//! pub enum GreetError {
//!     /// Nobody to greet.
//!     #[wirecall(code = 4001)]
//!     EmptyName,
//! }
//!
//! /// Greets people.
//! #[wirecall::service]
//! pub trait Greeter {
//!     /// A greeting for `name`.
//!     async fn greet(name: String) -> Result<String, GreetError>;
//!     /// Counts from 0 to `n - 1`, pushed by the server.
//!     #[wirecall(stream)]
//!     async fn count(n: u32) -> u32;
//! }
//!
//! // 2. Implement the generated server trait: each method also gets the call's `Context`.
//! struct Hello;
//!
//! impl Greeter for Hello {
//!     async fn greet(&self, _ctx: Context, name: String) -> Result<String, Fault<GreetError>> {
//!         if name.is_empty() {
//!             return Err(GreetError::EmptyName.into());
//!         }
//!         Ok(format!("Hello, {name}!"))
//!     }
//!     async fn count(&self, _ctx: Context, n: u32) -> Result<wirecall::Items<u32>, Fault> {
//!         Ok(wirecall::items_ok(futures_util::stream::iter(0..n)))
//!     }
//! }
//!
//! // 3. Serve it, and call it through the generated client.
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind("127.0.0.1:0", Hello.into_router()).await?;
//! let greeter = GreeterClient::new(Client::connect(&server.url()).await?);
//! assert_eq!(greeter.greet("Ada".into()).await?, "Hello, Ada!");
//! assert!(matches!(greeter.greet(String::new()).await, Err(wirecall::Error::App(GreetError::EmptyName))));
//! let mut count = greeter.count(3).await?;
//! while let Some(n) = count.next().await {
//!     println!("{}", n?);
//! }
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! In the trait, a method returns its result type; `Result<T, E>` declares the typed
//! error `E` (`throws E` in the IDL). `#[wirecall(…)]` on a method takes `name = "…"`
//! (wire name), `idempotent`, `notify`, `stream` and `client` (a method the server calls on
//! the client). The language and its mapping to Rust are described in `docs/IDL.md`.
//!
//! The rest of this page shows the untyped layer underneath, which also works on its own.
//!
//! ## A server
//!
//! ```no_run
//! use wirecall::{raw::Router, RpcError, Server};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let mut router = Router::new();
//! router.method("subtract", |_ctx, params| {
//!     // Params borrow the incoming frame: decode them first (by name or by position)...
//!     let args = params
//!         .decoder(&["minuend", "subtrahend"])
//!         .and_then(|mut p| Ok((p.next_param::<i64>()?, p.next_param::<i64>()?)));
//!     // ...then do the work in a future that owns what it needs.
//!     async move {
//!         let (minuend, subtrahend) = args?;
//!         Ok::<_, RpcError>(minuend - subtrahend)
//!     }
//! });
//! let server = Server::bind("127.0.0.1:9000", router).await?;
//! println!("listening on {}", server.url());
//! server.stopped().await;
//! # Ok(()) }
//! ```
//!
//! ## A client
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = wirecall::Client::connect("ws://127.0.0.1:9000").await?;
//! let answer: i64 = client
//!     .call("subtract", serde_json::json!({"minuend": 42, "subtrahend": 23}))
//!     .await?;
//! assert_eq!(answer, 19);
//! # Ok(()) }
//! ```
//!
//! ## One port, several doors
//!
//! A [`Server`] answers, on the same port and path, WebSocket upgrades, JSON-RPC over HTTP
//! POST (one request, notification or batch per POST, answered with exactly what the
//! WebSocket would answer) and, for a POST of a stream subscription with
//! `Accept: text/event-stream`, server-sent events. [`ServerBuilder::into_service`](server::ServerBuilder::into_service) gives
//! the same endpoint as a `tower::Service` to mount in an application:
//!
//! ```no_run
//! # async fn demo(router: wirecall::raw::Router) -> std::io::Result<()> {
//! let app: axum::Router = axum::Router::new()
//!     .route("/health", axum::routing::get(|| async { "ok" }))
//!     .route_service("/rpc", wirecall::Server::builder().into_service(router));
//! axum::serve(tokio::net::TcpListener::bind("127.0.0.1:8080").await?, app).await
//! # }
//! ```
//!
//! [`Client::connect`] takes `http://` URLs too: each call is then one POST, and streams
//! come as server-sent events (the server cannot call such a client).
//!
//! ## Deployed: TLS, authentication, metrics
//!
//! ```no_run
//! use std::time::Duration;
//! use wirecall::{auth::Identity, auth::Refusal, Server};
//! # async fn demo(router: wirecall::raw::Router) -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::builder()
//!     .tls_pem("cert.pem", "key.pem")?                 // wss:// and https://
//!     .authenticate(|handshake| async move {            // before any message, every door
//!         match handshake.bearer_token() {              // header, or `bearer.…` subprotocol
//!             Some("s3cret") => Ok(Identity::new("alice").expires_in(Duration::from_secs(3600))),
//!             Some(_) => Err(Refusal::forbidden("unknown token")),
//!             None => Err(Refusal::unauthorized("a token is required")),
//!         }
//!     })
//!     .max_pending_handshakes(1_024)                    // idle sockets cannot lock anyone out
//!     .min_body_rate(1024, Duration::from_secs(10))     // nor stalled request bodies
//!     .bind("0.0.0.0:9443", router)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Handlers read the identity with [`Context::identity`]; when it expires the WebSocket is
//! closed with code 4401 and clients with a [token function](client::ClientBuilder::token_fn)
//! reconnect with a fresh token. Metrics go through the `metrics` facade to whatever
//! recorder the application installs ([`telemetry`] lists them).
//!
//! ## Topics and more than one node
//!
//! A `topic` of a service is a stream fed by publications ([`hub`]): server code publishes
//! through the generated `…Topics` struct (`ChatTopics::new(ctx.hub()).room("lobby")
//! .publish(&message).await?`), clients subscribe as to a stream and get every
//! publication of the key with its [`Position`](hub::Position). [`Hub::memory`](hub::Hub::memory) is every server's
//! default; `Hub::redis(url)` (feature `redis`) carries publications between the nodes of a
//! deployment, and a client that reconnects — to any node — resumes after its last position
//! (or is told of the [`Gap`](hub::Gap)).
//!
//! ## WAMP
//!
//! A client that offers the subprotocol `wamp.2.json` ([`WAMP_SUBPROTOCOL`](protocol::WAMP_SUBPROTOCOL)) speaks WAMP v2
//! to the same services: Autobahn and other WAMP clients call methods, cancel them, read
//! streams as progressive results and subscribe to topics (`docs/PROTOCOL.md`, "WAMP").
//!
//! ## What you can count on
//!
//! - Every call ends exactly once: with its result, the peer's error, or a clear local
//!   error ([`Error::Timeout`], [`Error::Disconnected`], …). Dropping a call's future
//!   cancels it and tells the peer (`$/cancelRequest`).
//! - A slow handler never blocks the next call on its connection; the number of calls in
//!   flight per connection is bounded, and at the bound the server stops reading from that
//!   connection (backpressure) rather than dropping anything.
//! - Limits on message size, connections, batch length, handshake time, slow request
//!   bodies and messages, and dead peers all have defaults (see [`config`]) and builder
//!   setters.
//!
//! The wire format, with every extension, is specified in `docs/PROTOCOL.md`.
//!
//! [JSON-RPC 2.0]: https://www.jsonrpc.org/specification

// Layers. A file imports only from its own layer and those before it in this list;
// `runtime/tests/layers.rs` checks it (a `crate::X` re-exported below counts as X's module):
// 1. codec: codec/ (messages, params, JSON; no I/O), error.rs (`RpcError`, its codes,
//    `ApplicationError`), config.rs (limits and defaults), telemetry.rs (metrics);
// 2. hub: hub/ (topics' positions, history, fan-out);
// 3. session: session/ (dispatch, pending calls, subscriptions, router, context, and what a
//    call or a connect fails with: `Error`, `ConnectError`, `CloseReason`; no sockets),
//    auth.rs (handshakes, identities, tokens);
// 4. doors: transport/ (WebSocket, HTTP POST, server-sent events, WAMP), tls.rs;
// 5. ends: server/, client/;
// 6. typed: typed.rs (the typed API generated code calls);
// 7. fuzzing: fuzzing.rs (support for fuzz/ and tests; may use every layer).
// This file only declares modules and re-exports: internal code names the module an item
// lives in (`crate::hub::Hub`), not these re-exports.
pub mod auth;
pub mod client;
mod codec;
pub mod config;
mod error;
pub mod hub;
pub mod server;
mod session;
pub mod telemetry;
pub mod tls;
mod transport;
mod typed;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

// The crate root: what a service's author touches (see "Where things are" above).
pub use wirecall_macros::{error, service};

pub use client::handle::Client;
pub use error::{ApplicationError, NoAppError, RpcError};
pub use server::listen::Server;
pub use session::context::Context;
pub use session::error::Error;
pub use session::peer::Peer;
pub use session::subscription::Subscription;
pub use typed::{items, items_ok, Bytes, CallOptions, Caller, Fault, Items};

/// The IDL's `json` type: any JSON value.
pub use serde_json::Value;

/// What the wire reserves: subprotocol names, close codes, reserved method names and the
/// JSON-RPC error codes. For code that talks to wirecall without its client (a proxy, a
/// test, another language's client), and for handlers that answer with a standard code.
pub mod protocol {
    pub use crate::error::code;
    pub use crate::session::peer::CANCEL_METHOD;
    pub use crate::transport::wamp::WAMP_SUBPROTOCOL;
    pub use crate::transport::ws::{EXPIRED_CLOSE_CODE, SUBPROTOCOL};
}

/// The untyped layer under generated code, usable on its own: a [`Router`](raw::Router) of
/// handlers registered by method name, their [`Params`](raw::Params), answers as JSON text
/// ([`RawResult`](raw::RawResult), from [`Caller::request`]), and the type-erased handlers
/// of [`Router::method_boxed`](raw::Router::method_boxed) and
/// [`Router::subscription_boxed`](raw::Router::subscription_boxed).
pub mod raw {
    pub use crate::codec::params::{ParamDecoder, Params};
    pub use crate::session::peer::RawResult;
    pub use crate::session::router::{
        ItemResult, ItemStream, MergeError, Method, MethodFuture, MethodResult, Router,
        SubscribeFuture, SubscribeMethod,
    };
}

/// Include the code that `wirecall_idl::configure()…compile(…)` generated in `build.rs`:
/// `wirecall::include_idl!("calculator")` for `idl/calculator.wire`.
#[macro_export]
macro_rules! include_idl {
    ($name:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $name, ".rs"));
    };
}

/// Support for generated code. Not part of the public API: it may change in any release.
/// Generated code names public types by their public paths, and everything else here.
#[doc(hidden)]
pub mod __private {
    pub use crate::typed::{
        call, notify, register_notify, register_rpc, register_stream, register_topic, subscribe,
        topic, NamedParams, ParamTuple,
    };
    pub use serde;
}
