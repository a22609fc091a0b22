//! The client's handle: [`Client`], the state it shares with its supervisor task
//! (reconnects), and its [`Caller`] primitives. Its builder is in `mod.rs`.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{BoxFuture, Shared};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::session::caller::{CallOptions, Caller};
use crate::session::error::{ConnectError, Error};
use crate::session::peer::{CallFailure, Peer, RawResult};
use crate::session::subscription::{RawSub, Resubscribe, Subscription};
use crate::session::CloseReason;

use super::{ClientBuilder, ConnectionState};

pub(super) struct ClientInner {
    pub(super) builder: ClientBuilder,
    pub(super) urls: Vec<String>,
    pub(super) state: watch::Sender<ConnectionState>,
    /// Every state change, in order (the watch keeps only the latest).
    pub(super) transitions: broadcast::Sender<ConnectionState>,
    /// The live connection, `None` while reconnecting (and once closed).
    pub(super) current: watch::Sender<Option<Peer>>,
    pub(super) close: CancellationToken,
    pub(super) done: Mutex<Option<Shared<BoxFuture<'static, CloseReason>>>>,
    /// Why the client closed for good, once it has.
    pub(super) ended: Mutex<Option<CloseReason>>,
}

/// Watches the connection; when it drops, reconnects with backoff (or closes the client).
pub(super) async fn supervise(
    inner: Arc<ClientInner>,
    mut done: tokio::task::JoinHandle<CloseReason>,
    mut index: usize,
) -> CloseReason {
    let reconnect = inner.builder.reconnect.clone();
    // Failed attempts in a row; a connection that did not stay up for `stable_after`
    // counts as one, so the backoff keeps growing against a server that accepts and drops.
    let mut failures = 0u32;
    let mut up_since = Instant::now();
    loop {
        let reason = (&mut done)
            .await
            .unwrap_or_else(|e| CloseReason::Error(e.to_string()));
        inner.current.send_replace(None);
        if inner.close.is_cancelled() || !reconnect.enabled {
            return finish(&inner, reason);
        }
        if up_since.elapsed() >= reconnect.stable_after {
            failures = 0;
        }
        tracing::debug!(%reason, "connection lost; reconnecting");
        let mut last = reason.to_string();
        // Which URLs refused their latest attempt (401, 403, a certificate): the client
        // stops only when every one has.
        let mut refused = vec![false; inner.urls.len()];
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if reconnect.max_attempts.is_some_and(|max| attempt > max) {
                let why = format!(
                    "gave up reconnecting after {} attempts: {last}",
                    attempt - 1
                );
                return finish(&inner, CloseReason::Error(why));
            }
            inner.set_state(ConnectionState::Reconnecting {
                attempt,
                reason: last.clone(),
            });
            let wait = reconnect.backoff(failures.saturating_add(attempt));
            tokio::select! {
                _ = inner.close.cancelled() => return finish(&inner, CloseReason::ClosedLocally),
                _ = tokio::time::sleep(wait) => {}
            }
            index = (index + 1) % inner.urls.len();
            let url = &inner.urls[index];
            let attempt_result = tokio::select! {
                _ = inner.close.cancelled() => return finish(&inner, CloseReason::ClosedLocally),
                r = inner.builder.handshake(url) => r,
            };
            match attempt_result {
                Ok(link) => {
                    let started = inner.builder.start(link, &inner.close);
                    done = started.done;
                    failures = failures.saturating_add(attempt);
                    up_since = Instant::now();
                    inner.current.send_replace(Some(started.peer));
                    inner.set_state(ConnectionState::Connected { url: url.clone() });
                    tracing::debug!(url, attempt, "reconnected");
                    break;
                }
                Err(e) if !e.is_retryable() && !reconnect.retry_refused => {
                    tracing::debug!(url, attempt, "reconnect refused: {e}");
                    refused[index] = true;
                    last = e.to_string();
                    if refused.iter().all(|r| *r) {
                        let why = format!("stopped reconnecting: {e}");
                        return finish(&inner, CloseReason::Error(why));
                    }
                }
                Err(e) => {
                    tracing::debug!(url, attempt, "reconnect failed: {e}");
                    refused[index] = false;
                    last = e.to_string();
                }
            }
        }
    }
}

/// After a request could not be sent on `peer`: wait until that connection is marked
/// closed (so the next attempt gets a new one) instead of retrying in a busy loop.
async fn wait_closed(peer: &Peer, deadline: Instant) {
    let _ = tokio::time::timeout_at(deadline, peer.closed()).await;
}

