//! The calculator mounted in an axum application (the `web` example): its own routes beside
//! `/rpc`, and every door of `/rpc` — WebSocket, POST, server-sent events.

use std::net::SocketAddr;

use wirecall::Client;
use wirecall_examples::calculator::CalculatorClient;
use wirecall_examples::CalcServer;
use wirecall_tests::http::{get, Events, HttpConn};
use wirecall_tests::RawWs;

async fn web() -> (SocketAddr, CalcServer) {
    let calc = CalcServer::default();
    let (app, _rpc) = wirecall_examples::web::app(calc.clone(), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, calc)
}

#[tokio::test]
async fn the_application_keeps_its_own_routes() {
    let (addr, _) = web().await;
    assert_eq!(
        get(addr, "/health").await,
        (200, "text/plain; charset=utf-8".into(), "ok\n".into())
    );
    let (status, content_type, page) = get(addr, "/").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"));
    assert!(page.contains("wirecall calculator"));
    let (status, content_type, _) = get(addr, "/dist/gen/wirecall.js").await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/javascript; charset=utf-8")
    );
    assert_eq!(get(addr, "/nothing").await.0, 404);
    // `/rpc` without an upgrade says how to use it.
    let (status, _, body) = get(addr, "/rpc").await;
    assert_eq!(status, 426, "{body}");
}

#[tokio::test]
async fn every_door_of_rpc() {
    let (addr, calc) = web().await;
    // WebSocket: a raw client and the generated one.
    let mut ws = RawWs::connect(&format!("ws://{addr}/rpc")).await;
    assert_eq!(
        ws.roundtrip(r#"{"jsonrpc":"2.0","method":"Calculator.add","params":[1,2],"id":1}"#)
            .await,
        r#"{"jsonrpc":"2.0","result":3,"id":1}"#
    );
    let client = CalculatorClient::new(Client::connect(&format!("ws://{addr}/rpc")).await.unwrap());
    assert_eq!(client.subtract(5, 3).await.unwrap(), 2);
    let mut ticks = client.ticks(2, 1).await.unwrap();
    assert_eq!(ticks.next().await.unwrap().unwrap(), 0);
    // POST, and server-sent events, at /rpc.
    let mut http = HttpConn::connect(addr).await.at("/rpc");
    let answer = http
        .post(r#"{"jsonrpc":"2.0","method":"Calculator.echo","params":["hi"],"id":2}"#)
        .await;
    assert_eq!(answer.body, r#"{"jsonrpc":"2.0","result":"hi","id":2}"#);
    let resp = http
        .start(
            "POST",
            &[
                ("content-type", "application/json"),
                ("accept", "text/event-stream"),
            ],
            r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":[2,1],"id":3}"#,
        )
        .await;
    let mut events = Events::new(resp);
    let mut n = 0;
    while events.next().await.is_some() {
        n += 1;
    }
    assert_eq!(n, 4, "answer, two items, end");
    // The Rust client over http:// at the mounted path.
    let over_http = CalculatorClient::new(
        Client::connect(&format!("http://{addr}/rpc"))
            .await
            .unwrap(),
    );
    assert_eq!(over_http.add(20, 22).await.unwrap(), 42);
    let mut events = over_http.ticks(3, 1).await.unwrap();
    let mut got = Vec::new();
    while let Some(tick) = events.next().await {
        got.push(tick.unwrap());
    }
    assert_eq!(got, vec![0, 1, 2]);
    drop(ticks);
    wirecall_tests::wait_for("streams to stop", || calc.active_ticks() == 0).await;
}
