//! The typed layer that generated code stands on: [`Fault`] (what handlers return),
//! [`Caller`] (what client stubs call through), [`Bytes`] (the IDL's `bytes`), and the
//! helpers of [`crate::__private`].

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::Stream;
use serde::de::DeserializeOwned;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::params::Params;
use crate::error::{ApplicationError, NoAppError, RpcError};
pub use crate::session::caller::{CallOptions, Caller};
use crate::session::context::Context;
use crate::session::error::Error;
use crate::session::router::Router;
use crate::session::subscription::Subscription;

/// Why a handler failed: one of the method's typed application errors, or any JSON-RPC
/// error. `?` converts both (and the errors of calls the handler makes to its peer).
///
/// ```
/// use wirecall::{Fault, RpcError};
/// fn check(b: f64) -> Result<f64, Fault> {
///     if b == 0.0 {
///         return Err(RpcError::invalid_params("b must not be zero").into());
///     }
///     Ok(1.0 / b)
/// }
/// assert_eq!(check(0.0).unwrap_err().into_rpc_error().code, -32602);
/// ```
#[derive(Debug)]
pub enum Fault<E = NoAppError> {
    /// A typed application error: sent with its own code, name and data.
    App(E),
    /// Any JSON-RPC error object.
    Rpc(RpcError),
}

impl<E> Fault<E> {
    /// An internal error (`-32603`) with a description as `data`.
    pub fn internal(detail: impl fmt::Display) -> Self {
        Fault::Rpc(RpcError::internal(detail))
    }
}

impl<E: ApplicationError> Fault<E> {
    /// The error object sent to the caller.
    pub fn into_rpc_error(self) -> RpcError {
        match self {
            Fault::App(e) => e.to_rpc_error(),
            Fault::Rpc(e) => e,
        }
    }
}

impl<E: ApplicationError> From<E> for Fault<E> {
    fn from(e: E) -> Self {
        Fault::App(e)
    }
}

impl<E> From<RpcError> for Fault<E> {
    fn from(e: RpcError) -> Self {
        Fault::Rpc(e)
    }
}

impl<E, F: fmt::Display> From<Error<F>> for Fault<E> {
    /// A failed call to the peer, made while handling a call (`ctx.peer()`, or a client
    /// of another service), answers this one with `-32007 Call to the peer failed` and
    /// says why ([`RpcError::peer_call_failed`]).
    fn from(e: Error<F>) -> Self {
        Fault::Rpc(RpcError::peer_call_failed(&e))
    }
}

impl<E> From<crate::hub::PublishError> for Fault<E> {
    /// A publication that failed while handling a call answers it with
    /// `-32008 Publication failed` and says why ([`crate::hub::PublishError::to_rpc_error`]),
    /// so a handler can write `topic.publish(&item).await?`.
    fn from(e: crate::hub::PublishError) -> Self {
        Fault::Rpc(e.to_rpc_error())
    }
}

impl<E: fmt::Display> fmt::Display for Fault<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::App(e) => e.fmt(f),
            Fault::Rpc(e) => e.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for Fault<E> {}

/// What a stream handler returns: a stream of items, each an item or the error that ends
/// the stream. Build one with [`items`] or [`items_ok`].
pub type Items<T, E = NoAppError> =
    Pin<Box<dyn Stream<Item = Result<T, Fault<E>>> + Send + 'static>>;

/// Box a stream of `Result` items as a handler's [`Items`].
pub fn items<T, E, S>(stream: S) -> Items<T, E>
where
    S: Stream<Item = Result<T, Fault<E>>> + Send + 'static,
{
    Box::pin(stream)
}

/// Box a stream of plain items (that cannot fail) as a handler's [`Items`].
pub fn items_ok<T, E, S>(stream: S) -> Items<T, E>
where
    S: Stream<Item = T> + Send + 'static,
    T: 'static,
    E: 'static,
{
    Box::pin(futures_util::StreamExt::map(stream, Ok))
}

/// The IDL's `bytes`: a byte string that travels as a base64 string (standard alphabet,
/// with padding).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Bytes({})",
            base64::engine::general_purpose::STANDARD.encode(&self.0)
        )
    }
}

impl Deref for Bytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Bytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Self {
        Bytes(v.to_vec())
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(b: Bytes) -> Self {
        b.0
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(Bytes)
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
    }
}

