//! One WebSocket connection, either side: a reader that parses and dispatches frames, and
//! a writer that drains the outgoing queue and flushes once per burst.
//!
//! ```text
//!            ┌──────────── reader task ────────────┐
//!  socket ──►│ parse frame → request?  → handler ──┼──┐  (inline if ready at once,
//!            │             → response? → pending   │  │   else a task of its own)
//!            │ keep-alive pings, cancel requests   │  │
//!            └─────────────────────────────────────┘  ▼
//!  socket ◄── writer task ◄── bounded queue ◄── responses, requests, pings
//! ```
//!
//! The number of calls served at once is bounded (`max_in_flight`); at the bound the
//! reader stops reading until a call finishes, so a flood slows the peer down instead of
//! growing memory.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use futures_util::future::{AbortHandle, Abortable};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::value::RawValue;
use std::panic::AssertUnwindSafe;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::ConnectionConfig;
use crate::context::Context;
use crate::error::RpcError;
use crate::message::{self, classify, parse_frame, Frame, FrameError, Incoming};
use crate::params::Params;
use crate::peer::{Peer, CANCEL_METHOD};
use crate::router::{
    ItemStream, MethodFuture, MethodResult, Route, Router, SubscribeFuture, SubscribeMethod,
};
use crate::subscription::{unsubscribe_frame, Routed};

/// After this many frames read in a row, the reader lets other tasks run: the callers it
/// woke and the writer, so that answers start going out while the rest is read.
const READ_BURST: usize = 32;

/// Frames queued this soon after the previous flush count as part of a stream of frames.
const BURST_WINDOW: Duration = Duration::from_micros(20);

/// How long the writer may take to send what is queued after the reader has finished.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed the connection (close frame or end of stream).
    ClosedByPeer,
    /// This side closed it ([`crate::Client::close`]).
    ClosedLocally,
    /// The server shut down gracefully.
    Shutdown,
    /// The peer did not answer pings.
    PeerUnresponsive,
    /// The peer sent a message over the size limit.
    MessageTooLarge,
    /// A transport or protocol error.
    Error(String),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::ClosedByPeer => f.write_str("the peer closed the connection"),
            CloseReason::ClosedLocally => f.write_str("the connection was closed locally"),
            CloseReason::Shutdown => f.write_str("the server shut down"),
            CloseReason::PeerUnresponsive => f.write_str("the peer stopped answering pings"),
            CloseReason::MessageTooLarge => f.write_str("a message exceeded the size limit"),
            CloseReason::Error(e) => write!(f, "connection error: {e}"),
        }
    }
}

/// Handler tasks that can still be cancelled, by request id (as JSON text).
#[derive(Default)]
struct Running {
    next_token: u64,
    calls: HashMap<Box<str>, (u64, AbortHandle)>,
}

/// What the reader and the handler tasks of one connection share.
struct Shared {
    config: Arc<ConnectionConfig>,
    router: Router,
    ctx: Context,
    peer: Peer,
    in_flight: Arc<Semaphore>,
    running: Mutex<Running>,
    streams: Mutex<Streams>,
}

/// The streams this side serves on the connection, by subscription id.
#[derive(Default)]
struct Streams {
    next_id: u64,
    active: HashMap<u64, AbortHandle>,
}

/// Where the answer of a call goes: straight out, or into its batch.
#[derive(Clone)]
enum Reply {
    Direct,
    Batch(Arc<BatchReply>),
}

/// Collects the answers of one batch; the last one in sends the array.
struct BatchReply {
    parts: Mutex<Vec<String>>,
    remaining: AtomicU64,
}

/// Everything needed to run one connection.
pub(crate) struct Setup {
    pub(crate) config: Arc<ConnectionConfig>,
    pub(crate) router: Router,
    pub(crate) remote_addr: Option<std::net::SocketAddr>,
    pub(crate) headers: tokio_tungstenite::tungstenite::http::HeaderMap,
    pub(crate) extensions: tokio_tungstenite::tungstenite::http::Extensions,
    /// Cancelled to start a graceful close (finish in-flight calls, then close 1001).
    pub(crate) shutdown: CancellationToken,
    /// Cancelled to close at once.
    pub(crate) close: CancellationToken,
    /// Held until the connection ends (the server's connection count and its shutdown
    /// tracker), so that nothing else needs to wait for it.
    pub(crate) hold: Option<Box<dyn Send + Sync>>,
}

