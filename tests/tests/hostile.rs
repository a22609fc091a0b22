//! The doors under hostile clients (issue #32): what a client that never reads, floods
//! timers or notifications, outlives its identity or rebinds DNS must not get, each through
//! a real server on loopback.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use wirecall::{
    auth::Identity, raw::Router, server::ServerBuilder, server::ServerHandle, RpcError, Server,
};
use wirecall_examples::calculator::Calculator;
use wirecall_examples::CalcServer;
use wirecall_tests::http::HttpConn;
use wirecall_tests::{wait_for, Ended, RawWs};

/// Handlers of `hold` running now: one more while a handler runs, one less when its future
/// is dropped (finished or stopped).
#[derive(Clone, Default)]
struct Running(Arc<AtomicUsize>);

impl Running {
    fn now(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

struct Held(Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `hold` (runs for an hour, counted in `running`), `add`, and `echo`.
fn holding_router(running: &Running) -> Router {
    let mut r = Router::new();
    let count = running.0.clone();
    r.method("hold", move |_ctx, _params| {
        count.fetch_add(1, Ordering::SeqCst);
        let held = Held(count.clone());
        async move {
            let _held = held;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, RpcError>(())
        }
    });
    r.method("add", |_ctx, params| {
        let args = params.parse::<(i64, i64)>();
        async move {
            let (a, b) = args?;
            Ok::<_, RpcError>(a + b)
        }
    });
    r.method("echo", |_ctx, params| {
        let text = params.parse::<(String,)>();
        async move { Ok::<_, RpcError>(text?.0) }
    });
    r
}

async fn bind(builder: ServerBuilder, router: Router) -> ServerHandle {
    builder.bind("127.0.0.1:0", router).await.expect("bind")
}

/// Every session's extensions get a marker; the test keeps a weak reference to each, which
/// dies when nothing holds the session any more.
#[derive(Clone, Default)]
struct Sessions(Arc<Mutex<Vec<Weak<()>>>>);

#[derive(Clone)]
struct Marker(#[allow(dead_code)] Arc<()>);

impl Sessions {
    fn hook(&self, builder: ServerBuilder) -> ServerBuilder {
        let sessions = self.0.clone();
        builder.on_handshake(move |_req, extensions| {
            let marker = Arc::new(());
            sessions.lock().unwrap().push(Arc::downgrade(&marker));
            extensions.insert(Marker(marker));
            Ok(())
        })
    }

    fn alive(&self) -> usize {
        let all = self.0.lock().unwrap();
        all.iter().filter(|w| w.strong_count() > 0).count()
    }
}

async fn wamp(url: &str) -> RawWs {
    let (mut ws, _) = RawWs::connect_with(url, &[("sec-websocket-protocol", "wamp.2.json")])
        .await
        .expect("connect");
    let welcome: Value = serde_json::from_str(&ws.roundtrip(r#"[1,"realm1",{}]"#).await).unwrap();
    assert_eq!(welcome[0], 2, "{welcome}");
    ws
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

// 1. WAMP `CALL` timeouts.

#[tokio::test]
async fn an_old_wamp_timer_does_not_cancel_a_call_that_reuses_its_request_id() {
    let server = bind(Server::builder(), CalcServer::default().into_router()).await;
    let mut ws = wamp(&server.url()).await;
    // Call 1 with a timeout (generous: a loaded machine must answer within it), answered
    // at once.
    let first = json(
        &ws.roundtrip(r#"[48,1,{"timeout":1500},"Calculator.sleep",[0]]"#)
            .await,
    );
    assert_eq!(first, json(r#"[50,1,{},[0]]"#));
    // Request id 1 again, for a call that outlives the first one's timeout.
    let second = json(&ws.roundtrip(r#"[48,1,{},"Calculator.sleep",[3000]]"#).await);
    assert_eq!(
        second,
        json(r#"[50,1,{},[3000]]"#),
        "the first call's timer canceled the second"
    );
    // The timeout still works for the call it was given to.
    let timed_out = json(
        &ws.roundtrip(r#"[48,2,{"timeout":200},"Calculator.sleep",[60000]]"#)
            .await,
    );
    assert_eq!(timed_out[0], 8, "{timed_out}");
    assert_eq!(timed_out[4], "wamp.error.canceled", "{timed_out}");
}

#[tokio::test]
async fn wamp_call_timers_do_not_outlive_their_connection() {
    let sessions = Sessions::default();
    let server = bind(
        sessions.hook(Server::builder()),
        CalcServer::default().into_router(),
    )
    .await;
    let mut ws = wamp(&server.url()).await;
    const CALLS: u64 = 200;
    for i in 1..=CALLS {
        ws.send(&format!(
            r#"[48,{i},{{"timeout":1000000000000}},"Calculator.add",[{i},1]]"#
        ))
        .await;
    }
    for _ in 0..CALLS {
        assert_eq!(json(&ws.recv().await)[0], 50);
    }
    assert_eq!(sessions.alive(), 1);
    drop(ws);
    // Nothing holds the session once its connection is gone: no timer of an answered
    // call is left waiting its 10^12 ms.
    wait_for("the WAMP session to be dropped", || sessions.alive() == 0).await;
    wait_for("the connection to close", || server.connections() == 0).await;
}

// 2. Notification handlers.

#[tokio::test]
async fn notification_handlers_stop_when_their_websocket_closes() {
    let running = Running::default();
    let server = bind(Server::builder(), holding_router(&running)).await;
    let mut ws = RawWs::connect(&server.url()).await;
    for _ in 0..10 {
        ws.send(r#"{"jsonrpc":"2.0","method":"hold"}"#).await;
    }
    assert_eq!(
        ws.roundtrip(r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#)
            .await,
        r#"{"jsonrpc":"2.0","result":3,"id":1}"#
    );
    wait_for("10 notification handlers running", || running.now() == 10).await;
    drop(ws);
    wait_for("the handlers to stop with their connection", || {
        running.now() == 0
    })
    .await;
}

#[tokio::test]
async fn notification_handlers_count_against_the_connections_limit() {
    let running = Running::default();
    let server = bind(
        Server::builder()
            .max_in_flight(4)
            .ping(Some(Duration::from_millis(200)), 2),
        holding_router(&running),
    )
    .await;
    for sent in [5, 10] {
        let mut ws = RawWs::connect(&server.url()).await;
        for _ in 0..sent {
            ws.send(r#"{"jsonrpc":"2.0","method":"hold"}"#).await;
        }
        wait_for("4 notification handlers running", || running.now() == 4).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(running.now(), 4, "past the connection's limit");
        // The reader waits for room: it still sees the peer go (the close right behind the
        // frame that waits, or, behind more frames, the failing keep-alive pings).
        drop(ws);
        wait_for("the handlers to stop", || running.now() == 0).await;
    }
}

#[tokio::test]
async fn a_post_of_notifications_answers_when_they_are_done_and_stops_them_if_abandoned() {
    let running = Running::default();
    let server = bind(Server::builder(), holding_router(&running)).await;
    let addr = server.local_addr();
    let notes: Vec<&str> = vec![r#"{"jsonrpc":"2.0","method":"hold"}"#; 10];
    let body = format!("[{}]", notes.join(","));
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    wait_for("10 notification handlers running", || running.now() == 10).await;
    // Not answered while they run (the handlers belong to this request)…
    let mut buf = [0u8; 256];
    let early = tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "answered while its notification handlers run: {:?}",
        early.map(|r| r.map(|n| String::from_utf8_lossy(&buf[..n]).to_string()))
    );
    // …and a client that goes away stops them.
    drop(tcp);
    wait_for("the abandoned POST's handlers to stop", || {
        running.now() == 0
    })
    .await;
    // Notifications that finish at once are answered 204 as before.
    let answer = HttpConn::connect(addr)
        .await
        .post(r#"{"jsonrpc":"2.0","method":"add","params":[1,2]}"#)
        .await;
    assert_eq!(answer.status, 204);
}

// 3. An expired identity.

fn expiring(ttl: Duration) -> ServerBuilder {
    Server::builder()
        .ping(None, 2)
        .authenticate(move |_h| async move { Ok(Identity::new("alice").expires_in(ttl)) })
}

#[tokio::test]
async fn expiry_closes_a_connection_whose_reader_waits_for_room() {
    let running = Running::default();
    let server = bind(
        expiring(Duration::from_millis(800)).max_in_flight(2),
        holding_router(&running),
    )
    .await;
    let mut ws = RawWs::connect(&server.url()).await;
    // Two calls fill the connection's limit; the third waits for room, and the reader
    // with it.
    for id in 1..=3 {
        ws.send(&format!(r#"{{"jsonrpc":"2.0","method":"hold","id":{id}}}"#))
            .await;
    }
    ws.send(r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":9}"#)
        .await;
    // (RawWs waits up to 10 s for a frame.)
    assert_eq!(
        ws.next_text().await,
        Err(Ended::Close(Some((4401, "authentication expired".into()))))
    );
    wait_for("the expired identity's handlers to stop", || {
        running.now() == 0
    })
    .await;
}

/// A client that writes `echo` calls of 64 KiB as fast as it can and never reads.
async fn flood_without_reading(url: &str, headers: &[(&'static str, &str)]) -> RawWs {
    let (mut ws, _) = RawWs::connect_with(url, headers).await.expect("connect");
    let text = "x".repeat(64 << 10);
    let frame = format!(r#"{{"jsonrpc":"2.0","method":"echo","params":["{text}"],"id":1}}"#);
    // Far more than the socket buffers and the send queue hold; the writes stop when the
    // server stops reading.
    // Returns once a write has waited a whole second: the server has stopped reading.
    let sink = ws.inner();
    let started = std::time::Instant::now();
    for i in 0..2_000 {
        match tokio::time::timeout(
            Duration::from_secs(1),
            sink.send(Message::text(frame.clone())),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break,
            Err(_) => {
                eprintln!(
                    "the server stopped reading after {i} frames, {:?}",
                    started.elapsed()
                );
                break;
            }
        }
    }
    ws
}

#[tokio::test]
async fn expiry_closes_a_connection_whose_peer_does_not_read() {
    // Long enough for the flood to stop the server's reader first (about 2 s here).
    const TTL: Duration = Duration::from_secs(8);
    let server = bind(expiring(TTL), holding_router(&Running::default())).await;
    let started = std::time::Instant::now();
    let ws = flood_without_reading(&server.url(), &[]).await;
    if started.elapsed() >= TTL {
        eprintln!(
            "NOTE expiry_closes_a_connection_whose_peer_does_not_read: the flood took {:?}, \
             past the identity's {TTL:?}; the reader was not waiting when it expired",
            started.elapsed()
        );
    }
    // The expiry, then the close's grace times (5 s for the close frame, 5 s for the
    // writer), with room to spare.
    let mut closed = false;
    for _ in 0..300 {
        if server.connections() == 0 {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        closed,
        "the expired connection is still open {:?} after it opened",
        started.elapsed()
    );
    drop(ws);
}

// 4. A peer that stops reading.

#[tokio::test]
async fn a_peer_that_does_not_read_is_dropped() {
    // Dead after 2 × 300 ms: the write deadline.
    let server = bind(
        Server::builder().ping(Some(Duration::from_millis(300)), 2),
        holding_router(&Running::default()),
    )
    .await;
    let url = server.url();
    let client = tokio::spawn(async move { flood_without_reading(&url, &[]).await });
    for _ in 0..300 {
        if client.is_finished() && server.connections() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        server.connections(),
        0,
        "a peer that reads nothing still holds its slot"
    );
    let mut ws = client.await.unwrap();
    // What the client finds when it reads at last: the end of the connection.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.inner().next().await {
                Some(Ok(_)) => continue,
                _ => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the connection was not closed");
}

// 5. The Origin rule and DNS rebinding.

/// A POST with these `Host` and `Origin` headers: the whole answer, head and body.
async fn post_as(addr: std::net::SocketAddr, host: &str, origin: &str, body: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn dns_rebinding_cannot_drive_a_loopback_server() {
    let server = bind(Server::builder(), holding_router(&Running::default())).await;
    let port = server.local_addr().port();
    let url = server.url();
    let rebound_host = format!("rebind.attacker.example:{port}");
    let rebound_origin = format!("http://{rebound_host}");
    let refused = |r: Result<_, tokio_tungstenite::tungstenite::Error>| match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Ok(_) => 101,
        Err(e) => panic!("{e}"),
    };
    // A page of the attacker's, its name rebound to 127.0.0.1: the same origin as the
    // request, under a name the server does not answer to.
    let r = RawWs::connect_with(
        &url,
        &[("host", &rebound_host), ("origin", &rebound_origin)],
    )
    .await;
    assert_eq!(refused(r), 403);
    let add = r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#;
    let json_ct = ("content-type", "application/json");
    let answer = post_as(server.local_addr(), &rebound_host, &rebound_origin, add).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(
        !answer
            .to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{answer}"
    );
    // Another scheme is another origin.
    let https_same_host = format!("https://127.0.0.1:{port}");
    let r = RawWs::connect_with(&url, &[("origin", &https_same_host)]).await;
    assert_eq!(refused(r), 403);
    // Still served: same-origin pages under the address or `localhost`, and clients
    // without Origin whatever the name.
    let own = format!("http://127.0.0.1:{port}");
    assert_eq!(
        refused(RawWs::connect_with(&url, &[("origin", &own)]).await),
        101
    );
    let localhost = format!("localhost:{port}");
    let localhost_origin = format!("http://{localhost}");
    let r = RawWs::connect_with(&url, &[("host", &localhost), ("origin", &localhost_origin)]).await;
    assert_eq!(refused(r), 101);
    let r = RawWs::connect_with(&url, &[("host", &rebound_host)]).await;
    assert_eq!(refused(r), 101);
    let answer = HttpConn::connect(server.local_addr())
        .await
        .send("POST", &[json_ct, ("origin", &own)], add)
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("access-control-allow-origin"), own);
}

#[tokio::test]
async fn allowed_hosts_are_the_names_a_server_answers_to() {
    let server = bind(
        Server::builder().allow_host("app.test"),
        holding_router(&Running::default()),
    )
    .await;
    let port = server.local_addr().port();
    let url = server.url();
    let status = |r: Result<_, tokio_tungstenite::tungstenite::Error>| match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Ok(_) => 101,
        Err(e) => panic!("{e}"),
    };
    let host = format!("app.test:{port}");
    let origin = format!("http://{host}");
    let r = RawWs::connect_with(&url, &[("host", &host), ("origin", &origin)]).await;
    assert_eq!(status(r), 101);
    let r = RawWs::connect_with(&url, &[("host", &host)]).await;
    assert_eq!(status(r), 101);
    // Any other name, browser or not: refused.
    assert_eq!(status(RawWs::connect_with(&url, &[]).await), 403);
    let r = RawWs::connect_with(&url, &[("host", &format!("evil.test:{port}"))]).await;
    assert_eq!(status(r), 403);
}

// Smaller: WAMP's ABORT and ids.

#[tokio::test]
async fn wamp_abort_quotes_a_malformed_message_briefly() {
    let server = bind(Server::builder(), CalcServer::default().into_router()).await;
    let mut ws = wamp(&server.url()).await;
    let big = "A".repeat(100_000);
    ws.send(&format!(
        r#"[48,"not an id",{{}},"Calculator.add",["{big}"]]"#
    ))
    .await;
    let abort = ws.recv().await;
    assert!(abort.len() < 1_000, "ABORT of {} bytes", abort.len());
    let abort = json(&abort);
    assert_eq!(abort[0], 3);
    assert_eq!(abort[2], "wamp.error.protocol_violation");
    assert!(
        abort[1]["message"]
            .as_str()
            .unwrap()
            .starts_with(r#"malformed CALL message: [48,"not an id""#),
        "{abort}"
    );
}

#[tokio::test]
async fn wamp_session_ids_are_random() {
    let server = bind(Server::builder(), CalcServer::default().into_router()).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let (mut ws, _) =
            RawWs::connect_with(&server.url(), &[("sec-websocket-protocol", "wamp.2.json")])
                .await
                .unwrap();
        let welcome = json(&ws.roundtrip(r#"[1,"realm1",{}]"#).await);
        let id = welcome[1].as_u64().unwrap();
        assert!((1..=1u64 << 53).contains(&id), "{id}");
        ids.push(id);
    }
    let consecutive = ids.windows(2).all(|w| w[1] == w[0] + 1);
    assert!(!consecutive, "session ids from a counter: {ids:?}");
}

// Checked and clean in the same review: kept so.

#[tokio::test]
async fn every_request_of_a_keep_alive_connection_is_authenticated_and_tokens_come_from_headers_only(
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = {
        let seen = seen.clone();
        bind(
            Server::builder()
                .allow_origin("https://app.test")
                .authenticate(move |h| {
                    let token = h.bearer_token().map(str::to_string);
                    seen.lock().unwrap().push(token.clone());
                    async move {
                        match token.as_deref() {
                            Some("good") => Ok(Identity::new(())),
                            _ => Err(wirecall::auth::Refusal::unauthorized("no token")),
                        }
                    }
                }),
            holding_router(&Running::default()),
        )
        .await
    };
    let add = r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#;
    let json_ct = ("content-type", "application/json");
    let mut conn = HttpConn::connect(server.local_addr()).await;
    let good = conn
        .send("POST", &[json_ct, ("authorization", "Bearer good")], add)
        .await;
    assert_eq!(good.status, 200);
    // The same connection, without the header: refused, not carried over.
    assert_eq!(conn.send("POST", &[json_ct], add).await.status, 401);
    // A token in the query string or a cookie is not a bearer token.
    let mut conn = HttpConn::connect(server.local_addr())
        .await
        .at("/?access_token=good&token=good");
    let r = conn
        .send(
            "POST",
            &[json_ct, ("cookie", "token=good; access_token=good")],
            add,
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        *seen.lock().unwrap(),
        [Some("good".to_string()), None, None]
    );
    // CORS: an allowed origin is echoed, never with credentials; a foreign preflight is
    // refused.
    let mut conn = HttpConn::connect(server.local_addr()).await;
    let r = conn
        .send(
            "POST",
            &[
                json_ct,
                ("authorization", "Bearer good"),
                ("origin", "https://app.test"),
            ],
            add,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), "https://app.test");
    assert_eq!(r.header("access-control-allow-credentials"), "");
    let pre = conn
        .send("OPTIONS", &[("origin", "https://app.test")], "")
        .await;
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-credentials"), "");
    let foreign = conn
        .send("OPTIONS", &[("origin", "https://evil.test")], "")
        .await;
    assert_eq!(foreign.status, 403);
    assert_eq!(foreign.header("access-control-allow-origin"), "");
}
