//! Dispatch: an incoming frame becomes handler calls, responses to this side's calls,
//! cancellations and unsubscriptions; each call's answer goes out on its own or inside
//! its batch's array.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::{AbortHandle, Abortable};
use serde_json::value::RawValue;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::guard::{
    poll_once, start_call, start_subscribe, start_topic, Bounded, CatchPanic, Deadline,
};
use super::outbound::{Event, Frame as Outbound};
use super::policy::{self, CallKind, Next, Opened, RpcRequest, Run};
use super::streams::{subscribe, subscribe_layered, unsubscribe};
use super::{send, Session, Shared};
use crate::codec::message::{self, classify, parse_frame, Frame, FrameError, Incoming};
use crate::codec::params::Params;
use crate::codec::text::Text;
use crate::error::RpcError;
use crate::session::context::Context;
use crate::session::peer::CANCEL_METHOD;
use crate::session::router::{MethodFuture, MethodResult, Route};
use crate::session::subscription::Routed;
use crate::telemetry::{self, CallTimer, MethodMetrics, Outcome};

/// Where the answer of a call goes: straight out, or into its batch.
#[derive(Clone)]
pub(super) enum Reply {
    Direct,
    Batch(Arc<BatchReply>),
}

/// Collects the answers of one batch; the last one in sends the array.
pub(super) struct BatchReply {
    parts: Mutex<Vec<String>>,
    remaining: AtomicU64,
}

/// What dispatching a frame left to the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dispatched {
    /// Exactly one frame answers it (a response or a batch array), now or later.
    pub(crate) owes_answer: bool,
    /// It was not JSON: the answer (already queued) is the `-32700` response.
    pub(crate) parse_error: bool,
}

impl Dispatched {
    const NOTHING: Dispatched = Dispatched {
        owes_answer: false,
        parse_error: false,
    };
    const ANSWERED: Dispatched = Dispatched {
        owes_answer: true,
        parse_error: false,
    };
    const PARSE_ERROR: Dispatched = Dispatched {
        owes_answer: true,
        parse_error: true,
    };
}

impl Session {
    /// Handle one incoming JSON-RPC frame: decoded (in one pass for a single message),
    /// then dispatched. `None` if `close` was cancelled while waiting for room to run
    /// another call (backpressure).
    pub(crate) async fn handle_frame(
        &self,
        text: &Text,
        close: &CancellationToken,
    ) -> Option<Dispatched> {
        let shared = &self.shared;
        telemetry::received(shared.door.via, text.len());
        // The common case, one object: parsed in a single pass.
        let single = if text.trim_start().starts_with('{') {
            message::classify_text(text)
        } else {
            match parse_frame(text) {
                Ok(Frame::Single(raw)) => Ok(classify(raw)),
                Ok(Frame::Batch(items)) => return handle_batch(shared, items, text, close).await,
                Err(e) => Err(e),
            }
        };
        match single {
            // The same entry as a door that decodes its own messages.
            Ok(msg) => self.handle_message(msg, text, close).await,
            Err(e) => Some(answer_frame_error(shared, e).await),
        }
    }

    /// Handle one message a door decoded itself (WAMP's adapter, from its own codec): a
    /// request, notification or response as structured data, dispatched as a frame's
    /// would be. `frame` is the text its raw values borrow from, if any (a response's
    /// result is kept in it without a copy). `None` if `close` was cancelled while
    /// waiting for room to run another call.
    pub(crate) async fn handle_message(
        &self,
        msg: Incoming<'_>,
        frame: &Text,
        close: &CancellationToken,
    ) -> Option<Dispatched> {
        let owes_answer = expects_answer(&msg);
        handle_message(&self.shared, msg, frame, &Reply::Direct, close)
            .await
            .then_some(Dispatched {
                owes_answer,
                parse_error: false,
            })
    }

    /// While draining for shutdown: answer new requests with an error, still accept
    /// responses (handlers finishing may be waiting for answers from the peer).
    pub(crate) async fn reject_while_draining(&self, text: &Text) {
        let shared = &self.shared;
        let shutting_down = || {
            RpcError::new(
                crate::error::code::SERVER_SHUTTING_DOWN,
                "Server shutting down",
            )
        };
        let answer = |msg: Incoming<'_>| -> Option<Outbound> {
            match msg {
                Incoming::Response { id, outcome } => {
                    shared.peer.complete(id, outcome, text);
                    None
                }
                Incoming::Request { id: Some(id), .. } => shared.encode(Event::Answer {
                    id: id.get(),
                    out: Err(shutting_down()),
                }),
                Incoming::Request { id: None, .. } => None,
                Incoming::Invalid { id, why } => shared.encode(Event::Answer {
                    id: id.map_or("null", |i| i.get()),
                    out: Err(invalid(why)),
                }),
            }
        };
        let out = match parse_frame(text) {
            Ok(Frame::Single(raw)) => answer(classify(raw)),
            Ok(Frame::Batch(items)) => {
                let parts: Vec<String> = items
                    .into_iter()
                    .filter_map(|i| text_of(answer(classify(i))))
                    .collect();
                (!parts.is_empty()).then(|| Outbound::Text(shared.encoder.batch(parts)))
            }
            Err(_) => null_error(shared, RpcError::parse_error()),
        };
        send(shared, out).await;
    }
}

