//! Policy: the one place every call passes, whatever its door.
//!
//! A server (or a client, for the calls its server makes to it) may wrap its router's
//! handlers in [`tower::Layer`]s ([`crate::server::ServerBuilder::layer`],
//! [`crate::client::ClientBuilder::layer`]). Each layer's service sees one [`RpcRequest`] at a
//! time: a call, a notification, a stream or topic subscription, or an unsubscribe, from
//! any door (WebSocket, HTTP POST, server-sent events, WAMP), alone or inside a batch —
//! exactly once each. It may answer it, refuse it with an [`RpcError`], time it, log it,
//! or pass it on to the service it wraps ([`Next`]), which ends at the router's handlers.
//!
//! Without a layer nothing of this runs: the session dispatches as it always did, with no
//! allocation or boxing for it.
//!
//! What the service answers is the call's outcome: `Ok` with the result as JSON text
//! ([`json`] makes it), or `Err` with the error object. For a subscription the answer is
//! the subscription id the inner service produced (the stream's items follow only if that
//! answer goes out as `Ok`: a layer that refuses after passing it on closes the stream
//! before its first item); for an unsubscribe it is `true`/`false`; a notification's
//! answer is dropped.
//!
//! A WAMP client's `PUBLISH` to a `@publishable` topic passes the layers too, once, as a
//! [`CallKind::Publish`] (its answer is dropped: passed on, the item is published).
//!
//! Not calls, and so not seen by layers: `$/cancelRequest` (it stops a call already
//! admitted), responses to this side's own calls, the items of this side's subscriptions,
//! a stream or topic subscription sent as a notification (ignored), and invalid messages
//! (answered `-32600`).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use futures_util::future::AbortRegistration;
use serde_json::value::RawValue;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Layer, Service, ServiceExt};

use super::guard::{start_call, start_subscribe, start_topic};
use super::router::{Method, MethodFuture, MethodResult, Produce, Route};
use super::streams::{open_stream, unsubscribe};
use super::Shared;
use crate::codec::params::Params;
use crate::error::RpcError;
use crate::session::context::{ConnectionId, Context};

/// What a call asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallKind {
    /// A request: answered with a result or an error.
    Call,
    /// A notification: never answered.
    Notification,
    /// A stream subscription: answered with a subscription id, then items follow.
    Stream,
    /// A topic subscription: answered with a subscription id, then publications follow.
    Topic,
    /// `….unsubscribe`: stops one of the connection's subscriptions.
    Unsubscribe,
    /// A client's publication to a topic (WAMP `PUBLISH` to a `@publishable` topic): the
    /// method is the topic's wire name, the params the item (`args` or `kwargs`). Passed
    /// on, it is published; refused, nobody receives it.
    Publish,
}

impl CallKind {
    /// A stream or topic subscription?
    pub fn is_subscription(self) -> bool {
        matches!(self, CallKind::Stream | CallKind::Topic)
    }
}

/// Which door a call came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Door {
    /// A WebSocket speaking JSON-RPC (a server's, or a client's own connection).
    WebSocket,
    /// An HTTP POST answered with JSON.
    Http,
    /// An HTTP POST answered with server-sent events (one stream).
    Events,
    /// A WebSocket speaking WAMP.
    Wamp,
}

/// One call as the layers see it.
///
/// ```
/// use wirecall::policy::{CallKind, RpcRequest};
///
/// fn describe(req: &RpcRequest) -> String {
///     format!("{:?} {} via {:?} on {}", req.kind(), req.method(), req.door(), req.connection_id())
/// }
/// # let _ = describe;
/// # let _ = CallKind::Call;
/// ```
pub struct RpcRequest {
    method: Box<str>,
    kind: CallKind,
    params: Option<Box<RawValue>>,
    door: Door,
    ctx: Context,
    run: Option<Run>,
}

impl RpcRequest {
    /// The method's wire name (`Calculator.add`, `Calculator.ticks.unsubscribe`).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// What the call asks for.
    pub fn kind(&self) -> CallKind {
        self.kind
    }

    /// The params as the peer sent them (JSON text), if any. For a WAMP call: its `args`
    /// as an array, or its `kwargs` as an object.
    pub fn params(&self) -> Option<&RawValue> {
        self.params.as_deref()
    }

    /// The door it came through.
    pub fn door(&self) -> Door {
        self.door
    }

    /// The connection (and, on a server, the authenticated identity, the remote address,
    /// the handshake's headers) it came on. The handler gets this context.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The connection's id.
    pub fn connection_id(&self) -> ConnectionId {
        self.ctx.connection_id()
    }

    /// The peer's socket address, when known.
    pub fn remote_addr(&self) -> Option<std::net::SocketAddr> {
        self.ctx.remote_addr()
    }

