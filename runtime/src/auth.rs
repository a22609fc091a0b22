//! Authentication: one asynchronous hook on the server
//! ([`crate::server::ServerBuilder::authenticate`]), run for every door before any message is read,
//! that turns a [`Handshake`] into an [`Identity`] or a [`Refusal`]; and the client's side,
//! a token or a function that fetches a fresh one on every (re)connect
//! ([`crate::client::ClientBuilder::token`], [`crate::client::ClientBuilder::token_fn`]).
//!
//! A token arrives as `Authorization: Bearer TOKEN`, or — browsers cannot set headers on a
//! WebSocket — as an offered subprotocol `bearer.BASE64URL(TOKEN)` next to `jsonrpc-2.0`.
//! The server selects `jsonrpc-2.0` and never echoes the token. A WAMP client may instead
//! authenticate the WAMP way, with `ticket`: the hook then runs on its `AUTHENTICATE`, with
//! the ticket as the bearer token ([`Handshake::authid`] says whom it claims to be).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use http::header::{self, HeaderMap};
use http::{Method, StatusCode, Uri};

use crate::session::error::ConnectError;

/// The subprotocol prefix that carries a token over a browser's WebSocket.
pub(crate) const BEARER_PREFIX: &str = "bearer.";

/// What the authentication hook sees of a request: a WebSocket upgrade, a POST, or a POST
/// for server-sent events. Its body is not read yet.
///
/// Its `Debug` output shows the method, path, header names and peer address, never a
/// header's value, the query or the token: logging `?handshake` leaks no credentials.
pub struct Handshake {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    remote_addr: Option<SocketAddr>,
    token: Option<String>,
    authid: Option<String>,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// Header names only: values (`Authorization`, `Cookie`, the `bearer.` subprotocol)
        /// may be credentials.
        struct Names<'a>(&'a HeaderMap);
        impl fmt::Debug for Names<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.0.keys()).finish()
            }
        }
        f.debug_struct("Handshake")
            .field("method", &self.method)
            .field("path", &self.uri.path())
            .field("query", &self.uri.query().map(|_| "<redacted>"))
            .field("headers", &Names(&self.headers))
            .field("remote_addr", &self.remote_addr)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("authid", &self.authid)
            .finish()
    }
}

impl Handshake {
    pub(crate) fn new(
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        remote_addr: Option<SocketAddr>,
    ) -> Self {
        let token = bearer_token(&headers);
        Handshake {
            method,
            uri,
            headers,
            remote_addr,
            token,
            authid: None,
        }
    }

    /// The handshake of a WAMP connection that authenticates with `ticket`: its upgrade
    /// request, with the ticket as the bearer token and the `authid` of its `HELLO`.
    pub(crate) fn with_ticket(mut self, ticket: String, authid: Option<String>) -> Self {
        self.token = Some(ticket);
        self.authid = authid;
        self
    }

    /// `GET` (a WebSocket upgrade) or `POST`.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request's path, e.g. `/rpc`.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The request's query string, if any (without the `?`).
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    /// The request's headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The value of cookie `name`, if the request carries it.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// The client's address, when the server knows it.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// The bearer token: from `Authorization: Bearer TOKEN`, or from an offered WebSocket
    /// subprotocol `bearer.BASE64URL(TOKEN)`.
    pub fn bearer_token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The `authid` a WAMP client gave in its `HELLO` when it authenticates with `ticket`
    /// (whom it claims to be; the ticket is [`bearer_token`](Self::bearer_token)). `None` on
    /// every other door.
    pub fn authid(&self) -> Option<&str> {
        self.authid.as_deref()
    }
}

/// The token of a request: the `Authorization` header first, then the subprotocol form.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<String> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let auth = auth.to_str().ok()?;
        let (scheme, token) = auth.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string());
    }
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(BEARER_PREFIX).map(decode_token))
        .flatten()
}

