//! Every way a call can end, crossed with every way it can arrive: each call ends exactly
//! once, with one answer in the frame it is owed to.
//!
//! | ending ↓ / arrival → | single | batch | stream setup | server→client |
//! |---|---|---|---|---|
//! | answer | `{"result":…}` | in the array | subscription id, items, end | caller gets it |
//! | typed error | its code and data | in the array | its code | caller gets the code |
//! | panic | -32603 | in the array | -32603 | caller gets -32603 |
//! | timeout | client: Timeout, handler dropped | (a batch's deadline is its caller's cancel) | client: Timeout, setup dropped | caller: Timeout, client's handler dropped |
//! | cancel | -32800 alone | -32800 in the array | -32800 | caller's future dropped: client's handler dropped |
//! | disconnect | handler dropped | handler dropped | setup dropped | a call made outside a handler: Disconnected (one made inside is dropped with its handler) |
//! | shutdown | in-flight call answered, then 1001 | same, in the array | same | the server's call still answered |
//! | limit | response too large → -32603 | same, in the array | subscription limit → -32005 | request too large: not sent |
//!
//! Every scenario ends with `assert_no_answer_pending` (nothing else was answered) or
//! checks the close; the server-side callers log their outcomes, one line per call.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use wirecall::{
    raw::Router, server::ServerHandle, CallOptions, Caller, Client, Error, NoAppError, RpcError,
    Server,
};
use wirecall_tests::{wait_for, Ended, RawWs};

/// Handlers that were started, and dropped before they finished.
#[derive(Default)]
struct Probe {
    started: AtomicUsize,
    dropped: AtomicUsize,
}

struct Dropped(Arc<Probe>, bool);