    /// Who the connection authenticated as, if it is a `T` (see [`Context::identity`]).
    pub fn identity<T: std::any::Any>(&self) -> Option<&T> {
        self.ctx.identity()
    }

    /// When the caller stops waiting for the answer, if it said (`"$timeout"`).
    pub fn deadline(&self) -> Option<Instant> {
        self.ctx.deadline()
    }
}

impl fmt::Debug for RpcRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcRequest")
            .field("method", &self.method)
            .field("kind", &self.kind)
            .field("door", &self.door)
            .field("connection_id", &self.ctx.connection_id())
            .finish_non_exhaustive()
    }
}

/// A result as the JSON text an [`RpcRequest`]'s answer carries: for a layer that answers
/// a call itself.
pub fn json<T: serde::Serialize>(value: &T) -> Result<String, RpcError> {
    super::router::serialize_result(Ok(value))
}

/// What the innermost service does with a call: the router's part of the session.
pub(super) enum Run {
    /// Answer this (method not found, a stream over a door without streams).
    Answer(MethodResult),
    /// Run a handler.
    Call(Arc<dyn Method>),
    /// Set up a stream or topic subscription: on success it opens the stream and leaves
    /// it in `opened`; the session starts it once the answer goes out as `Ok`.
    Subscribe {
        shared: Arc<Shared>,
        route: Route,
        opened: Arc<Opened>,
    },
    /// Stop one of the connection's streams.
    Unsubscribe(Arc<Shared>),
}

/// A stream the innermost service opened, waiting for its answer to go out.
pub(super) struct OpenStream {
    pub(super) sub_id: u64,
    pub(super) items: Produce,
    pub(super) registration: AbortRegistration,
}

/// Where the innermost service leaves the stream it opened.
#[derive(Default)]
pub(super) struct Opened(Mutex<Option<OpenStream>>);

impl Opened {
    pub(super) fn take(&self) -> Option<OpenStream> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn put(&self, stream: OpenStream) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(stream);
    }
}

impl RpcRequest {
    pub(super) fn new(
        method: &str,
        kind: CallKind,
        params: Option<&RawValue>,
        door: Door,
        ctx: Context,
        run: Run,
    ) -> RpcRequest {
        RpcRequest {
            method: method.into(),
            kind,
            params: params.map(ToOwned::to_owned),
            door,
            ctx,
            run: Some(run),
        }
    }
}

/// The router's handlers, as the innermost service.
#[derive(Clone, Copy, Debug, Default)]
struct Handlers;

impl Service<RpcRequest> for Handlers {
    type Response = String;
    type Error = RpcError;
    type Future = MethodFuture;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), RpcError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: RpcRequest) -> MethodFuture {
        let Some(run) = req.run.take() else {
            // (The request is built with it and taken only here.)
            return Box::pin(std::future::ready(Err(RpcError::internal(
                "a call passed the router twice",
            ))));
        };
        let params = req.params.as_deref();
        match run {
            Run::Answer(out) => Box::pin(std::future::ready(out)),
            Run::Call(handler) => start_call(&*handler, req.ctx, Params::new(params)),
            Run::Unsubscribe(shared) => {
                let found = unsubscribe(&shared, params);
                Box::pin(std::future::ready(Ok(found.to_string())))
            }
            Run::Subscribe {
                shared,
                route,
                opened,
            } => {
                let setup = match &route {
                    Route::Topic(topic) => start_topic(topic, &req.ctx, &req.method, params),
                    Route::Subscribe(handler) => {
                        start_subscribe(&**handler, req.ctx.clone(), Params::new(params))
                    }
                    Route::Call(..) | Route::Unsubscribe => {
                        return Box::pin(std::future::ready(Err(RpcError::internal(
                            "not a subscription",
                        ))))
                    }
                };
                Box::pin(async move {
                    let items = setup.await?;
                    let (sub_id, registration) = open_stream(&shared)?;
                    opened.put(OpenStream {
                        sub_id,
                        items,
                        registration,
                    });
                    Ok(sub_id.to_string())
                })
            }
        }
    }
}

/// The service a layer wraps: the layers inside it, then the router's handlers. Cheap to
/// clone.
#[derive(Clone)]
pub struct Next(BoxCloneSyncService<RpcRequest, String, RpcError>);

impl fmt::Debug for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Next")
    }
}

impl Service<RpcRequest> for Next {
    type Response = String;
    type Error = RpcError;
    type Future = MethodFuture;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), RpcError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: RpcRequest) -> MethodFuture {
        self.0.call(req)
    }
}

