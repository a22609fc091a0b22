// Over ~500 lines with its unit test: one pending-call table with everything that touches it
// (sending, completing, timing out, cancelling, closing), kept in one place.
//! The calling side of a connection: [`Peer`] sends requests and notifications and
//! matches responses to pending calls by id.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::codec::text::Text;
use crate::config::ConnectionConfig;
use crate::error::{code, RpcError};
use crate::session::error::Error;
use crate::session::outbound::{self, Encoder, Event, Frame};
use crate::session::subscription::{PendingSub, RawSub, SubEntry, SubState, SubTable};
use crate::session::CloseReason;

/// The method name of cancellation notifications.
pub const CANCEL_METHOD: &str = "$/cancelRequest";

/// The result of an answered call as JSON text ([`crate::Caller::send_request`]).
///
/// As it arrived: the frame it is in and where. Decoding happens in the caller's task,
/// from the frame, without copying the result first.
#[derive(Debug)]
pub struct RawResult {
    frame: Text,
    range: Range<usize>,
}

impl RawResult {
    /// The result `raw`, which normally borrows from `frame`: then only the frame's
    /// reference count changes. (If it does not, it is copied.)
    pub(crate) fn new(frame: &Text, raw: &RawValue) -> Self {
        let text = frame.as_str();
        let json = raw.get();
        let start = (json.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
        match text.get(start..start.wrapping_add(json.len())) {
            Some(inside) if inside.as_ptr() == json.as_ptr() => RawResult {
                frame: frame.clone(),
                range: start..start + json.len(),
            },
            _ => RawResult {
                frame: Text::from(json.to_string()),
                range: 0..json.len(),
            },
        }
    }

    /// A result given as JSON text (e.g. by a test double of [`crate::Caller`]); it is
    /// checked when decoded.
    pub fn from_json(json: impl Into<String>) -> Self {
        let json = json.into();
        let range = 0..json.len();
        RawResult {
            frame: Text::from(json),
            range,
        }
    }

    /// The result, as JSON text.
    pub fn json(&self) -> &str {
        &self.frame.as_str()[self.range.clone()]
    }
}

type Outcome = Result<RawResult, CallFailure>;

/// A call awaiting its response; a subscribe call also carries its subscription's parts,
/// registered by the reader the moment the answer arrives (before any item can).
struct PendingCall {
    tx: oneshot::Sender<Outcome>,
    sub: Option<PendingSub>,
}

/// Calls awaiting their response, and whether the connection is gone.
#[derive(Default)]
struct Pending {
    calls: HashMap<u64, PendingCall>,
    /// Subscribe calls that timed out or were dropped before their answer, by id, with
    /// their method: if the answer still comes, the subscription it opened on the server
    /// is unsubscribed at once (else it would stream to nobody until the connection ends).
    abandoned: HashMap<u64, Arc<str>>,
    /// Set once, when the connection closes: the reason given to every later call.
    closed: Option<CloseReason>,
}

pub(crate) struct PeerShared {
    tx: mpsc::Sender<Frame>,
    /// The door's wire format: requests and notifications go out as [`Event::Request`].
    encoder: Arc<dyn Encoder>,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    call_timeout: Duration,
    max_message_size: usize,
    subscription_buffer: usize,
    subscription_buffer_bytes: usize,
    closed: CancellationToken,
    subs: SubTable,
}

/// A handle to the other end of a connection: call its methods and send it
/// notifications. Cheap to clone; all clones share the connection.
///
/// On a server, [`crate::Context::peer`] is the connected client (server→client calls);
/// on a client, [`crate::Client`] wraps one.
#[derive(Clone)]
pub struct Peer {
    shared: Arc<PeerShared>,
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("closed", &self.is_closed())
            .field("call_timeout", &self.shared.call_timeout)
            .finish_non_exhaustive()
    }
}

impl Peer {
    pub(crate) fn new(
        tx: mpsc::Sender<Frame>,
        config: &ConnectionConfig,
        encoder: Arc<dyn Encoder>,
    ) -> Self {
        Peer {
            shared: Arc::new(PeerShared {
                tx,
                encoder,
                pending: Mutex::new(Pending::default()),
                next_id: AtomicU64::new(1),
                call_timeout: config.call_timeout,
                max_message_size: config.max_message_size,
                subscription_buffer: config.subscription_buffer.max(1),
                subscription_buffer_bytes: config.subscription_buffer_bytes,
                closed: CancellationToken::new(),
                subs: SubTable::default(),
            }),
        }
    }

