//! Authentication on every door: no token → 401, a wrong one → 403 (WebSocket upgrade,
//! POST, server-sent events); the header and the subprotocol forms; the identity read back
//! in handlers; expiry (close 4401) then a fresh token on reconnect; a refused reconnect
//! that stops instead of retrying as if the network had failed.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wirecall::{
    auth::bearer_subprotocol, auth::Identity, auth::Refusal, client::ConnectError,
    client::ConnectionState, client::Reconnect, server::ServerHandle, Client, RpcError, Server,
};
use wirecall_examples::calculator::{Calculator, CalculatorClient};
use wirecall_examples::CalcServer;
use wirecall_tests::http::HttpConn;
use wirecall_tests::{Ended, RawWs};

/// The calculator plus `whoami`, behind a hook that admits tokens starting with `good-`
/// (each valid for `ttl`, if given).
async fn server(ttl: Option<Duration>) -> ServerHandle {
    let mut router = CalcServer::default().into_router();
    router.method("whoami", |ctx, _params| {
        let who = ctx.identity::<String>().cloned();
        let addr = ctx.remote_addr().is_some();
        async move { Ok::<_, RpcError>((who, addr)) }
    });
    Server::builder()
        .authenticate(move |handshake| async move {
            // An asynchronous lookup, as a database would be.
            tokio::time::sleep(Duration::from_millis(1)).await;
            assert!(handshake.remote_addr().is_some());
            match handshake.bearer_token() {
                None => Err(Refusal::unauthorized("a bearer token is required")),
                Some(t) if t.starts_with("good-") => {
                    let id = Identity::new(t.to_string());
                    Ok(match ttl {
                        Some(ttl) => id.expires_in(ttl),
                        None => id,
                    })
                }
                Some(_) => Err(Refusal::forbidden("unknown token")),
            }
        })
        .bind("127.0.0.1:0", router)
        .await
        .unwrap()
}

const WHOAMI: &str = r#"{"jsonrpc":"2.0","method":"whoami","id":1}"#;

