//! The server: one port, several doors. A hyper HTTP/1.1 listener whose every request goes
//! to one endpoint ([`crate::transport::http`]): WebSocket upgrades, JSON-RPC over HTTP
//! POST, and server-sent events for streams. [`ServerBuilder::into_service`] gives the same
//! endpoint as a `tower::Service`, to mount in an application (axum, hyper, tonic…).

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Extensions, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::{self, ConnectionConfig};
use crate::session::peer::Peer;
use crate::session::router::Router;
use crate::session::HTTP_PEER;
use crate::transport::http::{Endpoint, HandshakeHook, Refusal, ResponseBody, Slot, Source};

/// Configures and starts a server. Every setting has the default of `docs/PROTOCOL.md`.
///
/// ```no_run
/// # async fn demo(router: wirecall::Router) -> std::io::Result<()> {
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
    hook: Option<Arc<HandshakeHook>>,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("config", &self.config)
            .field("max_connections", &self.max_connections)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("allowed_origins", &self.allowed_origins)
            .field("hook", &self.hook.is_some())
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
            hook: None,
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

    /// Connections served at once (default 10 000); more are refused with HTTP 503.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
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

    /// Time a client has to complete the WebSocket handshake (default 10 s).
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
    /// same-host origins are accepted; others get HTTP 403.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.allowed_origins.push(origin.into());
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

    /// Per-connection settings in one go (advanced: buffer sizes, queue length).
    pub fn connection_config(mut self, config: ConnectionConfig) -> Self {
        self.config = config;
        self
    }

    /// Bind `addr` and serve `router` on every connection.
    pub async fn bind(self, addr: impl ToSocketAddrs, router: Router) -> io::Result<ServerHandle> {
        let listener = TcpListener::bind(addr).await?;
        self.serve(listener, router)
    }

    /// Serve `router` on connections accepted from `listener`.
    pub fn serve(self, listener: TcpListener, router: Router) -> io::Result<ServerHandle> {
        let local_addr = listener.local_addr()?;
        let handshake_timeout = self.handshake_timeout;
        let shutdown_timeout = self.shutdown_timeout;
        let endpoint = self.endpoint(router);
        let accept = tokio::spawn(accept_loop(listener, endpoint.clone(), handshake_timeout));
        endpoint.tracker.close();
        Ok(ServerHandle {
            local_addr,
            endpoint,
            shutdown_timeout,
            accept: Arc::new(tokio::sync::Mutex::new(Some(accept))),
        })
    }

    /// The same server as a `tower::Service`, to mount in an application that runs its own
    /// HTTP server: WebSocket upgrades, POST and server-sent events on one route. With axum:
    ///
    /// ```no_run
    /// # async fn demo(router: wirecall::Router) -> std::io::Result<()> {
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
        let endpoint = self.endpoint(router);
        endpoint.tracker.close();
        RpcService { endpoint }
    }

    fn endpoint(self, router: Router) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            config: Arc::new(self.config),
            router,
            allowed_origins: self.allowed_origins,
            hook: self.hook,
            max_connections: self.max_connections,
            active: AtomicUsize::new(0),
            shutdown: CancellationToken::new(),
            close: CancellationToken::new(),
            tracker: TaskTracker::new(),
            http_peer: Peer::detached(HTTP_PEER),
        })
    }
}

/// Starts servers. See [`ServerBuilder`] for the settings.
#[derive(Debug)]
pub struct Server(());

impl Server {
    /// A builder with the default settings.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Bind `addr` with the default settings and serve `router`.
    pub async fn bind(addr: impl ToSocketAddrs, router: Router) -> io::Result<ServerHandle> {
        Self::builder().bind(addr, router).await
    }
}

/// A running server. Dropping the handle does not stop the server; call
/// [`ServerHandle::shutdown`].
#[derive(Clone)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    endpoint: Arc<Endpoint>,
    shutdown_timeout: Duration,
    accept: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The `ws://` URL of the server.
    pub fn url(&self) -> String {
        format!("ws://{}", self.local_addr)
    }

    /// The `http://` URL of the server: the same port, for JSON-RPC over HTTP POST.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// TCP connections open now: WebSocket sessions, HTTP keep-alive connections, and those
    /// still in their handshake.
    pub fn connections(&self) -> usize {
        self.endpoint.active.load(Ordering::Relaxed)
    }

    /// Graceful shutdown: stop accepting, answer new requests with "server shutting
    /// down", let in-flight calls finish (up to the shutdown timeout), close every
    /// connection with code 1001, and return when all are closed.
    pub async fn shutdown(&self) {
        shutdown(&self.endpoint, self.shutdown_timeout).await;
        if let Some(accept) = self.accept.lock().await.take() {
            let _ = accept.await;
        }
    }

    /// Completes when the server has shut down.
    pub async fn stopped(&self) {
        self.endpoint.shutdown.cancelled().await;
        self.endpoint.tracker.wait().await;
    }
}