    /// A peer that nobody is at the other end of (an HTTP request's): every call fails at
    /// once with `Disconnected(reason)`.
    pub(crate) fn detached(reason: &str) -> Self {
        let (tx, _) = mpsc::channel(1);
        let config = ConnectionConfig {
            call_timeout: Duration::ZERO,
            max_message_size: usize::MAX,
            subscription_buffer: 1,
            ..ConnectionConfig::default()
        };
        let peer = Peer::new(tx, &config, outbound::json_rpc());
        peer.close(&CloseReason::NoConnection(reason.into()));
        peer
    }

    // call, call_with_timeout, request, subscribe, subscribe_with, notify: the provided
    // methods of `Caller` (session/caller.rs), over the primitives below.
    crate::session::caller::inherent_calls!();

    /// Send a request with params already encoded; returns the raw result.
    pub(crate) async fn request_raw(
        &self,
        method: &str,
        params: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<RawResult, CallFailure> {
        self.request_inner(method, params, timeout, None).await
    }

    async fn request_inner(
        &self,
        method: &str,
        params: Option<&str>,
        timeout: Option<Duration>,
        sub: Option<PendingSub>,
    ) -> Result<RawResult, CallFailure> {
        let shared = &*self.shared;
        let timeout = inherit_deadline(timeout.unwrap_or(shared.call_timeout));
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        // The peer learns how long this side waits: it stops the call by itself then.
        // (Rounded up: the peer never gives up before this side does.)
        let timeout_ms = u64::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
        // The span it is called from goes on at the peer (`"$traceparent"`).
        #[cfg(feature = "otel")]
        let traceparent = crate::codec::trace::current();
        let request = Event::Request {
            method,
            params,
            id: Some(id),
            timeout_ms: Some(timeout_ms),
            #[cfg(feature = "otel")]
            traceparent: traceparent.as_deref(),
        };
        let Some(frame) = shared.encoder.encode(request) else {
            return Err(CallFailure::NotSent(shared.close_reason()));
        };
        if frame.len() > shared.max_message_size {
            return Err(CallFailure::Other(Error::MessageTooLarge {
                size: frame.len(),
                limit: shared.max_message_size,
            }));
        }
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = shared.lock();
            if let Some(reason) = &pending.closed {
                return Err(CallFailure::NotSent(reason.clone()));
            }
            pending.calls.insert(id, PendingCall { tx, sub });
        }
        // From here on, dropping this future (or timing out) cancels the call.
        let mut guard = CallGuard {
            shared,
            id,
            armed: true,
        };
        let call = async {
            if shared.tx.send(frame).await.is_err() {
                // The writer is gone: the request never left.
                shared.lock().calls.remove(&id);
                return Err(CallFailure::NotSent(shared.close_reason()));
            }
            match rx.await {
                Ok(outcome) => outcome,
                // The connection dropped the sender: it closed.
                Err(_) => Err(CallFailure::Other(Error::Disconnected(
                    shared.close_reason(),
                ))),
            }
        };
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(CallFailure::Other(Error::Timeout(timeout))),
        };
        if !matches!(&result, Err(CallFailure::Other(Error::Timeout(_)))) {
            guard.armed = false;
        }
        match result {
            // The peer stopped the call at the deadline this side gave it (`$timeout`):
            // this side's time ran out, whichever end noticed first.
            Err(CallFailure::Other(Error::Rpc(e))) if e.code == code::DEADLINE_EXCEEDED => {
                Err(CallFailure::Other(Error::Timeout(timeout)))
            }
            other => other,
        }
    }

    /// Send a notification with params already encoded.
    pub(crate) async fn notify_raw(&self, method: &str, params: Option<&str>) -> Result<(), Error> {
        let shared = &*self.shared;
        #[cfg(feature = "otel")]
        let traceparent = crate::codec::trace::current();
        let notification = Event::Request {
            method,
            params,
            id: None,
            timeout_ms: None,
            #[cfg(feature = "otel")]
            traceparent: traceparent.as_deref(),
        };
        let Some(frame) = shared.encoder.encode(notification) else {
            return Err(Error::Disconnected(shared.close_reason()));
        };
        if frame.len() > shared.max_message_size {
            return Err(Error::MessageTooLarge {
                size: frame.len(),
                limit: shared.max_message_size,
            });
        }
        if shared.closed.is_cancelled() {
            return Err(Error::Disconnected(shared.close_reason()));
        }
        shared
            .tx
            .send(frame)
            .await
            .map_err(|_| Error::Disconnected(shared.close_reason()))
    }

    /// `true` once the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.is_cancelled()
    }

    /// Completes when the connection closes.
    pub async fn closed(&self) {
        self.shared.closed.cancelled().await
    }

    /// The default timeout of calls made through this handle.
    pub fn call_timeout(&self) -> Duration {
        self.shared.call_timeout
    }

    /// Number of calls awaiting a response.
    pub fn pending_calls(&self) -> usize {
        self.shared.lock().calls.len()
    }

    /// Deliver a response to the call with this id. Returns `false` for an unknown id
    /// (a late answer to a call that timed out or was cancelled).
    pub(crate) fn complete(
        &self,
        id: &RawValue,
        outcome: Result<&RawValue, RpcError>,
        frame: &Text,
    ) -> bool {
        let Ok(id) = id.get().parse::<u64>() else {
            return false;
        };
        let call = {
            let mut pending = self.shared.lock();
            match pending.calls.remove(&id) {
                Some(call) => call,
                None => {
                    if let (Some(method), Ok(sub)) = (pending.abandoned.remove(&id), &outcome) {
                        drop(pending);
                        // A subscribe answered after its caller gave up: stop what it opened.
                        self.unsubscribe_detached(&method, sub.get());
                        return true;
                    }
                    return false;
                }
            }
        };
        if let (Some(sub), Ok(raw)) = (call.sub, &outcome) {
            self.shared.subs.insert(
                raw.get(),
                SubEntry {
                    tx: sub.tx,
                    state: sub.state,
                    method: sub.method,
                    held: Arc::new(AtomicUsize::new(0)),
                    max_bytes: sub.max_bytes,
                },
            );
        }
        let _ = call.tx.send(
            outcome
                .map(|raw| RawResult::new(frame, raw))
                .map_err(CallFailure::Rpc),
        );
        true
    }

    /// End the call with this id with `failure` (the transport could not deliver it, or
    /// got no answer). Returns `false` for an unknown id.
    pub(crate) fn fail(&self, id: u64, failure: CallFailure) -> bool {
        let Some(call) = self.shared.lock().calls.remove(&id) else {
            return false;
        };
        let _ = call.tx.send(Err(failure));
        true
    }

    /// The connection is gone: fail every pending call, and every later one, with
    /// `Disconnected(reason)`.
    pub(crate) fn close(&self, reason: &CloseReason) {
        let calls = {
            let mut pending = self.shared.lock();
            if pending.closed.is_none() {
                pending.closed = Some(reason.clone());
            }
            pending.abandoned = HashMap::new();
            std::mem::take(&mut pending.calls)
        };
        // Dropping the senders wakes each caller, who reads the reason.
        drop(calls);
        self.shared.subs.close(reason);
        self.shared.closed.cancel();
    }

    pub(crate) fn sender(&self) -> &mpsc::Sender<Frame> {
        &self.shared.tx
    }

    pub(crate) fn subscriptions(&self) -> &SubTable {
        &self.shared.subs
    }

    /// Stop the stream `id` that `method` opened on the peer: `{method}.unsubscribe` with
    /// `[ID]`, as a notification (nothing waits for its answer), queued without waiting
    /// (from `Drop` or the reader).
    pub(crate) fn unsubscribe_detached(&self, method: &str, id: &str) {
        let method = format!("{method}.unsubscribe");
        let params = format!("[{id}]");
        self.shared.notify_detached(&method, &params);
    }

    /// Subscribe to a stream: `method` with encoded params. See [`crate::Subscription`].
    pub(crate) async fn subscribe_raw(
        &self,
        method: &str,
        params: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<RawSub, CallFailure> {
        let (tx, rx) = mpsc::channel(self.shared.subscription_buffer);
        let state = Arc::new(SubState::default());
        let method: Arc<str> = method.into();
        let sub = PendingSub {
            tx,
            state: state.clone(),
            method: method.clone(),
            max_bytes: self.shared.subscription_buffer_bytes,
        };
        let raw = self
            .request_inner(&method, params, timeout, Some(sub))
            .await?;
        Ok(RawSub::new(
            rx,
            state,
            raw.json().into(),
            method,
            self.clone(),
        ))
    }
}

