// Over ~500 lines: both ends of a stream on the calling side — the connection's table that
// routes items, and the `Subscription` handed to the application with its resubscribing
// forwarder — which share the item, charge and end types.
//! Streams (subscriptions): the server pushes items until the stream ends.
//!
//! On the wire (see `docs/PROTOCOL.md`): calling `Service.m` answers a subscription id;
//! items arrive as notifications `{"method":"Service.m","params":{"subscription":ID,"result":ITEM}}`;
//! the end is one more notification with `"error"` instead of `"result"` (`null` when the
//! stream completed, an error object when it failed); `Service.m.unsubscribe` with `[ID]`
//! stops it early.
//!
//! Client side, each subscription has a buffer between the connection's reader and the
//! application, bounded in items and in bytes. The reader never waits for a slow consumer
//! (that would stall every other call on the connection): when a buffer is full, that
//! subscription alone ends with a "lagged" error and the server is told to stop it.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures_util::Stream;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use futures_util::future::BoxFuture;

use crate::codec::text::Text;
use crate::error::{code, ApplicationError, NoAppError, RpcError};
use crate::hub::{Gap, Position, SINCE_PARAM};
use crate::session::error::Error;
use crate::session::peer::{CallFailure, Peer, RawResult};
use crate::session::CloseReason;

impl RpcError {
    /// The error that ends a subscription whose consumer fell behind.
    pub fn lagged(detail: impl fmt::Display) -> Self {
        RpcError::new(code::SUBSCRIPTION_LAGGED, "Subscription lagged")
            .with_data(detail.to_string())
    }

    /// `true` for [`RpcError::lagged`].
    pub fn is_lagged(&self) -> bool {
        self.code == code::SUBSCRIPTION_LAGGED
    }
}

/// What a subscription's channel carries: an item (with its position, for a topic), or a
/// topic's position note (`"position"` at the start, `"gap"` after lost publications).
#[derive(Debug)]
pub(crate) struct SubItem {
    raw: Option<RawResult>,
    at: Option<Position>,
    gap: bool,
    /// The bytes this item holds in its subscription's buffer, until it is consumed.
    _charge: Option<Charge>,
}

/// Bytes held in a subscription's buffer by one item: counted when the reader queues it,
/// released when the item is dropped (the application took it, or the buffer went away).
#[derive(Debug)]
struct Charge {
    bytes: usize,
    held: Arc<AtomicUsize>,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.held.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// How a subscription ended, as seen by the client.
#[derive(Clone, Debug)]
pub(crate) enum End {
    /// The server said the stream is complete.
    Completed,
    /// The server said the stream failed.
    Failed(RpcError),
    /// The consumer fell behind (how far); the subscription was dropped.
    Lagged(String),
    /// The connection closed.
    Disconnected(CloseReason),
}

/// Shared between the connection (which ends a subscription) and its consumer.
#[derive(Debug, Default)]
pub(crate) struct SubState {
    end: Mutex<Option<End>>,
}

impl SubState {
    fn lock(&self) -> MutexGuard<'_, Option<End>> {
        self.end.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, end: End) {
        let mut slot = self.lock();
        if slot.is_none() {
            *slot = Some(end);
        }
    }
}

/// A client-side subscription in the connection's table.
pub(crate) struct SubEntry {
    pub(crate) tx: mpsc::Sender<SubItem>,
    pub(crate) state: Arc<SubState>,
    /// The stream's method name, for the unsubscribe message.
    pub(crate) method: Arc<str>,
    /// Bytes of the items in its buffer, and the most it may hold.
    pub(crate) held: Arc<AtomicUsize>,
    pub(crate) max_bytes: usize,
}

/// The client-side subscriptions of a connection, by subscription id (as JSON text).
#[derive(Default)]
pub(crate) struct SubTable {
    subs: Mutex<HashMap<Box<str>, SubEntry>>,
}

/// What the reader did with a notification.
pub(crate) enum Routed {
    /// It was for a subscription and has been handled.
    Handled,
    /// Not a subscription notification: handle it as a normal notification.
    NotMine,
}

