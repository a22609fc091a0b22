//! The client: connects to a server, calls its methods, serves the methods the server may
//! call back (`client { … }` in the IDL), and reconnects when the connection drops.
//!
//! Reconnect semantics (on by default, see [`Reconnect`]):
//! - calls made while disconnected wait for the connection, within their own timeout;
//! - calls in flight when the connection drops fail with [`Error::Disconnected`], except
//!   idempotent ones (IDL `@idempotent`), which are sent again on the new connection
//!   (unless the connection closed because a message exceeded the size limit);
//!   a call that had not been sent yet is always sent on the new connection;
//! - subscriptions resubscribe by themselves and carry on (items produced while
//!   disconnected are lost: each resubscription is a fresh stream; a topic resumes with
//!   `$since`);
//! - the methods registered with [`ClientBuilder::router`] stay registered;
//! - with several URLs ([`ClientBuilder::connect_any`]), each attempt tries the next one;
//! - an `http://` client does the same when a POST cannot reach its server;
//! - [`Client::close`] ends every call still waiting for a connection at once.
//!
//! [`Client::state`] shows where the connection stands now; [`Client::transitions`]
//! delivers every change in order.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt, Shared};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::{TokenError, TokenSource};
use crate::config::{self, ConnectionConfig};
use crate::session::caller::{CallOptions, Caller};
use crate::session::error::{ConnectError, Error};
use crate::session::peer::{CallFailure, Peer, RawResult};
use crate::session::router::Router;
use crate::session::subscription::{RawSub, Resubscribe, Subscription};
use crate::session::{CloseReason, Origin};
use crate::transport::http_client;
use crate::transport::ws::{self as connection, Setup};

mod connect;
mod reconnect;

/// State changes a [`Client::transitions`] receiver may fall behind by.
const TRANSITIONS: usize = 64;

use connect::Link;
pub use reconnect::{ConnectionState, Reconnect};

/// Configures and opens a client connection.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// let client = wirecall::Client::builder()
///     .call_timeout(Duration::from_secs(5))
///     .header("authorization", "Bearer secret")
///     .connect("ws://127.0.0.1:9000")
///     .await?;
/// let sum: i64 = client.call("Calculator.add", serde_json::json!({"a": 1, "b": 2})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    config: ConnectionConfig,
    handshake_timeout: Duration,
    router: Router,
    headers: Vec<(String, String)>,
    offer_subprotocol: bool,
    reconnect: Reconnect,
    /// The TLS settings of `wss://` and `https://` (default: the webpki roots).
    tls: Option<Arc<rustls::ClientConfig>>,
    token: Option<TokenSource>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            config: ConnectionConfig::default(),
            handshake_timeout: config::DEFAULT_HANDSHAKE_TIMEOUT,
            router: Router::new(),
            headers: Vec::new(),
            offer_subprotocol: true,
            reconnect: Reconnect::default(),
            tls: None,
            token: None,
        }
    }
}