impl Drop for Dropped {
    fn drop(&mut self) {
        if !self.1 {
            self.0.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn sleep_observed(probe: Arc<Probe>, ms: u64) -> u64 {
    probe.started.fetch_add(1, Ordering::SeqCst);
    let mut guard = Dropped(probe, false);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    guard.1 = true;
    ms
}

const LIMIT: usize = 2000;

fn typed() -> RpcError {
    RpcError::new(4001, "Typed").with_data(json!({"why": "typed"}))
}

fn ms(params: wirecall::raw::Params<'_>) -> Result<u64, RpcError> {
    params
        .decoder(&["ms"])
        .and_then(|mut p| p.next_param::<u64>())
}

/// The server: a method and a stream per ending, and `relay`, which calls the client.
fn router(probe: Arc<Probe>, log: Arc<Mutex<Vec<String>>>) -> Router {
    let mut r = Router::new();
    r.method("answer", |_c, _p| async { Ok::<_, RpcError>(1) });
    r.method("typed", |_c, _p| async { Err::<(), _>(typed()) });
    r.method("panic", |_c, _p| async {
        if true {
            panic!("boom");
        }
        Ok::<_, RpcError>(())
    });
    let p = probe.clone();
    r.method("sleep", move |_c, params| {
        let (ms, probe) = (ms(params), p.clone());
        async move { Ok::<_, RpcError>(sleep_observed(probe, ms?).await) }
    });
    r.method("big", |_c, _p| async {
        Ok::<_, RpcError>("x".repeat(LIMIT + 1000))
    });
    let one = || futures_util::stream::iter([Ok::<_, RpcError>(1)]);
    r.subscription(
        "s.answer",
        move |_c, _p| async move { Ok::<_, RpcError>(one()) },
    );
    r.subscription("s.typed", move |_c, _p| async move {
        Err::<futures_util::stream::Iter<std::array::IntoIter<Result<i32, RpcError>, 1>>, _>(typed())
    });
    r.subscription("s.panic", move |_c, _p| async move {
        if true {
            panic!("boom in setup");
        }
        Ok::<_, RpcError>(one())
    });
    let p = probe.clone();
    r.subscription("s.sleep", move |_c, params| {
        let (ms, probe) = (ms(params), p.clone());
        async move {
            sleep_observed(probe, ms?).await;
            Ok::<_, RpcError>(one())
        }
    });
    r.subscription("s.forever", |_c, _p| async {
        Ok::<_, RpcError>(futures_util::stream::pending::<Result<i32, RpcError>>())
    });
    // Calls the client's `cb.<ending>` and logs what the call ended with.
    r.method("relay", move |ctx, params| {
        let ending = params
            .decoder(&["ending"])
            .and_then(|mut p| p.next_param::<String>());
        let log = log.clone();
        async move {
            let ending = ending?;
            let peer = ctx.peer().clone();
            let quick = Duration::from_millis(300);
            let outcome = match ending.as_str() {
                "cancel" => {
                    // The caller gives up: its future is dropped mid-call.
                    let call = peer.call_with_timeout::<u64>(
                        "cb.sleep",
                        json!({"ms": 10_000}),
                        quick * 100,
                    );
                    match tokio::time::timeout(Duration::from_millis(100), call).await {
                        Ok(r) => describe(r),
                        Err(_) => "dropped".to_string(),
                    }
                }
                "timeout" => describe(
                    peer.call_with_timeout::<u64>("cb.sleep", json!({"ms": 10_000}), quick)
                        .await,
                ),
                "disconnect" => {
                    // A call made outside the handler (e.g. a push to a stored client):
                    // it outlives the handler, and ends when the connection does.
                    let log = log.clone();
                    tokio::spawn(async move {
                        let r = peer.call::<u64>("cb.sleep", json!({"ms": 10_000})).await;
                        log.lock().unwrap().push(describe(r));
                    });
                    return Ok("spawned".to_string());
                }
                "shutdown" => describe(peer.call::<u64>("cb.sleep", json!({"ms": 300})).await),
                "limit" => describe(
                    peer.call::<u64>("cb.answer", json!({"pad": "x".repeat(LIMIT)}))
                        .await,
                ),
                other => describe(peer.call::<u64>(&format!("cb.{other}"), json!({})).await),
            };
            log.lock().unwrap().push(outcome.clone());
            Ok::<_, RpcError>(outcome)
        }
    });
    r
}

fn describe(r: Result<u64, Error>) -> String {
    match r {
        Ok(v) => format!("ok:{v}"),
        Err(Error::Rpc(e)) => format!("rpc:{}", e.code),
        Err(Error::Timeout(_)) => "timeout".into(),
        Err(Error::Disconnected(_)) => "disconnected".into(),
        Err(Error::MessageTooLarge { .. }) => "too large".into(),
        Err(other) => format!("other:{other}"),
    }
}

/// The client's methods for `relay`, each ending one way.
fn client_router(probe: Arc<Probe>) -> Router {
    let mut r = Router::new();
    r.method("cb.answer", |_c, _p| async { Ok::<_, RpcError>(1) });
    r.method("cb.typed", |_c, _p| async { Err::<(), _>(typed()) });
    r.method("cb.panic", |_c, _p| async {
        if true {
            panic!("boom");
        }
        Ok::<_, RpcError>(())
    });
    r.method("cb.sleep", move |_c, params| {
        let (ms, probe) = (ms(params), probe.clone());
        async move { Ok::<_, RpcError>(sleep_observed(probe, ms?).await) }
    });
    r
}

struct Setup {
    server: ServerHandle,
    probe: Arc<Probe>,
    log: Arc<Mutex<Vec<String>>>,
}

async fn setup() -> Setup {
    let probe = Arc::new(Probe::default());
    let log = Arc::new(Mutex::new(Vec::new()));
    let server = Server::builder()
        .max_message_size(LIMIT)
        .max_subscriptions(1)
        .shutdown_timeout(Duration::from_secs(5))
        .bind("127.0.0.1:0", router(probe.clone(), log.clone()))
        .await
        .unwrap();
    Setup { server, probe, log }
}

fn request(method: &str, params: Value, id: u64) -> String {
    json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id}).to_string()
}

fn cancel(id: u64) -> String {
    json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": id}}).to_string()
}

/// The answer to `id` in `frame`, which must be a single response (`batch: false`) or an
/// array holding it once next to the answer of the companion call (`batch: true`).
fn answer_in(frame: &str, id: u64, batch: bool) -> Value {
    let v: Value = serde_json::from_str(frame).unwrap();
    if !batch {
        assert!(v.is_object(), "a single answer, got {frame}");
        assert_eq!(v["id"], id, "{frame}");
        return v;
    }
    let items = v
        .as_array()
        .unwrap_or_else(|| panic!("a batch array, got {frame}"));
    assert_eq!(items.len(), 2, "two answers, each id once: {frame}");
    let mine: Vec<&Value> = items.iter().filter(|a| a["id"] == id).collect();
    assert_eq!(mine.len(), 1, "{frame}");
    let companion = items
        .iter()
        .find(|a| a["id"] == 999)
        .expect("the companion's answer");
    assert_eq!(companion["result"], 1, "{frame}");
    mine[0].clone()
}

/// Sends `call` alone, or in a batch with a companion call (`answer`, id 999).
async fn send(ws: &mut RawWs, call: &str, batch: bool) {
    if batch {
        ws.send(&format!("[{call},{}]", request("answer", json!({}), 999)))
            .await;
    } else {
        ws.send(call).await;
    }
}

fn error_code(answer: &Value) -> i64 {
    answer["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("an error: {answer}"))
}

/// Endings decided by the handler alone, for single and batch arrivals.
#[tokio::test]
async fn handler_endings_single_and_batch() {
    let s = setup().await;
    let mut ws = RawWs::connect(&s.server.url()).await;
    for batch in [false, true] {
        for (method, check) in [
            (
                "answer",
                &(|a: &Value| assert_eq!(a["result"], 1)) as &dyn Fn(&Value),
            ),
            ("typed", &|a: &Value| {
                assert_eq!(
                    a["error"],
                    json!({"code":4001,"message":"Typed","data":{"why":"typed"}})
                )
            }),
            ("panic", &|a: &Value| {
                assert_eq!(
                    a["error"],
                    json!({"code":-32603,"message":"Internal error","data":"the handler panicked"})
                )
            }),
            ("big", &|a: &Value| {
                assert_eq!(error_code(a), -32603);
                assert!(a["error"]["data"]
                    .as_str()
                    .unwrap()
                    .contains("over the limit of 2000 bytes"));
            }),
        ] {
            send(&mut ws, &request(method, json!({}), 1), batch).await;
            let frame = ws.recv().await;
            check(&answer_in(&frame, 1, batch));
            ws.assert_no_answer_pending().await;
        }
    }
}

/// `$/cancelRequest` for a call in flight: alone, in a batch, and for a stream's setup.
#[tokio::test]
async fn cancel_single_batch_and_stream_setup() {
    let s = setup().await;
    let mut ws = RawWs::connect(&s.server.url()).await;
    let arrivals = [("sleep", false), ("sleep", true), ("s.sleep", false)];
    for (n, (method, batch)) in arrivals.into_iter().enumerate() {
        let started = n + 1;
        send(&mut ws, &request(method, json!({"ms": 10_000}), 7), batch).await;
        wait_for("the handler to start", || {
            s.probe.started.load(Ordering::SeqCst) == started
        })
        .await;
        ws.send(&cancel(7)).await;
        let frame = ws.recv().await;
        let answer = answer_in(&frame, 7, batch);
        assert_eq!(
            answer["error"],
            json!({"code":-32800,"message":"Request cancelled"})
        );
        wait_for("the handler to be dropped", || {
            s.probe.dropped.load(Ordering::SeqCst) == started
        })
        .await;
        ws.assert_no_answer_pending().await;
    }
}

/// Stream setup: answer (id, item, end), typed error, panic, subscription limit.
#[tokio::test]
async fn stream_setup_endings() {
    let s = setup().await;
    let mut ws = RawWs::connect(&s.server.url()).await;
    ws.send(&request("s.answer", json!({}), 1)).await;
    let answer: Value = serde_json::from_str(&ws.recv().await).unwrap();
    let sub = answer["result"].as_u64().expect("a subscription id");
    assert_eq!(
        serde_json::from_str::<Value>(&ws.recv().await).unwrap()["params"],
        json!({"subscription": sub, "result": 1})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&ws.recv().await).unwrap()["params"],
        json!({"subscription": sub, "error": null})
    );
    ws.assert_no_answer_pending().await;
    for (method, code) in [("s.typed", 4001), ("s.panic", -32603)] {
        ws.send(&request(method, json!({}), 2)).await;
        let answer = answer_in(&ws.recv().await, 2, false);
        assert_eq!(error_code(&answer), code, "{answer}");
        ws.assert_no_answer_pending().await;
    }
    // The limit (one subscription per connection here).
    ws.send(&request("s.forever", json!({}), 3)).await;
    assert!(answer_in(&ws.recv().await, 3, false)["result"].is_u64());
    ws.send(&request("s.forever", json!({}), 4)).await;
    assert_eq!(error_code(&answer_in(&ws.recv().await, 4, false)), -32005);
    ws.assert_no_answer_pending().await;
}

/// A timeout on the calling side: the call ends once (Timeout), the handler or setup is
/// dropped, and the late -32800 the server sends is not a second ending.
#[tokio::test]
async fn timeouts_single_and_stream_setup() {
    let s = setup().await;
    let client = Client::connect(&s.server.url()).await.unwrap();
    let quick = CallOptions::new(Some(Duration::from_millis(100)), false);
    let sleep = json!({"ms": 10_000});
    let err = Caller::request::<u64, NoAppError>(&client, "sleep", &sleep, quick)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    let err = Caller::subscribe_with::<u64, NoAppError>(&client, "s.sleep", &sleep, quick)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    wait_for("both handlers dropped", || {
        s.probe.dropped.load(Ordering::SeqCst) == 2
    })
    .await;
    assert_eq!(client.pending_calls(), 0);
    // The connection is healthy: nothing arrived twice, nothing is stuck.
    assert_eq!(client.call::<u64>("answer", json!({})).await.unwrap(), 1);
}

/// The connection drops while the call is in flight: handler (or setup) dropped, server fine.
#[tokio::test]
async fn disconnect_single_batch_and_stream_setup() {
    let s = setup().await;
    let arrivals = [("sleep", false), ("sleep", true), ("s.sleep", false)];
    for (n, (method, batch)) in arrivals.into_iter().enumerate() {
        let started = n + 1;
        let mut ws = RawWs::connect(&s.server.url()).await;
        send(&mut ws, &request(method, json!({"ms": 10_000}), 1), batch).await;
        wait_for("the handler to start", || {
            s.probe.started.load(Ordering::SeqCst) == started
        })
        .await;
        drop(ws);
        wait_for("the handler to be dropped", || {
            s.probe.dropped.load(Ordering::SeqCst) == started
        })
        .await;
    }
    let mut ws = RawWs::connect(&s.server.url()).await;
    ws.assert_no_answer_pending().await;
}

/// Graceful shutdown with a call in flight: it is answered (once), a request that comes
/// meanwhile gets -32001, then the connection closes 1001.
#[tokio::test]
async fn shutdown_single_batch_and_stream_setup() {
    for (method, batch) in [("sleep", false), ("sleep", true), ("s.sleep", false)] {
        let s = setup().await;
        let mut ws = RawWs::connect(&s.server.url()).await;
        send(&mut ws, &request(method, json!({"ms": 300}), 1), batch).await;
        wait_for("the handler to start", || {
            s.probe.started.load(Ordering::SeqCst) == 1
        })
        .await;
        let server = s.server.clone();
        let shutdown = tokio::spawn(async move { server.shutdown().await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        ws.send(&request("answer", json!({}), 2)).await;
        let mut frames = Vec::new();
        let close = loop {
            match ws.next_text().await {
                Ok(frame) => frames.push(frame),
                Err(end) => break end,
            }
        };
        assert_eq!(
            close,
            Ended::Close(Some((1001, "server shutting down".into()))),
            "{frames:?}"
        );
        let refused: Vec<&String> = frames.iter().filter(|f| f.contains(r#""id":2"#)).collect();
        assert_eq!(refused.len(), 1, "{frames:?}");
        assert!(refused[0].contains("-32001"), "{frames:?}");
        let answered: Vec<Value> = frames
            .iter()
            .filter(|f| !f.contains(r#""id":2"#) && !f.contains("subscription"))
            .map(|f| answer_in(f, 1, batch))
            .collect();
        assert_eq!(answered.len(), 1, "answered once: {frames:?}");
        if method == "sleep" {
            assert_eq!(answered[0]["result"], 300);
        } else {
            assert!(answered[0]["result"].is_u64(), "a subscription id");
        }
        shutdown.await.unwrap();
        assert_eq!(
            s.probe.dropped.load(Ordering::SeqCst),
            0,
            "nothing was cut short"
        );
    }
}

/// Server→client calls: each ending, as the server-side caller sees it, exactly once.
#[tokio::test]
async fn server_to_client_endings() {
    let s = setup().await;
    let client_probe = Arc::new(Probe::default());
    let client = Client::builder()
        .router(client_router(client_probe.clone()))
        .connect(&s.server.url())
        .await
        .unwrap();
    for (ending, expected) in [
        ("answer", "ok:1"),
        ("typed", "rpc:4001"),
        ("panic", "rpc:-32603"),
        ("timeout", "timeout"),
        ("cancel", "dropped"),
        ("limit", "too large"),
    ] {
        let got: String = client
            .call("relay", json!({"ending": ending}))
            .await
            .unwrap();
        assert_eq!(got, expected, "{ending}");
    }
    // Timeout and cancel stopped the client's handlers.
    wait_for("the client's handlers to be dropped", || {
        client_probe.dropped.load(Ordering::SeqCst) == 2
    })
    .await;
    assert_eq!(s.log.lock().unwrap().len(), 6, "one outcome per call");

    // Disconnect: the client goes away while the server's call waits.
    let spawned: String = client
        .call("relay", json!({"ending": "disconnect"}))
        .await
        .unwrap();
    assert_eq!(spawned, "spawned");
    wait_for("the client's handler to start", || {
        client_probe.started.load(Ordering::SeqCst) == 3
    })
    .await;
    client.close().await;
    wait_for("the server-side call to end", || {
        s.log.lock().unwrap().len() == 7
    })
    .await;
    assert_eq!(s.log.lock().unwrap()[6], "disconnected");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.log.lock().unwrap().len(), 7, "it ended once");

    // Shutdown: the server's call to the client is still answered while draining.
    let client = Client::builder()
        .router(client_router(client_probe.clone()))
        .reconnect(wirecall::client::Reconnect::disabled())
        .connect(&s.server.url())
        .await
        .unwrap();
    let relay = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .call::<String>("relay", json!({"ending": "shutdown"}))
                .await
        })
    };
    wait_for("the client's handler to start", || {
        client_probe.started.load(Ordering::SeqCst) == 4
    })
    .await;
    s.server.shutdown().await;
    assert_eq!(relay.await.unwrap().unwrap(), "ok:300");
    assert_eq!(s.log.lock().unwrap().len(), 8);
}