impl SubTable {
    fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, SubEntry>> {
        self.subs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    pub(crate) fn insert(&self, id: &str, entry: SubEntry) {
        self.lock().insert(id.into(), entry);
    }

    /// Remove a subscription (e.g. its consumer dropped it); `true` if it was active.
    pub(crate) fn remove(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }

    /// End one subscription that is still active (e.g. its event stream was cut).
    pub(crate) fn end(&self, id: &str, end: End) {
        if let Some(entry) = self.lock().remove(id) {
            entry.state.set(end);
        }
    }

    /// Route a notification whose params may be `{"subscription": ID, "result"|"error": …}`.
    /// Returns the ids whose consumers are gone or lagging, to unsubscribe on the server.
    pub(crate) fn route(
        &self,
        params: &RawValue,
        frame: &Text,
        unsubscribe: &mut Vec<(Arc<str>, Box<str>)>,
    ) -> Routed {
        let Ok(members) = crate::codec::params::object_members(params.get()) else {
            return Routed::NotMine;
        };
        let mut id = None;
        let mut result = None;
        let mut error = None;
        let mut epoch = None;
        let mut offset = None;
        let mut note = None;
        for (key, value) in members {
            match key.as_ref() {
                "subscription" => id = Some(value),
                "result" => result = Some(value),
                "error" => error = Some(value),
                "epoch" => epoch = serde_json::from_str::<String>(value.get()).ok(),
                "offset" => offset = serde_json::from_str::<u64>(value.get()).ok(),
                "gap" => note = Some((true, value)),
                "position" => note = Some((false, value)),
                _ => {}
            }
        }
        let Some(id) = id else {
            return Routed::NotMine;
        };
        let mut subs = self.lock();
        let Some(entry) = subs.get(id.get()) else {
            return Routed::NotMine;
        };
        let item = match (&result, note) {
            (Some(item), _) => {
                // The item keeps its whole frame alive: that is what it costs.
                let bytes = frame.len();
                let held = entry.held.load(Ordering::Relaxed);
                // (An empty buffer takes any item, so one larger than the bound still
                // passes when the consumer keeps up.)
                if held > 0 && held.saturating_add(bytes) > entry.max_bytes {
                    entry.state.set(End::Lagged(format!(
                        "the consumer fell {held} bytes behind (the bound is {} bytes)",
                        entry.max_bytes
                    )));
                    if let Some((key, entry)) = subs.remove_entry(id.get()) {
                        unsubscribe.push((entry.method, key));
                    }
                    return Routed::Handled;
                }
                entry.held.fetch_add(bytes, Ordering::Relaxed);
                Some(SubItem {
                    raw: Some(RawResult::new(frame, item)),
                    at: epoch
                        .zip(offset)
                        .map(|(epoch, offset)| Position { epoch, offset }),
                    gap: false,
                    _charge: Some(Charge {
                        bytes,
                        held: entry.held.clone(),
                    }),
                })
            }
            (None, Some((gap, at))) => match serde_json::from_str::<Position>(at.get()) {
                Ok(at) => Some(SubItem {
                    raw: None,
                    at: Some(at),
                    gap,
                    _charge: None,
                }),
                Err(_) => return Routed::Handled, // a malformed note: nothing to act on
            },
            (None, None) => None,
        };
        match (item, error) {
            (Some(item), _) => match entry.tx.try_send(item) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    let capacity = entry.tx.max_capacity();
                    entry.state.set(End::Lagged(format!(
                        "the consumer fell {capacity} items behind"
                    )));
                    if let Some((key, entry)) = subs.remove_entry(id.get()) {
                        unsubscribe.push((entry.method, key));
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    // The consumer is gone without unsubscribing (its call was dropped).
                    if let Some((key, entry)) = subs.remove_entry(id.get()) {
                        unsubscribe.push((entry.method, key));
                    }
                }
            },
            (None, Some(error)) => {
                let end = if error.get() == "null" {
                    End::Completed
                } else {
                    match serde_json::from_str::<RpcError>(error.get()) {
                        Ok(e) => End::Failed(e),
                        Err(_) => End::Failed(
                            RpcError::new(code::INTERNAL_ERROR, "Subscription failed")
                                .with_data(error.get()),
                        ),
                    }
                };
                entry.state.set(end);
                subs.remove(id.get());
            }
            (None, None) => return Routed::NotMine,
        }
        Routed::Handled
    }

    /// The connection closed: end every subscription.
    pub(crate) fn close(&self, reason: &CloseReason) {
        for (_, entry) in self.lock().drain() {
            entry.state.set(End::Disconnected(reason.clone()));
        }
    }
}

/// Parts of a new client-side subscription, created before the subscribe request is
/// sent so that the reader can register it the moment the answer arrives.
pub(crate) struct PendingSub {
    pub(crate) tx: mpsc::Sender<SubItem>,
    pub(crate) state: Arc<SubState>,
    pub(crate) method: Arc<str>,
    pub(crate) max_bytes: usize,
}

