//! The session layer: everything one conversation with a peer needs that is not a socket.
//!
//! The seam between the doors and everything behind them. A [`Session`] takes messages
//! in ([`Session::handle_frame`] decodes a JSON-RPC frame with the codec, in one pass, into
//! the codec's `Incoming` messages; a door with a codec of its own, WAMP's, decodes them
//! itself and calls [`Session::handle_message`], the same entry), dispatches requests to the
//! [`Router`](router::Router)'s handlers (inline when they finish at once, else as tasks
//! that `$/cancelRequest` can abort), collects the answers of batches, serves streams, and
//! hands responses to this side's own pending calls ([`peer`]).
//!
//! Its output is structured: answers, errors, stream items and ends, topic publications,
//! gaps and positions go as [`Event`]s to the [`Encoder`] the door supplied, and the
//! encoded message goes to the door's writer queue as a [`Frame`] (or, for a POST, as its
//! one answer). What a door allows — calls to the peer, streams, one stream then the end,
//! how subscription ids are numbered, its metrics label — is [`DoorCaps`], data the door
//! passes in: the session names no door and imports no transport type. Each door — the
//! WebSocket reader/writer, an HTTP POST, an SSE response, the HTTP client, WAMP — is an
//! adapter that feeds it messages and writes out what it queues. Requests and
//! notifications this side sends through its [`Peer`] are events too
//! ([`Event::Request`]), written by the same encoder.
//!
//! ```text
//!  door ──frame──► Session::handle_frame ─► decode ─┐
//!  door with its own codec ──decoded message─────────┴─► Session::handle_message
//!      ─► request?  → handler (router) ────────────────────────────────────────┐
//!      ─► response? → Peer (pending)                                           │
//!  door ◄──Frame── queue ◄── door's Encoder ◄── Event (answer, batch, item, end, gap,
//!                                                    Peer's requests) ◄───────┘
//! ```

pub(crate) mod caller;
pub(crate) mod context;
mod dispatch;
pub(crate) mod error;
pub(crate) mod guard;
pub(crate) mod outbound;
pub(crate) mod peer;
pub(crate) mod policy;
#[cfg(feature = "rate-limit")]
pub(crate) mod rate_limit;
pub(crate) mod router;
mod streams;
pub(crate) mod subscription;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::future::AbortHandle;
use http::{Extensions, HeaderMap};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::ConnectionConfig;
use crate::error::RpcError;
use context::{ConnectionId, Context};
use outbound::{DoorCaps, Encoder, Event, Frame};
use peer::Peer;
use router::Router;

pub(crate) use outbound::error_frame;

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
    /// The connection's authentication expired (close code 4401): a client reconnects
    /// with a fresh token.
    Expired,
    /// A transport or protocol error.
    Error(String),
    /// There never was a connection to call over (the door cannot carry calls to this
    /// side, e.g. an HTTP request's); why.
    NoConnection(String),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::ClosedByPeer => f.write_str("the peer closed the connection"),
            CloseReason::ClosedLocally => f.write_str("the connection was closed locally"),
            CloseReason::Shutdown => f.write_str("the server shut down"),
            CloseReason::PeerUnresponsive => f.write_str("the peer stopped answering pings"),
            CloseReason::MessageTooLarge => f.write_str("a message exceeded the size limit"),
            CloseReason::Expired => f.write_str("the connection's authentication expired"),
            CloseReason::Error(e) => write!(f, "connection error: {e}"),
            CloseReason::NoConnection(why) => f.write_str(why),
        }
    }
}

/// Who is on the other end, as far as the door knows.
#[derive(Debug, Default)]
pub(crate) struct Origin {
    pub(crate) remote_addr: Option<SocketAddr>,
    /// The HTTP request that opened the session (WebSocket handshake or POST).
    pub(crate) headers: HeaderMap,
    /// What the handshake hook stored for the handlers.
    pub(crate) extensions: Extensions,
    /// The deadline, in ms from arrival, of every call the door carries that does not
    /// carry its own `"$timeout"` (a POST's `Wirecall-Timeout` header).
    pub(crate) timeout: Option<u64>,
    /// The trace context of every call the door carries that does not carry its own
    /// `"$traceparent"` (a POST's `traceparent` header; feature `otel`).
    #[cfg(feature = "otel")]
    pub(crate) trace_parent: Option<crate::codec::trace::Parent>,
}

/// Handler tasks that can still be cancelled, by request id (as JSON text); and those of
/// notifications, which nothing cancels but the session's end.
#[derive(Default)]
struct Running {
    next_token: u64,
    calls: HashMap<Box<str>, RunningCall>,
    /// Notification handlers running in tasks of their own, by token.
    notifications: HashMap<u64, AbortHandle>,
}

