//! The WAMP load generator against wirecall's benchmark server, in process: a short run
//! must make calls and see no errors (no timing is asserted), and a serializer the server
//! does not speak must fail at the handshake with a clear error instead of hanging. The
//! msgpack side is also run against a stand-in router that speaks only `wamp.2.msgpack`.

use std::time::Duration;

use wirecall_bench::wamp::{self, Serializer, WampError};
use wirecall_bench::Impl;

/// Serve the calculator as `bench-server wirecall` does, on a free port.
async fn server() -> String {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        wirecall_bench::serve(Impl::Wirecall, "127.0.0.1:0", |addr| {
            let _ = tx.send(addr);
        })
        .await
        .expect("bench server");
    });
    let addr = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("the server starts")
        .expect("the server reports its address");
    format!("ws://{addr}")
}

fn options(url: String, serializer: Serializer) -> wamp::Options {
    wamp::Options {
        url,
        conns: 2,
        inflight: 8,
        warmup: Duration::from_millis(100),
        seconds: Duration::from_millis(500),
        serializer,
        realm: "realm1".into(),
    }
}

/// Bounds a run: the generator itself must never hang (its own stall timeout is 10 s).
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the generator finished within 60 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_calls_are_answered_without_errors() {
    let url = server().await;
    wamp::probe(&url, Serializer::Json, "realm1")
        .await
        .expect("the server speaks wamp.2.json");
    let report = bounded(wamp::run(&options(url, Serializer::Json)))
        .await
        .expect("the run starts");
    assert_eq!(
        report.errors, 0,
        "no errors (first: {:?})",
        report.first_error
    );
    assert!(report.calls > 0, "calls were answered: {report:?}");
    assert_eq!(report.hist.len(), report.calls, "every counted call timed");
}

/// msgpack: until the server speaks `wamp.2.msgpack` the run fails fast at the
/// handshake, saying so; once it does, the run must be as clean as JSON's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_is_refused_clearly_or_answered() {
    let url = server().await;
    match bounded(wamp::run(&options(url.clone(), Serializer::Msgpack))).await {
        Err(e @ WampError::Refused { .. }) => {
            assert!(
                e.to_string()
                    .starts_with("server refused subprotocol wamp.2.msgpack"),
                "{e}"
            );
            let probe = bounded(wamp::probe(&url, Serializer::Msgpack, "realm1")).await;
            assert!(matches!(probe, Err(WampError::Refused { .. })), "{probe:?}");
        }
        Err(e) => panic!("neither refused nor served: {e}"),
        Ok(report) => {
            assert_eq!(
                report.errors, 0,
                "no errors (first: {:?})",
                report.first_error
            );
            assert!(report.calls > 0, "calls were answered: {report:?}");
        }
    }
}

/// CBOR, which wirecall's server speaks since the WAMP adapter (#22): as clean as JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbor_calls_are_answered_without_errors() {
    let url = server().await;
    wamp::probe(&url, Serializer::Cbor, "realm1")
        .await
        .expect("the server speaks wamp.2.cbor");
    let report = bounded(wamp::run(&options(url, Serializer::Cbor)))
        .await
        .expect("the run starts");
    assert_eq!(
        report.errors, 0,
        "no errors (first: {:?})",
        report.first_error
    );
    assert!(report.calls > 0, "calls were answered: {report:?}");
}

/// No server: the run fails at once with a connection error, not a hang or a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_clear_error() {
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}");
    let err = bounded(wamp::run(&options(url, Serializer::Json)))
        .await
        .expect_err("nothing listens there");
    assert!(matches!(err, WampError::Connect(_)), "{err}");
}

/// A stand-in router that speaks only `wamp.2.msgpack`: it answers `HELLO` with `WELCOME`
/// and a well-formed `CALL` of `Calculator.add` with `[a + b]` (anything else: `ERROR`).
/// It checks the generator's msgpack side (subprotocol, binary frames, `{}` as a map)
/// whether or not wirecall's server speaks msgpack yet.
// tungstenite's handshake callback returns its own `Result<Response, ErrorResponse>`.
#[allow(clippy::result_large_err)]
async fn msgpack_router() -> String {
    use futures_util::{SinkExt, StreamExt};
    use serde_json::{json, Value};
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    use tokio_tungstenite::tungstenite::Message;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let pick = |req: &Request, mut resp: Response| {
                    let offered = req
                        .headers()
                        .get("sec-websocket-protocol")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if offered.split(',').any(|p| p.trim() == "wamp.2.msgpack") {
                        resp.headers_mut().insert(
                            "sec-websocket-protocol",
                            HeaderValue::from_static("wamp.2.msgpack"),
                        );
                    }
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, pick).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    let Message::Binary(bytes) = msg else {
                        continue;
                    };
                    let m: Value = rmp_serde::from_slice(&bytes).expect("msgpack from wampgen");
                    let answer = match m[0].as_u64() {
                        Some(1) if m[2]["roles"]["caller"].is_object() => json!([2, 1, {}]),
                        Some(48)
                            if m[2].is_object() && m[3] == "Calculator.add" && m[4].is_array() =>
                        {
                            let sum: i64 = m[4]
                                .as_array()
                                .unwrap()
                                .iter()
                                .filter_map(Value::as_i64)
                                .sum();
                            json!([50, m[1], {}, [sum]])
                        }
                        Some(48) => json!([8, 48, m[1], {}, "test.error.malformed_call"]),
                        Some(6) => return,
                        _ => json!([3, {}, "wamp.error.protocol_violation"]),
                    };
                    let frame = Message::binary(rmp_serde::to_vec(&answer).unwrap());
                    if ws.send(frame).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("ws://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_calls_against_a_msgpack_router() {
    let url = msgpack_router().await;
    wamp::probe(&url, Serializer::Msgpack, "realm1")
        .await
        .expect("the router answers the probe");
    let report = bounded(wamp::run(&options(url.clone(), Serializer::Msgpack)))
        .await
        .expect("the run starts");
    assert_eq!(
        report.errors, 0,
        "no errors (first: {:?})",
        report.first_error
    );
    assert!(report.calls > 0, "calls were answered: {report:?}");
    // And JSON is refused by this router, clearly.
    let err = bounded(wamp::probe(&url, Serializer::Json, "realm1"))
        .await
        .expect_err("the router speaks msgpack only");
    assert!(
        err.to_string()
            .starts_with("server refused subprotocol wamp.2.json"),
        "{err}"
    );
}