/// An error out of a layer's service as the call's error: an [`RpcError`] as it is, any
/// other as an internal error carrying its text.
fn rpc_error(e: impl Into<BoxError>) -> RpcError {
    let e = e.into();
    match e.downcast::<RpcError>() {
        Ok(e) => *e,
        Err(e) => RpcError::internal(e.to_string()),
    }
}

/// One layer, kept by a builder until it has a router to wrap.
#[derive(Clone)]
pub(crate) struct LayerFn(Arc<dyn Fn(Next) -> Next + Send + Sync>);

impl fmt::Debug for LayerFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Layer")
    }
}

/// Keep `layer` for [`compose`].
pub(crate) fn layer_fn<L>(layer: L) -> LayerFn
where
    L: Layer<Next> + Send + Sync + 'static,
    L::Service: Service<RpcRequest, Response = String> + Clone + Send + Sync + 'static,
    <L::Service as Service<RpcRequest>>::Error: Into<BoxError>,
    <L::Service as Service<RpcRequest>>::Future: Send + 'static,
{
    LayerFn(Arc::new(move |inner| {
        let svc = layer.layer(inner).map_err(rpc_error);
        Next(BoxCloneSyncService::new(svc))
    }))
}

/// The layers around the handlers, the first added outermost (as `tower::ServiceBuilder`
/// stacks them); `None` without layers.
pub(crate) fn compose(layers: &[LayerFn]) -> Option<Next> {
    if layers.is_empty() {
        return None;
    }
    let mut svc = Next(BoxCloneSyncService::new(Handlers));
    for layer in layers.iter().rev() {
        svc = (layer.0)(svc);
    }
    Some(svc)
}

/// Ask the layers whether a client's publication to `topic` (its wire name) may go out:
/// `Ok` once they pass it on, else their refusal (`-32003`, `-32029`…).
pub(crate) async fn admit_publication(
    policy: &Next,
    topic: &str,
    item: Option<&RawValue>,
    door: Door,
    ctx: Context,
) -> Result<(), RpcError> {
    // (The innermost service publishes nothing itself: the door does, once admitted.)
    let run = Run::Answer(Ok("null".into()));
    let req = RpcRequest::new(topic, CallKind::Publish, item, door, ctx, run);
    call(policy, req).await.map(drop)
}

/// Pass `req` through the layers: the call's answer.
pub(super) fn call(policy: &Next, req: RpcRequest) -> MethodFuture {
    let svc = policy.clone();
    Box::pin(async move {
        let mut svc = svc;
        let ready: Result<&mut Next, RpcError> = svc.ready().await;
        match ready {
            Ok(svc) => svc.call(req).await,
            Err(e) => Err(e),
        }
    })
}

/// A layer made of a function of the call and the rest of the chain: for middleware
/// that needs no state of its own.
///
/// ```
/// use wirecall::policy::{from_fn, CallKind};
/// use wirecall::RpcError;
///
/// // Refuse subscriptions to anything but `Chat.room`.
/// let only_rooms = from_fn(|req, next| async move {
///     if req.kind().is_subscription() && req.method() != "Chat.room" {
///         return Err(RpcError::forbidden(format!("subscribing to `{}`", req.method())));
///     }
///     next.run(req).await
/// });
/// let _builder = wirecall::Server::builder().layer(only_rooms);
/// ```
pub fn from_fn<F, Fut>(f: F) -> FromFnLayer<F>
where
    F: Fn(RpcRequest, Next) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<String, RpcError>> + Send + 'static,
{
    FromFnLayer(f)
}

/// The layer [`from_fn`] makes.
#[derive(Clone)]
pub struct FromFnLayer<F>(F);

impl<F> fmt::Debug for FromFnLayer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FromFnLayer")
    }
}

impl<F: Clone> Layer<Next> for FromFnLayer<F> {
    type Service = FromFn<F>;
    fn layer(&self, next: Next) -> FromFn<F> {
        FromFn {
            f: self.0.clone(),
            next,
        }
    }
}

/// The service of a [`from_fn`] layer.
#[derive(Clone)]
pub struct FromFn<F> {
    f: F,
    next: Next,
}

impl<F> fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FromFn")
    }
}

impl<F, Fut> Service<RpcRequest> for FromFn<F>
where
    F: Fn(RpcRequest, Next) -> Fut,
    Fut: std::future::Future<Output = Result<String, RpcError>> + Send + 'static,
{
    type Response = String;
    type Error = RpcError;
    type Future = Fut;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), RpcError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: RpcRequest) -> Fut {
        (self.f)(req, self.next.clone())
    }
}

impl Next {
    /// Pass `req` on (waiting until the rest of the chain is ready).
    pub async fn run(mut self, req: RpcRequest) -> Result<String, RpcError> {
        self.ready().await?;
        self.call(req).await
    }
}