fn decode_token(encoded: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The subprotocol that carries `token`: `bearer.` and the token in unpadded base64url.
pub fn bearer_subprotocol(token: &str) -> String {
    format!(
        "{BEARER_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token)
    )
}

/// Who a connection or request authenticated as: any value the handlers can read back with
/// [`crate::Context::identity`], and optionally when it expires. When a WebSocket's identity
/// expires the server closes it with code 4401; a client with
/// [`crate::client::ClientBuilder::token_fn`] reconnects with a fresh token.
#[derive(Clone)]
pub struct Identity {
    value: Arc<dyn Any + Send + Sync>,
    expires: Option<SystemTime>,
    authid: Option<Arc<str>>,
    authrole: Option<Arc<str>>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// An identity carrying `value` (a user id, a claims struct…), with no expiry.
    pub fn new<T: Any + Send + Sync>(value: T) -> Self {
        Identity {
            value: Arc::new(value),
            expires: None,
            authid: None,
            authrole: None,
        }
    }

    /// The same identity, named `authid`: what a WAMP client's `WELCOME` reports as its
    /// `authid`. Without it, the value if it is a `String` (`Identity::new(name)`), else the
    /// `authid` the client gave.
    pub fn with_authid(mut self, authid: impl Into<Arc<str>>) -> Self {
        self.authid = Some(authid.into());
        self
    }

    /// The same identity with the role `authrole`: what a WAMP client's `WELCOME` reports
    /// as its `authrole` (`"user"` without it).
    pub fn with_authrole(mut self, authrole: impl Into<Arc<str>>) -> Self {
        self.authrole = Some(authrole.into());
        self
    }

    /// Its name for WAMP's `authid` ([`with_authid`](Self::with_authid)), or its value if
    /// that is a `String`.
    pub fn authid(&self) -> Option<&str> {
        self.authid
            .as_deref()
            .or_else(|| self.get::<String>().map(String::as_str))
    }

    /// Its role for WAMP's `authrole`, if given ([`with_authrole`](Self::with_authrole)).
    pub fn authrole(&self) -> Option<&str> {
        self.authrole.as_deref()
    }

    /// The same identity, valid until `at`.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires = Some(at);
        self
    }

    /// The same identity, valid for `ttl` from now.
    pub fn expires_in(self, ttl: Duration) -> Self {
        self.expires_at(SystemTime::now() + ttl)
    }

    /// When it expires, if it does.
    pub fn expires(&self) -> Option<SystemTime> {
        self.expires
    }

    /// The value, if it is a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.value.downcast_ref()
    }

    /// Time left before it expires, measured now (`None`: it never does).
    pub(crate) fn time_left(&self) -> Option<Duration> {
        self.expires.map(|at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        })
    }
}

/// Why the server refused a connection or request: an HTTP status and a short reason for
/// the body. Over WebSocket the upgrade is refused with that status.
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

    /// 401: no credentials, or ones that are not valid (answered with
    /// `WWW-Authenticate: Bearer`).
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Refusal::new(StatusCode::UNAUTHORIZED, reason)
    }

    /// 403: valid credentials that do not allow this.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Refusal::new(StatusCode::FORBIDDEN, reason)
    }
}

pub(crate) type AuthFuture = Pin<Box<dyn Future<Output = Result<Identity, Refusal>> + Send>>;

/// The server's authentication hook, type-erased.
pub(crate) type Authenticate = dyn Fn(Handshake) -> AuthFuture + Send + Sync;

/// An error of a client's token function.
pub type TokenError = Box<dyn std::error::Error + Send + Sync>;

type TokenFuture = Pin<Box<dyn Future<Output = Result<String, TokenError>> + Send>>;

/// Where a client's token comes from.
#[derive(Clone)]
pub(crate) enum TokenSource {
    Fixed(String),
    Fetch(Arc<dyn Fn() -> TokenFuture + Send + Sync>),
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Fixed(_) => f.write_str("Fixed(…)"),
            TokenSource::Fetch(_) => f.write_str("Fetch(…)"),
        }
    }
}

