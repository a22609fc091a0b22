//! The calling API, written once: [`Caller`] provides every way to call the other side
//! (call, call with [`CallOptions`], notify, subscribe) on top of three primitives that
//! [`Peer`] (one connection) and [`crate::Client`] (reconnecting) supply.

use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{code, ApplicationError};
use crate::session::error::Error;
use crate::session::peer::{Peer, RawResult};
use crate::session::subscription::Subscription;

/// Options of one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// This call's timeout; `None` uses the caller's default.
    pub timeout: Option<Duration>,
    /// The method is idempotent (IDL `@idempotent`): a reconnecting client sends it again
    /// if the connection drops before the answer.
    pub idempotent: bool,
}

impl CallOptions {
    /// Options with a timeout and an idempotency flag.
    pub const fn new(timeout: Option<Duration>, idempotent: bool) -> Self {
        CallOptions {
            timeout,
            idempotent,
        }
    }
}

/// Something that calls the other side of a connection: a [`Client`](crate::Client)
/// (client side, waits for its connection and reconnects) or a [`Peer`] (one connection,
/// either side — e.g. a server calling back a client). Generated client stubs
/// (`CalculatorClient<C: Caller>`) call through it.
///
/// An implementation supplies three primitives, with params already encoded as JSON text:
/// [`send_request`](Caller::send_request), [`send_notification`](Caller::send_notification)
/// and [`open_subscription`](Caller::open_subscription). Everything a caller uses is
/// provided on top of them, once for every implementation: encoding the params, decoding
/// the result, recognizing typed application errors and cancellation. [`Client`](crate::Client) and
/// [`Peer`] also have these methods as inherent methods, so `client.call(…)` needs no
/// `use wirecall::Caller`.
///
/// Every call ends exactly once. Dropping a call's future before it completes cancels the
/// call: the peer is sent `$/cancelRequest` (as after a timeout).
///
/// A test double implements only the primitives and gets the whole API, generated stubs
/// included:
///
/// ```
/// use wirecall::{CallOptions, Caller, Error, RpcError, Subscription, raw::RawResult};
///
/// /// Adds `a` and `b` of every call; serves no streams.
/// #[derive(Clone)]
/// struct Adder;
///
/// impl Caller for Adder {
///     async fn send_request(
///         &self,
///         _method: &str,
///         params: Option<&str>,
///         _options: CallOptions,
///     ) -> Result<RawResult, Error> {
///         let p: serde_json::Value = serde_json::from_str(params.unwrap_or("{}")).unwrap();
///         let sum = p["a"].as_i64().unwrap_or(0) + p["b"].as_i64().unwrap_or(0);
///         Ok(RawResult::from_json(sum.to_string()))
///     }
///
///     async fn send_notification(&self, _method: &str, _params: Option<&str>) -> Result<(), Error> {
///         Ok(())
///     }
///
///     async fn open_subscription<T, E>(
///         &self,
///         _method: &str,
///         _params: Option<String>,
///         _options: CallOptions,
///     ) -> Result<Subscription<T, E>, Error> {
///         Err(Error::Rpc(RpcError::method_not_found()))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let sum: i64 = Adder.call("Calculator.add", serde_json::json!({"a": 1, "b": 2})).await?;
/// assert_eq!(sum, 3);
/// let err = Adder.subscribe::<u64>("Calculator.ticks", ()).await.unwrap_err();
/// assert!(matches!(err, Error::Rpc(e) if e.code == -32601));
/// # Ok(()) }
/// ```
pub trait Caller: Clone + Send + Sync + 'static {
    /// Primitive: send a request (`params` already encoded as a JSON object or array, or
    /// `None`) and wait for its answer, within `options.timeout` (or the caller's default).
    ///
    /// An error answer comes back as [`Error::Rpc`]: the provided methods recognize the
    /// method's typed errors and cancellation (`-32800`) in it. Also the raw form of a call:
    /// the answer's result as JSON text ([`RawResult::json`]).
    fn send_request(
        &self,
        method: &str,
        params: Option<&str>,
        options: CallOptions,
    ) -> impl Future<Output = Result<RawResult, Error>> + Send;

    /// Primitive: send a notification (`params` already encoded), never answered.
    fn send_notification(
        &self,
        method: &str,
        params: Option<&str>,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Primitive: subscribe to the stream `method` (`params` already encoded); an error
    /// answer comes back as [`Error::Rpc`], as for [`Caller::send_request`].
    /// An implementation that is not a connection makes its subscription with
    /// [`Subscription::from_items`].
    fn open_subscription<T, E>(
        &self,
        method: &str,
        params: Option<String>,
        options: CallOptions,
    ) -> impl Future<Output = Result<Subscription<T, E>, Error>> + Send;

    /// Call `method` with `params` (a struct, map, tuple or `serde_json::Value` that
    /// serializes to a JSON object or array; `()` for none) and decode the result as `R`,
    /// within the caller's default timeout.
    fn call<R: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
    ) -> impl Future<Output = Result<R, Error>> + Send {
        request(self, method, encode_params(&params), CallOptions::default())
    }

    /// [`Caller::call`] with a timeout for this call only.
    fn call_with_timeout<R: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
        timeout: Duration,
    ) -> impl Future<Output = Result<R, Error>> + Send {
        let options = CallOptions::new(Some(timeout), false);
        request(self, method, encode_params(&params), options)
    }

    /// The general form of a call, used by generated clients: typed application errors
    /// `E` come back as [`Error::App`]; `options` set the timeout and whether the call is
    /// idempotent. A [`Client`](crate::Client) sends an idempotent call again when the
    /// connection drops before the answer; on a [`Peer`] it changes nothing (its
    /// connection is not re-opened).
    fn request<R, E>(
        &self,
        method: &str,
        params: &(impl Serialize + ?Sized),
        options: CallOptions,
    ) -> impl Future<Output = Result<R, Error<E>>> + Send
    where
        R: DeserializeOwned,
        E: ApplicationError,
    {
        request(self, method, encode_params(params), options)
    }

    /// Subscribe to the stream `method` with `params`: the other side answers a
    /// subscription id, then pushes items. See [`Subscription`]. A
    /// [`Client`](crate::Client)'s subscription survives reconnects: it subscribes again
    /// on each new connection.
    fn subscribe<T: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
    ) -> impl Future<Output = Result<Subscription<T>, Error>> + Send {
        subscribe(self, method, encode_params(&params), CallOptions::default())
    }

    /// The general form of [`Caller::subscribe`], used by generated clients: typed
    /// application errors `E` (of the setup, and of the stream's failure), and the options
    /// of the subscribe call (its timeout).
    fn subscribe_with<T, E>(
        &self,
        method: &str,
        params: &(impl Serialize + ?Sized),
        options: CallOptions,
    ) -> impl Future<Output = Result<Subscription<T, E>, Error<E>>> + Send
    where
        E: ApplicationError,
    {
        subscribe(self, method, encode_params(params), options)
    }

    /// Send a notification: `method` with `params`, never answered. A
    /// [`Client`](crate::Client) that is disconnected waits for its connection, up to its
    /// call timeout.
    fn notify(
        &self,
        method: &str,
        params: impl Serialize,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let params = encode_params(&params);
        async move {
            let params = params.map_err(Error::Encode)?;
            self.send_notification(method, params.as_deref()).await
        }
    }
}

