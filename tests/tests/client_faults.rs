//! The Rust client under faults, against fake servers (a WebSocket or HTTP server scripted
//! frame by frame) and real ones behind a TCP proxy on loopback: event streams that are
//! cut or split mid-character, servers that accept and drop, refuse, answer too much or
//! too late, token functions that hang or fail, a client closed while calls wait.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use wirecall::hub::Hub;
use wirecall::{
    auth::Identity, auth::Refusal, client::CloseReason, client::ConnectionState, client::Reconnect,
    Client, Context, Error, Fault, Server,
};
use wirecall_examples::calculator::{Calculator, CalculatorClient};
use wirecall_examples::chat::{Chat, ChatClient, ChatServer, ChatTopics, Message as ChatMessage};
use wirecall_examples::CalcServer;
use wirecall_tests::proxy::Proxy;

// ---------------------------------------------------------------------------------------
// Fake servers.

type Ws = WebSocketStream<TcpStream>;

/// A WebSocket server that runs `script` on each connection (with its number, from 1)
/// and echoes the `jsonrpc-2.0` subprotocol. Returns its URL and the connections count.
// (tungstenite's handshake callback returns its large error type.)
#[allow(clippy::result_large_err)]
async fn fake_ws<F, Fut>(script: F) -> (String, Arc<AtomicU32>)
where
    F: Fn(u32, Ws) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicU32::new(0));
    let script = Arc::new(script);
    let counter = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let script = script.clone();
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::spawn(async move {
                let echo = |req: &Request, mut resp: Response| {
                    if req.headers().contains_key("sec-websocket-protocol") {
                        resp.headers_mut().insert(
                            "sec-websocket-protocol",
                            HeaderValue::from_static("jsonrpc-2.0"),
                        );
                    }
                    Ok(resp)
                };
                if let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, echo).await {
                    script(n, ws).await;
                }
            });
        }
    });
    (url, count)
}

/// The next request (a text frame with an `id`) a fake WebSocket server gets; `None` when
/// the connection ends.
async fn next_request(ws: &mut Ws) -> Option<serde_json::Value> {
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Text(text) = msg {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            if v.get("id").is_some() {
                return Some(v);
            }
        }
    }
    None
}

async fn send(ws: &mut Ws, v: serde_json::Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// An HTTP server that answers every POST with an event stream: `script` gets the request
/// body and returns the chunks to send (each written and flushed on its own, 20 ms apart).
async fn fake_sse<F>(script: F) -> String
where
    F: Fn(serde_json::Value) -> Vec<Vec<u8>> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let script = Arc::new(script);
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                continue;
            };
            let script = script.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let Some(body) = read_post(&mut tcp).await else {
                    return; // (the client's reachability check opens and closes)
                };
                let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                            transfer-encoding: chunked\r\nconnection: close\r\n\r\n";
                if tcp.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for chunk in script(request) {
                    let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                    framed.extend_from_slice(&chunk);
                    framed.extend_from_slice(b"\r\n");
                    if tcp.write_all(&framed).await.is_err() || tcp.flush().await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let _ = tcp.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    url
}

/// The body of one HTTP/1.1 request with a `content-length`.
async fn read_post(tcp: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = tcp.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf[end + 4..end + 4 + len].to_vec());
        }
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn fast() -> Reconnect {
    Reconnect {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        ..Reconnect::default()
    }
}

