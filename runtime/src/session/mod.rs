//! The session layer: everything one conversation with a peer needs that is not a socket.
//!
//! A [`Session`] takes incoming frames (text) and produces outgoing frames into a queue:
//! it dispatches requests to the [`Router`](router::Router)'s handlers (inline when they
//! finish at once, else as tasks that `$/cancelRequest` can abort), collects the answers of
//! batches, serves streams, and hands responses to this side's own pending calls
//! ([`peer`]). Each door — the WebSocket reader/writer, an HTTP POST, an SSE response —
//! is a thin adapter that feeds it frames and writes out what it queues.
//!
//! ```text
//!  transport ──frame──► Session::handle_frame ─► request?  → handler (router) ─┐
//!                                              ─► response? → Peer (pending)    │
//!  transport ◄──frame── outgoing queue ◄── answers, batch arrays, stream items ◄┘
//! ```

pub(crate) mod context;
mod dispatch;
pub(crate) mod error;
mod guard;
pub(crate) mod peer;
pub(crate) mod router;
mod streams;
pub(crate) mod subscription;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::future::AbortHandle;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_tungstenite::tungstenite::http::{Extensions, HeaderMap};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::config::ConnectionConfig;
use context::{ConnectionId, Context};
use peer::Peer;
use router::Router;

pub(crate) use dispatch::error_frame;

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
}

/// What a door allows in a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Door {
    /// A WebSocket: everything, in both directions.
    WebSocket,
    /// One HTTP POST answered with JSON: no streams, no server→client calls.
    HttpPost,
    /// One HTTP POST answered with server-sent events: one stream, no server→client calls.
    HttpEvents,
    /// A client calling over HTTP: its calls go out as POSTs; nothing calls it.
    HttpClient,
    /// A WebSocket speaking WAMP: calls, streams and topics; no server→client calls.
    Wamp,
}

impl Door {
    /// The door's label in the metrics.
    pub(crate) fn via(self) -> crate::telemetry::Via {
        use crate::telemetry::Via;
        match self {
            Door::WebSocket | Door::Wamp => Via::WebSocket,
            Door::HttpPost => Via::Http,
            Door::HttpEvents => Via::Events,
            Door::HttpClient => Via::HttpClient,
        }
    }
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
}

/// Where a session's outgoing frames go.
enum Outgoing {
    /// A queue the transport drains (WebSocket writer, event stream, HTTP client).
    Queue(mpsc::Sender<Message>),
    /// The one answer of a POST (a response or a batch array).
    Answer(Mutex<Option<oneshot::Sender<String>>>),
}

/// What the session's parts (dispatch, handler tasks, streams) share.
struct Shared {
    config: Arc<ConnectionConfig>,
    router: Router,
    door: Door,
    ctx: Context,
    peer: Peer,
    outgoing: Outgoing,
    in_flight: Arc<Semaphore>,
    running: Mutex<Running>,
    streams: Mutex<Streams>,
    /// Cancelled when the first stream this side serves has ended (its last frame queued):
    /// the end of an SSE response, which carries one stream. Only there.
    stream_ended: Option<CancellationToken>,
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
    /// A session whose outgoing frames go to `tx`: a WebSocket, an event stream, or a
    /// client's HTTP requests.
    pub(crate) fn new(
        config: Arc<ConnectionConfig>,
        router: Router,
        door: Door,
        origin: Origin,
        tx: mpsc::Sender<Message>,
    ) -> Session {
        let peer = Peer::new(tx.clone(), &config);
        if door == Door::HttpEvents {
            peer.close(&CloseReason::NoConnection(HTTP_PEER.into()));
        }
        if door == Door::Wamp {
            peer.close(&CloseReason::NoConnection(WAMP_PEER.into()));
        }
        let stream_ended = (door == Door::HttpEvents).then(CancellationToken::new);
        Self::with(
            config,
            router,
            door,
            origin,
            peer,
            Outgoing::Queue(tx),
            stream_ended,
        )
    }

    /// A session for one POST: its one answer comes out of the receiver. `peer` is the
    /// endpoint's [`Peer::detached`] one: nothing can be called back over HTTP.
    pub(crate) fn answering(
        config: Arc<ConnectionConfig>,
        router: Router,
        origin: Origin,
        peer: Peer,
    ) -> (Session, oneshot::Receiver<String>) {
        let (tx, rx) = oneshot::channel();
        let outgoing = Outgoing::Answer(Mutex::new(Some(tx)));
        let session = Self::with(config, router, Door::HttpPost, origin, peer, outgoing, None);
        (session, rx)
    }

    fn with(
        config: Arc<ConnectionConfig>,
        router: Router,
        door: Door,
        origin: Origin,
        peer: Peer,
        outgoing: Outgoing,
        stream_ended: Option<CancellationToken>,
    ) -> Session {
        let ctx = Context::new(
            ConnectionId::next(),
            origin.remote_addr,
            origin.headers,
            origin.extensions,
            peer.clone(),
        );
        Session {
            shared: Arc::new(Shared {
                in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
                config,
                router,
                door,
                ctx,
                peer,
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
        if shared.door != Door::HttpPost {
            // (A POST's peer is the endpoint's, closed from the start.)
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
        let streams: Vec<_> = shared.streams().active.drain().map(|(_, a)| a).collect();
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

    /// Queue a frame.
    pub(crate) async fn send(&self, frame: String) {
        send(&self.shared, frame).await
    }
}

/// Why a WAMP session cannot call its client.
pub(crate) const WAMP_PEER: &str =
    "server→client calls are not part of WAMP's model for a single peer; this call came over WAMP";

/// Why a session over HTTP cannot call its client.
pub(crate) const HTTP_PEER: &str =
    "server→client calls need a WebSocket connection; this call came over HTTP";

/// Queue a frame. Usually the queue has room: no need to set up a wait (the wait is boxed,
/// so that every task that sends — one per subscription — is not the larger for it). If
/// the transport is gone, its reader notices the connection closing.
async fn send(shared: &Shared, frame: String) {
    match &shared.outgoing {
        Outgoing::Queue(tx) => match tx.try_send(Message::Text(frame.into())) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(msg)) => {
                let _ = Box::pin(tx.send(msg)).await;
            }
        },
        Outgoing::Answer(slot) => {
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
