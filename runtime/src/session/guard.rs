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
            let authorized = route.authorize(ctx, &values, "subscribing to", method);
            Ok((crate::hub::topic_key(method, &values), since, authorized))
        });
        let hub = ctx.hub().clone();
        Box::pin(async move {
            let (key, since, authorized) = decoded?;
            // The service's `authorize_<topic>` says whether this connection may.
            if let Some(authorized) = authorized {
                authorized.await?;
            }
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

/// Poll a future once, in `span`; `Some` if it completed.
pub(super) async fn poll_once<F: Future + Unpin>(
    fut: &mut F,
    span: &tracing::Span,
) -> Option<F::Output> {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| {
        let _in_span = span.enter();
        match fut.as_mut().poll(cx) {
            Poll::Ready(out) => Poll::Ready(Some(out)),
            Poll::Pending => Poll::Ready(None),
        }
    })
    .await
}

thread_local! {
    /// The deadline of the handler being polled on this thread, if its call carried one:
    /// calls it makes meanwhile (through a [`crate::Client`] or a [`crate::Peer`]) inherit
    /// what is left of it.
    static CURRENT_DEADLINE: std::cell::Cell<Option<std::time::Instant>> =
        const { std::cell::Cell::new(None) };
}

/// The deadline of the call whose handler is being polled right now, if any.
pub(crate) fn current_deadline() -> Option<std::time::Instant> {
    CURRENT_DEADLINE.with(|d| d.get())
}

/// A call's deadline: when, and the `"$timeout"` it came from (for the error's text).
#[derive(Clone, Copy, Debug)]
pub(super) struct Deadline {
    pub(super) at: std::time::Instant,
    pub(super) ms: u64,
}

impl Deadline {
    /// The deadline of a call that arrives now with `"$timeout": ms`.
    pub(super) fn after(ms: u64) -> Deadline {
        let now = std::time::Instant::now();
        let at = now
            .checked_add(std::time::Duration::from_millis(ms))
            .unwrap_or(now + std::time::Duration::from_secs(86_400 * 365));
        Deadline { at, ms }
    }
}

/// A handler's future (or a stream's setup) bounded by its call's deadline: at the
/// deadline it is dropped and the call answers `-32004`. Without a deadline it is the
/// future itself (one branch per poll); with one, a timer is set only if the first poll
/// does not finish it.
pub(super) struct Bounded<F> {
    fut: F,
    deadline: Option<Deadline>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<F> Bounded<F> {
    pub(super) fn new(fut: F, deadline: Option<Deadline>) -> Self {
        Bounded {
            fut,
            deadline,
            timer: None,
        }
    }
}

impl<F, T> Future for Bounded<F>
where
    F: Future<Output = Result<T, RpcError>> + Unpin,
{
    type Output = Result<T, RpcError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let Some(deadline) = this.deadline else {
            return Pin::new(&mut this.fut).poll(cx);
        };
        let outer = CURRENT_DEADLINE.with(|d| d.replace(Some(deadline.at)));
        let out = Pin::new(&mut this.fut).poll(cx);
        CURRENT_DEADLINE.with(|d| d.set(outer));
        if out.is_ready() {
            return out;
        }
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.at.into())));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(RpcError::deadline_exceeded(deadline.ms))),
            Poll::Pending => Poll::Pending,
        }
    }
}
