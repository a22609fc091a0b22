//! WAMP v2 on the WebSocket door: a client that offers `wamp.2.json`, `wamp.2.msgpack` or
//! `wamp.2.cbor` speaks WAMP (Basic Profile) to the same services. The server is the
//! router (dealer and broker) and the callee of its own procedures.
//!
//! An adapter over the session seam, like the JSON-RPC door but with its own codec:
//!
//! - in ([`adapter`]): each WAMP message is decoded once ([`message`]) and handed to the
//!   session as a decoded request or notification ([`Session::handle_message`]): `CALL` →
//!   a request, `SUBSCRIBE` → a topic subscription, `CANCEL` and call timeouts →
//!   `$/cancelRequest`, `UNSUBSCRIBE` → the topic's unsubscribe;
//! - out ([`encode`]): the session's events (answers, stream items and ends, topic
//!   publications) go to this adapter's [`Encoder`](crate::session::outbound::Encoder),
//!   which writes each as one WAMP message (`RESULT`, `ERROR`, progressive results,
//!   `EVENT`, `SUBSCRIBED`) with the connection's serializer ([`write`]).
//!
//! Which WAMP request an answer belongs to is in the adapter's own table ([`State`]): each
//! `CALL` or `SUBSCRIBE` gets a call id of the session (a counter), mapped here to its
//! request id; no WAMP state rides inside ids. The mapping is in `docs/PROTOCOL.md`
//! ("WAMP").
//!
//! [`Session::handle_message`]: crate::session::Session::handle_message

mod adapter;
pub(crate) use adapter::Input;
mod encode;
pub(crate) mod message;
mod topics;
mod write;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::auth::{Authenticate, Handshake};
use crate::hub::Hub;
use crate::session::outbound::{DoorCaps, Frame};
use crate::session::router::Router;
use crate::transport::gate::Unauthenticated;
pub(crate) use message::Serializer;
use message::{ABORT, ERROR};
use write::{encode, Part};

/// Why a WAMP session cannot call its client.
pub(crate) const WAMP_PEER: &str =
    "server→client calls are not part of WAMP's model for a single peer; this call came over WAMP";

/// A WebSocket speaking WAMP: calls, streams and topics; no server→client calls.
pub(crate) const WAMP_DOOR: DoorCaps = DoorCaps {
    no_peer_calls: Some(WAMP_PEER),
    streams: true,
    ends_with_stream: false,
    process_unique_sub_ids: false,
    via: crate::telemetry::Via::WebSocket,
    door: crate::session::policy::Door::Wamp,
};

/// The WAMP subprotocol of JSON, the one every WAMP client speaks.
pub const WAMP_SUBPROTOCOL: &str = Serializer::Json.subprotocol();

/// The serializer to speak: the first subprotocol the client offers that this server
/// speaks.
pub(crate) fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Serializer> {
    offered.into_iter().find_map(Serializer::from_subprotocol)
}

/// WAMP's other serializers, refused with a clear answer.
pub(crate) fn is_other_wamp(protocol: &str) -> bool {
    protocol.starts_with("wamp.2.") && Serializer::from_subprotocol(protocol).is_none()
}

/// The `GOODBYE` reason of a session whose identity expired (then the WebSocket closes with
/// 4401).
pub(crate) const EXPIRED_URI: &str = "wirecall.close.authentication_expired";

/// What a WAMP connection starts with.
pub(crate) struct WampSetup {
    /// The realm it must join (any if `None`).
    pub(crate) realm: Option<Arc<str>>,
    /// The hub of the topics.
    pub(crate) hub: Hub,
    /// The serializer the client chose.
    pub(crate) serializer: Serializer,
    /// `Some` when the upgrade carried no credentials the server took: the client must
    /// authenticate with `ticket` in its `HELLO`.
    pub(crate) ticket: Option<Ticket>,
    /// With `ticket`, on the server's own listener: the session's place among the pending
    /// handshakes until it authenticates.
    pub(crate) waiting: Option<Unauthenticated>,
}

/// How a WAMP connection that came without a bearer token authenticates with `ticket`: the
/// server's hook, run again on its `AUTHENTICATE` with the upgrade request and the ticket
/// as the token.
pub(crate) struct Ticket {
    pub(crate) authenticate: Arc<Authenticate>,
    pub(crate) method: http::Method,
    pub(crate) uri: http::Uri,
    pub(crate) headers: http::HeaderMap,
    pub(crate) remote: Option<SocketAddr>,
    /// Why the hook refused the upgrade itself.
    pub(crate) refused: String,
}

