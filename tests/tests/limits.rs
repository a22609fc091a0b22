//! Every limit and protection: exceeded, it gives the documented error or close code, and
//! the server keeps serving other connections.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use wirecall::{
    auth::Refusal, client::ConnectError, server::http::StatusCode, server::ServerBuilder,
    server::ServerHandle, Client, RpcError, Server,
};
use wirecall_tests::{spec_router, Ended, RawWs};

async fn start(builder: ServerBuilder) -> ServerHandle {
    builder.bind("127.0.0.1:0", spec_router()).await.unwrap()
}

/// The server still answers a fresh connection.
async fn still_serving(server: &ServerHandle) {
    let mut ws = RawWs::connect(&server.url()).await;
    assert_eq!(
        ws.roundtrip(r#"{"jsonrpc":"2.0","method":"subtract","params":[2,1],"id":1}"#)
            .await,
        r#"{"jsonrpc":"2.0","result":1,"id":1}"#
    );
}

#[tokio::test]
async fn oversized_message_closes_1009() {
    let server = start(Server::builder().max_message_size(1024)).await;
    let mut ws = RawWs::connect(&server.url()).await;
    // Just under the limit is fine.
    let ok = format!(
        r#"{{"jsonrpc":"2.0","method":"sum","params":[{}0],"id":1}}"#,
        "0,".repeat(450)
    );
    assert!(ok.len() <= 1024);
    assert_eq!(
        ws.roundtrip(&ok).await,
        r#"{"jsonrpc":"2.0","result":0,"id":1}"#
    );
    let big = format!(
        r#"{{"jsonrpc":"2.0","method":"sum","params":[{}0],"id":2}}"#,
        "0,".repeat(600)
    );
    ws.send(&big).await;
    assert_eq!(
        ws.next_text().await,
        Err(Ended::Close(Some((
            1009,
            "message too big: the limit is 1024 bytes".into()
        ))))
    );
    still_serving(&server).await;
}

#[tokio::test]
async fn oversized_response_becomes_an_error() {
    let mut router = spec_router();
    router.method("big", |_ctx, _p| async {
        Ok::<_, RpcError>("x".repeat(4000))
    });
    let server = Server::builder()
        .max_message_size(1024)
        .bind("127.0.0.1:0", router)
        .await
        .unwrap();
    let client = Client::connect(&server.url()).await.unwrap();
    let err = client.call::<String>("big", ()).await.unwrap_err();
    let rpc = err.rpc().unwrap();
    assert_eq!(rpc.code, -32603);
    assert!(
        rpc.to_string().contains("over the limit of 1024 bytes"),
        "{rpc}"
    );
}

#[tokio::test]
async fn oversized_request_is_not_sent() {
    let server = start(Server::builder()).await;
    let client = Client::builder()
        .max_message_size(100)
        .connect(&server.url())
        .await
        .unwrap();
    let err = client.call::<i64>("sum", vec![1; 100]).await.unwrap_err();
    assert!(
        matches!(err, wirecall::Error::MessageTooLarge { limit: 100, .. }),
        "{err}"
    );
    assert_eq!(client.call::<i64>("sum", [1, 2]).await.unwrap(), 3);
}

#[tokio::test]
async fn too_many_connections_get_http_503() {
    let server = start(Server::builder().max_connections(2)).await;
    let a = Client::connect(&server.url()).await.unwrap();
    let b = Client::connect(&server.url()).await.unwrap();
    match Client::connect(&server.url()).await {
        Err(ConnectError::Refused { status, body }) => {
            assert_eq!(status, 503);
            assert_eq!(body, "too many connections");
        }
        other => panic!("expected HTTP 503, got {other:?}"),
    }
    assert_eq!(a.call::<i64>("subtract", (2, 1)).await.unwrap(), 1);
    assert_eq!(b.call::<i64>("subtract", (3, 1)).await.unwrap(), 2);
    a.close().await;
    // A slot is free again once a connection closes.
    for _ in 0..100 {
        if server.connections() < 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let c = Client::connect(&server.url()).await.unwrap();
    assert_eq!(c.call::<i64>("subtract", (4, 1)).await.unwrap(), 3);
}

#[tokio::test]
async fn in_flight_limit_pauses_reading_and_drops_nothing() {
    let gate = Arc::new(Semaphore::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let mut router = spec_router();
    {
        let (gate, started) = (gate.clone(), started.clone());
        router.method("wait", move |_ctx, _p| {
            let (gate, started) = (gate.clone(), started.clone());
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                gate.acquire().await.map_err(RpcError::internal)?.forget();
                Ok::<_, RpcError>(())
            }
        });
    }
    let server = Server::builder()
        .max_in_flight(2)
        .bind("127.0.0.1:0", router)
        .await
        .unwrap();
    let client = Client::connect(&server.url()).await.unwrap();
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.call::<()>("wait", ()).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        started.load(Ordering::SeqCst),
        2,
        "only two calls may run at once"
    );
    gate.add_permits(5);
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(started.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn batch_over_the_limit_is_one_error() {
    let server = start(Server::builder().max_batch_len(2)).await;
    let mut ws = RawWs::connect(&server.url()).await;
    let one = r#"{"jsonrpc":"2.0","method":"subtract","params":[2,1],"id":1}"#;
    assert_eq!(
        ws.roundtrip(&format!("[{one},{one}]")).await,
        r#"[{"jsonrpc":"2.0","result":1,"id":1},{"jsonrpc":"2.0","result":1,"id":1}]"#
    );
    assert_eq!(
        ws.roundtrip(&format!("[{one},{one},{one}]")).await,
        r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request","data":"a batch of 3 messages exceeds the limit of 2"},"id":null}"#
    );
    still_serving(&server).await;
}

#[tokio::test]
async fn handshake_that_never_completes_is_dropped() {
    let server = start(Server::builder().handshake_timeout(Duration::from_millis(200))).await;
    let mut tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "expected the server to hang up");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_secs(3),
        "{took:?}"
    );
    still_serving(&server).await;
}

#[tokio::test]
async fn origin_policy() {
    let server = start(Server::builder().allow_origin("https://app.example.com")).await;
    let host = server.local_addr().to_string();
    let same_host = format!("http://{host}");
    for (origin, ok) in [
        (None, true),
        (Some(same_host.as_str()), true),
        (Some("https://app.example.com"), true),
        (Some("https://evil.example.com"), false),
        (Some("null"), false),
    ] {
        let headers: Vec<(&'static str, &str)> = origin.iter().map(|o| ("origin", *o)).collect();
        let result = RawWs::connect_with(&server.url(), &headers).await;
        match (ok, result) {
            (true, Ok(_)) => {}
            (false, Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
                assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{origin:?}");
            }
            (ok, r) => panic!(
                "origin {origin:?}: expected ok={ok}, got {:?}",
                r.map(|_| ())
            ),
        }
    }
    let any = start(Server::builder().allow_origin("*")).await;
    assert!(
        RawWs::connect_with(&any.url(), &[("origin", "https://x.test")])
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn subprotocol_negotiation() {
    let server = start(Server::builder()).await;
    let url = server.url();
    let protocol = |resp: &tokio_tungstenite::tungstenite::handshake::client::Response| {
        resp.headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (_, resp) = RawWs::connect_with(&url, &[]).await.unwrap();
    assert_eq!(protocol(&resp), None);
    let (_, resp) = RawWs::connect_with(&url, &[("sec-websocket-protocol", "jsonrpc-2.0")])
        .await
        .unwrap();
    assert_eq!(protocol(&resp).as_deref(), Some("jsonrpc-2.0"));
    let (_, resp) = RawWs::connect_with(&url, &[("sec-websocket-protocol", "mqtt, jsonrpc-2.0")])
        .await
        .unwrap();
    assert_eq!(protocol(&resp).as_deref(), Some("jsonrpc-2.0"));
    match RawWs::connect_with(&url, &[("sec-websocket-protocol", "mqtt")]).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
            let body = String::from_utf8(resp.body().clone().unwrap()).unwrap();
            assert_eq!(
                body,
                "unsupported subprotocol: this server speaks jsonrpc-2.0 (and wamp.2.json)"
            );
        }
        other => panic!("expected HTTP 400, got {:?}", other.map(|_| ())),
    }
    // WAMP: the first serializer the client offers that the server speaks (JSON, msgpack,
    // CBOR); WAMP's other serializers are refused by name.
    for (offered, chosen) in [
        ("wamp.2.msgpack, wamp.2.json", "wamp.2.msgpack"),
        ("wamp.2.json, wamp.2.msgpack", "wamp.2.json"),
        ("wamp.2.ubjson, wamp.2.cbor, wamp.2.json", "wamp.2.cbor"),
    ] {
        let (_, resp) = RawWs::connect_with(&url, &[("sec-websocket-protocol", offered)])
            .await
            .unwrap();
        assert_eq!(protocol(&resp).as_deref(), Some(chosen), "{offered}");
    }
    match RawWs::connect_with(&url, &[("sec-websocket-protocol", "wamp.2.ubjson")]).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
            let body = String::from_utf8(resp.body().clone().unwrap()).unwrap();
            assert!(body.contains("unsupported WAMP serializer"), "{body}");
        }
        other => panic!("expected HTTP 400, got {:?}", other.map(|_| ())),
    }
    // wirecall's own client offers the subprotocol.
    let client = Client::connect(&url).await.unwrap();
    assert_eq!(client.call::<i64>("subtract", (2, 1)).await.unwrap(), 1);
}

#[tokio::test]
async fn handshake_hook_accepts_refuses_and_stores() {
    #[derive(Clone)]
    struct User(String);
    let mut router = spec_router();
    router.method("me", |ctx, _p| async move {
        Ok::<_, RpcError>(ctx.extensions().get::<User>().map(|u| u.0.clone()))
    });
    let server = Server::builder()
        .on_handshake(
            |req, ext| match req.headers().get("authorization").map(|v| v.to_str()) {
                Some(Ok("Bearer alice")) => {
                    ext.insert(User("alice".into()));
                    Ok(())
                }
                _ => Err(Refusal::new(
                    StatusCode::UNAUTHORIZED,
                    "missing or bad token",
                )),
            },
        )
        .bind("127.0.0.1:0", router)
        .await
        .unwrap();
    match Client::connect(&server.url()).await {
        Err(ConnectError::Refused { status: 401, body }) => {
            assert_eq!(body, "missing or bad token")
        }
        other => panic!("expected 401, got {other:?}"),
    }
    let client = Client::builder()
        .header("authorization", "Bearer alice")
        .connect(&server.url())
        .await
        .unwrap();
    assert_eq!(
        client
            .call::<Option<String>>("me", ())
            .await
            .unwrap()
            .as_deref(),
        Some("alice")
    );
}

#[tokio::test]
async fn unresponsive_peer_is_dropped_by_keepalive() {
    let server = start(Server::builder().ping(Some(Duration::from_millis(100)), 2)).await;
    // This client never reads, so it never answers pings.
    let _silent = RawWs::connect(&server.url()).await;
    let mut healthy = RawWs::connect(&server.url()).await;
    let started = Instant::now();
    while server.connections() > 1 {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the silent peer was not dropped"
        );
        // The healthy client keeps reading (and so answers pings).
        assert_eq!(
            healthy
                .roundtrip(r#"{"jsonrpc":"2.0","method":"subtract","params":[2,1],"id":1}"#)
                .await,
            r#"{"jsonrpc":"2.0","result":1,"id":1}"#
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Detected within interval × (missed + 1) plus scheduling slack.
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn client_detects_an_unresponsive_server() {
    // A "server" that completes the handshake and then never reads again.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(ws);
    });
    let client = Client::builder()
        .offer_subprotocol(false)
        .reconnect(wirecall::client::Reconnect::disabled())
        .ping(Some(Duration::from_millis(100)), 2)
        .connect(&url)
        .await
        .unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(3), client.closed())
        .await
        .unwrap();
    assert_eq!(reason, wirecall::client::CloseReason::PeerUnresponsive);
    assert!(client
        .call::<()>("x", ())
        .await
        .unwrap_err()
        .is_disconnected());
}
