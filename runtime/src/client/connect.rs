//! Opening a client's link: the WebSocket handshake, or an `http://` target.

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError, UrlError};
use tokio_tungstenite::tungstenite::http::{header, HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::ClientBuilder;
use crate::error::ConnectError;
use crate::transport::http_client::HttpTarget;
use crate::transport::ws::SUBPROTOCOL;

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// What a handshake opens: a WebSocket, or (for `http://`) the place to POST to.
pub(super) enum Link {
    Ws(Box<Ws>),
    Http(HttpTarget),
}

impl ClientBuilder {
    pub(super) async fn handshake(&self, url: &str) -> Result<Link, ConnectError> {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if matches!(scheme.as_deref(), Some("http" | "https")) {
            return self.http_target(url).map(Link::Http);
        }
        let ws = match self.handshake_once(url, self.offer_subprotocol).await {
            // A server that does not negotiate subprotocols at all: connect without one.
            Err(ConnectError::Subprotocol) => self.handshake_once(url, false).await,
            other => other,
        }?;
        Ok(Link::Ws(Box::new(ws)))
    }

    /// An `http://` URL: requests go out as POSTs; there is no connection to open.
    fn http_target(&self, url: &str) -> Result<HttpTarget, ConnectError> {
        let invalid = |reason: String| ConnectError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let uri: http::Uri = url.parse().map_err(|e| invalid(format!("{e}")))?;
        if uri.scheme_str() == Some("https") {
            return Err(invalid("https:// is not supported by this build".into()));
        }
        if uri.host().is_none() {
            return Err(invalid("no host".into()));
        }
        if !self.router.is_empty() {
            return Err(ConnectError::Unsupported {
                url: url.to_string(),
                reason: "this client serves methods the server may call, which needs a \
                         WebSocket (ws://); over http:// nothing can call the client"
                    .into(),
            });
        }
        let mut headers = http::HeaderMap::new();
        for (name, value) in &self.headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|e| invalid(format!("header `{name}`: {e}")))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|e| invalid(format!("header `{name}`: {e}")))?;
            headers.append(name, value);
        }
        Ok(HttpTarget { uri, headers })
    }

    async fn handshake_once(&self, url: &str, offer: bool) -> Result<Ws, ConnectError> {
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
