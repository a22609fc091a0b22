//! What a call can fail with ([`Error`]) and what connecting can fail with
//! ([`ConnectError`]). Session level: an [`Error`] names why the connection closed
//! ([`CloseReason`]) and a topic's [`Gap`]; the JSON-RPC error object itself
//! ([`RpcError`]) and its codes are below, at the codec level (`error.rs`).

use std::fmt;
use std::time::Duration;

use crate::error::{code, NoAppError, RpcError};
use crate::hub::Gap;
use crate::session::CloseReason;

impl RpcError {
    /// `-32007 Call to the peer failed`: a call made while handling this one failed;
    /// `data` is `{"reason": R, "message": "…"}` where `R` is one of `method_not_found`
    /// (the peer does not serve the method), `no_connection` (the door cannot carry calls
    /// to the peer, e.g. HTTP or WAMP), `timeout`, `disconnected`, `cancelled` or `error`
    /// (the peer answered with another error: its code and message in `data.error`, never its data).
    pub fn peer_call_failed<E: fmt::Display>(error: &Error<E>) -> Self {
        let reason = match error {
            Error::Rpc(e) if e.code == code::METHOD_NOT_FOUND => "method_not_found",
            Error::Disconnected(CloseReason::NoConnection(_)) => "no_connection",
            Error::Disconnected(_) => "disconnected",
            Error::Timeout(_) => "timeout",
            Error::Cancelled => "cancelled",
            _ => "error",
        };
        let mut data = serde_json::json!({ "reason": reason, "message": error.to_string() });
        if let Error::Rpc(e) = error {
            // The peer's code and message, not its `data`: a backend's details stay there.
            data["error"] = serde_json::json!({ "code": e.code, "message": e.message });
            data["message"] = serde_json::Value::String(format!(
                "the peer answered with an error: {} (code {})",
                e.message, e.code
            ));
        }
        Self::new(code::PEER_CALL_FAILED, "Call to the peer failed").with_data(data)
    }
}

/// Why a call ended without a result. `E` is the method's typed application error
/// (`throws E` in the IDL); methods without `throws` use [`NoAppError`].
///
/// Every call ends exactly once: with its result or with one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error<E = NoAppError> {
    /// The peer answered with one of the method's typed application errors.
    #[error("{0}")]
    App(E),
    /// The peer answered with a JSON-RPC error (method not found, invalid params, an
    /// internal error, or an application error the method does not declare).
    #[error("the peer answered with an error: {0}")]
    Rpc(RpcError),
    /// The peer's policy refused the call (`-32003`): the error's message says what was
    /// refused.
    #[error("refused by the peer: {}", .0.message)]
    Forbidden(RpcError),
    /// The peer's rate limit refused the call (`-32029`): the next call is allowed after
    /// `retry_after`. (`@idempotent` calls wait that long and try once more, within their
    /// timeout.)
    #[error("rate limited by the peer: try again in {retry_after:?}")]
    RateLimited {
        /// When the next call would be allowed.
        retry_after: Duration,
    },
    /// No answer arrived within the call's timeout; the peer was sent `$/cancelRequest`.
    #[error("no answer within {0:?}; the call was cancelled")]
    Timeout(Duration),
    /// The peer cancelled the call (answered `-32800`).
    #[error("the peer cancelled the call")]
    Cancelled,
    /// The connection closed before the answer arrived (or was closed when the call was
    /// made), for this reason.
    #[error("disconnected: {0}")]
    Disconnected(CloseReason),
    /// The params could not be serialized to JSON.
    #[error("could not serialize the params: {0}")]
    Encode(serde_json::Error),
    /// The answer's result did not match the expected type.
    #[error("could not decode the result: {0}")]
    Decode(serde_json::Error),
    /// The request is larger than the peer's maximum message size; it was not sent.
    #[error("the request is {size} bytes, over the limit of {limit} bytes; it was not sent")]
    MessageTooLarge {
        /// The size of the serialized request.
        size: usize,
        /// The configured maximum message size.
        limit: usize,
    },
    /// A topic subscription lost publications (they left the hub's history, or the hub
    /// lost it): the subscription goes on after [`Gap::to`](crate::hub::Gap::to). Not an end:
    /// the next items follow.
    #[error("{0}")]
    Gap(Gap),
    /// Over HTTP (an `http://` client): the request got no JSON-RPC answer — the server
    /// could not be reached, or answered with an HTTP error status.
    #[error("HTTP request failed: {message}")]
    Http {
        /// The HTTP status, if the server answered.
        status: Option<u16>,
        /// What went wrong (the server's body, for an error status).
        message: String,
    },
}