/// Graceful shutdown of an endpoint: stop taking new work, let in-flight calls finish
/// (up to `timeout`), then close what is left.
async fn shutdown(endpoint: &Endpoint, timeout: Duration) {
    endpoint.shutdown.cancel();
    if tokio::time::timeout(timeout, endpoint.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("calls still running after {timeout:?}; closing their connections");
        endpoint.close.cancel();
        endpoint.tracker.wait().await;
    }
}

async fn accept_loop(listener: TcpListener, endpoint: Arc<Endpoint>, handshake_timeout: Duration) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(handshake_timeout)
        .keep_alive(true)
        // JSON-RPC answers are small: one copy into the head's buffer and one write beat
        // a vectored write of head and body (+3–9 % POST calls/s in bench/run.sh's HTTP
        // scenario).
        .writev(false);
    loop {
        let accepted = tokio::select! {
            _ = endpoint.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, addr)) => {
                let (slot, within) = Slot::take(&endpoint);
                let source = Source {
                    remote_addr: Some(addr),
                    slot: Some((Arc::new(slot), within)),
                };
                // This task ends with the HTTP connection; after a WebSocket upgrade the
                // session's own task holds the slot and a tracker token.
                let conn = connection(
                    stream,
                    source,
                    endpoint.clone(),
                    http.clone(),
                    handshake_timeout,
                );
                endpoint
                    .tracker
                    .spawn(conn.instrument(tracing::debug_span!("accept", remote = %addr)));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serve one TCP connection: HTTP/1.1 requests (keep-alive) until it closes or upgrades.
async fn connection(
    stream: TcpStream,
    source: Source,
    endpoint: Arc<Endpoint>,
    http: hyper::server::conn::http1::Builder,
    handshake_timeout: Duration,
) {
    let _ = stream.set_nodelay(true);
    // A client must send a whole request head within the handshake timeout; hyper's header
    // timeout covers the requests after the first.
    let started = Arc::new(AtomicBool::new(false));
    let service = {
        let endpoint = endpoint.clone();
        let started = started.clone();
        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            started.store(true, Ordering::Relaxed);
            let endpoint = endpoint.clone();
            let source = source.clone();
            async move { Ok::<_, Infallible>(endpoint.handle(req, source).await) }
        })
    };
    let mut conn = pin!(http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades());
    let mut first_request = pin!(tokio::time::sleep(handshake_timeout));
    let mut waiting_first = true;
    let mut shutting_down = false;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!("HTTP connection ended: {e}");
                }
                return;
            }
            _ = &mut first_request, if waiting_first => {
                if !started.load(Ordering::Relaxed) {
                    tracing::debug!("handshake timed out after {handshake_timeout:?}");
                    return;
                }
                waiting_first = false;
            }
            _ = endpoint.shutdown.cancelled(), if !shutting_down => {
                // Finish the request in progress, then close.
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = endpoint.close.cancelled() => return,
        }
    }
}

/// A wirecall server as a `tower::Service` over HTTP requests: WebSocket upgrade, JSON-RPC
/// POST and server-sent events, all on the route it is mounted at. Made by
/// [`ServerBuilder::into_service`]; cheap to clone.
#[derive(Clone)]
pub struct RpcService {
    endpoint: Arc<Endpoint>,
}

impl fmt::Debug for RpcService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcService")
            .field("router", &self.endpoint.router)
            .finish_non_exhaustive()
    }
}

impl RpcService {
    /// Graceful shutdown of the service's sessions: new requests are refused, in-flight
    /// calls finish (up to the shutdown timeout), WebSocket sessions close with 1001.
    pub async fn shutdown(&self, timeout: Duration) {
        shutdown(&self.endpoint, timeout).await
    }
}

impl<B> tower_service::Service<Request<B>> for RpcService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let endpoint = self.endpoint.clone();
        Box::pin(async move { Ok(endpoint.handle(req, Source::default()).await) })
    }
}