/// Serialize params: an object or array, or nothing for `()` / `null`. (Done before the
/// call's future is first polled, so that future does not hold the params.)
pub(crate) fn encode_params<P: Serialize + ?Sized>(
    params: &P,
) -> Result<Option<String>, serde_json::Error> {
    let json = crate::codec::json::to_string(params)?;
    match json.as_bytes().first() {
        Some(b'{') | Some(b'[') => Ok(Some(json)),
        _ if json == "null" => Ok(None),
        _ => Err(serde::ser::Error::custom(format!(
            "params must serialize to a JSON object or array, not `{json}`"
        ))),
    }
}

/// A call with its params encoded: send it, decode the answer, recognize its error.
async fn request<C, R, E>(
    caller: &C,
    method: &str,
    params: Result<Option<String>, serde_json::Error>,
    options: CallOptions,
) -> Result<R, Error<E>>
where
    C: Caller,
    R: DeserializeOwned,
    E: ApplicationError,
{
    let params = params.map_err(Error::Encode)?;
    let started = std::time::Instant::now();
    let mut answer = caller
        .send_request(method, params.as_deref(), options)
        .await;
    // An idempotent call that the peer's rate limit refused waits as long as it says and
    // tries once more, if that fits in its timeout.
    if let (true, Err(Error::Rpc(e))) = (options.idempotent, &answer) {
        let budget = options
            .timeout
            .unwrap_or(crate::config::DEFAULT_CALL_TIMEOUT);
        if let Some(wait) = e.retry_after() {
            let left = budget.saturating_sub(started.elapsed());
            if wait < left {
                tokio::time::sleep(wait).await;
                let again = CallOptions::new(Some(left - wait), true);
                answer = caller.send_request(method, params.as_deref(), again).await;
            }
        }
    }
    let raw = answer.map_err(recognize)?;
    serde_json::from_str(raw.json()).map_err(Error::Decode)
}

/// A subscribe with its params encoded.
async fn subscribe<C, T, E>(
    caller: &C,
    method: &str,
    params: Result<Option<String>, serde_json::Error>,
    options: CallOptions,
) -> Result<Subscription<T, E>, Error<E>>
where
    C: Caller,
    E: ApplicationError,
{
    let params = params.map_err(Error::Encode)?;
    caller
        .open_subscription(method, params, options)
        .await
        .map_err(recognize)
}

