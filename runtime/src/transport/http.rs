//! The server's HTTP side: one endpoint, several doors. Every request on the server's port
//! (or on the path an axum application mounts it at) comes here and is routed by its
//! shape:
//!
//! | request | door |
//! |---|---|
//! | `GET` with `Upgrade: websocket` | a WebSocket session (`super::ws_upgrade`, then [`super::ws`]) |
//! | `POST` (`Content-Type: application/json`) | one session for this request; its answer is the response |
//! | `POST` of one stream subscription with `Accept: text/event-stream` | server-sent events ([`super::sse`]) |
//! | `OPTIONS` | CORS preflight |
//! | `GET` without upgrade | `426 Upgrade Required` |
//! | anything else | `405 Method Not Allowed` |
//!
//! Every door applies the same Origin rule, handshake hook and limits.
//!
//! (Over ~500 lines: the endpoint's routing and its POST and server-sent-event doors share
//! the endpoint's state, admission and response helpers; the WebSocket upgrade is in
//! `ws_upgrade.rs`.)

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Extensions, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::body::{self, BodyError};
use super::deadline::{ReadRules, TooSlow};
use super::gate::{Pass, PendingBody};
pub(crate) use super::headers::OriginRule;
use super::headers::{accepts_events, is_json, is_upgrade, preflight, Refused};
use super::sse::EventBody;
use super::wamp::Ticket;
use crate::auth::Refusal;
use crate::auth::{Authenticate, Handshake};
use crate::codec::message::{self, Incoming};
use crate::codec::text::Text;
use crate::config::ConnectionConfig;
use crate::error::RpcError;
use crate::hub::Hub;
use crate::session::outbound::{json_rpc, DoorCaps};
use crate::session::router::{Route, Router};
use crate::session::{error_frame, CloseReason, Origin, Session};
use crate::telemetry::{self, Open, Via};

/// The request header of a POST that gives every call in its body without a `"$timeout"`
/// of its own a deadline: milliseconds from its arrival.
pub const TIMEOUT_HEADER: &str = "wirecall-timeout";

/// [`TIMEOUT_HEADER`] as a header name: looked up on every POST, so not parsed each time.
static TIMEOUT_NAME: header::HeaderName = header::HeaderName::from_static(TIMEOUT_HEADER);

/// Why a session over HTTP cannot call its client.
pub(crate) const HTTP_PEER: &str =
    "server→client calls need a WebSocket connection; this call came over HTTP";

/// One HTTP POST answered with JSON: no streams, no server→client calls.
pub(crate) const HTTP_POST_DOOR: DoorCaps = DoorCaps {
    no_peer_calls: Some(HTTP_PEER),
    streams: false,
    ends_with_stream: false,
    process_unique_sub_ids: false,
    via: Via::Http,
    door: crate::session::policy::Door::Http,
};

/// One HTTP POST answered with server-sent events: one stream, then the end; no
/// server→client calls. Each response is a session of its own and a client may hold
/// several: their subscription ids are unique in the process.
pub(crate) const HTTP_EVENTS_DOOR: DoorCaps = DoorCaps {
    no_peer_calls: Some(HTTP_PEER),
    streams: true,
    ends_with_stream: true,
    process_unique_sub_ids: true,
    via: Via::Events,
    door: crate::session::policy::Door::Events,
};

/// The handshake hook: sees the request (its body left out) and may store values for the
/// handlers, or refuse.
pub(crate) type HandshakeHook =
    dyn Fn(&Request<()>, &mut Extensions) -> Result<(), Refusal> + Send + Sync;

