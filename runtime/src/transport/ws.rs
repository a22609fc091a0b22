// Over ~500 lines: the two tasks of one WebSocket connection (reader and writer), pings and
// the write deadline, which share the connection's state; the server's upgrade is apart in
// ws_upgrade.rs.
//! The WebSocket door: a reader task that feeds frames to the [`Session`] and a writer
//! task that drains its outgoing queue and flushes once per burst.
//!
//! ```text
//!            ┌──────────── reader task ────────────┐
//!  socket ──►│ frame → Session::handle_frame ──────┼──┐  (handlers inline if ready at
//!            │ keep-alive pings, size limit, close │  │   once, else tasks of their own)
//!            └─────────────────────────────────────┘  ▼
//!  socket ◄── writer task ◄── bounded queue ◄── responses, requests, pings
//! ```
//!
//! The session's answers and stream frames are written by the JSON-RPC encoder
//! ([`json_rpc`]) and queued as [`Frame`]s; the writer turns each into a tungstenite
//! message (a text frame's `String` becomes its bytes without a copy). What this door
//! allows the session is [`WEBSOCKET_DOOR`].
//!
//! The number of calls served at once is bounded (`max_in_flight`); at the bound the
//! reader stops reading until a call finishes, so a flood slows the peer down instead of
//! growing memory.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::codec::text::Text;
use crate::config::ConnectionConfig;
use crate::error::RpcError;
use crate::session::outbound::{json_rpc, DoorCaps, Encoder, Frame};
use crate::session::peer::Peer;
use crate::session::router::Router;
use crate::session::{CloseReason, Origin, Session};
use crate::telemetry;
use crate::transport::deadline::{MessageWatch, TooSlow};
use crate::transport::wamp::{Flow, Input, Serializer, Wamp, WampSetup, WAMP_DOOR};

/// A WebSocket speaking JSON-RPC: everything, in both directions.
pub(crate) const WEBSOCKET_DOOR: DoorCaps = DoorCaps {
    no_peer_calls: None,
    streams: true,
    ends_with_stream: false,
    process_unique_sub_ids: false,
    via: telemetry::Via::WebSocket,
    door: crate::session::policy::Door::WebSocket,
};

/// The subprotocol wirecall speaks (`Sec-WebSocket-Protocol`).
pub const SUBPROTOCOL: &str = "jsonrpc-2.0";

/// After this many frames read in a row, the reader lets other tasks run: the callers it
/// woke and the writer, so that answers start going out while the rest is read.
const READ_BURST: usize = 32;

/// Frames queued this soon after the previous flush count as part of a stream of frames.
const BURST_WINDOW: Duration = Duration::from_micros(20);

/// How long the writer may take to send what is queued after the reader has finished.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Everything needed to run one connection.
pub(crate) struct Setup {
    pub(crate) config: Arc<ConnectionConfig>,
    pub(crate) router: Router,
    pub(crate) origin: Origin,
    /// Cancelled to start a graceful close (finish in-flight calls, then close 1001).
    pub(crate) shutdown: CancellationToken,
    /// Cancelled to close at once.
    pub(crate) close: CancellationToken,
    /// Held until the connection ends (the server's connection count and its shutdown
    /// tracker), so that nothing else needs to wait for it.
    pub(crate) hold: Option<Box<dyn Send + Sync>>,
    /// When the session's identity expires (time left at the handshake): the server then
    /// closes with code 4401. (For a WAMP client that authenticates with `ticket`, the
    /// time it has to do so; then its identity's.)
    pub(crate) expires: Option<Duration>,
    /// `Some` when the client chose WAMP.
    pub(crate) wamp: Option<WampSetup>,
    /// A server's deadline for a message the peer has started to send (its stream counts
    /// what it reads into the watch).
    pub(crate) messages: Option<MessageWatch>,
}

/// The close code of a connection whose authentication expired.
pub const EXPIRED_CLOSE_CODE: u16 = 4401;

