//! JSON-RPC error objects ([`RpcError`]), their codes ([`code`]) and how typed application
//! errors travel as them ([`ApplicationError`]). Codec level: every layer names these, so
//! this file names nothing above the codec. What a call or a connect can fail with
//! ([`Error`](crate::Error), [`ConnectError`](crate::client::ConnectError)) names the session's
//! close reasons and the hub's gaps, and lives in the session layer (`session/error.rs`).

use std::borrow::Cow;
use std::fmt;

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
    /// Refused by policy: a layer (or an authorization hook) does not allow this call or
    /// subscription. The message says what was refused. Over WAMP:
    /// `wamp.error.not_authorized`.
    pub const FORBIDDEN: i32 = -32003;
    /// The call's deadline (its `"$timeout"`) passed before it was answered: the server
    /// stopped the handler.
    pub const DEADLINE_EXCEEDED: i32 = -32004;
    /// Rate limited: the caller made more calls than its rate allows. `data` is
    /// `{"retry_after_ms": N}`, when the next call would be allowed. Over WAMP:
    /// `wirecall.error.rate_limited` with the same `kwargs`.
    pub const RATE_LIMITED: i32 = -32029;

    /// `true` for the range JSON-RPC 2.0 reserves for implementation-defined errors.
    pub fn is_reserved(code: i32) -> bool {
        (-32768..=-32000).contains(&code)
    }
}

/// The `data` of a `-32029 Rate limited`.
#[derive(Serialize, Deserialize)]
struct RetryAfter {
    retry_after_ms: u64,
}

/// A JSON-RPC 2.0 error object: `{"code": …, "message": …, "data": …}`.
///
/// Handlers return it to answer a call with an error; clients receive it as
/// [`Error::Rpc`](crate::Error::Rpc) when a peer answers with an error that is not a typed
/// application error.
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

    /// `-32003 Forbidden`: refused by policy; `what` says what was refused (not why,
    /// internally), as the message.
    pub fn forbidden(what: impl fmt::Display) -> Self {
        Self::new(code::FORBIDDEN, format!("Forbidden: {what}"))
    }

    /// `-32004 Deadline exceeded`: the call's `"$timeout"` passed.
    pub fn deadline_exceeded(ms: u64) -> Self {
        Self::new(code::DEADLINE_EXCEEDED, "Deadline exceeded")
            .with_data(format!("no answer within the call's $timeout of {ms} ms"))
    }

    /// `-32029 Rate limited`, with `data: {"retry_after_ms": ms}`.
    pub fn rate_limited(retry_after_ms: u64) -> Self {
        Self::new(code::RATE_LIMITED, "Rate limited").with_data(RetryAfter { retry_after_ms })
    }

    /// When a rate-limited call may be made again (the `retry_after_ms` of a `-32029`).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        if self.code != code::RATE_LIMITED {
            return None;
        }
        let data: RetryAfter = self.data()?;
        Some(std::time::Duration::from_millis(data.retry_after_ms))
    }

    /// A limit was exceeded; `detail` says which.
    pub fn limit_exceeded(detail: impl fmt::Display) -> Self {
        Self::new(code::LIMIT_EXCEEDED, "Limit exceeded").with_data(detail.to_string())
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
