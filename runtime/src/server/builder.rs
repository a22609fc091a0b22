//! Configuring a server: every setting, then `bind`, `serve` or `into_service`.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use http::{Extensions, Request};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::listen::{accept_loop, listen, Listen, ServerHandle};
use super::service::RpcService;
use crate::auth::{Authenticate, Handshake, Identity, Refusal};
use crate::config::{self, ConnectionConfig};
use crate::session::peer::Peer;
use crate::session::policy::{self, LayerFn, Next, RpcRequest};
use crate::session::router::Router;
use crate::transport::deadline::ReadRules;
use crate::transport::gate::Gate;
use crate::transport::http::{Endpoint, HandshakeHook, OriginRule, HTTP_PEER};

/// Configures and starts a server. Every setting has the default of `docs/PROTOCOL.md`.
///
/// ```no_run
/// # async fn demo(router: wirecall::raw::Router) -> std::io::Result<()> {
/// let server = wirecall::Server::builder()
///     .max_connections(1_000)
///     .allow_origin("https://app.example.com")
///     .bind("127.0.0.1:9000", router)
///     .await?;
/// println!("listening on ws://{}", server.local_addr());
/// server.stopped().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServerBuilder {
    config: ConnectionConfig,
    max_connections: usize,
    handshake_timeout: Duration,
    shutdown_timeout: Duration,
    allowed_origins: Vec<String>,
    allowed_hosts: Vec<String>,
    hook: Option<Arc<HandshakeHook>>,
    authenticate: Option<Arc<Authenticate>>,
    door: DoorLimits,
    reads: ReadRules,
    tls: Option<Arc<rustls::ServerConfig>>,
    hub: Option<crate::hub::Hub>,
    wamp_realm: Option<String>,
    /// Policy layers around the router, the first outermost.
    layers: Vec<LayerFn>,
}

/// What the server's own listener allows before a whole request has arrived.
#[derive(Clone, Debug)]
pub(super) struct DoorLimits {
    pub(super) silent_timeout: Duration,
    pub(super) max_pending: usize,
    pub(super) max_pending_bodies: usize,
    pub(super) max_per_ip: Option<usize>,
    pub(super) max_header_size: usize,
    pub(super) backlog: u32,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("config", &self.config)
            .field("max_connections", &self.max_connections)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("allowed_origins", &self.allowed_origins)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("hook", &self.hook.is_some())
            .field("authenticate", &self.authenticate.is_some())
            .field("door", &self.door)
            .field("reads", &self.reads)
            .field("tls", &self.tls.is_some())
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            config: ConnectionConfig::default(),
            max_connections: config::DEFAULT_MAX_CONNECTIONS,
            handshake_timeout: config::DEFAULT_HANDSHAKE_TIMEOUT,
            shutdown_timeout: Duration::from_secs(30),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            hook: None,
            authenticate: None,
            door: DoorLimits {
                silent_timeout: config::DEFAULT_SILENT_TIMEOUT,
                max_pending: config::DEFAULT_MAX_PENDING_HANDSHAKES,
                max_pending_bodies: config::DEFAULT_MAX_PENDING_BODIES,
                max_per_ip: None,
                max_header_size: config::DEFAULT_MAX_HEADER_SIZE,
                backlog: 4096,
            },
            reads: ReadRules::default(),
            tls: None,
            hub: None,
            wamp_realm: None,
            layers: Vec::new(),
        }
    }
}