/// A running connection: its peer handle, and the task that ends with it.
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
    let remote = setup.origin.remote_addr;
    // WAMP: an adapter that decodes the client's messages for the session and is the
    // session's encoder (its frames go straight to the writer).
    let write_deadline = write_deadline(&setup.config);
    let (door, encoder, wamp) = match setup.wamp {
        None => (WEBSOCKET_DOOR, json_rpc(), None),
        Some(wamp) => {
            let adapter = Wamp::new(setup.router.clone(), wamp, tx.clone());
            (
                WAMP_DOOR,
                adapter.clone() as Arc<dyn Encoder>,
                Some(adapter),
            )
        }
    };
    let session = Session::new(setup.config, setup.router, door, setup.origin, tx, encoder);
    let peer = session.peer().clone();
    let span = tracing::debug_span!("connection", id = %session.connection_id(), remote = ?remote);
    let (sink, stream) = ws.split();
    let shutdown = setup.shutdown;
    let close = setup.close;
    let hold = setup.hold;
    let server_side = hold.is_some();
    let expires = setup.expires;
    let messages = setup.messages;
    let traced = !span.is_disabled();
    let connection = async move {
        tracing::debug!("connection open");
        // The writer's end ends the connection too (a write error means it is gone).
        let writer_done = CancellationToken::new();
        let write = {
            let writer_done = writer_done.clone();
            async move {
                write_loop(sink, rx, write_deadline).await;
                writer_done.cancel();
            }
        };
        let writer = spawn_traced(write, traced.then(tracing::Span::current));
        let ends = Ends {
            shutdown: &shutdown,
            close: &close,
            writer_done: &writer_done,
            expires,
            messages,
        };
        let reason = read_loop(&session, stream, ends, wamp.as_ref()).await;
        tracing::debug!(%reason, "connection closing");
        if let (Some(wamp), CloseReason::Shutdown) = (&wamp, &reason) {
            // A graceful shutdown says goodbye the WAMP way first.
            wamp.goodbye_on_shutdown().await;
        }
        // (Only a server holds anything: it is the side that closes on expiry.)
        finish(&session, writer, &reason, server_side).await;
        if let Some(wamp) = &wamp {
            // Its calls' timers go with the session.
            wamp.end();
        }
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

/// What ends a connection's reading, besides the peer.
struct Ends<'a> {
    /// A graceful close (finish in-flight calls, then close 1001).
    shutdown: &'a CancellationToken,
    /// A close at once.
    close: &'a CancellationToken,
    /// The writer stopped: the connection cannot be written to.
    writer_done: &'a CancellationToken,
    /// The identity's time left: then close with 4401.
    expires: Option<Duration>,
    /// A message in progress arriving too slowly: then drop the connection.
    messages: Option<MessageWatch>,
}

