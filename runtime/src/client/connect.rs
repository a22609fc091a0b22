//! Opening a client's link: the WebSocket handshake, or an `http://` target.

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError};
use tokio_tungstenite::tungstenite::http::{header, HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::ClientBuilder;
use crate::auth::TokenSource;
use crate::session::error::ConnectError;
use crate::tls;
use crate::transport::http_client::{self, HttpTarget};
use crate::transport::ws::SUBPROTOCOL;

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// What a handshake opens: a WebSocket, or (for `http://`) the place to POST to.
pub(super) enum Link {
    Ws(Box<Ws>),
    Http(Box<HttpTarget>),
}

impl ClientBuilder {
    /// Open a link to `url`, all of it (the token fetch included) within the handshake
    /// timeout.
    pub(super) async fn handshake(&self, url: &str) -> Result<Link, ConnectError> {
        match tokio::time::timeout(self.handshake_timeout, self.handshake_untimed(url)).await {
            Ok(link) => link,
            Err(_) => Err(ConnectError::Timeout {
                url: url.to_string(),
                timeout: self.handshake_timeout,
            }),
        }
    }

    async fn handshake_untimed(&self, url: &str) -> Result<Link, ConnectError> {
        // One token for the attempt (fetched once, even if the handshake is made twice).
        let bearer = self.bearer().await?;
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if matches!(scheme.as_deref(), Some("http" | "https")) {
            let target = self.http_target(url, bearer).await?;
            return Ok(Link::Http(Box::new(target)));
        }
        let ws = match self
            .handshake_once(url, self.offer_subprotocol, bearer.as_ref())
            .await
        {
            // A server that does not negotiate subprotocols at all: connect without one.
            Err(ConnectError::Subprotocol) => {
                self.handshake_once(url, false, bearer.as_ref()).await
            }
            other => other,
        }?;
        Ok(Link::Ws(Box::new(ws)))
    }

    /// An `http://` or `https://` URL: requests go out as POSTs; there is no connection to
    /// keep, but one is opened (and dropped) to check that the server is there — and over
    /// TLS that its certificate verifies — so that a server that is down fails the connect
    /// (and a reconnecting client moves on to the next URL), not the first call.
    async fn http_target(
        &self,
        url: &str,
        bearer: Option<HeaderValue>,
    ) -> Result<HttpTarget, ConnectError> {
        let invalid = |reason: String| ConnectError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let uri: http::Uri = url.parse().map_err(|e| invalid(format!("{e}")))?;
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
        if let Some(bearer) = bearer {
            headers.insert(header::AUTHORIZATION, bearer);
        }
        // A token function can give a fresh token when a POST is refused with 401.
        let refresh = match &self.token {
            Some(TokenSource::Fetch(_)) => self.token.clone(),
            _ => None,
        };
        let tls = self.tls();
        // (Within the handshake timeout of `handshake`.)
        http_client::check_tls(&uri, tls.clone())
            .await
            .map_err(|failure| failure.into_error(url))?;
        Ok(HttpTarget {
            uri,
            headers,
            tls,
            refresh,
            token_timeout: self.handshake_timeout,
        })
    }

    /// `Bearer TOKEN` for this handshake, if the client has a token.
    async fn bearer(&self) -> Result<Option<HeaderValue>, ConnectError> {
        match &self.token {
            None => Ok(None),
            Some(source) => source.bearer().await.map(Some),
        }
    }

    async fn handshake_once(
        &self,
        url: &str,
        offer: bool,
        bearer: Option<&HeaderValue>,
    ) -> Result<Ws, ConnectError> {
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
        if let Some(bearer) = bearer {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, bearer.clone());
        }
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(self.config.websocket()),
            true,
            Some(Connector::Rustls(self.tls())),
        );
        match connect.await {
            Ok((ws, _response)) => Ok(ws),
            Err(e) => Err(match e {
                WsError::Http(resp) => ConnectError::Refused {
                    status: resp.status().as_u16(),
                    body: resp
                        .body()
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default(),
                },
                WsError::Url(e) => invalid(e.to_string()),
                WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(
                    SubProtocolError::NoSubProtocol,
                )) => ConnectError::Subprotocol,
                WsError::Io(e) if tls::tls_failure(&e).is_some() => ConnectError::Tls {
                    url: url.to_string(),
                    reason: tls::tls_failure(&e).map(tls::explain).unwrap_or_default(),
                },
                WsError::Tls(e) => ConnectError::Tls {
                    url: url.to_string(),
                    reason: e.to_string(),
                },
                WsError::Io(e) => ConnectError::Io {
                    url: url.to_string(),
                    source: Box::new(e),
                },
                e => ConnectError::Io {
                    url: url.to_string(),
                    source: Box::new(e),
                },
            }),
        }
    }
}
