//! Routing method names to handlers.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;

use crate::codec::params::Params;
use crate::error::RpcError;
use crate::session::context::Context;
use crate::telemetry::MethodMetrics;

/// What a handler produces: the result serialized as JSON, or an error object.
pub type MethodResult = Result<String, RpcError>;

/// The future a handler returns. It owns everything it needs: params are decoded before
/// it is created.
pub type MethodFuture = Pin<Box<dyn Future<Output = MethodResult> + Send + 'static>>;

/// One item of a stream, as JSON, or the error that ends the stream.
pub type ItemResult = Result<String, RpcError>;

/// A stream handler's items, type-erased.
pub type ItemStream = Pin<Box<dyn futures_util::Stream<Item = ItemResult> + Send + 'static>>;

/// What a stream handler's setup produces: the items, or an error answering the call.
pub type SubscribeFuture =
    Pin<Box<dyn Future<Output = Result<ItemStream, RpcError>> + Send + 'static>>;

/// A stream (subscription) handler, type-erased.
pub trait SubscribeMethod: Send + Sync + 'static {
    /// Decode `params` and start producing items.
    fn subscribe(&self, ctx: Context, params: Params<'_>) -> SubscribeFuture;
}

struct FnSubscribe<F>(F);

impl<F, Fut, S, T> SubscribeMethod for FnSubscribe<F>
where
    F: Fn(Context, Params<'_>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<S, RpcError>> + Send + 'static,
    S: futures_util::Stream<Item = Result<T, RpcError>> + Send + 'static,
    T: Serialize + 'static,
{
    fn subscribe(&self, ctx: Context, params: Params<'_>) -> SubscribeFuture {
        let fut = (self.0)(ctx, params);
        Box::pin(async move {
            let items = fut.await?;
            let items: ItemStream = Box::pin(futures_util::StreamExt::map(items, serialize_result));
            Ok(items)
        })
    }
}

/// What a stream's setup produces, seen from the session: a handler's items, or a topic
/// key's feed from the hub.
pub(crate) enum Produce {
    Items(ItemStream),
    // Boxed: a subscription waits for items with this in its task, and a `Feed` moved
    // by value is stored more than once in the futures that carry it.
    Topic(Box<crate::hub::Feed>),
}

/// A topic route: turns a subscribe's params (without `$since`) into the key's values as
/// a JSON array.
pub(crate) type TopicKey = dyn Fn(Params<'_>) -> Result<String, RpcError> + Send + Sync;

/// Checks an item a client publishes (WAMP `PUBLISH`): its JSON re-serialized as the
/// topic's item type, or why it is not one.
pub(crate) type TopicCheck = dyn Fn(&str) -> Result<String, String> + Send + Sync;

/// Asks the service whether a connection may subscribe to (or publish to) a topic key:
/// given the key's values as a JSON array.
pub(crate) type TopicAuthorize = dyn Fn(Context, &str) -> Pin<Box<dyn Future<Output = Result<(), crate::auth::Refusal>> + Send>>
    + Send
    + Sync;

/// What a topic's name routes to.
pub(crate) struct TopicRoute {
    pub(crate) key: Box<TopicKey>,
    /// The key's parameter names, in order.
    pub(crate) names: Vec<String>,
    /// `Some` if clients may publish to it (`@publishable`).
    pub(crate) publish: Option<Box<TopicCheck>>,
    /// The service's `authorize_<topic>` hook, if generated code mounted it.
    pub(crate) authorize: Option<Box<TopicAuthorize>>,
}

impl TopicRoute {
    /// Whether `ctx` may subscribe or publish to the key of `values` (JSON array): `Ok`,
    /// or the `-32003` refusal saying what was refused (`doing` e.g. "subscribing to").
    pub(crate) fn authorize(
        &self,
        ctx: &Context,
        values: &str,
        doing: &'static str,
        method: &str,
    ) -> Option<impl Future<Output = Result<(), RpcError>> + Send + 'static> {
        let check = self.authorize.as_ref()?(ctx.clone(), values);
        let what = format!("{doing} {method} {values}");
        Some(async move {
            check.await.map_err(|refusal| {
                RpcError::forbidden(what).with_data(serde_json::json!({ "reason": refusal.reason }))
            })
        })
    }
}

/// What a name routes to.
#[derive(Clone)]
pub(crate) enum Route {
    /// A topic: subscribers get the hub's publications of the key their params name.
    Topic(Arc<TopicRoute>),
    /// A request or notification handler, and its metrics.
    Call(Arc<dyn Method>, Arc<MethodMetrics>),
    /// A stream: the call answers a subscription id, then items follow.
    Subscribe(Arc<dyn SubscribeMethod>),
    /// `Stream.unsubscribe`.
    Unsubscribe,
}

/// A method handler, type-erased. Generated code and [`Router::method`] build these.
pub trait Method: Send + Sync + 'static {
    /// Decode `params` (synchronously, borrowing the frame) and start the call.
    fn call(&self, ctx: Context, params: Params<'_>) -> MethodFuture;
}

struct FnMethod<F>(F);

impl<F, Fut, T> Method for FnMethod<F>
where
    F: Fn(Context, Params<'_>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, RpcError>> + Send + 'static,
    T: Serialize,
{
    fn call(&self, ctx: Context, params: Params<'_>) -> MethodFuture {
        let fut = (self.0)(ctx, params);
        Box::pin(async move { serialize_result(fut.await) })
    }
}

/// JSON text that serializes as itself.
struct RawJson(Arc<str>);

impl Serialize for RawJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match serde_json::value::RawValue::from_string(self.0.to_string()) {
            Ok(raw) => raw.serialize(s),
            Err(e) => Err(serde::ser::Error::custom(e)),
        }
    }
}

