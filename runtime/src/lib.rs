#![doc = include_str!("../docs/lib.md")]

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
pub mod policy {
    //! Policy layers: middleware every call passes exactly once, whatever its door.
    //!
    //! See [`crate::server::ServerBuilder::layer`] and the module `session::policy`'s notes below.
    #[doc(inline)]
    pub use crate::session::policy::{
        from_fn, json, CallKind, Door, FromFn, FromFnLayer, Next, RpcRequest,
    };
    #[cfg(feature = "rate-limit")]
    pub use crate::session::rate_limit::{RateLimit, RateLimitLayer, DEFAULT_MAX_KEYS};
    pub use crate::transport::http::TIMEOUT_HEADER;
    #[cfg(feature = "rate-limit")]
    pub use governor::Quota;
}
pub mod server;
mod session;
pub mod telemetry;
pub mod tls;
mod transport;
mod typed;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

// The crate root: what a service's author touches (runtime/docs/lib.md, "Where things are").
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
