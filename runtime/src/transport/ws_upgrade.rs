//! The WebSocket upgrade of the server's endpoint: a `GET` with `Upgrade: websocket`
//! checked (key, version, subprotocol: `jsonrpc-2.0`, or WAMP's `wamp.2.json`, `wamp.2.msgpack`, `wamp.2.cbor`), admitted (the
//! connection count, the handshake hooks), answered with 101, then the upgraded connection
//! handed to the WebSocket session ([`super::ws`]). Next to the WebSocket code rather than
//! in `http.rs`, which routes requests and serves the POST and server-sent-event doors.

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::deadline::{CountingIo, MessageWatch};
use super::http::{
    owned, remote_addr, text, too_many_connections, Endpoint, Resp, ResponseBody, Slot, Source,
};
use super::wamp::{is_other_wamp, negotiate, WampSetup};
use super::ws::{self, Setup, SUBPROTOCOL};
use crate::session::Origin;
use crate::telemetry::{Open, Via};

impl Endpoint {
    /// `GET` with `Upgrade: websocket`: answer 101 and run the WebSocket session once hyper
    /// hands over the connection.
    pub(super) async fn upgrade<B>(self: &Arc<Self>, mut req: Request<B>, from: Source) -> Resp {
        let headers = req.headers();
        let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
            return text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
        };
        if headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|v| v.as_bytes() != b"13")
        {
            let mut resp = text(StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only");
            resp.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            return resp;
        }
        let accept = derive_accept_key(key.as_bytes());
        let remote = remote_addr(&req, &from);
        // The connection count: the TCP connection's (own listener), or a slot of its own.
        let slot = match &from.accepted {
            Some(accepted) => {
                let (slot, within) = accepted.slot(self);
                if !within {
                    return too_many_connections();
                }
                slot
            }
            None => {
                let (slot, within) = Slot::take(self);
                if !within {
                    return too_many_connections();
                }
                Arc::new(slot)
            }
        };
        let mut subprotocol = None;
        let mut wamp = None;
        if let Some(offered) = headers.get(header::SEC_WEBSOCKET_PROTOCOL) {
            let offered: Vec<&str> = offered
                .to_str()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .collect();
            if offered.contains(&SUBPROTOCOL) {
                subprotocol = Some(HeaderValue::from_static(SUBPROTOCOL));
            } else if let Some(serializer) = negotiate(offered.iter().copied()) {
                // The first WAMP serializer the client offers that this server speaks.
                subprotocol = Some(HeaderValue::from_static(serializer.subprotocol()));
                wamp = Some(serializer);
            } else if offered.iter().any(|p| is_other_wamp(p)) {
                return text(
                    StatusCode::BAD_REQUEST,
                    "unsupported WAMP serializer: this server speaks wamp.2.json, wamp.2.msgpack and wamp.2.cbor (and jsonrpc-2.0)",
                );
            } else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "unsupported subprotocol: this server speaks jsonrpc-2.0 (and wamp.2.json)",
                );
            }
        }
        let head = self.head(&req);
        // A WAMP client without a bearer token may authenticate with `ticket` after the
        // upgrade (within the handshake timeout).
        let ticket = wamp.is_some() && crate::auth::bearer_token(req.headers()).is_none();
        let (extensions, expires, ticket) = match self.admit(head, remote, ticket).await {
            Ok(admitted) => admitted,
            Err(refused) => return *refused,
        };
        let expires = match ticket {
            Some(_) => Some(self.handshake_timeout),
            None => expires,
        };
        // Until it authenticates, such a session is pending at the gate like a handshake
        // (the oldest dropped at the cap), so sessions that never authenticate cannot hold
        // the connection slots real clients need.
        let waiting = ticket
            .as_ref()
            .and(from.accepted.as_ref())
            .map(|a| a.pass.unauthenticated());
        let origin = Origin {
            remote_addr: remote,
            headers: owned(req.headers()),
            extensions,
            timeout: None,
            // (A connection's calls each carry their own `"$traceparent"`.)
            #[cfg(feature = "otel")]
            trace_parent: None,
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let endpoint = self.clone();
        let token = self.tracker.token();
        tokio::spawn(async move {
            let upgraded = tokio::select! {
                _ = endpoint.close.cancelled() => return,
                upgraded = on_upgrade => match upgraded {
                    Ok(upgraded) => upgraded,
                    Err(e) => {
                        tracing::debug!("upgrade failed: {e}");
                        return;
                    }
                },
            };
            let (messages, read) = MessageWatch::new(endpoint.reads);
            let setup = Setup {
                config: endpoint.config.clone(),
                router: endpoint.router.clone(),
                origin,
                shutdown: endpoint.shutdown.clone(),
                close: endpoint.close.clone(),
                hold: Some(Box::new((
                    slot,
                    token,
                    from.accepted.map(|a| a.pass.clone()),
                    Open::session(Via::WebSocket),
                ))),
                expires,
                wamp: wamp.map(|serializer| WampSetup {
                    realm: endpoint.wamp_realm.clone(),
                    hub: endpoint.hub.clone(),
                    serializer,
                    waiting,
                    ticket,
                }),
                messages: Some(messages),
            };
            // The server's own listener: the TCP (or TLS) stream itself, without hyper's
            // wrapper in between.
            type Tls = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
            // (Counting what is read, for the deadline of a message in progress.)
            let upgraded = match upgraded.downcast::<TokioIo<tokio::net::TcpStream>>() {
                Ok(parts) => {
                    let io = CountingIo::new(parts.io.into_inner(), read);
                    return run_ws(io, &parts.read_buf, setup).await;
                }
                Err(upgraded) => upgraded,
            };
            match upgraded.downcast::<TokioIo<Tls>>() {
                Ok(parts) => {
                    let io = CountingIo::new(parts.io.into_inner(), read);
                    run_ws(io, &parts.read_buf, setup).await
                }
                // Any other connection (e.g. an application's server): through hyper's type.
                Err(upgraded) => {
                    let io = CountingIo::new(TokioIo::new(upgraded), read);
                    run_ws(io, &[], setup).await
                }
            }
        });
        let mut resp = Response::new(ResponseBody::empty());
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = resp.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(p) = subprotocol {
            h.insert(header::SEC_WEBSOCKET_PROTOCOL, p);
        }
        resp
    }
}

/// Run a WebSocket session on an upgraded connection; `read` is what hyper had read past
/// the request.
async fn run_ws<S>(io: S, read: &[u8], setup: Setup)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let config = Some(setup.config.websocket());
    let ws = WebSocketStream::from_partially_read(io, read.to_vec(), Role::Server, config).await;
    ws::spawn(ws, setup);
}
