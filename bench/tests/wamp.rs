//! The WAMP load generator against wirecall's benchmark server, in process: a short run
//! must make calls and see no errors (no timing is asserted), and a serializer the server
//! does not speak must fail at the handshake with a clear error instead of hanging.

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