async fn read_loop<S>(
    session: &Session,
    mut stream: SplitStream<WebSocketStream<S>>,
    ends: Ends<'_>,
    wamp: Option<&Arc<Wamp>>,
) -> CloseReason
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ends {
        shutdown,
        close,
        writer_done,
        expires,
        mut messages,
    } = ends;
    let config = session.config();
    let mut deadline = expires.map(|left| tokio::time::Instant::now() + left);
    let mut expired = deadline.map(|at| Box::pin(tokio::time::sleep_until(at)));
    // A WAMP session that must still authenticate can be dropped to make room (the gate).
    let mut evicted = wamp.and_then(|w| w.evicted());
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
    // A frame read while the previous one waited for room (see below).
    let mut read_ahead = None;
    loop {
        // The stream first: while frames are ready, the other branches are not polled at
        // all (they are checked every READ_BURST frames below, and whenever the stream
        // has nothing to read).
        let msg = if let Some(msg) = read_ahead.take() {
            msg
        } else {
            tokio::select! {
                biased;
                // An expired identity is not served another frame, however fast they come.
                _ = until(&mut expired, evicted.as_ref()) => return expire(session, wamp).await,
                msg = stream.next() => msg,
                why = std::future::poll_fn(|cx| match &mut messages {
                    Some(watch) => watch.poll_expired(cx),
                    None => std::task::Poll::Pending,
                }) => return too_slow(why),
                _ = &mut closed => return CloseReason::ClosedLocally,
                _ = &mut writer_gone => return CloseReason::Error("the connection could not be written to".into()),
                _ = &mut shutting_down => return drain(session, stream, close).await,
                _ = tick(&mut ping) => {
                    if missed >= config.max_missed_pongs {
                        return CloseReason::PeerUnresponsive;
                    }
                    missed += 1;
                    if !ping_peer(session) {
                        return CloseReason::Error("the writer stopped".into());
                    }
                    continue;
                }
            }
        };
        // Any frame shows the peer is alive.
        missed = 0;
        if let Some(watch) = &mut messages {
            watch.message();
        }
        let input = match msg {
            None => return CloseReason::ClosedByPeer,
            Some(Err(WsError::Capacity(e))) => {
                tracing::debug!("closing: {e}");
                let limit = config.max_message_size;
                send_close(
                    session,
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
            Some(Ok(Message::Text(text))) => Input::Text(Text::from(text)),
            // WAMP's binary serializers: the bytes as they are.
            Some(Ok(Message::Binary(bytes)))
                if wamp.is_some_and(|w| w.serializer() != Serializer::Json) =>
            {
                Input::Bytes(bytes)
            }
            Some(Ok(Message::Binary(bytes))) => match Text::try_from(bytes) {
                // Lenient: a binary frame holding UTF-8 JSON is read like a text frame.
                Ok(text) => Input::Text(text),
                Err(_) => {
                    session.refuse(RpcError::parse_error()).await;
                    continue;
                }
            },
            Some(Ok(Message::Close(Some(frame))))
                if u16::from(frame.code) == EXPIRED_CLOSE_CODE =>
            {
                return CloseReason::Expired
            }
            Some(Ok(Message::Close(_))) => return CloseReason::ClosedByPeer,
            Some(Ok(_)) => continue, // ping (answered by tungstenite), pong, raw frame
        };
        let handled = async {
            match (wamp, input) {
                (Some(wamp), input) => {
                    let handled = wamp.incoming(input, session, close).await;
                    !matches!(handled, Flow::Close)
                }
                (None, Input::Text(text)) => session.handle_frame(&text, close).await.is_some(),
                (None, Input::Bytes(_)) => true, // (only a binary WAMP session reads bytes)
            }
        };
        let mut handled = pin!(handled);
        // Usually the frame is handled at once. If not, the session waits for room (calls
        // in flight at the limit, or a full send queue): expiry, the writer's end (a peer
        // that does not read, past the write deadline) and keep-alive pings go on meanwhile.
        let go_on = match futures_util::poll!(handled.as_mut()) {
            std::task::Poll::Ready(go_on) => go_on,
            std::task::Poll::Pending => loop {
                tokio::select! {
                    biased;
                    _ = until(&mut expired, evicted.as_ref()) => return expire(session, wamp).await,
                    _ = &mut closed => return CloseReason::ClosedLocally,
                    _ = &mut writer_gone => return CloseReason::Error("the connection could not be written to".into()),
                    go_on = handled.as_mut() => break go_on,
                    // One frame ahead, no more (the wait is backpressure): a peer that has
                    // closed, or that answers pings, is seen meanwhile.
                    msg = stream.next(), if read_ahead.is_none() => match msg {
                        None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                            return CloseReason::ClosedByPeer
                        }
                        Some(Ok(Message::Close(frame))) => {
                            return match frame {
                                Some(f) if u16::from(f.code) == EXPIRED_CLOSE_CODE => CloseReason::Expired,
                                _ => CloseReason::ClosedByPeer,
                            }
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => missed = 0,
                        other => read_ahead = Some(other),
                    },
                    _ = tick(&mut ping) => {
                        // The peer's pongs wait behind the frames not read yet: no pong is
                        // missed while this side does not read. A peer that does not read
                        // either is caught by the writer's deadline.
                        if !ping_peer(session) {
                            return CloseReason::Error("the writer stopped".into());
                        }
                    }
                }
            },
        };
        if !go_on {
            return CloseReason::ClosedLocally;
        }
        // A WAMP client authenticated (`ticket`): its identity's expiry from now on.
        if let Some(left) = wamp.and_then(|w| w.take_expiry()) {
            deadline = left.map(|left| tokio::time::Instant::now() + left);
            expired = deadline.map(|at| Box::pin(tokio::time::sleep_until(at)));
            evicted = None;
        }
        since_yield += 1;
        if since_yield == READ_BURST {
            since_yield = 0;
            tokio::task::yield_now().await;
            if deadline.is_some_and(|at| tokio::time::Instant::now() >= at) {
                return expire(session, wamp).await;
            }
            if close.is_cancelled() {
                return CloseReason::ClosedLocally;
            }
            if writer_done.is_cancelled() {
                return CloseReason::Error("the connection could not be written to".into());
            }
            if shutdown.is_cancelled() {
                return drain(session, stream, close).await;
            }
        }
    }
}

/// Graceful shutdown of one connection: answer new requests with "shutting down", keep
/// taking answers to this side's own calls (handlers finishing may wait for them), and
/// end once every in-flight call has finished.
async fn drain<S>(
    session: &Session,
    mut stream: SplitStream<WebSocketStream<S>>,
    close: &CancellationToken,
) -> CloseReason
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tracing::debug!("draining: finishing in-flight calls");
    let mut all_done = pin!(session.idle());
    loop {
        let msg = tokio::select! {
            biased;
            _ = close.cancelled() => return CloseReason::ClosedLocally,
            _ = &mut all_done => return CloseReason::Shutdown,
            msg = stream.next() => msg,
        };
        match msg {
            Some(Ok(Message::Text(text))) => session.reject_while_draining(&text.into()).await,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return CloseReason::ClosedByPeer,
            Some(Ok(_)) => {}
        }
    }
}