impl TokenSource {
    pub(crate) fn fetch<F, Fut, E>(f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, E>> + Send + 'static,
        E: Into<TokenError>,
    {
        TokenSource::Fetch(Arc::new(move || {
            let fut = f();
            Box::pin(async move { fut.await.map_err(Into::into) })
        }))
    }

    /// The token for the next handshake.
    pub(crate) async fn get(&self) -> Result<String, TokenError> {
        match self {
            TokenSource::Fixed(t) => Ok(t.clone()),
            TokenSource::Fetch(f) => f().await,
        }
    }

    /// `Authorization: Bearer TOKEN`'s value for the next handshake or request.
    pub(crate) async fn bearer(&self) -> Result<http::HeaderValue, ConnectError> {
        let token = self.get().await.map_err(|e| ConnectError::Token {
            reason: e.to_string(),
        })?;
        let mut value = http::HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
            ConnectError::Token {
                reason: "the token is not a valid header value".into(),
            }
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn handshake(headers: &[(&str, &str)]) -> Handshake {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        Handshake::new(Method::GET, "/rpc?x=1".parse().unwrap(), map, None)
    }

    #[test]
    fn tokens_come_from_the_header_or_the_subprotocol() {
        assert_eq!(
            handshake(&[("authorization", "Bearer abc.def")]).bearer_token(),
            Some("abc.def")
        );
        assert_eq!(
            handshake(&[("authorization", "bearer  x ")]).bearer_token(),
            Some("x")
        );
        assert_eq!(
            handshake(&[("authorization", "Basic dXNlcjpwdw==")]).bearer_token(),
            None
        );
        let offered = format!("jsonrpc-2.0, {}", bearer_subprotocol("s3cret/+?"));
        assert_eq!(
            handshake(&[("sec-websocket-protocol", &offered)]).bearer_token(),
            Some("s3cret/+?")
        );
        assert_eq!(
            handshake(&[("sec-websocket-protocol", "jsonrpc-2.0, bearer.%%%")]).bearer_token(),
            None
        );
        assert_eq!(handshake(&[]).bearer_token(), None);
    }

    #[test]
    fn debug_output_leaks_no_credentials() {
        let offered = format!("jsonrpc-2.0, {}", bearer_subprotocol("sub-s3cret"));
        let h = Handshake::new(
            Method::GET,
            "/rpc?api_key=q-s3cret".parse().unwrap(),
            {
                let mut map = HeaderMap::new();
                map.insert("authorization", HeaderValue::from_static("Bearer h-s3cret"));
                map.insert("cookie", HeaderValue::from_static("session=c-s3cret"));
                map.insert(
                    "sec-websocket-protocol",
                    HeaderValue::from_str(&offered).unwrap(),
                );
                map
            },
            None,
        );
        let printed = format!("{h:?} {h:#?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(
            !printed.contains(&bearer_subprotocol("sub-s3cret")),
            "{printed}"
        );
        assert!(
            printed.contains("authorization") && printed.contains("/rpc"),
            "{printed}"
        );
    }

    #[test]
    fn the_hook_sees_path_query_and_cookies() {
        let h = handshake(&[("cookie", "a=1; session=xyz; b=2")]);
        assert_eq!(h.path(), "/rpc");
        assert_eq!(h.query(), Some("x=1"));
        assert_eq!(h.cookie("session"), Some("xyz"));
        assert_eq!(h.cookie("none"), None);
    }

    #[test]
    fn identities_hold_any_value_and_an_expiry() {
        let id = Identity::new(42u32).expires_in(Duration::from_secs(60));
        assert_eq!(id.get::<u32>(), Some(&42));
        assert_eq!(id.get::<String>(), None);
        assert!(id.time_left().unwrap() > Duration::from_secs(50));
        let past = Identity::new(()).expires_at(SystemTime::now() - Duration::from_secs(1));
        assert_eq!(past.time_left(), Some(Duration::ZERO));
    }
}