/// One subscription on one connection: its items channel and end state. Dropping it
/// while the server still streams sends the unsubscribe.
pub(crate) struct RawSub {
    rx: mpsc::Receiver<SubItem>,
    state: Arc<SubState>,
    id: Box<str>,
    method: Arc<str>,
    peer: Peer,
}

impl RawSub {
    pub(crate) fn new(
        rx: mpsc::Receiver<SubItem>,
        state: Arc<SubState>,
        id: Box<str>,
        method: Arc<str>,
        peer: Peer,
    ) -> Self {
        RawSub {
            rx,
            state,
            id,
            method,
            peer,
        }
    }
}

impl Drop for RawSub {
    fn drop(&mut self) {
        // Still active on the server (not ended by it, nor by the connection)?
        if self.peer.subscriptions().remove(&self.id) {
            self.peer.unsubscribe_detached(&self.method, &self.id);
        }
    }
}

/// Where a [`Subscription`]'s items come from.
enum Source {
    /// Straight from one connection.
    Direct(RawSub),
    /// From a task that resubscribes after each reconnect.
    Forwarded {
        rx: mpsc::Receiver<SubItem>,
        state: Arc<SubState>,
        id: Box<str>,
        task: tokio::task::AbortHandle,
    },
    /// From a stream of the application's own ([`Subscription::from_items`]); in a
    /// `Mutex` only so that the subscription stays `Sync` (it is never locked: polling
    /// has `&mut`).
    Local {
        id: Box<str>,
        items: Mutex<LocalItems>,
    },
}

/// The items of a [`Subscription::from_items`]: JSON text, or the error that ends it.
type LocalItems = futures_util::stream::BoxStream<'static, Result<String, RpcError>>;

impl Drop for Source {
    fn drop(&mut self) {
        if let Source::Forwarded { task, .. } = self {
            // The task owns the current `RawSub`; stopping it unsubscribes.
            task.abort();
        }
    }
}

/// Items the forwarding task may hold beyond the connection's per-subscription buffer.
const FORWARD_BUFFER: usize = 16;

/// A stream of items from the server: `Stream<Item = Result<T, Error<E>>>`.
///
/// It yields each item in order, then ends (`None`) when the server completes the stream.
/// If the stream fails — the server's error (`Error::App(E)` for the method's typed errors),
/// falling behind ([`RpcError::is_lagged`]), or a lost connection (`Error::Disconnected`,
/// when the client does not reconnect) — it yields that one error, then ends. Dropping it
/// unsubscribes.
pub struct Subscription<T, E = NoAppError> {
    source: Source,
    finished: bool,
    position: Option<Position>,
    _item: PhantomData<fn() -> (T, E)>,
}