/// A call running in a task of its own: how to stop it, and where its answer goes.
struct RunningCall {
    token: u64,
    abort: AbortHandle,
    reply: dispatch::Reply,
}

impl Running {
    /// Make the call `id` cancellable; `None` if another call with that id is (that one
    /// is served but cannot be cancelled).
    fn register(&mut self, id: &str, abort: AbortHandle, reply: &dispatch::Reply) -> Option<u64> {
        if self.calls.contains_key(id) {
            return None;
        }
        self.next_token += 1;
        let token = self.next_token;
        let call = RunningCall {
            token,
            abort,
            reply: reply.clone(),
        };
        self.calls.insert(id.into(), call);
        Some(token)
    }

    /// A notification's handler runs in a task: it is stopped when the session ends.
    fn register_notification(&mut self, abort: AbortHandle) -> u64 {
        self.next_token += 1;
        self.notifications.insert(self.next_token, abort);
        self.next_token
    }

    /// The call finished: `true` if it is still this side's to answer (a cancellation did
    /// not answer it first). Whoever removes the entry answers.
    fn finish(&mut self, id: &str, token: Option<u64>) -> bool {
        let Some(token) = token else { return true };
        match self.calls.get(id) {
            Some(call) if call.token == token => {
                self.calls.remove(id);
                true
            }
            _ => false,
        }
    }
}

/// The streams this side serves in the session, by subscription id.
#[derive(Default)]
struct Streams {
    next_id: u64,
    active: HashMap<u64, AbortHandle>,
    /// The session has ended: a stream whose task starts only now is not served (its
    /// task was spawned before the end, and would else stream to nobody for ever).
    ended: bool,
}

/// Where a session's outgoing frames go.
enum Outgoing {
    /// A queue the transport drains (WebSocket writer, event stream, HTTP client).
    Queue(mpsc::Sender<Frame>),
    /// The one answer of a POST (a response or a batch array).
    Answer(Mutex<Option<oneshot::Sender<String>>>),
}

/// What the session's parts (dispatch, handler tasks, streams) share.
struct Shared {
    config: Arc<ConnectionConfig>,
    router: Router,
    door: DoorCaps,
    /// The door's wire format.
    encoder: Arc<dyn Encoder>,
    ctx: Context,
    peer: Peer,
    /// The session's own peer (closed when it ends), or one it only borrows (a POST's).
    owns_peer: bool,
    outgoing: Outgoing,
    in_flight: Arc<Semaphore>,
    running: Mutex<Running>,
    streams: Mutex<Streams>,
    /// Cancelled when the first stream this side serves has ended (its last frame queued),
    /// if the door ends with its stream (an SSE response carries one).
    stream_ended: Option<CancellationToken>,
    /// The deadline of calls without their own `"$timeout"` ([`Origin::timeout`]).
    default_timeout: Option<u64>,
    /// The trace context of calls without their own `"$traceparent"`
    /// ([`Origin::trace_parent`]).
    #[cfg(feature = "otel")]
    trace_parent: Option<crate::codec::trace::Parent>,
}

impl Shared {
    fn running(&self) -> MutexGuard<'_, Running> {
        // Every operation on these tables is a single insert or remove: a panic elsewhere
        // cannot leave them inconsistent, so a poisoned lock is still usable.
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn streams(&self) -> MutexGuard<'_, Streams> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One conversation with a peer, independent of the transport. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Session {
    shared: Arc<Shared>,
}

impl Session {
    /// A session whose outgoing frames, encoded by `encoder`, go to `tx`: a WebSocket, an
    /// event stream, or a client's HTTP requests.
    pub(crate) fn new(
        config: Arc<ConnectionConfig>,
        router: Router,
        door: DoorCaps,
        origin: Origin,
        tx: mpsc::Sender<Frame>,
        encoder: Arc<dyn Encoder>,
    ) -> Session {
        let peer = Peer::new(tx.clone(), &config, encoder.clone());
        if let Some(why) = door.no_peer_calls {
            peer.close(&CloseReason::NoConnection(why.into()));
        }
        let stream_ended = door.ends_with_stream.then(CancellationToken::new);
        let parts = Parts {
            door,
            encoder,
            peer,
            owns_peer: true,
            outgoing: Outgoing::Queue(tx),
            stream_ended,
        };
        Self::with(config, router, origin, parts)
    }

    /// A session whose one answer (a response or a batch array) comes out of the
    /// receiver: an HTTP POST's. `peer` is borrowed (the endpoint's [`Peer::detached`]
    /// one: nothing can be called back over HTTP).
    pub(crate) fn answering(
        config: Arc<ConnectionConfig>,
        router: Router,
        door: DoorCaps,
        origin: Origin,
        peer: Peer,
    ) -> (Session, oneshot::Receiver<String>) {
        let (tx, rx) = oneshot::channel();
        let parts = Parts {
            door,
            encoder: outbound::json_rpc(),
            peer,
            owns_peer: false,
            outgoing: Outgoing::Answer(Mutex::new(Some(tx))),
            stream_ended: None,
        };
        (Self::with(config, router, origin, parts), rx)
    }