/// A frame that is not JSON (`-32700`) or not a message (`-32600`): answered at once.
async fn answer_frame_error(shared: &Shared, e: FrameError) -> Dispatched {
    match e {
        FrameError::Parse => {
            send(shared, null_error(shared, RpcError::parse_error())).await;
            Dispatched::PARSE_ERROR
        }
        FrameError::NotAnObject => {
            send(shared, null_error(shared, RpcError::invalid_request())).await;
            Dispatched::ANSWERED
        }
    }
}

/// The text of an encoded message, for a batch (only JSON-RPC doors carry batches).
fn text_of(frame: Option<Outbound>) -> Option<String> {
    match frame {
        Some(Outbound::Text(text)) => Some(text),
        _ => None,
    }
}

/// An error answering a message whose id is unknown (`null`).
fn null_error(shared: &Shared, error: RpcError) -> Option<Outbound> {
    shared.encode(Event::Answer {
        id: "null",
        out: Err(error),
    })
}

async fn handle_batch(
    shared: &Arc<Shared>,
    items: Vec<&RawValue>,
    text: &Text,
    close: &CancellationToken,
) -> Option<Dispatched> {
    if items.is_empty() {
        send(shared, null_error(shared, RpcError::invalid_request())).await;
        return Some(Dispatched::ANSWERED);
    }
    let limit = shared.config.max_batch_len;
    if items.len() > limit {
        let err = RpcError::invalid_request().with_data(format!(
            "a batch of {} messages exceeds the limit of {limit}",
            items.len()
        ));
        send(shared, null_error(shared, err)).await;
        return Some(Dispatched::ANSWERED);
    }
    let messages: Vec<Incoming<'_>> = items.into_iter().map(classify).collect();
    let answered = messages.iter().filter(|m| expects_answer(m)).count();
    let reply = Reply::Batch(Arc::new(BatchReply {
        parts: Mutex::new(Vec::with_capacity(answered)),
        remaining: AtomicU64::new(answered as u64),
    }));
    for m in messages {
        if !handle_message(shared, m, text, &reply, close).await {
            return None;
        }
    }
    Some(if answered > 0 {
        Dispatched::ANSWERED
    } else {
        Dispatched::NOTHING
    })
}

/// Does this message get an answer (so a batch must wait for it)?
fn expects_answer(m: &Incoming<'_>) -> bool {
    match m {
        Incoming::Request { id, .. } => id.is_some(),
        Incoming::Response { .. } => false,
        Incoming::Invalid { .. } => true,
    }
}