/// What every door of one server (or one mounted service) shares.
pub(crate) struct Endpoint {
    pub(crate) config: Arc<ConnectionConfig>,
    pub(crate) router: Router,
    /// The hub of the routes' topics, in every session's extensions.
    pub(crate) hub: Hub,
    /// The only realm WAMP clients may join (`None`: any).
    pub(crate) wamp_realm: Option<Arc<str>>,
    /// Allowed origins and hosts.
    pub(crate) origins: OriginRule,
    pub(crate) hook: Option<Arc<HandshakeHook>>,
    /// The authentication hook, if any.
    pub(crate) authenticate: Option<Arc<Authenticate>>,
    /// How long a connection has to finish its handshake: for a WAMP client that
    /// authenticates with `ticket`, from the upgrade to its `AUTHENTICATE`.
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_connections: usize,
    /// How slowly a request body, or a WebSocket message, may arrive.
    pub(crate) reads: ReadRules,
    /// Connections open now that count against `max_connections`: TCP connections of the
    /// server's own listener that have a whole request (see [`Accepted`]), or WebSocket
    /// sessions of a mounted service.
    pub(crate) active: AtomicUsize,
    /// Cancelled to start a graceful shutdown.
    pub(crate) shutdown: CancellationToken,
    /// Cancelled to close every connection at once.
    pub(crate) close: CancellationToken,
    /// Every connection and session: graceful shutdown waits for them.
    pub(crate) tracker: TaskTracker,
    /// The peer of every POST's session: closed, since nothing can be called back.
    pub(crate) http_peer: crate::session::peer::Peer,
}

/// One unit of the connection count, given back when dropped.
pub(crate) struct Slot(Arc<Endpoint>);

impl Slot {
    /// Count one more connection; `None` (and nothing counted) over the limit.
    pub(crate) fn take(endpoint: &Arc<Endpoint>) -> (Slot, bool) {
        let n = endpoint.active.fetch_add(1, Ordering::AcqRel) + 1;
        (Slot(endpoint.clone()), n <= endpoint.max_connections)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A TCP connection accepted by the server's own listener, as its requests see it.
///
/// It counts against `max_connections` once it has sent a whole request — a head, and for
/// a POST its whole body — and keeps counting until it closes, except while a later
/// request's body has to be waited for: then it is a pending body at the gate instead
/// (capped, the oldest cut off), until that body is whole. So stalled bodies, however
/// many, never take the slots of sessions, and never make the server refuse a complete
/// request.
pub(crate) struct Accepted {
    /// Its place at the listener's gate (its IP address's count): held by a WebSocket
    /// session for its whole life.
    pub(crate) pass: Arc<Pass>,
    /// Its unit of the connection count while it holds one, with whether it was within
    /// the limit when taken.
    slot: Mutex<Option<(Arc<Slot>, bool)>>,
    /// Cancelled when a request body is cut off: the connection closes once its `408` is
    /// out (or soon, if the peer does not take it).
    pub(crate) cut: CancellationToken,
}

impl Accepted {
    pub(crate) fn new(pass: Arc<Pass>) -> Accepted {
        Accepted {
            pass,
            slot: Mutex::new(None),
            cut: CancellationToken::new(),
        }
    }

    /// The connection has a whole request: its slot in the connection count (taken now if
    /// it holds none), with whether it was within the limit.
    pub(super) fn slot(&self, endpoint: &Arc<Endpoint>) -> (Arc<Slot>, bool) {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert_with(|| {
            let (slot, within) = Slot::take(endpoint);
            (Arc::new(slot), within)
        })
        .clone()
    }

    /// A request body has to be waited for: the connection gives back its slot and is a
    /// pending body until the body is whole (or cut off).
    pub(crate) fn waiting_body(&self) -> PendingBody {
        drop(self.slot.lock().unwrap_or_else(|e| e.into_inner()).take());
        self.pass.body()
    }
}

/// Where a request came from, as the server's listener knows it.
#[derive(Clone, Default)]
pub(crate) struct Source {
    pub(crate) remote_addr: Option<SocketAddr>,
    /// The TCP connection, on the server's own listener. `None` for a mounted service: a
    /// WebSocket takes a slot of its own, a POST none.
    pub(crate) accepted: Option<Arc<Accepted>>,
}

impl Source {
    /// A request with no body to wait for counts its connection from its head.
    fn count(&self, endpoint: &Arc<Endpoint>) {
        if let Some(accepted) = &self.accepted {
            accepted.slot(endpoint);
        }
    }
}

/// The address of the client, for a [`crate::server::RpcService`] mounted in an application: put it
/// in the request's extensions (a middleware can copy it from the framework's own type,
/// e.g. axum's `ConnectInfo`) and handlers see it in [`crate::Context::remote_addr`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// The body of every response the endpoint gives: a whole body, or server-sent events.
pub struct ResponseBody {
    kind: BodyKind,
}

enum BodyKind {
    Full(Full<Bytes>),
    Events(EventBody),
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            BodyKind::Full(_) => "ResponseBody::Full",
            BodyKind::Events(_) => "ResponseBody::Events",
        })
    }
}

