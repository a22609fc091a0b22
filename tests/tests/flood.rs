//! The door idle sockets cannot block: 11 000 TCP connections that never finish their
//! handshake (half silent, half stalled in the middle of their request headers) do not keep
//! a real client out, and the server closes every one of them within the handshake
//! timeout. Also the per-IP limit and the request head size limit.
//!
//! This test raises its own open-file limit (soft, up to the hard limit, with `rlimit`):
//! 11 000 client sockets plus the server's. Where the hard limit is lower it runs with as
//! many sockets as fit and says so.

use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wirecall::{client::Reconnect, server::ServerHandle, Client, Server};
use wirecall_examples::calculator::{Calculator, CalculatorClient};
use wirecall_examples::CalcServer;
use wirecall_tests::http::HttpConn;

const IDLE: usize = 11_000;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

async fn calculator(builder: wirecall::server::ServerBuilder) -> ServerHandle {
    builder
        .bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap()
}

/// Read until the server closes the socket (end of stream or reset).
async fn closed_by_server(mut s: TcpStream) {
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_do_not_lock_out_a_real_client() {
    let limit = rlimit::increase_nofile_limit(IDLE as u64 + 3_000).unwrap_or(1024);
    let idle = IDLE.min((limit as usize).saturating_sub(2_500));
    if idle < IDLE {
        eprintln!(
            "NOTE idle_sockets_do_not_lock_out_a_real_client: the open-file limit is {limit}; \
             running with {idle} idle sockets instead of {IDLE} (raise the hard limit, \
             `ulimit -Hn`, for the full test)"
        );
    }
    if idle < 2_000 {
        eprintln!(
            "SKIPPED idle_sockets_do_not_lock_out_a_real_client: the open-file limit is {limit}, \
             too low to flood the door (raise the hard limit, `ulimit -Hn`)"
        );
        return;
    }
    // The defaults (10 000 connections, 1 024 pending handshakes), a shorter handshake.
    let server = calculator(Server::builder().handshake_timeout(HANDSHAKE_TIMEOUT)).await;
    let addr = server.local_addr();

    // The flood: every other socket stalls in the middle of its request headers.
    let opened = Instant::now();
    let sockets: Vec<TcpStream> = stream::iter(0..idle)
        .map(|i| async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            if i % 2 == 1 {
                s.write_all(b"GET / HTTP/1.1\r\nHost: flood\r\nX-Stalled: ")
                    .await
                    .expect("write");
            }
            s
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let flood_took = opened.elapsed();
    assert_eq!(sockets.len(), idle);
    assert!(
        server.pending_handshakes() <= wirecall::config::DEFAULT_MAX_PENDING_HANDSHAKES,
        "pending handshakes are capped: {}",
        server.pending_handshakes()
    );
    assert_eq!(
        server.connections(),
        0,
        "pending handshakes are not connections"
    );

    // A real client gets in, and its answer, within a second.
    let started = Instant::now();
    let client = Client::builder()
        .reconnect(Reconnect::disabled())
        .connect(&server.url())
        .await
        .expect("a real client connects through the flood");
    let calc = CalculatorClient::new(client);
    assert_eq!(calc.add(2, 3).await.unwrap(), 5);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "connect + call took {took:?}"
    );
    // And over HTTP.
    let answer = HttpConn::connect(addr)
        .await
        .post(r#"{"jsonrpc":"2.0","method":"Calculator.add","params":[1,1],"id":1}"#)
        .await;
    assert_eq!(answer.body, r#"{"jsonrpc":"2.0","result":2,"id":1}"#);

    // Every idle socket is closed by the server within the handshake timeout (counted from
    // the end of the flood, plus scheduling slack).
    let all_closed = stream::iter(sockets).for_each_concurrent(None, closed_by_server);
    tokio::time::timeout(HANDSHAKE_TIMEOUT + Duration::from_secs(2), all_closed)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "idle sockets still open {:?} after the flood (which took {flood_took:?})",
                opened.elapsed()
            )
        });
    assert_eq!(server.pending_handshakes(), 0);
    // The real client was never disturbed.
    assert_eq!(calc.add(40, 2).await.unwrap(), 42);
    eprintln!(
        "flood: {idle} idle sockets opened in {flood_took:?}; the real client connected and \
         was answered in {took:?}; all idle sockets closed {:?} after the flood began",
        opened.elapsed()
    );
}

#[tokio::test]
async fn a_silent_socket_is_closed_before_the_handshake_timeout() {
    let server = calculator(
        Server::builder()
            .handshake_timeout(Duration::from_secs(10))
            .silent_timeout(Duration::from_millis(200)),
    )
    .await;
    let silent = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut talking = TcpStream::connect(server.local_addr()).await.unwrap();
    talking.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(3), closed_by_server(silent))
        .await
        .expect("a socket that says nothing is closed at the silent timeout");
    assert!(started.elapsed() >= Duration::from_millis(150));
    // One that has started its request has the whole handshake timeout.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), closed_by_server(talking))
            .await
            .is_err(),
        "closed too early"
    );
}

#[tokio::test]
async fn connections_per_ip_are_limited() {
    let server = calculator(Server::builder().max_connections_per_ip(3)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = HttpConn::connect(server.local_addr()).await;
        let answer = conn
            .post(r#"{"jsonrpc":"2.0","method":"Calculator.add","params":[1,1],"id":1}"#)
            .await;
        assert_eq!(answer.status, 200);
        held.push(conn);
    }
    // The fourth from the same address is closed at once.
    let fourth = TcpStream::connect(server.local_addr()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), closed_by_server(fourth))
        .await
        .expect("closed at once");
    // One closes: there is room again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = HttpConn::connect(server.local_addr()).await;
    let answer = again
        .post(r#"{"jsonrpc":"2.0","method":"Calculator.add","params":[2,2],"id":1}"#)
        .await;
    assert_eq!(answer.body, r#"{"jsonrpc":"2.0","result":4,"id":1}"#);
}

#[tokio::test]
async fn an_oversized_request_head_is_refused_431() {
    let server = calculator(Server::builder()).await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    let big = "x".repeat(20 << 10);
    let request = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n");
    // The server may stop reading before the whole head is sent.
    let _ = s.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "expected 431, got {answer:?}"
    );
    // A head under the limit is served.
    let mut conn = HttpConn::connect(server.local_addr()).await;
    let small = "y".repeat(8 << 10);
    let answer = conn
        .send(
            "POST",
            &[("content-type", "application/json"), ("x-small", &small)],
            r#"{"jsonrpc":"2.0","method":"Calculator.add","params":[1,2],"id":1}"#,
        )
        .await;
    assert_eq!(answer.status, 200);
}