/// A running connection: its peer handle, its context, and the task that ends with it.
pub(crate) struct Started {
    pub(crate) peer: Peer,
    pub(crate) done: tokio::task::JoinHandle<CloseReason>,
}

/// Start serving a connection on the current runtime.
pub(crate) fn spawn<S>(ws: WebSocketStream<S>, setup: Setup) -> Started
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel(setup.config.send_queue);
    let peer = Peer::new(
        tx,
        setup.config.call_timeout,
        setup.config.max_message_size,
        setup.config.subscription_buffer,
    );
    let connection_id = crate::context::ConnectionId::next();
    let ctx = Context::new(
        connection_id,
        setup.remote_addr,
        setup.headers,
        setup.extensions,
        peer.clone(),
    );
    let shared = Arc::new(Shared {
        in_flight: Arc::new(Semaphore::new(setup.config.max_in_flight)),
        config: setup.config,
        router: setup.router,
        ctx,
        peer: peer.clone(),
        running: Mutex::new(Running::default()),
        streams: Mutex::new(Streams::default()),
    });
    let span = tracing::debug_span!("connection", id = %connection_id, remote = ?setup.remote_addr);
    let (sink, stream) = ws.split();
    let shutdown = setup.shutdown;
    let close = setup.close;
    let hold = setup.hold;
    let traced = !span.is_disabled();
    let connection = async move {
        tracing::debug!("connection open");
        // The writer's end ends the connection too (a write error means it is gone).
        let writer_done = CancellationToken::new();
        let write = {
            let writer_done = writer_done.clone();
            async move {
                write_loop(sink, rx).await;
                writer_done.cancel();
            }
        };
        let writer = spawn_traced(write, traced.then(tracing::Span::current));
        let reason = read_loop(&shared, stream, &shutdown, &close, &writer_done).await;
        tracing::debug!(%reason, "connection closing");
        finish(&shared, writer, &reason).await;
        drop(hold);
        reason
    };
    // Entering a span on every poll costs; only do it when someone listens.
    let done = spawn_traced(connection, traced.then_some(span));
    Started { peer, done }
}

/// Spawn `fut`, inside `span` if there is one.
fn spawn_traced<F>(fut: F, span: Option<tracing::Span>) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match span {
        Some(span) => tokio::spawn(fut.instrument(span)),
        None => tokio::spawn(fut),
    }
}