impl Ticket {
    fn handshake(&self, ticket: String, authid: Option<String>) -> Handshake {
        let handshake = Handshake::new(
            self.method.clone(),
            self.uri.clone(),
            self.headers.clone(),
            self.remote,
        );
        handshake.with_ticket(ticket, authid)
    }
}

/// This session's own publications remembered for `exclude_me` at most (the oldest go).
const MAX_EXCLUDED: usize = 1024;

/// WAMP ids are integers in [1, 2^53].
const MAX_ID: u64 = 1 << 53;

/// The longest `CALL` option `timeout` honoured, in ms (a day): a longer one is cut to it.
pub(crate) const MAX_CALL_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;

/// How much of a malformed message an `ABORT` (and the debug log) quotes.
const QUOTED: usize = 120;

/// One WAMP connection's adapter: its way in (the reader calls [`Wamp::incoming`]) and
/// its way out (the session's encoder). Shared by both.
pub(crate) struct Wamp {
    router: Router,
    realm: Option<Arc<str>>,
    hub: Hub,
    serializer: Serializer,
    /// To the socket's writer (the session queues there too).
    out: mpsc::Sender<Frame>,
    /// How to authenticate the client's `ticket`, if it must.
    ticket: Option<Ticket>,
    state: Mutex<State>,
}

/// What the adapter remembers of the session, by the session's ids.
#[derive(Default)]
pub(crate) struct State {
    welcomed: bool,
    /// `CHALLENGE` sent for this `HELLO` (its realm and authid), `AUTHENTICATE` awaited.
    challenged: Option<(String, Option<String>)>,
    /// The client authenticated: its identity's time left, for the reader to watch.
    expiry: Option<Option<Duration>>,
    /// Until the client authenticated (`ticket`): its place among the pending handshakes.
    waiting: Option<Unauthenticated>,
    /// The last call id given to the session (a counter: a WAMP request id may be used
    /// again once answered, a call id never).
    last_id: u64,
    /// `CALL`s not ended yet, by call id.
    calls: HashMap<u64, Call>,
    /// The call id of each `CALL` not ended yet, by its WAMP request id.
    requests: HashMap<u64, u64>,
    /// `SUBSCRIBE`s not answered yet, by call id.
    subscribing: HashMap<u64, Subscribing>,
    /// Live subscriptions by the session's subscription id.
    subs: HashMap<u64, Sub>,
    /// This session's own publications (`exclude_me`): topic key and item (JSON), until
    /// their event comes by.
    excluded: VecDeque<(Arc<str>, Arc<str>)>,
}

impl State {
    /// A fresh call id.
    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// Take the call `id` out of the tables: it ends now.
    fn end_call(&mut self, id: u64) -> Option<Call> {
        let call = self.calls.remove(&id)?;
        if self.requests.get(&call.request) == Some(&id) {
            self.requests.remove(&call.request);
        }
        if let Some(Some(sub)) = call.stream {
            self.subs.remove(&sub);
        }
        Some(call)
    }
}

/// A `CALL` in the session.
pub(crate) struct Call {
    /// Its WAMP request id.
    request: u64,
    /// The procedure (for typed errors and a stream's unsubscribe).
    method: Arc<str>,
    /// A stream called with progressive results: its subscription id once answered.
    stream: Option<Option<u64>>,
    /// The task that ends the call at its `timeout`: it goes with the call (aborted when
    /// the call is answered, canceled, or the session ends).
    timer: Option<tokio::task::AbortHandle>,
}

impl Drop for Call {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
    }
}

/// A `SUBSCRIBE` waiting for the session's answer.
pub(crate) struct Subscribing {
    request: u64,
    /// The topic's wire name and the hub's key.
    method: Arc<str>,
    key: Arc<str>,
}

enum Sub {
    /// A topic: events.
    Topic { method: Arc<str>, key: Arc<str> },
    /// A stream called with `receive_progress`: progressive results of that call.
    Progress { call: u64 },
}

/// What the reader does after a message.
pub(crate) enum Flow {
    Continue,
    /// Close the connection (after `ABORT` or `GOODBYE`).
    Close,
}

/// A session or publication id: random over [1, 2^53], as the WAMP specification asks of
/// ids in the global scope (a counter would tell one client how many others there are).
fn random_id() -> u64 {
    fastrand::u64(1..=MAX_ID)
}

/// `text` cut to its first [`QUOTED`] characters, for an error message or the log.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTED) {
        Some((end, _)) => format!("{}… ({} bytes)", &text[..end], text.len()),
        None => text.to_string(),
    }
}