impl ClientBuilder {
    /// Default timeout of every call (default 30 s); a call can set its own. The timeout
    /// covers waiting for a connection, sending, and the answer.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.config.call_timeout = timeout;
        self
    }

    /// Time allowed for a connection attempt: the token fetch, TCP connect, TLS and the
    /// WebSocket handshake (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Largest message accepted or sent (default 10 MiB).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.config.max_message_size = bytes;
        self
    }

    /// Server→client calls served at once (default 1 024).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.config.max_in_flight = n.max(1);
        self
    }

    /// Keep-alive: ping every `interval` (default 30 s); the server is considered gone
    /// after `max_missed` intervals without any frame from it (default 2). `None` turns it
    /// off.
    pub fn ping(mut self, interval: Option<Duration>, max_missed: u32) -> Self {
        self.config.ping_interval = interval;
        self.config.max_missed_pongs = max_missed.max(1);
        self
    }

    /// Items buffered per subscription (default 1 024). A subscription whose consumer
    /// falls further behind is closed with a "lagged" error; the others carry on.
    pub fn subscription_buffer(mut self, items: usize) -> Self {
        self.config.subscription_buffer = items.max(1);
        self
    }

    /// Bytes buffered per subscription (default 32 MiB, counted as the size of the
    /// messages the waiting items came in): a consumer that falls further behind has
    /// its subscription closed with a "lagged" error, as for
    /// [`ClientBuilder::subscription_buffer`]. An item larger than this still passes when
    /// nothing else is waiting.
    pub fn subscription_buffer_bytes(mut self, bytes: usize) -> Self {
        self.config.subscription_buffer_bytes = bytes;
        self
    }

    /// The methods the server may call on this client (server→client calls). They stay
    /// registered across reconnects.
    pub fn router(mut self, router: Router) -> Self {
        self.router = router;
        self
    }

    /// Add an HTTP header to the handshake request (e.g. `Authorization`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Whether to offer the `jsonrpc-2.0` subprotocol (default `true`). A server that
    /// does not negotiate subprotocols is still accepted.
    pub fn offer_subprotocol(mut self, offer: bool) -> Self {
        self.offer_subprotocol = offer;
        self
    }

    /// How to reconnect (default: on, 100 ms → 30 s with full jitter, unlimited attempts).
    pub fn reconnect(mut self, reconnect: Reconnect) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// Per-connection settings in one go (advanced: buffer sizes, queue length).
    pub fn connection_config(mut self, config: ConnectionConfig) -> Self {
        self.config = config;
        self
    }

    /// Authenticate with this bearer token: sent as `Authorization: Bearer TOKEN` on every
    /// handshake and POST.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(TokenSource::Fixed(token.into()));
        self
    }

    /// Authenticate with a token `fetch` returns, called for every (re)connect, within the
    /// handshake timeout (a fetch that takes longer fails that attempt, and the client
    /// tries again): after the server closed the connection because the token expired
    /// (code 4401), the client reconnects with a fresh one. Over `http://`, a POST refused
    /// with 401 is sent once more with a fresh token — fetched once for all the POSTs
    /// refused at the same time; if the fetch fails, that is the call's error.
    ///
    /// ```no_run
    /// # async fn refresh() -> Result<String, std::io::Error> { Ok(String::new()) }
    /// # async fn demo() -> Result<(), wirecall::ConnectError> {
    /// let client = wirecall::Client::builder()
    ///     .token_fn(|| async { refresh().await })
    ///     .connect("wss://api.example.com/rpc")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn token_fn<F, Fut, E>(mut self, fetch: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, E>> + Send + 'static,
        E: Into<TokenError>,
    {
        self.token = Some(TokenSource::fetch(fetch));
        self
    }

    /// TLS for `wss://` and `https://` with this rustls config (its roots, client
    /// certificates, protocol versions…).
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Trust these roots for `wss://` and `https://` instead of the webpki roots.
    pub fn tls_roots(self, roots: rustls::RootCertStore) -> Self {
        self.tls_config(crate::tls::client_config(Some(roots)))
    }

    /// Trust the CA certificates of this PEM file (and only them) for `wss://` and
    /// `https://`: e.g. a private CA, or a test's self-signed certificate.
    pub fn tls_root_pem(self, path: impl AsRef<std::path::Path>) -> Result<Self, crate::TlsError> {
        let roots = crate::tls::roots_pem(path.as_ref())?;
        Ok(self.tls_roots(roots))
    }

    /// The TLS config in use.
    fn tls(&self) -> Arc<rustls::ClientConfig> {
        self.tls
            .clone()
            .unwrap_or_else(|| crate::tls::client_config(None))
    }

    /// Connect to a `ws://` URL (the first connection must succeed; later drops are
    /// handled by reconnecting), or use an `http://` URL: each call is then one POST,
    /// streams come as server-sent events, and the server cannot call this client.
    pub async fn connect(self, url: &str) -> Result<Client, ConnectError> {
        self.connect_any([url]).await
    }

    /// Connect to the first of `urls` that answers; on reconnects, try them in turn
    /// (starting after the one that dropped). A URL that refuses (401, 403, a certificate
    /// that does not verify) ends the client only once every URL has refused in a row.
    pub async fn connect_any<I, S>(self, urls: I) -> Result<Client, ConnectError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let urls: Vec<String> = urls.into_iter().map(Into::into).collect();
        let Some(first_url) = urls.first().cloned() else {
            return Err(ConnectError::InvalidUrl {
                url: String::new(),
                reason: "no URL given".into(),
            });
        };
        let mut last_error = None;
        let mut connected = None;
        for (i, url) in urls.iter().enumerate() {
            match self.handshake(url).await {
                Ok(link) => {
                    connected = Some((i, link));
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        let Some((index, link)) = connected else {
            return Err(last_error.unwrap_or(ConnectError::InvalidUrl {
                url: first_url,
                reason: "no URL given".into(),
            }));
        };
        let close = CancellationToken::new();
        let url = urls[index].clone();
        let (state_tx, _) = watch::channel(ConnectionState::Connected { url: url.clone() });
        let started = self.start(link, &close);
        let (current_tx, _) = watch::channel(Some(started.peer.clone()));
        let inner = Arc::new(ClientInner {
            builder: self,
            urls,
            state: state_tx,
            transitions: broadcast::channel(TRANSITIONS).0,
            current: current_tx,
            close,
            done: Mutex::new(None),
            ended: Mutex::new(None),
        });
        let supervisor = tokio::spawn(supervise(inner.clone(), started.done, index));
        let done: BoxFuture<'static, CloseReason> = Box::pin(async move {
            supervisor
                .await
                .unwrap_or_else(|e| CloseReason::Error(e.to_string()))
        });
        *inner.done.lock().unwrap_or_else(|e| e.into_inner()) = Some(done.shared());
        let handle = Arc::new(CloseOnDrop(inner.close.clone()));
        Ok(Client {
            inner,
            _handle: handle,
        })
    }

    fn start(&self, link: Link, close: &CancellationToken) -> connection::Started {
        let ws = match link {
            Link::Ws(ws) => ws,
            Link::Http(target) => {
                let config = Arc::new(self.config.clone());
                let fail_over = self.reconnect.enabled;
                return http_client::spawn(*target, config, close.child_token(), fail_over);
            }
        };
        connection::spawn(
            *ws,
            Setup {
                config: Arc::new(self.config.clone()),
                router: self.router.clone(),
                origin: Origin::default(),
                shutdown: CancellationToken::new(),
                close: close.child_token(),
                hold: None,
                expires: None,
                wamp: None,
                messages: None,
            },
        )
    }
}

struct ClientInner {
    builder: ClientBuilder,
    urls: Vec<String>,
    state: watch::Sender<ConnectionState>,
    /// Every state change, in order (the watch keeps only the latest).
    transitions: broadcast::Sender<ConnectionState>,
    /// The live connection, `None` while reconnecting (and once closed).
    current: watch::Sender<Option<Peer>>,
    close: CancellationToken,
    done: Mutex<Option<Shared<BoxFuture<'static, CloseReason>>>>,
    /// Why the client closed for good, once it has.
    ended: Mutex<Option<CloseReason>>,
}

/// Watches the connection; when it drops, reconnects with backoff (or closes the client).
async fn supervise(
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
/// by itself (see [`Reconnect`] for what happens to calls and streams meanwhile). Dropping the last clone
/// (and every subscription made through it) closes the connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
    /// Shared by the application's clones: when the last one is dropped, the connection
    /// closes (the supervisor task alone does not keep it open).
    _handle: Arc<CloseOnDrop>,
}

/// Closes the client when dropped.
struct CloseOnDrop(CancellationToken);

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