async fn read_loop<S>(
    shared: &Arc<Shared>,
    mut stream: SplitStream<WebSocketStream<S>>,
    shutdown: &CancellationToken,
    close: &CancellationToken,
    writer_done: &CancellationToken,
) -> CloseReason
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = &shared.config;
    let mut ping = config.ping_interval.map(|every| {
        let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let mut missed = 0u32;
    // Created once: a fresh `cancelled()` future per message would register and
    // unregister a waiter each time.
    let mut closed = pin!(close.cancelled());
    let mut writer_gone = pin!(writer_done.cancelled());
    let mut shutting_down = pin!(shutdown.cancelled());
    let mut since_yield = 0usize;
    loop {
        // The stream first: while frames are ready, the other branches are not polled at
        // all (they are checked every READ_BURST frames below, and whenever the stream
        // has nothing to read).
        let msg = tokio::select! {
            biased;
            msg = stream.next() => msg,
            _ = &mut closed => return CloseReason::ClosedLocally,
            _ = &mut writer_gone => return CloseReason::Error("the connection could not be written to".into()),
            _ = &mut shutting_down => return drain(shared, stream, close).await,
            _ = tick(&mut ping) => {
                if missed >= config.max_missed_pongs {
                    return CloseReason::PeerUnresponsive;
                }
                missed += 1;
                if shared.peer.sender().send(Message::Ping(Default::default())).await.is_err() {
                    return CloseReason::Error("the writer stopped".into());
                }
                continue;
            }
        };
        // Any frame shows the peer is alive.
        missed = 0;
        let text = match msg {
            None => return CloseReason::ClosedByPeer,
            Some(Err(WsError::Capacity(e))) => {
                tracing::debug!("closing: {e}");
                let limit = config.max_message_size;
                send_close(
                    shared,
                    CloseCode::Size,
                    &format!("message too big: the limit is {limit} bytes"),
                )
                .await;
                // Read what the peer still sends (until its close reply) so the socket is
                // not reset with unread data, which could discard our close frame.
                let _ = tokio::time::timeout(CLOSE_GRACE / 5, async {
                    while let Some(Ok(m)) = stream.next().await {
                        if m.is_close() {
                            break;
                        }
                    }
                })
                .await;
                return CloseReason::MessageTooLarge;
            }
            Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                return CloseReason::ClosedByPeer
            }
            Some(Err(e)) => return CloseReason::Error(e.to_string()),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(bytes))) => match Utf8Bytes::try_from(bytes) {
                // Lenient: a binary frame holding UTF-8 JSON is read like a text frame.
                Ok(text) => text,
                Err(_) => {
                    send(shared, error_frame(&RpcError::parse_error(), "null")).await;
                    continue;
                }
            },
            Some(Ok(Message::Close(_))) => return CloseReason::ClosedByPeer,
            Some(Ok(_)) => continue, // ping (answered by tungstenite), pong, raw frame
        };
        if !handle_frame(shared, &text, close).await {
            return CloseReason::ClosedLocally;
        }
        since_yield += 1;
        if since_yield == READ_BURST {
            since_yield = 0;
            tokio::task::yield_now().await;
            if close.is_cancelled() {
                return CloseReason::ClosedLocally;
            }
            if writer_done.is_cancelled() {
                return CloseReason::Error("the connection could not be written to".into());
            }
            if shutdown.is_cancelled() {
                return drain(shared, stream, close).await;
            }
        }
    }
}

/// Graceful shutdown of one connection: answer new requests with "shutting down", keep
/// taking answers to this side's own calls (handlers finishing may wait for them), and
/// end once every in-flight call has finished.
async fn drain<S>(
    shared: &Arc<Shared>,
    mut stream: SplitStream<WebSocketStream<S>>,
    close: &CancellationToken,
) -> CloseReason
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tracing::debug!("draining: finishing in-flight calls");
    let max = shared.config.max_in_flight as u32;
    let mut all_done = pin!(shared.in_flight.acquire_many(max));
    loop {
        let msg = tokio::select! {
            biased;
            _ = close.cancelled() => return CloseReason::ClosedLocally,
            _ = &mut all_done => return CloseReason::Shutdown,
            msg = stream.next() => msg,
        };
        match msg {
            Some(Ok(Message::Text(text))) => reject_while_draining(shared, &text).await,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return CloseReason::ClosedByPeer,
            Some(Ok(_)) => {}
        }
    }
}

