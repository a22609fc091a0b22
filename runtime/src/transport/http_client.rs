// Over ~500 lines: one door — the POST connection pool, server-sent event streams and
// fail-over between URLs — that shares one session and its connection state.
//! The client's HTTP door: a client made with an `http://` URL sends each request as one
//! POST (keep-alive connections, pooled) and feeds the answer back into its session, so
//! [`crate::Client`] and the generated clients work unchanged. A stream subscription's POST
//! asks for server-sent events; its events carry the answer and the items; unsubscribing
//! closes that response. Nothing can call this client back.
//!
//! When the client reconnects (the default), a POST that cannot reach the server ends this
//! "connection": the client then reconnects with backoff, to the next URL of
//! [`crate::client::ClientBuilder::connect_any`], and the calls go on as over a WebSocket (a call
//! that never left is sent again, an idempotent one that went out is re-sent). An event
//! stream that ends without the stream's end ends its subscription as a disconnection, so
//! it subscribes again (a topic with `$since`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::AbortHandle;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ws::Started;
use crate::codec::message::{classify_text, Incoming};
use crate::codec::text::Text;
use crate::config::ConnectionConfig;
use crate::session::error::{ConnectError, Error};
use crate::session::outbound::{json_rpc, DoorCaps, Frame};
use crate::session::peer::{CallFailure, CANCEL_METHOD};
use crate::session::router::Router;
use crate::session::subscription::End;
use crate::session::{CloseReason, Origin, Session};
use crate::transport::event_reader::EventReader;
use crate::transport::sse::EXPIRED_METHOD;

/// A client calling over HTTP: its calls go out as POSTs; nothing calls it.
const HTTP_CLIENT_DOOR: DoorCaps = DoorCaps {
    no_peer_calls: None,
    streams: true,
    ends_with_stream: false,
    process_unique_sub_ids: false,
    via: crate::telemetry::Via::HttpClient,
    door: crate::session::policy::Door::Http,
};

/// Where an HTTP client sends its requests.
#[derive(Clone, Debug)]
pub(crate) struct HttpTarget {
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    /// For `https://`.
    pub(crate) tls: Arc<rustls::ClientConfig>,
    /// The client's token function: a POST refused with 401 is sent once more with a
    /// fresh token.
    pub(crate) refresh: Option<crate::auth::TokenSource>,
    /// How long a token fetch may take (the client's handshake timeout).
    pub(crate) token_timeout: Duration,
}

type Connector = HttpsConnector<HttpConnector>;
type Pool = HttpClient<Connector, Full<Bytes>>;

fn connector(tls: Arc<rustls::ClientConfig>) -> Connector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    // hyper-rustls sets ALPN itself (to http/1.1).
    let mut tls = Arc::unwrap_or_clone(tls);
    tls.alpn_protocols.clear();
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

/// Why an `https://` target could not be reached at connect time.
pub(crate) enum TlsCheck {
    Tls(String),
    Io(String),
}

impl TlsCheck {
    pub(crate) fn into_error(self, url: &str) -> ConnectError {
        match self {
            TlsCheck::Tls(reason) => ConnectError::Tls {
                url: url.to_string(),
                reason,
            },
            TlsCheck::Io(reason) => ConnectError::Unreachable {
                url: url.to_string(),
                reason,
            },
        }
    }
}

/// Open one connection to `uri` (and drop it): is the server there, and over TLS, does
/// its certificate verify?
pub(crate) async fn check_tls(uri: &Uri, tls: Arc<rustls::ClientConfig>) -> Result<(), TlsCheck> {
    let mut connector = connector(tls);
    match tower_service::Service::call(&mut connector, uri.clone()).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&*e);
            while let Some(cause) = next {
                if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
                    return Err(TlsCheck::Tls(crate::tls::explain(tls)));
                }
                if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                    if let Some(tls) = crate::tls::tls_failure(io) {
                        return Err(TlsCheck::Tls(crate::tls::explain(tls)));
                    }
                }
                next = cause.source();
            }
            Err(TlsCheck::Io(source_chain(&*e)))
        }
    }
}

/// Requests on their way, to stop on `$/cancelRequest` or unsubscribe.
#[derive(Default)]
struct InFlight {
    /// POSTs awaiting their answer, by request id.
    calls: HashMap<u64, AbortHandle>,
    /// Event streams, by subscription id (as JSON text).
    streams: HashMap<Box<str>, AbortHandle>,
}

