//! The HTTP doors on the server's port: JSON-RPC over POST (every status code of
//! docs/PROTOCOL.md), server-sent events for streams, CORS, keep-alive; answers
//! byte-identical to the WebSocket's.

use std::time::Duration;

use wirecall::http::StatusCode;
use wirecall::{Refusal, Server, ServerHandle};
use wirecall_examples::calculator::Calculator;
use wirecall_examples::CalcServer;
use wirecall_tests::http::{post, Events, HttpConn};
use wirecall_tests::{wait_for, RawWs};

async fn calculator() -> (ServerHandle, CalcServer) {
    let calc = CalcServer::default();
    let server = Server::bind("127.0.0.1:0", calc.clone().into_router())
        .await
        .unwrap();
    (server, calc)
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn post_answers_exactly_what_the_websocket_answers() {
    let (server, _) = calculator().await;
    let mut ws = RawWs::connect(&server.url()).await;
    let mut http = HttpConn::connect(server.local_addr()).await;
    // One keep-alive connection for every request.
    for request in [
        r#"{"jsonrpc":"2.0","method":"Calculator.add","params":[1,2],"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"Calculator.add","params":{"a":1,"b":2},"id":"x"}"#,
        r#"{"jsonrpc":"2.0","method":"Calculator.add","params":{"a":1},"id":1152921504606846976}"#,
        r#"{"jsonrpc":"2.0","method":"Calculator.add","params":{"a":1,"b":"two"},"id":null}"#,
        r#"{"jsonrpc":"2.0","method":"Calculator.divide","params":[1,0],"id":-1}"#,
        r#"{"jsonrpc":"2.0","method":"Calculator.nope","id":0}"#,
        r#"{"jsonrpc":"2.0","method":1,"id":2}"#,
        r#"[1]"#,
        r#"[]"#,
        r#"{"jsonrpc":"2.0","method":"Calculator.echo","params":{"text":"é \" \\ ✓"},"id":3}"#,
    ] {
        let over_ws = ws.roundtrip(request).await;
        let over_http = http.post(request).await;
        assert_eq!(over_http.status, 200, "{request}");
        assert_eq!(over_http.header("content-type"), "application/json");
        assert_eq!(over_http.body, over_ws, "{request}");
    }
    // The typed error, as the IDL says.
    let divide = http
        .post(r#"{"jsonrpc":"2.0","method":"Calculator.divide","params":[1,0],"id":7}"#)
        .await;
    assert_eq!(
        divide.body,
        r#"{"jsonrpc":"2.0","error":{"code":1001,"message":"DivideByZero"},"id":7}"#
    );
}

#[tokio::test]
async fn batches_and_notifications() {
    let (server, calc) = calculator().await;
    let mut http = HttpConn::connect(server.local_addr()).await;
    let batch = http
        .post(
            r#"[{"jsonrpc":"2.0","method":"Calculator.add","params":[1,2],"id":1},
                {"jsonrpc":"2.0","method":"Calculator.log","params":["hi"]},
                {"jsonrpc":"2.0","method":"Calculator.sleep","params":[20],"id":2}]"#,
        )
        .await;
    assert_eq!(batch.status, 200);
    let mut answers: Vec<serde_json::Value> = serde_json::from_str(&batch.body).unwrap();
    answers.sort_by_key(|a| a["id"].as_i64());
    assert_eq!(
        answers,
        vec![
            serde_json::json!({"jsonrpc":"2.0","result":3,"id":1}),
            serde_json::json!({"jsonrpc":"2.0","result":20,"id":2}),
        ]
    );
    // Notifications only: 204 and no body.
    let note = http
        .post(r#"{"jsonrpc":"2.0","method":"Calculator.log","params":["note"]}"#)
        .await;
    assert_eq!((note.status, note.body.as_str()), (204, ""));
    let notes = http
        .post(
            r#"[{"jsonrpc":"2.0","method":"Calculator.log","params":["a"]},
                {"jsonrpc":"2.0","method":"Calculator.log","params":["b"]}]"#,
        )
        .await;
    assert_eq!((notes.status, notes.body.as_str()), (204, ""));
    wait_for("the notifications to run", || {
        calc.last_message().as_deref() == Some("b")
    })
    .await;
}

#[tokio::test]
async fn every_status_code() {
    let server = Server::builder()
        .max_message_size(1000)
        .bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let addr = server.local_addr();
    let mut http = HttpConn::connect(addr).await;

    let malformed = http.post(r#"{"jsonrpc":"2.0","method""#).await;
    assert_eq!(malformed.status, 400);
    assert_eq!(
        malformed.body,
        r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}"#
    );

    // Declared too large: refused before the body is read.
    let big = format!(
        r#"{{"jsonrpc":"2.0","method":"Calculator.echo","params":["{}"],"id":1}}"#,
        "x".repeat(2000)
    );
    let too_large = http.post(&big).await;
    assert_eq!(too_large.status, 413);
    assert!(
        too_large.body.contains("over the limit of 1000 bytes"),
        "{}",
        too_large.body
    );
    // Streamed (chunked, no length): cut off at the limit.
    let chunked = chunked_post(addr, &big).await;
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");

    let mut http = HttpConn::connect(addr).await;
    let charset = http
        .send(
            "POST",
            &[("content-type", "application/json; charset=utf-8")],
            r#"{"jsonrpc":"2.0","method":"Calculator.add","params":[2,2],"id":1}"#,
        )
        .await;
    assert_eq!(charset.status, 200);
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let wrong = http
            .send("POST", &[("content-type", content_type)], "{}")
            .await;
        assert_eq!(wrong.status, 415, "{content_type}");
    }
    let none = http.send("POST", &[], "{}").await;
    assert_eq!(none.status, 415);

    for method in ["PUT", "DELETE", "PATCH"] {
        let other = http.send(method, &[JSON], "{}").await;
        assert_eq!(other.status, 405, "{method}");
        assert_eq!(other.header("allow"), "GET, POST, OPTIONS");
    }

    let get = http.send("GET", &[], "").await;
    assert_eq!(get.status, 426);
    assert!(
        get.body.contains("WebSocket") && get.body.contains("POST"),
        "{}",
        get.body
    );
    assert_eq!(get.body.lines().count(), 1);

    // The connection served all of that and still works.
    let ok = http
        .post(r#"{"jsonrpc":"2.0","method":"Calculator.add","params":[2,3],"id":1}"#)
        .await;
    assert_eq!(ok.body, r#"{"jsonrpc":"2.0","result":5,"id":1}"#);
}

/// A POST whose body comes in chunks with no declared length; returns the raw answer.
async fn chunked_post(addr: std::net::SocketAddr, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = String::from(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
    );
    for chunk in body.as_bytes().chunks(300) {
        req.push_str(&format!(
            "{:x}\r\n{}\r\n",
            chunk.len(),
            std::str::from_utf8(chunk).unwrap()
        ));
    }
    req.push_str("0\r\n\r\n");
    // The server may answer (and close) before it has read everything.
    let _ = tcp.write_all(req.as_bytes()).await;
    let mut out = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out[..n]).into_owned()
}

#[tokio::test]
async fn origin_rule_and_cors() {
    let server = Server::builder()
        .allow_origin("https://app.example")
        .bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let mut http = HttpConn::connect(server.local_addr()).await;
    let call = r#"{"jsonrpc":"2.0","method":"Calculator.add","params":[1,1],"id":1}"#;

    let preflight = http
        .send(
            "OPTIONS",
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "content-type, authorization",
                ),
            ],
            "",
        )
        .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        "https://app.example"
    );
    assert!(preflight
        .header("access-control-allow-methods")
        .contains("POST"));
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        "content-type, authorization"
    );

    let allowed = http
        .send("POST", &[JSON, ("origin", "https://app.example")], call)
        .await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        "https://app.example"
    );

    let refused = http
        .send("POST", &[JSON, ("origin", "https://evil.example")], call)
        .await;
    assert_eq!(refused.status, 403);
    let refused_preflight = http
        .send("OPTIONS", &[("origin", "https://evil.example")], "")
        .await;
    assert_eq!(refused_preflight.status, 403);

    // No Origin (not a browser): served, without CORS headers.
    let plain = http.send("POST", &[JSON], call).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("access-control-allow-origin"), "");
}