/// Serialize a handler's result; a result that cannot be serialized is an internal error.
pub(crate) fn serialize_result<T: Serialize>(result: Result<T, RpcError>) -> MethodResult {
    let value = result?;
    crate::codec::json::to_string(&value).map_err(serialize_failure)
}

#[cold]
fn serialize_failure(e: serde_json::Error) -> RpcError {
    RpcError::internal(format!("the result could not be serialized: {e}"))
}

/// A table keyed by wire names. Every call looks its method up here, so it hashes with
/// foldhash rather than SipHash (a third of the lookup's cost; SipHash's resistance to
/// flooding buys nothing for a table that peers only read).
type Table<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

/// A table from method names (as on the wire) to handlers. Cheap to clone: clones share
/// the table (every connection of a server holds one) until one of them registers more.
///
/// ```
/// use wirecall::{RpcError, raw::Router};
///
/// let mut router = Router::new();
/// router.method("subtract", |_ctx, params| {
///     // Decode synchronously (params borrow the incoming frame), then do the work.
///     let decoded = params.decoder(&["minuend", "subtrahend"]).and_then(|mut p| {
///         Ok((p.next_param::<i64>()?, p.next_param::<i64>()?))
///     });
///     async move {
///         let (minuend, subtrahend) = decoded?;
///         Ok::<_, RpcError>(minuend - subtrahend)
///     }
/// });
/// assert!(router.contains("subtract"));
/// ```
#[derive(Clone, Default)]
pub struct Router {
    methods: Arc<Table<Route>>,
    errors: Arc<Table<&'static str>>,
    /// The policy layers every call passes (a server's or client's builder sets them).
    policy: Option<crate::session::policy::Next>,
}