impl<T, E> fmt::Debug for Subscription<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id())
            .field("finished", &self.finished)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl<T, E> Subscription<T, E> {
    pub(crate) fn direct(raw: RawSub) -> Self {
        Subscription {
            source: Source::Direct(raw),
            finished: false,
            position: None,
            _item: PhantomData,
        }
    }

    /// A subscription that survives reconnects: `first` now, then a new one on each new
    /// connection of `client`.
    pub(crate) fn resubscribing(
        client: impl Resubscribe,
        first: RawSub,
        params: Option<String>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(FORWARD_BUFFER);
        let state = Arc::new(SubState::default());
        let id = first.id.clone();
        let task = tokio::spawn(forward(client, first, params, tx, state.clone()));
        Subscription {
            source: Source::Forwarded {
                rx,
                state,
                id,
                task: task.abort_handle(),
            },
            finished: false,
            position: None,
            _item: PhantomData,
        }
    }

    /// A subscription fed by `items` rather than by a connection: what a
    /// [`Caller`](crate::Caller) of your own (a test double, a transport of your own)
    /// returns from [`open_subscription`](crate::Caller::open_subscription).
    ///
    /// Each `Ok` of `items` is one item as JSON text, decoded as `T` when it is read (a
    /// text that does not decode yields [`Error::Decode`]); an `Err` ends the subscription
    /// with that error ([`Error::App`] when it is one of `E`'s codes, else [`Error::Rpc`]);
    /// the end of `items` ends it. `id` is what [`Subscription::id`] returns. Dropping the
    /// subscription drops `items`.
    ///
    /// ```
    /// use futures_util::stream;
    /// use wirecall::{RpcError, Subscription};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let items = stream::iter(vec![Ok("1".to_string()), Ok("2".into()), Err(RpcError::internal("gone"))]);
    /// let mut sub: Subscription<u64> = Subscription::from_items("\"s1\"", items);
    /// assert_eq!(sub.id(), "\"s1\"");
    /// assert_eq!(sub.next().await.unwrap().unwrap(), 1);
    /// assert_eq!(sub.next().await.unwrap().unwrap(), 2);
    /// assert!(matches!(sub.next().await, Some(Err(wirecall::Error::Rpc(e))) if e.code == -32603));
    /// assert!(sub.next().await.is_none());
    /// # }
    /// ```
    pub fn from_items<S>(id: impl Into<String>, items: S) -> Self
    where
        S: Stream<Item = Result<String, RpcError>> + Send + 'static,
    {
        Subscription {
            source: Source::Local {
                id: id.into().into_boxed_str(),
                items: Mutex::new(Box::pin(items)),
            },
            finished: false,
            position: None,
            _item: PhantomData,
        }
    }

    /// The subscription id the server gave first (as JSON text).
    pub fn id(&self) -> &str {
        match &self.source {
            Source::Direct(raw) => &raw.id,
            Source::Forwarded { id, .. } | Source::Local { id, .. } => id,
        }
    }

    /// For a topic: the position of the last item this subscription yielded (or where it
    /// started, or continued after a gap). `None` for a stream, and for a topic before the
    /// server said where it starts.
    pub fn position(&self) -> Option<&Position> {
        self.position.as_ref()
    }

    /// Stop the stream now: the server is told to stop producing. Same as dropping it.
    pub fn unsubscribe(self) {}
}

/// Who can subscribe again after a reconnect: the client (a layer above), seen from here.
pub(crate) trait Resubscribe: Send + Sync + 'static {
    /// Whether the connection comes back after it drops.
    fn reconnects(&self) -> bool;
    /// The wait before the `failures`-th retry of a subscribe the server failed.
    fn backoff(&self, failures: u32) -> Duration;
    /// Subscribe to `method` with `params` on the current (or next) connection.
    fn subscribe_again<'a>(
        &'a self,
        method: &'a str,
        params: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RawSub, CallFailure>>;
}

/// Move items from the current connection's subscription to the consumer; after a
/// disconnect, subscribe again on the next connection.
async fn forward(
    client: impl Resubscribe,
    mut raw: RawSub,
    params: Option<String>,
    tx: mpsc::Sender<SubItem>,
    state: Arc<SubState>,
) {
    // A topic's position, for `$since` when subscribing again.
    let mut position: Option<Position> = None;
    loop {
        loop {
            tokio::select! {
                item = raw.rx.recv() => match item {
                    Some(item) => {
                        if let Some(at) = &item.at {
                            position = Some(at.clone());
                        }
                        if tx.send(item).await.is_err() {
                            return;
                        }
                    }
                    None => break,
                },
                _ = tx.closed() => return,
            }
        }
        let end = raw.state.lock().clone();
        match end {
            Some(End::Disconnected(_)) if client.reconnects() => {
                let method = raw.method.clone();
                let again = match &position {
                    Some(at) => with_since(params.as_deref(), at),
                    None => params.clone(),
                };
                let mut failures = 0u32;
                raw = loop {
                    let failure = match client.subscribe_again(&method, again.as_deref()).await {
                        Ok(new) => break new,
                        // Still no connection within the call timeout: keep waiting.
                        Err(CallFailure::Other(Error::Timeout(_))) => continue,
                        Err(failure) => failure,
                    };
                    match failure {
                        // The server could not set it up this time (an internal error,
                        // e.g. its hub briefly unavailable; or it is shutting down): try
                        // again with backoff, and say so.
                        CallFailure::Rpc(e) if is_transient(&e) => {
                            failures = failures.saturating_add(1);
                            let wait = client.backoff(failures);
                            tracing::warn!(
                                method = &*method,
                                "subscribing again failed ({} {}); retrying in {wait:?}",
                                e.code,
                                e.message
                            );
                            tokio::select! {
                                _ = tokio::time::sleep(wait) => {}
                                _ = tx.closed() => return,
                            }
                        }
                        CallFailure::Rpc(e) => {
                            state.set(End::Failed(e));
                            return;
                        }
                        CallFailure::NotSent(reason)
                        | CallFailure::Other(Error::Disconnected(reason)) => {
                            state.set(End::Disconnected(reason));
                            return;
                        }
                        CallFailure::Other(e) => {
                            state.set(End::Disconnected(CloseReason::Error(e.to_string())));
                            return;
                        }
                    }
                };
                tracing::debug!(
                    method = &*method,
                    id = &*raw.id,
                    "resubscribed after reconnect"
                );
            }
            Some(end) => {
                state.set(end);
                return;
            }
            None => {
                state.set(End::Completed);
                return;
            }
        }
    }
}