impl PeerShared {
    /// A notification queued without waiting: at once if there is room, else from a task.
    fn notify_detached(&self, method: &str, params: &str) {
        let notification = Event::Request {
            method,
            params: Some(params),
            id: None,
            timeout_ms: None,
            // (`$/cancelRequest` and unsubscriptions: bookkeeping, not part of a trace.)
            #[cfg(feature = "otel")]
            traceparent: None,
        };
        if let Some(frame) = self.encoder.encode(notification) {
            send_detached(&self.tx, frame);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding this lock cannot leave the table inconsistent (every
        // operation is a single insert or remove), so a poisoned lock is still usable.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close_reason(&self) -> CloseReason {
        self.lock()
            .closed
            .clone()
            .unwrap_or(CloseReason::ClosedByPeer)
    }
}

impl From<CallFailure> for Error {
    /// A failed call as the caller sees it; an error answer stays [`Error::Rpc`] (the
    /// calling API recognizes typed errors and cancellation in it).
    fn from(failure: CallFailure) -> Self {
        match failure {
            CallFailure::Rpc(err) => Error::Rpc(err),
            CallFailure::NotSent(reason) => Error::Disconnected(reason),
            CallFailure::Other(e) => e,
        }
    }
}

/// Why a raw call failed: an error answer, or something local.
pub(crate) enum CallFailure {
    /// The peer answered with an error.
    Rpc(RpcError),
    /// The connection was closed before the request was sent: safe to send again.
    NotSent(CloseReason),
    /// Anything else (a request that was sent may have run).
    Other(Error),
}

/// Removes a call from the pending table if its future is dropped (cancelled or timed
/// out) before the response arrived, and tells the peer with `$/cancelRequest`.
struct CallGuard<'a> {
    shared: &'a PeerShared,
    id: u64,
    armed: bool,
}

/// Abandoned subscribe calls remembered per connection, at most (beyond, a late answer's
/// subscription streams until the connection ends, as before).
const MAX_ABANDONED: usize = 4096;

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        {
            let mut pending = self.shared.lock();
            let Some(call) = pending.calls.remove(&self.id) else {
                return;
            };
            if let Some(sub) = call.sub {
                if pending.closed.is_none() && pending.abandoned.len() < MAX_ABANDONED {
                    pending.abandoned.insert(self.id, sub.method);
                }
            }
        }
        let params = format!(r#"{{"id":{}}}"#, self.id);
        self.shared.notify_detached(CANCEL_METHOD, &params);
    }
}

