//! The client: connects to a server, calls its methods, serves the methods the server may
//! call back (`client { … }` in the IDL), and reconnects when the connection drops.
//!
//! Reconnect semantics (on by default, see [`Reconnect`]):
//! - calls made while disconnected wait for the connection, within their own timeout;
//! - calls in flight when the connection drops fail with [`Error::Disconnected`](crate::Error::Disconnected), except
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

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::auth::{TokenError, TokenSource};
use crate::config::{self, ConnectionConfig};
use crate::session::policy::{self, LayerFn, Next, RpcRequest};
use crate::session::router::Router;
use crate::session::Origin;
use crate::transport::http_client;
use crate::transport::ws::{self as connection, Setup};

mod connect;
pub(crate) mod handle;
mod reconnect;

/// State changes a [`Client::transitions`] receiver may fall behind by.
const TRANSITIONS: usize = 64;

use connect::Link;
use handle::{supervise, Client, ClientInner, CloseOnDrop};
pub use reconnect::{ConnectionState, Reconnect};

pub use crate::session::error::ConnectError;
pub use crate::session::CloseReason;

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
    /// Policy layers around the router, the first outermost.
    layers: Vec<LayerFn>,
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
            layers: Vec::new(),
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
        self.router.set_policy(policy::compose(&self.layers));
        self
    }

    /// Wrap the calls the server makes to this client (served by the
    /// [`router`](Self::router)) in a [`tower::Layer`], as
    /// [`ServerBuilder::layer`](crate::server::ServerBuilder::layer) does on a server: each call
    /// and notification passes it exactly once, alone or inside a batch. Layers stack, the
    /// first added outermost.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<Next> + Send + Sync + 'static,
        L::Service: tower::Service<RpcRequest, Response = String> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<RpcRequest>>::Error: Into<tower::BoxError>,
        <L::Service as tower::Service<RpcRequest>>::Future: Send + 'static,
    {
        self.layers.push(policy::layer_fn(layer));
        self.router.set_policy(policy::compose(&self.layers));
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
    /// # async fn demo() -> Result<(), wirecall::client::ConnectError> {
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
    pub fn tls_root_pem(
        self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Self, crate::tls::TlsError> {
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