/// A subscribe refused in a way that may pass: `-32603` (an internal error, such as a hub
/// that is briefly unavailable) or `-32001` (the server is shutting down; the next
/// connection goes to another). Anything else (invalid params, a typed error) is final.
fn is_transient(e: &RpcError) -> bool {
    e.code == code::INTERNAL_ERROR || e.code == code::SERVER_SHUTTING_DOWN
}

/// `params` (by name) with `"$since": at` added: a topic's subscribe that resumes after
/// `at`. By-position params cannot carry it (the generated clients send by name).
fn with_since(params: Option<&str>, at: &Position) -> Option<String> {
    let since = serde_json::to_string(at).unwrap_or_default();
    let member = format!("\"{SINCE_PARAM}\":{since}");
    match params.map(str::trim) {
        None => Some(format!("{{{member}}}")),
        Some(p) if p.starts_with('{') => {
            let rest = p[1..].trim_start();
            if rest.starts_with('}') {
                Some(format!("{{{member}}}"))
            } else {
                Some(format!("{{{member},{rest}"))
            }
        }
        Some(p) => {
            tracing::warn!(
                "a topic subscribed with by-position params resubscribes without `$since` \
                 (publications made while disconnected are not replayed); subscribe by name"
            );
            Some(p.to_string())
        }
    }
}

impl<T: DeserializeOwned, E: ApplicationError> Subscription<T, E> {
    /// The next item; `None` once the stream has ended. Same as `StreamExt::next`.
    pub async fn next(&mut self) -> Option<Result<T, Error<E>>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl<T, E> Unpin for Subscription<T, E> {}

impl<T: DeserializeOwned, E: ApplicationError> Stream for Subscription<T, E> {
    type Item = Result<T, Error<E>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        let (rx, state) = match &mut this.source {
            Source::Direct(raw) => (&mut raw.rx, &raw.state),
            Source::Forwarded { rx, state, .. } => (rx, &*state),
            Source::Local { items, .. } => {
                let items = items.get_mut().unwrap_or_else(|e| e.into_inner());
                let next = match items.as_mut().poll_next(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(next) => next,
                };
                return Poll::Ready(match next {
                    Some(Ok(json)) => Some(serde_json::from_str(&json).map_err(Error::Decode)),
                    Some(Err(e)) => {
                        this.finished = true;
                        Some(Err(app_or_rpc(e)))
                    }
                    None => {
                        this.finished = true;
                        None
                    }
                });
            }
        };
        loop {
            let item = match rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(item)) => item,
                Poll::Ready(None) => break,
            };
            match item {
                SubItem {
                    raw: Some(raw), at, ..
                } => {
                    // (The item's charge is released when `raw` goes, at the end of this arm.)
                    if at.is_some() {
                        this.position = at;
                    }
                    let item = serde_json::from_str(raw.json()).map_err(Error::Decode);
                    return Poll::Ready(Some(item));
                }
                SubItem {
                    raw: None,
                    at: Some(at),
                    gap,
                    ..
                } => {
                    let from = this.position.replace(at.clone());
                    if gap {
                        return Poll::Ready(Some(Err(Error::Gap(Gap { from, to: at }))));
                    }
                }
                SubItem {
                    raw: None,
                    at: None,
                    ..
                } => {}
            }
        }
        let end = state.lock().clone();
        this.finished = true;
        Poll::Ready(match end {
            Some(End::Completed) | None => None,
            Some(End::Failed(e)) => Some(Err(app_or_rpc(e))),
            Some(End::Lagged(how_far)) => Some(Err(Error::Rpc(RpcError::lagged(format!(
                "{how_far}; the subscription was closed"
            ))))),
            Some(End::Disconnected(reason)) => Some(Err(Error::Disconnected(reason))),
        })
    }
}

fn app_or_rpc<E: ApplicationError>(e: RpcError) -> Error<E> {
    match E::from_rpc_error(&e) {
        Some(app) => Error::App(app),
        None => Error::Rpc(e),
    }
}
