//! Errors: JSON-RPC error objects ([`RpcError`]), what a call can fail with ([`Error`]),
//! and what connecting can fail with ([`ConnectError`]).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The error codes of JSON-RPC 2.0 and of wirecall's extensions.
pub mod code {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i32 = -32700;
    /// The JSON sent is not a valid request object.
    pub const INVALID_REQUEST: i32 = -32600;
    /// The method does not exist or is not available.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// Invalid method parameters.
    pub const INVALID_PARAMS: i32 = -32602;
    /// Internal JSON-RPC error.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// The request was cancelled (`$/cancelRequest`, as in the Language Server Protocol).
    pub const REQUEST_CANCELLED: i32 = -32800;
    /// The server is shutting down and accepts no new requests.
    pub const SERVER_SHUTTING_DOWN: i32 = -32001;
    /// A limit was exceeded (batch length, subscriptions, message size).
    pub const LIMIT_EXCEEDED: i32 = -32005;
    /// A subscription was closed because its consumer fell behind.
    pub const SUBSCRIPTION_LAGGED: i32 = -32006;
    /// A call that the handler made to a peer failed — typically a server→client call
    /// (`client { … }`) that the client does not serve, that the door cannot carry (HTTP,
    /// WAMP), that timed out, or whose connection closed. `data` says why:
    /// `{"reason": …, "message": …}` (see [`RpcError::peer_call_failed`](crate::RpcError::peer_call_failed)).
    pub const PEER_CALL_FAILED: i32 = -32007;
    /// A publication to a topic failed (the hub is unavailable, the item could not be
    /// encoded, or the outcome is unknown). `data` says why: `{"reason": …, "message": …}`.
    pub const PUBLISH_FAILED: i32 = -32008;

    /// `true` for the range JSON-RPC 2.0 reserves for implementation-defined errors.
    pub fn is_reserved(code: i32) -> bool {
        (-32768..=-32000).contains(&code)
    }
}

/// A JSON-RPC 2.0 error object: `{"code": …, "message": …, "data": …}`.
///
/// Handlers return it to answer a call with an error; clients receive it as
/// [`Error::Rpc`] when a peer answers with an error that is not a typed application error.
#[derive(Clone, Serialize, Deserialize)]
pub struct RpcError {
    /// The error code (see [`code`]).
    pub code: i32,
    /// A short description.
    pub message: Cow<'static, str>,
    /// Additional information, as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<RawValue>>,
}