/// Parameter lists of generated handlers: tuples decoded by name or by position.
pub trait ParamTuple: Sized {
    /// Decode the params of a method whose parameters are `names`.
    fn decode(params: Params<'_>, names: &'static [&'static str]) -> Result<Self, RpcError>;
}

/// Params serialized by name: the names with a tuple of references to the values.
#[derive(Debug)]
pub struct NamedParams<T>(pub &'static [&'static str], pub T);

macro_rules! tuples {
    ($( ($($t:ident $i:tt),*) )*) => {$(
        impl<$($t: DeserializeOwned),*> ParamTuple for ($($t,)*) {
            fn decode(params: Params<'_>, names: &'static [&'static str]) -> Result<Self, RpcError> {
                crate::codec::params::decode_slots::<($(Option<$t>,)*)>(params, names)
            }
        }

        impl<$($t: DeserializeOwned),*> crate::codec::params::Slots for ($(Option<$t>,)*) {
            type Output = ($($t,)*);
            const LEN: usize = 0 $(+ { let _ = $i; 1 })*;

            #[allow(clippy::unused_unit)]
            fn empty() -> Self {
                ($(None::<$t>,)*)
            }

            #[allow(unused_variables)]
            fn fill_named<'de, MapA: serde::de::MapAccess<'de>>(&mut self, i: usize, map: &mut MapA) -> Result<(), MapA::Error> {
                match i {
                    $($i => self.$i = Some(map.next_value()?),)*
                    _ => {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(())
            }

            #[allow(unused_variables)]
            fn fill_positional<'de, SeqA: serde::de::SeqAccess<'de>>(&mut self, i: usize, seq: &mut SeqA) -> Result<bool, SeqA::Error> {
                match i {
                    $($i => match seq.next_element()? {
                        Some(v) => {
                            self.$i = Some(v);
                            Ok(true)
                        }
                        None => Ok(false),
                    },)*
                    _ => Ok(false),
                }
            }

            #[allow(unused_variables)]
            fn is_set(&self, i: usize) -> bool {
                match i {
                    $($i => self.$i.is_some(),)*
                    _ => false,
                }
            }

            #[allow(unused_variables)]
            fn finish(self, names: &'static [&'static str]) -> Result<Self::Output, RpcError> {
                Ok(($(match self.$i {
                    Some(v) => v,
                    None => crate::codec::params::missing::<$t>(names, $i)?,
                },)*))
            }
        }

        impl<$($t: Serialize),*> Serialize for NamedParams<($(&$t,)*)> {
            #[allow(unused_mut)]
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.0.len()))?;
                $( map.serialize_entry(self.0[$i], self.1.$i)?; )*
                map.end()
            }
        }
    )*};
}

tuples! {
    ()
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15)
}

// `wirecall_idl::naming::MAX_PARAMS` (16, enforced by the IDL's validation) matches the
// largest tuple above.