    fn with(
        config: Arc<ConnectionConfig>,
        router: Router,
        origin: Origin,
        parts: Parts,
    ) -> Session {
        let Parts {
            door,
            encoder,
            peer,
            owns_peer,
            outgoing,
            stream_ended,
        } = parts;
        let ctx = Context::new(
            ConnectionId::next(),
            origin.remote_addr,
            origin.headers,
            origin.extensions,
            peer.clone(),
        );
        Session {
            shared: Arc::new(Shared {
                default_timeout: origin.timeout,
                #[cfg(feature = "otel")]
                trace_parent: origin.trace_parent,
                in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
                config,
                router,
                door,
                encoder,
                ctx,
                peer,
                owns_peer,
                outgoing,
                running: Mutex::new(Running::default()),
                streams: Mutex::new(Streams::default()),
                stream_ended,
            }),
        }
    }

    pub(crate) fn peer(&self) -> &Peer {
        &self.shared.peer
    }

    /// The connection's context (what handlers get).
    pub(crate) fn context(&self) -> &Context {
        &self.shared.ctx
    }

    pub(crate) fn connection_id(&self) -> ConnectionId {
        self.shared.ctx.connection_id()
    }

    pub(crate) fn config(&self) -> &ConnectionConfig {
        &self.shared.config
    }

    /// Completes once no call is in flight (every permit is free).
    pub(crate) async fn idle(&self) {
        let max = self.shared.config.max_in_flight as u32;
        let _ = self.shared.in_flight.acquire_many(max).await;
    }

    /// Cancelled when the first stream this side serves has ended; its last frame is
    /// queued by then.
    pub(crate) fn stream_ended(&self) -> CancellationToken {
        self.shared.stream_ended.clone().unwrap_or_default()
    }

    /// The session is over: fail this side's pending calls, abort running handlers (of
    /// requests and of notifications alike) and streams. Their answers are not sent.
    pub(crate) fn end(&self, reason: &CloseReason) {
        let shared = &*self.shared;
        if shared.owns_peer {
            // (A borrowed peer, a POST's, is the endpoint's, closed from the start.)
            shared.peer.close(reason);
        }
        let running: Vec<_> = {
            let mut running = shared.running();
            let calls: Vec<_> = running.calls.drain().map(|(_, c)| c.abort).collect();
            let notifications = running.notifications.drain().map(|(_, a)| a);
            calls.into_iter().chain(notifications).collect()
        };
        for abort in running {
            abort.abort();
        }
        let streams: Vec<_> = {
            let mut streams = shared.streams();
            streams.ended = true;
            streams.active.drain().map(|(_, a)| a).collect()
        };
        for abort in streams {
            abort.abort();
        }
    }

    /// Calls that can still be cancelled, and streams being served.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn table_sizes(&self) -> (usize, usize) {
        (
            self.shared.running().calls.len(),
            self.shared.streams().active.len(),
        )
    }

    /// Answer a message that could not be read at all (`id` null) with `error`, in the
    /// door's format.
    pub(crate) async fn refuse(&self, error: RpcError) {
        let frame = self.shared.encode(Event::Answer {
            id: "null",
            out: Err(error),
        });
        send(&self.shared, frame).await
    }
}

/// What a session is built from, besides its config, router and origin.
struct Parts {
    door: DoorCaps,
    encoder: Arc<dyn Encoder>,
    peer: Peer,
    owns_peer: bool,
    outgoing: Outgoing,
    stream_ended: Option<CancellationToken>,
}

impl Shared {
    /// An event in the door's format (`None`: the door has nothing to send for it).
    fn encode(&self, event: Event<'_>) -> Option<Frame> {
        self.encoder.encode(event)
    }
}

/// Queue a frame. Usually the queue has room: no need to set up a wait (the wait is boxed,
/// so that every task that sends — one per subscription — is not the larger for it). If
/// the transport is gone, its reader notices the connection closing.
async fn send(shared: &Shared, frame: Option<Frame>) {
    let Some(frame) = frame else { return };
    match &shared.outgoing {
        Outgoing::Queue(tx) => match tx.try_send(frame) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(msg)) => {
                let _ = Box::pin(tx.send(msg)).await;
            }
        },
        Outgoing::Answer(slot) => {
            let Frame::Text(frame) = frame else {
                return; // (a POST's encoder is JSON-RPC's: text)
            };
            let tx = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            match tx {
                Some(tx) => {
                    let _ = tx.send(frame);
                }
                None => tracing::debug!("a second frame for a POST's one answer, dropped"),
            }
        }
    }
}