impl ResponseBody {
    fn full(bytes: impl Into<Bytes>) -> Self {
        ResponseBody {
            kind: BodyKind::Full(Full::new(bytes.into())),
        }
    }

    pub(super) fn empty() -> Self {
        Self::full(Bytes::new())
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.kind {
            BodyKind::Full(full) => Pin::new(full).poll_frame(cx),
            BodyKind::Events(events) => Pin::new(events).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Full(full) => full.is_end_stream(),
            BodyKind::Events(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Full(full) => full.size_hint(),
            BodyKind::Events(_) => SizeHint::default(),
        }
    }
}

pub(super) type Resp = Response<ResponseBody>;

pub(super) fn text(status: StatusCode, body: impl Into<String>) -> Resp {
    let mut resp = Response::new(ResponseBody::full(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn json(status: StatusCode, body: String) -> Resp {
    let mut resp = Response::new(ResponseBody::full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

const UPGRADE_REQUIRED: &str = "this is a JSON-RPC 2.0 endpoint: open a WebSocket here \
     (Upgrade: websocket), or POST a request with Content-Type: application/json\n";

impl Endpoint {
    /// Answer one HTTP request.
    pub(crate) async fn handle<B>(self: &Arc<Self>, req: Request<B>, from: Source) -> Resp
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let origin = match self.origins.check(req.headers(), req.uri()) {
            Ok(origin) => origin,
            Err(refused) => {
                telemetry::handshake_refused("origin");
                return text(
                    StatusCode::FORBIDDEN,
                    match refused {
                        Refused::Origin => "origin not allowed",
                        Refused::Host => "host not allowed",
                    },
                );
            }
        };
        if req.method() != Method::POST {
            // No body to wait for: the connection counts from the head. (A POST counts
            // once its body is whole.)
            from.count(self);
        }
        let mut resp = match *req.method() {
            Method::GET if is_upgrade(req.headers()) => return self.upgrade(req, from).await,
            Method::GET | Method::HEAD => {
                let mut resp = text(StatusCode::UPGRADE_REQUIRED, UPGRADE_REQUIRED);
                resp.headers_mut()
                    .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                resp
            }
            Method::POST => self.post(req, from).await,
            Method::OPTIONS => preflight(req.headers()),
            _ => {
                let mut resp = text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "use POST for JSON-RPC over HTTP, or GET with Upgrade: websocket\n",
                );
                resp.headers_mut().insert(
                    header::ALLOW,
                    HeaderValue::from_static("GET, POST, OPTIONS"),
                );
                resp
            }
        };
        if let Some(origin) = origin {
            // A browser may read the answer: the origin passed the same rule as WebSocket.
            let headers = resp.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        resp
    }

    /// Run the handshake hooks on the request's head, before any message is read: the
    /// extensions they stored (the identity among them) and the time the identity has
    /// left, or the refusal as a response.
    ///
    /// `ticket`: the request is a WAMP upgrade without a bearer token, which may still
    /// authenticate in WAMP's own way; a hook's 401 then admits it with the
    /// [`Ticket`] to authenticate its `AUTHENTICATE` with.
    pub(super) async fn admit(
        &self,
        head: Option<Request<()>>,
        remote: Option<SocketAddr>,
        ticket: bool,
    ) -> Result<Admit, Box<Resp>> {
        let mut extensions = Extensions::new();
        extensions.insert(self.hub.clone());
        let Some(head) = head else {
            return Ok((extensions, None, None));
        };
        if let Some(hook) = &self.hook {
            if let Err(r) = hook(&head, &mut extensions) {
                return Err(Box::new(refused(r)));
            }
        }
        let mut expires = None;
        if let Some(authenticate) = &self.authenticate {
            let (parts, ()) = head.into_parts();
            let kept = ticket.then(|| {
                (
                    parts.method.clone(),
                    parts.uri.clone(),
                    parts.headers.clone(),
                )
            });
            let handshake = Handshake::new(parts.method, parts.uri, parts.headers, remote);
            let identity = match (authenticate(handshake).await, kept) {
                (Ok(identity), _) => identity,
                (Err(r), Some((method, uri, headers))) if r.status == StatusCode::UNAUTHORIZED => {
                    let ticket = Ticket {
                        authenticate: authenticate.clone(),
                        method,
                        uri,
                        headers,
                        remote,
                        refused: r.reason,
                    };
                    return Ok((extensions, None, Some(ticket)));
                }
                (Err(r), _) => return Err(Box::new(refused(r))),
            };
            expires = identity.time_left();
            if expires == Some(Duration::ZERO) {
                return Err(Box::new(refused(Refusal::unauthorized(
                    "the credentials have expired",
                ))));
            }
            extensions.insert(identity);
        }
        Ok((extensions, expires, None))
    }

    /// The request's head (its headers copied), for the hooks; `None` without hooks.
    pub(super) fn head<B>(&self, req: &Request<B>) -> Option<Request<()>> {
        if self.hook.is_none() && self.authenticate.is_none() {
            return None;
        }
        let mut head = Request::new(());
        *head.method_mut() = req.method().clone();
        *head.uri_mut() = req.uri().clone();
        *head.version_mut() = req.version();
        *head.headers_mut() = owned(req.headers());
        Some(head)
    }

    /// `POST`: one request, notification or batch; or one stream subscription answered
    /// with server-sent events.
    async fn post<B>(self: &Arc<Self>, req: Request<B>, from: Source) -> Resp
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if self.shutdown.is_cancelled() {
            return text(StatusCode::SERVICE_UNAVAILABLE, "server shutting down");
        }
        if !is_json(req.headers()) {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send JSON-RPC with Content-Type: application/json\n",
            );
        }
        let limit = self.config.max_message_size;
        let too_large = || {
            let err = RpcError::invalid_request().with_data(format!(
                "the request body is over the limit of {limit} bytes"
            ));
            json(StatusCode::PAYLOAD_TOO_LARGE, error_frame(&err, "null"))
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return too_large();
        }
        let remote_addr = remote_addr(&req, &from);
        let head = self.head(&req);
        let (extensions, expires, _) = match self.admit(head, remote_addr, false).await {
            Ok(admitted) => admitted,
            Err(refused) => return *refused,
        };
        let events = accepts_events(req.headers());
        let (parts, body) = req.into_parts();
        let accepted = from.accepted.as_deref();
        let body = match body::read(body, limit, self.reads, accepted).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => return too_large(),
            Err(BodyError::Failed(e)) => {
                tracing::debug!("reading a request body failed: {e}");
                return text(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                );
            }
            Err(BodyError::TooSlow(why)) => {
                telemetry::read_cut(match why {
                    TooSlow::Rate => "body_rate",
                    TooSlow::Timeout => "body_timeout",
                });
                return body_cut(accepted, &why.to_string());
            }
            // (Counted by the gate.)
            Err(BodyError::Shed) => {
                return body_cut(accepted, "too many request bodies are being waited for")
            }
        };
        // A whole request: the connection counts now.
        if let Some(accepted) = accepted {
            if !accepted.slot(self).1 {
                return too_many_connections();
            }
        }
        let Ok(body) = Text::try_from(body) else {
            return json(
                StatusCode::BAD_REQUEST,
                error_frame(&RpcError::parse_error(), "null"),
            );
        };
        let timeout = match parts.headers.get(&TIMEOUT_NAME) {
            None => None,
            Some(value) => match value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
            {
                Some(ms) => Some(ms),
                None => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        "the Wirecall-Timeout header must be a whole number of milliseconds",
                    )
                }
            },
        };
        // (This session ends with the request: it may keep hyper's header bytes.)
        let origin = Origin {
            remote_addr,
            // The `traceparent` header: the trace of every call without its own (ignored
            // if not valid W3C, never an error).
            #[cfg(feature = "otel")]
            trace_parent: crate::codec::trace::from_headers(&parts.headers),
            headers: parts.headers,
            extensions,
            timeout,
        };
        if events && self.is_subscription(&body) {
            return self.events(body, origin, expires).await;
        }
        let (session, answer) = Session::answering(
            self.config.clone(),
            self.router.clone(),
            HTTP_POST_DOOR,
            origin,
            self.http_peer.clone(),
        );
        // If the client goes away first, its handlers are stopped.
        let _end = EndOnDrop(session.clone());
        let Some(dispatched) = session.handle_frame(&body, &self.close).await else {
            return text(StatusCode::SERVICE_UNAVAILABLE, "server closing");
        };
        // The POST is answered once every handler it started has finished, notifications'
        // too: so they count against this request's in-flight limit, and stop (with the
        // session) when the client goes away.
        let all_done = async {
            let answer = match dispatched.owes_answer {
                true => answer.await.ok(),
                false => None,
            };
            session.idle().await;
            answer
        };
        let answer = tokio::select! {
            _ = self.close.cancelled() => return text(StatusCode::SERVICE_UNAVAILABLE, "server closing"),
            answer = all_done => answer,
        };
        if !dispatched.owes_answer {
            let mut resp = Response::new(ResponseBody::empty());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            return resp;
        }
        match answer {
            Some(frame) => {
                telemetry::http_request();
                telemetry::sent(Via::Http, frame.len());
                let status = if dispatched.parse_error {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::OK
                };
                json(status, frame)
            }
            None => text(StatusCode::SERVICE_UNAVAILABLE, "server closing"),
        }
    }