/// A message in progress arrived too slowly: the connection is dropped (the peer is in the
/// middle of a frame; no close handshake is waited for).
#[cold]
fn too_slow(why: TooSlow) -> CloseReason {
    telemetry::read_cut(match why {
        TooSlow::Rate => "message_rate",
        TooSlow::Timeout => "message_timeout",
    });
    tracing::debug!("closing: a message is {why}");
    CloseReason::Error(format!("a message from the peer was {why}"))
}

/// The identity's expiry, or (a session still authenticating) its eviction by the gate;
/// never without either, the common case, which costs no more than a match.
async fn until(
    expired: &mut Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    evicted: Option<&CancellationToken>,
) {
    match (expired, evicted) {
        (None, None) => std::future::pending().await,
        (Some(sleep), None) => sleep.as_mut().await,
        (None, Some(evicted)) => evicted.cancelled().await,
        (Some(sleep), Some(evicted)) => {
            tokio::select! {
                () = sleep.as_mut() => {}
                () = evicted.cancelled() => {}
            }
        }
    }
}

/// The identity expired: stop its handlers at once, then say why (code 4401; a WAMP
/// session first ends the WAMP way).
async fn expire(session: &Session, wamp: Option<&Arc<Wamp>>) -> CloseReason {
    tracing::debug!("closing: the authentication expired");
    session.end(&CloseReason::Expired);
    if let Some(wamp) = wamp {
        wamp.expired().await;
    }
    send_close(
        session,
        CloseCode::from(EXPIRED_CLOSE_CODE),
        "authentication expired",
    )
    .await;
    CloseReason::Expired
}

/// Queue a keep-alive ping, unless the queue is full (then the writer is busy, and its
/// deadline watches the peer). `false` if the writer is gone.
fn ping_peer(session: &Session) -> bool {
    match session.peer().sender().try_send(Frame::Ping) {
        Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
        Err(mpsc::error::TrySendError::Closed(_)) => false,
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

async fn send_close(session: &Session, code: CloseCode, reason: &str) {
    let frame = Frame::Close(Some((code.into(), reason.into())));
    let _ = tokio::time::timeout(CLOSE_GRACE, session.peer().sender().send(frame)).await;
}

/// A frame as tungstenite writes it. (A text frame's `String` becomes its bytes without a
/// copy.)
pub(crate) fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Text(text) => Message::Text(text.into()),
        Frame::Binary(bytes) => Message::Binary(bytes.into()),
        Frame::Ping => Message::Ping(Default::default()),
        Frame::Close(None) => Message::Close(None),
        Frame::Close(Some((code, reason))) => Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        })),
    }
}

