//! The panic guard: a handler that panics (while decoding its params, or while running)
//! answers `-32603`; the session and the server carry on.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::task::Poll;

use crate::codec::params::Params;
use crate::error::RpcError;
use crate::session::context::Context;
use crate::session::router::{Method, MethodFuture, Produce, SubscribeMethod, TopicRoute};

/// A boxed future answering `Result<T, RpcError>`: a handler's call or a stream's setup.
type Answer<T> = Pin<Box<dyn Future<Output = Result<T, RpcError>> + Send>>;

/// Start a handler (`start` decodes the params and makes its future); a panic while it
/// does answers -32603.
fn start_guarded<T: Send + 'static>(start: impl FnOnce() -> Answer<T>) -> Answer<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(start)) {
        Ok(fut) => fut,
        Err(panic) => Box::pin(std::future::ready(Err(panicked(&*panic)))),
    }
}

pub(super) fn start_call(handler: &dyn Method, ctx: Context, params: Params<'_>) -> MethodFuture {
    start_guarded(|| handler.call(ctx, params))
}

/// What a stream's setup answers: the items to forward, or the call's error.
pub(super) type Setup = Answer<Produce>;

pub(super) fn start_subscribe(
    handler: &dyn SubscribeMethod,
    ctx: Context,
    params: Params<'_>,
) -> Setup {
    start_guarded(|| {
        let setup = handler.subscribe(ctx, params);
        Box::pin(async move { setup.await.map(Produce::Items) })
    })
}

/// Set up a topic subscription: the key from the params, then the hub's feed (from
/// `"$since"` when given).
pub(super) fn start_topic(
    route: &TopicRoute,
    ctx: &Context,
    method: &str,
    params: Option<&serde_json::value::RawValue>,
) -> Setup {
    start_guarded(|| {
        let decoded = crate::hub::split_since(params).and_then(|(rest, since)| {
            let values = (route.key)(Params::new(rest.as_deref()))?;
            Ok((crate::hub::topic_key(method, &values), since))
        });
        let hub = ctx.hub().clone();
        Box::pin(async move {
            let (key, since) = decoded?;
            Ok(Produce::Topic(Box::new(hub.feed(key.into(), since).await?)))
        })
    })
}

/// A handler's future whose panic becomes a `-32603` answer.
pub(super) struct CatchPanic<T>(pub(super) Answer<T>);

impl<T> Future for CatchPanic<T> {
    type Output = Result<T, RpcError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let fut = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => Poll::Ready(Err(panicked(&*panic))),
        }
    }
}

#[cold]
fn panicked(panic: &(dyn std::any::Any + Send)) -> RpcError {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string());
    tracing::error!("handler panicked: {detail}");
    RpcError::internal("the handler panicked")
}

/// Poll a future once; `Some` if it completed.
pub(super) async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}