    /// Is this body one request (with an id) for a stream?
    fn is_subscription(&self, body: &str) -> bool {
        match message::classify_text(body) {
            Ok(Incoming::Request {
                method,
                id: Some(_),
                ..
            }) => matches!(
                self.router.get(&method),
                Some(Route::Subscribe(_) | Route::Topic(_))
            ),
            _ => false,
        }
    }

    /// A stream subscription answered with server-sent events: the answer, each item, then
    /// the end, each as one event whose data is the JSON-RPC message. `expires`: the
    /// identity's time left, after which the response ends with a `$/expired` event.
    async fn events(
        self: &Arc<Self>,
        body: Text,
        origin: Origin,
        expires: Option<Duration>,
    ) -> Resp {
        let (tx, rx) = mpsc::channel(self.config.send_queue);
        let session = Session::new(
            self.config.clone(),
            self.router.clone(),
            HTTP_EVENTS_DOOR,
            origin,
            tx,
            json_rpc(),
        );
        if session.handle_frame(&body, &self.close).await.is_none() {
            return text(StatusCode::SERVICE_UNAVAILABLE, "server closing");
        }
        let hold = (self.tracker.token(), Open::session(Via::Events));
        let events = EventBody::new(session, rx, self.shutdown.clone(), expires, Box::new(hold));
        let mut resp = Response::new(ResponseBody {
            kind: BodyKind::Events(events),
        });
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // Proxies (nginx) must pass events on as they come.
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        resp
    }
}

