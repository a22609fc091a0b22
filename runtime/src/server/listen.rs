//! The server's own listener: binding, the accept loop, one connection (TLS, the gate,
//! hyper), and the handle of a running server.

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::session::router::Router;
use crate::telemetry;
use crate::transport::gate::{Gate, Pass, Turned};
use crate::transport::http::{Accepted, Endpoint, Source};

use super::builder::{DoorLimits, ServerBuilder};

/// A listening socket on `addr` with room for `backlog` connections not yet accepted.
pub(super) fn listen(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As std's and tokio's own `bind` do on Unix: restart on a port in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
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
    pub(super) local_addr: SocketAddr,
    /// Served over TLS.
    pub(super) secure: bool,
    pub(super) gate: Arc<Gate>,
    pub(super) endpoint: Arc<Endpoint>,
    pub(super) shutdown_timeout: Duration,
    pub(super) accept: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
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

    /// The `ws://` URL of the server (`wss://` over TLS).
    pub fn url(&self) -> String {
        let s = if self.secure { "s" } else { "" };
        format!("ws{s}://{}", self.local_addr)
    }

    /// The `http://` URL of the server (`https://` over TLS): the same port, for JSON-RPC
    /// over HTTP POST.
    pub fn http_url(&self) -> String {
        let s = if self.secure { "s" } else { "" };
        format!("http{s}://{}", self.local_addr)
    }

    /// The hub of this server's topics: publish through it from outside handlers.
    pub fn hub(&self) -> &crate::hub::Hub {
        &self.endpoint.hub
    }

    /// Connections open now that count against `max_connections`: WebSocket sessions and
    /// HTTP keep-alive connections that have sent a whole request (not those still in their
    /// handshake, nor those whose request body is being waited for).
    pub fn connections(&self) -> usize {
        self.endpoint.active.load(Ordering::Relaxed)
    }

    /// Connections of the server's listener still in their TLS or HTTP handshake.
    pub fn pending_handshakes(&self) -> usize {
        self.gate.pending()
    }

    /// Request bodies of the server's listener being waited for (see
    /// [`ServerBuilder::max_pending_bodies`]).
    pub fn pending_bodies(&self) -> usize {
        self.gate.bodies()
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
pub(super) async fn shutdown(endpoint: &Endpoint, timeout: Duration) {
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

/// How the server's own listener takes connections.
pub(super) struct Listen {
    pub(super) handshake_timeout: Duration,
    pub(super) gate: Arc<Gate>,
    pub(super) tls: Option<tokio_rustls::TlsAcceptor>,
    pub(super) door: DoorLimits,
}

pub(super) async fn accept_loop(listener: TcpListener, endpoint: Arc<Endpoint>, listen: Listen) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(listen.handshake_timeout)
        .max_buf_size(listen.door.max_header_size)
        .keep_alive(true)
        // JSON-RPC answers are small: one copy into the head's buffer and one write beat
        // a vectored write of head and body (+3–9 % POST calls/s in bench/run.sh's HTTP
        // scenario).
        .writev(false);
    let listen = Arc::new(listen);
    loop {
        let accepted = tokio::select! {
            _ = endpoint.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, addr)) => {
                let pass = match listen.gate.enter(addr.ip()) {
                    Ok(pass) => Arc::new(pass),
                    Err(Turned::PerIp) => {
                        telemetry::handshake_refused("per_ip");
                        tracing::debug!(remote = %addr, "too many connections from this address");
                        continue;
                    }
                };
                // This task ends with the HTTP connection; after a WebSocket upgrade the
                // session's own task holds the slot, the pass and a tracker token.
                let conn = connection(
                    stream,
                    addr,
                    pass,
                    endpoint.clone(),
                    http.clone(),
                    listen.clone(),
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

/// Serve one TCP connection: wait for its first byte, do the TLS handshake if the server
/// has TLS, then HTTP/1.1 requests (keep-alive) until it closes or upgrades. Until a whole
/// request head has arrived it is a pending handshake, which the gate may drop.
async fn connection(
    stream: TcpStream,
    addr: SocketAddr,
    pass: Arc<Pass>,
    endpoint: Arc<Endpoint>,
    http: hyper::server::conn::http1::Builder,
    listen: Arc<Listen>,
) {
    let _ = stream.set_nodelay(true);
    let deadline = tokio::time::Instant::now() + listen.handshake_timeout;
    let evicted = pass.evicted().clone();
    // A socket that says nothing at all is closed early.
    let mut first = [0u8; 1];
    let silent_for = listen.door.silent_timeout.min(listen.handshake_timeout);
    let silent = tokio::time::timeout(silent_for, stream.peek(&mut first));
    tokio::select! {
        _ = evicted.cancelled() => return,
        _ = endpoint.close.cancelled() => return,
        said = silent => match said {
            Ok(Ok(n)) if n > 0 => {}
            Ok(_) => return,
            Err(_) => {
                telemetry::handshake_refused("silent");
                tracing::debug!("closing a connection that sent nothing");
                return;
            }
        },
    }
    let source = Source {
        remote_addr: Some(addr),
        accepted: Some(Arc::new(Accepted::new(pass.clone()))),
    };
    match &listen.tls {
        None => {
            serve_http(
                TokioIo::new(stream),
                source,
                endpoint,
                http,
                deadline,
                &pass,
            )
            .await
        }
        Some(acceptor) => {
            let handshake = tokio::time::timeout_at(deadline, acceptor.accept(stream));
            let tls = tokio::select! {
                _ = evicted.cancelled() => return,
                _ = endpoint.close.cancelled() => return,
                tls = handshake => tls,
            };
            match tls {
                Ok(Ok(tls)) => {
                    serve_http(TokioIo::new(tls), source, endpoint, http, deadline, &pass).await
                }
                Ok(Err(e)) => {
                    telemetry::handshake_refused("tls");
                    tracing::debug!("TLS handshake failed: {e}");
                }
                Err(_) => {
                    telemetry::handshake_refused("timeout");
                    tracing::debug!("TLS handshake timed out");
                }
            }
        }
    }
}

/// How long a connection whose request body was cut off has to take its `408` before it is
/// dropped anyway.
const CUT_GRACE: Duration = Duration::from_secs(1);

/// HTTP/1.1 on one connection (plain or TLS). The first request head must arrive by
/// `deadline`; it ends the pending handshake. The connection counts against
/// `max_connections` once it has a whole request (see [`Accepted`]).
async fn serve_http<I>(
    io: TokioIo<I>,
    source: Source,
    endpoint: Arc<Endpoint>,
    http: hyper::server::conn::http1::Builder,
    deadline: tokio::time::Instant,
    pass: &Pass,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let started = Arc::new(AtomicBool::new(false));
    let cut = match &source.accepted {
        Some(accepted) => accepted.cut.clone(),
        None => CancellationToken::new(),
    };
    let service = {
        let endpoint = endpoint.clone();
        let started = started.clone();
        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            if !started.swap(true, Ordering::Relaxed) {
                if let Some(accepted) = &source.accepted {
                    accepted.pass.established();
                }
            }
            let endpoint = endpoint.clone();
            let source = source.clone();
            async move { Ok::<_, Infallible>(endpoint.handle(req, source).await) }
        })
    };
    let mut conn = pin!(http.serve_connection(io, service).with_upgrades());
    // The first request's deadline; then, once a body is cut off, the 408's.
    let mut timer = pin!(tokio::time::sleep_until(deadline));
    let mut waiting_first = true;
    let mut cutting = false;
    let mut shutting_down = false;
    let evicted = pass.evicted().clone();
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!("HTTP connection ended: {e}");
                }
                return;
            }
            _ = &mut timer, if waiting_first || cutting => {
                if cutting {
                    tracing::debug!("dropping a connection that does not take its 408");
                    return;
                }
                if !started.load(Ordering::Relaxed) {
                    telemetry::handshake_refused("timeout");
                    tracing::debug!("no request head before the handshake timeout");
                    return;
                }
                waiting_first = false;
            }
            _ = evicted.cancelled(), if waiting_first => {
                if !started.load(Ordering::Relaxed) {
                    return;
                }
                waiting_first = false;
            }
            _ = cut.cancelled(), if !cutting => {
                // A request body was cut off: its 408 is on its way, after which hyper
                // closes the connection; one that does not take it goes soon anyway.
                cutting = true;
                waiting_first = false;
                timer.as_mut().reset(tokio::time::Instant::now() + CUT_GRACE);
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