impl ServerBuilder {
    /// Largest message accepted or sent (default 10 MiB). A larger incoming message closes
    /// the connection with code 1009; a larger response is replaced by a `-32603` error.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.config.max_message_size = bytes;
        self
    }

    /// Connections served at once (default 10 000): WebSocket sessions and HTTP keep-alive
    /// connections that have sent a whole request. More are refused with HTTP 503.
    /// Connections still in their handshake do not count here but against
    /// [`max_pending_handshakes`](Self::max_pending_handshakes), nor do those whose request
    /// body is being waited for (against [`max_pending_bodies`](Self::max_pending_bodies)).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Connections held in their TLS or HTTP handshake at once (default 1 024). At the cap
    /// the oldest pending handshake is dropped to make room, so sockets that connect and
    /// then idle cannot keep real clients out: a real client finishes its handshake in
    /// milliseconds, long before it could become the oldest. A WAMP session that came
    /// without credentials and must still authenticate with `ticket` counts here too until
    /// its `WELCOME` (dropped with `ABORT` when it is the oldest), so sessions that never
    /// authenticate cannot hold the [`max_connections`](Self::max_connections) slots.
    pub fn max_pending_handshakes(mut self, n: usize) -> Self {
        self.door.max_pending = n.max(1);
        self
    }

    /// Request bodies waited for at once (default 1 024): POSTs whose body did not come
    /// with their request head. They count here, not against
    /// [`max_connections`](Self::max_connections), until the body is whole; at the cap the
    /// oldest is cut off (`408`, connection closed), so stalled bodies cannot keep a real
    /// client out — a real body arrives long before it could become the oldest — and they
    /// never push out a handshake (which has its own cap), nor a handshake them.
    pub fn max_pending_bodies(mut self, n: usize) -> Self {
        self.door.max_pending_bodies = n.max(1);
        self
    }

    /// Longest a request body may take to arrive whole once it has to be waited for
    /// (default 120 s) — of a POST, or of the POST that asks for server-sent events — and
    /// likewise a WebSocket message from its first bytes. A body past it is answered `408
    /// Request Timeout` and its connection closed; a WebSocket is dropped. The default
    /// lets a 1 MB body through at an average of 70 kbit/s; raise it with
    /// [`max_message_size`](Self::max_message_size) for large messages on slow links.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.reads.whole = timeout;
        self
    }

    /// Least a request body (or a WebSocket message) still arriving must bring in every
    /// `per` (default 1 KiB every 10 s, about 100 bytes/s): a stalled or trickled one is cut
    /// off at the end of the first window that brings less, as a late one is. A window in
    /// which the rest arrives ends the read, so a short last part is never held against it.
    /// `bytes` 0 turns the rate check off (`per` is at least 1 ms).
    pub fn min_body_rate(mut self, bytes: u64, per: Duration) -> Self {
        self.reads.min_bytes = bytes;
        self.reads.per = per.max(Duration::from_millis(1));
        self
    }

    /// Connections from one IP address at once, pending or established (default: no
    /// limit). More are closed as soon as they are accepted.
    ///
    /// Off by default because behind a load balancer or proxy every client has the
    /// proxy's address: a limit there caps all clients together. On a server that clients
    /// reach directly it bounds what one address can hold (handshakes, bodies, sessions).
    /// The limit is keyed on the TCP peer, checked before a byte is read; a key from
    /// `X-Forwarded-For` or `Forwarded` is not supported (those headers are only
    /// trustworthy from a known proxy, and only readable after the request head): limit
    /// per client at the proxy (nginx `limit_conn` with `realip`).
    pub fn max_connections_per_ip(mut self, n: usize) -> Self {
        self.door.max_per_ip = Some(n.max(1));
        self
    }

    /// Time a new connection has to send its first byte (default 3 s); a socket that
    /// connects and says nothing is closed then, well before the handshake timeout.
    pub fn silent_timeout(mut self, timeout: Duration) -> Self {
        self.door.silent_timeout = timeout;
        self
    }

    /// Largest HTTP request head — request line and headers — read (default 16 KiB,
    /// at least 8 KiB); a larger one is answered `431 Request Header Fields Too Large`.
    pub fn max_header_size(mut self, bytes: usize) -> Self {
        self.door.max_header_size = bytes.max(8192);
        self
    }

    /// Serve over TLS with this rustls config (every door: `wss://` and `https://` on the
    /// one port). ALPN `http/1.1` is set if the config names no protocol.
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        let config = Arc::unwrap_or_clone(config);
        self.tls = Some(Arc::new(crate::tls::with_alpn(config)));
        self
    }

    /// Serve over TLS with the certificate chain (the server's own first) and private key
    /// of these PEM files.
    ///
    /// ```no_run
    /// # async fn demo(router: wirecall::raw::Router) -> Result<(), Box<dyn std::error::Error>> {
    /// let server = wirecall::Server::builder()
    ///     .tls_pem("cert.pem", "key.pem")?
    ///     .bind("0.0.0.0:443", router)
    ///     .await?;
    /// println!("listening on {}", server.url()); // wss://0.0.0.0:443
    /// # Ok(()) }
    /// ```
    pub fn tls_pem(
        self,
        cert: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> Result<Self, crate::tls::TlsError> {
        let config = crate::tls::server_config_pem(cert.as_ref(), key.as_ref())?;
        Ok(self.tls(Arc::new(config)))
    }

    /// Calls served at once per connection (default 1 024). At the limit the server stops
    /// reading from that connection until a call finishes; nothing is dropped.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.config.max_in_flight = n.max(1);
        self
    }

    /// Longest batch accepted (default 1 024); a longer one is answered with one `-32600`.
    pub fn max_batch_len(mut self, n: usize) -> Self {
        self.config.max_batch_len = n;
        self
    }

    /// Subscriptions open at once per connection (default 1 024).
    pub fn max_subscriptions(mut self, n: usize) -> Self {
        self.config.max_subscriptions = n;
        self
    }

    /// Items buffered per subscription before it is closed as lagging (default 1 024).
    pub fn subscription_buffer(mut self, items: usize) -> Self {
        self.config.subscription_buffer = items.max(1);
        self
    }

    /// Time a new connection has to complete its handshake — TLS and a whole request head
    /// (default 10 s); hyper's header timeout on later requests of a keep-alive connection.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Keep-alive: ping every `interval` (default 30 s) and drop a peer after
    /// `max_missed` unanswered pings (default 2). `None` turns keep-alive off.
    pub fn ping(mut self, interval: Option<Duration>, max_missed: u32) -> Self {
        self.config.ping_interval = interval;
        self.config.max_missed_pongs = max_missed.max(1);
        self
    }

    /// Timeout of server→client calls made through [`crate::Context::peer`] (default 30 s).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.config.call_timeout = timeout;
        self
    }

    /// How long a graceful shutdown waits for in-flight calls before closing anyway
    /// (default 30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Allow browsers from this origin (e.g. `https://app.example.com`), or any origin
    /// with `*`. Without any, only requests without `Origin` (non-browser clients) and
    /// same-origin pages (the same scheme, host and port as the request) are accepted;
    /// others get HTTP 403. Behind a proxy that terminates TLS, list the public origin here.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.allowed_origins.push(origin.into());
        self
    }

    /// Answer only requests whose `Host` is this name: `app.example.com` (any port),
    /// `app.example.com:8443`, `.example.com` (the name and its subdomains), or `*` (any
    /// host). Once one is given, every request — browser or not — must name a listed
    /// host, else HTTP 403 `host not allowed`; this is what stops DNS rebinding.
    ///
    /// Without any, a server whose listener is bound to a loopback address (`127.0.0.1`,
    /// `::1`) serves same-origin browser pages only under names that cannot be rebound — an
    /// IP address, `localhost`, `*.localhost` — and requests without `Origin` under any
    /// name. A server bound elsewhere (a private network, `0.0.0.0`) should list its names.
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(host.into());
        self
    }

    /// Inspect each handshake request — a WebSocket upgrade, or an HTTP POST (e.g. check
    /// an `Authorization` header) — and accept it, optionally storing values in the
    /// session's [`crate::Context::extensions`], or refuse it with an HTTP status.
    pub fn on_handshake<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Request<()>, &mut Extensions) -> Result<(), Refusal> + Send + Sync + 'static,
    {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Authenticate every connection and request — WebSocket upgrade, POST, server-sent
    /// events — before any message is read. The hook sees the method, path, query,
    /// headers (cookies included), peer address and bearer token (from `Authorization`, or
    /// the `bearer.…` WebSocket subprotocol), and returns the [`Identity`] handlers read
    /// back with [`crate::Context::identity`], or a [`Refusal`] (401, 403…).
    ///
    /// ```no_run
    /// use wirecall::auth::{Identity, Refusal};
    /// # async fn lookup(token: &str) -> Option<String> { None }
    /// # async fn demo(router: wirecall::raw::Router) -> std::io::Result<()> {
    /// let server = wirecall::Server::builder()
    ///     .authenticate(|handshake| async move {
    ///         let token = handshake.bearer_token().ok_or_else(|| Refusal::unauthorized("no token"))?;
    ///         let user = lookup(token).await.ok_or_else(|| Refusal::forbidden("unknown token"))?;
    ///         Ok(Identity::new(user).expires_in(std::time::Duration::from_secs(3600)))
    ///     })
    ///     .bind("127.0.0.1:9000", router)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn authenticate<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Handshake) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Identity, Refusal>> + Send + 'static,
    {
        self.authenticate = Some(Arc::new(move |h| Box::pin(hook(h))));
        self
    }

    /// Per-connection settings in one go (advanced: buffer sizes, queue length).
    pub fn connection_config(mut self, config: ConnectionConfig) -> Self {
        self.config = config;
        self
    }

    /// Connections the kernel may hold for the server before it accepts them (default
    /// 4 096, capped by the system's `net.core.somaxconn`). A burst of connections beyond
    /// it sees its handshakes dropped and retried by TCP, seconds later.
    pub fn listen_backlog(mut self, n: u32) -> Self {
        self.door.backlog = n.max(1);
        self
    }

    /// The hub that carries the publications of the router's topics (default: a
    /// [`Hub::memory`](crate::hub::Hub::memory) of this server's own). Give every node of a
    /// deployment the same `Hub::redis(…)` (feature `redis`), and keep a clone to publish
    /// from outside handlers.
    pub fn hub(mut self, hub: crate::hub::Hub) -> Self {
        self.hub = Some(hub);
        self
    }

    /// The realm WAMP clients must join (`wamp.2.json`, see `docs/PROTOCOL.md`); by
    /// default any realm is accepted. A `HELLO` for another realm is aborted with
    /// `wamp.error.no_such_realm`.
    pub fn wamp_realm(mut self, realm: impl Into<String>) -> Self {
        self.wamp_realm = Some(realm.into());
        self
    }

    /// Wrap every call in a [`tower::Layer`]: its service sees each call, notification,
    /// stream or topic subscription, unsubscribe and WAMP `PUBLISH` exactly once, from every door
    /// (WebSocket, HTTP POST, server-sent events, WAMP) and inside batches, as a
    /// [`RpcRequest`](crate::policy::RpcRequest), and may answer it, refuse it, time it,
    /// log it, or pass it on. Several layers stack: the first added sees a call first. See
    /// [`crate::policy`].
    ///
    /// ```
    /// use wirecall::policy::from_fn;
    /// use wirecall::RpcError;
    ///
    /// # async fn demo(router: wirecall::raw::Router) -> std::io::Result<()> {
    /// let server = wirecall::Server::builder()
    ///     .layer(from_fn(|req, next| async move {
    ///         if req.method().starts_with("Admin.") && req.identity::<String>().is_none() {
    ///             return Err(RpcError::forbidden(format!("calling `{}`", req.method())));
    ///         }
    ///         next.run(req).await
    ///     }))
    ///     .bind("127.0.0.1:0", router)
    ///     .await?;
    /// # drop(server); Ok(()) }
    /// ```
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<Next> + Send + Sync + 'static,
        L::Service: tower::Service<RpcRequest, Response = String> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<RpcRequest>>::Error: Into<tower::BoxError>,
        <L::Service as tower::Service<RpcRequest>>::Future: Send + 'static,
    {
        self.layers.push(policy::layer_fn(layer));
        self
    }

    /// Bind `addr` and serve `router` on every connection.
    pub async fn bind(self, addr: impl ToSocketAddrs, router: Router) -> io::Result<ServerHandle> {
        let mut last = None;
        for addr in tokio::net::lookup_host(addr).await? {
            match listen(addr, self.door.backlog) {
                Ok(listener) => return self.serve(listener, router),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the address resolved to nothing",
            )
        }))
    }

    /// Serve `router` on connections accepted from `listener`.
    pub fn serve(self, listener: TcpListener, router: Router) -> io::Result<ServerHandle> {
        let local_addr = listener.local_addr()?;
        let gate = Gate::new(
            self.door.max_pending,
            self.door.max_pending_bodies,
            self.door.max_per_ip,
        );
        let listen = Listen {
            handshake_timeout: self.handshake_timeout,
            gate: gate.clone(),
            tls: self.tls.clone().map(tokio_rustls::TlsAcceptor::from),
            door: self.door.clone(),
        };
        let shutdown_timeout = self.shutdown_timeout;
        let secure = self.tls.is_some();
        let scheme = if secure { "https" } else { "http" };
        let endpoint = self.endpoint(router, Some(scheme), local_addr.ip().is_loopback());
        let accept = tokio::spawn(accept_loop(listener, endpoint.clone(), listen));
        endpoint.tracker.close();
        Ok(ServerHandle {
            local_addr,
            secure,
            gate,
            endpoint,
            shutdown_timeout,
            accept: Arc::new(tokio::sync::Mutex::new(Some(accept))),
        })
    }

    /// The same server as a `tower::Service`, to mount in an application that runs its own
    /// HTTP server: WebSocket upgrades, POST and server-sent events on one route. With axum:
    ///
    /// ```no_run
    /// # async fn demo(router: wirecall::raw::Router) -> std::io::Result<()> {
    /// let app: axum::Router = axum::Router::new()
    ///     .route("/health", axum::routing::get(|| async { "ok" }))
    ///     .route_service("/rpc", wirecall::Server::builder().into_service(router));
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// axum::serve(listener, app).await
    /// # }
    /// ```
    ///
    /// The application's server must support HTTP upgrades (axum's `serve` and hyper-util's
    /// `serve_connection_with_upgrades` do). Here `max_connections` counts WebSocket
    /// sessions, and the handshake timeout is the application server's business.
    pub fn into_service(self, router: Router) -> RpcService {
        let endpoint = self.endpoint(router, None, false);
        endpoint.tracker.close();
        RpcService { endpoint }
    }

    /// The endpoint of the server's own listener (its scheme, and whether it is bound to
    /// loopback), or of a mounted service (`None`, `false`).
    fn endpoint(
        self,
        mut router: Router,
        scheme: Option<&'static str>,
        loopback: bool,
    ) -> Arc<Endpoint> {
        router.set_policy(policy::compose(&self.layers));
        Arc::new(Endpoint {
            config: Arc::new(self.config),
            router,
            hub: self.hub.unwrap_or_default(),
            wamp_realm: self.wamp_realm.map(Into::into),
            origins: OriginRule {
                allowed_origins: self.allowed_origins,
                allowed_hosts: self.allowed_hosts,
                scheme,
                loopback,
            },
            hook: self.hook,
            authenticate: self.authenticate,
            handshake_timeout: self.handshake_timeout,
            max_connections: self.max_connections,
            reads: self.reads,
            active: AtomicUsize::new(0),
            shutdown: CancellationToken::new(),
            close: CancellationToken::new(),
            tracker: TaskTracker::new(),
            http_peer: Peer::detached(HTTP_PEER),
        })
    }
}
