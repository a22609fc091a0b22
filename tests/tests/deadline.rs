//! Deadlines (`"$timeout"`): the server stops a handler when its caller's time is up and
//! answers -32004 by itself (raw clients that never send `$/cancelRequest` included); the
//! handler reads it as `ctx.deadline()`; a POST may give it as the `Wirecall-Timeout`
//! header, a WAMP caller as the CALL option `timeout`; the Rust client sends its per-call
//! timeout; calls a handler makes through a wirecall client inherit what is left, so a
//! chain of three servers stops everywhere at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wirecall::raw::Router;
use wirecall::server::ServerHandle;
use wirecall::{Client, Context, Error, RpcError, Server};
use wirecall_examples::calculator::Calculator;
use wirecall_examples::CalcServer;
use wirecall_tests::http::HttpConn;
use wirecall_tests::{wait_for, RawWs};

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// What is left of the call's deadline, in ms (`null` without one).
fn remaining(ctx: &Context) -> Option<u64> {
    ctx.deadline()
        .map(|d| d.saturating_duration_since(Instant::now()).as_millis() as u64)
}

/// The calculator, plus `T.deadline` (answers what is left of its deadline).
async fn server() -> (ServerHandle, CalcServer) {
    let calc = CalcServer::default();
    let mut router = calc.clone().into_router();
    router.method("T.deadline", |ctx, _params| async move {
        Ok::<_, RpcError>(remaining(&ctx))
    });
    let server = Server::bind("127.0.0.1:0", router).await.unwrap();
    (server, calc)
}