async fn tick(ping: &mut Option<tokio::time::Interval>) {
    match ping {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Handle one text frame. Returns `false` if the connection was closed while waiting
/// for room to run another call.
async fn handle_frame(shared: &Arc<Shared>, text: &Utf8Bytes, close: &CancellationToken) -> bool {
    // The common case, one object: parsed in a single pass.
    if text.trim_start().starts_with('{') {
        return match message::classify_text(text) {
            Ok(msg) => handle_message(shared, msg, text, &Reply::Direct, close).await,
            Err(FrameError::Parse) => {
                send(shared, error_frame(&RpcError::parse_error(), "null")).await;
                true
            }
            Err(FrameError::NotAnObject) => {
                send(shared, error_frame(&RpcError::invalid_request(), "null")).await;
                true
            }
        };
    }
    match parse_frame(text) {
        Err(FrameError::Parse) => send(shared, error_frame(&RpcError::parse_error(), "null")).await,
        Err(FrameError::NotAnObject) => {
            send(shared, error_frame(&RpcError::invalid_request(), "null")).await
        }
        Ok(Frame::Single(raw)) => {
            return handle_message(shared, classify(raw), text, &Reply::Direct, close).await
        }
        Ok(Frame::Batch(items)) => return handle_batch(shared, items, text, close).await,
    }
    true
}

async fn handle_batch(
    shared: &Arc<Shared>,
    items: Vec<&RawValue>,
    text: &Utf8Bytes,
    close: &CancellationToken,
) -> bool {
    if items.is_empty() {
        send(shared, error_frame(&RpcError::invalid_request(), "null")).await;
        return true;
    }
    let limit = shared.config.max_batch_len;
    if items.len() > limit {
        let err = RpcError::invalid_request().with_data(format!(
            "a batch of {} messages exceeds the limit of {limit}",
            items.len()
        ));
        send(shared, error_frame(&err, "null")).await;
        return true;
    }
    let messages: Vec<Incoming<'_>> = items.into_iter().map(classify).collect();
    let answered = messages.iter().filter(|m| expects_answer(m)).count();
    let reply = Reply::Batch(Arc::new(BatchReply {
        parts: Mutex::new(Vec::with_capacity(answered)),
        remaining: AtomicU64::new(answered as u64),
    }));
    for m in messages {
        if !handle_message(shared, m, text, &reply, close).await {
            return false;
        }
    }
    true
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
    frame: &Utf8Bytes,
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
        Incoming::Invalid { id } => {
            let id = id.map_or("null", |i| i.get());
            deliver(shared, reply, id, Err(RpcError::invalid_request())).await;
        }
        Incoming::Request { method, params, id } => {
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
            let Some(route) = shared.router.get(&method) else {
                if let Some(id) = id {
                    deliver(shared, reply, id.get(), Err(RpcError::method_not_found())).await;
                }
                return true;
            };
            let handler = match route {
                Route::Call(handler) => handler,
                Route::Unsubscribe => {
                    let found = unsubscribe(shared, params);
                    if let Some(id) = id {
                        deliver(shared, reply, id.get(), Ok(found.to_string())).await;
                    }
                    return true;
                }
                Route::Subscribe(handler) => {
                    // A subscription needs an id to answer with; as a notification it is
                    // ignored.
                    let Some(id) = id else { return true };
                    let Some(permit) = acquire(shared, close).await else {
                        return false;
                    };
                    let span = tracing::debug_span!("subscribe", method = &*method, id = id.get());
                    let setup = span.in_scope(|| {
                        start_subscribe(&**handler, shared.ctx.clone(), Params::new(params))
                    });
                    let task = subscribe(
                        shared.clone(),
                        setup,
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
            let fut =
                span.in_scope(|| start_call(&**handler, shared.ctx.clone(), Params::new(params)));
            run(shared, fut, id.map(|i| i.get()), reply, permit, span).await;
        }
    }
    true
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
fn route_to_subscription(shared: &Shared, params: &RawValue, frame: &Utf8Bytes) -> bool {
    let subs = shared.peer.subscriptions();
    if subs.is_empty() || !params.get().starts_with('{') {
        return false;
    }
    let mut unsubscribe = Vec::new();
    let handled = matches!(subs.route(params, frame, &mut unsubscribe), Routed::Handled);
    for (method, id) in unsubscribe {
        tracing::debug!(%id, "subscription lagged or dropped; unsubscribing");
        shared.peer.send_detached(unsubscribe_frame(&method, &id));
    }
    handled
}

/// Set up a stream: run the handler's setup, answer the subscription id, then forward
/// the items until the stream ends, fails, or is unsubscribed.
async fn subscribe(
    shared: Arc<Shared>,
    setup: SubscribeFuture,
    method: Arc<str>,
    call_id: Box<str>,
    reply: Reply,
    permit: OwnedSemaphorePermit,
) {
    let items = match CatchPanic(setup).await {
        Ok(items) => items,
        Err(e) => {
            deliver(&shared, &reply, &call_id, Err(e)).await;
            return;
        }
    };
    let limit = shared.config.max_subscriptions;
    let (abort, registration) = AbortHandle::new_pair();
    let sub_id = {
        let mut streams = shared.streams.lock().unwrap_or_else(|e| e.into_inner());
        if streams.active.len() >= limit {
            None
        } else {
            streams.next_id += 1;
            let sub_id = streams.next_id;
            streams.active.insert(sub_id, abort);
            Some(sub_id)
        }
    };
    let Some(sub_id) = sub_id else {
        let err = RpcError::limit_exceeded(format!(
            "too many subscriptions on this connection (the limit is {limit})"
        ));
        deliver(&shared, &reply, &call_id, Err(err)).await;
        return;
    };
    // The answer goes out before the first item.
    deliver(&shared, &reply, &call_id, Ok(sub_id.to_string())).await;
    drop(permit);
    tracing::debug!(sub_id, "subscription started");
    let produced = Abortable::new(produce(&shared, &method, sub_id, items), registration).await;
    shared
        .streams
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .active
        .remove(&sub_id);
    if produced.is_err() {
        tracing::debug!(sub_id, "subscription stopped by unsubscribe or disconnect");
    }
}

/// Forward items as notifications; then announce the end (`"error": null`) or the failure.
async fn produce(shared: &Shared, method: &str, sub_id: u64, mut items: ItemStream) {
    let limit = shared.config.max_message_size;
    loop {
        let (result, error) = match items.next().await {
            Some(Ok(item)) => (Some(item), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        let end = result.is_none();
        let mut frame =
            message::subscription_frame(method, sub_id, result.as_deref(), error.as_ref());
        if frame.len() > limit {
            let err = RpcError::internal(format!(
                "a stream item of {} bytes exceeds the limit of {limit} bytes",
                frame.len()
            ));
            frame = message::subscription_frame(method, sub_id, None, Some(&err));
            send(shared, frame).await;
            return;
        }
        send(shared, frame).await;
        if end {
            return;
        }
    }
}

/// `Stream.unsubscribe` with `[ID]` (or `{"subscription": ID}`): stop that stream.
fn unsubscribe(shared: &Shared, params: Option<&RawValue>) -> bool {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum UnsubscribeParams {
        Positional((u64,)),
        Named { subscription: u64 },
    }
    let sub_id = match params.map(|p| serde_json::from_str::<UnsubscribeParams>(p.get())) {
        Some(Ok(UnsubscribeParams::Positional((id,))))
        | Some(Ok(UnsubscribeParams::Named { subscription: id })) => id,
        _ => return false,
    };
    let entry = shared
        .streams
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .active
        .remove(&sub_id);
    match entry {
        Some(abort) => {
            abort.abort();
            true
        }
        None => false,
    }
}

/// Run a handler: inline if it completes on its first poll, else in a task of its own
/// that `$/cancelRequest` can abort.
async fn run(
    shared: &Arc<Shared>,
    fut: MethodFuture,
    id: Option<&str>,
    reply: &Reply,
    permit: OwnedSemaphorePermit,
    span: tracing::Span,
) {
    // A panicking handler answers -32603; the connection and the server carry on.
    let mut fut = CatchPanic(fut);
    let first = span.in_scope(|| poll_once(&mut fut));
    if let Some(out) = first.await {
        if let Some(id) = id {
            deliver(shared, reply, id, out).await;
        }
        drop(permit);
        return;
    }
    let id: Option<Box<str>> = id.map(Into::into);
    let Some(id) = id else {
        // A notification: run it; nobody waits for it.
        tokio::spawn(
            async move {
                let _ = fut.await;
                drop(permit);
            }
            .instrument(span),
        );
        return;
    };
    let (abort, registration) = AbortHandle::new_pair();
    let token = {
        let mut running = shared.running.lock().unwrap_or_else(|e| e.into_inner());
        running.next_token += 1;
        let token = running.next_token;
        // A second in-flight call with the same id is served but cannot be cancelled.
        let registered = !running.calls.contains_key(&id);
        if registered {
            running.calls.insert(id.clone(), (token, abort));
        }
        registered.then_some(token)
    };
    let shared = shared.clone();
    let reply = reply.clone();
    tokio::spawn(
        async move {
            if let Ok(out) = Abortable::new(fut, registration).await {
                // Whoever removes the entry answers: this task, or a cancellation.
                let ours = match token {
                    None => true,
                    Some(token) => {
                        let mut running = shared.running.lock().unwrap_or_else(|e| e.into_inner());
                        match running.calls.get(&id) {
                            Some((t, _)) if *t == token => {
                                running.calls.remove(&id);
                                true
                            }
                            _ => false,
                        }
                    }
                };
                if ours {
                    deliver(&shared, &reply, &id, out).await;
                }
            }
            drop(permit);
        }
        .instrument(span),
    );
}

/// A boxed future answering `Result<T, RpcError>`: a handler's call or a stream's setup.
type Answer<T> = std::pin::Pin<Box<dyn Future<Output = Result<T, RpcError>> + Send>>;

/// Start a handler (`start` decodes the params and makes its future); a panic while it
/// does answers -32603.
fn start_guarded<T: Send + 'static>(start: impl FnOnce() -> Answer<T>) -> Answer<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(start)) {
        Ok(fut) => fut,
        Err(panic) => Box::pin(std::future::ready(Err(panicked(&*panic)))),
    }
}

fn start_call(
    handler: &dyn crate::router::Method,
    ctx: Context,
    params: Params<'_>,
) -> MethodFuture {
    start_guarded(|| handler.call(ctx, params))
}

fn start_subscribe(
    handler: &dyn SubscribeMethod,
    ctx: Context,
    params: Params<'_>,
) -> SubscribeFuture {
    start_guarded(|| handler.subscribe(ctx, params))
}

/// A handler's future whose panic becomes a `-32603` answer; the connection and the
/// server carry on.
struct CatchPanic<T>(Answer<T>);

impl<T> Future for CatchPanic<T> {
    type Output = Result<T, RpcError>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Self::Output> {
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
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// `$/cancelRequest {"id": ID}`: abort the handler of that request and answer it -32800.
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
    let entry = shared
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .calls
        .remove(id);
    if let Some((_, abort)) = entry {
        abort.abort();
        tracing::debug!(id, "call cancelled by the peer");
        // Cancellable calls are never in a batch, so the answer goes straight out.
        send(shared, error_frame(&RpcError::cancelled(), id)).await;
    }
}

/// While draining for shutdown: answer new requests with an error, still accept responses
/// (handlers finishing may be waiting for answers from the peer).
async fn reject_while_draining(shared: &Arc<Shared>, text: &Utf8Bytes) {
    let shutting_down = || {
        RpcError::new(
            crate::error::code::SERVER_SHUTTING_DOWN,
            "Server shutting down",
        )
    };
    let answer = |msg: Incoming<'_>| -> Option<String> {
        match msg {
            Incoming::Response { id, outcome } => {
                shared.peer.complete(id, outcome, text);
                None
            }
            Incoming::Request { id: Some(id), .. } => {
                Some(response_json(id.get(), Err(shutting_down())))
            }
            Incoming::Request { id: None, .. } => None,
            Incoming::Invalid { id } => Some(response_json(
                id.map_or("null", |i| i.get()),
                Err(RpcError::invalid_request()),
            )),
        }
    };
    let out = match parse_frame(text) {
        Ok(Frame::Single(raw)) => answer(classify(raw)),
        Ok(Frame::Batch(items)) => {
            let parts: Vec<String> = items
                .into_iter()
                .filter_map(|i| answer(classify(i)))
                .collect();
            (!parts.is_empty()).then(|| format!("[{}]", parts.join(",")))
        }
        Err(_) => Some(error_frame(&RpcError::parse_error(), "null")),
    };
    if let Some(out) = out {
        send(shared, out).await;
    }
}

fn response_json(id: &str, out: MethodResult) -> String {
    match out {
        // The result's own buffer becomes the frame: serialization left it room (serde_json
        // starts at 128 bytes and doubles), so a small result needs no allocation and a
        // large one no second copy.
        Ok(result) => message::wrap_result(result, id),
        Err(e) => {
            let mut s = String::new();
            message::write_error(&mut s, &e, id);
            s
        }
    }
}

fn error_frame(e: &RpcError, id: &str) -> String {
    response_json(id, Err(e.clone()))
}

/// Send a call's answer, or add it to its batch.
async fn deliver(shared: &Arc<Shared>, reply: &Reply, id: &str, out: MethodResult) {
    let mut json = response_json(id, out);
    let limit = shared.config.max_message_size;
    if json.len() > limit {
        let err = RpcError::internal(format!(
            "the response is {} bytes, over the limit of {limit} bytes",
            json.len()
        ));
        tracing::warn!(id, "{}", err);
        json = error_frame(&err, id);
    }
    match reply {
        Reply::Direct => send(shared, json).await,
        Reply::Batch(batch) => {
            let done = {
                let mut parts = batch.parts.lock().unwrap_or_else(|e| e.into_inner());
                parts.push(json);
                batch.remaining.fetch_sub(1, Ordering::AcqRel) == 1
            };
            if done {
                let parts =
                    std::mem::take(&mut *batch.parts.lock().unwrap_or_else(|e| e.into_inner()));
                let mut frame =
                    String::with_capacity(parts.iter().map(|p| p.len() + 1).sum::<usize>() + 2);
                frame.push('[');
                frame.push_str(&parts.join(","));
                frame.push(']');
                if frame.len() > limit {
                    frame = error_frame(
                        &RpcError::internal("the batch response exceeds the size limit"),
                        "null",
                    );
                }
                send(shared, frame).await;
            }
        }
    }
}

async fn send(shared: &Shared, frame: String) {
    let tx = shared.peer.sender();
    // Usually the queue has room: no need to set up a wait. If the writer is gone, the
    // reader notices the connection closing.
    match tx.try_send(Message::Text(frame.into())) {
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        Err(mpsc::error::TrySendError::Full(msg)) => {
            let _ = tx.send(msg).await;
        }
    }
}

async fn send_close(shared: &Shared, code: CloseCode, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(
        CLOSE_GRACE,
        shared.peer.sender().send(Message::Close(Some(frame))),
    )
    .await;
}

/// After the reader: fail pending calls, abort handlers, say goodbye, stop the writer.
async fn finish(shared: &Shared, mut writer: tokio::task::JoinHandle<()>, reason: &CloseReason) {
    shared.peer.close(&reason.to_string());
    let aborted: Vec<_> = {
        let mut running = shared.running.lock().unwrap_or_else(|e| e.into_inner());
        running.calls.drain().map(|(_, (_, a))| a).collect()
    };
    for a in aborted {
        a.abort();
    }
    let streams: Vec<_> = {
        let mut streams = shared.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams.active.drain().map(|(_, a)| a).collect()
    };
    for a in streams {
        a.abort();
    }
    match reason {
        CloseReason::Shutdown => send_close(shared, CloseCode::Away, "server shutting down").await,
        CloseReason::ClosedLocally => send_close(shared, CloseCode::Normal, "").await,
        // Already queued by the reader.
        CloseReason::MessageTooLarge => {}
        // Nothing more to say to a peer that is gone, unresponsive or already told.
        _ => writer.abort(),
    }
    if tokio::time::timeout(CLOSE_GRACE, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

/// Drain the queue: feed every frame that is ready, then flush once.
async fn write_loop<S>(
    mut sink: SplitSink<WebSocketStream<S>, Message>,
    mut rx: mpsc::Receiver<Message>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Grows with the largest burst; small to start, so idle connections stay cheap.
    let mut burst = Vec::with_capacity(4);
    let mut last_flush = std::time::Instant::now() - BURST_WINDOW;
    loop {
        if rx.recv_many(&mut burst, 64).await == 0 {
            break;
        }
        // When frames are streaming (several ready, or the last flush was moments ago), let
        // the tasks that are ready run once, so that the frames they are about to queue go
        // out in this flush too. A lone frame of a request/response ping-pong is flushed at
        // once: yielding would cost it a turn of the scheduler.
        let streaming = burst.len() > 1 || last_flush.elapsed() < BURST_WINDOW;
        if streaming && burst.len() < 64 {
            tokio::task::yield_now().await;
            while burst.len() < 256 {
                match rx.try_recv() {
                    Ok(msg) => burst.push(msg),
                    Err(_) => break,
                }
            }
        }
        let mut closing = false;
        for msg in burst.drain(..) {
            closing = matches!(msg, Message::Close(_));
            if let Err(e) = sink.feed(msg).await {
                if !matches!(e, WsError::ConnectionClosed | WsError::AlreadyClosed) {
                    tracing::debug!("write failed: {e}");
                }
                return;
            }
            if closing {
                break;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
        last_flush = std::time::Instant::now();
        if closing {
            break;
        }
    }
    let _ = sink.close().await;
}