impl Router {
    /// An empty router: every call answers `-32601 Method not found`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a handler under a wire name. The closure decodes the params and returns a
    /// future that owns what it needs. A later registration of the same name replaces the
    /// earlier one.
    pub fn method<F, Fut, T>(&mut self, name: impl Into<Box<str>>, handler: F) -> &mut Self
    where
        F: Fn(Context, Params<'_>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, RpcError>> + Send + 'static,
        T: Serialize,
    {
        self.method_boxed(name, Arc::new(FnMethod(handler)))
    }

    /// Register a stream under a wire name (and `{name}.unsubscribe`). The closure
    /// decodes the params and returns a future that sets the stream up; each item of the
    /// stream is sent as a notification, and an `Err` item ends the stream with that error.
    ///
    /// ```
    /// use wirecall::{RpcError, raw::Router};
    ///
    /// let mut router = Router::new();
    /// router.subscription("count", |_ctx, params| {
    ///     let n = params.decoder(&["n"]).and_then(|mut p| p.next_param::<u64>());
    ///     async move {
    ///         let n = n?;
    ///         Ok::<_, RpcError>(futures_util::stream::iter((0..n).map(Ok::<_, RpcError>)))
    ///     }
    /// });
    /// assert!(router.contains("count") && router.contains("count.unsubscribe"));
    /// ```
    pub fn subscription<F, Fut, S, T>(&mut self, name: impl Into<Box<str>>, handler: F) -> &mut Self
    where
        F: Fn(Context, Params<'_>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, RpcError>> + Send + 'static,
        S: futures_util::Stream<Item = Result<T, RpcError>> + Send + 'static,
        T: Serialize + 'static,
    {
        self.subscription_boxed(name, Arc::new(FnSubscribe(handler)))
    }

    /// Register a type-erased stream handler (and its `.unsubscribe`).
    pub fn subscription_boxed(
        &mut self,
        name: impl Into<Box<str>>,
        handler: Arc<dyn SubscribeMethod>,
    ) -> &mut Self {
        let name = name.into();
        let methods = Arc::make_mut(&mut self.methods);
        methods.insert(format!("{name}.unsubscribe").into(), Route::Unsubscribe);
        methods.insert(name, Route::Subscribe(handler));
        self
    }

    /// Register a topic under its wire name (and `{name}.unsubscribe`): a subscription
    /// whose items are the publications of a [`crate::hub::Hub`] (the server's, see
    /// [`crate::Context::hub`]). `key` decodes the subscribe's params into the topic key's
    /// values as a JSON array, the same array a publisher's [`crate::hub::Hub::topic`] gets;
    /// the `"$since"` member of by-name params is taken off before it runs.
    ///
    /// ```
    /// use wirecall::raw::Router;
    ///
    /// let mut router = Router::new();
    /// router.topic("Chat.room", |params| {
    ///     let (room,) = params.decoder(&["room"]).and_then(|mut p| Ok((p.next_param::<String>()?,)))?;
    ///     Ok(serde_json::to_string(&(room,)).expect("a string serializes"))
    /// });
    /// assert!(router.contains("Chat.room") && router.contains("Chat.room.unsubscribe"));
    /// ```
    pub fn topic<F>(&mut self, name: impl Into<Box<str>>, key: F) -> &mut Self
    where
        F: Fn(Params<'_>) -> Result<String, RpcError> + Send + Sync + 'static,
    {
        self.topic_route(
            name,
            TopicRoute {
                key: Box::new(key),
                names: Vec::new(),
                publish: None,
                authorize: None,
            },
        )
    }

    pub(crate) fn topic_route(
        &mut self,
        name: impl Into<Box<str>>,
        route: TopicRoute,
    ) -> &mut Self {
        let name = name.into();
        let methods = Arc::make_mut(&mut self.methods);
        methods.insert(format!("{name}.unsubscribe").into(), Route::Unsubscribe);
        methods.insert(name, Route::Topic(Arc::new(route)));
        self
    }

    /// Record the typed error type (`throws E`) of a method, by its name in the IDL: WAMP
    /// errors are named `<Error>.<Variant>`.
    pub(crate) fn set_error_type(&mut self, method: &str, error_type: &'static str) {
        Arc::make_mut(&mut self.errors).insert(method.into(), error_type);
    }

    /// The typed error type of a method, if it declares one.
    pub(crate) fn error_type(&self, method: &str) -> Option<&'static str> {
        self.errors.get(method).copied()
    }

    /// Answer `rpc.discover` (the OpenRPC service discovery method) with `document`, the
    /// JSON text of an OpenRPC document — e.g. the `OPENRPC_DOCUMENT` that
    /// `wirecall_idl::configure().openrpc(true)` generates. Invalid JSON is an error.
    pub fn discover(&mut self, document: &str) -> Result<&mut Self, serde_json::Error> {
        let doc: Arc<str> = serde_json::value::RawValue::from_string(document.to_string())?
            .get()
            .into();
        self.method("rpc.discover", move |_ctx, _params| {
            let doc = doc.clone();
            async move { Ok::<_, RpcError>(RawJson(doc)) }
        });
        Ok(self)
    }

    /// Register a type-erased handler.
    pub fn method_boxed(
        &mut self,
        name: impl Into<Box<str>>,
        handler: Arc<dyn Method>,
    ) -> &mut Self {
        let name = name.into();
        let metrics = MethodMetrics::new(&name);
        Arc::make_mut(&mut self.methods).insert(name, Route::Call(handler, metrics));
        self
    }

    /// Add every method of `other`, e.g. of a second service. A name registered in both
    /// is an error, and nothing is added: the two could not both be served. (`wirecall
    /// check` refuses one wire name in two services of a `.wire` file.)
    ///
    /// ```
    /// use wirecall::{RpcError, raw::Router};
    ///
    /// let mut first = Router::new();
    /// first.method("shared.ping", |_ctx, _params| async { Ok::<_, RpcError>(1) });
    /// let mut second = Router::new();
    /// second.method("shared.ping", |_ctx, _params| async { Ok::<_, RpcError>(2) });
    /// let err = first.merge(second).unwrap_err();
    /// assert_eq!(err.names(), ["shared.ping"]);
    /// ```
    pub fn merge(&mut self, other: Router) -> Result<&mut Self, MergeError> {
        let mut names: Vec<String> = other
            .methods
            .keys()
            .filter(|name| self.methods.contains_key(*name))
            .map(|name| name.to_string())
            .collect();
        if !names.is_empty() {
            names.sort_unstable();
            return Err(MergeError { names });
        }
        let errors = Arc::try_unwrap(other.errors).unwrap_or_else(|shared| (*shared).clone());
        Arc::make_mut(&mut self.errors).extend(errors);
        let other = Arc::try_unwrap(other.methods).unwrap_or_else(|shared| (*shared).clone());
        Arc::make_mut(&mut self.methods).extend(other);
        Ok(self)
    }

    /// `true` if a handler is registered under `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.methods.contains_key(name)
    }

    /// `true` if nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.methods.is_empty()
    }

