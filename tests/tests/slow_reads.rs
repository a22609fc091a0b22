//! What a peer has started to send must arrive at a minimum rate and whole within a
//! deadline: a request body (answered `408`, connection closed) and a WebSocket message
//! (connection dropped). Bodies being waited for are counted apart from `max_connections`,
//! the oldest cut off at their own cap. Real peers — a body sent in parts at a modest rate,
//! idle WebSocket sessions answering pings, large messages — are not disturbed.
//!
//! Deadlines here are short (a second or two) so the tests run in seconds; the margins
//! allow for a loaded machine.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wirecall::{
    client::Reconnect,
    server::{ServerBuilder, ServerHandle},
    Client, Server,
};
use wirecall_examples::calculator::{Calculator, CalculatorClient};
use wirecall_examples::CalcServer;
use wirecall_tests::http::HttpConn;

/// Scheduling slack on a loaded machine, on top of a deadline.
const MARGIN: Duration = Duration::from_secs(3);

const ADD: &str = r#"{"jsonrpc":"2.0","method":"Calculator.add","params":[1,1],"id":1}"#;

async fn calculator(builder: ServerBuilder) -> ServerHandle {
    builder
        .bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap()
}

/// A POST head announcing `len` bytes of JSON.
fn post_head(len: usize) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\n\r\n"
    )
}

/// Everything the server sends until it closes the connection, and when it closed.
async fn until_closed(mut read: impl AsyncReadExt + Unpin) -> (String, Instant) {
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        Instant::now(),
    )
}