/// The client is closed for good. The order matters to calls waiting for a connection:
/// they see `current` change and then read the state, which must say `Closed` by then.
fn finish(inner: &ClientInner, reason: CloseReason) -> CloseReason {
    *inner.ended.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.clone());
    inner.set_state(ConnectionState::Closed {
        reason: reason.to_string(),
    });
    inner.current.send_replace(None);
    reason
}

impl ClientInner {
    /// A new state: for the watch (the latest) and for every transitions receiver.
    fn set_state(&self, state: ConnectionState) {
        let _ = self.transitions.send(state.clone());
        self.state.send_replace(state);
    }
}

/// A connection to a server: call its methods with [`Client::call`], subscribe to its
/// streams, send notifications. Cheap to clone; clones share the connection. Reconnects
/// by itself (see [`Reconnect`](super::Reconnect) for what happens to calls and streams meanwhile). Dropping the last clone
/// (and every subscription made through it) closes the connection.
#[derive(Clone)]
pub struct Client {
    pub(super) inner: Arc<ClientInner>,
    /// Shared by the application's clones: when the last one is dropped, the connection
    /// closes (the supervisor task alone does not keep it open).
    pub(super) _handle: Arc<CloseOnDrop>,
}

/// Closes the client when dropped.
pub(super) struct CloseOnDrop(pub(super) CancellationToken);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("state", &*self.inner.state.borrow())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connect to a `ws://` URL with the default settings.
    pub async fn connect(url: &str) -> Result<Client, ConnectError> {
        ClientBuilder::default().connect(url).await
    }

    /// A builder for a client with other settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    // call, call_with_timeout, request, subscribe, subscribe_with, notify: the provided
    // methods of `Caller`, over the primitives of `impl Caller for Client` below.
    crate::session::caller::inherent_calls!();

    /// The live connection, if connected now.
    pub fn peer(&self) -> Option<Peer> {
        self.inner.current.borrow().clone()
    }

    /// Where the connection stands now; `changed().await` on the receiver to follow it.
    /// A watch keeps only the latest state: changes that follow each other quickly
    /// coalesce (a drop and a reconnect can show as nothing but `Connected`). To see every
    /// transition, use [`Client::transitions`].
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.inner.state.subscribe()
    }

    /// Every state change from now on, in order: each `Reconnecting` attempt, each
    /// `Connected`, and `Closed`. A receiver that falls more than 64 changes behind gets
    /// [`broadcast::error::RecvError::Lagged`] with the number it missed — never a silent
    /// skip.
    pub fn transitions(&self) -> broadcast::Receiver<ConnectionState> {
        self.inner.transitions.subscribe()
    }

    /// `true` once the client is closed for good.
    pub fn is_closed(&self) -> bool {
        matches!(*self.inner.state.borrow(), ConnectionState::Closed { .. })
    }

    /// Calls awaiting an answer on the live connection.
    pub fn pending_calls(&self) -> usize {
        self.peer().map_or(0, |p| p.pending_calls())
    }

    /// Close the connection (code 1000) and stop reconnecting; pending calls fail with
    /// `Disconnected`. Returns once it is closed.
    pub async fn close(&self) -> CloseReason {
        self.inner.close.cancel();
        self.closed().await
    }

    /// Completes when the client is closed for good, with the reason.
    pub async fn closed(&self) -> CloseReason {
        let done = self
            .inner
            .done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match done {
            Some(done) => done.await,
            None => CloseReason::ClosedLocally,
        }
    }

    /// Wait for a live connection until `deadline`.
    pub(crate) async fn wait_peer(
        &self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Peer, CallFailure> {
        let mut current = self.inner.current.subscribe();
        loop {
            if let Some(peer) = current.borrow_and_update().clone() {
                if !peer.is_closed() {
                    return Ok(peer);
                }
            }
            if let ConnectionState::Closed { .. } = &*self.inner.state.borrow() {
                let reason = self
                    .inner
                    .ended
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                return Err(CallFailure::Other(Error::Disconnected(
                    reason.unwrap_or(CloseReason::ClosedLocally),
                )));
            }
            match tokio::time::timeout_at(deadline, current.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => {
                    return Err(CallFailure::Other(Error::Disconnected(
                        CloseReason::ClosedLocally,
                    )))
                }
                Err(_) => return Err(CallFailure::Other(Error::Timeout(timeout))),
            }
        }
    }

    /// A call that waits for the connection and survives reconnects as far as is safe.
    pub(crate) async fn request_raw(
        &self,
        method: &str,
        params: Option<&str>,
        options: CallOptions,
    ) -> Result<RawResult, CallFailure> {
        self.on_connection(options, options.idempotent, |peer, remaining| async move {
            peer.request_raw(method, params, Some(remaining)).await
        })
        .await
    }

    /// Subscribe once on a live connection (waiting for one within the timeout).
    /// Subscribing again after a drop is always safe: the old subscription died with its
    /// connection.
    pub(crate) async fn subscribe_once(
        &self,
        method: &str,
        params: Option<&str>,
        options: CallOptions,
    ) -> Result<RawSub, CallFailure> {
        self.on_connection(options, true, |peer, remaining| async move {
            peer.subscribe_raw(method, params, Some(remaining)).await
        })
        .await
    }

    /// Run `attempt` on a live connection within the call's timeout: wait for one while
    /// disconnected; try again on the next connection when the request was never sent,
    /// or when it was sent but `repeatable` (idempotent) and the connection dropped.
    async fn on_connection<T, F, Fut>(
        &self,
        options: CallOptions,
        repeatable: bool,
        attempt: F,
    ) -> Result<T, CallFailure>
    where
        F: Fn(Peer, Duration) -> Fut,
        Fut: std::future::Future<Output = Result<T, CallFailure>>,
    {
        let timeout = options
            .timeout
            .unwrap_or(self.inner.builder.config.call_timeout);
        // Inside a handler whose call has a deadline: no longer than what is left of it.
        let timeout = crate::session::peer::inherit_deadline(timeout);
        let deadline = Instant::now() + timeout;
        loop {
            let peer = self.wait_peer(deadline, timeout).await?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            match attempt(peer.clone(), remaining).await {
                // Never sent: safe to send on the next connection, once this one is gone.
                Err(CallFailure::NotSent(_)) => wait_closed(&peer, deadline).await,
                // The server's answer (or something else it sent) was over the client's
                // size limit: sending the call again would only bring the same answer.
                Err(CallFailure::Other(Error::Disconnected(CloseReason::MessageTooLarge))) => {
                    return Err(CallFailure::Other(Error::Disconnected(
                        CloseReason::MessageTooLarge,
                    )))
                }
                Err(CallFailure::Other(Error::Disconnected(_)))
                    if repeatable && self.inner.builder.reconnect.enabled =>
                {
                    // Not in a busy loop: the next attempt needs the next connection.
                    wait_closed(&peer, deadline).await;
                    tracing::debug!("connection lost mid-call; sending it again");
                }
                Err(CallFailure::Other(Error::Timeout(_))) => {
                    return Err(CallFailure::Other(Error::Timeout(timeout)))
                }
                other => return other,
            }
        }
    }

    /// Whether subscriptions should resubscribe after a drop.
    pub(crate) fn reconnects(&self) -> bool {
        self.inner.builder.reconnect.enabled
    }

    /// Notify once a connection is live (within the call timeout).
    pub(crate) async fn notify_raw(&self, method: &str, params: Option<&str>) -> Result<(), Error> {
        let timeout = self.inner.builder.config.call_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            let peer = self.wait_peer(deadline, timeout).await?;
            match peer.notify_raw(method, params).await {
                // Not sent: the connection closed meanwhile; wait for the next one.
                Err(Error::Disconnected(_)) => wait_closed(&peer, deadline).await,
                other => return other,
            }
        }
    }
}