struct Shared {
    target: HttpTarget,
    /// The current `Authorization` value, replaced when a refresh gets a new token.
    bearer: Mutex<Option<HeaderValue>>,
    /// Held while a token is fetched after a 401: the other POSTs refused meanwhile wait
    /// for that token instead of fetching one each.
    refreshing: tokio::sync::Mutex<()>,
    /// Cancelled when a POST could not reach the server and the client reconnects: this
    /// "connection" ends, with the reason in `broken_reason`.
    broken: Option<CancellationToken>,
    broken_reason: Mutex<Option<String>>,
    pool: Pool,
    session: Session,
    limit: usize,
    in_flight: Mutex<InFlight>,
}

impl Shared {
    fn in_flight(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Start an HTTP client "connection": it lasts until `close` is cancelled, or (with
/// `fail_over`, when the client reconnects) until a POST cannot reach the server.
pub(crate) fn spawn(
    target: HttpTarget,
    config: Arc<ConnectionConfig>,
    close: CancellationToken,
    fail_over: bool,
) -> Started {
    let (tx, mut rx) = mpsc::channel(config.send_queue);
    let limit = config.max_message_size;
    let session = Session::new(
        config,
        Router::new(),
        HTTP_CLIENT_DOOR,
        Origin::default(),
        tx,
        json_rpc(),
    );
    let peer = session.peer().clone();
    let pool = HttpClient::builder(TokioExecutor::new()).build(connector(target.tls.clone()));
    let shared = Arc::new(Shared {
        target,
        bearer: Mutex::new(None),
        refreshing: tokio::sync::Mutex::new(()),
        broken: fail_over.then(CancellationToken::new),
        broken_reason: Mutex::new(None),
        pool,
        session,
        limit,
        in_flight: Mutex::new(InFlight::default()),
    });
    let broken = shared.broken.clone().unwrap_or_default();
    let done = tokio::spawn(async move {
        let reason = loop {
            let msg = tokio::select! {
                _ = close.cancelled() => break CloseReason::ClosedLocally,
                _ = broken.cancelled() => {
                    let why = shared.broken_reason.lock().unwrap_or_else(|e| e.into_inner()).take();
                    break CloseReason::Error(why.unwrap_or_else(|| "the server could not be reached".into()));
                }
                msg = rx.recv() => msg,
            };
            match msg {
                Some(Frame::Text(frame)) => dispatch(&shared, frame),
                Some(_) => {}
                None => break CloseReason::ClosedLocally,
            }
        };
        shared.session.end(&reason);
        let stop: Vec<AbortHandle> = {
            let in_flight = std::mem::take(&mut *shared.in_flight());
            let calls = in_flight.calls.into_values();
            calls.chain(in_flight.streams.into_values()).collect()
        };
        for abort in stop {
            abort.abort();
        }
        reason
    });
    Started { peer, done }
}

/// One outgoing frame: a request or notification to POST, or a cancellation or
/// unsubscription to carry out here.
fn dispatch(shared: &Arc<Shared>, frame: String) {
    let classified = classify_text(&frame);
    // The request's `"$traceparent"` goes in the POST's `traceparent` header too (feature
    // `otel`), for proxies and servers that read only the header.
    #[cfg(feature = "otel")]
    let trace = match &classified {
        Ok(Incoming::Request {
            traceparent: Some(traceparent),
            ..
        }) => HeaderValue::from_str(traceparent).ok(),
        _ => None,
    };
    #[cfg(not(feature = "otel"))]
    let trace = None;
    let (ids, local) = match classified {
        Ok(Incoming::Request {
            method, params, id, ..
        }) => {
            if method == CANCEL_METHOD {
                cancel(shared, params);
                return;
            }
            let id = id.and_then(|i| i.get().parse::<u64>().ok());
            if let Some(sub) = method.strip_suffix(".unsubscribe").and(params) {
                if unsubscribe(shared, sub) {
                    // Answered here: the stream's response is closed, which stops it.
                    (id.into_iter().collect::<Vec<_>>(), true)
                } else {
                    (id.into_iter().collect(), false)
                }
            } else {
                (id.into_iter().collect(), false)
            }
        }
        _ => (Vec::new(), false),
    };
    if local {
        let session = shared.session.clone();
        tokio::spawn(async move {
            for id in ids {
                let answer = format!(r#"{{"jsonrpc":"2.0","result":true,"id":{id}}}"#);
                feed(&session, answer.into()).await;
            }
        });
        return;
    }
    let (abort, registration) = AbortHandle::new_pair();
    let id = ids.first().copied();
    if let Some(id) = id {
        shared.in_flight().calls.insert(id, abort.clone());
    }
    let task = {
        let shared = shared.clone();
        async move {
            let result = post(&shared, frame, abort, id, trace).await;
            // (Only `transport_failure` gives these.)
            let unreachable = matches!(
                result,
                Err(CallFailure::NotSent(_) | CallFailure::Other(Error::Disconnected(_)))
            );
            if let Err(failure) = result {
                if let Some(id) = id {
                    shared.session.peer().fail(id, failure);
                }
            }
            // The server could not be reached: end this connection (after failing the
            // call, so that it keeps its own failure).
            if let (true, Some(broken)) = (unreachable, &shared.broken) {
                broken.cancel();
            }
            if let Some(id) = id {
                shared.in_flight().calls.remove(&id);
            }
        }
    };
    tokio::spawn(futures_util::future::Abortable::new(task, registration));
}

/// `$/cancelRequest {"id": N}`: drop that POST. Its connection closes, and the server
/// stops the handler.
fn cancel(shared: &Shared, params: Option<&RawValue>) {
    #[derive(serde::Deserialize)]
    struct CancelParams {
        id: u64,
    }
    let Some(p) = params.and_then(|p| serde_json::from_str::<CancelParams>(p.get()).ok()) else {
        return;
    };
    if let Some(abort) = shared.in_flight().calls.remove(&p.id) {
        abort.abort();
    }
}

/// `M.unsubscribe [ID]`: close that stream's response. `false` if it is not open.
fn unsubscribe(shared: &Shared, params: &RawValue) -> bool {
    let Ok((id,)) = serde_json::from_str::<(&RawValue,)>(params.get()) else {
        return false;
    };
    match shared.in_flight().streams.remove(id.get()) {
        Some(abort) => {
            abort.abort();
            true
        }
        None => false,
    }
}

/// Hand a frame from the server to the session (answers go to their pending calls,
/// stream items to their subscriptions), in the order they came.
async fn feed(session: &Session, frame: Text) {
    // A client's HTTP session runs no handlers, so nothing here waits for room.
    let _ = session
        .handle_frame(&frame, &CancellationToken::new())
        .await;
}

/// POST `body` with the target's headers and the current token (`bearer`, when a refresh
/// replaced the first one).
async fn send(
    shared: &Shared,
    body: Bytes,
    bearer: Option<HeaderValue>,
    traceparent: Option<&HeaderValue>,
) -> Result<http::Response<hyper::body::Incoming>, CallFailure> {
    let mut req = Request::post(shared.target.uri.clone())
        .body(Full::new(body))
        .map_err(|e| CallFailure::Other(http_error(None, e.to_string())))?;
    let headers = req.headers_mut();
    headers.extend(shared.target.headers.clone());
    if let Some(bearer) = bearer {
        headers.insert(header::AUTHORIZATION, bearer);
    }
    if let Some(traceparent) = traceparent {
        headers.insert("traceparent", traceparent.clone());
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    match shared.pool.request(req).await {
        Ok(resp) => Ok(resp),
        Err(e) => {
            let message = format!("{}: {}", shared.target.uri, source_chain(&e));
            Err(transport_failure(shared, e.is_connect(), message))
        }
    }
}

/// A POST that got no answer at all. Without reconnects: `Error::Http` for that call.
/// With them, this "connection" ends (its task cancels `broken` once it has failed its
/// call) so that the client reconnects (to the next URL); the
/// call was never sent if the connection could not even be opened (it will be sent on the
/// next one), else it is disconnected (sent again only if idempotent).
#[cold]
fn transport_failure(shared: &Shared, not_sent: bool, message: String) -> CallFailure {
    if shared.broken.is_none() {
        return CallFailure::Other(http_error(None, message));
    }
    tracing::debug!("POST failed, reconnecting: {message}");
    shared
        .broken_reason
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(|| message.clone());
    let reason = CloseReason::Error(message);
    if not_sent {
        CallFailure::NotSent(reason)
    } else {
        CallFailure::Other(Error::Disconnected(reason))
    }
}

/// The `Authorization` value to send now, if a refresh replaced the first one.
fn current_bearer(shared: &Shared) -> Option<HeaderValue> {
    shared
        .bearer
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// After a 401 on a POST sent with `used`: fetch a fresh token, once for all the POSTs
/// refused at the same time, within the token timeout. A failed fetch is the call's error.
async fn refresh_token(
    shared: &Shared,
    source: &crate::auth::TokenSource,
    used: Option<HeaderValue>,
) -> Result<Option<HeaderValue>, Error> {
    let _one_at_a_time = shared.refreshing.lock().await;
    let now = current_bearer(shared);
    if now != used {
        // Another POST refreshed it meanwhile.
        return Ok(now);
    }
    let fetched = tokio::time::timeout(shared.target.token_timeout, source.bearer()).await;
    let bearer = match fetched {
        Ok(Ok(bearer)) => bearer,
        Ok(Err(e)) => {
            return Err(http_error(
                Some(StatusCode::UNAUTHORIZED),
                format!("401 Unauthorized, and fetching a fresh token failed: {e}"),
            ))
        }
        Err(_) => {
            return Err(http_error(
                Some(StatusCode::UNAUTHORIZED),
                format!(
                    "401 Unauthorized, and fetching a fresh token took over {:?}",
                    shared.target.token_timeout
                ),
            ))
        }
    };
    *shared.bearer.lock().unwrap_or_else(|e| e.into_inner()) = Some(bearer.clone());
    Ok(Some(bearer))
}

async fn post(
    shared: &Shared,
    frame: String,
    abort: AbortHandle,
    id: Option<u64>,
    traceparent: Option<HeaderValue>,
) -> Result<(), CallFailure> {
    let body = Bytes::from(frame);
    let used = current_bearer(shared);
    let traceparent = traceparent.as_ref();
    let mut resp = send(shared, body.clone(), used.clone(), traceparent).await?;
    if resp.status() == StatusCode::UNAUTHORIZED {
        // The token expired or was revoked: one more try with a fresh one.
        if let Some(source) = &shared.target.refresh {
            let bearer = refresh_token(shared, source, used)
                .await
                .map_err(CallFailure::Other)?;
            resp = send(shared, body, bearer, traceparent).await?;
        }
    }
    let status = resp.status();
    let events = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status == StatusCode::NO_CONTENT {
        return Ok(());
    }
    if events && status == StatusCode::OK {
        return read_events(shared, resp.into_body(), abort, id).await;
    }
    let body = Limited::new(resp.into_body(), shared.limit)
        .collect()
        .await
        .map_err(|e| {
            CallFailure::Other(http_error(Some(status), format!("reading the answer: {e}")))
        })?
        .to_bytes();
    // 200, and 400/413 with a JSON-RPC error: the answer goes to its call.
    if json {
        if let Ok(text) = Text::try_from(body.clone()) {
            if text.trim_start().starts_with(['{', '[']) {
                feed(&shared.session, text).await;
                return Ok(());
            }
        }
    }
    let text = String::from_utf8_lossy(&body).trim().to_string();
    Err(CallFailure::Other(http_error(
        Some(status),
        format!(
            "{status}{}",
            if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            }
        ),
    )))
}

/// The events of a stream's response, each a frame from the server. The first answers
/// the subscribe call `id`; if the response ends before it does, the call fails; if it ends
/// after it without the stream's end, the subscription ends as disconnected (so that a
/// reconnecting client subscribes again).
async fn read_events(
    shared: &Shared,
    mut body: hyper::body::Incoming,
    abort: AbortHandle,
    id: Option<u64>,
) -> Result<(), CallFailure> {
    let mut reader = EventReader::new(shared.limit);
    let mut sub_id: Option<Box<str>> = None;
    let mut answered = false;
    let mut events = Vec::new();
    let mut expired = false;
    let ended = 'read: loop {
        let chunk = match body.frame().await {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue, // trailers
            },
            Some(Err(e)) => break format!("the event stream failed: {e}"),
            None => break "the server ended the event stream".to_string(),
        };
        if let Err(e) = reader.push(&chunk, &mut events) {
            break e.to_string();
        }
        for data in events.drain(..) {
            let Ok(frame) = Text::try_from(data) else {
                tracing::debug!("an event that is not UTF-8, ignored");
                continue;
            };
            // The identity expired: the server ends the response, the subscription is
            // made again (with a fresh token, a topic with `$since`).
            if matches!(
                classify_text(&frame),
                Ok(Incoming::Request { ref method, id: None, .. }) if method == EXPIRED_METHOD
            ) {
                expired = true;
                break 'read "the authentication expired".to_string();
            }
            if !answered {
                // The first event answers the subscribe call with the subscription id.
                if let Ok(Incoming::Response { outcome, .. }) = classify_text(&frame) {
                    answered = true;
                    if let Ok(id) = outcome {
                        let id: Box<str> = id.get().into();
                        shared.in_flight().streams.insert(id.clone(), abort.clone());
                        sub_id = Some(id);
                    }
                }
            }
            feed(&shared.session, frame).await;
        }
    };
    tracing::debug!("event stream over: {ended}");
    if let Some(sub) = sub_id {
        shared.in_flight().streams.remove(&sub);
        // Still active (no end came): the stream was cut, not finished.
        shared.session.peer().subscriptions().end(
            &sub,
            End::Disconnected(match expired {
                true => CloseReason::Expired,
                false => CloseReason::Error(ended),
            }),
        );
        return Ok(());
    }
    if !answered && id.is_some() {
        return Err(CallFailure::Other(http_error(
            Some(StatusCode::OK),
            format!("{ended} before answering the call"),
        )));
    }
    Ok(())
}

#[cold]
fn http_error(status: Option<StatusCode>, message: String) -> Error {
    Error::Http {
        status: status.map(|s| s.as_u16()),
        message,
    }
}

/// An error with its causes ("client error (Connect): tcp connect error: refused").
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}