async fn handle_message(
    shared: &Arc<Shared>,
    msg: Incoming<'_>,
    frame: &Text,
    reply: &Reply,
    close: &CancellationToken,
) -> bool {
    match msg {
        Incoming::Response { id, outcome } => {
            if !shared.peer.complete(id, outcome, frame) {
                tracing::debug!(
                    id = id.get(),
                    "response to an unknown call (late, or cancelled)"
                );
            }
        }
        Incoming::Invalid { id, why } => {
            let id = id.map_or("null", |i| i.get());
            deliver(shared, reply, id, Err(invalid(why))).await;
        }
        Incoming::Request {
            method,
            params,
            id,
            timeout,
            #[cfg(feature = "otel")]
            traceparent,
        } => {
            if method == CANCEL_METHOD {
                cancel(shared, params).await;
                if let Some(id) = id {
                    deliver(shared, reply, id.get(), Ok("null".into())).await;
                }
                return true;
            }
            if id.is_none() {
                if let Some(params) = params {
                    if route_to_subscription(shared, params, frame) {
                        return true;
                    }
                }
            }
            let request = Request {
                method: &method,
                params,
                id,
                timeout,
                #[cfg(feature = "otel")]
                traceparent,
            };
            if let Some(policy) = shared.router.policy() {
                return through_policy(shared, policy, request, reply, close).await;
            }
            let deadline = request.deadline(shared);
            let Some(route) = shared.router.get(&method) else {
                if let Some(id) = id {
                    deliver(shared, reply, id.get(), Err(RpcError::method_not_found())).await;
                }
                return true;
            };
            let (handler, metrics) = match route {
                Route::Call(handler, metrics) => (handler, metrics),
                Route::Unsubscribe => {
                    let found = unsubscribe(shared, params);
                    if let Some(id) = id {
                        deliver(shared, reply, id.get(), Ok(found.to_string())).await;
                    }
                    return true;
                }
                Route::Subscribe(_) | Route::Topic(_) => {
                    // A subscription needs an id to answer with; as a notification it is
                    // ignored.
                    let Some(id) = id else { return true };
                    if !shared.door.streams {
                        deliver(shared, reply, id.get(), Err(stream_needs_events(&method))).await;
                        return true;
                    }
                    let Some(permit) = acquire(shared, close).await else {
                        return false;
                    };
                    let span = tracing::debug_span!("subscribe", method = &*method, id = id.get());
                    let span = request.traced(shared, span);
                    let setup = span.in_scope(|| match route {
                        Route::Topic(route) => {
                            start_topic(route, &call_context(shared, deadline), &method, params)
                        }
                        Route::Subscribe(handler) => start_subscribe(
                            &**handler,
                            call_context(shared, deadline),
                            Params::new(params),
                        ),
                        Route::Call(..) | Route::Unsubscribe => unreachable!("matched above"),
                    });
                    let task = subscribe(
                        shared.clone(),
                        Bounded::new(CatchPanic(setup), deadline),
                        method.into(),
                        id.get().into(),
                        reply.clone(),
                        permit,
                    );
                    tokio::spawn(task.instrument(span));
                    return true;
                }
            };
            let Some(permit) = acquire(shared, close).await else {
                return false;
            };
            let span = tracing::debug_span!("call", method = &*method, id = id.map(|i| i.get()));
            let span = request.traced(shared, span);
            let timer = metrics.start();
            let fut = span.in_scope(|| {
                start_call(
                    &**handler,
                    call_context(shared, deadline),
                    Params::new(params),
                )
            });
            let call = Call {
                id: id.map(|i| i.get()),
                permit,
                metrics: Some(metrics),
                timer,
                span,
                deadline,
            };
            run(shared, fut, call, reply).await;
        }
    }
    true
}

/// A request as dispatch reads it.
struct Request<'a> {
    method: &'a str,
    params: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    timeout: Option<u64>,
    /// Its `"$traceparent"` (feature `otel`).
    #[cfg(feature = "otel")]
    traceparent: Option<&'a str>,
}

impl Request<'_> {
    /// The call's span, made to continue its caller's trace: its `"$traceparent"`, else
    /// the door's (a POST's `traceparent` header). Only with the feature `otel`.
    #[inline]
    fn traced(&self, shared: &Shared, span: tracing::Span) -> tracing::Span {
        #[cfg(feature = "otel")]
        crate::codec::trace::continue_trace(&span, self.traceparent, shared.trace_parent.as_ref());
        #[cfg(not(feature = "otel"))]
        let _ = shared;
        span
    }

    /// The call's deadline: its `"$timeout"`, else the door's default (a POST's
    /// `Wirecall-Timeout` header), counted from now.
    #[inline]
    fn deadline(&self, shared: &Shared) -> Option<Deadline> {
        self.timeout.or(shared.default_timeout).map(Deadline::after)
    }
}

/// The context a handler gets: the connection's, with the call's deadline if it has one.
#[inline]
fn call_context(shared: &Shared, deadline: Option<Deadline>) -> Context {
    match deadline {
        None => shared.ctx.clone(),
        Some(d) => shared.ctx.with_deadline(d.at),
    }
}