/// A client's primitives: on the live connection (waiting for one), sent again after a
/// reconnect as far as is safe (see the module's documentation).
impl Caller for Client {
    async fn send_request(
        &self,
        method: &str,
        params: Option<&str>,
        options: CallOptions,
    ) -> Result<RawResult, Error> {
        Ok(self.request_raw(method, params, options).await?)
    }

    async fn send_notification(&self, method: &str, params: Option<&str>) -> Result<(), Error> {
        self.notify_raw(method, params).await
    }

    /// The subscription resubscribes after each reconnect.
    async fn open_subscription<T, E>(
        &self,
        method: &str,
        params: Option<String>,
        options: CallOptions,
    ) -> Result<Subscription<T, E>, Error> {
        let first = self
            .subscribe_once(method, params.as_deref(), options)
            .await?;
        Ok(if self.reconnects() {
            Subscription::resubscribing(self.clone(), first, params)
        } else {
            Subscription::direct(first)
        })
    }
}

impl Resubscribe for Client {
    fn reconnects(&self) -> bool {
        Client::reconnects(self)
    }

    fn backoff(&self, failures: u32) -> Duration {
        self.inner.builder.reconnect.backoff(failures)
    }

    fn subscribe_again<'a>(
        &'a self,
        method: &'a str,
        params: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RawSub, CallFailure>> {
        Box::pin(self.subscribe_once(method, params, CallOptions::default()))
    }
}