/// Send one byte every `every` (until the server stops taking them).
fn trickle(mut write: tokio::net::tcp::OwnedWriteHalf, every: Duration) {
    tokio::spawn(async move {
        for _ in 0..10_000 {
            tokio::time::sleep(every).await;
            if write.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
}

/// A connection with a POST head sent and its body trickled: the server's answer, and how
/// long after the head the connection was closed.
async fn trickled_post(server: &ServerHandle, every: Duration) -> (String, Duration) {
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    s.write_all(post_head(100_000).as_bytes()).await.unwrap();
    let sent = Instant::now();
    let (read, write) = s.into_split();
    trickle(write, every);
    let (answer, closed) = tokio::time::timeout(Duration::from_secs(60), until_closed(read))
        .await
        .expect("the trickled body is cut off");
    (answer, closed - sent)
}

#[tokio::test]
async fn a_body_slower_than_the_minimum_rate_is_cut_off_408() {
    // 100 bytes per second wanted; 10 arrive.
    let window = Duration::from_secs(1);
    let server = calculator(Server::builder().min_body_rate(100, window)).await;
    let (answer, after) = trickled_post(&server, Duration::from_millis(100)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("minimum rate"), "{answer}");
    assert!(
        after >= window - Duration::from_millis(100) && after <= window + MARGIN,
        "cut off {after:?} after the head (window {window:?})"
    );
    // The server still answers.
    assert_eq!(
        HttpConn::connect(server.local_addr())
            .await
            .post(ADD)
            .await
            .status,
        200
    );
    assert_eq!(server.pending_bodies(), 0);
}

#[tokio::test]
async fn the_body_of_a_request_for_server_sent_events_is_cut_off_too() {
    let window = Duration::from_secs(1);
    let server = calculator(Server::builder().min_body_rate(100, window)).await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    let head = post_head(100_000).replace("\r\n\r\n", "\r\nAccept: text/event-stream\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(br#"{"jsonrpc":"2.0","method":"Calculator.ticks","#)
        .await
        .unwrap();
    let sent = Instant::now();
    let (read, write) = s.into_split();
    trickle(write, Duration::from_millis(100));
    let (answer, closed) = tokio::time::timeout(Duration::from_secs(60), until_closed(read))
        .await
        .expect("the trickled body is cut off");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(closed - sent <= window + MARGIN, "{:?}", closed - sent);
}

#[tokio::test]
async fn a_body_that_keeps_the_rate_but_not_the_time_is_cut_off_408() {
    // 1 byte per 500 ms wanted, 5 arrive: the rate holds, the whole-body timeout does not.
    let timeout = Duration::from_secs(2);
    let server = calculator(
        Server::builder()
            .min_body_rate(1, Duration::from_millis(500))
            .body_timeout(timeout),
    )
    .await;
    let (answer, after) = trickled_post(&server, Duration::from_millis(100)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("not whole within"), "{answer}");
    assert!(
        after >= timeout - Duration::from_millis(100) && after <= timeout + MARGIN,
        "cut off {after:?} after the head (timeout {timeout:?})"
    );
}

#[tokio::test]
async fn a_body_sent_in_parts_at_a_modest_rate_is_served_and_counted_apart_meanwhile() {
    // 1 KiB per 500 ms wanted; 2 KiB parts every 200 ms (10 KB/s) for ~2 s.
    let server = calculator(
        Server::builder()
            .min_body_rate(1024, Duration::from_millis(500))
            .body_timeout(Duration::from_secs(20)),
    )
    .await;
    let text = "x".repeat(20_000);
    let body = format!(
        r#"{{"jsonrpc":"2.0","method":"Calculator.echo","params":{{"text":"{text}"}},"id":7}}"#
    );
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    s.write_all(post_head(body.len()).as_bytes()).await.unwrap();
    let mut seen_pending = false;
    for part in body.as_bytes().chunks(2048) {
        s.write_all(part).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        if server.pending_bodies() == 1 {
            seen_pending = true;
            assert_eq!(
                server.connections(),
                0,
                "a connection whose first body is being waited for does not count"
            );
        }
    }
    assert!(
        seen_pending,
        "the body was counted as pending while it arrived"
    );
    let mut answer = String::new();
    let mut buf = vec![0u8; 64 << 10];
    while !answer.contains(&text) {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("the answer")
            .unwrap();
        assert!(n > 0, "closed before the answer: {answer}");
        answer.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(answer.starts_with("HTTP/1.1 200"), "{}", &answer[..60]);
    assert_eq!(server.pending_bodies(), 0);
    assert_eq!(
        server.connections(),
        1,
        "it counts once its request is whole"
    );
}

#[tokio::test]
async fn the_oldest_pending_body_is_cut_off_at_the_cap_and_complete_requests_are_served() {
    let server = calculator(
        Server::builder()
            .max_pending_bodies(2)
            .min_body_rate(1024, Duration::from_secs(30)),
    )
    .await;
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
        s.write_all(post_head(1000).as_bytes()).await.unwrap();
        s.write_all(b"{").await.unwrap();
        stalled.push(s);
        // Each is waited for before the next comes, so the order is known.
        let started = Instant::now();
        while server.pending_bodies() < stalled.len().min(2) && started.elapsed() < MARGIN {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let oldest = stalled.remove(0);
    let (answer, _) = tokio::time::timeout(MARGIN, until_closed(oldest))
        .await
        .expect("the oldest is cut off at once, long before its window");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("too many request bodies"), "{answer}");
    assert_eq!(server.pending_bodies(), 2);
    // A complete request is served, not refused.
    assert_eq!(
        HttpConn::connect(server.local_addr())
            .await
            .post(ADD)
            .await
            .status,
        200
    );
    for s in stalled {
        let mut buf = [0u8; 16];
        let mut s = s;
        assert!(
            tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf))
                .await
                .is_err(),
            "the newer ones are still waited for"
        );
    }
}

#[tokio::test]
async fn a_stalled_body_on_a_counted_connection_gives_its_slot_back() {
    // One connection at most: a keep-alive connection that has been served holds it…
    let server = calculator(
        Server::builder()
            .max_connections(1)
            .min_body_rate(1024, Duration::from_secs(2)),
    )
    .await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    let request = format!("{}{ADD}", post_head(ADD.len()));
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    assert_eq!(server.connections(), 1);
    // …until its next request's body stalls: then it is a pending body instead.
    s.write_all(post_head(1000).as_bytes()).await.unwrap();
    s.write_all(b"{").await.unwrap();
    let started = Instant::now();
    while server.pending_bodies() == 0 && started.elapsed() < MARGIN {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.pending_bodies(), 1);
    assert_eq!(server.connections(), 0);
    // So a real client is served, not refused with 503.
    let answer = HttpConn::connect(server.local_addr()).await.post(ADD).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // And the stalled one is cut off at its window.
    let (answer, _) = tokio::time::timeout(Duration::from_secs(2) + MARGIN, until_closed(s))
        .await
        .expect("cut off");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

/// A raw WebSocket (upgraded by hand) that has sent the head of a 1 000-byte text frame;
/// its payload is trickled a byte every `every`. Returns when the server closed it, after
/// how long.
async fn trickled_frame(server: &ServerHandle, every: Duration) -> Duration {
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    // FIN + text, masked, 16-bit length 1000, mask 0 (the payload goes as it is).
    s.write_all(&[0x81, 0x80 | 126, 0x03, 0xE8, 0, 0, 0, 0, b'['])
        .await
        .unwrap();
    let sent = Instant::now();
    let (read, write) = s.into_split();
    trickle(write, every);
    let (_, closed) = tokio::time::timeout(Duration::from_secs(60), until_closed(read))
        .await
        .expect("the trickled frame is cut off");
    closed - sent
}

#[tokio::test]
async fn a_websocket_message_slower_than_the_minimum_rate_is_cut_off() {
    // Keep-alive off: this is the message deadline's doing, not the pings'.
    let window = Duration::from_secs(1);
    let server = calculator(Server::builder().ping(None, 2).min_body_rate(100, window)).await;
    let after = trickled_frame(&server, Duration::from_millis(100)).await;
    assert!(
        after >= window - Duration::from_millis(100) && after <= window + MARGIN,
        "cut off {after:?} after the frame began (window {window:?})"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.connections(), 0, "its slot is given back");
}

#[tokio::test]
async fn a_websocket_message_that_keeps_the_rate_but_not_the_time_is_cut_off() {
    let timeout = Duration::from_secs(2);
    let server = calculator(
        Server::builder()
            .ping(None, 2)
            .min_body_rate(1, Duration::from_millis(500))
            .body_timeout(timeout),
    )
    .await;
    let after = trickled_frame(&server, Duration::from_millis(100)).await;
    assert!(
        after >= timeout - Duration::from_millis(100) && after <= timeout + MARGIN,
        "cut off {after:?} after the frame began (timeout {timeout:?})"
    );
}

#[tokio::test]
async fn idle_sessions_with_pings_and_large_messages_are_not_cut_off() {
    // Deadlines far tighter than any real one, and pings every 100 ms: pongs are bytes
    // too, but whole frames, so nothing is ever in progress for long.
    let server = calculator(
        Server::builder()
            .ping(Some(Duration::from_millis(100)), 3)
            .min_body_rate(1024, Duration::from_millis(300))
            .body_timeout(Duration::from_secs(1)),
    )
    .await;
    let client = Client::builder()
        .reconnect(Reconnect::disabled())
        .connect(&server.url())
        .await
        .unwrap();
    let calc = CalculatorClient::new(client.clone());
    assert_eq!(calc.add(1, 2).await.unwrap(), 3);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        calc.add(2, 2).await.unwrap(),
        4,
        "the idle session is still open"
    );
    let big = "y".repeat(4 << 20);
    assert_eq!(calc.echo(big.clone()).await.unwrap(), big);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_mounted_service_cuts_off_a_slow_body_too() {
    let window = Duration::from_secs(1);
    let rpc = Server::builder()
        .min_body_rate(100, window)
        .into_service(CalcServer::default().into_router());
    let app: axum::Router = axum::Router::new().route_service("/rpc", rpc);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(post_head(100_000).replace("POST /", "POST /rpc").as_bytes())
        .await
        .unwrap();
    let sent = Instant::now();
    let (read, write) = s.into_split();
    trickle(write, Duration::from_millis(100));
    let (answer, closed) = tokio::time::timeout(Duration::from_secs(60), until_closed(read))
        .await
        .expect("the trickled body is cut off");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(closed - sent <= window + MARGIN, "{:?}", closed - sent);
}