    /// The registered method names, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.methods.keys().map(|k| &**k)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Route> {
        self.methods.get(name)
    }

    /// Wrap the handlers in policy layers (replacing any set before).
    pub(crate) fn set_policy(&mut self, policy: Option<crate::session::policy::Next>) {
        self.policy = policy;
    }

    /// The policy layers every call passes, if any.
    #[inline]
    pub(crate) fn policy(&self) -> Option<&crate::session::policy::Next> {
        self.policy.as_ref()
    }
}

/// [`Router::merge`] found names that both routers serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot merge routers: both serve {}", .names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))]
pub struct MergeError {
    names: Vec<String>,
}

impl MergeError {
    /// The names registered in both routers, sorted.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.names().collect();
        names.sort_unstable();
        f.debug_struct("Router").field("methods", &names).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(rpc: &str, stream: &str) -> Router {
        let mut r = Router::new();
        r.method(rpc, |_ctx, _params| async { Ok::<_, RpcError>(()) });
        r.subscription(stream, |_ctx, _params| async {
            Ok::<_, RpcError>(futures_util::stream::empty::<Result<u8, RpcError>>())
        });
        r
    }

    #[test]
    fn merge_adds_distinct_names() {
        let mut a = router("A.x", "A.s");
        a.merge(router("B.x", "B.s")).unwrap();
        let mut names: Vec<&str> = a.names().collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "A.s",
                "A.s.unsubscribe",
                "A.x",
                "B.s",
                "B.s.unsubscribe",
                "B.x"
            ]
        );
    }

    #[test]
    fn merge_refuses_a_name_twice_and_adds_nothing() {
        let mut a = router("shared.ping", "A.s");
        let err = a.merge(router("B.x", "A.s")).unwrap_err();
        assert_eq!(err.names(), ["A.s", "A.s.unsubscribe"]);
        assert_eq!(
            err.to_string(),
            "cannot merge routers: both serve `A.s`, `A.s.unsubscribe`"
        );
        assert!(!a.contains("B.x"), "nothing is added on a conflict");
        let err = a.merge(router("shared.ping", "B.s")).unwrap_err();
        assert_eq!(err.names(), ["shared.ping"]);
    }
}