/// Dispatch a request through the policy layers: every call, notification, subscription
/// and unsubscribe passes them once (even one the router does not know, which the
/// innermost service answers `-32601`).
async fn through_policy(
    shared: &Arc<Shared>,
    policy: &Next,
    request: Request<'_>,
    reply: &Reply,
    close: &CancellationToken,
) -> bool {
    let deadline = request.deadline(shared);
    let Request {
        method, params, id, ..
    } = request;
    let call_kind = match id {
        Some(_) => CallKind::Call,
        None => CallKind::Notification,
    };
    let door = shared.door.door;
    let ctx = call_context(shared, deadline);
    let (kind, run_it, metrics) = match shared.router.get(method) {
        None => (
            call_kind,
            Run::Answer(Err(RpcError::method_not_found())),
            None,
        ),
        Some(Route::Call(handler, metrics)) => {
            (call_kind, Run::Call(handler.clone()), Some(metrics))
        }
        Some(Route::Unsubscribe) => (
            CallKind::Unsubscribe,
            Run::Unsubscribe(shared.clone()),
            None,
        ),
        Some(route @ (Route::Subscribe(_) | Route::Topic(_))) => {
            // As without layers: a subscription needs an id to answer with.
            let Some(call_id) = id else { return true };
            let kind = match route {
                Route::Topic(_) => CallKind::Topic,
                _ => CallKind::Stream,
            };
            if !shared.door.streams {
                (kind, Run::Answer(Err(stream_needs_events(method))), None)
            } else {
                let Some(permit) = acquire(shared, close).await else {
                    return false;
                };
                let opened = Arc::new(Opened::default());
                let run_it = Run::Subscribe {
                    shared: shared.clone(),
                    route: route.clone(),
                    opened: opened.clone(),
                };
                let span = tracing::debug_span!("subscribe", method, id = call_id.get());
                let span = request.traced(shared, span);
                let req = RpcRequest::new(method, kind, params, door, ctx, run_it);
                let answer = span.in_scope(|| policy::call(policy, req));
                let task = subscribe_layered(
                    shared.clone(),
                    Bounded::new(CatchPanic(answer), deadline),
                    opened,
                    method.into(),
                    call_id.get().into(),
                    reply.clone(),
                    permit,
                );
                tokio::spawn(task.instrument(span));
                return true;
            }
        }
    };
    let Some(permit) = acquire(shared, close).await else {
        return false;
    };
    let span = tracing::debug_span!("call", method, id = id.map(|i| i.get()));
    let span = request.traced(shared, span);
    let timer = match metrics {
        Some(metrics) => metrics.start(),
        None => CallTimer::off(),
    };
    let req = RpcRequest::new(method, kind, params, door, ctx, run_it);
    let fut = span.in_scope(|| policy::call(policy, req));
    let call = Call {
        id: id.map(|i| i.get()),
        permit,
        metrics,
        timer,
        span,
        deadline,
    };
    run(shared, fut, call, reply).await;
    true
}

#[cold]
fn stream_needs_events(method: &str) -> RpcError {
    RpcError::invalid_request().with_data(format!(
        "`{method}` is a stream: send it alone in a POST with `Accept: text/event-stream` to \
         receive its items as server-sent events, or call it over a WebSocket"
    ))
}

/// Backpressure: wait for room before starting another call. `None` if the connection
/// is closing meanwhile.
async fn acquire(shared: &Arc<Shared>, close: &CancellationToken) -> Option<OwnedSemaphorePermit> {
    // Usually there is room: take it without setting up a wait.
    if let Ok(permit) = shared.in_flight.clone().try_acquire_owned() {
        return Some(permit);
    }
    tokio::select! {
        biased;
        _ = close.cancelled() => None,
        p = shared.in_flight.clone().acquire_owned() => p.ok(),
    }
}

/// A notification for one of this side's subscriptions: hand it to the subscription.
fn route_to_subscription(shared: &Shared, params: &RawValue, frame: &Text) -> bool {
    let subs = shared.peer.subscriptions();
    if subs.is_empty() || !params.get().starts_with('{') {
        return false;
    }
    let mut unsubscribe = Vec::new();
    let handled = matches!(subs.route(params, frame, &mut unsubscribe), Routed::Handled);
    for (method, id) in unsubscribe {
        tracing::debug!(%id, "subscription lagged or dropped; unsubscribing");
        shared.peer.unsubscribe_detached(&method, &id);
    }
    handled
}

/// What a call holds while it runs.
struct Call<'a> {
    id: Option<&'a str>,
    /// Its place among the calls served at once.
    permit: OwnedSemaphorePermit,
    /// Its method's metrics (if it has a handler), and when it started: recorded when it
    /// ends.
    metrics: Option<&'a Arc<MethodMetrics>>,
    timer: CallTimer,
    span: tracing::Span,
    /// When the call must have ended, if it said (`"$timeout"`).
    deadline: Option<Deadline>,
}

