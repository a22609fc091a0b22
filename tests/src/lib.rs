//! Helpers shared by the cross-crate tests in `tests/`: a raw WebSocket client that
//! sends and receives exact text, and routers that tests serve. Also the code generated
//! from `idl/tests/golden/everything.wire`, compiled under the strictest settings.

#![deny(missing_docs, warnings)]

pub mod compat;
pub mod http;
pub mod proxy;
pub mod services;
pub mod tls;

/// Code generated from `idl/tests/golden/everything.wire` (every construct of the language), under
/// `no_implicit_prelude`: generated code must name everything by absolute path.
pub mod everything {
    #![no_implicit_prelude]
    ::wirecall::include_idl!("everything");
}

/// Two versions of one service (`tests/compat/`), for the compatibility matrix
/// (`tests/compat.rs`): version 2 makes edits docs/EVOLUTION.md calls safe, and one it
/// calls breaking.
pub mod compat_v1 {
    ::wirecall::include_idl!("compat_v1");
}

/// Version 2 of [`compat_v1`].
pub mod compat_v2 {
    ::wirecall::include_idl!("compat_v2");
}

/// Code generated from each file of the torture corpus (`idl/tests/torture/*.wire`): edge
/// cases of names and types that `wirecall check` accepts, so the generated code must
/// compile, here under `deny(missing_docs, warnings)`, with the prelude and without it.
pub mod torture {
    include!(concat!(env!("OUT_DIR"), "/torture/mod.rs"));
}

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wirecall::{raw::Router, server::ServerHandle, RpcError, Server};

/// How long a test waits for a frame before failing.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// A plain WebSocket client: what any JSON-RPC client in any language would send.
#[derive(Debug)]
pub struct RawWs {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What came back instead of a text frame.
#[derive(Debug, PartialEq)]
pub enum Ended {
    /// A close frame, with its code and reason.
    Close(Option<(u16, String)>),
    /// The stream ended or failed.
    Gone(String),
}

impl RawWs {
    /// Connect to `url` with no extra headers.
    pub async fn connect(url: &str) -> RawWs {
        Self::connect_with(url, &[]).await.expect("connect").0
    }

    /// Connect with extra handshake headers; returns the HTTP error on refusal.
    pub async fn connect_with(
        url: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<(RawWs, Response), WsError> {
        let mut req = url.into_client_request()?;
        for (k, v) in headers {
            req.headers_mut()
                .insert(*k, HeaderValue::from_str(v).unwrap());
        }
        let (ws, resp) = tokio_tungstenite::connect_async(req).await?;
        Ok((RawWs { ws }, resp))
    }

    /// Send one text frame.
    pub async fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Send raw bytes as a binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::binary(bytes)).await.expect("send");
    }

    /// The next text frame (pings and pongs are skipped), or how the connection ended.
    pub async fn next_text(&mut self) -> Result<String, Ended> {
        loop {
            let msg = tokio::time::timeout(RECV_TIMEOUT, self.ws.next())
                .await
                .expect("no frame within the receive timeout");
            match msg {
                Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
                Some(Ok(Message::Close(frame))) => {
                    return Err(Ended::Close(frame.map(|CloseFrame { code, reason }| {
                        (u16::from(code), reason.to_string())
                    })))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(Ended::Gone(e.to_string())),
                None => return Err(Ended::Gone("end of stream".into())),
            }
        }
    }

    /// The next text frame; panics if the connection ended instead.
    pub async fn recv(&mut self) -> String {
        match self.next_text().await {
            Ok(t) => t,
            Err(e) => panic!("expected a text frame, got {e:?}"),
        }
    }

    /// Send `text` and return the next text frame.
    pub async fn roundtrip(&mut self, text: &str) -> String {
        self.send(text).await;
        self.recv().await
    }

    /// Assert that nothing was answered to the frames sent so far: a probe request sent
    /// now must be answered first.
    pub async fn assert_no_answer_pending(&mut self) {
        let probe = r#"{"jsonrpc":"2.0","method":"$probe","id":"probe"}"#;
        let got = self.roundtrip(probe).await;
        assert_eq!(
            got,
            r#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":"probe"}"#,
            "an earlier frame was answered"
        );
    }

    /// The underlying stream, for tests that need more control.
    pub fn inner(&mut self) -> &mut WebSocketStream<MaybeTlsStream<TcpStream>> {
        &mut self.ws
    }
}

/// Remove the insignificant whitespace (outside strings) of the specification's examples.
pub fn compact(spec_text: &str) -> String {
    let mut out = String::with_capacity(spec_text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in spec_text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// The methods of the examples in §7 of the JSON-RPC 2.0 specification: `subtract`,
/// `sum`, `get_data`, `update`, `notify_hello`, `notify_sum`.
pub fn spec_router() -> Router {
    let mut r = Router::new();
    r.method("subtract", |_ctx, params| {
        let args = params
            .decoder(&["minuend", "subtrahend"])
            .and_then(|mut p| Ok((p.next_param::<i64>()?, p.next_param::<i64>()?)));
        async move {
            let (minuend, subtrahend) = args?;
            Ok::<_, RpcError>(minuend - subtrahend)
        }
    });
    r.method("sum", |_ctx, params| {
        let numbers = params.parse::<Vec<i64>>();
        async move { Ok::<_, RpcError>(numbers?.iter().sum::<i64>()) }
    });
    r.method("get_data", |_ctx, _params| async move {
        Ok::<_, RpcError>(serde_json::json!(["hello", 5]))
    });
    for name in ["update", "notify_hello", "notify_sum"] {
        r.method(name, |_ctx, _params| async move { Ok::<_, RpcError>(()) });
    }
    r
}

/// Poll `cond` every 10 ms for up to 5 s; panics naming `what` if it never holds.
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Serve `router` on a free loopback port with the default settings.
pub async fn serve(router: Router) -> ServerHandle {
    Server::bind("127.0.0.1:0", router).await.expect("bind")
}