impl RpcError {
    /// An error with a code and message, without data.
    pub fn new(code: i32, message: impl Into<Cow<'static, str>>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Attach `data`, serialized to JSON. If it cannot be serialized (a NaN or infinite
    /// float included: JSON has none), the data is a string saying why.
    pub fn with_data(mut self, data: impl Serialize) -> Self {
        let raw = crate::codec::json::to_string(&data).and_then(RawValue::from_string);
        self.data = Some(match raw {
            Ok(raw) => raw,
            Err(e) => raw_string(&format!("unserializable error data: {e}")),
        });
        self
    }

    /// `-32700 Parse error`.
    pub fn parse_error() -> Self {
        Self::new(code::PARSE_ERROR, "Parse error")
    }

    /// `-32600 Invalid Request`.
    pub fn invalid_request() -> Self {
        Self::new(code::INVALID_REQUEST, "Invalid Request")
    }

    /// `-32601 Method not found`.
    pub fn method_not_found() -> Self {
        Self::new(code::METHOD_NOT_FOUND, "Method not found")
    }

    /// `-32602` with a message that says what is wrong (e.g. names the parameter).
    pub fn invalid_params(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(code::INVALID_PARAMS, message)
    }

    /// `-32603 Internal error`, with a description as `data`.
    pub fn internal(detail: impl fmt::Display) -> Self {
        Self::new(code::INTERNAL_ERROR, "Internal error").with_data(detail.to_string())
    }

    /// `-32800 Request cancelled`.
    pub fn cancelled() -> Self {
        Self::new(code::REQUEST_CANCELLED, "Request cancelled")
    }

    /// A limit was exceeded; `detail` says which.
    pub fn limit_exceeded(detail: impl fmt::Display) -> Self {
        Self::new(code::LIMIT_EXCEEDED, "Limit exceeded").with_data(detail.to_string())
    }

    /// `-32007 Call to the peer failed`: a call made while handling this one failed;
    /// `data` is `{"reason": R, "message": "…"}` where `R` is one of `method_not_found`
    /// (the peer does not serve the method), `no_connection` (the door cannot carry calls
    /// to the peer, e.g. HTTP or WAMP), `timeout`, `disconnected`, `cancelled` or `error`
    /// (the peer answered with another error: its code and message in `data.error`, never its data).
    pub fn peer_call_failed<E: fmt::Display>(error: &Error<E>) -> Self {
        let reason = match error {
            Error::Rpc(e) if e.code == code::METHOD_NOT_FOUND => "method_not_found",
            Error::Disconnected(crate::CloseReason::NoConnection(_)) => "no_connection",
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

    /// Decode `data` as `T`.
    pub fn data<T: DeserializeOwned>(&self) -> Option<T> {
        self.data
            .as_ref()
            .and_then(|d| serde_json::from_str(d.get()).ok())
    }
}

impl PartialEq for RpcError {
    /// Equal when code, message and the data's JSON text are equal.
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
            && self.message == other.message
            && self.data.as_ref().map(|d| d.get()) == other.data.as_ref().map(|d| d.get())
    }
}

pub(crate) fn raw_string(s: &str) -> Box<RawValue> {
    serde_json::value::to_raw_value(s).unwrap_or_else(|_| {
        RawValue::from_string("null".to_string()).unwrap_or_else(|_| unreachable!())
    })
}

impl fmt::Debug for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("RpcError");
        s.field("code", &self.code).field("message", &self.message);
        if let Some(d) = &self.data {
            s.field("data", &d.get());
        }
        s.finish()
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)?;
        if let Some(d) = &self.data {
            write!(f, ": {}", d.get())?;
        }
        Ok(())
    }
}

impl std::error::Error for RpcError {}

/// A typed application error (an IDL `error` type): how it travels as a JSON-RPC error
/// object. Generated code implements it; each variant has its own code, its name is the
/// `message`, its fields are the `data`.
pub trait ApplicationError: Sized {
    /// Recognize one of this type's variants in an error answer.
    fn from_rpc_error(error: &RpcError) -> Option<Self>;
    /// The error object that carries this value.
    fn to_rpc_error(&self) -> RpcError;
    /// The type's name in the interface (`CalcError`), for protocols that name errors
    /// (WAMP's `CalcError.DivideByZero`). `None` for [`NoAppError`].
    fn type_name() -> Option<&'static str> {
        None
    }
}

impl ApplicationError for NoAppError {
    fn from_rpc_error(_: &RpcError) -> Option<Self> {
        None
    }
    fn to_rpc_error(&self) -> RpcError {
        match *self {}
    }
}

/// The application error type of methods without `throws`: it has no values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoAppError {}

impl fmt::Display for NoAppError {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

impl std::error::Error for NoAppError {}

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
    /// No answer arrived within the call's timeout; the peer was sent `$/cancelRequest`.
    #[error("no answer within {0:?}; the call was cancelled")]
    Timeout(Duration),
    /// The peer cancelled the call (answered `-32800`).
    #[error("the peer cancelled the call")]
    Cancelled,
    /// The connection closed before the answer arrived (or was closed when the call was
    /// made), for this reason.
    #[error("disconnected: {0}")]
    Disconnected(crate::CloseReason),
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
    /// lost it): the subscription goes on after [`Gap::to`](crate::Gap::to). Not an end:
    /// the next items follow.
    #[error("{0}")]
    Gap(crate::hub::Gap),
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
            Error::Rpc(e) => Some(e),
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
    /// [`crate::Reconnect::retry_refused`] says otherwise.
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
    /// The client's token function ([`crate::ClientBuilder::token_fn`]) failed.
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
