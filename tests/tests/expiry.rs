//! An identity's expiry ends every door's long-lived response: a WebSocket closes with 4401
//! (`auth.rs`), a server-sent-event stream sends a last `$/expired` event and ends, a WAMP
//! session is sent `GOODBYE wirecall.close.authentication_expired` (then the 4401 close);
//! and the Rust client over HTTP subscribes again with a fresh token and `$since`, missing
//! nothing.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::BodyExt;
use serde_json::{json, Value};
use wirecall::{
    auth::bearer_subprotocol, auth::Identity, auth::Refusal, raw::Router, server::ServerHandle,
    Client, Server,
};
use wirecall_examples::calculator::Calculator;
use wirecall_examples::chat::{Chat, ChatClient, ChatServer, ChatTopics, Message};
use wirecall_examples::CalcServer;
use wirecall_tests::http::HttpConn;
use wirecall_tests::{Ended, RawWs};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The calculator and the chat behind a hook that takes tokens `tok-<issued ms>` like a
/// JWT: valid for `ttl` from when they were issued, then refused with 401.
async fn server(ttl: Duration) -> ServerHandle {
    let mut router = Router::new();
    router.merge(CalcServer::default().into_router()).unwrap();
    router.merge(ChatServer::default().into_router()).unwrap();
    Server::builder()
        .authenticate(move |handshake| async move {
            let issued = handshake
                .bearer_token()
                .and_then(|t| t.strip_prefix("tok-")?.parse::<u64>().ok());
            let Some(issued) = issued else {
                return Err(Refusal::unauthorized("a bearer token is required"));
            };
            let expires = UNIX_EPOCH + Duration::from_millis(issued) + ttl;
            if expires <= SystemTime::now() {
                return Err(Refusal::unauthorized("the token has expired"));
            }
            Ok(Identity::new(format!("user-{issued}")).expires_at(expires))
        })
        .bind("127.0.0.1:0", router)
        .await
        .unwrap()
}

fn token() -> String {
    format!("tok-{}", now_ms())
}

/// The issue's repro: a `Calculator.ticks` stream over server-sent events outlived its
/// token. Now, at expiry, one last event says why and the response ends.
#[tokio::test]
async fn an_event_stream_ends_with_an_expired_event() {
    let server = server(Duration::from_millis(800)).await;
    let mut conn = HttpConn::connect(server.local_addr()).await;
    let bearer = format!("Bearer {}", token());
    let resp = conn
        .start(
            "POST",
            &[
                ("content-type", "application/json"),
                ("accept", "text/event-stream"),
                ("authorization", &bearer),
            ],
            // 10 000 ticks, one every 20 ms: 200 s unless something ends it.
            r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"count":10000,"every_ms":20},"id":1}"#,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(15), resp.into_body().collect())
        .await
        .expect("the response ends at the identity's expiry")
        .unwrap()
        .to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    let events: Vec<&str> = body
        .split("\n\n")
        .filter(|e| !e.is_empty() && !e.starts_with(':'))
        .collect();
    let data = |e: &str| -> Value {
        let line = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        serde_json::from_str(line).unwrap()
    };
    let answer = data(events[0]);
    let sub = answer["result"].clone();
    assert!(sub.is_u64(), "{answer}");
    let last = events.last().unwrap();
    assert!(last.starts_with("event: expired\n"), "{last:?}");
    assert_eq!(
        data(last),
        json!({"jsonrpc":"2.0","method":"$/expired","params":{"subscription":sub,"reason":"authentication expired"}})
    );
    // Items until then (0.8 s at one per 20 ms), none after, and the stream's own end
    // never came.
    let items = &events[1..events.len() - 1];
    assert!(!items.is_empty() && items.len() < 200, "{}", items.len());
    for (n, item) in items.iter().enumerate() {
        assert_eq!(data(item)["params"]["result"], n, "{item}");
    }
}

/// A WAMP session ends the WAMP way: `GOODBYE` with the reason, then the WebSocket's 4401.
#[tokio::test]
async fn a_wamp_session_is_sent_goodbye_at_expiry() {
    let server = server(Duration::from_millis(800)).await;
    let offered = format!("wamp.2.json, {}", bearer_subprotocol(&token()));
    let (mut ws, _) = RawWs::connect_with(&server.url(), &[("sec-websocket-protocol", &offered)])
        .await
        .unwrap();
    let next = |text: String| -> Value { serde_json::from_str(&text).unwrap() };
    ws.send(r#"[1,"realm1",{}]"#).await;
    let welcome = next(ws.recv().await);
    assert_eq!(welcome[0], 2, "{welcome}");
    assert!(
        welcome[2]["authid"].as_str().unwrap().starts_with("user-"),
        "{welcome}"
    );
    assert_eq!(welcome[2]["authrole"], "user", "{welcome}");
    ws.send(r#"[32,1,{},"Chat.room.attic"]"#).await;
    assert_eq!(next(ws.recv().await)[0], 33, "SUBSCRIBED");
    let goodbye = next(ws.recv().await);
    assert_eq!(
        goodbye,
        json!([6, {"message": "authentication expired"}, "wirecall.close.authentication_expired"])
    );
    assert_eq!(
        ws.next_text().await,
        Err(Ended::Close(Some((4401, "authentication expired".into()))))
    );
}

/// The Rust client over HTTP: each event stream ends at its token's expiry; the client
/// subscribes again, is refused with 401 (the token is too old), fetches a fresh token and
/// resumes the topic with `$since`: every publication arrives once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_client_resubscribes_with_a_fresh_token_and_misses_nothing() {
    let server = server(Duration::from_millis(600)).await;
    resubscribes_across_expiries(&server, &server.http_url()).await;
}

/// The same over a WebSocket: closed with 4401 at each expiry, the client reconnects with a
/// fresh token and resumes the topic with `$since`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_client_reconnects_with_a_fresh_token_and_misses_nothing() {
    let server = server(Duration::from_millis(600)).await;
    resubscribes_across_expiries(&server, &server.url()).await;
}

/// Subscribe to a room through `url` with short-lived tokens while 60 publications come
/// over 2.4 s: each arrives once, in order, and fresh tokens were fetched.
async fn resubscribes_across_expiries(server: &ServerHandle, url: &str) {
    let fetched = Arc::new(AtomicU32::new(0));
    let client = Client::builder()
        .token_fn({
            let fetched = fetched.clone();
            move || {
                fetched.fetch_add(1, Ordering::SeqCst);
                async move { Ok::<_, std::io::Error>(token()) }
            }
        })
        .connect(url)
        .await
        .unwrap();
    let mut room = ChatClient::new(client).room("lobby".into()).await.unwrap();
    let topics = ChatTopics::new(server.hub());
    const N: usize = 60;
    let publisher = tokio::spawn(async move {
        for n in 0..N {
            let message = Message {
                room: "lobby".into(),
                from: "rust".into(),
                text: n.to_string(),
            };
            topics.room("lobby").publish(&message).await.unwrap();
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    });
    for n in 0..N {
        let message = tokio::time::timeout(Duration::from_secs(10), room.next())
            .await
            .unwrap_or_else(|_| panic!("publication {n} within 10 s"))
            .expect("the subscription goes on")
            .expect("no error");
        assert_eq!(message.text, n.to_string());
    }
    publisher.await.unwrap();
    // 2.4 s of publications, tokens valid for 0.6 s: fresh ones were fetched.
    let n = fetched.load(Ordering::SeqCst);
    assert!(n >= 3, "a fresh token after each expiry, got {n} tokens");
}