/// A failed call as the caller sees it: an error answer of the peer recognized as a
/// cancellation or as one of the method's typed application errors `E`.
pub(crate) fn recognize<E: ApplicationError>(error: Error) -> Error<E> {
    match error {
        Error::Rpc(err) if err.code == code::REQUEST_CANCELLED => Error::Cancelled,
        Error::Rpc(err) if err.code == code::FORBIDDEN => Error::Forbidden(err),
        Error::Rpc(err) if err.code == code::RATE_LIMITED => match err.retry_after() {
            Some(retry_after) => Error::RateLimited { retry_after },
            None => Error::Rpc(err),
        },
        Error::Rpc(err) => match E::from_rpc_error(&err) {
            Some(app) => Error::App(app),
            None => Error::Rpc(err),
        },
        other => other.widen(),
    }
}

/// A peer's primitives: straight onto its connection.
impl Caller for Peer {
    async fn send_request(
        &self,
        method: &str,
        params: Option<&str>,
        options: CallOptions,
    ) -> Result<RawResult, Error> {
        self.request_raw(method, params, options.timeout)
            .await
            .map_err(Error::from)
    }

    async fn send_notification(&self, method: &str, params: Option<&str>) -> Result<(), Error> {
        self.notify_raw(method, params).await
    }

    async fn open_subscription<T, E>(
        &self,
        method: &str,
        params: Option<String>,
        options: CallOptions,
    ) -> Result<Subscription<T, E>, Error> {
        let raw = self
            .subscribe_raw(method, params.as_deref(), options.timeout)
            .await?;
        Ok(Subscription::direct(raw))
    }
}

/// The provided methods of [`Caller`] as inherent methods of the type this expands in
/// (`impl Client { inherent_calls!(); }`), so `client.call(…)` works without importing the
/// trait. Each one only forwards to the trait.
macro_rules! inherent_calls {
    () => {
        /// Call `method` with `params` (serializing to a JSON object or array, or `()` for
        /// none) and decode the result as `R`. Dropping the future cancels the call. See
        /// [`Caller::call`](crate::session::caller::Caller::call).
        pub async fn call<R: ::serde::de::DeserializeOwned>(
            &self,
            method: &str,
            params: impl ::serde::Serialize,
        ) -> ::core::result::Result<R, crate::session::error::Error> {
            crate::session::caller::Caller::call(self, method, params).await
        }

        /// A call with a timeout for this call only. See
        /// [`Caller::call_with_timeout`](crate::session::caller::Caller::call_with_timeout).
        pub async fn call_with_timeout<R: ::serde::de::DeserializeOwned>(
            &self,
            method: &str,
            params: impl ::serde::Serialize,
            timeout: ::std::time::Duration,
        ) -> ::core::result::Result<R, crate::session::error::Error> {
            crate::session::caller::Caller::call_with_timeout(self, method, params, timeout).await
        }

        /// The general form of a call: typed application errors `E`, and options
        /// (timeout, idempotent). See [`Caller::request`](crate::session::caller::Caller::request).
        pub async fn request<R, E>(
            &self,
            method: &str,
            params: &(impl ::serde::Serialize + ?Sized),
            options: crate::session::caller::CallOptions,
        ) -> ::core::result::Result<R, crate::session::error::Error<E>>
        where
            R: ::serde::de::DeserializeOwned,
            E: crate::error::ApplicationError,
        {
            crate::session::caller::Caller::request(self, method, params, options).await
        }

        /// Subscribe to the stream `method`. See
        /// [`Caller::subscribe`](crate::session::caller::Caller::subscribe).
        pub async fn subscribe<T: ::serde::de::DeserializeOwned>(
            &self,
            method: &str,
            params: impl ::serde::Serialize,
        ) -> ::core::result::Result<
            crate::session::subscription::Subscription<T>,
            crate::session::error::Error,
        > {
            crate::session::caller::Caller::subscribe(self, method, params).await
        }

        /// The general form of a subscribe: typed application errors `E`, and options. See
        /// [`Caller::subscribe_with`](crate::session::caller::Caller::subscribe_with).
        pub async fn subscribe_with<T, E>(
            &self,
            method: &str,
            params: &(impl ::serde::Serialize + ?Sized),
            options: crate::session::caller::CallOptions,
        ) -> ::core::result::Result<
            crate::session::subscription::Subscription<T, E>,
            crate::session::error::Error<E>,
        >
        where
            E: crate::error::ApplicationError,
        {
            crate::session::caller::Caller::subscribe_with(self, method, params, options).await
        }

        /// Send a notification (never answered). See
        /// [`Caller::notify`](crate::session::caller::Caller::notify).
        pub async fn notify(
            &self,
            method: &str,
            params: impl ::serde::Serialize,
        ) -> ::core::result::Result<(), crate::session::error::Error> {
            crate::session::caller::Caller::notify(self, method, params).await
        }
    };
}
pub(crate) use inherent_calls;