/// Mount an `rpc` handler of a generated server trait.
pub fn register_rpc<S, A, F, Fut, T, E>(
    router: &mut Router,
    name: &'static str,
    names: &'static [&'static str],
    service: &Arc<S>,
    handler: F,
) where
    S: Send + Sync + 'static + ?Sized,
    A: ParamTuple + Send + 'static,
    F: Fn(Arc<S>, Context, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, Fault<E>>> + Send + 'static,
    T: Serialize,
    E: ApplicationError,
{
    if let Some(error_type) = E::type_name() {
        router.set_error_type(name, error_type);
    }
    let service = service.clone();
    router.method(name, move |ctx, params| {
        let call = A::decode(params, names).map(|args| handler(service.clone(), ctx, args));
        async move {
            match call {
                Ok(fut) => fut.await.map_err(Fault::into_rpc_error),
                Err(e) => Err(e),
            }
        }
    });
}

/// Mount a `notify` handler of a generated server trait.
pub fn register_notify<S, A, F, Fut>(
    router: &mut Router,
    name: &'static str,
    names: &'static [&'static str],
    service: &Arc<S>,
    handler: F,
) where
    S: Send + Sync + 'static + ?Sized,
    A: ParamTuple + Send + 'static,
    F: Fn(Arc<S>, Context, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let service = service.clone();
    router.method(name, move |ctx, params| {
        let call = A::decode(params, names).map(|args| handler(service.clone(), ctx, args));
        async move {
            match call {
                Ok(fut) => {
                    fut.await;
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
    });
}

/// Make a typed call through a [`Caller`] (generated `rpc` methods).
pub async fn call<C, P, R, E>(
    caller: &C,
    method: &str,
    params: &P,
    options: CallOptions,
) -> Result<R, Error<E>>
where
    C: Caller,
    P: Serialize + ?Sized,
    R: DeserializeOwned,
    E: ApplicationError,
{
    caller.request(method, params, options).await
}

/// Subscribe to a typed stream through a [`Caller`] (generated `stream` and `topic`
/// methods).
pub async fn subscribe<C, P, T, E>(
    caller: &C,
    method: &'static str,
    params: &P,
    timeout: Option<Duration>,
) -> Result<Subscription<T, E>, Error<E>>
where
    C: Caller,
    P: Serialize + ?Sized,
    E: ApplicationError,
{
    caller
        .subscribe_with(method, params, CallOptions::new(timeout, false))
        .await
}

/// Mount a `stream` handler of a generated server trait.
pub fn register_stream<S, A, F, Fut, T, E>(
    router: &mut Router,
    name: &'static str,
    names: &'static [&'static str],
    service: &Arc<S>,
    handler: F,
) where
    S: Send + Sync + 'static + ?Sized,
    A: ParamTuple + Send + 'static,
    F: Fn(Arc<S>, Context, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Items<T, E>, Fault<E>>> + Send + 'static,
    T: Serialize + 'static,
    E: ApplicationError + 'static,
{
    if let Some(error_type) = E::type_name() {
        router.set_error_type(name, error_type);
    }
    let service = service.clone();
    router.subscription(name, move |ctx, params| {
        let call = A::decode(params, names).map(|args| handler(service.clone(), ctx, args));
        async move {
            let items = match call {
                Ok(fut) => fut.await.map_err(Fault::into_rpc_error)?,
                Err(e) => return Err(e),
            };
            Ok(futures_util::StreamExt::map(items, |item| {
                item.map_err(Fault::into_rpc_error)
            }))
        }
    });
}

/// Mount a topic (no handler: the hub's publications of the key). `authorize` is the
/// service's `authorize_<topic>` hook, asked on every subscription to a key (and every
/// publication from a WAMP client to a `@publishable` one).
pub fn register_topic<A, T, S, F, Fut>(
    router: &mut Router,
    name: &'static str,
    names: &'static [&'static str],
    publishable: bool,
    service: &std::sync::Arc<S>,
    authorize: F,
) where
    A: ParamTuple + Serialize + DeserializeOwned + Send + 'static,
    T: Serialize + DeserializeOwned + 'static,
    S: Send + Sync + 'static,
    F: Fn(std::sync::Arc<S>, Context, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), crate::auth::Refusal>> + Send + 'static,
{
    let key = move |params: Params<'_>| {
        let key = A::decode(params, names)?;
        serde_json::to_string(&key)
            .map_err(|e| RpcError::invalid_params(format!("invalid topic key: {e}")))
    };
    let check = |json: &str| {
        let item: T =
            serde_json::from_str(json).map_err(|e| format!("not an item of this topic: {e}"))?;
        serde_json::to_string(&item).map_err(|e| e.to_string())
    };
    let service = service.clone();
    let authorize = move |ctx: Context, values: &str| {
        let key = serde_json::from_str::<A>(values);
        let asked = key.map(|key| authorize(service.clone(), ctx, key));
        Box::pin(async move {
            match asked {
                Ok(asked) => asked.await,
                // (The values are what `key` above made of this very tuple.)
                Err(e) => Err(crate::auth::Refusal::forbidden(format!(
                    "invalid topic key: {e}"
                ))),
            }
        })
            as std::pin::Pin<Box<dyn Future<Output = Result<(), crate::auth::Refusal>> + Send>>
    };
    router.topic_route(
        name,
        crate::session::router::TopicRoute {
            key: Box::new(key),
            names: names.iter().map(|n| n.to_string()).collect(),
            publish: publishable
                .then(|| Box::new(check) as Box<crate::session::router::TopicCheck>),
            authorize: Some(Box::new(authorize)),
        },
    );
}

/// The typed publisher of one topic key, for generated `…Topics` structs.
pub fn topic<T, K>(hub: &crate::hub::Hub, name: &'static str, key: &K) -> crate::hub::Topic<T>
where
    T: Serialize + ?Sized,
    K: Serialize,
{
    match hub.topic(name, key) {
        Ok(topic) => topic,
        // Key parameters are JSON scalars (the IDL checks it): they always serialize.
        Err(e) => unreachable!("a topic key failed to serialize: {e}"),
    }
}

/// Send a typed notification through a [`Caller`] (generated `notify` methods).
pub async fn notify<C, P>(caller: &C, method: &str, params: &P) -> Result<(), Error>
where
    C: Caller,
    P: Serialize + ?Sized,
{
    caller.notify(method, params).await
}