#[tokio::test]
async fn the_handshake_hook_sees_posts_too() {
    let server = Server::builder()
        .on_handshake(|req, ext| match req.headers().get("authorization") {
            Some(v) if v == "Bearer good" => {
                ext.insert("ada".to_string());
                Ok(())
            }
            Some(_) => Err(Refusal::new(StatusCode::FORBIDDEN, "wrong token")),
            None => Err(Refusal::new(StatusCode::UNAUTHORIZED, "token required")),
        })
        .bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let mut http = HttpConn::connect(server.local_addr()).await;
    let call = r#"{"jsonrpc":"2.0","method":"Calculator.add","params":[1,1],"id":1}"#;
    let none = http.send("POST", &[JSON], call).await;
    assert_eq!((none.status, none.body.as_str()), (401, "token required"));
    let wrong = http
        .send("POST", &[JSON, ("authorization", "Bearer bad")], call)
        .await;
    assert_eq!(wrong.status, 403);
    let good = http
        .send("POST", &[JSON, ("authorization", "Bearer good")], call)
        .await;
    assert_eq!(good.status, 200);
}

#[tokio::test]
async fn a_stream_over_server_sent_events() {
    let (server, calc) = calculator().await;
    let mut http = HttpConn::connect(server.local_addr()).await;
    let resp = http
        .start(
            "POST",
            &[JSON, ("accept", "text/event-stream")],
            r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"count":3,"every_ms":5},"id":"t"}"#,
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut events = Events::new(resp);
    assert_eq!(
        events.next().await.unwrap(),
        r#"{"jsonrpc":"2.0","result":1,"id":"t"}"#
    );
    for i in 0..3 {
        assert_eq!(
            events.next().await.unwrap(),
            format!(
                r#"{{"jsonrpc":"2.0","method":"Calculator.ticks","params":{{"subscription":1,"result":{i}}}}}"#
            )
        );
    }
    assert_eq!(
        events.next().await.unwrap(),
        r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"subscription":1,"error":null}}"#
    );
    assert_eq!(
        events.next().await,
        None,
        "the response ends with the stream"
    );
    assert_eq!(calc.active_ticks(), 0);

    // A failed subscribe call is one event, then the end.
    let resp = http
        .start(
            "POST",
            &[JSON, ("accept", "text/event-stream")],
            r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"count":"x"},"id":2}"#,
        )
        .await;
    let mut events = Events::new(resp);
    let answer = events.next().await.unwrap();
    assert!(answer.contains(r#""code":-32602"#), "{answer}");
    assert_eq!(events.next().await, None);

    // The connection carries on with plain calls.
    let ok = http
        .post(r#"{"jsonrpc":"2.0","method":"Calculator.add","params":[2,3],"id":1}"#)
        .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn closing_the_event_stream_stops_the_producer() {
    let (server, calc) = calculator().await;
    let mut http = HttpConn::connect(server.local_addr()).await;
    let resp = http
        .start(
            "POST",
            &[JSON, ("accept", "text/event-stream")],
            r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"count":1000000,"every_ms":10},"id":1}"#,
        )
        .await;
    let mut events = Events::new(resp);
    events.next().await.unwrap();
    events.next().await.unwrap();
    assert_eq!(calc.active_ticks(), 1);
    drop(events);
    drop(http);
    wait_for("the producer to be dropped", || calc.active_ticks() == 0).await;
}

#[tokio::test]
async fn streams_need_event_stream_and_callbacks_need_a_websocket() {
    let (server, calc) = calculator().await;
    let addr = server.local_addr();
    let stream = post(
        addr,
        r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":[3,10],"id":1}"#,
    )
    .await;
    assert_eq!(stream.status, 200);
    let answer: serde_json::Value = serde_json::from_str(&stream.body).unwrap();
    assert_eq!(answer["error"]["code"], -32600);
    assert!(
        answer["error"]["data"]
            .as_str()
            .unwrap()
            .contains("Accept: text/event-stream"),
        "{answer}"
    );
    assert_eq!(calc.active_ticks(), 0, "nothing was started");

    // `ask` calls the client back: over HTTP that fails at once, saying why.
    let ask = post(
        addr,
        r#"{"jsonrpc":"2.0","method":"Calculator.ask","params":["ok?"],"id":1}"#,
    )
    .await;
    let answer: serde_json::Value = serde_json::from_str(&ask.body).unwrap();
    assert_eq!(answer["error"]["code"], -32603);
    assert!(
        answer["error"]["data"]
            .as_str()
            .unwrap()
            .contains("need a WebSocket"),
        "{answer}"
    );
}

#[tokio::test]
async fn curl_calls_over_http() {
    let Ok(version) = std::process::Command::new("curl").arg("--version").output() else {
        eprintln!("SKIPPED: curl is not installed");
        return;
    };
    assert!(version.status.success());
    let (server, _) = calculator().await;
    let url = server.http_url();
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "-d"])
        .arg(r#"{"jsonrpc":"2.0","method":"Calculator.add","params":[1,2],"id":1}"#)
        .args(["-H", "content-type: application/json", &url])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        r#"{"jsonrpc":"2.0","result":3,"id":1}"#
    );
    // A stream with -N (no buffering): the events, then curl exits as the response ends.
    let out = tokio::process::Command::new("curl")
        .args([
            "-sSN",
            "-H",
            "accept: text/event-stream",
            "-H",
            "content-type: application/json",
            "-d",
        ])
        .arg(r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":[2,1],"id":1}"#)
        .arg(&url)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("data: ").count(), 4, "{text}");
}