#[tokio::test]
async fn the_server_ends_a_call_at_its_timeout_and_stops_the_handler() {
    let (server, calc) = server().await;
    let mut ws = RawWs::connect(&server.url()).await;
    // A raw client that never cancels: the server answers by itself.
    let answer = parse(
        &ws.roundtrip(
            r#"{"jsonrpc":"2.0","method":"Calculator.sleep","params":{"ms":20000},"id":1,"$timeout":200}"#,
        )
        .await,
    );
    assert_eq!(answer["error"]["code"], -32004, "{answer}");
    assert_eq!(answer["id"], 1);
    wait_for("the handler to be stopped", || calc.sleeps().cancelled == 1).await;
    assert_eq!(calc.sleeps().finished, 0);

    // The handler sees it; without one it has none.
    let answer = parse(
        &ws.roundtrip(r#"{"jsonrpc":"2.0","method":"T.deadline","id":2,"$timeout":5000}"#)
            .await,
    );
    let left = answer["result"].as_u64().expect("a deadline");
    assert!(left > 0 && left <= 5000, "{answer}");
    let answer = parse(
        &ws.roundtrip(r#"{"jsonrpc":"2.0","method":"T.deadline","id":3}"#)
            .await,
    );
    assert_eq!(answer["result"], Value::Null);
    // A call that ends in time is answered as usual.
    let answer = parse(
        &ws.roundtrip(
            r#"{"jsonrpc":"2.0","method":"Calculator.add","params":[1,2],"id":4,"$timeout":5000}"#,
        )
        .await,
    );
    assert_eq!(answer["result"], 3);

    // Not a whole number of milliseconds: an invalid request that says why.
    for bad in [
        r#""200""#,
        "-1",
        "1.5",
        "null",
        "1e3",
        "18446744073709551616",
    ] {
        let frame = format!(
            r#"{{"jsonrpc":"2.0","method":"Calculator.add","params":[1,2],"id":5,"$timeout":{bad}}}"#
        );
        let answer = parse(&ws.roundtrip(&frame).await);
        assert_eq!(answer["error"]["code"], -32600, "{bad}: {answer}");
        assert_eq!(answer["id"], 5);
        let reason = answer["error"]["data"]["reason"]
            .as_str()
            .unwrap_or_default();
        assert!(reason.contains("$timeout"), "{bad}: {answer}");
    }
    // Other invalid requests carry no reason (as before).
    let answer = parse(
        &ws.roundtrip(r#"{"jsonrpc":"2.0","method":"Calculator.add","params":1,"id":6}"#)
            .await,
    );
    assert_eq!(
        answer["error"],
        json!({"code": -32600, "message": "Invalid Request"})
    );
}

#[tokio::test]
async fn a_post_takes_the_deadline_as_a_header() {
    let (server, calc) = server().await;
    let mut conn = HttpConn::connect(server.local_addr()).await;
    let body = r#"{"jsonrpc":"2.0","method":"Calculator.sleep","params":{"ms":20000},"id":1}"#;
    let headers = [
        ("content-type", "application/json"),
        ("wirecall-timeout", "200"),
    ];
    let a = conn.send("POST", &headers, body).await;
    assert_eq!(a.status, 200);
    assert_eq!(parse(&a.body)["error"]["code"], -32004, "{}", a.body);
    wait_for("the handler to be stopped", || calc.sleeps().cancelled == 1).await;
    // The member wins over the header.
    let body = r#"{"jsonrpc":"2.0","method":"T.deadline","id":2,"$timeout":60000}"#;
    let a = conn.send("POST", &headers, body).await;
    assert!(
        parse(&a.body)["result"].as_u64().unwrap() > 1000,
        "{}",
        a.body
    );
    let bad = [
        ("content-type", "application/json"),
        ("wirecall-timeout", "soon"),
    ];
    let a = conn.send("POST", &bad, body).await;
    assert_eq!(a.status, 400);
    assert!(a.body.contains("Wirecall-Timeout"), "{}", a.body);
}

#[tokio::test]
async fn the_rust_client_sends_its_timeout_and_wamp_its_timeout_option() {
    let (server, _calc) = server().await;
    let client = Client::connect(&server.url()).await.unwrap();
    let left: Option<u64> = client
        .call_with_timeout("T.deadline", json!({}), Duration::from_millis(1500))
        .await
        .unwrap();
    let left = left.expect("the client sent $timeout");
    assert!(left > 0 && left <= 1500, "{left}");
    let left: Option<u64> = client.call("T.deadline", json!({})).await.unwrap();
    assert!(
        left.unwrap() > 1500,
        "the default call timeout (30 s): {left:?}"
    );

    let (mut ws, _) =
        RawWs::connect_with(&server.url(), &[("sec-websocket-protocol", "wamp.2.json")])
            .await
            .unwrap();
    ws.send(r#"[1,"realm1",{"roles":{"caller":{}}}]"#).await;
    assert_eq!(parse(&ws.recv().await)[0], 2);
    let result = parse(
        &ws.roundtrip(r#"[48,1,{"timeout":4000},"T.deadline",[]]"#)
            .await,
    );
    let left = result[3][0].as_u64().expect("a deadline");
    assert!(left > 0 && left <= 4000, "{result}");
    let result = parse(&ws.roundtrip(r#"[48,2,{},"T.deadline",[]]"#).await);
    assert_eq!(result[3][0], Value::Null, "{result}");
}

/// What the last server of the chain saw.
#[derive(Default)]
struct Last {
    /// What was left of its deadline when its handler started (ms).
    left: AtomicU64,
    started: AtomicBool,
    stopped: AtomicBool,
}

struct Stopped(Arc<Last>);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::SeqCst);
    }
}

/// A server whose `relay` calls `relay` on `next` through a wirecall client with the
/// default timeout (30 s).
async fn relay_to(next: &ServerHandle) -> ServerHandle {
    let client = Client::connect(&next.url()).await.unwrap();
    let mut router = Router::new();
    router.method("relay", move |_ctx, _params| {
        let client = client.clone();
        async move {
            let out: u64 = client
                .call("relay", json!({}))
                .await
                .map_err(|e| RpcError::internal(format!("the next server: {e}")))?;
            Ok::<_, RpcError>(out)
        }
    });
    Server::bind("127.0.0.1:0", router).await.unwrap()
}

#[tokio::test]
async fn a_chain_of_three_servers_stops_everywhere_at_once() {
    let last = Arc::new(Last::default());
    let seen = last.clone();
    let mut router = Router::new();
    router.method("relay", move |ctx, _params| {
        let seen = seen.clone();
        async move {
            seen.left
                .store(remaining(&ctx).unwrap_or(u64::MAX), Ordering::SeqCst);
            seen.started.store(true, Ordering::SeqCst);
            let _stopped = Stopped(seen);
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, RpcError>(1u64)
        }
    });
    let c = Server::bind("127.0.0.1:0", router).await.unwrap();
    let b = relay_to(&c).await;
    let a = relay_to(&b).await;

    let client = Client::connect(&a.url()).await.unwrap();
    let started = Instant::now();
    let err = client
        .call_with_timeout::<u64>("relay", json!({}), Duration::from_millis(800))
        .await
        .unwrap_err();
    // However it ends (the client's own timeout; or, as every end runs out at about the
    // same moment, the deadline error or an inherited timeout coming back up the chain),
    // it ends within its time.
    assert!(
        matches!(err, Error::Timeout(_))
            || err.to_string().contains("-32004")
            || err.to_string().contains("no answer within"),
        "{err}"
    );
    // (C's handler sleeps a minute; a generous margin for a loaded machine.)
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    wait_for("the last server's handler to start", || {
        last.started.load(Ordering::SeqCst)
    })
    .await;
    // The budget travelled: C got what was left of 800 ms, not B's client's 30 s.
    let left = last.left.load(Ordering::SeqCst);
    assert!(left <= 800, "C's handler had {left} ms");
    wait_for("the last server's handler to be stopped", || {
        last.stopped.load(Ordering::SeqCst)
    })
    .await;
}
