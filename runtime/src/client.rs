//! The client: connects to a server, calls its methods, and serves the methods the server
//! may call back (`client { … }` in the IDL).

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError, UrlError};
use tokio_tungstenite::tungstenite::http::{header, HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_util::sync::CancellationToken;

use crate::config::{self, ConnectionConfig};
use crate::connection::{self, CloseReason, Setup};
use crate::error::{ApplicationError, ConnectError, Error};
use crate::peer::Peer;
use crate::router::Router;
use crate::server::SUBPROTOCOL;

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
}

impl Default for ClientBuilder {
    fn default() -> Self {
        let config = ConnectionConfig {
            // The server pings; a client that also pings finds dead servers sooner.
            ping_interval: Some(config::DEFAULT_PING_INTERVAL),
            ..ConnectionConfig::default()
        };
        ClientBuilder {
            config,
            handshake_timeout: config::DEFAULT_HANDSHAKE_TIMEOUT,
            router: Router::new(),
            headers: Vec::new(),
            offer_subprotocol: true,
        }
    }
}

impl ClientBuilder {
    /// Default timeout of every call (default 30 s); a call can set its own.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.config.call_timeout = timeout;
        self
    }

    /// Time allowed for TCP connect plus the WebSocket handshake (default 10 s).
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
    /// after `max_missed` unanswered pings (default 2). `None` turns it off.
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

    /// The methods the server may call on this client (server→client calls).
    pub fn router(mut self, router: Router) -> Self {
        self.router = router;
        self
    }

    /// Add an HTTP header to the handshake request (e.g. `Authorization`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Whether to offer the `jsonrpc-2.0` subprotocol (default `true`). A server that
    /// ignores the offer is still accepted.
    pub fn offer_subprotocol(mut self, offer: bool) -> Self {
        self.offer_subprotocol = offer;
        self
    }

    /// Per-connection settings in one go (advanced: buffer sizes, queue length).
    pub fn connection_config(mut self, config: ConnectionConfig) -> Self {
        self.config = config;
        self
    }

    /// Connect to a `ws://` URL.
    pub async fn connect(self, url: &str) -> Result<Client, ConnectError> {
        let ws = match self.handshake(url, self.offer_subprotocol).await {
            // A server that does not negotiate subprotocols at all: connect without one.
            Err(ConnectError::Subprotocol) => self.handshake(url, false).await?,
            other => other?,
        };
        let close = CancellationToken::new();
        let started = connection::spawn(
            ws,
            Setup {
                config: std::sync::Arc::new(self.config),
                router: self.router,
                remote_addr: None,
                headers: Default::default(),
                extensions: Default::default(),
                shutdown: CancellationToken::new(),
                close: close.clone(),
            },
        );
        Ok(Client {
            peer: started.peer,
            close,
            done: futures_util::FutureExt::shared(Box::pin(async move {
                started
                    .done
                    .await
                    .unwrap_or_else(|e| CloseReason::Error(e.to_string()))
            })
                as std::pin::Pin<Box<dyn std::future::Future<Output = CloseReason> + Send>>),
        })
    }

    async fn handshake(
        &self,
        url: &str,
        offer: bool,
    ) -> Result<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        ConnectError,
    > {
        let invalid = |reason: String| ConnectError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let mut request = url
            .into_client_request()
            .map_err(|e| invalid(e.to_string()))?;
        if offer {
            request.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(SUBPROTOCOL),
            );
        }
        for (name, value) in &self.headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|e| invalid(format!("header `{name}`: {e}")))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|e| invalid(format!("header `{name}`: {e}")))?;
            request.headers_mut().append(name, value);
        }
        let connect = tokio_tungstenite::connect_async_with_config(
            request,
            Some(self.config.websocket()),
            true,
        );
        match tokio::time::timeout(self.handshake_timeout, connect).await {
            Err(_) => Err(ConnectError::Timeout {
                url: url.to_string(),
                timeout: self.handshake_timeout,
            }),
            Ok(Ok((ws, _response))) => Ok(ws),
            Ok(Err(e)) => Err(match e {
                WsError::Http(resp) => ConnectError::Refused {
                    status: resp.status().as_u16(),
                    body: resp
                        .body()
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default(),
                },
                WsError::Url(e) => invalid(url_reason(&e)),
                WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(
                    SubProtocolError::NoSubProtocol,
                )) => ConnectError::Subprotocol,
                e => ConnectError::Io {
                    url: url.to_string(),
                    source: e,
                },
            }),
        }
    }
}

fn url_reason(e: &UrlError) -> String {
    match e {
        UrlError::TlsFeatureNotEnabled => "wss:// is not supported by this build".to_string(),
        other => other.to_string(),
    }
}

/// A connection to a server: call its methods with [`Client::call`], send notifications
/// with [`Client::notify`]. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Client {
    peer: Peer,
    close: CancellationToken,
    done: futures_util::future::Shared<
        std::pin::Pin<Box<dyn std::future::Future<Output = CloseReason> + Send>>,
    >,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connect to a `ws://` URL with the default settings.
    pub async fn connect(url: &str) -> Result<Client, ConnectError> {
        ClientBuilder::default().connect(url).await
    }

    /// A builder for a client with other settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Call `method` with `params` (serializing to a JSON object or array, or `()` for
    /// none) and decode the result as `R`. Dropping the future cancels the call.
    pub async fn call<R: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
    ) -> Result<R, Error> {
        self.peer.call(method, params).await
    }

    /// [`Client::call`] with a timeout for this call only.
    pub async fn call_with_timeout<R: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
        timeout: Duration,
    ) -> Result<R, Error> {
        self.peer.call_with_timeout(method, params, timeout).await
    }

    /// The general form of a call, used by generated clients; see [`Peer::request`].
    pub async fn request<R, E>(
        &self,
        method: &str,
        params: &(impl Serialize + ?Sized),
        timeout: Option<Duration>,
    ) -> Result<R, Error<E>>
    where
        R: DeserializeOwned,
        E: ApplicationError,
    {
        self.peer.request(method, params, timeout).await
    }

    /// Subscribe to the stream `method`; see [`Peer::subscribe`].
    pub async fn subscribe<T: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
    ) -> Result<crate::Subscription<T>, Error> {
        self.peer.subscribe(method, params).await
    }

    /// Send a notification (never answered).
    pub async fn notify(&self, method: &str, params: impl Serialize) -> Result<(), Error> {
        self.peer.notify(method, params).await
    }

    /// The underlying connection handle.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// `true` once the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.peer.is_closed()
    }

    /// Close the connection (code 1000); pending calls fail with `Disconnected`.
    /// Returns once it is closed.
    pub async fn close(&self) -> CloseReason {
        self.close.cancel();
        self.done.clone().await
    }

    /// Completes when the connection closes, with the reason.
    pub async fn closed(&self) -> CloseReason {
        self.done.clone().await
    }
}
