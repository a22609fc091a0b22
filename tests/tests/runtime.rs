//! The untyped runtime end to end over loopback: ids, params, calls both ways,
//! cancellation, timeouts, disconnects, panics, graceful shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use wirecall::{raw::Router, Client, Error, RpcError, Server};
use wirecall_tests::{serve, spec_router, wait_for, RawWs};

/// Observes a handler: how many started, finished, and were dropped unfinished.
#[derive(Default)]
struct Probe {
    started: AtomicUsize,
    finished: AtomicUsize,
    dropped: AtomicUsize,
}

struct DropFlag(Arc<Probe>, bool);

impl Drop for DropFlag {
    fn drop(&mut self) {
        if !self.1 {
            self.0.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// `sleep {ms}` (observed by `probe`), `panic`, `ask {question}` (calls the client's
/// `confirm`), `push {n}` (sends the client n `progress` notifications), plus the spec's.
fn router(probe: Arc<Probe>) -> Router {
    let mut r = spec_router();
    r.method("sleep", move |_ctx, params| {
        let ms = params
            .decoder(&["ms"])
            .and_then(|mut p| p.next_param::<u64>());
        let probe = probe.clone();
        async move {
            let ms = ms?;
            probe.started.fetch_add(1, Ordering::SeqCst);
            let mut flag = DropFlag(probe.clone(), false);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            flag.1 = true;
            probe.finished.fetch_add(1, Ordering::SeqCst);
            Ok::<_, RpcError>(ms)
        }
    });
    r.method("panic", |_ctx, _params| async move {
        if true {
            panic!("boom");
        }
        Ok::<_, RpcError>(())
    });
    r.method(
        "panic_in_decode",
        |_ctx, _params| -> std::future::Ready<Result<(), RpcError>> { panic!("decode boom") },
    );
    r.method("ask", |ctx, params| {
        let q = params
            .decoder(&["question"])
            .and_then(|mut p| p.next_param::<String>());
        async move {
            let answer: bool = ctx
                .peer()
                .call("confirm", json!({ "question": q? }))
                .await
                .map_err(RpcError::internal)?;
            Ok::<_, RpcError>(answer)
        }
    });
    r.method("push", |ctx, params| {
        let n = params
            .decoder(&["n"])
            .and_then(|mut p| p.next_param::<u32>());
        async move {
            for i in 0..n? {
                ctx.peer()
                    .notify("progress", json!({ "percent": i }))
                    .await
                    .map_err(RpcError::internal)?;
            }
            Ok::<_, RpcError>(())
        }
    });
    r.method("whoami", |ctx, _params| async move {
        Ok::<_, RpcError>(json!({
            "connection": ctx.connection_id().0,
            "remote": ctx.remote_addr().map(|a| a.ip().to_string()),
            "agent": ctx.headers().get("x-agent").and_then(|v| v.to_str().ok()).map(str::to_string),
        }))
    });
    r
}

#[tokio::test]
async fn ids_are_echoed_byte_for_byte() {
    let server = serve(spec_router()).await;
    let mut ws = RawWs::connect(&server.url()).await;
    for id in [
        "0",
        "-1",
        r#""x""#,
        "null",
        "1152921504606846976",
        "1.5",
        "-0",
        r#""""#,
        r#""\u00e9\n""#,
        "1e3",
    ] {
        let got = ws
            .roundtrip(&format!(
                r#"{{"jsonrpc":"2.0","method":"subtract","params":[3,1],"id":{id}}}"#
            ))
            .await;
        assert_eq!(got, format!(r#"{{"jsonrpc":"2.0","result":2,"id":{id}}}"#));
    }
    // An id that is neither string, number nor null makes the request invalid.
    let got = ws
        .roundtrip(r#"{"jsonrpc":"2.0","method":"subtract","params":[3,1],"id":[1]}"#)
        .await;
    assert_eq!(
        got,
        r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}"#
    );
}

#[tokio::test]
async fn param_mistakes_name_the_parameter() {
    let server = serve(spec_router()).await;
    let mut ws = RawWs::connect(&server.url()).await;
    let cases = [
        (r#"{"minuend":1}"#, "missing parameter `subtrahend`"),
        (r#"[1]"#, "missing parameter `subtrahend`"),
        (
            r#"{"minuend":1,"subtrahend":"x"}"#,
            r#"invalid parameter `subtrahend`: invalid type: string \"x\", expected i64"#,
        ),
        (
            r#"{"minuend":1,"subtrahend":2,"extra":3}"#,
            "unknown parameter `extra`; expected `minuend`, `subtrahend`",
        ),
        (r#"[1,2,3]"#, "too many params: expected at most 2, got 3"),
    ];
    for (params, message) in cases {
        let got = ws
            .roundtrip(&format!(
                r#"{{"jsonrpc":"2.0","method":"subtract","params":{params},"id":1}}"#
            ))
            .await;
        assert_eq!(
            got,
            format!(
                r#"{{"jsonrpc":"2.0","error":{{"code":-32602,"message":"{message}"}},"id":1}}"#
            )
        );
    }
}

#[tokio::test]
async fn client_calls_and_notifies() {
    let server = serve(router(Default::default())).await;
    let client = Client::connect(&server.url()).await.unwrap();
    let by_name: i64 = client
        .call("subtract", json!({"minuend": 42, "subtrahend": 23}))
        .await
        .unwrap();
    let by_position: i64 = client.call("subtract", (42, 23)).await.unwrap();
    assert_eq!((by_name, by_position), (19, 19));
    let sum: i64 = client.call("sum", [1, 2, 4]).await.unwrap();
    assert_eq!(sum, 7);
    client.notify("update", [1, 2, 3]).await.unwrap();
    let err = client.call::<i64>("nope", ()).await.unwrap_err();
    assert_eq!(err.rpc().map(|e| e.code), Some(-32601), "{err}");
    let err = client.call::<String>("subtract", (1, 2)).await.unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err}");
    let err = client.call::<i64>("subtract", 5).await.unwrap_err();
    assert!(matches!(err, Error::Encode(_)), "{err}");
}

#[tokio::test]
async fn many_concurrent_calls_each_get_their_own_answer() {
    let server = serve(router(Default::default())).await;
    let client = Client::connect(&server.url()).await.unwrap();
    let calls = (0..500i64).map(|i| {
        let client = client.clone();
        async move { client.call::<i64>("subtract", (i, 1)).await.unwrap() == i - 1 }
    });
    let results = futures_util::future::join_all(calls).await;
    assert!(results.into_iter().all(|ok| ok));
    assert_eq!(client.pending_calls(), 0);
}

#[tokio::test]
async fn a_slow_call_does_not_block_the_next() {
    let server = serve(router(Default::default())).await;
    let client = Client::connect(&server.url()).await.unwrap();
    let slow = client.call::<u64>("sleep", json!({"ms": 2000}));
    let fast = async {
        let started = std::time::Instant::now();
        let r: i64 = client.call("subtract", (2, 1)).await.unwrap();
        (r, started.elapsed())
    };
    tokio::select! {
        _ = slow => panic!("the slow call finished first"),
        (r, took) = fast => {
            assert_eq!(r, 1);
            assert!(took < Duration::from_millis(1000), "{took:?}");
        }
    }
}

#[tokio::test]
async fn dropping_a_call_cancels_the_handler() {
    let probe = Arc::new(Probe::default());
    let server = serve(router(probe.clone())).await;
    let client = Client::connect(&server.url()).await.unwrap();
    let call = client.call::<u64>("sleep", json!({"ms": 10_000}));
    assert!(tokio::time::timeout(Duration::from_millis(200), call)
        .await
        .is_err());
    wait_for("the handler to be dropped", || {
        probe.dropped.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(probe.finished.load(Ordering::SeqCst), 0);
    assert_eq!(client.pending_calls(), 0);
    // The connection carries on.
    assert_eq!(client.call::<i64>("subtract", (5, 3)).await.unwrap(), 2);
}

#[tokio::test]
async fn per_call_timeout_fails_the_call_and_cancels_the_handler() {
    let probe = Arc::new(Probe::default());
    let server = serve(router(probe.clone())).await;
    let client = Client::builder()
        .call_timeout(Duration::from_secs(20))
        .connect(&server.url())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = client
        .call_with_timeout::<u64>("sleep", json!({"ms": 10_000}), Duration::from_millis(150))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout(d) if d == Duration::from_millis(150)),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    wait_for("the handler to be dropped", || {
        probe.dropped.load(Ordering::SeqCst) == 1
    })
    .await;
}

#[tokio::test]
async fn default_client_timeout_applies() {
    let server = serve(router(Default::default())).await;
    let client = Client::builder()
        .call_timeout(Duration::from_millis(100))
        .connect(&server.url())
        .await
        .unwrap();
    let err = client
        .call::<u64>("sleep", json!({"ms": 5_000}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
}

#[tokio::test]
async fn cancel_request_answers_minus_32800() {
    let probe = Arc::new(Probe::default());
    let server = serve(router(probe.clone())).await;
    let mut ws = RawWs::connect(&server.url()).await;
    ws.send(r#"{"jsonrpc":"2.0","method":"sleep","params":{"ms":10000},"id":"slow"}"#)
        .await;
    wait_for("the handler to start", || {
        probe.started.load(Ordering::SeqCst) == 1
    })
    .await;
    ws.send(r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"slow"}}"#)
        .await;
    assert_eq!(
        ws.recv().await,
        r#"{"jsonrpc":"2.0","error":{"code":-32800,"message":"Request cancelled"},"id":"slow"}"#
    );
    wait_for("the handler to be dropped", || {
        probe.dropped.load(Ordering::SeqCst) == 1
    })
    .await;
    // Cancelling an unknown or finished id does nothing.
    ws.send(r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"slow"}}"#)
        .await;
    ws.assert_no_answer_pending().await;
}

/// Regression: a call cancelled while its batch waits for it is answered `-32800` inside
/// the batch's one array (it used to be answered alone, and the batch never).
#[tokio::test]
async fn cancelling_a_batched_call_answers_it_inside_the_batch() {
    let probe = Arc::new(Probe::default());
    let server = serve(router(probe.clone())).await;
    let mut ws = RawWs::connect(&server.url()).await;
    ws.send(
        r#"[{"jsonrpc":"2.0","method":"subtract","params":[3,1],"id":1},
            {"jsonrpc":"2.0","method":"sleep","params":{"ms":10000},"id":2}]"#,
    )
    .await;
    wait_for("the handler to start", || {
        probe.started.load(Ordering::SeqCst) == 1
    })
    .await;
    ws.send(r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":2}}"#)
        .await;
    let batch: Vec<serde_json::Value> = serde_json::from_str(&ws.recv().await).unwrap();
    let mut by_id: Vec<(i64, serde_json::Value)> = batch
        .into_iter()
        .map(|r| (r["id"].as_i64().unwrap(), r))
        .collect();
    by_id.sort_by_key(|(id, _)| *id);
    assert_eq!(
        by_id,
        vec![
            (1, json!({"jsonrpc":"2.0","result":2,"id":1})),
            (
                2,
                json!({"jsonrpc":"2.0","error":{"code":-32800,"message":"Request cancelled"},"id":2})
            ),
        ]
    );
    wait_for("the handler to be dropped", || {
        probe.dropped.load(Ordering::SeqCst) == 1
    })
    .await;
    // Nothing else was answered: no lone -32800, no second array.
    ws.assert_no_answer_pending().await;
}

#[tokio::test]
async fn disconnect_mid_call_fails_pending_calls_at_once() {
    // A server that reads one request and hangs up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        use futures_util::StreamExt;
        let _ = ws.next().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(ws);
    });
    let client = Client::builder()
        .offer_subprotocol(false)
        .reconnect(wirecall::client::Reconnect::disabled())
        .connect(&url)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (a, b) = tokio::join!(client.call::<u64>("x", ()), client.call::<u64>("y", ()));
    assert!(a.as_ref().unwrap_err().is_disconnected(), "{a:?}");
    assert!(b.as_ref().unwrap_err().is_disconnected(), "{b:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Later calls fail at once, too.
    let err = client.call::<u64>("z", ()).await.unwrap_err();
    assert!(err.is_disconnected(), "{err}");
    assert_eq!(client.pending_calls(), 0);
}

#[tokio::test]
async fn server_calls_and_notifies_the_client() {
    let server = serve(router(Default::default())).await;
    let (progress_tx, mut progress_rx) = mpsc::unbounded_channel();
    let mut callbacks = Router::new();
    callbacks.method("confirm", |_ctx, params| {
        let q = params
            .decoder(&["question"])
            .and_then(|mut p| p.next_param::<String>());
        async move { Ok::<_, RpcError>(q?.ends_with('?')) }
    });
    callbacks.method("progress", move |_ctx, params| {
        let tx = progress_tx.clone();
        let p = params
            .decoder(&["percent"])
            .and_then(|mut p| p.next_param::<u32>());
        async move {
            let _ = tx.send(p?);
            Ok::<_, RpcError>(())
        }
    });
    let client = Client::builder()
        .router(callbacks)
        .connect(&server.url())
        .await
        .unwrap();
    assert!(client
        .call::<bool>("ask", json!({"question": "ok?"}))
        .await
        .unwrap());
    assert!(!client
        .call::<bool>("ask", json!({"question": "ok."}))
        .await
        .unwrap());
    client.call::<()>("push", json!({"n": 3})).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(progress_rx.recv().await.unwrap());
    }
    got.sort();
    assert_eq!(got, [0, 1, 2]);
}

#[tokio::test]
async fn server_call_to_a_client_without_the_method_is_an_error() {
    let server = serve(router(Default::default())).await;
    let client = Client::connect(&server.url()).await.unwrap();
    let err = client
        .call::<bool>("ask", json!({"question": "?"}))
        .await
        .unwrap_err();
    let rpc = err.rpc().expect("an error answer");
    assert_eq!(rpc.code, -32603);
    assert!(
        rpc.data
            .as_ref()
            .unwrap()
            .get()
            .contains("Method not found"),
        "{rpc}"
    );
}

#[tokio::test]
async fn context_has_connection_details() {
    let server = serve(router(Default::default())).await;
    let client = Client::builder()
        .header("x-agent", "tests/1")
        .connect(&server.url())
        .await
        .unwrap();
    let who: serde_json::Value = client.call("whoami", ()).await.unwrap();
    assert_eq!(who["remote"], "127.0.0.1");
    assert_eq!(who["agent"], "tests/1");
    let other = Client::connect(&server.url()).await.unwrap();
    let who2: serde_json::Value = other.call("whoami", ()).await.unwrap();
    assert_ne!(who["connection"], who2["connection"]);
}

#[tokio::test]
async fn a_panicking_handler_answers_internal_error_and_the_server_carries_on() {
    let server = serve(router(Default::default())).await;
    let client = Client::connect(&server.url()).await.unwrap();
    for method in ["panic", "panic_in_decode"] {
        let err = client.call::<()>(method, ()).await.unwrap_err();
        assert_eq!(err.rpc().map(|e| e.code), Some(-32603), "{err}");
    }
    assert_eq!(client.call::<i64>("subtract", (2, 1)).await.unwrap(), 1);
}

#[tokio::test]
async fn garbage_gets_errors_not_crashes() {
    let server = serve(spec_router()).await;
    let mut ws = RawWs::connect(&server.url()).await;
    let parse_error =
        r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}"#;
    let invalid =
        r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}"#;
    assert_eq!(ws.roundtrip(&"[".repeat(100_000)).await, parse_error);
    assert_eq!(ws.roundtrip("").await, parse_error);
    assert_eq!(ws.roundtrip("42").await, invalid);
    assert_eq!(ws.roundtrip(r#""text""#).await, invalid);
    ws.send_binary(vec![0xff, 0xfe]).await;
    assert_eq!(ws.recv().await, parse_error);
    // A binary frame holding JSON is accepted.
    ws.send_binary(br#"{"jsonrpc":"2.0","method":"subtract","params":[2,1],"id":1}"#.to_vec())
        .await;
    assert_eq!(ws.recv().await, r#"{"jsonrpc":"2.0","result":1,"id":1}"#);
    // A response to a call never made is ignored.
    ws.send(r#"{"jsonrpc":"2.0","result":1,"id":999}"#).await;
    ws.assert_no_answer_pending().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_calls_then_closes_1001() {
    let probe = Arc::new(Probe::default());
    let server = Server::builder()
        .bind("127.0.0.1:0", router(probe.clone()))
        .await
        .unwrap();
    let mut ws = RawWs::connect(&server.url()).await;
    ws.send(r#"{"jsonrpc":"2.0","method":"sleep","params":{"ms":300},"id":1}"#)
        .await;
    wait_for("the call to start", || {
        probe.started.load(Ordering::SeqCst) == 1
    })
    .await;
    let shutdown = {
        let server = server.clone();
        tokio::spawn(async move { server.shutdown().await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // New requests are refused while draining.
    ws.send(r#"{"jsonrpc":"2.0","method":"subtract","params":[2,1],"id":2}"#)
        .await;
    assert_eq!(
        ws.recv().await,
        r#"{"jsonrpc":"2.0","error":{"code":-32001,"message":"Server shutting down"},"id":2}"#
    );
    assert_eq!(ws.recv().await, r#"{"jsonrpc":"2.0","result":300,"id":1}"#);
    assert_eq!(
        ws.next_text().await,
        Err(wirecall_tests::Ended::Close(Some((
            1001,
            "server shutting down".into()
        ))))
    );
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .unwrap()
        .unwrap();
    assert!(
        RawWs::connect_with(&server.url(), &[]).await.is_err(),
        "still accepting"
    );
}

#[tokio::test]
async fn dropping_the_last_client_clone_closes_the_connection() {
    let server = serve(spec_router()).await;
    let client = Client::connect(&server.url()).await.unwrap();
    let clone = client.clone();
    assert_eq!(clone.call::<i64>("subtract", (2, 1)).await.unwrap(), 1);
    drop(client);
    // One clone left: still open.
    assert_eq!(clone.call::<i64>("subtract", (3, 1)).await.unwrap(), 2);
    assert_eq!(server.connections(), 1);
    drop(clone);
    wait_for("the server to see the connection close", || {
        server.connections() == 0
    })
    .await;
}
