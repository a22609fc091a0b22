//! The server: accepts WebSocket connections and serves a [`Router`] on each.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{
    header, Extensions, HeaderMap, HeaderValue, StatusCode,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::{self, ConnectionConfig};
use crate::connection::{self, Setup};
use crate::router::Router;

/// The subprotocol wirecall speaks (`Sec-WebSocket-Protocol`).
pub const SUBPROTOCOL: &str = "jsonrpc-2.0";

/// Why the handshake hook refused a connection: an HTTP status and a reason for the body.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The HTTP status, e.g. 401 or 403.
    pub status: StatusCode,
    /// The response body.
    pub reason: String,
}

impl Refusal {
    /// Refuse with `status` and `reason`.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Refusal {
            status,
            reason: reason.into(),
        }
    }
}

type HandshakeHook = dyn Fn(&Request, &mut Extensions) -> Result<(), Refusal> + Send + Sync;

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

    /// Inspect each handshake request (e.g. check an `Authorization` header) and accept
    /// it, optionally storing values in the connection's
    /// [`crate::Context::extensions`], or refuse it with an HTTP status.
    pub fn on_handshake<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Request, &mut Extensions) -> Result<(), Refusal> + Send + Sync + 'static,
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
        let state = Arc::new(ServerState {
            config: Arc::new(self.config.clone()),
            builder: self,
            router,
            active: AtomicUsize::new(0),
            shutdown: CancellationToken::new(),
            close: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        state.tracker.close();
        Ok(ServerHandle {
            local_addr,
            state,
            accept: Arc::new(tokio::sync::Mutex::new(Some(accept))),
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

struct ServerState {
    builder: ServerBuilder,
    config: Arc<ConnectionConfig>,
    router: Router,
    active: AtomicUsize,
    shutdown: CancellationToken,
    close: CancellationToken,
    tracker: TaskTracker,
}

/// A running server. Dropping the handle does not stop the server; call
/// [`ServerHandle::shutdown`].
#[derive(Clone)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    state: Arc<ServerState>,
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

    /// Connections open now (including those still in the handshake).
    pub fn connections(&self) -> usize {
        self.state.active.load(Ordering::Relaxed)
    }

    /// Graceful shutdown: stop accepting, answer new requests with "server shutting
    /// down", let in-flight calls finish (up to the shutdown timeout), close every
    /// connection with code 1001, and return when all are closed.
    pub async fn shutdown(&self) {
        self.state.shutdown.cancel();
        if let Some(accept) = self.accept.lock().await.take() {
            let _ = accept.await;
        }
        let timeout = self.state.builder.shutdown_timeout;
        if tokio::time::timeout(timeout, self.state.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("calls still running after {timeout:?}; closing their connections");
            self.state.close.cancel();
            self.state.tracker.wait().await;
        }
    }

    /// Completes when the server has shut down.
    pub async fn stopped(&self) {
        self.state.shutdown.cancelled().await;
        self.state.tracker.wait().await;
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<ServerState>) {
    loop {
        let accepted = tokio::select! {
            _ = state.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, addr)) => {
                let active = state.active.fetch_add(1, Ordering::AcqRel) + 1;
                let guard = ActiveGuard(state.clone());
                let st = state.clone();
                // This task ends with the handshake; the connection's own task then holds
                // the guard and a tracker token (see `handle`).
                state.tracker.spawn(
                    handle(stream, addr, st, active, guard)
                        .instrument(tracing::debug_span!("accept", remote = %addr)),
                );
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

struct ActiveGuard(Arc<ServerState>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

fn refuse(status: StatusCode, reason: &str) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(reason.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The Origin policy: no `Origin` (not a browser), the same host as `Host`, or allowed.
fn origin_allowed(req: &Request, allowed: &[String]) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    host.is_some_and(|h| h.eq_ignore_ascii_case(origin_host))
}

async fn handle(
    stream: TcpStream,
    addr: SocketAddr,
    state: Arc<ServerState>,
    active: usize,
    guard: ActiveGuard,
) {
    let _ = stream.set_nodelay(true);
    let builder = &state.builder;
    let mut headers = HeaderMap::new();
    let mut extensions = Extensions::new();
    // The response type is tungstenite's.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        if active > builder.max_connections {
            return Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many connections",
            ));
        }
        if !origin_allowed(req, &builder.allowed_origins) {
            return Err(refuse(StatusCode::FORBIDDEN, "origin not allowed"));
        }
        if let Some(offered) = req.headers().get(header::SEC_WEBSOCKET_PROTOCOL) {
            let speaks = offered
                .to_str()
                .unwrap_or("")
                .split(',')
                .any(|p| p.trim() == SUBPROTOCOL);
            if !speaks {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "unsupported subprotocol: this server speaks jsonrpc-2.0",
                ));
            }
            resp.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(SUBPROTOCOL),
            );
        }
        if let Some(hook) = &builder.hook {
            if let Err(r) = hook(req, &mut extensions) {
                return Err(refuse(r.status, &r.reason));
            }
        }
        headers = req.headers().clone();
        Ok(resp)
    };
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        callback,
        Some(state.config.websocket()),
    );
    let ws = tokio::select! {
        _ = state.close.cancelled() => return,
        r = tokio::time::timeout(builder.handshake_timeout, handshake) => match r {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                tracing::debug!("handshake failed: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!("handshake timed out after {:?}", builder.handshake_timeout);
                return;
            }
        },
    };
    // The connection runs in a task of its own; this (larger) handshake task ends now
    // instead of waiting for it, which saves its memory for the connection's lifetime.
    // The connection holds the count and a token that graceful shutdown waits for.
    let hold: Box<dyn Send + Sync> = Box::new((guard, state.tracker.token()));
    connection::spawn(
        ws,
        Setup {
            config: state.config.clone(),
            router: state.router.clone(),
            remote_addr: Some(addr),
            headers,
            extensions,
            shutdown: state.shutdown.clone(),
            close: state.close.clone(),
            hold: Some(hold),
        },
    );
}