#[tokio::test]
async fn no_token_is_401_and_a_wrong_one_403_on_every_door() {
    let server = server(None).await;
    for (token, status) in [(None, 401), (Some("bad"), 403)] {
        // WebSocket upgrade.
        let mut builder = Client::builder().reconnect(Reconnect::disabled());
        if let Some(t) = token {
            builder = builder.token(t);
        }
        match builder.clone().connect(&server.url()).await {
            Err(ConnectError::Refused { status: s, body }) => {
                assert_eq!(s, status);
                assert!(!body.is_empty(), "the refusal says why");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // POST, and POST for server-sent events.
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        let mut http = HttpConn::connect(server.local_addr()).await;
        let answer = http.send("POST", &headers, WHOAMI).await;
        assert_eq!(answer.status, status, "{}", answer.body);
        if status == 401 {
            assert_eq!(answer.header("www-authenticate"), "Bearer");
        }
        headers.push(("accept", "text/event-stream"));
        let sub = r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":[3,1],"id":1}"#;
        let answer = http.send("POST", &headers, sub).await;
        assert_eq!(answer.status, status, "{}", answer.body);
        // The HTTP client meets the refusal on its first call.
        let client = builder.connect(&server.http_url()).await.unwrap();
        let err = client
            .call::<serde_json::Value>("whoami", ())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(&status.to_string()), "{err}");
    }
}

#[tokio::test]
async fn the_identity_arrives_by_header_and_by_subprotocol() {
    let server = server(None).await;
    // The Rust client sends `Authorization: Bearer` over WebSocket and over HTTP.
    for url in [server.url(), server.http_url()] {
        let client = Client::builder()
            .token("good-rust")
            .connect(&url)
            .await
            .unwrap();
        let who: (Option<String>, bool) = client.call("whoami", ()).await.unwrap();
        assert_eq!(who, (Some("good-rust".into()), true), "{url}");
    }
    // A browser offers the token as a subprotocol; the server selects jsonrpc-2.0 only.
    let offered = format!("jsonrpc-2.0, {}", bearer_subprotocol("good-browser"));
    let (mut ws, resp) = RawWs::connect_with(
        &server.url(),
        &[("sec-websocket-protocol", offered.as_str())],
    )
    .await
    .unwrap();
    assert_eq!(
        resp.headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .collect::<Vec<_>>(),
        ["jsonrpc-2.0"],
        "the token is never echoed"
    );
    assert_eq!(
        ws.roundtrip(WHOAMI).await,
        r#"{"jsonrpc":"2.0","result":["good-browser",true],"id":1}"#
    );
    // The token alone, without jsonrpc-2.0, is not a protocol the server speaks.
    let only = bearer_subprotocol("good-browser");
    let refused =
        RawWs::connect_with(&server.url(), &[("sec-websocket-protocol", only.as_str())]).await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn an_expired_identity_closes_4401() {
    let server = server(Some(Duration::from_millis(300))).await;
    let (mut ws, _) = RawWs::connect_with(&server.url(), &[("authorization", "Bearer good-x")])
        .await
        .unwrap();
    assert_eq!(
        ws.roundtrip(WHOAMI).await,
        r#"{"jsonrpc":"2.0","result":["good-x",true],"id":1}"#
    );
    let ended = tokio::time::timeout(Duration::from_secs(5), ws.next_text())
        .await
        .expect("closed by the server");
    assert_eq!(
        ended,
        Err(Ended::Close(Some((4401, "authentication expired".into()))))
    );
}

async fn wait_state(client: &Client, what: &str, f: impl Fn(&ConnectionState) -> bool) {
    let mut state = client.state();
    let wait = async {
        while !f(&state.borrow_and_update()) {
            state.changed().await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for the client to be {what}"));
}

fn fast() -> Reconnect {
    Reconnect {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..Reconnect::default()
    }
}

#[tokio::test]
async fn after_expiry_the_client_reconnects_with_a_fresh_token() {
    let server = server(Some(Duration::from_millis(400))).await;
    let fetched = Arc::new(AtomicU32::new(0));
    let client = Client::builder()
        .reconnect(fast())
        .token_fn({
            let fetched = fetched.clone();
            move || {
                let n = fetched.fetch_add(1, Ordering::SeqCst) + 1;
                async move { Ok::<_, std::io::Error>(format!("good-{n}")) }
            }
        })
        .connect(&server.url())
        .await
        .unwrap();
    let who: (Option<String>, bool) = client.call("whoami", ()).await.unwrap();
    assert_eq!(who.0.as_deref(), Some("good-1"));
    // Calls keep succeeding through two expiries: `stats` is idempotent, so one in flight
    // when the server closes is sent again on the new connection; a call that is not
    // idempotent and in flight at that moment fails with `Disconnected` (the reconnect
    // rules), so those count as ending, not as failing the test.
    let calc = CalculatorClient::new(client.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1100);
    let (mut sums, mut dropped) = (0, 0);
    while tokio::time::Instant::now() < deadline {
        calc.stats()
            .await
            .expect("an idempotent call survives the expiry");
        match calc.add(sums, 1).await {
            Ok(sum) => {
                assert_eq!(sum, sums + 1);
                sums += 1;
            }
            Err(e) if e.is_disconnected() => dropped += 1,
            Err(e) => panic!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        sums > 10 * dropped.max(1),
        "{sums} answered, {dropped} dropped"
    );
    let n = fetched.load(Ordering::SeqCst);
    assert!(n >= 3, "a fresh token per reconnect, got {n}");
    let who: (Option<String>, bool) = client.call("whoami", ()).await.unwrap();
    assert_eq!(
        who.0,
        Some(format!("good-{}", fetched.load(Ordering::SeqCst)))
    );
}

#[tokio::test]
async fn a_refused_reconnect_stops_unless_asked_to_retry() {
    let server = server(Some(Duration::from_millis(200))).await;
    // The first token is good, the next ones are not.
    let tokens = |fetched: Arc<AtomicU32>| {
        move || {
            let n = fetched.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, std::io::Error>(if n == 0 { "good-1" } else { "revoked" }.to_string()) }
        }
    };
    let fetched = Arc::new(AtomicU32::new(0));
    let client = Client::builder()
        .reconnect(fast())
        .token_fn(tokens(fetched.clone()))
        .connect(&server.url())
        .await
        .unwrap();
    wait_state(
        &client,
        "closed",
        |s| matches!(s, ConnectionState::Closed { reason } if reason.contains("403")),
    )
    .await;
    assert_eq!(
        fetched.load(Ordering::SeqCst),
        2,
        "one refused attempt, no more"
    );
    let err = client
        .call::<i64>("Calculator.add", [1, 2])
        .await
        .unwrap_err();
    assert!(err.is_disconnected(), "{err}");

    // Asked to, it keeps trying.
    let fetched = Arc::new(AtomicU32::new(0));
    let client = Client::builder()
        .reconnect(Reconnect {
            retry_refused: true,
            ..fast()
        })
        .token_fn(tokens(fetched.clone()))
        .connect(&server.url())
        .await
        .unwrap();
    wait_state(&client, "retrying", |s| {
        matches!(s, ConnectionState::Reconnecting { attempt, reason } if *attempt >= 3 && reason.contains("403"))
    })
    .await;
}

#[tokio::test]
async fn an_http_client_refreshes_its_token_on_401() {
    // The server accepts only the token of the current generation (a rotation).
    let generation = Arc::new(AtomicU32::new(1));
    let mut router = CalcServer::default().into_router();
    router.method("whoami", |ctx, _params| {
        let who = ctx.identity::<String>().cloned();
        async move { Ok::<_, RpcError>(who) }
    });
    let server = Server::builder()
        .authenticate({
            let generation = generation.clone();
            move |handshake| {
                let current = format!("good-{}", generation.load(Ordering::SeqCst));
                async move {
                    match handshake.bearer_token() {
                        Some(t) if t == current => Ok(Identity::new(t.to_string())),
                        Some(_) => Err(Refusal::unauthorized("the token is no longer valid")),
                        None => Err(Refusal::unauthorized("a bearer token is required")),
                    }
                }
            }
        })
        .bind("127.0.0.1:0", router)
        .await
        .unwrap();
    let fetched = Arc::new(AtomicU32::new(0));
    let client = Client::builder()
        .token_fn({
            let (fetched, generation) = (fetched.clone(), generation.clone());
            move || {
                fetched.fetch_add(1, Ordering::SeqCst);
                let token = format!("good-{}", generation.load(Ordering::SeqCst));
                async move { Ok::<_, std::io::Error>(token) }
            }
        })
        .connect(&server.http_url())
        .await
        .unwrap();
    let who: Option<String> = client.call("whoami", ()).await.unwrap();
    assert_eq!(who.as_deref(), Some("good-1"));
    // The token is rotated: the next POST is refused once, then sent with a fresh token.
    generation.store(2, Ordering::SeqCst);
    let who: Option<String> = client.call("whoami", ()).await.unwrap();
    assert_eq!(who.as_deref(), Some("good-2"));
    assert_eq!(fetched.load(Ordering::SeqCst), 2);
    // A fixed token has nothing to refresh with: the 401 is the answer.
    let fixed = Client::builder()
        .token("good-1")
        .connect(&server.http_url())
        .await
        .unwrap();
    let err = fixed
        .call::<Option<String>>("whoami", ())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
}
