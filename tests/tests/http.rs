//! The HTTP doors on the server's port: JSON-RPC over POST (every status code of
//! docs/PROTOCOL.md), server-sent events for streams, CORS, keep-alive; answers
//! byte-identical to the WebSocket's.

use std::time::Duration;

use wirecall::server::http::StatusCode;
use wirecall::{auth::Refusal, server::ServerHandle, Server};
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
    // Subscription ids of event streams are unique in the server process.
    let answer: serde_json::Value = serde_json::from_str(&events.next().await.unwrap()).unwrap();
    let sub = answer["result"].as_u64().expect("a subscription id");
    assert_eq!(
        serde_json::to_string(&answer).unwrap(),
        format!(r#"{{"id":"t","jsonrpc":"2.0","result":{sub}}}"#)
    );
    for i in 0..3 {
        assert_eq!(
            events.next().await.unwrap(),
            format!(
                r#"{{"jsonrpc":"2.0","method":"Calculator.ticks","params":{{"subscription":{sub},"result":{i}}}}}"#
            )
        );
    }
    assert_eq!(
        events.next().await.unwrap(),
        format!(
            r#"{{"jsonrpc":"2.0","method":"Calculator.ticks","params":{{"subscription":{sub},"error":null}}}}"#
        )
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
    assert_eq!(answer["error"]["code"], -32007, "{answer}");
    assert_eq!(answer["error"]["message"], "Call to the peer failed");
    assert_eq!(
        answer["error"]["data"]["reason"], "no_connection",
        "{answer}"
    );
    assert!(
        answer["error"]["data"]["message"]
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

mod rust_client_over_http {
    use super::*;
    use wirecall::{client::ConnectError, Client, Error};
    use wirecall_examples::calculator::{CalcError, CalculatorClient};

    async fn client() -> (CalculatorClient, CalcServer, ServerHandle) {
        let (server, calc) = calculator().await;
        let client = Client::connect(&server.http_url()).await.unwrap();
        (CalculatorClient::new(client), calc, server)
    }

    #[tokio::test]
    async fn the_generated_client_works_unchanged() {
        let (calc, state, _server) = client().await;
        assert_eq!(calc.add(1, 2).await.unwrap(), 3);
        assert!(matches!(
            calc.divide(1.0, 0.0).await,
            Err(Error::App(CalcError::DivideByZero))
        ));
        calc.log("over http".into()).await.unwrap();
        wait_for("the notification", || {
            state.last_message().as_deref() == Some("over http")
        })
        .await;
        // Concurrent calls each get their own answer.
        let calls: Vec<_> = (0..20).map(|i| calc.add(i, i)).collect();
        let sums = futures_util::future::join_all(calls).await;
        for (i, sum) in sums.into_iter().enumerate() {
            assert_eq!(sum.unwrap(), 2 * i as i64);
        }
    }

    #[tokio::test]
    async fn streams_come_as_events_and_stop_when_dropped() {
        let (calc, state, _server) = client().await;
        let mut ticks = calc.ticks(3, 1).await.unwrap();
        let mut got = Vec::new();
        while let Some(item) = ticks.next().await {
            got.push(item.unwrap());
        }
        assert_eq!(got, vec![0, 1, 2]);
        // Two at once, then one dropped half-way: its producer stops, the other goes on.
        let mut a = calc.ticks(1_000_000, 5).await.unwrap();
        let mut b = calc.ticks(5, 5).await.unwrap();
        assert_eq!(a.next().await.unwrap().unwrap(), 0);
        assert_eq!(state.active_ticks(), 2);
        drop(a);
        wait_for("the dropped stream's producer to stop", || {
            state.active_ticks() <= 1
        })
        .await;
        let mut rest = Vec::new();
        while let Some(item) = b.next().await {
            rest.push(item.unwrap());
        }
        assert_eq!(rest, vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_timeout_stops_the_handler_on_the_server() {
        let (calc, state, _server) = client().await;
        let err = calc
            .with_timeout(Duration::from_millis(100))
            .sleep(10_000)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout(_)), "{err}");
        wait_for("the handler to be dropped", || {
            state.sleeps().cancelled == 1
        })
        .await;
    }

    #[tokio::test]
    async fn what_http_cannot_do_is_said_clearly() {
        let (calc, _state, server) = client().await;
        // The server calls the client back in `ask`: not over HTTP.
        let err = calc.ask("ok?".into()).await.unwrap_err();
        assert!(err.to_string().contains("need a WebSocket"), "{err}");
        // A client that serves methods cannot use http://.
        let mut router = wirecall::raw::Router::new();
        router.method("x", |_ctx, _p| async { Ok::<_, wirecall::RpcError>(()) });
        let refused = Client::builder()
            .router(router)
            .connect(&server.http_url())
            .await
            .unwrap_err();
        assert!(
            matches!(refused, ConnectError::Unsupported { .. }),
            "{refused}"
        );
        // Nobody listening: connecting fails, at once, as for ws:// (the client checks
        // that the server is there, so that `connect_any` can move on).
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let started = std::time::Instant::now();
        let err = Client::connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectError::Unreachable { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // A server that goes away after the connect: without reconnects, the call fails
        // with the HTTP error, at once.
        let gone = Server::bind("127.0.0.1:0", CalcServer::default().into_router())
            .await
            .unwrap();
        let client = Client::builder()
            .reconnect(wirecall::client::Reconnect::disabled())
            .connect(&gone.http_url())
            .await
            .unwrap();
        gone.shutdown().await;
        drop(gone);
        let started = std::time::Instant::now();
        let err = client
            .call::<i64>("Calculator.add", [1, 2])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Http { status: None, .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // An HTTP error status (here 415 from a server that refuses the call's origin is
        // hard to make; a refused hook is the same path).
        let guarded = Server::builder()
            .on_handshake(|_req, _ext| {
                Err(Refusal::new(StatusCode::UNAUTHORIZED, "token required"))
            })
            .bind("127.0.0.1:0", CalcServer::default().into_router())
            .await
            .unwrap();
        let client = Client::connect(&guarded.http_url()).await.unwrap();
        let err = client
            .call::<i64>("Calculator.add", [1, 2])
            .await
            .unwrap_err();
        match err {
            Error::Http {
                status: Some(401),
                message,
            } => {
                assert!(message.contains("token required"), "{message}")
            }
            other => panic!("expected HTTP 401, got {other}"),
        }
    }
}

#[tokio::test]
async fn a_quiet_event_stream_gets_keep_alive_comments() {
    use http_body_util::BodyExt;
    let server = Server::builder()
        .ping(Some(Duration::from_millis(50)), 2)
        .bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let mut http = HttpConn::connect(server.local_addr()).await;
    let resp = http
        .start(
            "POST",
            &[JSON, ("accept", "text/event-stream")],
            r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":[2,400],"id":1}"#,
        )
        .await;
    let mut body = resp.into_body();
    let mut seen = String::new();
    while !seen.contains(": keep-alive\n\n") {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("a frame")
            .expect("not the end yet")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
    // Between the first item and the second (400 ms apart), comments keep it alive.
    assert!(seen.contains(r#""result":0}}"#), "{seen}");
    assert!(!seen.contains(r#""result":1}}"#), "{seen}");
}