/// Run a handler: inline if it completes on its first poll, else in a task of its own
/// that `$/cancelRequest` can abort.
async fn run(shared: &Arc<Shared>, fut: MethodFuture, call: Call<'_>, reply: &Reply) {
    let Call {
        id,
        permit,
        metrics,
        timer,
        span,
        deadline,
    } = call;
    // A panicking handler answers -32603; the connection and the server carry on. A call
    // past its deadline answers -32004.
    let mut fut = Bounded::new(CatchPanic(fut), deadline);
    // (Polled in the call's span: what the handler logs, and the calls it makes, are in it.)
    if let Some(out) = poll_once(&mut fut, &span).await {
        if let Some(metrics) = metrics {
            metrics.finish(timer, Outcome::of(&out));
        }
        if let Some(id) = id {
            deliver(shared, reply, id, out).await;
        }
        drop(permit);
        return;
    }
    let id: Option<Box<str>> = id.map(Into::into);
    let metrics = metrics.cloned();
    let finish = move |outcome| {
        if let Some(metrics) = metrics {
            metrics.finish(timer, outcome);
        }
    };
    let Some(id) = id else {
        // A notification: nobody waits for its answer, but it holds its place among the
        // connection's calls (the permit) and stops when the session ends.
        let (abort, registration) = AbortHandle::new_pair();
        let token = shared.running().register_notification(abort);
        let shared = shared.clone();
        tokio::spawn(
            async move {
                match Abortable::new(fut, registration).await {
                    Ok(out) => finish(Outcome::of(&out)),
                    Err(_) => finish(Outcome::Cancelled),
                }
                shared.running().notifications.remove(&token);
                drop(permit);
            }
            .instrument(span),
        );
        return;
    };
    let (abort, registration) = AbortHandle::new_pair();
    let token = shared.running().register(&id, abort, reply);
    let shared = shared.clone();
    let reply = reply.clone();
    tokio::spawn(
        async move {
            match Abortable::new(fut, registration).await {
                Ok(out) => {
                    finish(Outcome::of(&out));
                    // Whoever removes the entry answers: this task, or a cancellation.
                    if shared.running().finish(&id, token) {
                        deliver(&shared, &reply, &id, out).await;
                    }
                }
                // Cancelled by the caller, or its connection ended.
                Err(_) => finish(Outcome::Cancelled),
            }
            drop(permit);
        }
        .instrument(span),
    );
}

/// `$/cancelRequest {"id": ID}`: abort the handler (or a stream's setup) of that request and
/// answer it -32800, in the frame its answer was owed to: alone, or inside its batch's array.
async fn cancel(shared: &Arc<Shared>, params: Option<&RawValue>) {
    #[derive(serde::Deserialize)]
    struct CancelParams<'a> {
        #[serde(borrow)]
        id: &'a RawValue,
    }
    let Some(p) = params.and_then(|p| serde_json::from_str::<CancelParams<'_>>(p.get()).ok())
    else {
        tracing::debug!("ignoring a malformed {CANCEL_METHOD}");
        return;
    };
    let id = p.id.get();
    let entry = shared.running().calls.remove(id);
    if let Some(call) = entry {
        call.abort.abort();
        tracing::debug!(id, "call cancelled by the peer");
        deliver(shared, &call.reply, id, Err(RpcError::cancelled())).await;
    }
}

/// Send a call's answer, or add it to its batch.
pub(super) async fn deliver(shared: &Shared, reply: &Reply, id: &str, out: MethodResult) {
    let mut json = shared.encode(Event::Answer { id, out });
    let limit = shared.config.max_message_size;
    let size = json.as_ref().map_or(0, Outbound::len);
    if size > limit {
        let err = RpcError::internal(format!(
            "the response is {size} bytes, over the limit of {limit} bytes"
        ));
        tracing::warn!(id, "{}", err);
        json = shared.encode(Event::Answer { id, out: Err(err) });
    }
    match reply {
        Reply::Direct => send(shared, json).await,
        Reply::Batch(batch) => {
            let done = {
                let mut parts = batch.parts.lock().unwrap_or_else(|e| e.into_inner());
                parts.extend(text_of(json));
                batch.remaining.fetch_sub(1, Ordering::AcqRel) == 1
            };
            if done {
                let parts =
                    std::mem::take(&mut *batch.parts.lock().unwrap_or_else(|e| e.into_inner()));
                let frame = shared.encoder.batch(parts);
                let frame = if frame.len() > limit {
                    let err = RpcError::internal("the batch response exceeds the size limit");
                    null_error(shared, err)
                } else {
                    Some(Outbound::Text(frame))
                };
                send(shared, frame).await;
            }
        }
    }
}

/// `-32600`, with `data.reason` when the codec said what is wrong.
#[cold]
fn invalid(why: Option<&'static str>) -> RpcError {
    let error = RpcError::invalid_request();
    match why {
        Some(reason) => error.with_data(serde_json::json!({ "reason": reason })),
        None => error,
    }
}