/// Wait (up to 10 s) for a transition that `pred` accepts.
async fn wait_transition(
    rx: &mut tokio::sync::broadcast::Receiver<ConnectionState>,
    what: &str,
    pred: impl Fn(&ConnectionState) -> bool,
) {
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(s) if pred(&s) => return,
                Ok(_) => {}
                Err(e) => panic!("transitions: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

fn is_connected(s: &ConnectionState) -> bool {
    matches!(s, ConnectionState::Connected { .. })
}

// ---------------------------------------------------------------------------------------
// HTTP event streams.

/// Item 1: an `http://` topic subscription whose event stream is cut resumes with `$since`
/// and misses nothing (it used to wait forever, the state still `Connected`).
#[tokio::test]
async fn an_http_topic_cut_off_resumes_with_since_and_misses_nothing() {
    let hub = Hub::memory();
    let server = Server::builder()
        .hub(hub.clone())
        .bind("127.0.0.1:0", ChatServer::default().into_router())
        .await
        .unwrap();
    let proxy = Proxy::start(server.local_addr()).await;
    let client = Client::builder()
        .reconnect(fast())
        .connect(&format!("http://{}", proxy.addr()))
        .await
        .unwrap();
    let mut room = ChatClient::new(client).room("lobby".into()).await.unwrap();
    let topic = ChatTopics::new(&hub).room("lobby");
    const N: u64 = 60;
    for expected in 1..=N {
        topic
            .publish(&ChatMessage {
                room: "lobby".into(),
                from: "bot".into(),
                text: format!("m{expected}"),
            })
            .await
            .unwrap();
        if expected % 20 == 10 {
            proxy.drop_all();
        }
        let item = tokio::time::timeout(Duration::from_secs(10), room.next())
            .await
            .unwrap_or_else(|_| panic!("no item {expected}: the subscription hangs"));
        match item {
            Some(Ok(m)) => assert_eq!(m.text, format!("m{expected}")),
            other => panic!("item {expected}: {other:?}"),
        }
    }
}

/// Item 2: a character split across body chunks arrives whole; CRLF ends events too.
#[tokio::test]
async fn text_split_across_chunks_and_crlf_events_arrive_intact() {
    let url = fake_sse(|req| {
        let id = req["id"].clone();
        let answer = format!(
            "data: {}\r\n\r\n",
            serde_json::json!({"jsonrpc":"2.0","result":5,"id":id})
        );
        let item = format!(
            "data: {}\r\n\r\n",
            serde_json::json!({"jsonrpc":"2.0","method":"X.s","params":{"subscription":5,"result":"héllo 😀"}})
        );
        let end = "data: {\"jsonrpc\":\"2.0\",\"method\":\"X.s\",\"params\":{\"subscription\":5,\"error\":null}}\r\n\r\n";
        // Cut inside "é" (2 bytes) and inside the emoji (4 bytes), and between CR and LF.
        let item = item.into_bytes();
        let e = item.windows(2).position(|w| w == "é".as_bytes()).unwrap();
        let smile = item.windows(4).position(|w| w == "😀".as_bytes()).unwrap();
        vec![
            answer.into_bytes(),
            item[..e + 1].to_vec(),
            item[e + 1..smile + 2].to_vec(),
            item[smile + 2..item.len() - 1].to_vec(),
            item[item.len() - 1..].to_vec(),
            end.as_bytes().to_vec(),
        ]
    })
    .await;
    let client = Client::connect(&url).await.unwrap();
    let mut sub = client.subscribe::<String>("X.s", ()).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .unwrap();
    assert_eq!(got.unwrap().unwrap(), "héllo 😀");
    let end = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .unwrap();
    assert!(end.is_none(), "{end:?}");
}

/// Item 10: an event stream that ends before answering ends the call at once (it used to
/// wait for the call's timeout).
#[tokio::test]
async fn an_event_stream_that_ends_unanswered_ends_the_call() {
    let url = fake_sse(|_req| vec![b": nothing to say\n\n".to_vec()]).await;
    let client = Client::builder()
        .call_timeout(Duration::from_secs(30))
        .connect(&url)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        client.subscribe::<String>("X.s", ()),
    )
    .await
    .expect("the call ends before its timeout")
    .unwrap_err();
    assert!(
        matches!(err, Error::Http { .. }) && err.to_string().contains("before answering"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

// ---------------------------------------------------------------------------------------
// Backoff, refusals, closing.

/// Item 3: a server that accepts and drops each connection is retried ever more slowly;
/// the backoff starts again only after a connection stayed up.
#[tokio::test]
async fn a_server_that_accepts_and_drops_is_not_hammered() {
    let (url, count) = fake_ws(|_, ws| async move { drop(ws) }).await;
    let client = Client::connect(&url).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let made = count.load(Ordering::SeqCst);
    // Backoff 100, 200, 400, 800, 1 600 ms (each jittered down): at most ~8 in 3 s. Before,
    // the backoff reset after every handshake: ~35.
    assert!(made <= 12, "{made} connections in 3 s");
    drop(client);
}

#[allow(unreachable_pub)]
mod bulky {
    /// Large answers.
    #[wirecall::service]
    pub trait Bulky {
        /// Idempotent: a string of `bytes` bytes.
        #[wirecall(idempotent)]
        async fn blob(bytes: u64) -> String;
    }
}
use bulky::{Bulky, BulkyClient};

#[derive(Clone, Default)]
struct Blobs(Arc<AtomicU32>);

impl Bulky for Blobs {
    async fn blob(&self, _ctx: Context, bytes: u64) -> Result<String, Fault> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok("x".repeat(bytes as usize))
    }
}

/// Item 3: an idempotent call whose answer is over the client's size limit is not sent
/// again after the size-limit close (it used to be, until its timeout).
#[tokio::test]
async fn an_answer_over_the_size_limit_is_not_asked_for_again() {
    let blobs = Blobs::default();
    let server = Server::bind("127.0.0.1:0", blobs.clone().into_router())
        .await
        .unwrap();
    let client = Client::builder()
        .reconnect(fast())
        .max_message_size(64 << 10)
        .call_timeout(Duration::from_secs(5))
        .connect(&server.url())
        .await
        .unwrap();
    let bulky = BulkyClient::new(client.clone());
    let err = bulky.blob(200_000).await.unwrap_err();
    assert!(
        matches!(err, Error::Disconnected(CloseReason::MessageTooLarge)),
        "{err}"
    );
    assert_eq!(blobs.0.load(Ordering::SeqCst), 1, "ran once");
    // The client reconnects and carries on.
    assert_eq!(bulky.blob(10).await.unwrap().len(), 10);
}

/// Item 4: with `connect_any`, one URL that refuses does not close the client while
/// another may come back.
#[tokio::test]
async fn one_refusing_url_does_not_close_a_connect_any_client() {
    let good = Server::bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let proxy = Proxy::start(good.local_addr()).await;
    let refusing = Server::builder()
        .authenticate(|_| async { Err::<Identity, _>(Refusal::forbidden("not here")) })
        .bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let client = Client::builder()
        .reconnect(fast())
        .connect_any([proxy.url(), refusing.url()])
        .await
        .unwrap();
    let mut transitions = client.transitions();
    proxy.refuse(true);
    proxy.drop_all();
    // The refusing URL is tried (and refuses) …
    wait_transition(
        &mut transitions,
        "a 403",
        |s| matches!(s, ConnectionState::Reconnecting { reason, .. } if reason.contains("403")),
    )
    .await;
    assert!(!client.is_closed());
    // … and when the good one is back, the client is too.
    proxy.refuse(false);
    wait_transition(&mut transitions, "connected again", is_connected).await;
    let calc = CalculatorClient::new(client.clone());
    assert_eq!(calc.add(1, 2).await.unwrap(), 3);
}

/// Item 4: when every URL refuses, the client stops.
#[tokio::test]
async fn every_url_refusing_closes_the_client() {
    let refusing = Server::builder()
        .authenticate(|_| async { Err::<Identity, _>(Refusal::forbidden("not here")) })
        .bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let good = Server::bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let proxy = Proxy::start(good.local_addr()).await;
    let client = Client::builder()
        .reconnect(fast())
        .connect_any([proxy.url(), refusing.url()])
        .await
        .unwrap();
    // The first URL now refuses too (403 from the same hook).
    proxy.set_target(refusing.local_addr());
    proxy.drop_all();
    let reason = tokio::time::timeout(Duration::from_secs(10), client.closed())
        .await
        .expect("closed");
    assert!(reason.to_string().contains("403"), "{reason}");
}

/// Item 5: `close()` ends every call waiting for a connection at once, with
/// `Disconnected` (some used to wait for their timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_waiting_calls_at_once_with_disconnected() {
    let server = Server::bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let proxy = Proxy::start(server.local_addr()).await;
    for round in 0..20 {
        proxy.refuse(false);
        let client = Client::builder()
            .reconnect(fast())
            .call_timeout(Duration::from_secs(30))
            .connect(&proxy.url())
            .await
            .unwrap();
        proxy.refuse(true);
        proxy.drop_all();
        let mut state = client.state();
        tokio::time::timeout(
            Duration::from_secs(10),
            state.wait_for(|s| matches!(s, ConnectionState::Reconnecting { .. })),
        )
        .await
        .unwrap()
        .unwrap();
        let calls: Vec<_> = (0..500)
            .map(|i| {
                let calc = CalculatorClient::new(client.clone());
                tokio::spawn(async move { calc.add(i, 1).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20 + round * 3)).await;
        client.close().await;
        let all = futures_util::future::join_all(calls);
        let ended = tokio::time::timeout(Duration::from_secs(3), all)
            .await
            .unwrap_or_else(|_| panic!("round {round}: calls still waiting after close()"));
        for result in ended {
            let err = result.unwrap().unwrap_err();
            assert!(err.is_disconnected(), "round {round}: {err}");
        }
    }
}

/// Item 6: full jitter: the first wait lies anywhere in [0, initial], spread evenly.
#[test]
fn the_backoff_is_fully_jittered() {
    let r = Reconnect::default();
    let samples: Vec<Duration> = (0..2000).map(|_| r.backoff(1)).collect();
    assert!(samples.iter().all(|d| *d <= Duration::from_millis(100)));
    let below_half = samples
        .iter()
        .filter(|d| **d < Duration::from_millis(50))
        .count();
    // Half of them, give or take: before, none (the wait was between half and all).
    assert!((700..=1300).contains(&below_half), "{below_half} of 2000");
    assert!(samples.iter().any(|d| *d < Duration::from_millis(5)));
}

// ---------------------------------------------------------------------------------------
// HTTP clients reconnect and rotate.

#[allow(unreachable_pub)]
mod ledger {
    /// Counts executions.
    #[wirecall::service]
    pub trait Ledger {
        /// Not idempotent.
        async fn record(key: u64, hold_ms: u64) -> u64;
        /// Idempotent.
        #[wirecall(idempotent)]
        async fn fetch(key: u64, hold_ms: u64) -> u64;
    }
}
use ledger::{Ledger, LedgerClient};

#[derive(Clone, Default)]
struct Counts(Arc<Mutex<Vec<&'static str>>>);

impl Ledger for Counts {
    async fn record(&self, _ctx: Context, key: u64, hold_ms: u64) -> Result<u64, Fault> {
        self.0.lock().unwrap().push("record");
        tokio::time::sleep(Duration::from_millis(hold_ms)).await;
        Ok(key * 2)
    }

    async fn fetch(&self, _ctx: Context, key: u64, hold_ms: u64) -> Result<u64, Fault> {
        self.0.lock().unwrap().push("fetch");
        tokio::time::sleep(Duration::from_millis(hold_ms)).await;
        Ok(key * 3)
    }
}

/// Item 7: an `http://` client moves to the next URL when one is down, re-sends an
/// idempotent call cut off in transport, and fails a non-idempotent one with
/// `Disconnected` (before: `Error::Http`, and no move).
#[tokio::test]
async fn an_http_client_rotates_and_resends_idempotent_calls() {
    let (one, two) = (Counts::default(), Counts::default());
    let server_one = Server::bind("127.0.0.1:0", one.clone().into_router())
        .await
        .unwrap();
    let server_two = Server::bind("127.0.0.1:0", two.clone().into_router())
        .await
        .unwrap();
    let proxy = Proxy::start(server_one.local_addr()).await;
    let client = Client::builder()
        .reconnect(fast())
        .connect_any([format!("http://{}", proxy.addr()), server_two.http_url()])
        .await
        .unwrap();
    let ledger = LedgerClient::new(client.clone());
    assert_eq!(ledger.fetch(1, 0).await.unwrap(), 3);
    // Both cut off mid-call: the idempotent one is answered by the second server.
    let fetch = tokio::spawn({
        let ledger = ledger.clone();
        async move { ledger.fetch(2, 500).await }
    });
    let record = tokio::spawn({
        let ledger = ledger.clone();
        async move { ledger.record(2, 500).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.refuse(true);
    proxy.drop_all();
    assert_eq!(fetch.await.unwrap().unwrap(), 6);
    let err = record.await.unwrap().unwrap_err();
    assert!(err.is_disconnected(), "{err}");
    assert_eq!(two.0.lock().unwrap().as_slice(), ["fetch"]);
    // The first server still down: later calls go to the second.
    assert_eq!(ledger.record(3, 0).await.unwrap(), 6);
}

// ---------------------------------------------------------------------------------------
// Tokens.

/// Item 8: a token function that hangs is bounded by the handshake timeout, so the
/// client keeps reconnecting (it used to stall for good).
#[tokio::test]
async fn a_hanging_token_fetch_does_not_stall_reconnecting() {
    let server = Server::bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let proxy = Proxy::start(server.local_addr()).await;
    let fetches = Arc::new(AtomicU32::new(0));
    let client = Client::builder()
        .reconnect(fast())
        .handshake_timeout(Duration::from_millis(300))
        .token_fn({
            let fetches = fetches.clone();
            move || {
                let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    if n == 2 {
                        std::future::pending::<()>().await;
                    }
                    Ok::<_, std::io::Error>(format!("t{n}"))
                }
            }
        })
        .connect(&proxy.url())
        .await
        .unwrap();
    let mut transitions = client.transitions();
    proxy.drop_all();
    wait_transition(&mut transitions, "reconnected", is_connected).await;
    assert!(fetches.load(Ordering::SeqCst) >= 3);
    let calc = CalculatorClient::new(client);
    assert_eq!(calc.add(2, 2).await.unwrap(), 4);
}

async fn fresh_only_server() -> wirecall::server::ServerHandle {
    Server::builder()
        .authenticate(|h| async move {
            match h.bearer_token() {
                Some("fresh") => Ok(Identity::new(())),
                _ => Err(Refusal::unauthorized("token expired")),
            }
        })
        .bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap()
}

/// Item 8: over HTTP, a burst of calls refused with 401 fetches one fresh token, not one
/// each.
#[tokio::test]
async fn a_burst_of_401s_fetches_one_fresh_token() {
    let server = fresh_only_server().await;
    let fetches = Arc::new(AtomicU32::new(0));
    let client = Client::builder()
        .token_fn({
            let fetches = fetches.clone();
            move || {
                let n = fetches.fetch_add(1, Ordering::SeqCst);
                async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, std::io::Error>(if n == 0 { "stale" } else { "fresh" }.to_string())
                }
            }
        })
        .connect(&server.http_url())
        .await
        .unwrap();
    let calc = CalculatorClient::new(client);
    let calls = (0..20).map(|i| {
        let calc = calc.clone();
        async move { calc.add(i, 1).await }
    });
    for (i, r) in futures_util::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(r.unwrap(), i as i64 + 1);
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "one at connect, one refresh"
    );
}

/// Item 8: a token function's failure after a 401 is the call's error (it was swallowed).
#[tokio::test]
async fn a_failed_token_refresh_is_the_calls_error() {
    let server = fresh_only_server().await;
    let fetches = Arc::new(AtomicU32::new(0));
    let client = Client::builder()
        .token_fn({
            let fetches = fetches.clone();
            move || {
                let n = fetches.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        Ok("stale".to_string())
                    } else {
                        Err(std::io::Error::other("the vault is sealed"))
                    }
                }
            }
        })
        .connect(&server.http_url())
        .await
        .unwrap();
    let err = CalculatorClient::new(client).add(1, 1).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Http {
                status: Some(401),
                ..
            }
        ) && err.to_string().contains("the vault is sealed"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Subscriptions.

/// Item 9: a subscribe answered after its timeout is unsubscribed at once (the server's
/// stream was left streaming to nobody).
#[tokio::test]
async fn a_subscribe_answered_too_late_is_unsubscribed() {
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let (url, _) = fake_ws(move |_, mut ws| {
        let seen = seen_tx.clone();
        async move {
            let req = next_request(&mut ws).await.unwrap();
            tokio::time::sleep(Duration::from_millis(600)).await;
            send(
                &mut ws,
                serde_json::json!({"jsonrpc":"2.0","result":77,"id":req["id"]}),
            )
            .await;
            while let Some(Ok(msg)) = ws.next().await {
                if let Message::Text(t) = msg {
                    let _ = seen.send(t.to_string());
                }
            }
        }
    })
    .await;
    let client = Client::builder()
        .reconnect(Reconnect::disabled())
        .call_timeout(Duration::from_millis(200))
        .connect(&url)
        .await
        .unwrap();
    let err = client.subscribe::<u64>("X.s", ()).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    let unsubscribed = async {
        while let Some(frame) = seen_rx.recv().await {
            if frame.contains("X.s.unsubscribe") {
                return frame;
            }
        }
        panic!("the connection ended")
    };
    let frame = tokio::time::timeout(Duration::from_secs(5), unsubscribed)
        .await
        .expect("an unsubscribe for the late subscription");
    assert!(frame.contains("[77]"), "{frame}");
}

/// Issue 31: a `-32603` when subscribing again after a reconnect is retried with backoff;
/// the subscription goes on (it used to end for good).
#[tokio::test]
async fn a_transient_error_on_resubscribe_is_retried() {
    let (url, _) = fake_ws(|n, mut ws| async move {
        let item = |sub: u64, value: &str| {
            serde_json::json!({"jsonrpc":"2.0","method":"X.s","params":{"subscription":sub,"result":value}})
        };
        let req = next_request(&mut ws).await.unwrap();
        if n == 1 {
            send(&mut ws, serde_json::json!({"jsonrpc":"2.0","result":1,"id":req["id"]})).await;
            send(&mut ws, item(1, "a")).await;
            return; // drop the connection
        }
        // The second connection: the hub is briefly unavailable, then fine.
        let error = serde_json::json!({"code":-32603,"message":"Internal error","data":"hub is unavailable"});
        send(&mut ws, serde_json::json!({"jsonrpc":"2.0","error":error,"id":req["id"]})).await;
        let req = next_request(&mut ws).await.unwrap();
        send(&mut ws, serde_json::json!({"jsonrpc":"2.0","result":2,"id":req["id"]})).await;
        send(&mut ws, item(2, "b")).await;
        while ws.next().await.is_some() {}
    })
    .await;
    let client = Client::builder()
        .reconnect(fast())
        .connect(&url)
        .await
        .unwrap();
    let mut sub = client.subscribe::<String>("X.s", ()).await.unwrap();
    for expected in ["a", "b"] {
        let got = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap_or_else(|_| panic!("no {expected}"));
        assert_eq!(got.unwrap().unwrap(), expected);
    }
}

/// Item 10: the subscription buffer is bounded in bytes too: a consumer that does not
/// read large items is closed as lagging long before 1 024 of them pile up.
#[tokio::test]
async fn the_subscription_buffer_is_bounded_in_bytes() {
    let (unsubscribed_tx, mut unsubscribed) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (url, _) = fake_ws(move |_, mut ws| {
        let unsubscribed = unsubscribed_tx.clone();
        async move {
            let req = next_request(&mut ws).await.unwrap();
            send(&mut ws, serde_json::json!({"jsonrpc":"2.0","result":1,"id":req["id"]})).await;
            let big = "x".repeat(256 << 10);
            for _ in 0..64 {
                let item = serde_json::json!({"jsonrpc":"2.0","method":"X.s","params":{"subscription":1,"result":big}});
                if ws.send(Message::text(item.to_string())).await.is_err() {
                    return;
                }
            }
            while let Some(Ok(msg)) = ws.next().await {
                if msg.to_text().is_ok_and(|t| t.contains("X.s.unsubscribe")) {
                    let _ = unsubscribed.send(());
                }
            }
        }
    })
    .await;
    let client = Client::builder()
        .reconnect(Reconnect::disabled())
        .subscription_buffer_bytes(4 << 20)
        .connect(&url)
        .await
        .unwrap();
    let mut sub = client.subscribe::<String>("X.s", ()).await.unwrap();
    // Nobody reads while up to 64 items (16 MiB) arrive: the client gives up on the
    // subscription (and tells the server) once 4 MiB wait.
    tokio::time::timeout(Duration::from_secs(10), unsubscribed.recv())
        .await
        .expect("the client unsubscribes the lagging subscription");
    let mut items = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("the subscription ends")
        {
            Some(Ok(_)) => items += 1,
            Some(Err(Error::Rpc(e))) if e.is_lagged() => break,
            other => panic!("after {items} items: {other:?}"),
        }
    }
    assert!((1..=17).contains(&items), "{items} items buffered");
}

/// Item 10: every state transition can be observed, in order (the watch coalesces).
#[tokio::test]
async fn every_reconnect_is_seen_in_the_transitions() {
    let server = Server::bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let proxy = Proxy::start(server.local_addr()).await;
    let client = Client::builder()
        .reconnect(Reconnect {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            ..Reconnect::default()
        })
        .connect(&proxy.url())
        .await
        .unwrap();
    // One receiver follows along; the other is read only at the end, as a watch would be.
    let mut step = client.transitions();
    let mut all = client.transitions();
    for _ in 0..5 {
        proxy.drop_all();
        wait_transition(&mut step, "connected again", is_connected).await;
    }
    let mut seen = Vec::new();
    while let Ok(s) = all.try_recv() {
        seen.push(s);
    }
    let connected = seen.iter().filter(|s| is_connected(s)).count();
    assert_eq!(connected, 5, "{seen:?}");
    assert!(
        matches!(
            seen.first(),
            Some(ConnectionState::Reconnecting { attempt: 1, .. })
        ),
        "{seen:?}"
    );
    assert!(is_connected(seen.last().unwrap()), "{seen:?}");
    // The watch, read now, shows only the latest.
    assert!(is_connected(&client.state().borrow()));
}

/// What already held, pinned: hostile frames from a server (odd and duplicate ids,
/// unknown subscriptions, deep nesting, invalid UTF-8, a flood of requests) cause no panic
/// and no disconnect; the real answer and the next item still arrive.
#[tokio::test]
async fn hostile_server_frames_neither_panic_nor_disconnect() {
    let (url, connections) = fake_ws(|_, mut ws| async move {
        let sub = next_request(&mut ws).await.unwrap();
        send(&mut ws, serde_json::json!({"jsonrpc":"2.0","result":1,"id":sub["id"]})).await;
        let call = next_request(&mut ws).await.unwrap();
        let mut hostile: Vec<Message> = [
            r#"{"jsonrpc":"2.0","result":1,"id":"x"}"#.to_string(),
            r#"{"jsonrpc":"2.0","result":1,"id":-1}"#.to_string(),
            r#"{"jsonrpc":"2.0","result":1,"id":1180591620717411303424}"#.to_string(),
            r#"{"jsonrpc":"2.0","result":1,"id":null}"#.to_string(),
            r#"{"jsonrpc":"2.0","result":1,"id":1.5}"#.to_string(),
            // A second answer to the subscribe call, already answered.
            format!(r#"{{"jsonrpc":"2.0","result":9,"id":{}}}"#, sub["id"]),
            r#"{"jsonrpc":"2.0","method":"X.s","params":{"subscription":404,"result":1}}"#.to_string(),
            r#"{"jsonrpc":"2.0","method":"X.s","params":{"subscription":1}}"#.to_string(),
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
            r#"{"jsonrpc":"2.0","result":"#.to_string(),
        ]
        .into_iter()
        .map(Message::text)
        .collect();
        hostile.push(Message::binary(vec![0xff, 0xfe, b'{', 0xc3]));
        for i in 0..2000 {
            hostile.push(Message::text(format!(
                r#"{{"jsonrpc":"2.0","method":"nothing.here","id":{i}}}"#
            )));
        }
        for msg in hostile {
            ws.send(msg).await.unwrap();
        }
        send(&mut ws, serde_json::json!({"jsonrpc":"2.0","result":42,"id":call["id"]})).await;
        send(
            &mut ws,
            serde_json::json!({"jsonrpc":"2.0","method":"X.s","params":{"subscription":1,"result":7}}),
        )
        .await;
        // Read what the client sends (the answers to the flood) until it goes.
        while ws.next().await.is_some() {}
    })
    .await;
    let client = Client::builder()
        .reconnect(fast())
        .connect(&url)
        .await
        .unwrap();
    let mut sub = client.subscribe::<u64>("X.s", ()).await.unwrap();
    let answer: u64 = client.call("X.call", ()).await.unwrap();
    assert_eq!(answer, 42);
    let item = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .unwrap();
    assert_eq!(item.unwrap().unwrap(), 7);
    assert_eq!(connections.load(Ordering::SeqCst), 1, "never reconnected");
    assert!(matches!(
        *client.state().borrow(),
        ConnectionState::Connected { .. }
    ));
}