impl<E> Error<E> {
    /// Turn an error of another application-error type into this one; `App` values go
    /// through `f`.
    pub fn map_app<F>(self, f: impl FnOnce(E) -> F) -> Error<F> {
        match self {
            Error::App(e) => Error::App(f(e)),
            Error::Rpc(e) => Error::Rpc(e),
            Error::Forbidden(e) => Error::Forbidden(e),
            Error::RateLimited { retry_after } => Error::RateLimited { retry_after },
            Error::Timeout(d) => Error::Timeout(d),
            Error::Cancelled => Error::Cancelled,
            Error::Disconnected(r) => Error::Disconnected(r),
            Error::Encode(e) => Error::Encode(e),
            Error::Decode(e) => Error::Decode(e),
            Error::MessageTooLarge { size, limit } => Error::MessageTooLarge { size, limit },
            Error::Http { status, message } => Error::Http { status, message },
            Error::Gap(gap) => Error::Gap(gap),
        }
    }

    /// The JSON-RPC error the peer answered with, if that is why the call failed.
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            Error::Rpc(e) | Error::Forbidden(e) => Some(e),
            _ => None,
        }
    }

    /// `true` if the call failed because the connection was lost (or never there).
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Error::Disconnected(_))
    }
}

impl Error<NoAppError> {
    /// Widen to any application-error type (a call without `throws` cannot produce one).
    pub fn widen<E>(self) -> Error<E> {
        self.map_app(|e| match e {})
    }
}

impl ConnectError {
    /// Whether trying again later may succeed: a timeout, a network failure, a server that
    /// is unavailable (HTTP 5xx, 408, 429) or a token function that failed. A refusal
    /// (401, 403 and other 4xx), a certificate that does not verify or a bad URL will not
    /// change by waiting: a reconnecting client stops on them unless
    /// [`crate::client::Reconnect::retry_refused`] says otherwise.
    pub fn is_retryable(&self) -> bool {
        match self {
            ConnectError::Timeout { .. }
            | ConnectError::Io { .. }
            | ConnectError::Unreachable { .. }
            | ConnectError::Token { .. } => true,
            ConnectError::Refused { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            ConnectError::InvalidUrl { .. }
            | ConnectError::Unsupported { .. }
            | ConnectError::Subprotocol
            | ConnectError::Tls { .. } => false,
        }
    }
}

/// Why connecting to a server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a valid `ws://` or `http://` URL.
    #[error("invalid URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TCP connection or the WebSocket handshake did not complete in time.
    #[error("the handshake with {url} did not complete within {timeout:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The handshake timeout.
        timeout: Duration,
    },
    /// The server refused the WebSocket upgrade with an HTTP status.
    #[error("the server refused the connection: HTTP {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Refused {
        /// The HTTP status code.
        status: u16,
        /// The response body, if any (the server's reason).
        body: String,
    },
    /// The URL asks for something this client cannot do (e.g. server→client calls over
    /// `http://`).
    #[error("cannot connect to {url}: {reason}")]
    Unsupported {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server did not agree to speak `jsonrpc-2.0`.
    #[error("the server did not accept the `jsonrpc-2.0` subprotocol")]
    Subprotocol,
    /// The TLS handshake failed: most often the server's certificate does not verify
    /// against the client's roots.
    #[error("TLS with {url} failed: {reason}")]
    Tls {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The server could not be reached (a TCP connect to an `https://` URL failed).
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The client's token function ([`crate::client::ClientBuilder::token_fn`]) failed.
    #[error("could not get a token: {reason}")]
    Token {
        /// Its error.
        reason: String,
    },
    /// Any other I/O or WebSocket protocol failure.
    #[error("cannot connect to {url}: {source}")]
    Io {
        /// The URL.
        url: String,
        /// The underlying error (an I/O error, or the WebSocket library's).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