/// After the reader: end the session (fail pending calls, abort handlers), say goodbye,
/// stop the writer.
async fn finish(
    session: &Session,
    mut writer: tokio::task::JoinHandle<()>,
    reason: &CloseReason,
    server_side: bool,
) {
    session.end(reason);
    match reason {
        CloseReason::Shutdown => send_close(session, CloseCode::Away, "server shutting down").await,
        CloseReason::ClosedLocally => send_close(session, CloseCode::Normal, "").await,
        // Already queued by the reader.
        CloseReason::MessageTooLarge => {}
        CloseReason::Expired if server_side => {}
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

/// How long one write may wait for the peer to take our bytes: as long as a peer may stay
/// silent before it counts as dead (ping interval × missed pongs, 60 s by default). A peer
/// that stops reading is dropped then, instead of holding its slot and a full queue of
/// answers for ever. No deadline when keep-alive is off.
fn write_deadline(config: &ConnectionConfig) -> Option<Duration> {
    config
        .ping_interval
        .map(|every| every.saturating_mul(config.max_missed_pongs.max(1)))
}

/// Drain the queue: feed every frame that is ready, then flush once. Ends when a write
/// takes longer than `deadline`.
async fn write_loop<S>(
    mut sink: SplitSink<WebSocketStream<S>, Message>,
    mut rx: mpsc::Receiver<Frame>,
    deadline: Option<Duration>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut stall = Stall::new(deadline);
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
        let mut bytes = 0;
        for frame in burst.drain(..) {
            closing = matches!(frame, Frame::Close(_));
            bytes += frame.len();
            match stall.within(sink.feed(to_message(frame))).await {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    if !matches!(e, WsError::ConnectionClosed | WsError::AlreadyClosed) {
                        tracing::debug!("write failed: {e}");
                    }
                    return;
                }
                None => return stalled(),
            }
            if closing {
                break;
            }
        }
        telemetry::sent(telemetry::Via::WebSocket, bytes);
        match stall.within(sink.flush()).await {
            Some(Ok(())) => {}
            Some(Err(_)) => return,
            None => return stalled(),
        }
        last_flush = std::time::Instant::now();
        if closing {
            break;
        }
    }
    let _ = sink.close().await;
}

/// The writer's deadline: how long the peer may keep it waiting, counted from the moment a
/// write first has to wait and ended by any write that completes. Writes that complete at
/// once (nearly all) cost nothing — no clock read, no timer; a wait arms one timer, kept
/// for the connection and only moved afterwards.
struct Stall {
    deadline: Option<Duration>,
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    armed: bool,
}

impl Stall {
    fn new(deadline: Option<Duration>) -> Self {
        Stall {
            deadline,
            timer: None,
            armed: false,
        }
    }

    /// `fut`'s output, or `None` if the peer kept the writer waiting past the deadline.
    async fn within<T>(&mut self, fut: impl Future<Output = T>) -> Option<T> {
        let mut fut = pin!(fut);
        std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(out) = fut.as_mut().poll(cx) {
                self.armed = false;
                return std::task::Poll::Ready(Some(out));
            }
            let Some(deadline) = self.deadline else {
                return std::task::Poll::Pending;
            };
            if !self.armed {
                self.armed = true;
                let at = tokio::time::Instant::now() + deadline;
                match &mut self.timer {
                    Some(timer) => timer.as_mut().reset(at),
                    None => self.timer = Some(Box::pin(tokio::time::sleep_until(at))),
                }
            }
            match self.timer.as_mut().map(|timer| timer.as_mut().poll(cx)) {
                Some(std::task::Poll::Ready(())) => std::task::Poll::Ready(None),
                _ => std::task::Poll::Pending,
            }
        })
        .await
    }
}

#[cold]
fn stalled() {
    tracing::debug!("closing: the peer has not read what was sent within the write deadline");
}
