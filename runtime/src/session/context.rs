//! What a handler knows about the connection its call came from.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use http::{Extensions, HeaderMap};

use crate::auth::Identity;
use crate::hub::Hub;
use crate::session::peer::Peer;

/// Identifies a connection for the lifetime of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl ConnectionId {
    pub(crate) fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnectionId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The connection a call arrived on: who the peer is, what it sent in the handshake,
/// and a [`Peer`] handle to call it back. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    inner: Arc<ContextInner>,
    /// The call's deadline (its `"$timeout"`), in a handler's context.
    deadline: Option<Instant>,
}

struct ContextInner {
    connection_id: ConnectionId,
    remote_addr: Option<SocketAddr>,
    headers: HeaderMap,
    extensions: Extensions,
    /// The identity a connection established after its handshake (a WAMP client's
    /// `ticket`), when the handshake gave none.
    authenticated: std::sync::OnceLock<Identity>,
    peer: Peer,
}

impl Context {
    pub(crate) fn new(
        connection_id: ConnectionId,
        remote_addr: Option<SocketAddr>,
        headers: HeaderMap,
        extensions: Extensions,
        peer: Peer,
    ) -> Self {
        Context {
            inner: Arc::new(ContextInner {
                connection_id,
                remote_addr,
                headers,
                extensions,
                authenticated: std::sync::OnceLock::new(),
                peer,
            }),
            deadline: None,
        }
    }

    /// The same connection's context for a call that must end by `deadline`.
    pub(crate) fn with_deadline(&self, deadline: Instant) -> Self {
        Context {
            inner: self.inner.clone(),
            deadline: Some(deadline),
        }
    }

    /// When the caller stops waiting for this call's answer, if it said: the request's
    /// `"$timeout"` (the `Wirecall-Timeout` header of a POST, the `timeout` option of a
    /// WAMP call), counted from its arrival. The server ends the call with
    /// `-32004 Deadline exceeded` then; calls the handler makes meanwhile through a
    /// wirecall client or [`Peer`] inherit what is left of it.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The connection's id (also in tracing spans).
    pub fn connection_id(&self) -> ConnectionId {
        self.inner.connection_id
    }

    /// The peer's socket address, when known.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr
    }

    /// The HTTP headers of the request that opened the session (on a server): the WebSocket
    /// handshake, or the POST that carried the call — e.g. `Authorization` or `Cookie` for
    /// authentication. Empty on a client.
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// Values the server's handshake hook stored for this connection (e.g. the
    /// authenticated user); see [`crate::server::ServerBuilder::on_handshake`].
    pub fn extensions(&self) -> &Extensions {
        &self.inner.extensions
    }

    /// Who the connection authenticated as: the value of the [`Identity`] the
    /// server's [`authenticate`](crate::server::ServerBuilder::authenticate) hook returned, if it
    /// is a `T`. `None` without the hook, or for another type.
    ///
    /// ```
    /// # async fn handler(ctx: wirecall::Context) {
    /// #[derive(Debug)]
    /// struct User(String);
    /// if let Some(User(name)) = ctx.identity::<User>() {
    ///     println!("called by {name}");
    /// }
    /// # }
    /// ```
    pub fn identity<T: std::any::Any>(&self) -> Option<&T> {
        self.identity_info()?.get()
    }

    /// The connection's whole [`Identity`] (its expiry too), if authenticated.
    pub fn identity_info(&self) -> Option<&Identity> {
        self.inner
            .extensions
            .get::<Identity>()
            .or_else(|| self.inner.authenticated.get())
    }

    /// The connection authenticated after its handshake (a WAMP `ticket`): `false` if it
    /// had an identity already.
    pub(crate) fn authenticate(&self, identity: Identity) -> bool {
        self.inner.extensions.get::<Identity>().is_none()
            && self.inner.authenticated.set(identity).is_ok()
    }

    /// The hub this connection's topics go through: the server's
    /// ([`crate::server::ServerBuilder::hub`], or the memory hub each server has by default). Publish
    /// from a handler with the generated `…Topics::new(ctx.hub())`. On a client's
    /// connection, a memory hub of the process.
    pub fn hub(&self) -> &Hub {
        static PROCESS: std::sync::OnceLock<Hub> = std::sync::OnceLock::new();
        match self.inner.extensions.get::<Hub>() {
            Some(hub) => hub,
            None => PROCESS.get_or_init(Hub::memory),
        }
    }

    /// A handle to call methods of, and send notifications to, the other end.
    pub fn peer(&self) -> &Peer {
        &self.inner.peer
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("connection_id", &self.inner.connection_id)
            .field("remote_addr", &self.inner.remote_addr)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}