impl Wamp {
    pub(crate) fn new(router: Router, setup: WampSetup, out: mpsc::Sender<Frame>) -> Arc<Wamp> {
        Arc::new(Wamp {
            router,
            realm: setup.realm,
            hub: setup.hub,
            serializer: setup.serializer,
            out,
            ticket: setup.ticket,
            state: Mutex::new(State {
                waiting: setup.waiting,
                ..State::default()
            }),
        })
    }

    /// Cancelled if the session is dropped to make room before it authenticated.
    pub(crate) fn evicted(&self) -> Option<CancellationToken> {
        self.state().waiting.as_ref().map(|w| w.evicted().clone())
    }

    /// The client authenticated with `ticket` since the last look: its identity's time
    /// left (`Some(None)`: it does not expire).
    pub(crate) fn take_expiry(&self) -> Option<Option<Duration>> {
        self.state().expiry.take()
    }

    /// The identity expired (or, with `ticket`, was not established in time): `GOODBYE`
    /// with [`EXPIRED_URI`] in an established session, `ABORT` before. The WebSocket's
    /// close (4401) follows.
    pub(crate) async fn expired(&self) {
        let welcomed = self.state().welcomed;
        if welcomed {
            let details = serde_json::json!({ "message": "authentication expired" });
            let parts = [
                Part::Int(message::GOODBYE),
                Part::Value(details),
                Part::Str(EXPIRED_URI),
            ];
            self.send(&parts).await;
        } else {
            let _ = self
                .abort(
                    "wamp.error.authentication_required",
                    "the session was not authenticated in time (or its authentication expired)",
                )
                .await;
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every operation on the tables is a few inserts or removes: a panic elsewhere
        // cannot leave them inconsistent, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The serializer of this connection.
    pub(crate) fn serializer(&self) -> Serializer {
        self.serializer
    }

    /// A message in this connection's serializer.
    fn message(&self, parts: &[Part<'_>]) -> Option<Frame> {
        encode(self.serializer, parts)
    }

    async fn send(&self, parts: &[Part<'_>]) {
        if let Some(frame) = self.message(parts) {
            let _ = self.out.send(frame).await;
        }
    }

    async fn abort(&self, reason: &str, message: impl Into<String>) -> Flow {
        let message: String = message.into();
        tracing::debug!(reason, %message, "WAMP session aborted");
        let details = serde_json::json!({ "message": message });
        self.send(&[Part::Int(ABORT), Part::Value(details), Part::Str(reason)])
            .await;
        Flow::Close
    }

    async fn error(&self, request_type: u64, request: u64, uri: &str, args: Value, kwargs: Value) {
        let frame = self.error_message(request_type, request, uri, args, kwargs);
        if let Some(frame) = frame {
            let _ = self.out.send(frame).await;
        }
    }

    fn error_message(
        &self,
        request_type: u64,
        request: u64,
        uri: &str,
        args: Value,
        kwargs: Value,
    ) -> Option<Frame> {
        self.message(&[
            Part::Int(ERROR),
            Part::Int(request_type),
            Part::Int(request),
            Part::Value(Value::Object(Default::default())),
            Part::Str(uri),
            Part::Value(args),
            Part::Value(kwargs),
        ])
    }

    /// `ERROR` for a request, with one message in `args`.
    async fn fail(&self, request_type: u64, request: u64, uri: &str, message: impl Into<String>) {
        let message: String = message.into();
        let args = Value::Array(vec![Value::String(message)]);
        self.error(
            request_type,
            request,
            uri,
            args,
            Value::Object(Default::default()),
        )
        .await;
    }

    /// The server is shutting down: `GOODBYE` (`wamp.close.system_shutdown`), before the
    /// WebSocket's close.
    pub(crate) async fn goodbye_on_shutdown(&self) {
        let empty = Value::Object(Default::default());
        let parts = [
            Part::Int(message::GOODBYE),
            Part::Value(empty),
            Part::Str("wamp.close.system_shutdown"),
        ];
        self.send(&parts).await;
    }

    /// The session ended: drop what is left of its calls (and their timers) and
    /// subscriptions.
    pub(crate) fn end(&self) {
        let state = std::mem::take(&mut *self.state());
        drop(state);
    }

    /// Has the client's `HELLO` been welcomed?
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn welcomed(&self) -> bool {
        self.state().welcomed
    }

    /// Calls and subscriptions the adapter still tracks: `(calls, request ids,
    /// subscribing, subscriptions)`.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn table_sizes(&self) -> (usize, usize, usize, usize) {
        let state = self.state();
        (
            state.calls.len(),
            state.requests.len(),
            state.subscribing.len(),
            state.subs.len(),
        )
    }
}