/// What the handshake hooks made of a request: extensions, the identity's time left, and
/// for a WAMP upgrade that will authenticate with `ticket`, how.
type Admit = (Extensions, Option<Duration>, Option<Ticket>);

/// The response to a refusal, counted by its status.
fn refused(r: Refusal) -> Resp {
    let unauthorized = r.status == StatusCode::UNAUTHORIZED;
    telemetry::handshake_refused(match r.status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        _ => "refused",
    });
    let mut resp = text(r.status, r.reason);
    if unauthorized {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// A request body cut off: `408`, and the connection closes (its request cannot be
/// finished, and another cannot follow it).
#[cold]
fn body_cut(accepted: Option<&Accepted>, why: &str) -> Resp {
    tracing::debug!("cutting off a request body: {why}");
    if let Some(accepted) = accepted {
        accepted.cut.cancel();
    }
    let mut resp = text(
        StatusCode::REQUEST_TIMEOUT,
        format!("the request body did not arrive in time: {why}\n"),
    );
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

#[cold]
pub(super) fn too_many_connections() -> Resp {
    telemetry::handshake_refused("too_many_connections");
    text(StatusCode::SERVICE_UNAVAILABLE, "too many connections")
}

/// A copy of `headers` that owns its bytes. hyper's header values share the connection's
/// read buffer (8 KiB and more); a session keeps its request's headers for its whole life,
/// and must not keep that buffer with them.
pub(super) fn owned(headers: &http::HeaderMap) -> http::HeaderMap {
    let mut out = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let mut copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        copy.set_sensitive(value.is_sensitive());
        out.append(name.clone(), copy);
    }
    out
}

/// Ends a session when the request that owns it is dropped (answered, or abandoned).
struct EndOnDrop(Session);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.0.end(&CloseReason::ClosedByPeer);
    }
}

pub(super) fn remote_addr<B>(req: &Request<B>, from: &Source) -> Option<SocketAddr> {
    from.remote_addr
        .or_else(|| req.extensions().get::<RemoteAddr>().map(|r| r.0))
}