/// Queue a message without waiting: at once if there is room, else from a task.
fn send_detached(tx: &mpsc::Sender<Frame>, msg: Frame) {
    match tx.try_send(msg) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(msg)) => {
            // The queue is busy; send it as soon as there is room.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let tx = tx.clone();
                rt.spawn(async move {
                    let _ = tx.send(msg).await;
                });
            }
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

/// A call's timeout, shortened to what is left of the deadline of the call whose handler
/// makes it (if it runs in one that has a deadline): a chain of calls stops everywhere at
/// once.
pub(crate) fn inherit_deadline(timeout: Duration) -> Duration {
    match crate::session::guard::current_deadline() {
        Some(at) => timeout.min(at.saturating_duration_since(std::time::Instant::now())),
        None => timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_result_borrows_from_its_frame_or_copies() {
        let frame = Text::from(r#"{"result":{"x":1},"id":1}"#.to_string());
        let members: std::collections::HashMap<&str, &RawValue> =
            serde_json::from_str(frame.as_str()).unwrap();
        let inside = RawResult::new(&frame, members["result"]);
        assert_eq!(inside.json(), r#"{"x":1}"#);
        assert_eq!(inside.frame.as_str().len(), frame.as_str().len(), "no copy");
        let elsewhere: Box<RawValue> = RawValue::from_string("[1,2]".to_string()).unwrap();
        let copied = RawResult::new(&frame, &elsewhere);
        assert_eq!(copied.json(), "[1,2]");
    }
}
